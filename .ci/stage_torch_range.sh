#!/usr/bin/env bash
# CI stage "torch_range": the README's install lines, the fast suite and
# `fastiqa selftest --quick` on both ends of the supported torch range
# (pyproject.toml: torch >= 2.6), each in a fresh venv and a copy of the tree:
#   torch 2.6.0   the oldest supported; also the repeated two-rank gloo teardown
#                 test (tests/test_dist_teardown.py, 20 runs: torch < 2.8 could hang
#                 in ProcessGroupGloo's destructor)
#   torch 2.15.0  the newest release (needs the pip cap of /etc/xdg/pip lifted:
#                 this stage reads no pip config file, see PIP_CONFIG_FILE below)
# FASTIQA_CI_TORCH_VERSIONS="2.6.0" runs the oldest alone. PyPI's torch wheels for
# Linux x86_64 are CUDA builds (~5.3 GB per venv with their nvidia-* packages; they
# run on the CPU); each venv is removed when its version is done.
# The extension is built with the baseline CPU level only (FASTIQA_CPU_LEVELS=baseline,
# setup.py): avx2 and avx512 compile the same sources and torch headers under other target
# pragmas (their intrinsics do not depend on torch), and the main job builds and tests them;
# install + build took 37-41 s less a version than with avx2 (2026-12-08). The fast suite then runs on the baseline level, whose
# accuracy the main job checks only where a test forces each level (3009 tests pass here
# with torch 2.13; before MS-SSIM's coarse scales ran in float64, test_ms_ssim_precision's
# float16 1e-6 case failed on this level). The fast suite runs in two pytest-xdist workers (-n 2).
# Each part prints its wall time, the stage its total.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${FASTIQA_CI_TORCH_VERSIONS:-"2.6.0 2.15.0"}
OLDEST=2.6.0
SCRATCH=$(mktemp -d /tmp/fastiqa-torch-range.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
# /etc/xdg/pip caps torch at the releases on this machine's disk; PyPI has the others
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
export FASTIQA_NO_CUDA=1 FASTIQA_CPU_LEVELS=baseline MAX_JOBS=${MAX_JOBS:-2}
BASE_PATH=$PATH PY3=$(command -v python3)
stage_start=$SECONDS
log() { echo "[torch_range] $*"; }
part_start=0
begin() { part_start=$SECONDS; log "$1"; }
end() { log "   done in $((SECONDS - part_start)) s"; }
# quiet() CMD...: CMD's output in a log, its last line shown (the last 60 lines if it fails)
quiet() { "$@" > "$SCRATCH/part.log" 2>&1 || { tail -60 "$SCRATCH/part.log"; return 1; }; tail -1 "$SCRATCH/part.log"; }

for v in $VERSIONS; do
  venv="$SCRATCH/venv-$v" src="$SCRATCH/src-$v"
  begin "== torch $v: fresh venv, the README's install lines"
  "$PY3" -m venv "$venv"
  mkdir -p "$src"
  git ls-files -z | xargs -0 cp --parents -t "$src"
  # the README's Quickstart lines with this torch
  "$venv/bin/pip" install -q "torch==$v" "setuptools>=77" wheel ninja numpy
  (cd "$src" && quiet "$venv/bin/pip" install --no-build-isolation -e ".[test]")
  "$venv/bin/python" -c "import torch, importlib.metadata as m; v = '$v'
assert torch.__version__.split('+')[0] == v, f'pip replaced torch {v} by {torch.__version__}'
print('[torch_range]   torch', torch.__version__, '/ triton', m.version('triton'))"
  end
  export PATH="$venv/bin:$BASE_PATH" VIRTUAL_ENV="$venv"  # subprocesses of the tests find this venv's commands
  begin "   selftest --quick"
  (cd "$src" && quiet "$venv/bin/fastiqa" selftest --quick)
  end
  begin "   fast suite (python -m pytest -n 2 tests/)"
  (cd "$src" && quiet "$venv/bin/python" -m pytest -q -p no:cacheprovider -n 2 tests/)
  end
  if [ "$v" = "$OLDEST" ]; then
    begin "   two gloo ranks torn down 20 times (tests/test_dist_teardown.py)"
    (cd "$src" && quiet "$venv/bin/python" -m pytest -q -p no:cacheprovider -m slow tests/test_dist_teardown.py)
    end
  fi
  rm -rf "$venv" "$src"
done
log "ok: torch $VERSIONS in $((SECONDS - stage_start)) s"
