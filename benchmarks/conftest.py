"""pytest hooks of the benchmark suite; the machinery is in benchmarks/harness.py."""
import pytest
import torch

from harness import ROWS, speedups, write_rows


def pytest_configure(config):
    # torch's own torch/utils/mkldnn.py (imported by torch.compile's inductor) still uses the
    # deprecated torch.jit.script_method: expected, filtered here only (other warnings show)
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("fastiqa benchmark summary (median; x = speed-up over eager; floor = memory-floor time / time)")
    tr.write_line(f"{'case':<58} {'impl':<16} {'ms':>9} {'x eager':>8} {'floor':>6}")
    for key, impl, median, ratio, frac in ROWS:
        tr.write_line(f"{key:<58} {impl:<16} {median * 1e3:>9.3f} {ratio:>8.2f} {frac:>6.2f}")
    tr.section("fastiqa speed-up over each implementation, same run (the bars of issue 11)")
    for key, impl, x in speedups():
        tr.write_line(f"{key:<58} vs {impl:<16} {x:>7.2f}x")
    prefix = write_rows()
    if prefix:
        tr.write_line(f"rows written: {prefix}.csv, {prefix}.json")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    yield
    torch._dynamo.reset()
