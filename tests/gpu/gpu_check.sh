#!/usr/bin/env bash
# GPU check, for a lent GPU (H100/H200; no network: uses the torch, triton, nvcc, pytest and
# pytest-benchmark installed there). Budget: ~12 minutes on an H200.
#   1. build with CUDA for this GPU
#   2. fastiqa selftest: every family x backend x dtype on every device vs the float64 oracle
#   3. the CUDA tests of every family (pytest -k cuda)
#   4. compute-sanitizer memcheck, racecheck, synccheck, initcheck over every family's CUDA
#      kernels (the selftest's CUDA rows: all four families, every dtype, values and gradients)
#   5. speed against the memory floor and the eager reference; every kernel's time against
#      the performance model's prediction (tests/gpu/perf_check.py, benchmarks/perf_model.py);
#      the CUDA benchmarks
#   summary last.
#   bash tests/gpu/gpu_check.sh            (from anywhere in the checkout)
# Writes logs to $OUT/ when set, else to a new folder made by mktemp (printed first).
set -u
cd "$(dirname "$0")/../.."
LOG=${OUT:-$(mktemp -d /tmp/fastiqa_gpu_check.XXXXXX)}
mkdir -p "$LOG"
echo "logs: $LOG"
PY=${PYTHON:-python3}
start=$(date +%s)
export TRITON_INTERPRET=0
unset FASTIQA_BACKEND

step() { echo "== $(( $(date +%s) - start ))s: $*"; }

step "build (FORCE_CUDA=1, arch of this GPU)"
arch=$($PY -c "import torch; c = torch.cuda.get_device_capability(); print(f'{c[0]}.{c[1]}')" 2>/dev/null || echo 9.0)
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$arch}" MAX_JOBS=${MAX_JOBS:-16} \
  $PY -m pip install --no-build-isolation --no-deps -e . >"$LOG/build.log" 2>&1
build_rc=$?
tail -3 "$LOG/build.log"
grep -i "spill" "$LOG/build.log" | head -5

step "info"
(cd /tmp && $PY -m fastiqa info) 2>&1 | tee "$LOG/info.txt"

step "fastiqa selftest (every family, backend, device, dtype vs float64)"
(cd /tmp && timeout 240 $PY -m fastiqa selftest) >"$LOG/selftest.txt" 2>&1
selftest_rc=$?
(cd /tmp && timeout 120 $PY -m fastiqa selftest --json --quick) >"$LOG/selftest.json" 2>/dev/null
grep -E "FAIL|ERROR" "$LOG/selftest.txt" | head -10
tail -1 "$LOG/selftest.txt"

step "CUDA tests of every family"
timeout 200 $PY -m pytest -q -x -k "cuda" tests/test_pixel*.py tests/test_ssim*.py tests/test_psnr*.py tests/test_gram*.py \
  -p no:cacheprovider >"$LOG/tests.log" 2>&1
tests_rc=$?
tail -3 "$LOG/tests.log"

san_summary=""
san_rc=0
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck synccheck initcheck; do
    step "compute-sanitizer --tool $tool over the CUDA rows of the selftest (all four families)"
    (cd /tmp && timeout 120 compute-sanitizer --tool "$tool" --error-exitcode 9 \
      $PY -m fastiqa selftest --quick --device cuda --backend cuda) >"$LOG/sanitizer_$tool.log" 2>&1
    rc=$?
    [ $rc -ne 0 ] && san_rc=$rc
    san_summary="$san_summary $tool=$rc"
    grep -E "ERROR SUMMARY|========= (Invalid|Race|Barrier|Uninitialized)" "$LOG/sanitizer_$tool.log" | head -3
  done
else
  san_rc=127; san_summary=" compute-sanitizer not found"
fi

step "speed: SSIM loss vs the memory floor, style loss vs the reference"
timeout 150 $PY benchmarks/gpu_check_speed.py >"$LOG/speed.log" 2>&1
speed_rc=$?
tail -8 "$LOG/speed.log"

step "performance model: predicted vs measured per kernel (tests/gpu/perf_check.py)"
timeout 240 $PY tests/gpu/perf_check.py >"$LOG/perf.log" 2>&1
perf_rc=$?
tail -4 "$LOG/perf.log"

step "benchmarks on CUDA tensors"
FASTIQA_BENCH_ROWS="$LOG/bench_rows" timeout 200 $PY -m pytest -q benchmarks/ -k "cuda" -p no:cacheprovider \
  --benchmark-columns=median,iqr --benchmark-sort=name >"$LOG/bench.log" 2>&1
bench_rc=$?

step "summary"
echo "================ fastiqa GPU check summary ================"
$PY -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuda', torch.version.cuda)"
$PY -c "import triton; print('triton', triton.__version__)" 2>/dev/null
echo "build rc=$build_rc  selftest rc=$selftest_rc  tests rc=$tests_rc  sanitizers:$san_summary  speed rc=$speed_rc  perf rc=$perf_rc  benchmarks rc=$bench_rc  total $(( $(date +%s) - start ))s"
tail -1 "$LOG/selftest.txt"
grep -E "passed|failed" "$LOG/tests.log" | tail -1
grep -E "floor|fastiqa\[|fused_ssim|reference \(|style fwd" "$LOG/speed.log"
cat "$LOG/perf.log"
sed -n '/fastiqa benchmark summary/,$p' "$LOG/bench.log" | grep -vE "^=+ *[0-9]+ passed" | head -80
[ $build_rc -eq 0 ] && [ $selftest_rc -eq 0 ] && [ $tests_rc -eq 0 ] && [ $san_rc -eq 0 ]
