"""The harness's test cases: every launcher of the five CUDA families on random inputs,
judged against the float64 oracle (fastiqa.backends.reference in float64) by the rule
of fastiqa.testing (k x the same-precision reference's error), as `fastiqa selftest`.

cases(family, level) -> [Case]; level "fast" (a representative subset), "full" (every
dtype x code path x emulated GPU, and the "large" cases), "sanitize" (small subset for
TSan / ASan), "large" (every reduction kernel over more than 256 partial blocks, where
a finalize's threads each sum several partials; the pixel finalize at its 65536-block
cap; batches past the 65535 limit of a grid's y / z dimension).

A case with `xfail` set documents a known limitation: run_family counts a launch refused
by the emulated GPU (EmuError) as expected, any other failure as a failure, and its
success as a failure too (the limitation is gone: drop the mark).
"""

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from emu import DTYPES, GPUS

import fastiqa.backends.reference as R
from fastiqa.selftest import check

TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass
class Case:
    family: str
    name: str
    gpu: str
    run: Callable  # run(driver) -> None, raises AssertionError on a mismatch
    xfail: str = ""  # why this case is expected to fail (a known limitation), else ""

    @property
    def id(self):
        return f"{self.family}-{self.name}-{self.gpu}"


def _acc(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _nan(shape, dtype, like=None):
    t = torch.empty_like(like, dtype=dtype) if like is not None else torch.empty(shape, dtype=dtype)
    return t.fill_(float("nan"))


def _check(result, f64, same, what):
    # fastiqa.testing's rule, with the selftest's floor for float64 results (one rule, one place)
    check(result, f64, same, what)


def _check_against(fn, inputs, args, outputs, what):
    """The driver's arrays against reference fn(*inputs, *args) run in float64 and in the inputs'
    own dtype: outputs lists (driver array or None to skip, name) per output of fn."""
    ref64 = fn(*[None if t is None else t.double() for t in inputs], *args)
    ref = fn(*inputs, *args)
    for (got, name), r64, r in zip(outputs, ref64, ref):
        if got is not None:
            _check(got, r64, r, f"{what} {name}")


def _aligned(arrays, offsets, names):
    """Whether every array of `names` (not None) starts 16-byte aligned at its element offset."""
    return all(
        (offsets.get(k, 0) * arrays[k].element_size()) % 16 == 0 for k in names if arrays.get(k) is not None
    )


def _check_path(drv, vector, what):
    """The launcher took the 128-bit path (vector) or the element path (csrc/cuda/vec.cuh)."""
    if vector and drv.vector_ops == 0:
        raise AssertionError(f"{what}: no 128-bit access although every pointer and stride is 16-byte aligned")
    if not vector and drv.vector_ops:
        raise AssertionError(f"{what}: {drv.vector_ops} 128-bit accesses on the element path (misaligned input)")


def _same_bits(a, b, what):
    """Bitwise equality (the two paths give the same sums)."""
    ia = a.contiguous().view(torch.uint8) if a.dim() else a.reshape(1).view(torch.uint8)
    ib = b.contiguous().view(torch.uint8) if b.dim() else b.reshape(1).view(torch.uint8)
    if not torch.equal(ia, ib):
        raise AssertionError(f"{what}: the 128-bit and the element path differ bitwise")


def _both_paths(call, what):
    """Runs call(offsets) aligned and with every array one element in; the results must
    match bitwise, the first on the 128-bit path, the second on the element path."""

    def run(drv, gpu):
        got = {}
        for off in (0, 1):
            got[off] = call(drv, gpu, off)
            _check_path(drv, off == 0, f"{what} offset {off}")
        for k, v in got[0].items():
            _same_bits(v, got[1][k], f"{what} {k}")

    return run


def _inputs(shape, dtype, seed, channels_last=False, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    b = (torch.rand(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    if channels_last:
        a, b = a.contiguous(memory_format=torch.channels_last), b.contiguous(memory_format=torch.channels_last)
    return a, b


# ------------------------------------------------------------------------------------ pixel
def _pixel_fwd(dt, shape, kind, reduction, wmode, need_grad, off=0):
    """off: every array starts that many elements into its buffer (misaligned when not a
    multiple of 16 bytes): the element path, else the 128-bit one."""

    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        cl = wmode == 3
        a, b = _inputs(shape, dtype, 1, channels_last=cl)
        n = a.numel()
        w = None
        channels, inner = 1, 1
        if wmode == 1:
            w = _inputs(shape, dtype, 2, channels_last=cl)[0]
        elif wmode in (2, 3):
            w = _inputs((shape[0], 1) + shape[2:], dtype, 2)[0]
            channels, inner = shape[1], math.prod(shape[2:])
        acc = _acc(dtype)
        arrays = {
            "a": a,
            "b": b,
            "w": w,
            "map": _nan(None, dtype, a) if reduction == 0 else None,
            "grad": _nan(None, dtype, a) if need_grad else None,
            "out": _nan((), acc),
            "gscale": _nan((), acc),
        }
        nums = dict(
            dtype=DTYPES[dt],
            n=n,
            wmode=wmode,
            channels=channels,
            inner=inner,
            kind=kind,
            c=1e-6,
            reduction=reduction,
            norm_scale=1.0,
        )
        offsets = off if isinstance(off, dict) else {k: off for k in arrays}
        got = drv.call("pixel_fwd", gpu, nums, arrays, offsets)
        _check_path(drv, _aligned(arrays, offsets, ("a", "b", "map", "grad") + (("w",) if wmode == 1 else ())),
                    "pixel fwd")
        _check_against(R.pixel_fwd, (a, b, w), (wmode, channels, inner, kind, 1e-6, reduction, 1.0, need_grad),
                       [(got["map"] if reduction == 0 else got["out"], "out"), (got["gscale"], "gscale"),
                        (got["grad"] if need_grad else None, "grad")], "pixel")
        return got

    return run


def _pixel_bwd(dt, shape, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        g, _ = _inputs(shape, dtype, 3)
        acc = _acc(dtype)
        go, gs = torch.tensor(0.7, dtype=acc), torch.tensor(1.3, dtype=acc)
        arrays = {"g": g, "gp": _nan(None, dtype, g), "gt": _nan(None, dtype, g), "grad_out": go, "gscale": gs}
        offsets = {k: off for k in ("g", "gp", "gt")}
        got = drv.call("pixel_bwd", gpu, dict(dtype=DTYPES[dt], n=g.numel()), arrays, offsets)
        _check_path(drv, _aligned(arrays, offsets, ("g", "gp", "gt")), "pixel bwd")
        p64, t64 = R.pixel_bwd(g.double(), go.double(), gs.double(), True, True)
        p, t = R.pixel_bwd(g, go, gs, True, True)
        _check(got["gp"], p64, p, "pixel grad_pred")
        _check(got["gt"], t64, t, "pixel grad_target")
        return got

    return run


def pixel_cases(level):
    out = []
    shapes = [(2, 3, 5, 7), (1, 3, 47, 41)]  # one block; several blocks of the grid-stride loop
    if level == "full":
        combos = itertools.product(DTYPES, (0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3), (False, True), shapes)
    else:
        base = [
            ("float32", 2, 2, 2, True),
            ("float64", 1, 3, 1, True),
            ("float16", 0, 0, 3, True),
            ("bfloat16", 2, 1, 0, False),
            ("float32", 0, 3, 3, True),
        ]
        if level == "sanitize":
            base = base[:2]
        combos = [c + (s,) for c in base for s in shapes[: 1 if level == "sanitize" else 2]]
    for dt, kind, red, wm, ng, shape in combos:
        out.append(
            Case(
                "pixel",
                f"fwd-{dt}-k{kind}-r{red}-w{wm}-g{int(ng)}-{'x'.join(map(str, shape))}",
                "sm_80",
                _pixel_fwd(dt, shape, kind, red, wm, ng),
            )
        )
    for dt in DTYPES if level != "sanitize" else ("float32",):
        out.append(Case("pixel", f"bwd-{dt}", "sm_80", _pixel_bwd(dt, (3, 2, 19, 23))))
    # both load paths (csrc/cuda/vec.cuh): misaligned starts (one element in: the element path),
    # odd sizes (a partial last chunk), the same bits on both paths
    both = [("float32", 2, 2, 1, True), ("float16", 1, 0, 3, True), ("float64", 0, 1, 2, False)]
    if level == "sanitize":
        both = both[:1]
    for dt, kind, red, wm, ng in both:
        for shape in [(1, 3, 7, 11), (2, 3, 16, 16)][: 1 if level == "sanitize" else 2]:
            sid = f"{dt}-k{kind}-r{red}-w{wm}-{'x'.join(map(str, shape))}"
            out.append(Case("pixel", f"fwd-paths-{sid}", "sm_80",
                            _both_paths(lambda d, g, o, a=(dt, shape, kind, red, wm, ng): _pixel_fwd(*a, off=o)(d, g),
                                        "pixel fwd")))
        out.append(Case("pixel", f"fwd-misaligned-grad-only-{dt}", "sm_80",
                        _pixel_fwd(dt, (1, 3, 7, 11), kind, 0, wm, True, off={"grad": 1})))
        out.append(Case("pixel", f"bwd-paths-{dt}", "sm_80",
                        _both_paths(lambda d, g, o, dt=dt: _pixel_bwd(dt, (1, 3, 7, 11), off=o)(d, g), "pixel bwd")))
    return out


# ------------------------------------------------------------------------------------ psnr
def _psnr_fwd(dt, shape, kind, crop, luma, quantize, cl, data_range=1.0, off=0):
    """off: x, y and grad start that many elements into their buffers (int), or per array (dict)."""

    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y = _inputs(shape, dtype, 4, channels_last=cl, scale=data_range)
        n, c, h, w = shape
        need_grad = not quantize
        grad = torch.zeros_like(x) if need_grad else None
        st = x.stride()
        nums = dict(
            dtype=DTYPES[dt],
            n=n,
            c=c,
            hh=h - 2 * crop,
            ww=w - 2 * crop,
            sn=st[0],
            sc=st[1],
            sh=st[2],
            sw=st[3],
            crop=crop,
            kind=kind,
            luma=int(luma),
            quantize=int(quantize),
            data_range=data_range,
        )
        arrays = {"x": x, "y": y, "grad": grad, "stat": _nan((n,), _acc(dtype))}
        offsets = off if isinstance(off, dict) else {k: off for k in ("x", "y", "grad")}
        got = drv.call("psnr_fwd", gpu, nums, arrays, offsets)
        # flat (no crop, sample i at element i; Y: of each plane) and 16-byte aligned images and planes
        es = x.element_size()
        dense = st[3] == 1 and st[2] == w and (c == 1 or st[1] == h * w)
        dense_cl = c > 1 and st[1] == 1 and st[3] == c and st[2] == w * c
        flat = crop == 0 and ((st[3] == 1 and st[2] == w) if luma else (dense or dense_cl))
        vec = flat and _aligned(arrays, offsets, ("x", "y", "grad")) and st[0] * es % 16 == 0
        _check_path(drv, vec and (not luma or st[1] * es % 16 == 0), "psnr fwd")
        _check_against(R.psnr_fwd, (x, y), (kind, crop, luma, quantize, data_range, need_grad),
                       [(got["stat"], "stat"), (got["grad"] if need_grad else None, "grad")], "psnr")
        return got

    return run


def _psnr_bwd(dt, shape, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        g, _ = _inputs(shape, dtype, 5)
        go = torch.linspace(0.5, 1.5, shape[0], dtype=_acc(dtype))
        per = math.prod(shape[1:])
        arrays = {"g": g, "gx": _nan(None, dtype, g), "gy": _nan(None, dtype, g), "grad_out": go}
        offsets = {k: off for k in ("g", "gx", "gy")}
        got = drv.call("psnr_bwd", gpu, dict(dtype=DTYPES[dt], n=shape[0], per=per), arrays, offsets)
        _check_path(drv, _aligned(arrays, offsets, ("g", "gx", "gy")), "psnr bwd")
        x64, y64 = R.psnr_bwd(g.double(), go.double(), True, True)
        xs, ys = R.psnr_bwd(g, go, True, True)
        _check(got["gx"], x64, xs, "psnr grad_x")
        _check(got["gy"], y64, ys, "psnr grad_y")
        return got

    return run


def psnr_cases(level):
    out = []
    if level == "full":
        combos = itertools.product(DTYPES, (0, 1), (0, 2), (False, True), (False, True), (False, True))
    else:
        combos = [
            ("float32", 0, 2, True, False, True),
            ("float64", 1, 0, False, True, False),
            ("float16", 0, 0, False, False, True),
            ("bfloat16", 1, 2, True, True, False),
            ("float32", 1, 0, False, False, False),
        ]
        if level == "sanitize":
            combos = combos[:2]
    for dt, kind, crop, luma, q, cl in combos:
        shape = (2, 3, 13, 17) if level != "full" else (2, 3, 45, 61)
        out.append(
            Case(
                "psnr",
                f"fwd-{dt}-k{kind}-c{crop}-y{int(luma)}-q{int(q)}-cl{int(cl)}",
                "sm_80",
                _psnr_fwd(dt, shape, kind, crop, luma, q, cl, 255.0 if q else 1.0),
            )
        )
    for dt in DTYPES if level != "sanitize" else ("float32",):
        out.append(Case("psnr", f"bwd-{dt}", "sm_80", _psnr_bwd(dt, (2, 3, 9, 11))))
    # both load paths (csrc/cuda/vec.cuh): aligned images of 16 x 16 (the 128-bit path) and the
    # same one element in (misaligned: the element path), same bits; NCHW, channels-last, Y;
    # odd sizes (images not 16-byte multiples) take the element path, checked above
    both = [("float32", 0, False, False, False), ("float16", 1, True, False, False),
            ("bfloat16", 0, False, True, True), ("float64", 1, False, False, True)]
    if level == "sanitize":
        both = both[:1]
    for dt, kind, luma, q, cl in both:
        sid = f"{dt}-k{kind}-y{int(luma)}-q{int(q)}-cl{int(cl)}"
        dr = 255.0 if q else 1.0
        out.append(Case("psnr", f"fwd-paths-{sid}", "sm_80",
                        _both_paths(lambda d, g, o, a=(dt, (2, 3, 16, 16), kind, 0, luma, q, cl, dr):
                                    _psnr_fwd(*a, off=o)(d, g), "psnr fwd")))
    if level != "sanitize":
        out.append(Case("psnr", "fwd-misaligned-grad-only", "sm_80",
                        _psnr_fwd("float32", (2, 3, 16, 16), 0, 0, False, False, False, off={"grad": 1})))
        for dt in ("float32", "float16"):
            out.append(Case("psnr", f"bwd-paths-{dt}", "sm_80",
                            _both_paths(lambda d, g, o, dt=dt: _psnr_bwd(dt, (3, 1, 5, 7), off=o)(d, g), "psnr bwd")))
    return out


# ------------------------------------------------------------------------------------ ssim
SSIM_C = (1e-4, 9e-4)


def _ssim_window(win):
    """(sizes, sigmas) per axis (H, W): a number is the square window of sigma 1.5, a pair
    (winh, winw) a per-axis window of sigmas 1.1 and 1.9."""
    return ((win, win), (1.5, 1.5)) if isinstance(win, int) else (tuple(win), (1.1, 1.9))


def _ssim_geometry(x, win, padding):
    n, c, h, w = x.shape
    (wh, ww), (sh, sw) = _ssim_window(win)
    offh, offw = (0, 0) if padding == 0 else (wh // 2, ww // 2)
    ho, wo = (h - wh + 1, w - ww + 1) if padding == 0 else (h, w)
    nums = dict(
        N=n, C=c, H=h, W=w, Ho=ho, Wo=wo, winh=wh, winw=ww, offh=offh, offw=offw, padding=padding, sigmah=sh,
        sigmaw=sw, c1=SSIM_C[0], c2=SSIM_C[1]
    )
    for k in range(4):
        nums[f"sx{k}"] = nums[f"sy{k}"] = x.stride(k)
    return nums, ho, wo


# The references do not depend on the emulated GPU: computed once per input set.
@functools.lru_cache(maxsize=64)
def _ssim_fwd_refs(dt, shape, win, padding, cl, want_map):
    x, y = _inputs(shape, TORCH_DTYPES[dt], 6, channels_last=cl)
    args = (*_ssim_window(win), SSIM_C[0], SSIM_C[1], padding, want_map, True, False, None, False, False)
    p64, m64, _, _ = R.planes_fwd(x.double(), y.double(), *args)
    p, m, _, _ = R.planes_fwd(x, y, *args)
    return p64, m64, p, m


def _ssim_grad_inputs(dt, shape, win, padding, cl, with_dmap):
    dtype = TORCH_DTYPES[dt]
    x, y = _inputs(shape, dtype, 7, channels_last=cl)
    _, ho, wo = _ssim_geometry(x, win, padding)
    n, c = shape[:2]
    weights = torch.rand((n, c, 3), generator=torch.Generator().manual_seed(8), dtype=torch.float64).to(_acc(dtype))
    dmap = (
        (torch.rand((n, c, ho, wo), generator=torch.Generator().manual_seed(9), dtype=torch.float64).to(dtype))
        if with_dmap
        else None
    )
    return x, y, weights, dmap


@functools.lru_cache(maxsize=64)
def _ssim_grad_refs(dt, shape, win, padding, cl, with_dmap):
    x, y, weights, dmap = _ssim_grad_inputs(dt, shape, win, padding, cl, with_dmap)
    args = (*_ssim_window(win), SSIM_C[0], SSIM_C[1], padding)
    x64, y64 = R.planes_bwd(
        x.double(), y.double(), *args, weights.double(), None if dmap is None else dmap.double(), True, True
    )
    xs, ys = R.planes_bwd(x, y, *args, weights, dmap, True, True)
    return x64, y64, xs, ys


def _ssim_vec(x, offsets):
    """Whether the SSIM source tiles load as 128-bit vectors (ssim.cu, Params::vec): not float64,
    unit column stride, every row start 16-byte aligned, and a whole chunk inside a row."""
    es = x.element_size()
    rows_ok = all(x.shape[d] == 1 or x.stride(d) * es % 16 == 0 for d in range(3))
    return (es < 8 and x.stride(3) == 1 and rows_ok and x.shape[3] * es >= 16
            and all(offsets.get(k, 0) * es % 16 == 0 for k in ("x", "y")))


def _ssim_fwd(dt, shape, win, padding, cl, want_map, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y = _inputs(shape, dtype, 6, channels_last=cl)
        nums, ho, wo = _ssim_geometry(x, win, padding)
        n, c, h, w = shape
        tiles = math.ceil(h / 32) * math.ceil(w / 32)
        acc = _acc(dtype)
        mp = torch.empty((n, c, ho, wo), dtype=dtype, memory_format=R.map_memory_format(x)).fill_(float("nan"))
        for k in range(4):
            nums[f"sm{k}"] = mp.stride(k)
        nums.update(dtype=DTYPES[dt], want_l1=1)
        offsets = {"x": off, "y": off}
        got = drv.call(
            "ssim_fwd",
            gpu,
            nums,
            {"x": x, "y": y, "map": mp if want_map else None, "partials": _nan((n * c, tiles, 3), acc)},
            offsets,
        )
        _check_path(drv, _ssim_vec(x, offsets), "ssim fwd")
        counts = torch.tensor([ho * wo, ho * wo, h * w], dtype=acc)
        planes = (got["partials"].sum(1) / counts).view(n, c, 3)
        p64, m64, p, m = _ssim_fwd_refs(dt, shape, win, padding, cl, want_map)
        _check(planes, p64, p, "ssim planes")
        if want_map:
            _check(got["map"], m64, m, "ssim map")
        return got

    return run


def _ssim_grad(dt, shape, win, padding, cl, with_dmap, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y, weights, dmap = _ssim_grad_inputs(dt, shape, win, padding, cl, with_dmap)
        nums, ho, wo = _ssim_geometry(x, win, padding)
        gx, gy = _nan(None, dtype, x), _nan(None, dtype, x)
        for k in range(4):
            nums[f"sd{k}"] = dmap.stride(k) if with_dmap else 0
            nums[f"sg{k}"] = gx.stride(k)
        nums["dtype"] = DTYPES[dt]
        offsets = {"x": off, "y": off}
        got = drv.call("ssim_grad", gpu, nums, {"x": x, "y": y, "weights": weights, "dmap": dmap, "gx": gx, "gy": gy},
                       offsets)
        _check_path(drv, _ssim_vec(x, offsets), "ssim grad")
        x64, y64, xs, ys = _ssim_grad_refs(dt, shape, win, padding, cl, with_dmap)
        _check(got["gx"], x64, xs, "ssim grad_x")
        _check(got["gy"], y64, ys, "ssim grad_y")
        return got

    return run


def _ssim_comp_fwd(dt, shape, win, padding, cl, want_map):
    """The components (COMP kernels): partials of 6 (S, cs, |x-y|, l, c, s) and the 4 maps S, l, c, s."""
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y = _inputs(shape, dtype, 6, channels_last=cl)
        nums, ho, wo = _ssim_geometry(x, win, padding)
        n, c, h, w = shape
        tiles = math.ceil(h / 32) * math.ceil(w / 32)
        mp = torch.empty((4 * n, c, ho, wo), dtype=dtype, memory_format=R.map_memory_format(x)).fill_(float("nan"))
        for k in range(4):
            nums[f"sm{k}"] = mp.stride(k)
        nums.update(dtype=DTYPES[dt], want_l1=1, comp=1, smk=n * mp.stride(0))
        got = drv.call("ssim_fwd", gpu, nums,
                       {"x": x, "y": y, "map": mp if want_map else None,
                        "partials": _nan((n * c, tiles, 6), _acc(dtype))})
        counts = torch.tensor([ho * wo, ho * wo, h * w] + [ho * wo] * 3, dtype=_acc(dtype))
        planes = (got["partials"].sum(1) / counts).view(n, c, 6)
        args = (win, 1.5, SSIM_C[0], SSIM_C[1], padding, want_map, True, True, None, False, False)
        p64, m64, _, _ = R.planes_fwd(x.double(), y.double(), *args)
        pn, mn, _, _ = R.planes_fwd(x, y, *args)
        _check(planes, p64, pn, "ssim components planes")
        if want_map:
            _check(got["map"].view(4, n, c, ho, wo), m64, mn, "ssim components maps")
        return got

    return run


def _ssim_comp_grad(dt, shape, win, padding, cl, with_dmap):
    """The components' gradient: one launch per input (comp_y), (N, C, 6) weights, 4 map weights."""
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y = _inputs(shape, dtype, 7, channels_last=cl)
        nums, ho, wo = _ssim_geometry(x, win, padding)
        n, c = shape[:2]
        weights = torch.randn((n, c, 6), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
        weights = weights.to(_acc(dtype))
        dmap = torch.randn((4 * n, c, ho, wo), generator=torch.Generator().manual_seed(9),
                           dtype=torch.float64).to(dtype).view(4, n, c, ho, wo) if with_dmap else None
        gx, gy = _nan(None, dtype, x), _nan(None, dtype, x)
        for k in range(4):
            nums[f"sd{k}"] = dmap.stride(k + 1) if with_dmap else 0
            nums[f"sg{k}"] = gx.stride(k)
        nums.update(dtype=DTYPES[dt], comp=1, sdk=dmap.stride(0) if with_dmap else 0)
        arrays = {"x": x, "y": y, "weights": weights, "dmap": dmap}
        got_x = drv.call("ssim_grad", gpu, dict(nums, comp_y=0), dict(arrays, gx=gx, gy=None))
        got_y = drv.call("ssim_grad", gpu, dict(nums, comp_y=1), dict(arrays, gx=None, gy=gy))
        args = (win, 1.5, SSIM_C[0], SSIM_C[1], padding)
        x64, y64 = R.planes_bwd(x.double(), y.double(), *args, weights.double(),
                                None if dmap is None else dmap.double(), True, True)
        xs, ys = R.planes_bwd(x, y, *args, weights, dmap, True, True)
        _check(got_x["gx"], x64, xs, "ssim components grad_x")
        _check(got_y["gy"], y64, ys, "ssim components grad_y")
        return got_y

    return run


def _ssim_comp_cases(level):
    """The components on both gradient paths (fused; the two-pass one of large windows where the
    fused tile does not fit: float64 w27 on sm_75), every dtype, layouts, map weights."""
    combos = [("float32", 11, 2, False, True, "sm_80", (2, 1, 40, 37)),
              ("float64", 27, 1, False, True, "sm_75", (1, 1, 29, 30)),
              ("float16", 7, 1, True, False, "sm_90", (1, 2, 19, 21)),
              ("bfloat16", 5, 0, False, True, "sm_86", (1, 1, 14, 17))]
    if level == "sanitize":
        combos = combos[:1]
    out = []
    for dt, win, pad, cl, dm, gpu, shape in combos:
        sid = f"{dt}-w{win}-p{pad}-cl{int(cl)}"
        out.append(Case("ssim", f"comp-fwd-{sid}", gpu, _ssim_comp_fwd(dt, shape, win, pad, cl, True)))
        out.append(Case("ssim", f"comp-grad-{sid}-d{int(dm)}", gpu, _ssim_comp_grad(dt, shape, win, pad, cl, dm)))
    return out


def _ssim_paths(level):
    """Both load paths of the source tiles (csrc/cuda/vec.cuh): 16-byte aligned rows (the
    128-bit path) and the same inputs one element in (the element path), same bits; odd
    widths, channels-last and misaligned row strides take the element path (checked in every case)."""
    both = [("float32", 11, 0, "sm_80", (1, 2, 40, 44)), ("float16", 7, 1, "sm_90", (1, 1, 24, 48)),
            ("bfloat16", 5, 2, "sm_75", (1, 1, 20, 40)), ("float32", 9, 1, "sm_86", (2, 3, 20, 36))]
    if level == "sanitize":
        both = both[:1]
    out = []
    for dt, win, pad, gpu, shape in both:
        sid = f"{dt}-w{win}-p{pad}-{'x'.join(map(str, shape))}"
        out.append(Case("ssim", f"fwd-paths-{sid}", gpu, _both_paths(
            lambda d, g, o, a=(dt, shape, win, pad, False, True): _ssim_fwd(*a, off=o)(d, g), "ssim fwd")))
        out.append(Case("ssim", f"grad-paths-{sid}", gpu, _both_paths(
            lambda d, g, o, a=(dt, shape, win, pad, False, pad == 1): _ssim_grad(*a, off=o)(d, g), "ssim grad")))
    return out


def ssim_cases(level):
    out = _ssim_paths(level) + _ssim_comp_cases(level)
    if level == "full":
        # every window on every emulated GPU in every dtype: no launch error anywhere
        for dt, win, gpu in itertools.product(DTYPES, range(3, 32, 2), GPUS):
            shape = (1, 2, win + 4, win + 7)
            out.append(
                Case("ssim", f"fwd-{dt}-w{win}-p{win % 3}", gpu, _ssim_fwd(dt, shape, win, win % 3, False, True))
            )
            out.append(
                Case(
                    "ssim",
                    f"grad-{dt}-w{win}-p{win % 3}",
                    gpu,
                    _ssim_grad(dt, shape, win, win % 3, False, win % 4 == 1),
                )
            )
        for dt, pad, cl in itertools.product(DTYPES, (0, 1, 2), (False, True)):
            out.append(
                Case(
                    "ssim",
                    f"fwd-{dt}-p{pad}-cl{int(cl)}-multitile",
                    "sm_80",
                    _ssim_fwd(dt, (2, 1, 40, 70), 11, pad, cl, True),
                )
            )
            out.append(
                Case(
                    "ssim",
                    f"grad-{dt}-p{pad}-cl{int(cl)}-multitile",
                    "sm_80",
                    _ssim_grad(dt, (2, 1, 40, 70), 11, pad, cl, pad == 1),
                )
            )
        return out
    combos = [
        ("float32", 11, 2, False, True, "sm_80", (2, 1, 40, 37)),
        ("float64", 31, 0, True, False, "sm_86", (1, 1, 35, 38)),
        ("float16", 7, 1, False, True, "sm_75", (1, 2, 19, 21)),
        ("bfloat16", 3, 2, True, False, "sm_90", (1, 1, 9, 12)),
        ("float64", 27, 1, False, True, "sm_75", (1, 1, 29, 30)),
        # per-axis windows (winh, winw): tall, wide, and the two-pass gradient of float64
        ("float32", (7, 11), 1, False, True, "sm_80", (2, 1, 40, 37)),
        ("float16", (3, 9), 2, True, False, "sm_90", (1, 2, 19, 21)),
        ("float64", (31, 5), 0, False, True, "sm_75", (1, 1, 35, 38)),
        ("float64", (9, 29), 2, True, True, "sm_86", (1, 1, 33, 31)),
    ]
    if level == "sanitize":
        combos = [
            ("float32", 5, 2, False, True, "sm_80", (1, 1, 12, 11)),
            ("float64", 31, 0, False, False, "sm_86", (1, 1, 32, 33)),
        ]
    for dt, win, pad, cl, dm, gpu, shape in combos:
        w = win if isinstance(win, int) else "x".join(map(str, win))
        out.append(Case("ssim", f"fwd-{dt}-w{w}-p{pad}-cl{int(cl)}", gpu, _ssim_fwd(dt, shape, win, pad, cl, True)))
        out.append(
            Case(
                "ssim", f"grad-{dt}-w{w}-p{pad}-cl{int(cl)}-d{int(dm)}", gpu, _ssim_grad(dt, shape, win, pad, cl, dm)
            )
        )
    return out


# ----------------------------------------------------------------------------- ssim_volume
VOL_SIGMAS = (1.2, 1.5, 1.9)  # per axis (D, H, W)


def _vol_layout(x, layout):
    """x (contiguous) in `layout`: "c" contiguous, "cl" channels_last_3d, "dlast" dense with D
    innermost (every stride of H, W and D non-unit but D's)."""
    if layout == "cl":
        return x.contiguous(memory_format=torch.channels_last_3d)
    if layout == "dlast":
        return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    return x


def _vol_inputs(shape, dtype, seed, layout):
    x, y = _inputs(shape, dtype, seed)
    return _vol_layout(x, layout), _vol_layout(y, layout)


def _vol_geometry(x, win, padding):
    n, c, d, h, w = x.shape
    wd, wh, ww = win
    offs = (0, 0, 0) if padding == 0 else (wd // 2, wh // 2, ww // 2)
    out = (d - wd + 1, h - wh + 1, w - ww + 1) if padding == 0 else (d, h, w)
    nums = dict(N=n, C=c, D=d, H=h, W=w, Do=out[0], Ho=out[1], Wo=out[2], wd=wd, wh=wh, ww=ww, offd=offs[0],
                offh=offs[1], offw=offs[2], padding=padding, sigmad=VOL_SIGMAS[0], sigmah=VOL_SIGMAS[1],
                sigmaw=VOL_SIGMAS[2], c1=SSIM_C[0], c2=SSIM_C[1])
    for k in range(5):
        nums[f"sx{k}"] = nums[f"sy{k}"] = x.stride(k)
    return nums, out


def _vol_units(shape):
    _, _, d, h, w = shape
    return math.ceil(d / 16) * math.ceil(h / 16) * math.ceil(w / 16)  # ssim_volume_launch.h


def _vol_fwd(dt, shape, win, padding, layout, want_map, comp=False):
    """comp: the components (COMP kernels): partials of 6 (S, cs, |x-y|, l, c, s), 4 maps S, l, c, s."""
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y = _vol_inputs(shape, dtype, 6, layout)
        nums, out = _vol_geometry(x, win, padding)
        n, c = shape[:2]
        acc = _acc(dtype)
        nm, np_ = (4, 6) if comp else (1, 3)
        mp = _nan((nm * n, c, *out), dtype)
        for k in range(5):
            nums[f"sm{k}"] = mp.stride(k)
        nums.update(dtype=DTYPES[dt], want_l1=1)
        if comp:
            nums.update(comp=1, smk=n * mp.stride(0))
        got = drv.call("ssim_volume_fwd", gpu, nums, {"x": x, "y": y, "map": mp if want_map else None,
                                                      "partials": _nan((n * c, _vol_units(shape), np_), acc)})
        if drv.vector_ops:
            raise AssertionError("ssim volume fwd: 128-bit accesses although the volume kernels load elements")
        counts = torch.tensor(([math.prod(out)] * 2 + [math.prod(shape[2:])] + [math.prod(out)] * 3)[:np_],
                              dtype=acc)
        planes = (got["partials"].sum(1) / counts).view(n, c, np_)
        args = (win, VOL_SIGMAS, SSIM_C[0], SSIM_C[1], padding, want_map, True, comp, None, False, False)
        p64, m64, _, _ = R.planes_fwd(x.double(), y.double(), *args)
        p, m, _, _ = R.planes_fwd(x, y, *args)
        what = "ssim volume components" if comp else "ssim volume"
        _check(planes, p64, p, f"{what} planes")
        if want_map:
            _check(got["map"].view(m64.shape), m64, m, f"{what} map")

    return run


def _vol_grad(dt, shape, win, padding, layout, with_dmap, comp=False):
    """comp: the components' gradient, one launch per input (comp_y), (N, C, 6) weights, 4 map weights."""
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        x, y = _vol_inputs(shape, dtype, 7, layout)
        nums, out = _vol_geometry(x, win, padding)
        n, c = shape[:2]
        nm = 4 if comp else 1
        weights = torch.randn((n, c, 6 if comp else 3), generator=torch.Generator().manual_seed(8),
                              dtype=torch.float64)
        weights = weights.to(_acc(dtype))
        dmap = (torch.randn((nm * n, c, *out), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
                .to(dtype) if with_dmap else None)
        if comp and with_dmap:
            dmap = dmap.view(4, n, c, *out)
        gx, gy = _nan(None, dtype, x), _nan(None, dtype, x)
        for k in range(5):
            nums[f"sd{k}"] = dmap.stride(k + int(comp)) if with_dmap else 0
            nums[f"sg{k}"] = gx.stride(k)
        nums["dtype"] = DTYPES[dt]
        arrays = {"x": x, "y": y, "weights": weights, "dmap": dmap}
        if comp:
            nums.update(comp=1, sdk=dmap.stride(0) if with_dmap else 0)
            got = drv.call("ssim_volume_grad", gpu, dict(nums, comp_y=0), dict(arrays, gx=gx, gy=None))
            got["gy"] = drv.call("ssim_volume_grad", gpu, dict(nums, comp_y=1), dict(arrays, gx=None, gy=gy))["gy"]
        else:
            got = drv.call("ssim_volume_grad", gpu, nums, dict(arrays, gx=gx, gy=gy))
        args = (win, VOL_SIGMAS, SSIM_C[0], SSIM_C[1], padding)
        x64, y64 = R.planes_bwd(x.double(), y.double(), *args, weights.double(),
                                None if dmap is None else dmap.double(), True, True)
        xs, ys = R.planes_bwd(x, y, *args, weights, dmap, True, True)
        what = "ssim volume components" if comp else "ssim volume"
        _check(got["gx"], x64, xs, f"{what} grad_x")
        _check(got["gy"], y64, ys, f"{what} grad_y")

    return run


def ssim_volume_cases(level):
    """Volumes (csrc/cuda/ssim_volume.cu): every padding (0 valid, 1 zero, 2 reflect), per-axis
    windows, D equal to the depth window, inside one depth unit (16) and over several (the last
    one short), odd sizes, contiguous / channels_last_3d / D-innermost layouts, every dtype,
    map weights, and the emulated GPUs' shared-memory limits (the largest window in float64 on
    sm_75's 64 KB: the 4 x 4 tiles); the components (comp-*) on the same cases."""
    combos = [
        ("float32", (7, 7, 7), 2, "c", True, "sm_80", (2, 1, 20, 19, 21)),
        ("float64", (11, 5, 9), 0, "cl", False, "sm_75", (1, 2, 11, 23, 18)),
        ("float16", (3, 7, 5), 1, "cl", True, "sm_90", (1, 1, 9, 17, 20)),
        ("bfloat16", (5, 3, 3), 2, "dlast", False, "sm_86", (1, 1, 35, 10, 13)),
        ("float64", (9, 11, 3), 1, "dlast", True, "sm_120", (1, 1, 17, 13, 33)),
        ("float32", (5, 9, 7), 0, "c", True, "sm_100", (1, 1, 37, 18, 15)),
        ("float64", (31, 31, 31), 2, "c", True, "sm_75", (1, 1, 31, 32, 33)),
    ]
    if level == "sanitize":
        combos = [("float32", (5, 3, 7), 2, "c", True, "sm_80", (1, 1, 18, 9, 11)),
                  ("float64", (3, 5, 3), 1, "cl", False, "sm_86", (1, 2, 7, 8, 6))]
    n_fast = len(combos)
    if level == "full":
        for dt, pad, gpu in itertools.product(DTYPES, (0, 1, 2), GPUS):
            combos.append((dt, (11, 11, 11), pad, "c", pad == 1, gpu, (1, 1, 19, 20, 22)))
    out = []
    for i, (dt, win, pad, layout, dm, gpu, shape) in enumerate(combos):
        sid = f"{dt}-w{'x'.join(map(str, win))}-p{pad}-{layout}-{'x'.join(map(str, shape))}"
        out.append(Case("ssim_volume", f"fwd-{sid}", gpu, _vol_fwd(dt, shape, win, pad, layout, True)))
        out.append(Case("ssim_volume", f"grad-{sid}-d{int(dm)}", gpu, _vol_grad(dt, shape, win, pad, layout, dm)))
        # the components (COMP kernels): every fast case, every 5th full one (GPUs, dtypes and paddings vary)
        if i < n_fast or (i - n_fast) % 5 == 0:
            out.append(Case("ssim_volume", f"comp-fwd-{sid}", gpu, _vol_fwd(dt, shape, win, pad, layout, True, True)))
            out.append(Case("ssim_volume", f"comp-grad-{sid}-d{int(dm)}", gpu,
                            _vol_grad(dt, shape, win, pad, layout, dm, True)))
    return out


# ------------------------------------------------------------------------------------ gram
def _feat(shape, dtype, seed, cl):
    x, y = _inputs(shape, dtype, seed, channels_last=cl)
    n, c, h, w = shape
    fx, fy = x.view(n, c, h * w) if not cl else x.permute(0, 2, 3, 1).reshape(n, h * w, c).transpose(1, 2), None
    fy = y.view(n, c, h * w) if not cl else y.permute(0, 2, 3, 1).reshape(n, h * w, c).transpose(1, 2)
    return fx, fy


def _gram_nums(f, dt):
    n, c, k = f.shape
    return dict(dtype=DTYPES[dt], N=n, C=c, K=k, sN=f.stride(0), sC=f.stride(1), sK=f.stride(2))


def _rows_vec(f, off):
    """Whether the rows of features f (N, C, K) load as 128-bit vectors (gram.cu, rows_vec_ok)
    when f starts `off` elements into its buffer, with at least one whole chunk."""
    es = f.element_size()
    n, c, k = f.shape
    return (f.stride(2) == 1 and (n == 1 or f.stride(0) * es % 16 == 0) and (c == 1 or f.stride(1) * es % 16 == 0)
            and off * es % 16 == 0 and k * es >= 16)


def _gram_fwd(dt, shape, cl, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        f, _ = _feat(shape, dtype, 10, cl)
        n, c, k = f.shape
        scale = 1.0 / (c * k)
        got = drv.call(
            "gram_fwd", gpu, dict(_gram_nums(f, dt), scale=scale), {"f": f, "g": _nan((n, c, c), _acc(dtype))},
            {"f": off},
        )
        _check_path(drv, _rows_vec(f, off), "gram fwd")
        _check(got["g"], R.gram_fwd(f.double(), scale), R.gram_fwd(f, scale), "gram G")
        return got

    return run


def _style_fwd(dt, shape, cl, criterion, with_target, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        fx, fy = _feat(shape, dtype, 11, cl)
        n, c, k = fx.shape
        acc = _acc(dtype)
        scale = 1.0 / (c * k)
        target = R.gram_fwd(fy, scale)[:1].contiguous() if with_target else None
        nums = dict(_gram_nums(fx, dt), scale=scale, criterion=criterion, tN=1)
        got = drv.call(
            "style_fwd",
            gpu,
            nums,
            {
                "x": fx,
                "y": None if with_target else fy,
                "target": target,
                "p": _nan((n, c, c), acc),
                "loss": _nan((), acc),
            },
            {"x": off, "y": off},
        )
        _check_path(drv, _rows_vec(fx, off), "style fwd")
        yy = None if with_target else fy
        l64, p64 = R.style_fwd(
            fx.double(),
            None if yy is None else yy.double(),
            None if target is None else target.double(),
            scale,
            criterion,
            True,
        )
        l, p = R.style_fwd(fx, yy, target, scale, criterion, True)
        _check(got["loss"], l64, l, "style loss")
        _check(got["p"], p64, p, "style dloss/dD")
        return got

    return run


def _gram_apply(dt, shape, cl, qn, off=0):
    def run(drv, gpu):
        dtype = TORCH_DTYPES[dt]
        f, _ = _feat(shape, dtype, 12, cl)
        n, c, k = f.shape
        q = (
            torch.rand((qn, c, c), generator=torch.Generator().manual_seed(13), dtype=torch.float64).to(_acc(dtype))
            - 0.5
        )
        out = torch.empty_like(f).fill_(float("nan"))
        got = drv.call("gram_apply", gpu, dict(_gram_nums(f, dt), qN=qn, alpha=0.75), {"q": q, "f": f, "out": out},
                       {"q": off, "f": off})
        # tensor cores (apply_wmma_kernel): Q's rows (C accumulators) or F's in 16-byte chunks; the
        # SIMT apply_kernel loads element by element (gram.cu: registers)
        tensor = dt == "float16" or (dt == "bfloat16" and gpu != "sm_75")
        q_vec = c * q.element_size() % 16 == 0 and off * q.element_size() % 16 == 0
        _check_path(drv, tensor and (q_vec or _rows_vec(f, off)), "gram apply")
        # tensor cores take Q rounded to the feature dtype (gram.cu): the oracle gets the same Q
        qr = q.to(dtype).to(q.dtype) if dtype in (torch.float16, torch.bfloat16) else q
        _check(got["out"], R.gram_apply(qr.double(), f.double(), 0.75), R.gram_apply(qr, f, 0.75), "gram apply")
        return got

    return run


def gram_cases(level):
    out = []
    shapes = [(2, 70, 5, 7), (1, 19, 24, 27)]  # two channel tiles (diagonal + off-diagonal); K split in two
    if level == "full":
        gpus_dt = [(g, dt) for g in ("sm_75", "sm_80", "sm_90") for dt in DTYPES]
        combos = [(g, dt, s, cl) for g, dt in gpus_dt for s in shapes for cl in (False, True)]
    else:
        combos = [
            ("sm_80", "float32", shapes[0], False),
            ("sm_75", "bfloat16", shapes[1], True),
            ("sm_90", "float16", shapes[0], True),
            ("sm_80", "float64", shapes[1], False),
        ]
        if level == "sanitize":
            combos = [("sm_80", "float32", (1, 70, 3, 5), False), ("sm_80", "float16", (1, 40, 4, 9), True)]
    for i, (gpu, dt, shape, cl) in enumerate(combos):
        sid = f"{dt}-{'x'.join(map(str, shape))}-cl{int(cl)}"
        out.append(Case("gram", f"fwd-{sid}", gpu, _gram_fwd(dt, shape, cl)))
        crit = i % 3
        out.append(Case("gram", f"style-y-c{crit}-{sid}", gpu, _style_fwd(dt, shape, cl, crit, False)))
        out.append(
            Case("gram", f"style-t-c{(crit + 1) % 3}-{sid}", gpu, _style_fwd(dt, shape, cl, (crit + 1) % 3, True))
        )
        qn = shape[0] if i % 2 else 1
        out.append(Case("gram", f"apply-q{qn}-{sid}", gpu, _gram_apply(dt, shape, cl, qn)))
    # both load paths of the tiles (csrc/cuda/vec.cuh): rows of 16-byte multiples, aligned (the
    # 128-bit path) and one element in (the element path), same bits; SIMT and tensor cores
    both = [("sm_80", "float32", (2, 70, 8, 8)), ("sm_90", "float16", (1, 40, 4, 8)),
            ("sm_75", "bfloat16", (2, 24, 4, 8)), ("sm_80", "float64", (1, 19, 4, 4))]
    if level == "sanitize":
        both = both[:2]
    for gpu, dt, shape in both:
        sid = f"{dt}-{'x'.join(map(str, shape))}"
        out.append(Case("gram", f"fwd-paths-{sid}", gpu,
                        _both_paths(lambda d, g, o, a=(dt, shape, False): _gram_fwd(*a, off=o)(d, g), "gram fwd")))
        out.append(Case("gram", f"style-paths-{sid}", gpu, _both_paths(
            lambda d, g, o, a=(dt, shape, False, 1, False): _style_fwd(*a, off=o)(d, g), "style fwd")))
    # the apply's 128-bit path is the tensor-core kernel's
    for gpu, dt, shape in [("sm_90", "float16", (1, 40, 4, 8)), ("sm_80", "bfloat16", (2, 24, 4, 8))][
            : 1 if level == "sanitize" else 2]:
        out.append(Case("gram", f"apply-paths-{dt}-{'x'.join(map(str, shape))}", gpu, _both_paths(
            lambda d, g, o, a=(dt, shape, False, shape[0]): _gram_apply(*a, off=o)(d, g), "gram apply")))
    return out


# ------------------------------------------------------------------------------------ perceptual
def _head_inputs(dt, shape, metric, seed):
    """Features (some pixels all zero: the LPIPS norm's limit case), the head's weight in the
    accumulator dtype and grad_out."""
    dtype = TORCH_DTYPES[dt]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = x + 0.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    if dt in ("float32", "float64"):  # (in 16 bits its gradient, ~1e10 x, overflows, as the reference's does)
        x[:, :, 0, 0] = 0.0  # a pixel with no feature: u = 0 there, and the gradient's limit
    cw = (2, shape[1]) if metric == "dists" else (shape[1],)
    w = torch.rand(cw, generator=g, dtype=torch.float64) / shape[1]
    go = torch.linspace(0.5, 1.5, shape[0], dtype=torch.float64)
    return x.to(dtype), y.to(dtype), w.to(_acc(dtype)), go.to(_acc(dtype))


def _head_fwd(dt, shape, metric, seed=7):
    def run(drv, gpu):
        x, y, w, _ = _head_inputs(dt, shape, metric, seed)
        value = _nan((shape[0],), _acc(x.dtype))
        got = drv.call(f"{metric}_fwd", gpu, dict(dtype=DTYPES[dt], n=shape[0], c=shape[1], hw=shape[2] * shape[3]),
                       {"x": x, "y": y, "w": w, "value": value})
        fn = getattr(R, f"{metric}_head_fwd")
        _check_against(lambda a, b, ww: (fn(a, b, ww),), (x, y, w), (), [(got["value"], "value")], f"{metric} fwd")
        return got

    return run


def _head_bwd(dt, shape, metric, need=(True, True), seed=8):
    def run(drv, gpu):
        x, y, w, go = _head_inputs(dt, shape, metric, seed)
        arrays = {"x": x, "y": y, "w": w, "grad_out": go,
                  "gx": _nan(None, x.dtype, x) if need[0] else None, "gy": _nan(None, y.dtype, y) if need[1] else None}
        got = drv.call(f"{metric}_bwd", gpu, dict(dtype=DTYPES[dt], n=shape[0], c=shape[1], hw=shape[2] * shape[3]),
                       arrays)
        fn = getattr(R, f"{metric}_head_bwd")
        _check_against(lambda a, b, ww, gg: fn(a, b, ww, gg, True, True), (x, y, w, go), (),
                       [(got["gx"] if need[0] else None, "grad_pred"), (got["gy"] if need[1] else None, "grad_target")],
                       f"{metric} bwd")
        return got

    return run


def _head_identical(dt, metric):
    """pred = target: LPIPS exactly 0 with zero gradients, DISTS exactly 1 - sum(alpha + beta)
    (S1 = S2 = 1), whatever the compiler contracts into FMAs (csrc/common/perceptual_math.h)."""
    def run(drv, gpu):
        x, _, w, go = _head_inputs(dt, (2, 5, 7, 9), metric, 9)
        nums = dict(dtype=DTYPES[dt], n=2, c=5, hw=63)
        got = drv.call(f"{metric}_fwd", gpu, nums, {"x": x, "y": x.clone(), "w": w, "value": _nan((2,), w.dtype)})
        want = torch.zeros(2, dtype=w.dtype) if metric == "lpips" else w.sum().expand(2).to(w.dtype)
        if metric == "dists":  # alpha S1 + beta S2 summed with S = 1: the weights' sum, to rounding
            torch.testing.assert_close(got["value"], want, rtol=4 * torch.finfo(w.dtype).eps, atol=0)
        elif not torch.equal(got["value"], want):
            raise AssertionError(f"lpips(x, x) = {got['value'].tolist()}, not exactly 0")
        if metric == "lpips":
            g = drv.call("lpips_bwd", gpu, nums, {"x": x, "y": x.clone(), "w": w, "grad_out": go,
                                                 "gx": _nan(None, x.dtype, x), "gy": _nan(None, x.dtype, x)})
            for k in ("gx", "gy"):
                if not torch.equal(g[k], torch.zeros_like(x)):
                    raise AssertionError(f"lpips(x, x) {k} not exactly 0")
        return got

    return run


def perceptual_cases(level):
    shapes = [(2, 5, 7, 9), (1, 64, 17, 15), (3, 3, 1, 1)]  # odd planes, the VGG conv1 width, 1 x 1 planes
    dts = list(DTYPES) if level == "full" else ["float32", "float64", "float16", "bfloat16"]
    if level == "sanitize":
        shapes, dts = shapes[:1], ["float32"]
    out = []
    for metric, dt, shape in itertools.product(("lpips", "dists"), dts, shapes):
        sid = f"{dt}-{'x'.join(map(str, shape))}"
        gpu = GPUS[len(out) % len(GPUS)]
        out.append(Case("perceptual", f"{metric}-fwd-{sid}", gpu, _head_fwd(dt, shape, metric)))
        out.append(Case("perceptual", f"{metric}-bwd-{sid}", gpu, _head_bwd(dt, shape, metric)))
    if level != "sanitize":
        for metric, dt in itertools.product(("lpips", "dists"), ("float32", "float16")):
            out.append(Case("perceptual", f"{metric}-identical-{dt}", "sm_89", _head_identical(dt, metric)))
        for metric in ("lpips", "dists"):
            out.append(Case("perceptual", f"{metric}-bwd-pred-only", "sm_80",
                            _head_bwd("float32", (2, 4, 6, 5), metric, need=(True, False))))
            out.append(Case("perceptual", f"{metric}-bwd-target-only", "sm_90",
                            _head_bwd("float32", (2, 4, 6, 5), metric, need=(False, True))))
    return out


def _large_perceptual():
    # LPIPS: ceil(hw / 256) partial blocks per image up to 1024, summed by one block; DISTS: one
    # block per plane with planes of more than 256 pixels a thread
    return [
        Case("perceptual", "large-lpips-fwd-float32-1024blocks-capped", "sm_80",
             _head_fwd("float32", (2, 3, 520, 520), "lpips")),
        Case("perceptual", "large-lpips-bwd-float16-300blocks", "sm_90",
             _head_bwd("float16", (1, 2, 300, 256), "lpips")),
        Case("perceptual", "large-dists-fwd-bwd-float32-big-planes", "sm_86",
             _head_bwd("float32", (1, 2, 300, 301), "dists")),
        Case("perceptual", "large-dists-fwd-float64-big-planes", "sm_75",
             _head_fwd("float64", (2, 2, 257, 263), "dists")),
    ]


# ------------------------------------------------------------------------------------ large
# Partial blocks per reduction (csrc/cuda/*.cu): pixel ceil(n / 1024) up to 65536, summed by
# one finalize block of 256 threads; psnr ceil(count / 2048) up to 512 per image; ssim one
# partial triple per 32x32 tile (summed on the host); gram K-splits (up to 264) summed per
# tile, and one partial loss per (image, tile) summed by one block.
GRID_YZ = 65535  # the largest y / z grid dimension of every CUDA GPU
BATCH_LIMIT = ("{what} puts the batch in grid dimension {dim} (at most 65535), and the host "
               "does not split larger batches: a real GPU refuses the launch too")


def _large_pixel():
    huge = (1, 1, 8193, 8192)  # 65536 blocks (the cap; 65535 + 1): each finalize thread sums 256
    return [
        Case("pixel", "large-fwd-float32-charb-mean-plane-264blocks", "sm_80",
             _pixel_fwd("float32", (1, 3, 300, 300), 2, 2, 2, True)),
        Case("pixel", "large-fwd-float16-l1-wmean-full-264blocks", "sm_90",
             _pixel_fwd("float16", (1, 3, 300, 300), 0, 3, 1, False)),
        Case("pixel", "large-fwd-bfloat16-mse-sum-pixel-cl-264blocks", "sm_75",
             _pixel_fwd("bfloat16", (1, 3, 300, 300), 1, 1, 3, True)),
        Case("pixel", "large-fwd-float32-mse-mean-65536blocks", "sm_80",
             _pixel_fwd("float32", huge, 1, 2, 0, False)),
    ]


def _large_psnr():
    return [
        Case("psnr", "large-fwd-float32-259blocks-per-image", "sm_80",
             _psnr_fwd("float32", (2, 3, 419, 421), 0, 0, False, False, False)),
        Case("psnr", "large-fwd-float16-y-cl-512blocks-capped", "sm_86",
             _psnr_fwd("float16", (1, 3, 600, 600), 1, 2, True, False, True)),
        Case("psnr", "large-fwd-float64-q-300blocks", "sm_90",
             _psnr_fwd("float64", (1, 1, 768, 801), 0, 0, False, True, False, 255.0)),
        Case("psnr", "large-fwd-batch-65536", "sm_80", _psnr_fwd("float32", (GRID_YZ + 1, 1, 2, 3), 0, 0, False,
                                                                  False, False),
             xfail=BATCH_LIMIT.format(what="psnr_fwd (images)", dim="y")),
    ]


def _large_ssim():
    return [
        Case("ssim", "large-fwd-float32-306tiles", "sm_80",
             _ssim_fwd("float32", (2, 1, 544, 548), 11, 0, False, False)),
        Case("ssim", "large-fwd-float16-same-cl-289tiles", "sm_90",
             _ssim_fwd("float16", (1, 2, 530, 520), 7, 1, True, True)),
        Case("ssim", "large-fwd-planes-65536", "sm_80",
             _ssim_fwd("float32", (1, GRID_YZ + 1, 3, 3), 3, 0, False, False),
             xfail=BATCH_LIMIT.format(what="ssim_fwd (images x channels)", dim="z")),
    ]


def _large_gram():
    splits = (1, 8, 264, 272)  # K = 71808 = 264 x 272: 264 K-splits of 272 (a multiple of 16), none empty
    return [
        Case("gram", "large-fwd-float32-264splits", "sm_80", _gram_fwd("float32", splits, False)),
        Case("gram", "large-style-bfloat16-264splits", "sm_90", _style_fwd("bfloat16", splits, True, 0, False)),
        Case("gram", "large-style-float32-300loss-partials", "sm_80", _style_fwd("float32", (300, 8, 3, 3), False, 2,
                                                                                 False)),
        Case("gram", "large-style-float64-target-300loss-partials", "sm_75",
             _style_fwd("float64", (300, 5, 2, 3), False, 1, True)),
        Case("gram", "large-fwd-batch-65536", "sm_80", _gram_fwd("float32", (GRID_YZ + 1, 1, 1, 2), False),
             xfail=BATCH_LIMIT.format(what="gram_fwd's finalize (images)", dim="y")),
    ]


def _masked(name):
    """tests/cuda_emu/cases_masked.py's builder `name` (imported late: it imports this module)."""
    def build(*args):
        import cases_masked

        return getattr(cases_masked, name)(*args)
    return build


BUILDERS = {"pixel": pixel_cases, "psnr": psnr_cases, "ssim": ssim_cases, "ssim_volume": ssim_volume_cases,
            "gram": gram_cases, "perceptual": perceptual_cases, "ssim_masked": _masked("masked_cases")}
LARGE = {"pixel": _large_pixel, "psnr": _large_psnr, "ssim": _large_ssim, "ssim_volume": list,
         "gram": _large_gram, "perceptual": _large_perceptual, "ssim_masked": _masked("large_masked")}


def cases(family, level="fast"):
    if level == "large":
        return LARGE[family]()
    out = BUILDERS[family](level)
    return out + LARGE[family]() if level == "full" else out
