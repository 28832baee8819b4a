#!/usr/bin/env bash
# GPU check (DESIGN.md section 4): builds fastiqa with its CUDA kernels, checks the CUDA and
# Triton SSIM paths against the float64 reference on the GPU, times the SSIM loss against the
# reference, torch.compile and the peers that are installed, and reports the fraction of the
# memory floor reached. Its last line names the device it ran on. Record the summary in
# benchmarks/RESULTS.md.
#     bash benchmarks/gpu_check.sh            (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-16} "$PY" -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | tail -n 20
"$PY" benchmarks/gpu_check.py
"$PY" -m pytest benchmarks/test_bench_ssim.py -q -p no:cacheprovider -k cuda \
    --benchmark-columns=median,min,rounds --benchmark-sort=name 2>&1 | grep -v "^DEBUG" || true
"$PY" -c "import torch; print('gpu_check ran on:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuda', torch.version.cuda)"
