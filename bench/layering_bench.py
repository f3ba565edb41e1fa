"""What layering saves a family of images in a registry: bytes stored and bytes uploaded.

Every spec given (default: every spec in specs/ and specs/slices/, so the family
grows with the repository) is locked once and built twice, one package layer
(the default) and `layering: {strategy: origin, budget: N}`, then each build is
pushed with `assemble push` to a docker-registry of its own on 127.0.0.1 through
a proxy that counts the bytes of blob uploads. Then, on the largest image:

* a one-package bump: a package the security suite updated is pinned to its
  older version in the main suite, built and pushed; then the current version
  is pushed on top: what that second push uploads is the bump;
* an app update: the same image with a local file (`paths: source:`), pushed,
  then the file changed and pushed again.

Run: .venv/bin/python bench/layering_bench.py [--budget N] [SPEC ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from regserver import RegistryServer, WireProxy  # noqa: E402

from assembler.cache import Cache  # noqa: E402
from assembler.options import Options  # noqa: E402
from assembler.packages.universes import Universes  # noqa: E402
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

    def uploaded(self) -> int:
        return sum(e.sent for e in self.proxy.uploads())

    def digests(self) -> list[str]:
        """Blobs whose upload completed (the PUT that names the digest), in order."""
        out = []
        for e in self.proxy.uploads():
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(e.path).query)
            if e.method == "PUT" and e.status == 201 and "digest" in query:
                out.append(query["digest"][0])
        return out

    def push(self, image: Path, ref: str, cache: Path) -> Pushed:
        """Push; returns what this push uploaded."""
        before, done = self.uploaded(), len(self.digests())
        assemble("push", str(image), f"{self.proxy.host}/{ref}", "--plain-http", "-q",
                 "--cache-dir", str(cache))
        return Pushed(self.uploaded() - before, self.digests()[done:], image)


@dataclass
class Pushed:
    size: int
    digests: list[str]
    image: Path

    def only(self, wanted: str) -> bool:
        """Whether the blobs were the config and the layers whose history mentions `wanted`."""
        config, layers = image_blobs(self.image)
        expected = {config} | {d for text, d in layers if wanted in text}
        return set(self.digests) == expected and len(expected) == 2


def image_blobs(image: Path) -> tuple[str, list[tuple[str, str]]]:
    """The config digest and (history text, digest) of each layer of a built image."""
    import tarfile

    with tarfile.open(image) as t:
        entry = json.load(t.extractfile("manifest.json"))[0]
        config = json.load(t.extractfile(entry["Config"]))
    texts = [h.get("created_by", "") for h in config["history"]]
    digests = ["sha256:" + name.rsplit("/", 1)[1] for name in entry["Layers"]]
    return "sha256:" + entry["Config"].rsplit("/", 1)[1], list(zip(texts, digests, strict=True))


def layer_count(image: Path) -> int:
    import tarfile

    with tarfile.open(image) as t:
        return len(json.load(t.extractfile("manifest.json"))[0]["Layers"])


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
    specs = args.specs or sorted((ROOT / "specs").glob("*.yaml")) + \
        sorted((ROOT / "specs" / "slices").glob("*.yaml"))
    work = Path(tempfile.mkdtemp(prefix="layering-bench-"))
    cache = args.cache_dir or work / "cache"
    try:
        run(specs, args.budget, work, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(specs: list[Path], budget: int, work: Path, cache: Path) -> None:
    names = [("slices-" if s.parent.name == "slices" else "") + s.stem for s in specs]
    locked = {n: prepare(s, n, work, cache) for n, s in zip(names, specs, strict=True)}
    print(f"family: {len(names)} images ({', '.join(names)}), layering budget {budget}")
    results: dict[str, dict[str, object]] = {}
    images: dict[tuple[str, str], Path] = {}
    for mode in ("off", "on"):
        reg = Registry.start(work / f"registry-{mode}")
        try:
            layers = 0
            for name, spec in locked.items():
                image = build(variant(spec, mode, budget), cache)
                images[(name, mode)] = image
                layers += layer_count(image)
                reg.push(image, f"family/{name}:1", cache)
            results[mode] = {"stored": reg.stored(), "uploaded": reg.uploaded(),
                             "layers": layers}
        finally:
            reg.stop()
    big = max(locked, key=lambda n: images[(n, "off")].stat().st_size)
    for mode in ("off", "on"):
        results[mode].update(scenarios(locked[big], mode, budget, work, cache))
    report(results, big)


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


def report(results: dict[str, dict], big: str) -> None:
    off, on = results["off"], results["on"]

    def mb(n: int) -> str:
        return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"

    def pushed(p: Pushed, wanted: str) -> str:
        n = len(p.digests)
        return (f"{mb(p.size)} in {n} blob{'s' if n != 1 else ''}"
                + (f" (its layer{' and the config' if n == 2 else ''})" if p.only(wanted)
                   else ""))

    print()
    print("| | one layer (default) | layering: origin | on / off |")
    print("|---|---:|---:|---:|")
    print(f"| family: layers pushed | {off['layers']} | {on['layers']} | |")
    print(f"| family: bytes stored by the registry | {mb(off['stored'])} | {mb(on['stored'])} "
          f"| {on['stored'] / off['stored']:.0%} |")
    print(f"| family: bytes uploaded | {mb(off['uploaded'])} | {mb(on['uploaded'])} | "
          f"{on['uploaded'] / off['uploaded']:.0%} |")
    if "bump" in off:
        package = off["bump-what"].split()[0].split("_")[0]
        print(f"| {big}: one-package bump ({off['bump-what']}), uploaded | "
              f"{pushed(off['bump'], '')} | {pushed(on['bump'], package)} | "
              f"{on['bump'].size / off['bump'].size:.0%} |")
    print(f"| {big}: app update, uploaded | {pushed(off['app'], 'app:')} | "
          f"{pushed(on['app'], 'app:')} | |")
    print("\n(\"its layer\": the push sent exactly the config and the layer holding the change.)")


if __name__ == "__main__":
    main()
