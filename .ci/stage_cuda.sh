#!/usr/bin/env bash
# CI stage "cuda": the CUDA kernels checked without a GPU.
#   1. benchmarks/gpu_audit.py: nvcc -Xptxas -v on every kernel for every arch of the default
#      list (replaces .ci/run step 4): registers, smem, occupancy, vectorised loads; no spills
#   2. the CUDA-on-CPU harness (tests/cuda_emu): plain mode over the full matrix of all four
#      families (every emulated GPU for SSIM), ThreadSanitizer and ASan+UBSan over small subsets
#   3. the mutation test: each injected fault class must be caught
#   4. the Triton compile check (sm_80 / sm_90) of all four families
# Expected duration on the 2-core CI machine: ~10 minutes, estimated from CPU times measured
# on a loaded machine (audit ~2, harness plain full ~3, TSan + ASan ~2, mutations ~3,
# Triton ~2); the Triton check replaces .ci/run step 3b (12 min today) and the audit step 4.
# Runs from the repo root in the CI venv (fastiqa installed); prints "[cuda] ..." lines.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
part_t0=$t0
part() { local now; now=$(date +%s); echo "[cuda] ($(( now - part_t0 ))s) done; [$(( now - t0 ))s total] $*"; part_t0=$now; }
echo "[cuda] stage start"

export NVCC=${NVCC:-/usr/local/cuda-13.0/bin/nvcc}
if [ ! -x "$NVCC" ]; then NVCC=$(command -v nvcc || true); fi
if [ -n "$NVCC" ]; then
  # registers / shared memory / spills / occupancy / vectorised loads per kernel per arch; fails on a spill
  # Known findings (issue 10), reported in the table, not failed: 8-36 B spills of the float64
  # SSIM two-pass gradient's adjoint kernel (the fallback for large windows) on sm_80/86/89, and
  # of float64 pixel / gram / SSIM kernels on Blackwell sm_100/120. Everything else must stay
  # spill-free on every arch.
  python benchmarks/gpu_audit.py --allow-spills 100,120,ssim_adjoint_kernel@80,ssim_adjoint_kernel@86,ssim_adjoint_kernel@89
  part "static GPU audit (nvcc -Xptxas -v, every arch of the default list)"
else
  echo "[cuda] nvcc not found: static audit skipped"
fi

python tests/cuda_emu/run.py --mode plain --level full
part "harness plain, full matrix"
python tests/cuda_emu/run.py --mode tsan --level sanitize
part "harness ThreadSanitizer"
python tests/cuda_emu/run.py --mode asan --level sanitize
part "harness ASan + UBSan"
python -m pytest -q -m slow tests/test_cuda_emu_mutations.py -p no:cacheprovider
part "mutation test"
root=$(pwd)
(cd /tmp && TRITON_INTERPRET=0 python "$root/benchmarks/triton_compile_check.py")
part "Triton compile check (all four families, sm_80 / sm_90)"
echo "[cuda] stage passed in $(( $(date +%s) - t0 ))s"
