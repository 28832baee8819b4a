#!/usr/bin/env bash
# CI stage "peers": the parity tests against the libraries people use run, none skipped.
# Installs the `peers` extra's packages by name with --no-deps (their resolvers would pull
# a CUDA build of torch), plus the small dependencies they import, also --no-deps:
#   pytorch-msssim; kornia + kornia_rs; torchmetrics + lightning-utilities;
#   scikit-image + lazy_loader + scipy.
# piq is left out: every `import piq` imports torchvision, whose PyPI wheels are CUDA
# builds that do not load against the CPU torch here (no parity test uses piq).
# Then tests/test_ssim_peers.py and tests/test_metrics.py must pass with zero skips
# (counted from pytest's JUnit XML), and torch must be the version it was.
# LPIPS / DISTS: lpips and DISTS_pytorch import torchvision, so the three go (--no-deps)
# into a folder of their own that only tests/test_lpips_peers.py sees (PYTHONPATH): with
# torchvision importable, `import torchmetrics.functional.image` fails ("operator
# torchvision::nms does not exist"). tests/_perceptual_peers.py defines the two op names
# torchvision's import needs (torch.library schemas, no kernel); its models are plain Python.
# Expects the CI venv with fastiqa installed (editable) to be active; runs from the
# repository root; .ci/run prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[stage_peers] $*"; }

torch_before=$(python -c "import torch; print(torch.__version__)")
say "installing the peers by name, --no-deps (torch $torch_before stays)"
pip install -q --no-deps "pytorch-msssim>=1.0" "kornia>=0.7" kornia_rs "torchmetrics>=1.4.2" lightning-utilities \
  "scikit-image>=0.19" lazy_loader "scipy>=1.9"
torch_after=$(python -c "import torch; print(torch.__version__)")
if [ "$torch_before" != "$torch_after" ]; then
  say "FAILED: torch changed from $torch_before to $torch_after"
  exit 1
fi
python - <<'PYEOF'
import importlib
for name in ("pytorch_msssim", "kornia", "torchmetrics.functional.image", "skimage.metrics"):
    module = importlib.import_module(name)
    top = importlib.import_module(name.split(".")[0])
    print(f"[stage_peers] {name} {getattr(top, '__version__', '?')} imports")
PYEOF

peer_dir=$(mktemp -d /tmp/fastiqa_tv_XXXX)
say "installing torchvision, lpips, DISTS_pytorch into $peer_dir (--no-deps, only for the LPIPS/DISTS tests)"
pip install -q --no-deps --target "$peer_dir" torchvision==0.29.1 lpips==0.1.4 DISTS_pytorch==0.1

# runs pytest on the files given, then fails if any test skipped (JUnit XML)
parity() {
  local report; report=$(mktemp /tmp/fastiqa_peers_XXXX.xml)
  python -m pytest -q -rs -p no:cacheprovider "$@" --junitxml="$report"
  python - "$report" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = sum(int(s.get("tests", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
if tests == 0 or skipped:
    sys.exit(f"[stage_peers] FAILED: {skipped} of {tests} parity tests skipped (every peer must be importable)")
print(f"[stage_peers] {tests} parity tests, none skipped")
PYEOF
  rm -f "$report"
}

say "parity tests (pytorch_msssim, kornia, torchmetrics, scikit-image): none may skip"
parity tests/test_ssim_peers.py tests/test_metrics.py
say "parity tests (lpips, DISTS_pytorch; torchvision from $peer_dir), the 256x256 (slow) cases too: none may skip"
PYTHONPATH="$peer_dir" parity -m "slow or not slow" tests/test_lpips_peers.py
rm -rf "$peer_dir"
say "ok"
