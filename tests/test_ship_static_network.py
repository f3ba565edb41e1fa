"""Must-show (issue 14, 2): ship your own program with no Docker.

A static C program compiled here goes, with a data file only its user may read,
onto the static family base (specs/slices/static-nonroot.yaml, from the real archive)
with origin layering; the image is pushed to docker-registry on 127.0.0.1,
copied back with skopeo, unpacked with umoci and run, as the config says, as
uid 65532 in a chroot with /proc mounted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from regserver import RegistryServer
from test_build_network import ROOT, assemble

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount need root")]

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char line[256];
    FILE *f = fopen("/app/share/greeting", "r");      /* 0600, owned by nonroot */
    if (!f || !fgets(line, sizeof line, f)) { perror("greeting"); return 1; }
    fclose(f);
    printf("%s", line);
    printf("uid=%d gid=%d args=%d last=%s\n", (int)getuid(), (int)getgid(), argc, argv[argc - 1]);
    f = fopen("/proc/self/status", "r");               /* the mounted /proc */
    if (!f) { perror("/proc/self/status"); return 1; }
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Uid:", 4) == 0) printf("%s", line);
    fclose(f);
    return access("/etc/passwd", W_OK) == 0 ? 3 : 0;  /* not root: cannot write it */
}
"""

APP = """paths:
  - {path: /app/bin/hello, type: file, source: build/hello, uid: nonroot, gid: nonroot}
  - {path: /app/share, type: directory, source: share, uid: nonroot, gid: nonroot}
  - {path: /app/share/greeting, type: permissions, mode: "0600"}
entrypoint: /app/bin/hello --greet "from the registry"
layering: {strategy: origin, budget: 4}
"""


def test_static_program_on_the_static_base_pushed_pulled_and_run(tmp_path, shared_cache):
    work = tmp_path / "svc"
    (work / "build").mkdir(parents=True)
    (work / "share").mkdir()
    (work / "share" / "greeting").write_text("hello from a static binary\n")
    (work / "hello.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(work / "build" / "hello"),
                    str(work / "hello.c")], check=True)
    (work / "image.yaml").write_text((ROOT / "specs/slices/static-nonroot.yaml").read_text() + APP)
    assemble(["build", str(work / "image.yaml"), "-q", "--cache-dir", str(shared_cache)])

    registry = RegistryServer(tmp_path / "registry").start()
    try:
        ref = f"{registry.host}/acme/hello:1.0"
        pushed = assemble(["push", str(work / "image.tar"), ref, "--plain-http", "-q",
                           "--cache-dir", str(shared_cache)]).stdout.strip()
        layout = tmp_path / "layout"
        subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--preserve-digests",
                        f"docker://{ref}", f"oci:{layout}:hello"], check=True,
                       capture_output=True)
    finally:
        registry.kill()
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:hello", str(tmp_path / "bundle")],
                   check=True, capture_output=True)
    rootfs = tmp_path / "bundle" / "rootfs"
    config = json.loads((tmp_path / "bundle" / "config.json").read_text())   # runtime spec
    process = config["process"]
    assert process["args"] == ["/app/bin/hello", "--greet", "from the registry"]
    assert (process["user"]["uid"], process["user"]["gid"]) == (65532, 65532)

    (rootfs / "proc").mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], check=True)
    try:
        r = subprocess.run([shutil.which("chroot") or "/usr/sbin/chroot",
                            "--userspec=65532:65532", str(rootfs), *process["args"]],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    finally:
        subprocess.run(["umount", str(rootfs / "proc")], check=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[:2] == [
        "hello from a static binary", "uid=65532 gid=65532 args=3 last=from the registry"]
    assert r.stdout.splitlines()[2].split()[:2] == ["Uid:", "65532"]
