"""Compiles the SSIM-family Triton kernels for sm_90 and sm_80 without a GPU (catches
GPU-only compile errors the interpreter cannot see, and reports shared memory per program):
python benchmarks/triton_compile_check_ssim.py"""
import os

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fastiqa.backends.triton import ssim as S  # noqa: E402

SMEM_LIMIT = 227 * 1024  # H100 / H200 per-block opt-in; A100 has 163 KiB


def compile_for(fn, types, consts, arch):
    sig = {name: ("constexpr" if name in consts else types[name]) for name in fn.arg_names}
    src = ASTSource(fn=fn, signature=sig, constexprs=consts)
    k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": 8})
    return k.metadata.shared


INTS = ("C", "H", "W", "Ho", "Wo")
STRIDES = ("sxn", "sxc", "sxh", "sxw", "syn", "syc", "syh", "syw")
# every padding at the default window and the smallest / largest windows on sm_90; the
# default window at reflect padding on sm_80 (each compile takes seconds: kept to ~50)
CONFIGS = {90: [(11, 0), (11, 1), (11, 2), (3, 2), (31, 2)], 80: [(11, 2)]}
count, worst = 0, {}
for arch in (90, 80):
    for dt in ("fp32", "bf16"):  # float16 and bfloat16 share the code (loads converted to float32)
        base = {name: "i32" for name in INTS}
        base.update({name: "i64" for name in STRIDES})
        for win, padding in CONFIGS[arch]:
            off = 0 if padding == 0 else win // 2
            types = dict(base, x_ptr=f"*{dt}", y_ptr=f"*{dt}", g_ptr="*fp32", k_ptr="*fp32", map_ptr=f"*{dt}",
                         part_ptr="*fp32", smn="i64", smc="i64", smh="i64", smw="i64")
            for flags in (False, True):
                consts = dict(WIN=win, OFF=off, PADDING=padding, WANT_MAP=flags, WANT_L1=flags, ACC=tl.float32,
                              IEEE=True, OUT=S.OUT, IN=S.IN)
                smem = compile_for(S._ssim_fwd_kernel, types, consts, arch)
                worst["fwd"] = max(worst.get("fwd", 0), smem)
                count += 1
            m, src = S._grad_tiles(win)
            types = dict(base, x_ptr=f"*{dt}", y_ptr=f"*{dt}", g_ptr="*fp32", k_ptr="*fp32", w_ptr="*fp32",
                         dmap_ptr=f"*{dt}", gx_ptr=f"*{dt}", gy_ptr=f"*{dt}", sdn="i64", sdc="i64", sdh="i64",
                         sdw="i64", sgn="i64", sgc="i64", sgh="i64", sgw="i64")
            for has_dmap in (False, True):
                consts = dict(WIN=win, OFF=off, PADDING=padding, HAS_DMAP=has_dmap, WRITE_X=True, WRITE_Y=True,
                              ACC=tl.float32, IEEE=True, M=m, SRC=src)
                smem = compile_for(S._ssim_grad_kernel, types, consts, arch)
                worst["grad"] = max(worst.get("grad", 0), smem)
                count += 1
    print(f"ssim Triton kernels compiled for sm_{arch}")
for name, smem in worst.items():
    assert smem <= SMEM_LIMIT, f"{name} kernel needs {smem} B of shared memory"
print(f"{count} kernel variants compiled; most shared memory per program (bytes): {worst}")
