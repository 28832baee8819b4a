"""The machine's limits, measured in the same run as the kernels (benchmarks/harness.py uses
them for every row): memory bandwidth and FMA throughput.

- bandwidth: a STREAM triad a = b + s c (torch.add with alpha, out=a) over three float32 arrays
  of 64 MiB each (far past any last-level cache; the GPU: 256 MiB), best of several runs;
  bytes = 3 arrays (STREAM's count: write-allocate traffic not counted); a case whose tensors
  fit a cache is held to the faster copy of its own size instead (benchmarks/harness.py);
- FMA throughput: a float32 GEMM C = A B of n x n (n^3 FMAs; n = 2048 on the CPU, 8192 on a
  GPU), best of several runs, per thread count (1 and the session's), which is what a
  fused kernel's FMAs can reach at best.

Per ISA variant: fastiqa's kernels follow FASTIQA_CPU_ISA; the GEMM runs in torch's BLAS
(MKL / oneDNN) and ATen's vector code, which pick their own ISA. mirror_isa_env(), called by
benchmarks/conftest.py before torch loads, pins those to the same level
(MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY; never overriding a value
already set), so that an avx2 run is measured against an AVX2 machine. What was in force is
recorded with every row (gemm_isa).

FASTIQA_BENCH_SMOKE=1: tiny sizes, one run (proves the code runs; the numbers mean nothing).
"""
import os
import time

# torch is imported inside the functions: mirror_isa_env must run before torch loads

SMOKE = os.environ.get("FASTIQA_BENCH_SMOKE", "0") == "1"

# fastiqa variant -> (MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY)
ISA_ENV = {
    "avx512": ("AVX512", "AVX512_CORE", "avx512"),
    "avx2": ("AVX2", "AVX2", "avx2"),
    "baseline": ("SSE4_2", "SSE41", "default"),
}
_ENV_NAMES = ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
_CACHE = {}


def mirror_isa_env(environ=None):
    """Sets the BLAS / ATen ISA variables to FASTIQA_CPU_ISA's level where unset; returns the
    names it set. Must run before torch is imported to take effect (benchmarks/conftest.py)."""
    env = os.environ if environ is None else environ
    isa = env.get("FASTIQA_CPU_ISA", "")
    if isa not in ISA_ENV:
        return []
    out = []
    for name, value in zip(_ENV_NAMES, ISA_ENV[isa]):
        if name not in env:
            env[name] = value
            out.append(name)
    return out


def gemm_isa():
    """What the GEMM ran with: the variables of mirror_isa_env and ATen's capability."""
    import torch

    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
    pinned = ",".join(f"{n}={os.environ[n]}" for n in _ENV_NAMES if n in os.environ)
    return f"aten={cap}" + (f" ({pinned})" if pinned else "")


def _sync(device):
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _best(fn, device, reps):
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _threads(n):
    """Context: torch's intra-op thread count set to n for the block (CPU only)."""
    import torch

    class _T:
        def __enter__(self):
            self.old = torch.get_num_threads()
            torch.set_num_threads(n)

        def __exit__(self, *exc):
            torch.set_num_threads(self.old)

    return _T()


def triad_bandwidth(device="cpu", threads=None):
    """Bytes/s of a = b + s c over three large float32 arrays (3 arrays of traffic)."""
    import torch

    dev = torch.device(device)
    key = ("triad", str(dev), threads)
    if key not in _CACHE:
        n = (1 << 14) if SMOKE else (64 << 20) // 4 * (4 if dev.type == "cuda" else 1)
        b = torch.rand(n, device=dev)
        c = torch.rand(n, device=dev)
        a = torch.empty_like(b)

        def run():
            torch.add(b, c, alpha=0.5, out=a)

        if dev.type == "cpu":
            with _threads(threads or torch.get_num_threads()):
                t = _best(run, dev, 1 if SMOKE else 10)
        else:
            t = _best(run, dev, 1 if SMOKE else 20)
        _CACHE[key] = 3 * n * 4 / t
    return _CACHE[key]


def gemm_fma_rate(device="cpu", threads=None, dtype=None):
    """FMAs/s of an n x n x n GEMM (n^3 FMAs), float32 unless dtype is given."""
    import torch

    dtype = dtype or torch.float32
    dev = torch.device(device)
    key = ("gemm", str(dev), threads, dtype)
    if key not in _CACHE:
        n = 128 if SMOKE else (8192 if dev.type == "cuda" else 2048)
        a = torch.rand(n, n, device=dev, dtype=dtype)
        bm = torch.rand(n, n, device=dev, dtype=dtype)
        out = torch.empty(n, n, device=dev, dtype=dtype)

        def run():
            torch.mm(a, bm, out=out)

        if dev.type == "cpu":
            with _threads(threads or torch.get_num_threads()):
                t = _best(run, dev, 1 if SMOKE else 5)
        else:
            t = _best(run, dev, 1 if SMOKE else 10)
        _CACHE[key] = n ** 3 / t
    return _CACHE[key]


def limits(device="cpu"):
    """The session's limits on `device`: bandwidth and FMA rate at the session's thread count
    (what the kernels run with), and the single-thread FMA rate."""
    import torch

    dev = torch.device(device)
    threads = torch.get_num_threads() if dev.type == "cpu" else None
    out = dict(bw=triad_bandwidth(dev, threads), fma=gemm_fma_rate(dev, threads),
               threads=threads or 0, gemm_isa=gemm_isa() if dev.type == "cpu" else torch.cuda.get_device_name(0))
    out["fma_1t"] = gemm_fma_rate(dev, 1) if dev.type == "cpu" else out["fma"]
    return out


def roofline(floor_bytes, fmas, median, lim):
    """Achieved GB/s and GFMA/s of a run of `median` seconds, each as a fraction of its limit,
    and roof_frac = (the larger of bytes / bandwidth and FMAs / FMA rate) / median: 1.0 = at
    the machine's floor for that op."""
    t_bytes = floor_bytes / lim["bw"]
    t_fma = fmas / lim["fma"] if fmas else 0.0
    return dict(
        gbps=floor_bytes / median / 1e9,
        gfma_s=fmas / median / 1e9 if fmas else 0.0,
        bw_frac=t_bytes / median,
        fma_frac=t_fma / median,
        roof_frac=max(t_bytes, t_fma) / median,
        bound="fma" if t_fma > t_bytes else "bytes",
    )
