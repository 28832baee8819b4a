"""Build of fastiqa._C: fused CPU kernels always, CUDA kernels when possible.

Build without isolation so the extension compiles against the torch you run:
    pip install --no-build-isolation .        (or -e .)

Environment:
    FASTIQA_NO_CUDA=1        never build the CUDA kernels
    FORCE_CUDA=1             build them even when no GPU is visible (needs a CUDA torch + nvcc)
    TORCH_CUDA_ARCH_LIST     GPU archs; default when no GPU is visible: those of
                             7.5;8.0;8.6;8.9;9.0;10.0;12.0 that the nvcc in use supports, +PTX on the last
    MAX_JOBS                 parallel compile jobs (ninja)
"""
import glob
import os

from setuptools import find_namespace_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CXX_FLAGS = ["-O3", "-g0", "-fopenmp", "-fno-math-errno", "-fvisibility=hidden"]
NVCC_FLAGS = ["-O3", "-std=c++17", "-Xptxas=-warn-spills"]


def _want_cuda(torch, cuda_home):
    if os.environ.get("FASTIQA_NO_CUDA", "0") == "1":
        return False
    if torch.version.cuda is None:
        if os.environ.get("FORCE_CUDA", "0") == "1":
            raise RuntimeError("FORCE_CUDA=1 but the installed torch has no CUDA support")
        return False
    if cuda_home is None:
        if os.environ.get("FORCE_CUDA", "0") == "1":
            raise RuntimeError("FORCE_CUDA=1 but no CUDA toolkit was found (set CUDA_HOME)")
        return False
    return True


DEFAULT_ARCHS = ("7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")  # T4 .. Hopper, Blackwell


def _default_arch_list(cuda_home):
    """DEFAULT_ARCHS that `nvcc --list-gpu-arch` knows, +PTX on the newest (forward compatibility)."""
    import subprocess

    try:
        listed = subprocess.run([os.path.join(cuda_home, "bin", "nvcc"), "--list-gpu-arch"], capture_output=True,
                                text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "8.0;8.6;8.9;9.0+PTX"
    known = {a.replace("compute_", "") for a in listed}
    archs = [a for a in DEFAULT_ARCHS if a.replace(".", "") in known] or ["8.0"]
    return ";".join(archs) + "+PTX"


def _extensions():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    rel = lambda pattern: sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))
    sources = ["csrc/bindings.cpp"] + rel("csrc/cpu/*.cpp")
    if _want_cuda(torch, CUDA_HOME):
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = _default_arch_list(CUDA_HOME)
        sources += rel("csrc/cuda/*.cu") + rel("csrc/cuda/*_host.cpp")
        return [
            CUDAExtension(
                "fastiqa._C",
                sources,
                extra_compile_args={"cxx": CXX_FLAGS, "nvcc": NVCC_FLAGS},
                extra_link_args=["-fopenmp"],
                define_macros=[("FASTIQA_WITH_CUDA", "1")],
            )
        ]
    return [
        CppExtension(
            "fastiqa._C",
            sources,
            extra_compile_args={"cxx": CXX_FLAGS},
            extra_link_args=["-fopenmp"],
        )
    ]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(no_python_abi_suffix=False)}


setup(
    # namespace packages too: fastiqa/data and fastiqa/human/static hold package data only
    packages=find_namespace_packages(include=["fastiqa", "fastiqa.*"], exclude=["*.__pycache__"]),
    ext_modules=_extensions(),
    cmdclass=_cmdclass(),
)
