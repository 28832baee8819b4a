"""Build of fastiqa._C: fused CPU kernels always, CUDA kernels when possible.

Build without isolation so the extension compiles against the torch you run:
    pip install --no-build-isolation .        (or -e .)

Environment:
    FASTIQA_NO_CUDA=1        never build the CUDA kernels
    FORCE_CUDA=1             build them even when no GPU is visible (needs a CUDA torch + nvcc)
    TORCH_CUDA_ARCH_LIST     GPU archs; default when no GPU is visible: those of
                             7.5;8.0;8.6;8.9;9.0;10.0;12.0 that the nvcc in use supports, +PTX on the last
    MAX_JOBS                 parallel compile jobs (ninja)
    CXX                      the C++ compiler (GCC, clang, Apple clang; MSVC on Windows)
    FASTIQA_NO_OPENMP=1      build without OpenMP even where the compiler has it
    FASTIQA_CPU_LEVELS       the x86 CPU ISA levels to compile, comma-separated: a subset of
                             baseline,avx2,avx512 (default: all; baseline is always built).
                             Fewer levels build faster (each is ~85 s of g++); the kernels of
                             a level left out fall back to the best one built

Compiler flags: each candidate flag is kept only if the compiler accepts it (a
test compile), so GCC, clang and Apple clang each get flags they understand.
OpenMP is used when the compiler can build and link an OpenMP program; without
it at::parallel_for runs the kernels single-threaded (or on torch's native thread
pool when torch was built with it). The CPU kernels are compiled once per ISA
level (csrc/cpu/variant_*.cpp, see csrc/cpu/isa.h) by target pragmas, so no
-march flag is passed and the one binary runs on every x86-64 / aarch64 CPU.
"""
import functools
import glob
import os
import subprocess
import sys
import tempfile

from setuptools import find_namespace_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
# kept when the compiler accepts them; -fopenmp-simd gives `#pragma omp simd` its
# meaning without the OpenMP runtime; -fno-trapping-math (clang's default) lets GCC
# if-convert the clamps of the quantised PSNR path (else "control flow in loop")
GNU_FLAGS = ["-O3", "-g0", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden", "-fopenmp-simd"]
MSVC_FLAGS = ["/O2", "/openmp:experimental"]
NVCC_FLAGS = ["-O3", "-std=c++17", "-Xptxas=-warn-spills"]


def _cxx():
    from torch.utils.cpp_extension import get_cxx_compiler

    return get_cxx_compiler()  # $CXX, else c++ (cl on Windows): what the build will run


def _is_msvc(cxx):
    return os.path.basename(cxx).lower() in ("cl", "cl.exe")


@functools.lru_cache(maxsize=None)
def _compiles(cxx, flags, source="int main() { return 0; }\n", link=False):
    """True when `cxx flags` compiles (and links, when asked) `source` without error."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.cpp")
        with open(src, "w") as f:
            f.write(source)
        out = os.path.join(tmp, "probe.out" if link else "probe.o")
        cmd = [cxx, *flags, src, "-o", out] if link else [cxx, *flags, "-Werror", "-c", src, "-o", out]
        try:
            return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=120).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


OPENMP_PROBE = "#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def _cpu_flags():
    """(compile flags, link flags, openmp used) for the C++ compiler of this build."""
    cxx = _cxx()
    if _is_msvc(cxx):
        return list(MSVC_FLAGS), [], True
    flags = [f for f in GNU_FLAGS if _compiles(cxx, (f,))]
    openmp = os.environ.get("FASTIQA_NO_OPENMP", "0") != "1" and _compiles(
        cxx, ("-fopenmp",), OPENMP_PROBE, link=True)
    if openmp:
        return flags + ["-fopenmp"], ["-fopenmp"], True
    print(f"fastiqa setup: {cxx} builds no OpenMP program (or FASTIQA_NO_OPENMP=1): "
          "the CPU kernels use at::parallel_for without OpenMP", file=sys.stderr)
    return flags, [], False


CPU_LEVELS = ("baseline", "avx2", "avx512")  # csrc/cpu/variant_<level>.cpp, masked_<level>.cpp


def _cpu_levels():
    """The levels FASTIQA_CPU_LEVELS asks for (all by default), baseline always among them."""
    asked = [v.strip() for v in os.environ.get("FASTIQA_CPU_LEVELS", ",".join(CPU_LEVELS)).split(",") if v.strip()]
    unknown = [v for v in asked if v not in CPU_LEVELS]
    if unknown:
        raise RuntimeError(f"FASTIQA_CPU_LEVELS={os.environ['FASTIQA_CPU_LEVELS']!r}: unknown level(s) "
                           f"{', '.join(unknown)}; expected a subset of {','.join(CPU_LEVELS)}")
    return [lvl for lvl in CPU_LEVELS if lvl in asked or lvl == "baseline"]


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
    levels = _cpu_levels()
    left_out = [lvl for lvl in CPU_LEVELS if lvl not in levels]
    sources = ["csrc/bindings.cpp"] + [p for p in rel("csrc/cpu/*.cpp")
                                       if not any(p.endswith(f"_{lvl}.cpp") for lvl in left_out)]
    cxx_flags, link_flags, _ = _cpu_flags()
    cxx_flags += [f"-DFASTIQA_NO_{lvl.upper()}" for lvl in left_out]
    if left_out:
        print(f"fastiqa setup: CPU levels built: {', '.join(levels)} (FASTIQA_CPU_LEVELS)", file=sys.stderr)
    if _want_cuda(torch, CUDA_HOME):
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = _default_arch_list(CUDA_HOME)
        sources += rel("csrc/cuda/*.cu") + rel("csrc/cuda/*_host.cpp")
        return [
            CUDAExtension(
                "fastiqa._C",
                sources,
                extra_compile_args={"cxx": cxx_flags, "nvcc": NVCC_FLAGS},
                extra_link_args=link_flags,
                define_macros=[("FASTIQA_WITH_CUDA", "1")],
            )
        ]
    return [
        CppExtension(
            "fastiqa._C",
            sources,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=link_flags,
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
