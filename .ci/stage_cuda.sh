#!/usr/bin/env bash
# CI stage "cuda": the CUDA kernels checked without a GPU.
#   1. nvcc -Xptxas -v on every kernel for every arch of the default list: no register spills
#      (benchmarks/gpu_audit.py when present also regenerates the audit table)
#   2. the CUDA-on-CPU harness (tests/cuda_emu): plain mode over the full matrix of all four
#      families (every emulated GPU for SSIM), ThreadSanitizer and ASan+UBSan over small subsets
#   3. the mutation test: each injected fault class must be caught
#   4. the Triton compile check (sm_80 / sm_90) of all four families
# Expected duration on the 2-core CI machine: ~9 minutes (nvcc ~3, harness ~4, mutations ~2;
# the Triton check is separate from .ci/run step 3b, which this replaces once wired).
# Runs from the repo root in the CI venv (fastiqa installed); prints "[cuda] ..." lines.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
part_t0=$t0
part() { local now; now=$(date +%s); echo "[cuda] ($(( now - part_t0 ))s) done; [$(( now - t0 ))s total] $*"; part_t0=$now; }
echo "[cuda] stage start"

NVCC=${NVCC:-/usr/local/cuda-13.0/bin/nvcc}
if [ ! -x "$NVCC" ]; then NVCC=$(command -v nvcc || true); fi
if [ -n "$NVCC" ]; then
  archs=$("$NVCC" --list-gpu-arch | sed -n 's/^compute_//p' | grep -E '^(75|80|86|89|90|100|120)$' | sed 's/^/sm_/' | tr '\n' ' ')
  echo "[cuda] nvcc spill check for: $archs"
  gencode=""
  for arch in $archs; do gencode="$gencode -gencode arch=compute_${arch#sm_},code=$arch"; done
  for cu in csrc/cuda/*.cu; do
    # shellcheck disable=SC2086
    out=$("$NVCC" -O3 -std=c++17 $gencode -Xptxas -v -c "$cu" -o /tmp/fastiqa_stage_cuda.o 2>&1)
    if echo "$out" | grep -E "[1-9][0-9]* bytes spill (stores|loads)" >/dev/null; then
      echo "$out" | grep -B3 -E "[1-9][0-9]* bytes spill"
      echo "[cuda] FAIL: register spills in $cu"; exit 1
    fi
    echo "[cuda] $cu: $(echo "$out" | grep -c 'Function properties') kernel builds over $archs, 0 spills"
  done
  part "nvcc spill check"
else
  echo "[cuda] nvcc not found: spill check skipped"
fi

python tests/cuda_emu/run.py --mode plain --level full
part "harness plain, full matrix"
python tests/cuda_emu/run.py --mode tsan --level sanitize
part "harness ThreadSanitizer"
python tests/cuda_emu/run.py --mode asan --level sanitize
part "harness ASan + UBSan"
python -m pytest -q -m slow tests/test_cuda_emu_mutations.py -p no:cacheprovider
part "mutation test"
if [ -f benchmarks/triton_compile_check.py ]; then
  (cd /tmp && TRITON_INTERPRET=0 python "$OLDPWD/benchmarks/triton_compile_check.py")
  part "Triton compile check"
fi
echo "[cuda] stage passed in $(( $(date +%s) - t0 ))s"
