"""The meters under torch.distributed: 2 CPU processes (gloo), uneven image counts; the
mean and the pooled PSNR (summed squared errors and sample counts) of all images."""

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastiqa import metrics as M
from fastiqa.meters import MeterCollection, PSNRMeter, SSIMMeter

SPLITS = [(0, 2), (2, 7)]  # rank 0 sees 2 images, rank 1 sees 5


def _images():
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (7, 24, 26, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 10, hr.shape), 0, 255).round().astype(np.uint8)
    return sr, hr


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sr, hr = _images()
        a, b = SPLITS[rank]
        meters = MeterCollection(psnr=PSNRMeter(2, True), ssim=SSIMMeter(2, True))
        lone = PSNRMeter(2, True)
        for i in range(a, b, 2):  # batches of 2 (and a last one of 1)
            meters.update(sr[i : min(i + 2, b)], hr[i : min(i + 2, b)])
            lone.update(sr[i : min(i + 2, b)], hr[i : min(i + 2, b)])
        result = meters.compute()
        result["lone_psnr"] = lone.compute()
        result["lone_psnr_pooled"] = lone.compute_pooled()
        result["local_count"] = lone.count
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters
@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo unavailable"
)
def test_meters_sum_across_two_gloo_ranks(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    sr, hr = _images()
    want_psnr = M.sr_psnr(sr, hr, 2, test_y_channel=True).mean()
    want_ssim = M.sr_ssim(sr, hr, 2, test_y_channel=True).mean()
    # the pooled PSNR of all 7 images: their summed squared errors, not a sum of per-rank PSNRs
    want_pooled = 10 * np.log10(1 / M.sr_psnr_parts(sr, hr, 2, test_y_channel=True).mse01.mean().item())
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.json") as f:
            got = json.load(f)
        assert got["local_count"] == SPLITS[rank][1] - SPLITS[rank][0]
        assert got["psnr"] == pytest.approx(want_psnr, abs=1e-9)
        assert got["lone_psnr"] == pytest.approx(want_psnr, abs=1e-9)
        assert got["ssim"] == pytest.approx(want_ssim, abs=1e-12)
        assert got["psnr_pooled"] == pytest.approx(want_pooled, abs=1e-9)
        assert got["lone_psnr_pooled"] == pytest.approx(want_pooled, abs=1e-9)
