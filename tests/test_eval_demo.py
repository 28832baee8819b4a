"""The photographs shipped in fastiqa/data and the evaluation part of `fastiqa demo`."""
import argparse
import os

import torch

from fastiqa import eval_demo
from fastiqa.info import collect


def test_shipped_images_and_demo_evaluation(capsys):
    images = eval_demo.load_images()
    assert set(images) == {"astronaut", "chelsea", "coffee"}
    total = sum(os.path.getsize(os.path.join(eval_demo.data_dir(), f"{k}.png")) for k in images)
    assert total < 600_000
    licence = open(os.path.join(eval_demo.data_dir(), "LICENSE-images.txt")).read()
    assert all(k in licence for k in images) and "CC0" in licence and "public domain" in licence
    for hr in images.values():
        assert hr.shape == (1, 3, 256, 256) and 0 <= hr.min() and hr.max() <= 1
        d = eval_demo.degrade(hr)
        assert torch_equal_grid(d["bicubic_x4"]) and torch_equal_grid(d["noise_10"])
    eval_demo.run(argparse.Namespace(device=["cpu"], repeat=1))
    out = capsys.readouterr().out
    means = [line for line in out.splitlines() if line.startswith("mean")]
    assert len(means) == 2
    bicubic = float(means[0].split()[2])
    assert 20 < bicubic < 35  # bicubic x4 on natural photographs
    assert "fastiqa cpu" in out or "fastiqa reference" in out


def torch_equal_grid(x):
    return torch.equal(x, torch.round(x * 255) / 255)


def test_info_lists_the_psnr_family():
    fam = collect()["families"]["psnr"]
    assert fam["on_cpu_tensors"] in ("cpu", "reference")
