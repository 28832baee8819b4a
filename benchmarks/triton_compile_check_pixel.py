"""Compiles the pixel-family Triton kernels for sm_90 and sm_80 without a GPU, for
every dtype and constexpr combination (catches GPU-only compile errors that the
interpreter cannot see): python benchmarks/triton_compile_check_pixel.py"""
import itertools
import os

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fastiqa.backends.triton import pixel as P  # noqa: E402


def compile_for(fn, types, consts, arch):
    sig = {name: ("constexpr" if name in consts else types[name]) for name in fn.arg_names}
    src = ASTSource(fn=fn, signature=sig, constexprs=consts)
    triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": P.NUM_WARPS})


count = 0
for arch in (90, 80):
    for dt in ("fp32", "fp16", "bf16", "fp64"):
        acc, part = (tl.float64, "fp64") if dt == "fp64" else (tl.float32, "fp32")
        types = dict(a_ptr=f"*{dt}", b_ptr=f"*{dt}", w_ptr=f"*{dt}", map_ptr=f"*{dt}", grad_ptr=f"*{dt}",
                     part_ptr=f"*{part}", n="i64", channels="i64", inner="i64", c="fp32", gmul="fp32")
        for kind, wmode, wmap, wgrad in itertools.product(range(3), range(4), (False, True), (False, True)):
            consts = dict(KIND=kind, WMODE=wmode, WRITE_MAP=wmap, WRITE_GRAD=wgrad, ACC=acc,
                          IS_F64=dt == "fp64", BLOCK=P.BLOCK)
            compile_for(P._pixel_fwd_kernel, types, consts, arch)
            count += 1
        types = dict(g_ptr=f"*{dt}", gp_ptr=f"*{dt}", gt_ptr=f"*{dt}", go_ptr=f"*{part}",
                     gscale_ptr=f"*{part}", n="i64")
        for wp, wt in ((True, False), (False, True), (True, True)):
            compile_for(P._pixel_bwd_kernel, types, dict(WRITE_P=wp, WRITE_T=wt, ACC=acc, BLOCK=P.BLOCK), arch)
            count += 1
    print(f"pixel Triton kernels compiled for sm_{arch}")
print(f"{count} kernel variants compiled")
