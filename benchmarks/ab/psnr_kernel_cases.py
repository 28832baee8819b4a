"""Kernel-alone timings of the CPU PSNR statistic (fastiqa_C::psnr_fwd, MSE, float32) for
benchmarks/ab/ab_builds.py: "<shape>_<case> min <us>" lines, min of n calls. Cases: the copy of
one input (the memory floor's yardstick), plain, RGB crop 4, Y + crop 4 (the published SR
convention), with quantisation, with the gradient."""
import time

import torch

import fastiqa  # noqa: F401  (registers fastiqa_C)

SHAPES = (((8, 3, 256, 256), 300), ((1, 3, 1020, 1356), 100), ((16, 3, 96, 96), 300))


def best_us(fn, n: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e6


def main():
    torch.manual_seed(0)
    op = torch.ops.fastiqa_C.psnr_fwd.default
    for shape, n in SHAPES:
        t = torch.rand(shape)
        p = (t + 0.1 * torch.randn(shape)).clamp(0, 1)
        dst = torch.empty_like(p)
        tag = "x".join(map(str, shape))
        # op(pred, target, kind (1: MSE), crop, y_channel, quantize, data_range, need_grad)
        cases = {
            "copy": lambda: dst.copy_(p),
            "plain": lambda: op(p, t, 1, 0, False, False, 1.0, False),
            "crop4": lambda: op(p, t, 1, 4, False, False, 1.0, False),
            "y_crop4": lambda: op(p, t, 1, 4, True, False, 1.0, False),
            "y_crop4_quant": lambda: op(p, t, 1, 4, True, True, 1.0, False),
            "y_crop4_grad": lambda: op(p, t, 1, 4, True, False, 1.0, True),
            "plain_grad": lambda: op(p, t, 1, 0, False, False, 1.0, True),
        }
        for name, fn in cases.items():
            print(f"{tag}_{name} min {best_us(fn, n):.1f}", flush=True)


if __name__ == "__main__":
    main()
