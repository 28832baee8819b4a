#!/usr/bin/env bash
# CI stage "eval": `fastiqa eval` / fastiqa.evaluate with the eval extra's decoders
# (OpenCV, tifffile, tqdm) installed, then the eval and image-reading tests,
# including the torchrun runs on 2 and 3 CPU processes (gloo) compared byte for
# byte with one process, and the eval benchmark in smoke mode.
# Expects the CI venv with fastiqa installed (editable) to be active; runs from the
# repository root. Expected duration on the 2-core machine: about 2 minutes
# (pip install ~20 s from the local mirror, tests ~90 s, benchmark smoke ~10 s).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[stage_eval] $*"; }

say "installing the eval extra's packages by name (the editable install has no deps of its own)"
pip install -q "opencv-python-headless>=4.8" "tifffile>=2023.1" tqdm
python -c "import cv2, tifffile; print('[stage_eval] OpenCV', cv2.__version__, '/ tifffile', tifffile.__version__)"

say "eval and image-reading tests (torchrun with 2 and 3 gloo ranks included)"
python -m pytest -q -p no:cacheprovider tests/test_eval_*.py tests/test_imageio_*.py

say "eval benchmark, smoke mode (proves it runs; numbers: benchmarks/RESULTS.md)"
FASTIQA_BENCH_SMOKE=1 python -m pytest -q -p no:cacheprovider benchmarks/test_bench_eval.py --benchmark-disable

say "torchrun end to end from the command line"
tmp=$(mktemp -d)
python - "$tmp" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
for d in ("hr", "sr"):
    os.makedirs(os.path.join(root, d))
rng = np.random.default_rng(0)
for i in range(5):
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    Image.fromarray(a).save(os.path.join(root, "hr", f"{i}.png"))
    Image.fromarray(np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)).save(os.path.join(root, "sr", f"{i}.png"))
PY
python -m fastiqa eval --no-progress --ref "$tmp/hr" --pred "$tmp/sr" --scale 2 --y-channel --json "$tmp/one.json" >/dev/null
python -m torch.distributed.run --standalone --nproc-per-node 2 -m fastiqa eval --no-progress --ref "$tmp/hr" \
  --pred "$tmp/sr" --scale 2 --y-channel --json "$tmp/two.json" >/dev/null
cmp "$tmp/one.json" "$tmp/two.json"
rm -rf "$tmp"
say "ok"
