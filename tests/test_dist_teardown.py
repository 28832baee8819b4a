"""Two gloo ranks tear their process groups down without hanging, run after run.

On torch < 2.8, ProcessGroupGloo's destructor joins its worker threads with the GIL
held; a worker still holding the last reference to a tensor whose Python object is
gone waits for the GIL to free it, and destroy_process_group() hangs (torch 2.6: 1
run in 3 with torch's *_object collectives; fixed in torch 2.8). Each run here is a
fresh pair of processes that (1) runs `fastiqa eval` through its torchrun path
(fastiqa.cli.main with torchrun's environment: the group is fastiqa's own, torn down
by it), then (2) in a group of the test's own, computes distributed meters, runs
fastiqa.evaluate, and destroys the group. A hang is a run past its time limit.
Slow (about 5 s a run on an idle 2-core machine); .ci/stage_torch_range.sh runs it
on the oldest supported torch. By hand: python -m pytest -m slow tests/test_dist_teardown.py
"""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist

# 20 runs where torch has the destructor deadlock (< 2.8), 3 elsewhere (the slow suite of the
# main CI job); FASTIQA_TEARDOWN_RUNS sets the count
_OLD_TORCH = tuple(int(p) for p in torch.__version__.split(".")[:2]) < (2, 8)
RUNS = int(os.environ.get("FASTIQA_TEARDOWN_RUNS", "20" if _OLD_TORCH else "3"))
RUN_TIMEOUT_S = 120

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                       reason="torch.distributed with gloo unavailable"),
]


def _worker(rank, world, port, folder, out):
    import faulthandler

    import fastiqa
    from fastiqa.cli import main
    from fastiqa.meters import MeterCollection, PSNRMeter, SSIMMeter

    torch.set_num_threads(1)
    faulthandler.dump_traceback_later(RUN_TIMEOUT_S - 15)  # where a hung rank waits, before it is killed
    ref, pred = os.path.join(folder, "hr"), os.path.join(folder, "sr")
    # (1) the torchrun path of `fastiqa eval`: fastiqa initialises and destroys the group
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    rc = main(["eval", "--no-progress", "--device", "cpu", "--ref", ref, "--pred", pred, "--metrics", "psnr,ssim",
               "--json", os.path.join(out, "eval.json")])
    assert rc == 0, rc
    assert not dist.is_initialized()
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        del os.environ[k]
    # (2) the caller's group: meters and fastiqa.evaluate, then the caller destroys it
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(out, 'init')}", rank=rank, world_size=world)
    hr = np.full((3, 20, 22, 3), 100 + rank, np.uint8)
    meters = MeterCollection(psnr=PSNRMeter(0, True), ssim=SSIMMeter(0, True))
    meters.update(hr + 1, hr)
    total = meters.compute()
    res = fastiqa.evaluate(ref, pred, "psnr,mse")
    assert len(res.rows) == 4 and np.isfinite(total["psnr"]), (res.rows, total)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("teardown")
    rng = np.random.default_rng(0)
    for sub in ("hr", "sr"):
        (root / sub).mkdir()
    for i in range(4):
        a = rng.integers(0, 256, (18, 20, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / "hr" / f"im{i}.png")
        Image.fromarray(np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)).save(root / "sr" / f"im{i}.png")
    return root


def test_two_gloo_ranks_tear_down_without_hanging_run_after_run(folder, tmp_path):
    hung, failed = [], []
    for run in range(RUNS):
        out = tmp_path / f"run{run}"
        out.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        p = subprocess.Popen([sys.executable, __file__, str(_free_port()), str(folder), str(out)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            log, _ = p.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the launcher and both ranks
            hung.append((run, p.communicate()[0][-3000:]))
            continue
        if p.returncode != 0:
            failed.append((run, p.returncode, log[-2000:]))
    assert not hung, f"{len(hung)} of {RUNS} runs hung: {hung}"
    assert not failed, failed


if __name__ == "__main__":  # one run: two ranks spawned from here
    import torch.multiprocessing as mp

    port, folder_, out_ = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    mp.spawn(_worker, args=(2, port, folder_, out_), nprocs=2, join=True)
