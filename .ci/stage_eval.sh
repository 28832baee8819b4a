#!/usr/bin/env bash
# CI stage "eval": `fastiqa eval` / fastiqa.evaluate with the eval extra's decoders
# (OpenCV, tifffile, tqdm) installed, then the eval and image-reading tests,
# including the torchrun runs on 2 and 3 CPU processes (gloo) compared byte for
# byte with one process, and the eval benchmark in smoke mode.
# Expects the CI venv with fastiqa installed (editable) to be active; runs from the
# repository root. Each line prints the seconds since the stage began.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
say() { echo "[stage_eval] [$(( $(date +%s) - t0 ))s] $*"; }

say "installing the eval extra's packages by name (the editable install has no deps of its own)"
pip install -q "opencv-python-headless>=4.8" "tifffile>=2023.1" tqdm
python -c "import cv2, tifffile; print('[stage_eval] OpenCV', cv2.__version__, '/ tifffile', tifffile.__version__)"

say "eval and image-reading tests, slow ones included (torchrun with 2 and 3 gloo ranks)"
python -m pytest -q -p no:cacheprovider -m "slow or not slow" tests/test_eval_*.py tests/test_imageio_*.py

say "eval benchmark, smoke mode (proves it runs; numbers: benchmarks/RESULTS.md)"
FASTIQA_BENCH_SMOKE=1 python -m pytest -q -p no:cacheprovider benchmarks/test_bench_eval.py --benchmark-disable

say "ok"
