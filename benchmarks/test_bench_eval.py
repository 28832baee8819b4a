"""`fastiqa eval` throughput (fastiqa.evaluate, the same pipeline) against decoding
alone with the same number of decoding threads.

Images: 100 pairs of 512x512 PNG (8-bit RGB, and 16-bit RGB when OpenCV is
installed to write and read them) made from the photographs shipped in
fastiqa/data (bicubic x2 up, shifted per pair, the prediction with Gaussian noise),
written to a temporary folder. Cases: PSNR only and PSNR + SSIM on the Y channel
(crop 4), 1 and 2 decoding workers. Decode-only = read_image of both files of
every pair mapped over a thread pool of the same size (no conversion, no metric).

The bar on the 2-core machine: full eval within 1.25x of the decode-only time
(eval_over_decode <= 1.25 in extra_info), i.e. the metrics hidden behind decoding.

    python -m pytest -q benchmarks/test_bench_eval.py -s
    FASTIQA_BENCH_SMOKE=1 pytest benchmarks/test_bench_eval.py --benchmark-disable   # 4 pairs of 64x64
"""
import importlib.util
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import fastiqa
from fastiqa import eval_demo
from fastiqa._imageio import read_image
from fastiqa.evaluation.pairing import pair_folders

from harness import SMOKE

N, SIZE = (4, 64) if SMOKE else (100, 512)
HAS_CV2 = importlib.util.find_spec("cv2") is not None
BITS = [8, pytest.param(16, marks=pytest.mark.skipif(not HAS_CV2, reason="16-bit colour PNG needs OpenCV"))]


def _photos():
    """The shipped photographs, bicubic-resized to SIZE x SIZE, float64 RGB in [0, 1]."""
    out = []
    for hr in eval_demo.load_images().values():
        up = torch.nn.functional.interpolate(hr.double(), size=(SIZE, SIZE), mode="bicubic", align_corners=False)
        out.append(up[0].permute(1, 2, 0).clamp(0, 1).numpy())
    return out


def _save(path, rgb01, bits):
    full = 255 if bits == 8 else 65535
    a = np.round(rgb01 * full).astype(np.uint8 if bits == 8 else np.uint16)
    if HAS_CV2:
        import cv2

        assert cv2.imwrite(str(path), np.ascontiguousarray(a[..., ::-1]))
    else:
        from PIL import Image

        Image.fromarray(a).save(path)


@pytest.fixture(scope="module", params=BITS, ids=lambda b: f"{b}bit")
def folders(request, tmp_path_factory):
    bits = request.param
    root = tmp_path_factory.mktemp(f"eval{bits}")
    (root / "hr").mkdir()
    (root / "sr").mkdir()
    rng = np.random.default_rng(0)
    photos = _photos()
    for i in range(N):
        hr = np.roll(photos[i % len(photos)], (7 * i, 13 * i), axis=(0, 1))
        sr = np.clip(hr + rng.normal(0, 6 / 255, hr.shape), 0, 1)
        _save(root / "hr" / f"{i:04d}.png", hr, bits)
        _save(root / "sr" / f"{i:04d}.png", sr, bits)
    return bits, str(root / "hr"), str(root / "sr")


def _decode_only(items, workers):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for a, b in pool.map(lambda it: (read_image(it.pred), read_image(it.ref)), items):
            assert a[0].shape == b[0].shape
    return time.perf_counter() - t0


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("metrics", ["psnr", "psnr,ssim"])
def test_eval_vs_decode_only(benchmark, folders, metrics, workers):
    """Rounds alternate decode-only (timed in pedantic's untimed setup) and the full
    eval (timed by pytest-benchmark), so both see the same machine load; the best
    of each is compared."""
    bits, ref, pred = folders
    items = pair_folders(ref, pred)
    decode_s = []
    benchmark.group = f"eval-{N}x{SIZE}px-{bits}bit-{metrics.replace(',', '+')}-w{workers}"

    def setup():
        decode_s.append(_decode_only(items, workers))

    eval_s = []

    def step():
        t0 = time.perf_counter()
        res = fastiqa.evaluate(ref, pred, metrics, crop_border=4, y_channel=True, device="cpu", workers=workers)
        eval_s.append(time.perf_counter() - t0)
        assert not res.errors and len(res.images) == N
        return res

    benchmark.pedantic(step, setup=setup, rounds=1 if SMOKE else 3, iterations=1, warmup_rounds=0)
    extra = dict(pairs=N, bits=bits, workers=workers, threads=torch.get_num_threads(),
                 load_avg=round(os.getloadavg()[0], 2), decode_only_pairs_per_s=round(N / min(decode_s), 2),
                 eval_pairs_per_s=round(N / min(eval_s), 2), eval_over_decode=round(min(eval_s) / min(decode_s), 3))
    benchmark.extra_info.update(extra)
    print(f"\n[eval {bits}-bit {metrics} workers={workers}] {extra}")
