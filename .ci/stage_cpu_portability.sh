#!/usr/bin/env bash
# CI stage: portability of the CPU kernels (issue 11).
#   1. per-ISA tests: tests/test_cpu_isa.py on the CI build (every variant this CPU runs)
#   2. clang build (CPU only; no OpenMP unless libomp is installed) in a scratch copy,
#      and a quick test subset on it
#   3. aarch64 compile check: every CPU source with aarch64-linux-gnu-g++ -c against
#      this torch's headers (NEON baseline variant)
#   4. sdist: python -m build --sdist, then in a clean venv: wheel built from the
#      sdist (the baseline CPU level only, FASTIQA_CPU_LEVELS: this part proves the
#      packaging, every csrc file is checked to be in the sdist; parts 1-3 and the main
#      job build every level), installed, a small test subset run from outside the source tree
# Needs: the CI venv with fastiqa installed active; apt packages clang and
# g++-aarch64-linux-gnu (installed here when missing); pip reaches the local mirror.
# Each part prints its duration; .ci/run prints the stage's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=$(command -v python)
TORCH_INC=$("$PY" -c "import torch.utils.cpp_extension as c; print(' '.join('-I' + p for p in c.include_paths()))")
SCRATCH=$(mktemp -d /tmp/fastiqa-portability.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
export MAX_JOBS=${MAX_JOBS:-2} FASTIQA_NO_CUDA=1
log() { echo "[cpu_portability] $*"; }
part_start=0
begin() { part_start=$SECONDS; log "== $1"; }
end() { log "   done in $((SECONDS - part_start)) s"; }

need_apt() {
  if ! command -v "$1" > /dev/null; then
    log "installing $2 (apt)"
    (apt-get update -qq && apt-get install -y -qq "$2") > "$SCRATCH/apt.log" 2>&1 || { cat "$SCRATCH/apt.log"; exit 1; }
  fi
}

begin "1/4 per-ISA tests on the CI build ($("$PY" -c 'from fastiqa import cpu_isa; print(cpu_isa.available())'))"
"$PY" -m pytest -q -p no:cacheprovider tests/test_cpu_isa.py
end

begin "2/4 clang build + quick subset"
need_apt clang++ clang
mkdir -p "$SCRATCH/clang"
git ls-files -z | xargs -0 cp --parents -t "$SCRATCH/clang"
(cd "$SCRATCH/clang" && CC=clang CXX=clang++ "$PY" setup.py -q build_ext --inplace > build.log 2>&1) \
  || { tail -50 "$SCRATCH/clang/build.log"; exit 1; }
grep -h "OpenMP" "$SCRATCH/clang/build.log" | sed 's/^/[cpu_portability]   /' || true
SO=$(ls "$SCRATCH"/clang/fastiqa/_C*.so)
readelf -p .comment "$SO" | grep -qi clang || { log "FAIL: $SO was not built by clang"; exit 1; }
(cd "$SCRATCH/clang" && "$PY" -c "import fastiqa, sys; assert fastiqa.__file__.startswith('$SCRATCH'), fastiqa.__file__; fastiqa.info()" \
  && "$PY" -m pytest -q -p no:cacheprovider tests/test_cpu_isa.py tests/test_pixel_errors.py)
end

begin "3/4 aarch64 compile check (NEON baseline)"
need_apt aarch64-linux-gnu-g++ g++-aarch64-linux-gnu
# MAX_JOBS compiles at a time; each prints its source when done, a failure stops the stage
export SCRATCH TORCH_INC
ls csrc/cpu/*.cpp | xargs -P "$MAX_JOBS" -I{} bash -c 'aarch64-linux-gnu-g++ -std=c++20 -O2 -fopenmp-simd \
  -fno-math-errno -fno-trapping-math $TORCH_INC -c "$1" -o "$SCRATCH/$(basename "$1").aarch64.o" \
  && echo "[cpu_portability]    $1: ok"' _ {}
file "$SCRATCH/variant_baseline.cpp.aarch64.o" | grep -q aarch64
end

begin "4/4 sdist -> wheel -> clean venv -> tests"
# run from outside the checkout: its build/ folder (setuptools' build dir) would shadow the `build` package
ROOT=$(pwd)
(cd "$SCRATCH" && "$PY" -c "import build.__main__") 2> /dev/null || "$PY" -m pip install -q build
(cd "$SCRATCH" && "$PY" -m build --sdist --no-isolation --outdir "$SCRATCH/dist" "$ROOT") > "$SCRATCH/sdist.log" 2>&1 \
  || { tail -30 "$SCRATCH/sdist.log"; exit 1; }
SDIST=$(ls "$SCRATCH"/dist/fastiqa-*.tar.gz)
missing=$(comm -23 <(git ls-files 'csrc/*' | sort) <(tar tzf "$SDIST" | sed 's|^[^/]*/||' | sort))
[ -z "$missing" ] || { log "FAIL: not in the sdist: $missing"; exit 1; }
"$PY" -m venv "$SCRATCH/venv"
TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
"$SCRATCH/venv/bin/pip" install -q "torch==$TORCH_VERSION" numpy pillow setuptools wheel ninja pytest hypothesis
FASTIQA_CPU_LEVELS=baseline "$SCRATCH/venv/bin/pip" wheel -q --no-build-isolation --no-deps -w "$SCRATCH/wheels" "$SDIST"
"$SCRATCH/venv/bin/pip" install -q "$SCRATCH"/wheels/fastiqa-*.whl
mkdir -p "$SCRATCH/run" && tar xzf "$SDIST" -C "$SCRATCH/run" --strip-components=1 --wildcards '*/tests/*' '*/pyproject.toml'
(cd "$SCRATCH/run" && "$SCRATCH/venv/bin/python" -c "import fastiqa; assert 'site-packages' in fastiqa.__file__; fastiqa.info()" \
  && "$SCRATCH/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_cpu_isa.py -k "ssim or psnr or env")
end
log "all parts passed in $SECONDS s"
