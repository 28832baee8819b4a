"""Compiles the Triton kernels of every family (pixel, psnr, ssim with its volume and masked
kernels, gram, perceptual) for real
GPUs (sm_90, sm_80) without one: catches the GPU-only compile errors that the
interpreter cannot see and reports shared memory per program.

    python tests/gpu/triton_compile_check.py            one variant per distinct code path (~3 min of CPU)
    python tests/gpu/triton_compile_check.py --full     every dtype x constexpr combination (~15 min of CPU)
    python tests/gpu/triton_compile_check.py --family ssim

Prints one line per compiled kernel: [triton] <family> <kernel> sm_<arch> <dtype> <constexprs> (<s>, <smem> B).
"""

import argparse
import itertools
import multiprocessing
import os
import sys
import time

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from fastiqa.backends.triton import gram as G  # noqa: E402
from fastiqa.backends.triton import perceptual as H  # noqa: E402
from fastiqa.backends.triton import pixel as P  # noqa: E402
from fastiqa.backends.triton import psnr as Q  # noqa: E402
from fastiqa.backends.triton import ssim as S  # noqa: E402
from fastiqa.backends.triton import ssim_masked as SM  # noqa: E402
from fastiqa.backends.triton import ssim_volume as SV  # noqa: E402

SMEM_LIMIT = {90: 227 * 1024, 80: 163 * 1024}  # per-block opt-in shared memory (H100/H200, A100)


def _acc(dt):
    return (tl.float64, "fp64") if dt == "fp64" else (tl.float32, "fp32")


def _types(fn, dt, consts, ptrs=None, i64=(), fp32=()):
    """The Triton type of each runtime argument of kernel fn: pointers to dt unless `ptrs` maps
    the name to another element type, integers i32 unless named in i64, floats named in fp32."""
    ptrs = ptrs or {}
    return {name: f"*{ptrs.get(name, dt)}" if name.endswith("_ptr") else
            "i64" if name in i64 else "fp32" if name in fp32 else "i32"
            for name in fn.arg_names if name not in consts}


def _grid(full, axes, few):
    """Every combination of `axes` (--full) or the hand-picked `few`, one per distinct code path."""
    return list(itertools.product(*axes)) if full else few


ARCHS = (90, 80)
DTYPES = ("fp32", "fp16", "bf16", "fp64")
WRITES = ((True, False), (False, True), (True, True))


# Each variant: (family, kernel function, arch, dtype, types, constexprs, num_warps)
def pixel_variants(full):
    out = []
    fwd = _grid(full, (ARCHS, DTYPES, range(3), range(4), (False, True), (False, True)),
                [(90, "fp32", 0, 0, False, True), (90, "bf16", 1, 2, True, False), (90, "fp64", 2, 3, True, True),
                 (90, "fp16", 2, 1, False, False), (80, "bf16", 2, 2, True, True)])
    for arch, dt, kind, wmode, wmap, wgrad in fwd:
        acc, part = _acc(dt)
        consts = dict(KIND=kind, WMODE=wmode, WRITE_MAP=wmap, WRITE_GRAD=wgrad, ACC=acc, IS_F64=dt == "fp64",
                      BLOCK=P.BLOCK)
        types = _types(P._pixel_fwd_kernel, dt, consts, {"part_ptr": part}, ("n", "channels", "inner"), ("c", "gmul"))
        out.append(("pixel", P._pixel_fwd_kernel, arch, dt, types, consts, P.NUM_WARPS))
    few = [(90, "fp32", (True, True)), (80, "bf16", (True, False))]
    for arch, dt, (wp, wt) in _grid(full, (ARCHS, DTYPES, WRITES), few):
        acc, part = _acc(dt)
        consts = dict(WRITE_P=wp, WRITE_T=wt, ACC=acc, BLOCK=P.BLOCK)
        types = _types(P._pixel_bwd_kernel, dt, consts, {"go_ptr": part, "gscale_ptr": part}, ("n",))
        out.append(("pixel", P._pixel_bwd_kernel, arch, dt, types, consts, P.NUM_WARPS))
    return out


def psnr_variants(full):
    out = []
    fwd = _grid(full, (ARCHS, DTYPES, (0, 1), (False, True), (False, True), (False, True)),
                [(90, "fp32", 0, False, False, True), (90, "bf16", 1, True, True, False),
                 (90, "fp64", 0, True, False, True), (80, "fp16", 0, False, False, True)])
    for arch, dt, kind, luma, quant, wgrad in fwd:
        if quant and wgrad:
            continue  # the op never asks for a gradient of the quantised statistic
        acc, part = _acc(dt)
        consts = dict(WR=Q.Y_WEIGHTS[0] / 255.0, WG=Q.Y_WEIGHTS[1] / 255.0, WB=Q.Y_WEIGHTS[2] / 255.0, KIND=kind,
                      LUMA=luma, QUANT=quant, WRITE_GRAD=wgrad, ACC=acc,
                      MAGIC=6755399441055744.0 if dt == "fp64" else 12582912.0, BLOCK=Q.BLOCK)
        types = _types(Q._psnr_fwd_kernel, dt, consts, {"part_ptr": part}, ("sn", "sc", "sh", "sw"), ("qscale", "gmul"))
        out.append(("psnr", Q._psnr_fwd_kernel, arch, dt, types, consts, Q.NUM_WARPS))
    few = [(90, "fp32", (True, True)), (80, "bf16", (True, False))]
    for arch, dt, (wx, wy) in _grid(full, (ARCHS, DTYPES, WRITES), few):
        acc, part = _acc(dt)
        consts = dict(WRITE_X=wx, WRITE_Y=wy, ACC=acc, BLOCK=Q.BLOCK)
        types = _types(Q._psnr_bwd_kernel, dt, consts, {"go_ptr": part}, ("per",))
        out.append(("psnr", Q._psnr_bwd_kernel, arch, dt, types, consts, Q.NUM_WARPS))
    return out


def ssim_variants(full):
    out = []
    strides = [f"s{t}{k}" for t in "xymdg" for k in "nchw"]
    f32 = {name: "fp32" for name in ("g_ptr", "k_ptr", "w_ptr", "part_ptr")}
    # (arch, dtype, window, padding, flags); float16 and bfloat16 share the code (loads converted to float32)
    configs = (
        [(a, dt, w, p, f) for a, cfgs in ((90, [(11, 0), (11, 1), (11, 2), (3, 2), (31, 2)]), (80, [(11, 2)]))
         for dt in ("fp32", "bf16") for w, p in cfgs for f in (False, True)]
        if full else [(90, "fp32", 11, 2, True), (90, "bf16", 31, 0, False), (80, "bf16", 11, 1, True)]
    ) + [(90, "fp32", (7, 11), 2, True)]  # a per-axis window
    for arch, dt, win, padding, flag in configs:
        win = win if isinstance(win, tuple) else (win, win)
        off = (0, 0) if padding == 0 else (win[0] // 2, win[1] // 2)
        axes = dict(WIN_R=win[0], WIN_C=win[1], OFF_R=off[0], OFF_C=off[1])
        consts = dict(**axes, PADDING=padding, WANT_MAP=flag, WANT_L1=flag, ACC=tl.float32, IEEE=True,
                      OUT=S.OUT, IN=S.IN)
        out.append(("ssim", S._ssim_fwd_kernel, arch, dt, _types(S._ssim_fwd_kernel, dt, consts, f32, strides),
                    consts, 8))
        m, src = S._grad_tiles(win)
        consts = dict(**axes, PADDING=padding, HAS_DMAP=flag, WRITE_X=True, WRITE_Y=True, ACC=tl.float32,
                      IEEE=True, M=m, SRC=src)
        out.append(("ssim", S._ssim_grad_kernel, arch, dt, _types(S._ssim_grad_kernel, dt, consts, f32, strides),
                    consts, 8))
    return out


def ssim_volume_variants(full):
    """The volume kernels (fastiqa/backends/triton/ssim_volume.py): depth blur, slice SSIM,
    the (H, W) adjoint and the depth adjoint; float32 accumulation (float64 runs the reference)."""
    out = []
    vol = [f"s{t}{k}" for t in "xydgm" for k in "ncdhw"] + ["QS", "TS", "smk", "sdk"]
    f32 = {name: "fp32" for name in ("g_ptr", "q_ptr", "k_ptr", "w_ptr", "part_ptr", "t_ptr")}
    # the last entry of each: the components (COMP: l, c, s and their maps; the fifth adjoint volume)
    configs = _grid(full, (ARCHS, ("fp32", "bf16"), ((11, 0), (11, 1), (11, 2), (7, 2)), (False, True)),
                    [(90, "fp32", (11, 2), False), (90, "bf16", (11, 0), True), (80, "fp16", (7, 1), True)])
    for arch, dt, (win, padding), comp in configs:
        off = 0 if padding == 0 else win // 2
        axes = dict(WIN_R=win, WIN_C=win, OFF_R=off, OFF_C=off)
        nw = 6 if comp else 3
        kernels = [
            (SV._depth_kernel, dict(WD=win, OFFD=off, PADDING=padding, HAS_MASK=False, ACC=tl.float32,
                                    BLOCK=SV.BLOCK), 4),
            (SV._plane_kernel, dict(**axes, PADDING=padding, WANT_MAP=True, COMP=comp, NP=5 if comp else 2,
                                    ACC=tl.float32, IEEE=True, OUT=S.OUT, IN=S.IN), 8),
            (SV._adjoint_hw_kernel, dict(**axes, PADDING=padding, HAS_DMAP=True, COMP=comp, NW=nw, ACC=tl.float32,
                                         IEEE=True, M=SV.GRAD_M, SRC=SV.GRAD_SRC), 8),
            (SV._depth_adjoint_kernel, dict(WD=win, OFFD=off, MIRRORS=3 if padding == 2 else 1, ACC=tl.float32,
                                            HAS_MASK=padding == 1 and not comp, WRITE_X=True, WRITE_Y=True,
                                            COMP=comp, NW=nw, BLOCK=SV.BLOCK), 4),
        ]
        for fn, consts, warps in kernels:
            out.append(("ssim_volume", fn, arch, dt, _types(fn, dt, consts, f32, vol), consts, warps))
    return out


def ssim_masked_variants(full):
    """The masked-SSIM kernels (fastiqa/backends/triton/ssim_masked.py): forward and gradient of
    images, and the volume kernels (depth blur of the six products, slice SSIM, (H, W) adjoint);
    the mask is read in float32 (float64 runs the reference)."""
    out = []
    strides = [f"s{t}{k}" for t in "xymdgp" for k in "nchw"]
    vol = [f"s{t}{k}" for t in "xymdp" for k in "ncdhw"] + ["QS", "TS"]
    f32 = {name: "fp32" for name in ("m_ptr", "g_ptr", "k_ptr", "w_ptr", "part_ptr", "q_ptr", "t_ptr")}
    configs = _grid(full, (ARCHS, ("fp32", "bf16"), ((11, 0), (11, 1), (11, 2), (7, 2))),
                    [(90, "fp32", (11, 2)), (90, "bf16", (11, 1)), (80, "fp16", (7, 0))])
    for arch, dt, (win, padding) in configs:
        off = 0 if padding == 0 else win // 2
        axes = dict(WIN_R=win, WIN_C=win, OFF_R=off, OFF_C=off)
        consts = dict(**axes, PADDING=padding, WANT_MAP=True, ACC=tl.float32, IEEE=True, OUT=S.OUT, IN=S.IN)
        out.append(("ssim_masked", SM._masked_fwd_kernel, arch, dt,
                    _types(SM._masked_fwd_kernel, dt, consts, f32, strides), consts, 8))
        m, src = S._grad_tiles((win, win))
        consts = dict(**axes, PADDING=padding, HAS_DMAP=True, WRITE_X=True, WRITE_Y=True, ACC=tl.float32, IEEE=True,
                      M=m, SRC=src)
        out.append(("ssim_masked", SM._masked_grad_kernel, arch, dt,
                    _types(SM._masked_grad_kernel, dt, consts, f32, strides), consts, 8))
        kernels = [
            (SV._depth_kernel, dict(WD=win, OFFD=off, PADDING=padding, HAS_MASK=True, ACC=tl.float32,
                                    BLOCK=SV.BLOCK), 4),
            (SM._masked_vol_fwd_kernel, dict(**axes, PADDING=padding, WANT_MAP=True, ACC=tl.float32, IEEE=True,
                                             OUT=S.OUT, IN=S.IN), 8),
            (SM._masked_vol_adjoint_kernel, dict(**axes, PADDING=padding, HAS_DMAP=True, ACC=tl.float32, IEEE=True,
                                                 M=m, SRC=src), 8),
        ]
        for fn, consts, warps in kernels:
            out.append(("ssim_masked", fn, arch, dt, _types(fn, dt, consts, f32, vol), consts, warps))
    return out


def gram_variants(full):
    out = []
    ptrs = {"tab_ptr": "i32", "part_ptr": "fp32", "q_ptr": "fp32"}
    for arch, dt, has_y in _grid(full, (ARCHS, DTYPES[:3], (True, False)),
                                 [(90, "fp32", True), (90, "bf16", False), (80, "fp16", True)]):
        consts = dict(HAS_Y=has_y, ACC=tl.float32, IEEE=dt == "fp32", UP=False, BC=64, BK=64)
        out.append(("gram", G._tiles_kernel, arch, dt, _types(G._tiles_kernel, dt, consts, ptrs, ("sN",)), consts, 4))
    for arch, dt in _grid(full, (ARCHS, DTYPES[:3]), [(90, "fp16"), (80, "fp32")]):
        consts = dict(ACC=tl.float32, IEEE=dt == "fp32", UP=False, BC=64, BK=64)
        types = _types(G._apply_kernel, dt, consts, ptrs, ("sN",), ("alpha",))
        out.append(("gram", G._apply_kernel, arch, dt, types, consts, 4))
    for arch, mode, cr in _grid(full, (ARCHS, range(3), range(3)), [(90, 0, 0), (90, 1, 1), (90, 2, 2)]):
        consts = dict(MODE=mode, CR=cr, NEED_P=True, ACC=tl.float32, BC=64)
        types = _types(G._finalize_kernel, "fp32", consts, ptrs, (), ("scale", "gmul"))
        out.append(("gram", G._finalize_kernel, arch, "fp32", types, consts, 4))
    return out


def perceptual_variants(full):
    """The LPIPS / DISTS head kernels: feature dtypes x archs (C, the channel count, is a
    compile-time constant of the LPIPS kernels: VGG16's 64 and 512)."""
    out = []
    combos = _grid(full, (ARCHS, DTYPES, (64, 512)), [(90, "fp32", 64), (80, "bf16", 512), (90, "fp64", 64)])
    for arch, dt, c in combos:
        acc, part = _acc(dt)
        ptrs = {name: part for name in ("w_ptr", "part_ptr", "go_ptr", "mx_ptr", "my_ptr", "coef_ptr")}
        kernels = [(H._lpips_fwd_kernel, dict(C=c, EPS=H.LPIPS_EPS, ACC=acc, BLOCK=H.BLOCK_P)),
                   (H._lpips_bwd_kernel, dict(C=c, EPS=H.LPIPS_EPS, WRITE_X=True, WRITE_Y=True, ACC=acc,
                                              BLOCK=H.BLOCK_P))]
        if c == combos[0][2] or not full:
            kernels += [(H._dists_sums_kernel, dict(CENTRED=centred, ACC=acc, BLOCK=H.BLOCK_HW))
                        for centred in (False, True)]
            kernels.append((H._dists_grad_kernel, dict(ACC=acc, BLOCK=H.BLOCK_HW)))
        for fn, consts in kernels:
            out.append(("perceptual", fn, arch, dt, _types(fn, dt, consts, ptrs), consts, 4))
    return out


FAMILIES = {"pixel": pixel_variants, "psnr": psnr_variants, "ssim": ssim_variants,
            "ssim_volume": ssim_volume_variants, "ssim_masked": ssim_masked_variants, "gram": gram_variants,
            "perceptual": perceptual_variants}


def compile_variant(fn, arch, types, consts, num_warps):
    sig = {name: ("constexpr" if name in consts else types[name]) for name in fn.arg_names}
    k = triton.compile(
        ASTSource(fn=fn, signature=sig, constexprs=consts),
        target=GPUTarget("cuda", arch, 32),
        options={"num_warps": num_warps},
    )
    return k.metadata.shared


def _short(consts):
    return " ".join(f"{k}={v}" for k, v in consts.items() if not isinstance(v, float) and k not in ("BLOCK", "ACC"))


_VARIANTS = []  # (family, kernel, arch, dtype, types, constexprs, num_warps): filled by main, read by workers


def _compile_one(i):
    """Compiles _VARIANTS[i] (in a worker process): (report line, ok)."""
    fam, fn, arch, dt, types, consts, warps = _VARIANTS[i]
    t = time.time()
    name = fn.fn.__name__ if hasattr(fn, "fn") else str(fn)
    try:
        smem = compile_variant(fn, arch, types, consts, warps)
        ok = smem <= SMEM_LIMIT[arch]
        note = f"{smem} B" + ("" if ok else f" > {SMEM_LIMIT[arch]} B limit")
    except Exception as e:  # noqa: BLE001 - each compile failure is reported by name
        ok, note = False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    line = f"[triton] {fam} {name} sm_{arch} {dt} {_short(consts)} ({time.time() - t:.1f}s, {note})"
    return line + ("" if ok else "  FAIL"), ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="every dtype x constexpr combination (slow)")
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES), help="families; default: all")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="compiles run in this many forked processes (default: one per CPU)")
    args = ap.parse_args(argv)
    t0, failures = time.time(), []
    families = args.family or list(FAMILIES)
    for family in families:
        _VARIANTS.extend(FAMILIES[family](args.full))
    # each compile is independent (Triton's front end in Python, then ptxas): forked workers
    # inherit _VARIANTS and the imported kernels; results print in the order of the list
    with multiprocessing.get_context("fork").Pool(max(1, args.jobs)) as pool:
        for i, (line, ok) in enumerate(pool.imap(_compile_one, range(len(_VARIANTS)))):
            print(line, flush=True)
            if not ok:
                failures.append(line)
            fam = _VARIANTS[i][0]
            if i + 1 == len(_VARIANTS) or _VARIANTS[i + 1][0] != fam:
                count = sum(1 for v in _VARIANTS if v[0] == fam)
                print(f"[triton] {fam}: {count} kernel variants done", flush=True)
    print(f"[triton] {len(_VARIANTS)} kernel variants compiled in {time.time() - t0:.0f}s "
          f"({args.jobs} processes), {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
