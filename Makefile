# Two commands for a fresh machine: `make run` builds an example image,
# `make test` runs every test tier. Both set up .venv (and, as root, the
# Debian tools the tests drive) themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SPEC ?= specs/python3.yaml
SPECS := $(sort $(wildcard specs/*.yaml specs/*/*.yaml))
DEB_TOOLS := dpkg-dev skopeo umoci docker-registry mmdebstrap apt-utils gcc g++ libc6-dev libssl-dev openssl bubblewrap qemu-user
PYTEST_ARGS ?=

.PHONY: run locks test test-fast lint venv sysdeps bench clean

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp

# The Debian tools the integration tests use; installed only when running as root.
sysdeps:
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=""; for p in $(DEB_TOOLS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	else echo "not root: assuming $(DEB_TOOLS) are installed"; fi

# Builds from the committed lock (--locked: a stale or missing lock is an error).
run: venv
	$(VENV)/bin/assemble build $(SPEC) --locked -o out/$(notdir $(basename $(SPEC))).tar

# Re-lock every example spec whose lock is stale or missing (after editing a spec);
# `make locks UPDATE=1` re-resolves all of them to the archive's current versions.
locks: venv
	@for s in $(SPECS); do \
	  $(VENV)/bin/assemble lock $$s $(if $(UPDATE),--update) || exit 1; done

# ruff over everything, mypy over the package (configured in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check assembler tests bench
	$(VENV)/bin/mypy

# The unit tier: no servers, no network, a few seconds (fuzz targets at a tenth of
# their budget; `make test` runs them in full).
test-fast: venv
	ASSEMBLER_FUZZ_SCALE=0.1 $(PY) -m pytest -q -m "not integration and not network" $(PYTEST_ARGS)

test: lint sysdeps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv sysdeps
	$(PY) bench/index_bench.py
	$(PY) bench/build_bench.py
	$(PY) bench/layering_bench.py
	$(PY) bench/slice_load_bench.py

clean:
	rm -rf $(VENV) build *.egg-info
