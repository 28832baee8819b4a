"""Compiles the gram-family Triton kernels for sm_90 and sm_80 without a GPU (catches
GPU-only compile errors the interpreter cannot see): python benchmarks/triton_compile_check_gram.py"""
import os
os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
from fastiqa.backends.triton import gram as g
import triton.language as tl

def sig(fn, types, consts):
    s = {}
    for name in fn.arg_names:
        s[name] = "constexpr" if name in consts else types[name]
    return s

def comp(fn, types, consts, arch):
    src = ASTSource(fn=fn, signature=sig(fn, types, consts), constexprs=consts)
    k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": 4})
    return k

for arch in (90, 80):
    for dt in ("fp32", "fp16", "bf16"):
        acc = tl.float32
        base = dict(N="i32", C="i32", K="i32", sN="i64", sC="i32", sK="i32", ntri="i32", kper="i32")
        for has_y in (True, False):
            t = dict(base, x_ptr=f"*{dt}", y_ptr=f"*{dt}", tab_ptr="*i32", part_ptr="*fp32")
            comp(g._tiles_kernel, t, dict(HAS_Y=has_y, ACC=acc, IEEE=dt == "fp32", UP=False, BC=64, BK=64), arch)
        t = dict(q_ptr="*fp32", f_ptr=f"*{dt}", o_ptr=f"*{dt}", C="i32", K="i32", sN="i64", sC="i32", sK="i32", qN="i32", alpha="fp32")
        comp(g._apply_kernel, t, dict(ACC=acc, IEEE=dt == "fp32", UP=False, BC=64, BK=64), arch)
    for mode in (0, 1, 2):
        for cr in (0, 1, 2):
            t = dict(part_ptr="*fp32", tab_ptr="*i32", t_ptr="*fp32", out_ptr="*fp32", loss_ptr="*fp32", N="i32", C="i32",
                     S="i32", ntri="i32", tN="i32", scale="fp32", gmul="fp32")
            comp(g._finalize_kernel, t, dict(MODE=mode, CR=cr, NEED_P=True, ACC=acc, BC=64), arch)
    print("compiled for sm", arch)
