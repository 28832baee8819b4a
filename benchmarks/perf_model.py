"""Performance model of fastiqa's CUDA kernels (csrc/cuda/*.cu): what each kernel must
move and compute, and the time that takes on a GPU at its vendor figures.

    python benchmarks/perf_model.py               # bar shapes and fused-ssim's shapes on H100, A100, RTX 4090
    python benchmarks/perf_model.py --markdown    # the same as the table of benchmarks/RESULTS.md
    python benchmarks/perf_model.py --gpu H200    # one GPU of GPUS
    python benchmarks/perf_model.py --write       # regenerate the tables in benchmarks/RESULTS.md

Model. One kernel launch
  dram   bytes it moves: every tensor it reads or writes, once (tile halos, re-reads of a
         tile just loaded and the tiles of a Gram product are assumed to hit L2);
  fp     FP instructions in the accumulator type (FMA, MUL, ADD, compare each one; an IEEE
         division DIV instructions, a reciprocal square root RSQRT), counted from the code;
  smem   shared-memory word accesses (loads and stores, conflict-free; a warp's broadcast
         of one word counts once);
  tc     tensor-core FMAs (float16 / bfloat16 Gram products).
Its time is the largest of dram / (bandwidth x f), fp / (FP rate), smem / (32 banks x 4 B
per SM per clock), tc / (tensor rate): a floor, every unit at its peak. f <= 1 is Little's
law for the memory-bound kernels: the resident threads (the occupancy of the static GPU
audit, tests/gpu/gpu_audit.py) each keep `inflight` bytes of loads outstanding; when
they hold fewer bytes than bandwidth x LATENCY per SM, bandwidth drops in proportion.
An op (what a user calls) is the sum of its kernels; a wall-clock comparison adds
LAUNCH_S per launch (published peer timings include launch gaps; kernel durations from
a profiler do not).

What it leaves out: integer index arithmetic (its own pipe), L2 bandwidth, tail effects
of the last wave, clocks below boost. Predictions are floors: a kernel at 50-80% of its
floor is doing well.
"""
import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from results_md import replace_block

DIV = 8  # FP instructions of an IEEE float32 division (reciprocal + Newton step + fix-up)
RSQRT = 4  # MUFU.RSQ and the multiply around it
LATENCY = 600e-9  # DRAM load latency (s) assumed for Little's law
LAUNCH_S = 3e-6  # gap per kernel launch on one stream (s), for wall-clock comparisons


@dataclass(frozen=True)
class Gpu:
    """Vendor figures (boost clock, dense). fp32 / fp64: FLOP/s of the CUDA cores (an FMA is 2
    FLOPs); tc16: FLOP/s of float16 / bfloat16 tensor cores with float32 accumulation."""

    name: str
    arch: str  # compute capability as in the audit table ("90")
    bw: float  # DRAM bytes/s
    fp32: float
    fp64: float
    tc16: float
    sms: int
    lanes: int  # FP32 lanes per SM
    max_warps: int  # resident warps per SM
    smem_optin: int  # shared memory per block (bytes, opt-in)
    source: str

    @property
    def clock(self):
        return self.fp32 / (2 * self.sms * self.lanes)

    @property
    def smem_words(self):
        return self.sms * 32 * self.clock  # 32 banks of 4 bytes per SM per clock


HOPPER = "https://www.nvidia.com/en-us/data-center/h100/ (datasheet: H100 SXM)"
GPUS = {
    "H100": Gpu("H100 SXM", "90", 3.35e12, 66.9e12, 33.5e12, 989.4e12, 132, 128, 64, 227 * 1024, HOPPER),
    "H200": Gpu("H200 SXM", "90", 4.8e12, 66.9e12, 33.5e12, 989.4e12, 132, 128, 64, 227 * 1024,
                "https://www.nvidia.com/en-us/data-center/h200/ (datasheet: H200 SXM; compute as H100 SXM)"),
    "A100": Gpu("A100 SXM 80GB", "80", 2.039e12, 19.5e12, 9.7e12, 312e12, 108, 64, 64, 163 * 1024,
                "https://www.nvidia.com/en-us/data-center/a100/ (datasheet: A100 80GB SXM)"),
    "RTX 4090": Gpu("RTX 4090", "89", 1.008e12, 82.6e12, 1.29e12, 165.2e12, 128, 128, 48, 99 * 1024,
                    "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf "
                    "(Ada whitepaper, appendix A: GeForce RTX 4090)"),
}


@dataclass
class Cost:
    """One kernel launch (see the module docstring). inflight: load bytes a thread keeps
    outstanding (memory-bound kernels only); f64: fp counts at the float64 rate."""

    kernel: str
    dram: float = 0.0
    fp: float = 0.0
    smem: float = 0.0
    tc: float = 0.0
    inflight: float = 0.0
    f64: bool = False
    launches: int = 1
    extra: dict = field(default_factory=dict)


def _esize(dtype):
    return {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}[dtype]


# ------------------------------------------------------------------------------ pixel (pixel.cu)
# FP instructions per element of pixel_fwd_kernel: d = a - b, loss_and_grad (csrc/common/pixel_math.h),
# acc += v, g * gmul
PIXEL_FP = {"l1": 1 + 4 + 1 + 1, "mse": 1 + 2 + 1 + 1, "charbonnier": 1 + 1 + RSQRT + 2 + 1 + 1}


def pixel_fwd(n, dtype="float32", kind="charbonnier", grad=True, map_=False):
    e = _esize(dtype)
    return Cost("pixel_fwd_kernel", dram=n * e * (2 + grad + map_), fp=n * PIXEL_FP[kind], inflight=2 * 16,
                f64=dtype == "float64")


def pixel_bwd(n, dtype="float32", outputs=1):
    e = _esize(dtype)
    return Cost("pixel_bwd_kernel", dram=n * e * (1 + outputs), fp=n * 2, inflight=16, f64=dtype == "float64")


def pixel_finalize(n):
    blocks = min(max(1, math.ceil(n / 1024)), 65536)
    return Cost("pixel_finalize_kernel", dram=blocks * 8, fp=blocks * 8)


# ------------------------------------------------------------------------------- psnr (psnr.cu)
def psnr_fwd(shape, dtype="float32", crop=0, luma=False, quantize=False, grad=False):
    n, c, h, w = shape
    e = _esize(dtype)
    hh, ww = h - 2 * crop, w - 2 * crop
    samples = n * hh * ww * (1 if luma else c)
    read_ch = 3 if luma else 1
    per = (2 * 3 + 1 if luma else 1) + (2 * 4 if quantize else 0) + 2 + 1  # luma, quantise, stat, acc
    flat = crop == 0  # dense images without a crop go in 16-byte chunks (Geo::flat)
    return Cost("psnr_fwd_kernel", dram=2 * samples * read_ch * e + (samples * read_ch * e if grad else 0),
                fp=samples * per, inflight=2 * read_ch * (16 if flat else e), f64=dtype == "float64")


def psnr_finalize(n, count):
    blocks = n * min(max(1, math.ceil(count / 2048)), 512)
    return Cost("psnr_finalize_kernel", dram=blocks * 4, fp=blocks)


# ------------------------------------------------------------------------------- ssim (ssim.cu)
SSIM_VALUE_FP = 10 + 2 * DIV  # ssim_value (csrc/common/ssim_math.h)
SSIM_VALUE_GRAD_FP = 30 + 7 * DIV  # ssim_value_grad


def _fwd_tile(win, esize, gpu):
    acc = 8 if esize == 8 else 4
    for m in (32, 16, 8):  # ssim.cu pick_tile(fwd_elems)
        s = m + win - 1
        if acc * (2 * s * s + 5 * s * m) <= gpu.smem_optin:
            return m
    return 0


def _grad_tile(win, esize, gpu):
    acc = 8 if esize == 8 else 4
    for g in (32, 16, 8):  # ssim.cu pick_tile(fused_grad_elems)
        m = g + win - 1
        s = m + win - 1
        if acc * (2 * s * s + 5 * s * m + 4 * m * m) <= gpu.smem_optin:
            return g
    return 0


def ssim_fwd(shape, gpu, dtype="float32", win=11, padding="valid", want_map=False, want_l1=False):
    """ssim_fwd_kernel: per M x M output tile, S = M + win - 1 source rows are blurred
    horizontally (S x M items, win taps of 5 sums: 5 FMA + 3 MUL) and M x M outputs vertically
    (5 win FMA) plus the value; shared memory: the tile stores, 2 loads per horizontal tap, the
    5 sums stored, 5 loads per vertical tap."""
    n, c, h, w = shape
    e = _esize(dtype)
    ho, wo = (h - win + 1, w - win + 1) if padding == "valid" else (h, w)
    m = _fwd_tile(win, e, gpu)
    s = m + win - 1
    tiles = math.ceil(h / 32) * math.ceil(w / 32) * n * c
    sub = (32 // m) ** 2  # sub-tiles per 32 x 32 block
    out_px = n * c * ho * wo
    horiz_items = tiles * sub * s * m
    fp = horiz_items * 8 * win + out_px * (5 * win + SSIM_VALUE_FP + 2) + (n * c * h * w * 3 if want_l1 else 0)
    smem = tiles * sub * 2 * s * s + horiz_items * (2 * win + 5) + out_px * 5 * win
    dram = 2 * n * c * h * w * e + (out_px * e if want_map else 0) + tiles * 3 * 4
    return Cost("ssim_fwd_kernel", dram=dram, fp=fp, smem=smem, f64=dtype == "float64", extra=dict(tile=m))


def ssim_grad(shape, gpu, dtype="float32", win=11, padding="valid", outputs=1):
    """ssim_grad_kernel (fused): per G x G source tile, M = G + win - 1 outputs a side are
    recomputed from S = M + win - 1 source rows (horizontal S x M items, vertical and the
    gradient coefficients M x M), then the adjoint blur: vertical G x M items (4 win FMA),
    horizontal G x G (4 win FMA) and the gradient."""
    n, c, h, w = shape
    e = _esize(dtype)
    g = _grad_tile(win, e, gpu)
    m = g + win - 1
    s = m + win - 1
    tiles = math.ceil(h / g) * math.ceil(w / g) * n * c
    fp = tiles * (s * m * 8 * win + m * m * (5 * win + SSIM_VALUE_GRAD_FP) + g * m * 4 * win + g * g * (4 * win + 10))
    smem = tiles * (2 * s * s + s * m * (2 * win + 5) + m * m * (5 * win + 4) + g * m * (4 * win + 4)
                    + g * g * 4 * win)
    dram = 2 * n * c * h * w * e + outputs * n * c * h * w * e
    return Cost("ssim_grad_kernel", dram=dram, fp=fp, smem=smem, f64=dtype == "float64", extra=dict(tile=g))


# -------------------------------------------------------------- ssim on volumes (ssim_volume.cu)
VOL_UNIT = 16  # ssim_volume_launch.h: kSsimVolTile (H, W) and kSsimVolDepth (D)


def _vol_tile(elems, esize, gpu):
    acc = 8 if esize == 8 else 4
    for t in (16, 8, 4):  # ssim_volume.cu pick_tile
        if acc * elems(t) <= gpu.smem_optin:
            return t, acc * elems(t)
    return 0, 0


def _vol_out(shape, win, padding):
    return [s - win + 1 if padding == "valid" else s for s in shape[2:]]


def ssim_volume_fwd(shape, gpu, dtype="float32", win=11, padding="valid", want_map=False, want_l1=False,
                    grad=False):
    """ssim_volume_fwd_kernel: per 16^3 unit, M x M (H, W) sub-tiles march along depth over
    16 + win - 1 padded slices; per slice S = M + win - 1 source rows are blurred horizontally
    (S x M items, 8 win FP) and M x M pixels vertically (5 win FMA) into a ring of win slices;
    per output voxel the depth blur (5 win FMA) and the value (or, grad: the coefficient maps,
    4 accumulators written per output voxel: the gradient's first pass)."""
    n, c, d, h, w = shape
    e = _esize(dtype)
    do, ho, wo = _vol_out(shape, win, padding)
    m, dyn = _vol_tile(lambda t: 2 * (t + win - 1) ** 2 + 5 * (t + win - 1) * t + 5 * win * t * t, e, gpu)
    s = m + win - 1
    units = math.ceil(d / VOL_UNIT) * math.ceil(h / VOL_UNIT) * math.ceil(w / VOL_UNIT) * n * c
    slices = units * (VOL_UNIT // m) ** 2 * (min(VOL_UNIT, do) + win - 1)  # sub-tile slices
    out_vox = n * c * do * ho * wo
    value = SSIM_VALUE_GRAD_FP if grad else SSIM_VALUE_FP
    fp = slices * (s * m * 8 * win + m * m * 5 * win) + out_vox * (5 * win + value + 2)
    fp += n * c * d * h * w * 3 if want_l1 else 0
    smem = slices * (2 * s * s + s * m * (2 * win + 5) + m * m * (5 * win + 5)) + out_vox * 5 * win
    acc = 8 if e == 8 else 4
    dram = 2 * n * c * d * h * w * e + (out_vox * e if want_map else 0) + units * 3 * 4
    dram += out_vox * 4 * acc if grad else 0
    return Cost("ssim_volume_fwd_kernel", dram=dram, fp=fp, smem=smem, f64=dtype == "float64",
                extra=dict(tile=m, dyn=dyn))


def ssim_volume_adjoint(shape, gpu, dtype="float32", win=11, padding="valid", outputs=1):
    """ssim_volume_adjoint_kernel: per G x G (H, W) source tile x 16 slices, 16 + win - 1 output
    slices of the coefficient maps (4 accumulators a voxel, read from the first pass's scratch)
    go through the vertical adjoint (G x M items, 4 win FMA) and the horizontal one (G x G, 4 win
    FMA) into a ring; per source voxel the depth adjoint (4 win FMA) and the gradients."""
    n, c, d, h, w = shape
    e = _esize(dtype)
    do, ho, wo = _vol_out(shape, win, padding)
    g, dyn = _vol_tile(lambda t: 4 * t * (t + win - 1) + 4 * win * t * t, e, gpu)
    m = g + win - 1
    units = math.ceil(d / VOL_UNIT) * math.ceil(h / g) * math.ceil(w / g) * n * c
    slices = units * (VOL_UNIT + win - 1)
    vox = n * c * d * h * w
    fp = slices * (g * m * 8 * win + g * g * 8 * win) + vox * (8 * win + 10)
    smem = slices * (g * m * 4 + g * g * (4 * win + 4)) + vox * 4 * win
    acc = 8 if e == 8 else 4
    dram = n * c * do * ho * wo * 4 * acc + 2 * vox * e + outputs * vox * e
    return Cost("ssim_volume_adjoint_kernel", dram=dram, fp=fp, smem=smem, f64=dtype == "float64",
                extra=dict(tile=g, dyn=dyn))


# ------------------------------------------------------------------------------- gram (gram.cu)
def _gram_tensor(dtype):
    return dtype in ("float16", "bfloat16")


def gram_tiles(n, c, k, dtype="float32", with_y=False):
    """tiles_kernel / tiles_wmma_kernel: the upper block triangle of 64 x 64 tiles, K FMAs per
    entry, once more for y; SIMT: per 16-deep step a warp reads 2 x 4 words of A (broadcast over
    16 threads) and 16 x 4 of B for 32 x 16 FMAs (72 words per 512 FMAs)."""
    t = math.ceil(c / 64)
    fmas = n * t * (t + 1) // 2 * 64 * 64 * k * (2 if with_y else 1)
    e = _esize(dtype)
    splits = 1  # partials: small next to the features at the bar shapes
    dram = n * c * k * e * (2 if with_y else 1) + splits * n * c * c * 4
    if _gram_tensor(dtype):
        return Cost("tiles_wmma_kernel", dram=dram, tc=fmas, smem=fmas / 16)
    return Cost("tiles_kernel", dram=dram, fp=fmas, smem=fmas * 72 / 512, f64=dtype == "float64")


def gram_apply(n, c, k, dtype="float32"):
    """apply_kernel / apply_wmma_kernel: out = alpha Q F per image (C x C x K FMAs)."""
    fmas = n * c * c * k
    e = _esize(dtype)
    dram = 2 * n * c * k * e + n * c * c * 4
    if _gram_tensor(dtype):
        return Cost("apply_wmma_kernel", dram=dram, tc=fmas, smem=fmas / 16)
    return Cost("apply_kernel", dram=dram, fp=fmas, smem=fmas * 72 / 512, f64=dtype == "float64")


def gram_finalize(n, c, mode_loss=True):
    return Cost("finalize_kernel", dram=n * c * c * 4 * (2 if mode_loss else 1), fp=n * c * c * 6)


# ------------------------------------------------------------------- perceptual (perceptual.cu)
# LPIPS: a thread per pixel loops over the channels: norms (2 FMA a channel), the distance
# (u - v: MUL + FMA, w d^2: MUL + FMA), per pixel 2 square roots and 2 divisions. The second
# read of a pixel's channels is assumed to hit L1 / L2 (a block's 256 pixels x C channels).
# The backward: norms (2), the dot products (g: 4, g . x and g . y: 2), the gradients (g again
# and 2 FMA + MUL a gradient written), per pixel the two coefficients (3 MUL + DIV each).
# DISTS, a block per plane: means (2 ADD an element), centred sums (2 SUB + 3 FMA), the
# backward's gradients (2 SUB + 2 FMA a gradient); per plane a handful of divisions. Their
# loops are unrolled 4 times: 4 loads of each input in flight a thread.
VGG16_LAYERS = ((64, 1), (128, 2), (256, 4), (512, 8), (512, 16))  # (channels, downsampling) of relu1_2..relu5_3


def lpips_fwd(n, c, hw, dtype="float32"):
    e = _esize(dtype)
    return Cost("lpips_fwd_kernel", dram=2 * n * c * hw * e, fp=n * hw * (6 * c + 2 * RSQRT + 2 * DIV + 1),
                inflight=2 * 4 * e, f64=dtype == "float64")


def lpips_bwd(n, c, hw, dtype="float32", outputs=2):
    e = _esize(dtype)
    per_channel = 2 + 6 + 4 + 3 * outputs
    return Cost("lpips_bwd_kernel", dram=(2 + outputs) * n * c * hw * e,
                fp=n * hw * (per_channel * c + 2 * RSQRT + 2 * DIV + 2 * (3 + DIV)), inflight=2 * 4 * e,
                f64=dtype == "float64")


def dists_fwd(n, c, hw, dtype="float32"):
    e = _esize(dtype)
    return Cost("dists_fwd_kernel", dram=2 * n * c * hw * e, fp=n * c * (7 * hw + 20 + 2 * DIV), inflight=2 * 4 * e,
                f64=dtype == "float64")


def dists_bwd(n, c, hw, dtype="float32", outputs=2):
    e = _esize(dtype)
    return Cost("dists_bwd_kernel", dram=(2 + outputs) * n * c * hw * e,
                fp=n * c * ((7 + 2 + 2 * outputs) * hw + 40 + 4 * DIV), inflight=2 * 4 * e, f64=dtype == "float64")


def image_sum(n, count):
    return Cost("image_sum_kernel", dram=n * count * 4, fp=n * count * 4)


def head_layers(shape, metric):
    """(n, c, hw) of each backbone layer the head reads: VGG16's five stages of an (N, 3, H, W)
    input; DISTS also compares the input image itself."""
    n, _, h, w = shape
    layers = [(n, c, (h // d) * (w // d)) for c, d in VGG16_LAYERS]
    return ([(n, 3, h * w)] if metric == "dists" else []) + layers


# --------------------------------------------------------------------------------- ops
def op_kernels(op, shape, gpu, dtype="float32"):
    """The kernel launches of one call of `op` (forward, or forward + backward) at shape."""
    n = math.prod(shape)
    if op in ("charbonnier_fwdbwd", "l1_fwdbwd", "mse_fwdbwd"):
        kind = op.split("_")[0]
        return [pixel_fwd(n, dtype, kind, grad=True), pixel_finalize(n), pixel_bwd(n, dtype)]
    if op in ("charbonnier_fwd", "l1_fwd", "mse_fwd"):
        return [pixel_fwd(n, dtype, op.split("_")[0], grad=False), pixel_finalize(n)]
    if op == "psnr_y_crop4_quant":
        b, c, h, w = shape
        return [psnr_fwd(shape, dtype, crop=4, luma=True, quantize=True), psnr_finalize(b, (h - 8) * (w - 8))]
    if op.startswith("ssim3d"):
        # ssim3d_valid_fwd, ssim3d_valid_fwdbwd, ssim3d_same_fwd, ssim3d_same_fwdbwd: 11^3 window
        padding = "valid" if "valid" in op else "same_zero"
        ks = [ssim_volume_fwd(shape, gpu, dtype, padding=padding)]
        if op.endswith("fwdbwd"):
            ks += [ssim_volume_fwd(shape, gpu, dtype, padding=padding, grad=True),
                   ssim_volume_adjoint(shape, gpu, dtype, padding=padding)]
        return ks
    if op.startswith("ssim"):
        # ssim_valid_fwd, ssim_valid_fwdbwd, ssim_same_fwd, ssim_same_fwdbwd, ssim_l1_same_fwdbwd
        padding = "valid" if "valid" in op else "same_zero"
        l1 = "_l1_" in op
        ks = [ssim_fwd(shape, gpu, dtype, padding=padding, want_l1=l1)]
        if op.endswith("fwdbwd"):
            ks.append(ssim_grad(shape, gpu, dtype, padding=padding))
        return ks
    if op == "style_fwdbwd":
        b, c, h, w = shape
        k = h * w
        return [gram_tiles(b, c, k, dtype, with_y=True), gram_finalize(b, c), gram_apply(b, c, k, dtype),
                gram_apply(b, c, k, dtype)]
    if op in ("lpips_heads_fwdbwd", "dists_heads_fwdbwd"):
        metric = op.split("_")[0]
        fwd, bwd = (lpips_fwd, lpips_bwd) if metric == "lpips" else (dists_fwd, dists_bwd)
        ks = []
        for n_, c_, hw in head_layers(shape, metric):
            blocks = min(max(1, math.ceil(hw / 256)), 1024) if metric == "lpips" else c_
            ks += [fwd(n_, c_, hw, dtype), image_sum(n_, blocks), bwd(n_, c_, hw, dtype, outputs=1)]
        return ks
    raise ValueError(f"op must be one of the ops of op_kernels, got {op!r}")


def audit_cells(path=None):
    """{(kernel, arch): (registers, occupancy)} from the static GPU audit table in
    benchmarks/RESULTS.md (python tests/gpu/gpu_audit.py --write); {} without it."""
    path = Path(path) if path else Path(__file__).resolve().parent / "RESULTS.md"
    try:
        text = path.read_text()
    except OSError:
        return {}
    if "<!-- gpu-audit:begin -->" not in text:
        return {}
    block = text.split("<!-- gpu-audit:begin -->")[1].split("<!-- gpu-audit:end -->")[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    archs = [a.strip()[3:] for a in lines[0].strip("|").split("|") if a.strip().startswith("sm_")]
    out = {}
    for ln in lines[2:]:
        cells = [x.strip() for x in ln.strip("|").split("|")]
        for a, cell in zip(archs, cells[2:]):
            m = re.match(r"(\d+) r, .*?(\d+)%", cell)
            if m:
                out[(cells[1], a)] = (int(m.group(1)), int(m.group(2)) / 100)
    return out


def occupancy(cost, gpu, cells):
    """Fraction of the SM's warps resident: the audit's (registers, static shared memory),
    limited further by the SSIM tiles' dynamic shared memory; 0.5 when the audit lacks it."""
    occ = cells.get((cost.kernel, gpu.arch), (0, 0.5))[1]
    tile = cost.extra.get("tile")
    if "dyn" in cost.extra:  # the volume kernels: their dynamic shared memory
        blocks = (gpu.smem_optin + 1024) // (cost.extra["dyn"] + 1024)
        occ = min(occ, blocks * 8 / gpu.max_warps)
    elif tile:
        win = 11
        acc = 8 if cost.f64 else 4
        if cost.kernel == "ssim_fwd_kernel":
            s = tile + win - 1
            dyn = acc * (2 * s * s + 5 * s * tile)
        else:
            m = tile + win - 1
            s = m + win - 1
            dyn = acc * (2 * s * s + 5 * s * m + 4 * m * m)
        blocks = (gpu.smem_optin + 1024) // (dyn + 1024)
        occ = min(occ, blocks * 8 / gpu.max_warps)
    return occ


def predict(cost, gpu, cells=None):
    """Predicted kernel time (s) and what bounds it."""
    cells = audit_cells() if cells is None else cells
    occ = occupancy(cost, gpu, cells)
    f = 1.0
    if cost.inflight:
        resident = occ * gpu.max_warps * 32 * gpu.sms
        f = min(1.0, resident * cost.inflight / (gpu.bw * LATENCY))
    rate = (gpu.fp64 if cost.f64 else gpu.fp32) / 2
    parts = {
        "dram": cost.dram / (gpu.bw * f),
        "fp": cost.fp / rate,
        "smem": cost.smem / gpu.smem_words,
        "tc": cost.tc / (gpu.tc16 / 2),
    }
    bound = max(parts, key=parts.get)
    regs = cells.get((cost.kernel, gpu.arch), (None, None))[0]
    return dict(kernel=cost.kernel, t=parts[bound], bound=bound, parts=parts, occupancy=occ, registers=regs,
                bw_fraction=f, dram=cost.dram, fp=cost.fp, smem=cost.smem, tc=cost.tc)


def predict_op(op, shape, gpu, dtype="float32", cells=None):
    """(kernel time summed over the op's launches, wall time with LAUNCH_S per launch, per-kernel rows)."""
    rows = [predict(k, gpu, cells) for k in op_kernels(op, shape, gpu, dtype)]
    t = sum(r["t"] for r in rows)
    return t, t + LAUNCH_S * len(rows), rows


# Bar shapes (benchmarks/RESULTS.md, "Bar cases") and fused-ssim's published shapes.
BAR_CASES = [
    ("charbonnier_fwdbwd", (8, 3, 256, 256), "Charbonnier fwd+bwd, mean"),
    ("ssim_valid_fwdbwd", (8, 3, 256, 256), "SSIM loss fwd+bwd, valid 11x11"),
    ("psnr_y_crop4_quant", (8, 3, 256, 256), "PSNR Y + crop 4 + quantise (fwd)"),
    ("style_fwdbwd", (8, 256, 64, 64), "style loss fwd+bwd, both Grams"),
    ("lpips_heads_fwdbwd", (8, 3, 256, 256), "LPIPS heads fwd+bwd (pred grad), VGG16 layers"),
    ("dists_heads_fwdbwd", (8, 3, 256, 256), "DISTS heads fwd+bwd (pred grad), image + VGG16 layers"),
    ("ssim3d_valid_fwdbwd", (2, 1, 64, 128, 128), "3-D SSIM loss fwd+bwd, valid 11x11x11 (issue 19's shape)"),
    ("ssim3d_same_fwdbwd", (1, 1, 128, 256, 256), "3-D SSIM loss fwd+bwd, same 11x11x11 (a fused-ssim 3-D-like "
     "training volume)"),
]
# (op, shape, what, {GPU: (published ms, who, where)})
FUSED_SSIM = "https://github.com/rahul-goel/fused-ssim"
PUBLISHED = [
    ("ssim_same_fwd", (5, 5, 1080, 1920), "SSIM fwd, same padding (fused-ssim's test.py)",
     {"RTX 4090": [(4.38, "fused-ssim", "https://github.com/OpsiClear/fussim (README, Performance)"),
                   (2.49, "optimized-fused-ssim", "https://github.com/MrNeRF/optimized-fused-ssim (README)"),
                   (28.7, "pytorch_msssim", "https://github.com/OpsiClear/fussim (README, Performance)")]}),
    ("ssim_same_fwdbwd", (5, 5, 1080, 1920), "SSIM fwd+bwd, same padding (fused-ssim's test.py)",
     {"RTX 4090": [(9.04, "fused-ssim", "https://github.com/OpsiClear/fussim (README, Performance)"),
                   (5.17, "optimized-fused-ssim",
                    "https://github.com/MrNeRF/optimized-fused-ssim (README: 2.49 + 2.68)"),
                   (57.5, "pytorch_msssim", "https://github.com/OpsiClear/fussim (README, Performance)")]}),
    ("ssim_same_fwdbwd", (5, 1, 1500, 1500), "SSIM training step, 11.25 MP (fused-ssim's genplot.py)",
     {"RTX 4090": [(1.1, "fused-ssim", f"{FUSED_SSIM} (images/training_time.png, read off the plot; issue 23)"),
                   (16.9, "pytorch_msssim", f"{FUSED_SSIM} (images/training_time.png, read off the plot; issue 23)")]}),
    ("ssim_l1_same_fwdbwd", (1, 3, 1080, 1920), "L1 + SSIM loss fwd+bwd (fused_l1_ssim_loss)",
     {"RTX 4090": [(0.570, "fused-ssim fused_l1_ssim_loss", f"{FUSED_SSIM}/pull/33"),
                   (0.840, "L1 + fused-ssim", f"{FUSED_SSIM}/pull/33")]}),
    ("ssim_l1_same_fwdbwd", (1, 3, 2160, 3840), "L1 + SSIM loss fwd+bwd (fused_l1_ssim_loss)",
     {"RTX 4090": [(2.54, "fused-ssim fused_l1_ssim_loss", f"{FUSED_SSIM}/pull/33"),
                   (4.15, "L1 + fused-ssim", f"{FUSED_SSIM}/pull/33")]}),
]


def _ms(t):
    return f"{t * 1e3:.3f}"


def report(gpus, markdown=False):
    cells = audit_cells()
    lines = []
    if markdown:
        head = "| case | shape | " + " | ".join(f"{GPUS[g].name}: kernels (wall) ms, bound" for g in gpus) + " |"
        lines += [head, "|" + "---|" * (2 + len(gpus))]
    for op, shape, what in BAR_CASES + [(p[0], p[1], p[2]) for p in PUBLISHED]:
        preds = [predict_op(op, shape, GPUS[g], cells=cells) for g in gpus]
        shp = "x".join(map(str, shape))
        if markdown:
            cells_txt = [f"{_ms(t)} ({_ms(wall)}), {'+'.join(r['bound'] for r in rows)}" for t, wall, rows in preds]
            lines.append(f"| {what} | {shp} | " + " | ".join(cells_txt) + " |")
            continue
        lines.append(f"{what}  [{op} {shp}]")
        for g, (t, wall, rows) in zip(gpus, preds):
            lines.append(f"  {GPUS[g].name:<14} {_ms(t):>9} ms kernels, {_ms(wall):>9} ms with launches")
            for r in rows:
                lines.append(f"    {r['kernel']:<22} {_ms(r['t']):>9} ms  {r['bound']:<4}"
                             f"  dram {r['dram'] / 1e6:9.2f} MB  fp {r['fp'] / 1e9:8.3f} G"
                             f"  smem {r['smem'] / 1e9:7.3f} Gw  tc {r['tc'] / 1e9:7.3f} G"
                             f"  occ {r['occupancy']:.0%}  regs {r['registers']}  bw x{r['bw_fraction']:.2f}")
    if markdown:
        lines.append("")
        lines.append("| published figure | shape | GPU | theirs ms | fastiqa predicted ms (kernels / wall) |")
        lines.append("|---|---|---|---:|---:|")
        for op, shape, what, pubs in PUBLISHED:
            for g, figs in pubs.items():
                t, wall, _ = predict_op(op, shape, GPUS[g], cells=cells)
                for ms, who, where in figs:
                    url, _, note = where.partition(" ")
                    lines.append(f"| {what}: {who} ([source]({url}){' ' + note if note else ''}) | "
                                 f"{'x'.join(map(str, shape))} | "
                                 f"{GPUS[g].name} | {ms:g} | {_ms(t)} / {_ms(wall)} |")
        lines.append("")
        for g in gpus:
            lines.append(f"- {GPUS[g].name}: {GPUS[g].bw / 1e12:g} TB/s, FP32 {GPUS[g].fp32 / 1e12:g} TFLOPS, "
                         f"FP64 {GPUS[g].fp64 / 1e12:g}, FP16 tensor (FP32 acc.) {GPUS[g].tc16 / 1e12:g}, "
                         f"{GPUS[g].sms} SMs; {GPUS[g].source}")
    return "\n".join(lines)


BEGIN, END = "<!-- perf-model:begin -->", "<!-- perf-model:end -->"


def write_results(text, path=None):
    """Replaces the block between BEGIN and END in benchmarks/RESULTS.md (appends it if absent)."""
    replace_block(BEGIN, END, text, "GPU performance model (predictions, no GPU)", path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", action="append", choices=sorted(GPUS), help="GPUs (default: H100, A100, RTX 4090)")
    ap.add_argument("--markdown", action="store_true", help="the tables of benchmarks/RESULTS.md")
    ap.add_argument("--write", action="store_true", help="regenerate them in benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    text = report(args.gpu or ["H100", "A100", "RTX 4090"], args.markdown or args.write)
    print(text)
    if args.write:
        write_results(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
