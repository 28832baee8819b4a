"""The harness's cases of the masked SSIM (csrc/cuda/ssim_masked.cu, driver
tests/cuda_emu/drivers/ssim_masked.cpp): forward partials and map, both gradients, against the
reference op (fastiqa/backends/reference/_ssim_masked.py) in float64 and in the inputs' dtype, by
the rule of cases._check; odd sizes, the three paddings, images and volumes, channels_last and
transposed inputs, several emulated GPUs (the kernels use static shared memory for block sums only)."""
import math

import torch
from cases import TORCH_DTYPES, Case, _acc, _check, _inputs, _nan
from emu import DTYPES

import fastiqa.backends.reference as R

C1, C2 = 1e-4, 9e-4
THREADS, ITEMS, MAX_BLOCKS = 256, 4, 1024  # ssim_masked.cu's forward grid


def _window(x, win):
    """(sizes, sigmas) per spatial axis: an int is the same size on every axis, sigma 1.5."""
    axes = x.dim() - 2
    sizes = (win,) * axes if isinstance(win, int) else tuple(win)
    return sizes, (1.5,) * axes if isinstance(win, int) else tuple(1.1 + 0.4 * a for a in range(axes))


def _s5(t):
    """(N, C, D, H, W) strides: images get a depth stride of 0."""
    return list(t.stride()) if t.dim() == 5 else [t.stride(0), t.stride(1), 0, t.stride(2), t.stride(3)]


def _setup(dt, shape, win, padding, cl, strided):
    dtype = TORCH_DTYPES[dt]
    if strided:  # dense but not contiguous (the harness sends arrays in memory order): H and W swapped
        x, y = _inputs((*shape[:-2], shape[-1], shape[-2]), dtype, 11)
        x, y = x.transpose(-1, -2), y.transpose(-1, -2)
    else:
        x, y = _inputs(shape, dtype, 11, channels_last=cl)
    g = torch.Generator().manual_seed(12)
    r = torch.rand(shape, generator=g, dtype=torch.float64)
    m = torch.where(r > 0.3, r * 2, torch.zeros_like(r)).to(_acc(dtype))
    m[0, 0, ..., :2] = 0  # an edge band without weight
    sizes, sigmas = _window(x, win)
    vol = x.dim() == 5
    sp = x.shape[2:] if vol else (1, *x.shape[2:])
    ks = sizes if vol else (1, *sizes)
    out = [s - k + 1 if padding == 0 else s for s, k in zip(sp, ks)]
    nums = dict(N=shape[0], C=shape[1], D=sp[0], H=sp[1], W=sp[2], Do=out[0], Ho=out[1], Wo=out[2], kd=ks[0],
                kh=ks[1], kw=ks[2], padding=padding, c1=C1, c2=C2, dtype=DTYPES[dt],
                sigmad=sigmas[0] if vol else 1.0, sigmah=sigmas[-2], sigmaw=sigmas[-1])
    for name, t in (("sx", x), ("sy", y), ("sm", m)):
        for k, s in enumerate(_s5(t)):
            nums[f"{name}{k}"] = s
    return x, y, m, sizes, sigmas, nums, out


def _fwd(dt, shape, win, padding, cl=False, strided=False, want_map=True):
    def run(drv, gpu):
        x, y, m, sizes, sigmas, nums, out = _setup(dt, shape, win, padding, cl, strided)
        n, c = shape[:2]
        ref64 = R.ssim_masked_fwd(x.double(), y.double(), m.double(), sizes, sigmas, C1, C2, padding, want_map)
        ref = R.ssim_masked_fwd(x, y, m, sizes, sigmas, C1, C2, padding, want_map)
        mp = None
        if want_map:
            mp = torch.empty_like(ref[1]).fill_(float("nan"))
            for k, s in enumerate(_s5(mp)):
                nums[f"smap{k}"] = s
        total = max(math.prod(out), math.prod(x.shape[2:]))
        blocks = min(max(1, math.ceil(total / (THREADS * ITEMS))), MAX_BLOCKS)
        got = drv.call("fwd", gpu, nums, {"x": x, "y": y, "m": m, "map": mp,
                                          "partials": _nan((n * c, blocks, 4), _acc(x.dtype))})
        _check(got["partials"].sum(1).view(n, c, 4), ref64[0], ref[0], "ssim_masked planes")
        if want_map:
            _check(got["map"], ref64[1], ref[1], "ssim_masked map")

    return run


def _bwd(dt, shape, win, padding, cl=False, strided=False, with_dmap=True):
    def run(drv, gpu):
        x, y, m, sizes, sigmas, nums, out = _setup(dt, shape, win, padding, cl, strided)
        n, c = shape[:2]
        g = torch.Generator().manual_seed(13)
        acc = _acc(x.dtype)
        d_planes = torch.randn((n, c, 4), generator=g, dtype=torch.float64).to(acc)
        d_map = torch.randn((n, c, *(out if x.dim() == 5 else out[1:])), generator=g,
                            dtype=torch.float64).to(x.dtype) if with_dmap else None
        gx, gy = _nan(None, x.dtype, x), _nan(None, x.dtype, x)  # empty_like(x): channels_last kept
        for k, s in enumerate(_s5(gx)):
            nums[f"sg{k}"] = s
        if with_dmap:
            for k, s in enumerate(_s5(d_map)):
                nums[f"sdm{k}"] = s
        coef = _nan((n * c * 4 * math.prod(out),), acc)
        got = drv.call("bwd", gpu, nums, {"x": x, "y": y, "m": m, "d_planes": d_planes, "d_map": d_map, "coef": coef,
                                          "gx": gx, "gy": gy})
        args = (sizes, sigmas, C1, C2, padding)
        r64 = R.ssim_masked_bwd(x.double(), y.double(), m.double(), *args, d_planes.double(),
                                None if d_map is None else d_map.double(), True, True)
        r = R.ssim_masked_bwd(x, y, m, *args, d_planes, d_map, True, True)
        _check(got["gx"], r64[0], r[0], "ssim_masked grad_x")
        _check(got["gy"], r64[1], r[1], "ssim_masked grad_y")
        off = m == 0
        if not torch.all(got["gx"][off] == 0) or not torch.all(got["gy"][off] == 0):
            raise AssertionError("ssim_masked: a gradient is not 0 where m = 0")

    return run


def masked_cases(level):
    combos = [  # dtype, shape, window, padding, channels_last, strided, gpu
        ("float32", (2, 3, 19, 22), 7, 0, False, False, "sm_80"),
        ("float64", (1, 2, 17, 16), 5, 1, True, False, "sm_75"),
        ("float16", (1, 3, 13, 15), 3, 2, True, False, "sm_86"),
        ("bfloat16", (2, 1, 12, 11), (3, 5), 1, False, True, "sm_90"),
        ("float64", (1, 2, 7, 9, 10), (3, 3, 5), 2, False, False, "sm_89"),
        ("float32", (1, 1, 6, 8, 9), 3, 0, False, False, "sm_120"),
        ("float32", (1, 1, 40, 45), 11, 2, False, False, "sm_100"),
    ]
    if level == "sanitize":
        combos = combos[:2]
    out = []
    for dt, shape, win, pad, cl, st, gpu in combos:
        name = f"{dt}-{'x'.join(map(str, shape))}-p{pad}{'-cl' if cl else ''}{'-strided' if st else ''}"
        out.append(Case("ssim_masked", f"fwd-{name}", gpu, _fwd(dt, shape, win, pad, cl, st, want_map=pad != 0)))
        out.append(Case("ssim_masked", f"bwd-{name}", gpu, _bwd(dt, shape, win, pad, cl, st, with_dmap=pad != 1)))
    return out


def large_masked():
    """A forward over more than its 1024-block cap per plane (grid-stride loops)."""
    return [Case("ssim_masked", "large-fwd-float32-capped-blocks", "sm_80",
                 _fwd("float32", (1, 1, 1100, 1030), 3, 1, want_map=False))]
