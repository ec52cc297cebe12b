"""Packaging: the dependency ranges of pyproject.toml admit the pinned development versions (constraints.txt),
the build-time torch requirement is the run-time one, setup.py says what to do when torch is missing or too old,
and the sdist's file list (what setuptools would put in it, from MANIFEST.in) holds the C++ sources, the CMake
build and the assets. The tests that need the source tree (setup.py, MANIFEST.in) skip in a copy of tests/ run
against an installed wheel (.ci/wheel-test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
needs_pyproject = pytest.mark.skipif(not PYPROJECT.is_file(), reason="no pyproject.toml beside tests/")
needs_source = pytest.mark.skipif(not (ROOT / "setup.py").is_file() or not (ROOT / "MANIFEST.in").is_file(),
                                  reason="not a source tree (tests/ copied beside an installed wheel)")


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def requirements(key: str) -> dict[str, Requirement]:
    data = project()
    reqs = data["build-system"]["requires"] if key == "build" else data["project"]["dependencies"]
    if key == "dev":
        reqs = data["project"]["optional-dependencies"]["dev"]
    return {(r := Requirement(text)).name.lower(): r for text in reqs}


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


@needs_pyproject
def test_dependencies_are_ranges_that_admit_the_tested_torch():
    deps = requirements("run")
    assert deps["torch"].specifier.contains("2.14.1") and deps["torchvision"].specifier.contains("0.29.1")
    assert not deps["torch"].specifier.contains("3.0.0") and not deps["torch"].specifier.contains("2.13.0")
    for name, req in {**deps, **requirements("dev")}.items():
        ops = {s.operator for s in req.specifier}
        assert "==" not in ops, f"{name}: exact pins belong in constraints.txt, not pyproject.toml"
        assert ">=" in ops and "<" in ops, f"{name}: a range from the oldest tested release to below the next major"


@needs_pyproject
def test_build_requires_the_runtime_torch_range():
    """An isolated build (plain `pip install .`) must get a torch the package can then run with."""
    assert str(requirements("build")["torch"].specifier) == str(requirements("run")["torch"].specifier)


@needs_pyproject
@pytest.mark.skipif(not (ROOT / "constraints.txt").is_file(), reason="no constraints.txt beside tests/")
def test_constraints_pin_every_dependency_inside_its_range():
    pinned = pins()
    assert pinned["torch"] == "2.14.1" and pinned["torchvision"] == "0.29.1"
    for name, req in {**requirements("run"), **requirements("dev")}.items():
        assert name in pinned, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {req}"


def run_setup(tmp_path: Path, fake_torch: str | None, *args: str) -> subprocess.CompletedProcess:
    """`python setup.py ARGS` in the source tree, with `fake_torch` as the body of a torch module that shadows
    the real one (None: the real torch)."""
    env = {**os.environ}
    env.pop("ANYCOST_NO_EXT", None)
    if fake_torch is not None:
        (tmp_path / "torch").mkdir()
        (tmp_path / "torch" / "__init__.py").write_text(fake_torch)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "setup.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@needs_source
def test_setup_without_torch_says_to_install_it_and_use_no_build_isolation(tmp_path):
    res = run_setup(tmp_path, "raise ImportError('No module named torch')\n", "--name")
    assert res.returncode != 0
    assert "needs torch (torch>=2.14,<3)" in res.stderr and "--no-build-isolation" in res.stderr, res.stderr


@needs_source
@pytest.mark.parametrize("version", ["2.13.0+cpu", "2.9.1", "1.13.0"])
def test_setup_with_too_old_torch_names_the_requirement(tmp_path, version):
    res = run_setup(tmp_path, f"__version__ = {version!r}\n", "--name")
    assert res.returncode != 0
    assert f"torch {version} is too old to build anycost._C: it needs torch>=2.14,<3" in res.stderr, res.stderr


@needs_source
def test_sdist_file_list_holds_the_cpp_sources_cmake_and_assets(tmp_path):
    """egg_info writes SOURCES.txt, the list `python -m build --sdist` packs (MANIFEST.in + package files)."""
    env = {**os.environ, "ANYCOST_NO_EXT": "1"}  # the list does not depend on the extension; no torch import
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    listed = set((tmp_path / "anycost.egg-info" / "SOURCES.txt").read_text().split())
    wanted = ["setup.py", "pyproject.toml", "MANIFEST.in", "CMakeLists.txt", "constraints.txt", "README.md"]
    for folder, patterns in {"csrc": ("*.cpp", "*.h"), "kernels": ("*.cpp", "*.h", "*.inc", "*.cu", "*.cuh"),
                             "tests/cpp": ("*.cpp", "*.h"), "bench/cpp": ("*.cpp",), "examples/c": ("*.c",),
                             "csrc/capi": ("*.map",), "anycost/assets": ("*",),
                             "anycost/app/static": ("*",)}.items():
        found = [p for pattern in patterns for p in (ROOT / folder).rglob(pattern) if p.is_file()]
        assert found or folder == "kernels", f"nothing under {folder}"
        wanted += [p.relative_to(ROOT).as_posix() for p in found if "__pycache__" not in p.parts]
    missing = sorted(set(wanted) - listed)
    assert not missing, f"the sdist would lack {missing[:10]}"
    stray = sorted(n for n in listed if n.endswith((".so", ".pyc")) or n.endswith("_build_info.json"))
    assert not stray, f"build outputs in the sdist: {stray}"
