"""Build script: metadata lives in pyproject.toml; this file only adds the native extension.

`anycost._C` is built from csrc/*.cpp (CPU) and, when torch has CUDA and a real CUDA toolkit is
found, also from csrc/*_cuda.cpp + kernels/cuda/*.cu. Without csrc/anycost_ops.cpp (or with
ANYCOST_NO_EXT=1) the package is pure Python and torch is not even imported here.
Build with the environment's torch: `pip install --no-build-isolation -e .` (the Makefile does it).
Env: ANYCOST_NO_EXT=1 (no extension), ANYCOST_NO_CUDA=1 (CPU only), ANYCOST_NATIVE=1 (-march=native, for
this machine only; by default one build runs on every x86-64 CPU), MAX_JOBS (default 2),
CUDA_HOME (else found from nvcc on PATH), TORCH_CUDA_ARCH_LIST (default: visible GPUs, else 8.0;9.0+PTX).
"""

import os
import re
import shutil
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


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
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError as exc:
        raise SystemExit(
            "anycost: building the native extension needs torch in this environment: install torch "
            "first and use `pip install --no-build-isolation ...` (or set ANYCOST_NO_EXT=1)"
        ) from exc

    def rel(pattern):
        return sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))

    cuda_cpp = rel("csrc/*_cuda.cpp")
    # The torch-free CPU kernels: dispatch.cpp picks the level at run time; isa_<level>.cpp compile the
    # kernels once per instruction-set level through target pragmas (kernels/cpu/isa_kernels.inc).
    sources = [s for s in rel("csrc/*.cpp") if s not in cuda_cpp] + rel("kernels/cpu/*.cpp")
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
    else:
        ext = CppExtension("anycost._C", sources, **kwargs)
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
