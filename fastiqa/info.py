"""What was built and what runs: fastiqa.info() / `fastiqa info`."""

import os
import platform

import torch

from . import _ext, cpu_isa
from . import weights as _weights
from ._version import __version__
from .cpu_isa import cpu_model
from .ops import _dispatch

# family -> the compiled op whose presence makes the cpu/cuda backends usable. "ssim" covers the
# volumes (5-D): they run in ssim_fwd's kernels (csrc/cpu/ssim_volume.h, csrc/cuda/ssim_volume_host.cpp);
# "ssim_masked" is the masked SSIM's own op pair (mask=, nan_policy="omit").
FAMILIES = {"pixel": "pixel_fwd", "psnr": "psnr_fwd", "gram": "style_fwd", "ssim": "ssim_fwd",
            "ssim_masked": "ssim_masked_fwd", "perceptual": "lpips_head_fwd"}


def _triton_version():
    if not _dispatch.triton_installed():
        return None
    try:
        import triton

        return triton.__version__
    except Exception as exc:  # a broken triton install must not break info()
        return f"import failed: {exc}"


def _isa_in_use() -> str:
    if not _ext.LOADED:
        return "n/a (extension not loaded)"
    try:
        return cpu_isa.active()
    except RuntimeError as exc:  # FASTIQA_CPU_ISA names a level this CPU lacks
        return f"error: {exc}".splitlines()[0]


def _isa_per_family() -> dict:
    """family -> {"level", "why"}: the ISA level each CPU kernel family runs, and why."""
    from . import cpu_tune

    out = {}
    for family in cpu_isa.families():
        try:
            out[family] = {"level": cpu_isa.family_level(family), "why": cpu_tune.reason(family)}
        except RuntimeError as exc:  # FASTIQA_CPU_ISA names a level this CPU lacks
            out[family] = {"level": "error", "why": f"{exc}".splitlines()[0]}
    return out


def collect() -> dict:
    cuda_tensor = torch.device("cuda")
    report = {
        "fastiqa": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": _triton_version(),
        "triton_interpret": _dispatch.triton_interpreted(),
        "extension_loaded": _ext.LOADED,
        "extension_error": _ext.LOAD_ERROR,
        "cpu_isa": _isa_in_use(),
        "cpu_isa_available": cpu_isa.available(),
        "cpu_isa_env": os.environ.get("FASTIQA_CPU_ISA") or None,
        "cpu_isa_families": _isa_per_family(),
        "cpu_model": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "forced_backend": os.environ.get("FASTIQA_BACKEND") or None,
        "families": {},
        "weights": _weights.status(),  # ImageNet backbones found on this machine (LPIPS, DISTS, PerceptualLoss)
    }
    for family, kernel in FAMILIES.items():

        def pick(device):
            try:
                return _dispatch.choose(device, kernel)
            except (RuntimeError, ValueError) as exc:
                return f"error: {exc}"

        report["families"][family] = {
            "built_cpu": _ext.has_kernel(kernel, "CPU"),
            "built_cuda": _ext.has_kernel(kernel, "CUDA"),
            "on_cpu_tensors": pick(torch.device("cpu")),
            "on_cuda_tensors": pick(cuda_tensor),
        }
    return report


def format_report(report: dict) -> str:
    lines = [
        f"fastiqa {report['fastiqa']}  python {report['python']}  torch {report['torch']}"
        f" (cuda {report['torch_cuda'] or 'none'})  triton {report['triton'] or 'not installed'}",
        "compiled kernels: "
        + ("loaded" if report["extension_loaded"] else f"NOT loaded: {report['extension_error']}"),
        f"cpu: {report['cpu_model']}   threads: {report['cpu_threads']}",
        f"cpu vector ISA: {report['cpu_isa']}   available: {', '.join(report['cpu_isa_available']) or 'none'}"
        + (f"   (FASTIQA_CPU_ISA={report['cpu_isa_env']})" if report["cpu_isa_env"] else ""),
        *(f"  {fam:<11} {r['level']:<9} {r['why']}" for fam, r in report.get("cpu_isa_families", {}).items()),
        f"gpu: {report['gpu'] or 'none visible'}" + ("   TRITON_INTERPRET=1" if report["triton_interpret"] else ""),
    ]
    if report["forced_backend"]:
        lines.append(f"FASTIQA_BACKEND={report['forced_backend']} (forced)")
    lines.append(f"{'family':<12} {'built cpu':<10} {'built cuda':<11} {'cpu tensors':<12} cuda tensors")
    for fam, r in report["families"].items():
        built = f"{str(r['built_cpu']):<10} {str(r['built_cuda']):<11}"
        lines.append(f"{fam:<12} {built} {r['on_cpu_tensors']:<12} {r['on_cuda_tensors']}")
    lines.append("(ssim includes the volume (5-D) kernels; ssim_masked: mask= / nan_policy=\"omit\")")
    lines += _weights_lines(report.get("weights", []))
    return "\n".join(lines)


def _weights_lines(rows):
    """Which backbone weights are present (by published file name), and where."""
    present = [r for r in rows if r["path"]]
    absent = [r["name"] for r in rows if not r["path"]]
    lines = ["backbone weights (fastiqa.weights; `fastiqa weights fetch NAME` downloads one):"]
    lines += [f"  {r['name']:<14} {r['path']} ({r['source']})" for r in present]
    if absent:
        lines.append(f"  absent: {', '.join(absent)}")
    return lines


class Report(dict):
    """The report as a dict (machine-readable) that shows as the table (print it, or
    look at it in a REPL)."""

    def __str__(self) -> str:
        return format_report(self)

    __repr__ = __str__


def info() -> Report:
    """Versions, what was built, and which backend each family uses on CPU and CUDA
    tensors; prints nothing (print(fastiqa.info()) shows the table)."""
    return Report(collect())
