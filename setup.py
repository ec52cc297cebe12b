"""Build script: metadata lives in pyproject.toml; this file only adds the native extension.

`anycost._C` is built from csrc/*.cpp (CPU) and, when torch has CUDA and a real CUDA toolkit is
found, also from csrc/*_cuda.cpp + kernels/cuda/*.cu. Without csrc/anycost_ops.cpp (or with
ANYCOST_NO_EXT=1) the package is pure Python and torch is not even imported here.
Build with the environment's torch: `pip install --no-build-isolation .` (`-e .` for development, as the
Makefile does); a plain `pip install .` builds against the torch pip puts in its isolated build environment
([build-system].requires), which must be the torch the package then runs with (README, Installation).
The versions the extension is built against are written to anycost/_build_info.json beside it; at run time
anycost.ops._ext refuses to load an extension built for another torch.
Env: ANYCOST_NO_EXT=1 (no extension), ANYCOST_NO_CUDA=1 (CPU only), ANYCOST_NATIVE=1 (-march=native, for
this machine only; by default one build runs on every x86-64 CPU), MAX_JOBS (default 2),
CUDA_HOME (else found from nvcc on PATH), TORCH_CUDA_ARCH_LIST (default: visible GPUs, else 8.0;9.0+PTX).
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
#: Written beside the extension (in the wheel, and in the source tree for an editable install); read by
#: anycost/ops/_ext.py before it loads the extension.
BUILD_INFO = "_build_info.json"


def _torch_requirement() -> str:
    """The torch requirement of [project].dependencies in pyproject.toml (e.g. "torch>=2.14,<3"), or ""."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^\s*"(torch\s*[<>=!~][^"]*)"', text, flags=re.M)
    return match.group(1) if match else ""


def _release(version: str) -> tuple[int, ...]:
    """(2, 14, 1) for "2.14.1+cu130": the numeric release part, for comparing versions without packaging."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def _import_torch():
    """torch, checked against the minimum of the requirement; SystemExit with what to do otherwise."""
    requirement = _torch_requirement()
    minimum = re.search(r">=\s*([0-9][0-9.]*)", requirement)
    try:
        import torch
    except ImportError as exc:
        raise SystemExit(
            f"anycost: building the native extension anycost._C needs torch ({requirement or 'torch'}) in the "
            "build environment. Install torch first, then `pip install --no-build-isolation .` (builds against "
            "that torch); or set ANYCOST_NO_EXT=1 for a pure-Python install."
        ) from exc
    if minimum and _release(str(torch.__version__)) < _release(minimum.group(1)):
        raise SystemExit(
            f"anycost: torch {torch.__version__} is too old to build anycost._C: it needs {requirement}. "
            "Upgrade torch, then `pip install --no-build-isolation .`."
        )
    return torch


def _compiler_version() -> str:
    """The C++ compiler torch.utils.cpp_extension uses ($CXX, else c++) and its version."""
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([*cxx.split(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return cxx
    return out.splitlines()[0].strip() if out else cxx


def build_info(torch) -> dict:
    """What the extension is built against: the torch that must be the one it runs with, and the rest."""
    return {
        "anycost": re.search(r'__version__ = "([^"]+)"', (ROOT / "anycost" / "_version.py").read_text()).group(1),
        "torch": str(torch.__version__),
        "torch_git": torch.version.git_version,
        "torch_cuda": torch.version.cuda,
        "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
        "python": platform.python_version(),
        "platform": sysconfig.get_platform(),
        "compiler": _compiler_version(),
        "native": os.environ.get("ANYCOST_NATIVE") == "1",
    }


def _cuda_home():
    """Root of the real CUDA toolkit. On these machines `nvcc` on PATH is a wrapper script
    (`exec /usr/local/cuda-X/bin/nvcc "$@"`), so torch's own guess (dirname of nvcc) is wrong."""
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    nvcc = os.path.realpath(nvcc)
    head = Path(nvcc).read_bytes()[:4096]
    if head.startswith(b"#!"):  # wrapper script: take the toolkit path it executes
        match = re.search(rb"(/[^\s\"']+)/bin/nvcc\b", head)
        root = match.group(1).decode() if match else None
    else:
        root = str(Path(nvcc).parent.parent)
    return root if root and (Path(root) / "include" / "cuda_runtime.h").is_file() else None


def _extensions():
    """([extension], cmdclass) for anycost._C, or ([], {}) when there is nothing to build."""
    if not (ROOT / "csrc" / "anycost_ops.cpp").is_file() or os.environ.get("ANYCOST_NO_EXT") == "1":
        return [], {}
    cuda_home = None if os.environ.get("ANYCOST_NO_CUDA") == "1" else _cuda_home()
    if cuda_home:
        os.environ["CUDA_HOME"] = cuda_home  # must be set before torch.utils.cpp_extension is imported
    os.environ.setdefault("MAX_JOBS", "2")
    torch = _import_torch()
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    info = build_info(torch)
    info["cuda"] = False

    class BuildExtensionWithInfo(BuildExtension):
        """BuildExtension that writes BUILD_INFO beside the extension, and rebuilds it when the recorded torch
        (or any other recorded version) differs from this build's, even if no source changed."""

        def run(self):
            record = Path(self.build_lib) / "anycost" / BUILD_INFO
            if not record.is_file() or json.loads(record.read_text()) != info:
                self.force = True
            super().run()
            text = json.dumps(info, indent=1, sort_keys=True) + "\n"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(text)
            if self.inplace:  # editable install: the extension was copied into the source tree
                package_dir = self.get_finalized_command("build_py").get_package_dir("anycost")
                (Path(package_dir) / BUILD_INFO).write_text(text)

    def rel(pattern):
        return sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))

    cuda_cpp = rel("csrc/*_cuda.cpp")
    # The torch-free CPU kernels: dispatch.cpp picks the level at run time; isa_<level>.cpp compile the
    # kernels once per instruction-set level through target pragmas (kernels/cpu/isa_kernels.inc).
    # The C library's synthesis (with its config rules and style products) runs the generator's whole forward
    # as one op (csrc/synthesis_cpu.cpp).
    capi = [f"csrc/capi/{name}.cpp" for name in ("synthesis", "config", "mapping")]
    sources = [s for s in rel("csrc/*.cpp") if s not in cuda_cpp] + capi + rel("kernels/cpu/*.cpp")
    # No -march: one build runs on every x86-64 CPU. ANYCOST_NATIVE=1 opts in to -march=native (a build
    # for this machine only: it may die with an illegal instruction elsewhere).
    native = ["-march=native"] if os.environ.get("ANYCOST_NATIVE") == "1" else []
    kwargs = dict(
        include_dirs=[str(ROOT / "csrc"), str(ROOT / "kernels")],
        extra_compile_args={"cxx": ["-O3", "-fopenmp"] + native, "nvcc": ["-O3"]},
        extra_link_args=["-fopenmp"],
    )
    cuda_sources = cuda_cpp + rel("kernels/cuda/*.cu")
    if cuda_sources and torch.version.cuda and cuda_home:
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"  # no GPU to detect: A100/H100 (+PTX)
        ext = CUDAExtension(
            "anycost._C", sources + cuda_sources, define_macros=[("ANYCOST_WITH_CUDA", "1")], **kwargs
        )
        info["cuda"] = True
    else:
        ext = CppExtension("anycost._C", sources, **kwargs)
    return [ext], {"build_ext": BuildExtensionWithInfo}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
