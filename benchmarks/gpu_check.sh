#!/usr/bin/env bash
# GPU check: build fastiqa with CUDA, run the CUDA and Triton tests on the GPU,
# run the benchmarks on CUDA tensors, print a summary table last.
# Meant for a lent H100/H200 (no network): uses the torch, triton, nvcc, pytest
# and pytest-benchmark already installed there. Budget: under 8 minutes.
#   bash benchmarks/gpu_check.sh            (from the repository root)
# Writes logs to ${OUT:-/tmp/fastiqa_gpu_check}/.
set -u
cd "$(dirname "$0")/.."
LOG=${OUT:-/tmp/fastiqa_gpu_check}
mkdir -p "$LOG"
PY=${PYTHON:-python3}
start=$(date +%s)
export TRITON_INTERPRET=0 FASTIQA_BACKEND=
unset FASTIQA_BACKEND

step() { echo "== $(( $(date +%s) - start ))s: $*"; }

step "build (FORCE_CUDA=1, arch 9.0)"
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS=${MAX_JOBS:-16} \
  $PY -m pip install --no-build-isolation --no-deps -e . >"$LOG/build.log" 2>&1
build_rc=$?
tail -3 "$LOG/build.log"
grep -i "spill" "$LOG/build.log" | head -5

step "info"
(cd /tmp && $PY -m fastiqa info) 2>&1 | tee "$LOG/info.txt"

step "tests on the GPU (CUDA and Triton backends, cuda tensors)"
timeout 240 $PY -m pytest -q -x -k "cuda" tests/ -p no:cacheprovider >"$LOG/tests.log" 2>&1
tests_rc=$?
tail -5 "$LOG/tests.log"

step "compute-sanitizer memcheck on a small pixel-loss run"
cat >"$LOG/sanitize.py" <<'PYEOF'
import torch, fastiqa.functional as F
for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
    p = torch.rand(3, 5, 37, 53, device="cuda", dtype=dt, requires_grad=True)
    t = torch.rand(3, 5, 37, 53, device="cuda", dtype=dt)
    w = torch.rand(3, 1, 37, 53, device="cuda", dtype=dt)
    for fn in (F.l1_loss, F.mse_loss, F.charbonnier_loss):
        for red in ("mean", "none", "weighted_mean"):
            fn(p, t, w, reduction=red, backend="cuda").sum().backward()
torch.cuda.synchronize(); print("sanitize run ok")
PYEOF
if command -v compute-sanitizer >/dev/null; then
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $PY "$LOG/sanitize.py" >"$LOG/sanitizer.log" 2>&1
  san_rc=$?
else
  san_rc=127; echo "compute-sanitizer not found" >"$LOG/sanitizer.log"
fi
tail -3 "$LOG/sanitizer.log"

step "SSIM family: cuda/triton against the float64 reference, 1080p loss vs the memory floor"
timeout 150 $PY benchmarks/gpu_check_ssim.py >"$LOG/ssim.log" 2>&1
ssim_rc=$?
tail -12 "$LOG/ssim.log"

step "gram family: cuda/triton against the float64 reference, style-loss timings"
timeout 120 $PY benchmarks/gpu_check_gram.py >"$LOG/gram.log" 2>&1
gram_rc=$?
tail -8 "$LOG/gram.log"

step "benchmarks on CUDA tensors"
timeout 240 $PY -m pytest -q benchmarks/ -k "cuda" -p no:cacheprovider \
  --benchmark-columns=median,iqr --benchmark-sort=name >"$LOG/bench.log" 2>&1
bench_rc=$?

step "summary"
echo "================ fastiqa GPU check summary ================"
$PY -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuda', torch.version.cuda)"
$PY -c "import triton; print('triton', triton.__version__)" 2>/dev/null
echo "build rc=$build_rc  tests rc=$tests_rc  sanitizer rc=$san_rc  gram rc=$gram_rc  ssim rc=$ssim_rc  benchmarks rc=$bench_rc  total $(( $(date +%s) - start ))s"
grep -E "passed|failed" "$LOG/tests.log" | tail -1
grep -E "correctness:|floor|fastiqa\[|fused_ssim|reference \(" "$LOG/ssim.log"
sed -n '/fastiqa benchmark summary/,$p' "$LOG/bench.log" | grep -vE "^=+ *[0-9]+ passed" | head -80
