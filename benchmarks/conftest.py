"""Benchmarks: fastiqa against the plain PyTorch reference, torch.compile of it and peers,
in one run (ratios are only meaningful within a run). `pytest benchmarks/`."""
import os

import pytest
import torch


def devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
