#!/usr/bin/env bash
# CI stage "cuda": the CUDA kernels checked without a GPU.
#   1. tests/gpu/gpu_audit.py: nvcc -Xptxas -v on every kernel for every arch of the default
#      list: registers, smem, occupancy, 128-bit loads; no spills beyond the listed pairs
#   2. the CUDA-on-CPU harness (tests/cuda_emu): plain mode over the full matrix of all five
#      families (every emulated GPU for SSIM), ThreadSanitizer and ASan+UBSan over small subsets
#   3. the mutation test: each injected fault class must be caught
#   4. the Triton compile check (sm_80 / sm_90) of all five families (one process per CPU)
# Runs from the repo root in the CI venv (fastiqa installed); prints "[cuda] ..." lines,
# each with the duration of the part it closes.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
part_t0=$t0
part() { local now; now=$(date +%s); echo "[cuda] ($(( now - part_t0 ))s) done; [$(( now - t0 ))s total] $*"; part_t0=$now; }
echo "[cuda] stage start"

export NVCC=${NVCC:-/usr/local/cuda-13.0/bin/nvcc}
if [ ! -x "$NVCC" ]; then NVCC=$(command -v nvcc || true); fi
if [ -n "$NVCC" ]; then
  # registers / shared memory / spills / occupancy / 128-bit loads per kernel per arch.
  # Fails on a spill of any (kernel, arch) pair not listed here, and on a kernel that lost
  # its 128-bit global loads (csrc/cuda/vec.cuh). Listed: the spills ptxas reports today
  # (benchmarks/RESULTS.md, "Static GPU audit"; README, "Static GPU audit"):
  # ssim_adjoint_kernel sm_86 / sm_89 60 B (per-axis windows: 36 B before, and sm_80's
  # 24 B gone); gram apply_kernel sm_100 24 B; lpips_fwd_kernel sm_86 / sm_89 28 B (its
  # float64 instance, around a double division's slow-path call).
  python tests/gpu/gpu_audit.py --allow-spills \
    ssim_adjoint_kernel@86,ssim_adjoint_kernel@89,apply_kernel@100,lpips_fwd_kernel@86,lpips_fwd_kernel@89
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
python -m pytest -q -m slow -n 2 tests/test_cuda_emu_mutations.py -p no:cacheprovider  # 25 independent builds
part "mutation test"
root=$(pwd)
(cd /tmp && TRITON_INTERPRET=0 python "$root/tests/gpu/triton_compile_check.py")
part "Triton compile check (all five families, sm_80 / sm_90)"
echo "[cuda] stage passed in $(( $(date +%s) - t0 ))s"
