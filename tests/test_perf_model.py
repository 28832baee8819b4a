"""The CUDA performance model (benchmarks/perf_model.py): its counts against a hand count of
the kernels' loops at small shapes, and its time arithmetic."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import perf_model as pm  # noqa: E402

H100 = pm.GPUS["H100"]


def test_pixel_counts_by_hand():
    # 2x3x4x4 = 96 float32 elements; forward with the gradient reads pred and target and writes
    # the gradient: 3 x 96 x 4 B. Charbonnier per element: d = a - b (1), q = d d + c (1),
    # rsqrt (4), value q r and gradient d r (2), acc += v (1), g gmul (1) = 10.
    c = pm.pixel_fwd(96, "float32", "charbonnier", grad=True)
    assert c.dram == 1152 and c.fp == 960
    # backward: read the gradient, write one input's gradient (2 x 96 x 2 B in float16), 2 FP each
    b = pm.pixel_bwd(96, "float16")
    assert b.dram == 384 and b.fp == 192


def test_psnr_counts_by_hand():
    # 1x3x10x10, crop 1: an 8 x 8 Y region; x and y each read 3 channels of 64 pixels (float32):
    # 2 x 3 x 64 x 4 = 1536 B. Per pixel: luma of both (2 x 3 FMA) and the difference (1),
    # quantisation of both (2 x 4), the statistic (2) and the sum (1) = 18.
    c = pm.psnr_fwd((1, 3, 10, 10), "float32", crop=1, luma=True, quantize=True)
    assert c.dram == 1536 and c.fp == 64 * 18
    assert c.inflight == 2 * 3 * 4  # cropped: element loads, 6 streams of 4 bytes


def test_ssim_fwd_counts_by_hand():
    # 1x1x16x16 float32, valid 11x11: one 32x32 tile (M = 32 fits every GPU's shared memory),
    # S = 42 source rows x 32 columns blurred horizontally (11 taps x (5 FMA + 3 MUL) = 88 each),
    # 6 x 6 outputs: vertical 5 x 11 = 55 FMA, value 10 + 2 divisions of 8, 2 sums.
    c = pm.ssim_fwd((1, 1, 16, 16), H100, "float32", win=11, padding="valid")
    assert c.extra["tile"] == 32
    assert c.fp == 42 * 32 * 88 + 36 * (55 + 26 + 2)
    # shared memory: the two 42 x 42 tiles stored, 2 loads per horizontal tap and 5 stores per
    # item, 5 loads per vertical tap
    assert c.smem == 2 * 42 * 42 + 42 * 32 * (22 + 5) + 36 * 55
    # x and y read once, one (S, cs, l1) partial triple written
    assert c.dram == 2 * 256 * 4 + 12


def test_ssim_grad_tile_follows_shared_memory():
    # fused gradient, win 11, float32: G = 32 needs 4 x (2 x 52^2 + 5 x 52 x 42 + 4 x 42^2) =
    # 93,536 B: fits the RTX 4090's 99 KB; float64 (187,072 B) only H100's 227 KB at G = 32
    assert pm._grad_tile(11, 4, pm.GPUS["RTX 4090"]) == 32
    assert pm._grad_tile(11, 8, pm.GPUS["RTX 4090"]) == 16
    assert pm._grad_tile(11, 8, H100) == 32


def test_gram_counts_by_hand():
    # 1 image, C = 64 (one 64 x 64 tile), K = 16: 64 x 64 x 16 FMAs; with y twice
    assert pm.gram_tiles(1, 64, 16).fp == 65536
    assert pm.gram_tiles(1, 64, 16, with_y=True).fp == 131072
    # C = 65: two tile rows, the upper triangle of 3 tiles of 64 x 64 entries
    assert pm.gram_tiles(1, 65, 16).fp == 3 * 4096 * 16
    # float16 runs on tensor cores
    t = pm.gram_tiles(1, 64, 16, "float16")
    assert t.kernel == "tiles_wmma_kernel" and t.tc == 65536 and t.fp == 0
    # backward apply: C x C x K per image
    assert pm.gram_apply(2, 8, 5).fp == 2 * 8 * 8 * 5


def test_time_is_the_largest_part():
    cells = {}
    c = pm.Cost("k", dram=H100.bw * 1e-3, fp=H100.fp32 / 2 * 2e-3)
    r = pm.predict(c, H100, cells)
    assert r["bound"] == "fp" and r["t"] == pytest.approx(2e-3)
    c = pm.Cost("k", dram=H100.bw * 3e-3, fp=H100.fp32 / 2 * 2e-3)
    assert pm.predict(c, H100, cells)["t"] == pytest.approx(3e-3)
    # float64 work at the float64 rate
    c = pm.Cost("k", fp=H100.fp64 / 2 * 1e-3, f64=True)
    assert pm.predict(c, H100, cells)["t"] == pytest.approx(1e-3)
    # shared memory: 32 words per SM per clock
    c = pm.Cost("k", smem=H100.sms * 32 * H100.clock * 1e-3)
    assert pm.predict(c, H100, cells)["t"] == pytest.approx(1e-3)


def test_littles_law_derates_bandwidth():
    # occupancy 0.5 on H100: 32 warps x 32 threads x 132 SMs resident; 4 bytes in flight each
    # hold 540,672 B, bandwidth x latency needs 2.01 MB: bandwidth x 0.269
    cells = {("k", "90"): (40, 0.5)}
    c = pm.Cost("k", dram=H100.bw * 1e-3, inflight=4)
    r = pm.predict(c, H100, cells)
    want = 0.5 * 64 * 32 * 132 * 4 / (H100.bw * pm.LATENCY)
    assert r["bw_fraction"] == pytest.approx(want)
    assert r["t"] == pytest.approx(1e-3 / want)
    # 16-byte vectors per stream, two streams: enough in flight, full bandwidth
    assert pm.predict(pm.Cost("k", dram=1.0, inflight=32), H100, cells)["bw_fraction"] == 1.0


def test_clocks_from_vendor_figures():
    # boost clocks implied by FP32 rate / (2 x SMs x lanes): H100 SXM 1.98 GHz, A100 1.41, RTX 4090 2.52
    assert H100.clock == pytest.approx(1.98e9, rel=0.01)
    assert pm.GPUS["A100"].clock == pytest.approx(1.41e9, rel=0.01)
    assert pm.GPUS["RTX 4090"].clock == pytest.approx(2.52e9, rel=0.01)


def test_ops_and_report():
    t, wall, rows = pm.predict_op("ssim_valid_fwdbwd", (8, 3, 256, 256), H100, cells={})
    assert [r["kernel"] for r in rows] == ["ssim_fwd_kernel", "ssim_grad_kernel"]
    assert wall == pytest.approx(t + 2 * pm.LAUNCH_S)
    with pytest.raises(ValueError, match="op must be one of"):
        pm.op_kernels("nope", (1, 1, 1, 1), H100)
    text = pm.report(["H100"], markdown=True)
    assert "fused-ssim" in text and "pull/33" in text


def test_write_results_replaces_its_block(tmp_path):
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n")
    pm.write_results("table one", doc)
    pm.write_results("table two", doc)
    text = doc.read_text()
    assert text.count(pm.BEGIN) == 1 and "table two" in text and "table one" not in text


def test_perceptual_head_counts_by_hand():
    # LPIPS, 1 image, 4 channels, 10 pixels, float32: reads both features once (2 x 40 x 4 B);
    # per pixel 4 x 6 channel FP + 2 square roots (4) + 2 divisions (8) + the sum (1)
    c = pm.lpips_fwd(1, 4, 10)
    assert c.dram == 320 and c.fp == 10 * (24 + 8 + 16 + 1)
    # backward with one gradient: 3 arrays; per channel 2 + 6 + 4 + 3 = 15
    b = pm.lpips_bwd(1, 4, 10, outputs=1)
    assert b.dram == 480 and b.fp == 10 * (60 + 8 + 16 + 2 * (3 + 8))
    # DISTS: 7 FP an element and 20 + 2 divisions a plane
    d = pm.dists_fwd(2, 3, 10)
    assert d.dram == 2 * 60 * 4 and d.fp == 6 * (70 + 20 + 16)
    # VGG16 layers of an 8x3x64x64 input: DISTS adds the image itself
    assert pm.head_layers((8, 3, 64, 64), "lpips")[0] == (8, 64, 4096)
    assert pm.head_layers((8, 3, 64, 64), "dists")[0] == (8, 3, 4096)
    assert len(pm.op_kernels("dists_heads_fwdbwd", (8, 3, 64, 64), H100)) == 18
