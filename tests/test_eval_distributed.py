"""`torchrun --nproc-per-node N -m fastiqa eval` (gloo on CPU) writes the same CSV
and JSON bytes as one process, with 2 ranks and with 3 ranks over 7 items (not
divisible by 3), including a pair that fails on one rank and one that cannot be
paired: each reported once, the other results kept; a usage error is one message;
fastiqa.evaluate in a 2-rank group gives every rank the whole result; the pooled PSNR
(psnr_pooled) sums the squared errors of every rank's pairs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch.distributed as dist
from PIL import Image

pytestmark = [
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                       reason="torch.distributed with gloo unavailable"),
    pytest.mark.slow,  # torchrun starts 2-3 interpreters per test: .ci/stage_eval.sh runs these
]

BROKEN = "im3.png: cannot read image"
MISSING = "im5.png: no prediction"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    ref, pred = root / "hr", root / "sr"
    ref.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        a = rng.integers(0, 256, (24 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(a).save(ref / f"im{i}.png")
        if i == 5:
            continue  # no prediction: an error found while pairing
        b = np.clip(a + rng.normal(0, 5 + i, a.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(b).save(pred / f"im{i}.png")
    (pred / "im3.png").write_bytes(b"broken")  # unreadable: fails on the rank that holds item 3
    return ref, pred


TORCHRUN = ["-m", "torch.distributed.run", "--standalone"]


def _pooled_oracle(folders):
    """10 log10(255^2 / (total squared error / total samples)) of the Y planes cropped by 2
    of the pairs that score (not im3, im5), float64, written out here."""
    ref, pred = folders
    sse, n = 0.0, 0
    for i in (0, 1, 2, 4, 6):
        a, b = (np.asarray(Image.open(f / f"im{i}.png"), dtype=np.float64) for f in (ref, pred))
        ya, yb = (16 + (65.481 * t[..., 0] + 128.553 * t[..., 1] + 24.966 * t[..., 2]) / 255 for t in (a, b))
        d = (ya - yb)[2:-2, 2:-2]
        sse, n = sse + float((d * d).sum()), n + d.size
    return 10 * np.log10(255.0 ** 2 / (sse / n))


def _eval(folders, out, launcher, metrics="psnr,ssim,mae"):
    ref, pred = folders
    args = ["eval", "--no-progress", "--ref", str(ref), "--pred", str(pred), "--scale", "2", "--y-channel",
            "--metrics", metrics, "--csv", str(out / "r.csv"), "--json", str(out / "r.json")]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "OMP_NUM_THREADS")}
    p = subprocess.run([sys.executable, *launcher, "-m", "fastiqa", *args], capture_output=True, text=True,
                       timeout=180, env=env, cwd=out)
    return p


@pytest.fixture(scope="module")
def single(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    p = _eval(folders, out, [])
    assert p.returncode == 1, p.stderr
    assert p.stderr.count(BROKEN) == 1 and p.stderr.count(MISSING) == 1
    return out


@pytest.mark.parametrize("nproc", [2, 3])
def test_torchrun_writes_the_single_process_bytes(folders, single, tmp_path, nproc):
    p = _eval(folders, tmp_path, [*TORCHRUN, f"--nproc-per-node={nproc}"])
    assert p.returncode != 0  # the ranks exit 1 (two pairs failed), as the single process does
    assert p.stderr.count(BROKEN) == 1 and p.stderr.count(MISSING) == 1, p.stderr  # reported once, by rank 0
    assert f"on {nproc} ranks (gloo" in p.stdout and p.stdout.count("mean") == 1
    for name in ("r.csv", "r.json"):
        assert (tmp_path / name).read_bytes() == (single / name).read_bytes(), name
    text = (tmp_path / "r.csv").read_text()
    assert text.count("\nim") == 7 and BROKEN in text and MISSING in text
    # the pooled PSNR sums every rank's squared errors: pairs of different heights (24 + i)
    # weigh by their sample counts, as in the single process (same bytes above)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert abs(doc["mean"]["psnr_pooled"] - _pooled_oracle(folders)) < 1e-9


def test_torchrun_usage_error_is_reported_once(folders, tmp_path):
    p = _eval(folders, tmp_path, [*TORCHRUN, "--nproc-per-node=2"], metrics="psnr,vif")
    assert p.returncode != 0 and p.stderr.count("unknown metric 'vif'") == 1, p.stderr
    assert not (tmp_path / "r.csv").exists()


def _api_worker(rank, world, init_file, ref, pred, out_dir):
    import json

    import torch

    import fastiqa

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        res = fastiqa.evaluate(ref, pred, "psnr,mse", crop_border=1)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"rows": res.rows, "means": res.means}, f)
    finally:
        dist.destroy_process_group()


def test_evaluate_in_a_two_rank_group_gives_every_rank_the_whole_result(folders, tmp_path):
    import json

    import torch.multiprocessing as mp

    import fastiqa

    ref, pred = map(str, folders)
    mp.spawn(_api_worker, args=(2, str(tmp_path / "init"), ref, pred, str(tmp_path)), nprocs=2, join=True)
    alone = fastiqa.evaluate(ref, pred, "psnr,mse", crop_border=1)
    want = json.loads(json.dumps({"rows": alone.rows, "means": alone.means}))
    for rank in range(2):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == want
    assert len(want["rows"]) == 7 and sum("error" in r for r in want["rows"]) == 2
