# anycost: `make setup` builds .venv (editable install + dev tools), `make test` runs the tests.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip install --disable-pip-version-check -q
PYTEST_ARGS ?= -q
BENCH_ARGS ?=
CPP_BUILD ?= build/cpp
STAMP := $(VENV)/.anycost-setup.stamp
# Native sources: editing one re-runs the editable install, which rebuilds anycost._C.
NATIVE_SRC := $(wildcard csrc/*.cpp csrc/*.h kernels/cpu/*.h kernels/cpu/*.cpp kernels/cpu/*.inc kernels/cuda/*.cu kernels/cuda/*.cuh)

export PIP_NO_INPUT := 1

.PHONY: help setup system-deps test-deps demo test lint wheel-test bench build-cpp test-cpp clean distclean

help: ## list the targets
	@echo "make <target>   (PYTEST_ARGS='$(PYTEST_ARGS)', e.g. make test PYTEST_ARGS='-q -n 2 -m \"not slow\"')"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: system-deps $(STAMP) ## create .venv and install anycost editable with the dev extra

# $(call deb_install,PACKAGES): install the missing ones when we are root; otherwise a warning (the tests that
# need them then skip and say why).
deb_install = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "warning: missing Debian packages ($$missing): run sudo apt-get install $$missing"; fi

# Debian packages the data loaders need (the emoji font, Fashion-MNIST).
DEB_PACKAGES := fonts-noto-color-emoji dataset-fashion-mnist
system-deps:
	@$(call deb_install,$(DEB_PACKAGES))

# Debian packages only the tests need: headless Chromium and its driver for the browser test of `anycost serve`.
TEST_DEB_PACKAGES := chromium chromium-driver
test-deps:
	@$(call deb_install,$(TEST_DEB_PACKAGES))

$(VPY):
	$(PYTHON) -m venv $(VENV)

# pyproject.toml holds the ranges a user's environment may satisfy; constraints.txt pins the exact versions of
# this development environment (every pip step here installs with -c constraints.txt). setup.py compiles
# anycost._C against the torch of this venv, so torch must be installed before the package is built, and the
# build must not be isolated (an isolated build env would fetch a second, possibly different torch).
# Step 1 reads [build-system].requires + [project].dependencies from pyproject.toml with tomllib and installs
# them (pinned by constraints.txt); step 2 installs the package itself with --no-build-isolation (deps already
# satisfied, adds [dev]). [tool.anycost].no-deps lists weight-only packages, installed without their dependencies.
CONSTRAINTS := constraints.txt
$(STAMP): pyproject.toml setup.py $(CONSTRAINTS) $(NATIVE_SRC) | $(VPY)
	$(VPY) -c 'import tomllib' 2>/dev/null || $(PIP) tomli
	$(VPY) -c 'import sys; t = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli"); \
	  p = t.load(open("pyproject.toml", "rb")); \
	  print("\n".join(p["build-system"]["requires"] + p["project"]["dependencies"]))' > $(VENV)/bootstrap-requirements.txt
	$(PIP) -c $(CONSTRAINTS) -r $(VENV)/bootstrap-requirements.txt
	$(VPY) -c 'import sys; t = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli"); \
	  print("\n".join(t.load(open("pyproject.toml", "rb"))["tool"]["anycost"]["no-deps"]))' > $(VENV)/no-deps-requirements.txt
	$(PIP) --no-deps -r $(VENV)/no-deps-requirements.txt
	$(PIP) -c $(CONSTRAINTS) --no-build-isolation -e '.[dev]'
	@touch $@

demo: setup ## render the demo into out/demo
	$(VENV)/bin/anycost demo --out out/demo

test: setup test-deps lint ## lint, then run the test suite (pytest; exit code 5 = no tests collected = failure)
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: setup ## ruff check
	$(VENV)/bin/ruff check .

# The packaging check CI runs after `make test`: python -m build (sdist, then the wheel built from the sdist),
# the wheel installed into a fresh virtualenv with the pinned torch, the tests run against that installed copy
# at the lowest instruction-set level (.ci/wheel-test says how). WHEEL_TEST_ARGS go to its pytest.
WHEEL_TEST_ARGS ?= -q -n 2 -m "not slow"
wheel-test: setup test-deps ## build the sdist + wheel, install the wheel in a fresh venv, test the installed copy
	WHEEL_TEST_PYTHON=$(VPY) bash .ci/wheel-test $(WHEEL_TEST_ARGS)

bench: setup ## run the benchmarks in bench/ (pytest-benchmark)
	@if [ -d bench ]; then $(VPY) -m pytest bench --benchmark-only $(BENCH_ARGS); \
	else echo "no bench/ directory yet: nothing to benchmark"; fi

build-cpp: ## configure and build the torch-free C++ kernels and tests (CMake) into build/cpp
	@if [ -f CMakeLists.txt ]; then \
	  cmake -S . -B $(CPP_BUILD) -DCMAKE_BUILD_TYPE=Release && cmake --build $(CPP_BUILD) -j 2; \
	else echo "no CMakeLists.txt yet: nothing to build"; fi

test-cpp: build-cpp ## run the C++ tests with ctest
	@if [ -f CMakeLists.txt ]; then ctest --test-dir $(CPP_BUILD) --output-on-failure; \
	else echo "no CMakeLists.txt yet: no C++ tests"; fi

clean: ## remove build artefacts and caches (keeps .venv; next `make setup` rebuilds the extension)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .hypothesis $(STAMP)
	find anycost -name '*.so' -delete 2>/dev/null || true
	rm -f anycost/_build_info.json
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

distclean: clean ## clean, and also remove .venv, out/ and .benchmarks/
	rm -rf $(VENV) out .benchmarks
