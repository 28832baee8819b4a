"""pytest hooks of the benchmark suite; the machinery is in benchmarks/harness.py."""
from machine_limits import mirror_isa_env

mirror_isa_env()  # before torch loads: its BLAS and ATen code at FASTIQA_CPU_ISA's level (machine_limits.py)

import pytest  # noqa: E402
import torch  # noqa: E402
from machine_limits import limits  # noqa: E402

from harness import ROWS, speedups, write_rows  # noqa: E402


def pytest_configure(config):
    # torch's own torch/utils/mkldnn.py (imported by torch.compile's inductor) still uses the
    # deprecated torch.jit.script_method: expected, filtered here only (other warnings show)
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("fastiqa benchmark summary (median; x = speed-up over eager; floor = memory-floor time / time; "
               "GB/s, GFMA/s achieved; roof = machine-floor time / time)")
    for dev in sorted({"cuda" if "cuda" in key else "cpu" for key, *_ in ROWS}):
        lim = limits(dev)
        tr.write_line(f"limits ({dev}): triad {lim['bw'] / 1e9:.1f} GB/s, GEMM {lim['fma'] / 1e9:.1f} GFMA/s at "
                      f"{lim['threads'] or 'all'} threads ({lim['fma_1t'] / 1e9:.1f} at 1), {lim['gemm_isa']}")
    tr.write_line(f"{'case':<58} {'impl':<16} {'ms':>9} {'x eager':>8} {'floor':>6} {'GB/s':>7} {'GFMA/s':>7} "
                  f"{'roof':>5} bound")
    for key, impl, median, ratio, frac, roof in ROWS:
        tr.write_line(f"{key:<58} {impl:<16} {median * 1e3:>9.3f} {ratio:>8.2f} {frac:>6.2f} {roof['gbps']:>7.1f} "
                      f"{roof['gfma_s']:>7.1f} {roof['roof_frac']:>5.2f} {roof['bound']}")
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
