"""Shared pytest fixtures.

apt archive fixtures (see tests/aptrepo.py):

- `apt_key`: a session-wide generated OpenPGP key (`AptKey`); `apt_key.public_path`
  is its armored public key file, usable as an apt `signed-by` or in a distro
  definition.
- `apt_repo`: a factory; `apt_repo({"stable": [Pkg(...), ...]}, **AptRepo_kwargs)`
  builds a signed archive under tmp_path, serves it on 127.0.0.1 and returns the
  `AptRepo` (`.url`, `.server.requests`, tampering helpers). Servers stop at
  test teardown.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aptrepo import AptKey, AptRepo, Pkg
from test_apk_support import FIXTURES


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests on the shared Alpine fixtures fail loudly when the tree is absent: a
    checkout without ../shared beside it would otherwise pass with them unrun."""
    if item.get_closest_marker("needs_shared") and not FIXTURES.is_dir():
        if os.environ.get("ASSEMBLER_SKIP_SHARED") == "1":
            pytest.skip(f"{FIXTURES} is absent (ASSEMBLER_SKIP_SHARED=1)")
        pytest.fail(f"the shared fixture tree {FIXTURES} is missing: put the shared/ folder "
                    "beside this checkout, or set ASSEMBLER_SKIP_SHARED=1 to skip the tests "
                    "that need it.", pytrace=False)


@pytest.fixture(scope="session")
def apt_key(tmp_path_factory: pytest.TempPathFactory) -> AptKey:
    return AptKey.generate(tmp_path_factory.mktemp("apt-key"))


@pytest.fixture
def apt_repo(tmp_path: Path, apt_key: AptKey):
    repos: list[AptRepo] = []

    def make(suites: dict[str, list[Pkg]], *, name: str = "archive", serve: bool = True,
             **kwargs) -> AptRepo:
        kwargs.setdefault("key", apt_key)
        repo = AptRepo(tmp_path / f"{name}-{len(repos)}", suites, **kwargs)
        repos.append(repo)
        if serve:
            repo.serve()
        return repo

    yield make
    for repo in repos:
        repo.stop()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One assembler cache for the whole run, so the real archive's indexes are parsed once.

    ASSEMBLER_TEST_CACHE keeps it across runs (a developer's loop); CI starts empty.
    """
    import os

    env = os.environ.get("ASSEMBLER_TEST_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("assembler-cache")
