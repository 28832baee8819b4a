#!/usr/bin/env bash
# CI stage "cpu_mutations": the default tests catch CPU-kernel faults (tests/test_cpu_mutations.py).
# A copy of the tree is built once in a temporary folder with eleven faults compiled in, each
# behind FASTIQA_MUTANT (an AVX2-only and a baseline-only tail loop, a channels-last
# stride, a dropped partial sum, a missing Newton step, a wrong reduction divisor, a gradient sign; four more in
# the LPIPS / DISTS heads: tests/test_cpu_mutations.py lists them); the CPU
# kernels' default tests run against the copy once per fault and must fail, and once
# with no fault and must pass. Expects the CI venv (torch, a C++ compiler) to be active;
# runs from the repository root. Most of the time is the build of the copy (the baseline
# and avx2 levels the faults live on, FASTIQA_CPU_LEVELS; no CUDA); each fault's run starts
# with its own family's test file, so that -x stops early.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "[stage_cpu_mutations] build the mutated copy, then one test run per fault"
MAX_JOBS=${MAX_JOBS:-2} python -m pytest -q -m slow -p no:cacheprovider tests/test_cpu_mutations.py
echo "[stage_cpu_mutations] ok"
