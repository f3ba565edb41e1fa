"""What layering saves a family of images in a registry: bytes stored and bytes uploaded.

Every spec given (default: the bookworm family, every spec in specs/bookworm/, so
the family grows with the repository) is locked once and built twice, one package layer
(the default) and `layering: {strategy: origin, budget: N}`, then each build is
pushed with `assemble push` to a docker-registry of its own on 127.0.0.1 through
a proxy that counts the bytes of blob uploads. Then, on the largest image:

* a one-package bump: a package the security suite updated is pinned to its
  older version in the main suite, built and pushed; then the current version
  is pushed on top: what that second push uploads is the bump;
* an app update: the same image with a local file (`paths: source:`), pushed,
  then the file changed and pushed again.

Builds write their SBOMs, and push attaches them as referrers (as a user's push
would): they are stored and uploaded once per image whatever the layering, so the
layer bytes are given apart from them. Last, the lower bounds of bench/dedup_bound.py:
what the family would store if every distinct file (or package content) were kept once.

Run: .venv/bin/python bench/layering_bench.py [--budget N] [SPEC ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from dedup_bound import Bound, bound  # noqa: E402
from regserver import RegistryServer, WireProxy  # noqa: E402

from assembler.cache import Cache  # noqa: E402
from assembler.options import Options  # noqa: E402
from assembler.packages.universes import Universes  # noqa: E402
from assembler.sbom.files import attachments  # noqa: E402
from assembler.spec.document import load_spec  # noqa: E402

ARCH = "amd64"


def assemble(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "assembler.cli", *args], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"assemble {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


@dataclass
class Registry:
    server: RegistryServer
    proxy: WireProxy

    @classmethod
    def start(cls, where: Path) -> Registry:
        server = RegistryServer(where).start()
        return cls(server, WireProxy(server.host))

    def stop(self) -> None:
        self.proxy.stop()
        self.server.kill()

    def stored(self) -> int:
        """Bytes of blobs (layers, configs, manifests) the registry keeps on disk."""
        blobs = self.server.storage / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data"))

    def uploaded(self, only: set[str] | None = None) -> int:
        """Bytes sent in blob uploads (of the blobs in `only`, if given: a blob up to the
        chunk size goes in the one PUT that names its digest)."""
        return sum(e.sent for e in self.proxy.uploads()
                   if only is None or _digest(e.path) in only)

    def digests(self) -> list[str]:
        """Blobs whose upload completed (the PUT that names the digest), in order."""
        return [d for e in self.proxy.uploads()
                if e.method == "PUT" and e.status == 201 and (d := _digest(e.path))]

    def push(self, image: Path, ref: str, cache: Path) -> Pushed:
        """Push; returns what this push uploaded."""
        before, done = self.uploaded(), len(self.digests())
        assemble("push", str(image), f"{self.proxy.host}/{ref}", "--plain-http", "-q",
                 "--cache-dir", str(cache))
        return Pushed(self.uploaded() - before, self.digests()[done:], image)


def _digest(path: str) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return query["digest"][0] if "digest" in query else ""


EMPTY_CONFIG = "sha256:" + hashlib.sha256(b"{}").hexdigest()   # a referrer's config


def sbom_blobs(image: Path) -> dict[str, int]:
    """digest -> size of the SBOM documents push attaches to `image`."""
    return {"sha256:" + hashlib.sha256(a.data).hexdigest(): len(a.data)
            for a in attachments(image)}


@dataclass
class Pushed:
    size: int
    digests: list[str]
    image: Path
    unexpected: list[str] = field(default_factory=list)

    def only(self, wanted: str) -> bool:
        """Whether the push sent the config, the one layer whose history mentions `wanted`
        and the image's SBOMs (with a referrer's empty config), nothing else. What else it
        sent is kept in `unexpected` (by layer history) for the report."""
        config, layers = image_blobs(self.image)
        expected = {config} | {d for text, d in layers if wanted in text}
        extra = set(sbom_blobs(self.image)) | {EMPTY_CONFIG}
        sent = set(self.digests)
        history = {d: text for text, d in layers}
        self.unexpected = sorted(history.get(d, d[:19]) for d in sent - expected - extra)
        return sent - extra == expected and len(expected) == 2

    def sboms(self) -> tuple[int, int]:
        """How many SBOM documents this push uploaded, and their bytes."""
        sent = {d: n for d, n in sbom_blobs(self.image).items() if d in self.digests}
        return len(sent), sum(sent.values())


def image_blobs(image: Path) -> tuple[str, list[tuple[str, str]]]:
    """The config digest and (history text, digest) of each layer of a built image."""
    import tarfile

    with tarfile.open(image) as t:
        entry = json.load(t.extractfile("manifest.json"))[0]
        config = json.load(t.extractfile(entry["Config"]))
    # History entries of empty layers have no blob; assemble writes none, so they pair up.
    texts = [h.get("created_by", "") for h in config["history"] if not h.get("empty_layer")]
    digests = ["sha256:" + name.rsplit("/", 1)[1] for name in entry["Layers"]]
    return "sha256:" + entry["Config"].rsplit("/", 1)[1], list(zip(texts, digests, strict=True))


def layer_sizes(image: Path) -> dict[str, int]:
    """digest -> size of each layer blob of a built image."""
    import tarfile

    with tarfile.open(image) as t:
        entry = json.load(t.extractfile("manifest.json"))[0]
        return {"sha256:" + n.rsplit("/", 1)[1]: t.getmember(n).size for n in entry["Layers"]}


def prepare(spec: Path, name: str, work: Path, cache: Path) -> Path:
    """A copy of the spec in its own directory, locked (the lock serves both modes)."""
    d = work / "specs" / name
    d.mkdir(parents=True)
    shutil.copy(spec, d / "image.yaml")
    assemble("lock", str(d / "image.yaml"), "-q", "--cache-dir", str(cache))
    return d / "image.yaml"


def variant(spec: Path, mode: str, budget: int, extra: str = "", tag: str = "") -> Path:
    """spec (and its lock) copied beside itself with layering on or off and `extra` added."""
    d = spec.parent.parent / f"{spec.parent.name}-{mode}{tag}"
    d.mkdir(exist_ok=True)
    text = spec.read_text()
    if mode == "on":
        text += f"\nlayering: {{strategy: origin, budget: {budget}}}\n"
    (d / "image.yaml").write_text(text + extra)
    lock = spec.with_name("image.lock.json")
    if lock.exists() and "contents" not in extra:
        shutil.copy(lock, d / "image.lock.json")
    return d / "image.yaml"


def build(spec: Path, cache: Path) -> Path:
    assemble("build", str(spec), "-q", "--cache-dir", str(cache))
    return spec.with_name("image.tar")


def bump_candidate(spec: Path, cache: Path) -> tuple[str, str, str] | None:
    """(request, older, current): a package of the lock the security suite updated whose
    source has no other package in the image, with its version in the main suite; the
    request names the package (or one of its slices) as the spec would."""
    lock = json.loads(spec.with_name("image.lock.json").read_text())
    packages = lock["archs"][ARCH]["packages"]
    per_source: dict[str, int] = {}
    for p in packages:
        per_source[p["source"]] = per_source.get(p["source"], 0) + 1
    universe = Universes(load_spec(spec), Options(cache=Cache(cache), quiet=True)).universe(ARCH)
    for p in sorted(packages, key=lambda p: p["name"]):
        if not p["suite"].endswith("-security") or per_source[p["source"]] != 1 \
                or "requested" in p["reason"]:
            continue
        older = [v.version for v in universe.versions(p["name"])
                 if v.version != p["version"] and not v.suite.endswith("-security")]
        # A sliced package is pinned through one of the slices it already has.
        slices = [s for s in p.get("slices", []) if s != "copyright"]
        if older and (slices or not p.get("slices")):
            request = f"{p['name']}_{slices[0]}" if slices else p["name"]
            return request, older[0], p["version"]
    return None


def pin(text: str, package: str, version: str) -> str:
    """The spec with `package=version` added to contents.packages."""
    return text.replace("  packages:\n", f"  packages:\n    - {package}={version}\n", 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", type=Path)
    ap.add_argument("--budget", type=int, default=10)
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    specs = args.specs or sorted((ROOT / "specs" / "bookworm").glob("*.yaml"))
    work = Path(tempfile.mkdtemp(prefix="layering-bench-"))
    cache = args.cache_dir or work / "cache"
    try:
        run(specs, args.budget, work, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def image_names(specs: list[Path]) -> list[str]:
    """Spec stems, or parent-stem where two specs share a stem."""
    stems = [s.stem for s in specs]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{s.parent.name}-{s.stem}" for s in specs]


def run(specs: list[Path], budget: int, work: Path, cache: Path) -> None:
    start = time.monotonic()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores, {load()}")
    names = image_names(specs)
    locked = {n: prepare(s, n, work, cache) for n, s in zip(names, specs, strict=True)}
    print(f"family: {len(names)} images ({', '.join(names)}), layering budget {budget}")
    results: dict[str, dict[str, object]] = {}
    images: dict[tuple[str, str], Path] = {}
    for mode in ("off", "on"):
        reg = Registry.start(work / f"registry-{mode}")
        try:
            layers: dict[str, int] = {}
            sboms: dict[str, int] = {}
            count = 0
            for name, spec in locked.items():
                image = build(variant(spec, mode, budget), cache)
                images[(name, mode)] = image
                sizes = layer_sizes(image)
                count += len(sizes)
                layers.update(sizes)
                sboms.update(sbom_blobs(image))
                reg.push(image, f"family/{name}:1", cache)
            results[mode] = {"stored": reg.stored(), "uploaded": reg.uploaded(),
                             "layers": count, "distinct": len(layers),
                             "layer bytes": sum(layers.values()),
                             "sbom bytes": sum(sboms.values()),
                             "sbom uploaded": reg.uploaded(set(sboms))}
        finally:
            reg.stop()
    print(f"family pushed ({time.monotonic() - start:.0f} s, {load()})", flush=True)
    big = max(locked, key=lambda n: images[(n, "off")].stat().st_size)
    for mode in ("off", "on"):
        results[mode].update(scenarios(locked[big], mode, budget, work, cache))
    print(f"scenarios done ({time.monotonic() - start:.0f} s, {load()})", flush=True)
    lower = bound([images[(n, "off")] for n in names])
    print(f"lower bounds done ({time.monotonic() - start:.0f} s, {load()})", flush=True)
    report(results, big, lower)


def scenarios(spec: Path, mode: str, budget: int, work: Path, cache: Path
              ) -> dict[str, object]:
    out: dict[str, object] = {}
    reg = Registry.start(work / f"registry-{mode}-scenarios")
    try:
        bump = bump_candidate(spec, cache)
        if bump is not None:
            package, older, current = bump
            old = variant(spec, mode, budget, tag="-old")
            old.write_text(pin(old.read_text(), package, older))
            assemble("lock", str(old), "-q", "--cache-dir", str(cache))
            reg.push(build(old, cache), "scenario/bump:1", cache)
            out["bump"] = reg.push(build(variant(spec, mode, budget), cache),
                                   "scenario/bump:2", cache)
            out["bump-what"] = f"{package} {older} -> {current}"
        app_dir = spec.parent.parent / f"app-{mode}"
        app_dir.mkdir()
        (app_dir / "app.py").write_text("print('v1')\n")
        extra = f"\npaths: [{{path: /app/app.py, type: file, source: {app_dir}/app.py}}]\n"
        app = variant(spec, mode, budget, extra, tag="-app")
        reg.push(build(app, cache), "scenario/app:1", cache)
        (app_dir / "app.py").write_text("print('v2, a new build')\n")
        out["app"] = reg.push(build(app, cache), "scenario/app:2", cache)
    finally:
        reg.stop()
    return out


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def pushed(p: Pushed, wanted: str) -> str:
    n = len(p.digests)
    out = f"{mb(p.size)} in {n} blob{'s' if n != 1 else ''}"
    if p.only(wanted):
        n, size = p.sboms()
        return out + (f" (its layer and the config: {mb(image_part(p))}; {n} SBOMs: {mb(size)})"
                      if n else " (its layer and the config)")
    return out + f" (not only its layer: also {'; '.join(p.unexpected)})"


def image_part(p: Pushed) -> int:
    """What a push uploaded apart from the SBOM documents."""
    return p.size - p.sboms()[1]


def report(results: dict[str, dict], big: str, lower: Bound) -> None:
    off, on = results["off"], results["on"]
    one = off["layer bytes"]

    def row(what: str, key: str) -> None:
        print(f"| {what} | {mb(off[key])} | {mb(on[key])} | {on[key] / off[key]:.0%} |")

    print()
    print("| | one layer (default) | layering: origin | on / off |")
    print("|---|---:|---:|---:|")
    print(f"| family: layers pushed (distinct) | {off['layers']} ({off['distinct']}) | "
          f"{on['layers']} ({on['distinct']}) | |")
    row("family: layer bytes stored", "layer bytes")
    row("family: bytes stored by the registry (all blobs)", "stored")
    print(f"| family: of which SBOM documents | {mb(off['sbom bytes'])} | "
          f"{mb(on['sbom bytes'])} | |")
    row("family: bytes uploaded", "uploaded")
    print(f"| lower bound: every distinct file once (gzip) | {mb(one)} | "
          f"{mb(lower.files_gz)} | {lower.files_gz / one:.0%} |")
    print(f"| lower bound: every distinct file once (uncompressed) | {mb(lower.total_tar)} | "
          f"{mb(lower.files_tar)} | {lower.files_tar / lower.total_tar:.0%} |")
    print(f"| lower bound: every distinct package content once (gzip) | {mb(one)} | "
          f"{mb(lower.packages_gz)} | {lower.packages_gz / one:.0%} |")
    print(f"| lower bound: every distinct package content once (uncompressed) | "
          f"{mb(lower.total_tar)} | {mb(lower.packages_tar)} | "
          f"{lower.packages_tar / lower.total_tar:.0%} |")
    if "bump" in off:
        package = off["bump-what"].split()[0].split("_")[0]
        print(f"| {big}: one-package bump ({off['bump-what']}), uploaded | "
              f"{pushed(off['bump'], '')} | {pushed(on['bump'], package)} | "
              f"{on['bump'].size / off['bump'].size:.0%} "
              f"({image_part(on['bump']) / image_part(off['bump']):.1%} without SBOMs) |")
    print(f"| {big}: app update, uploaded | {pushed(off['app'], 'app:')} | "
          f"{pushed(on['app'], 'app:')} | |")
    print("\n(\"its layer\": the push sent exactly the config, the layer holding the change and "
          "the image's SBOMs; lower bounds: bench/dedup_bound.py, on / off is against the "
          "one-layer family's layer bytes, or its uncompressed files.)")


if __name__ == "__main__":
    main()
