#!/usr/bin/env bash
# CI stage: the human assessment kit (`fastiqa human`), its statistics and the
# real-browser end-to-end test. Installs what those tests need: Debian's chromium
# (when /usr/bin/chromium is missing) and the `human-test` extra
# (scipy, matplotlib, playwright; the browser is Debian's, never `playwright install`),
# plus sureal and choix for the cross-checks when the index has them.
# Runs from the repo root in the CI venv with fastiqa installed. The tests end with
# the 60 s load test (20 raters voting at once, every vote stored once, p99 latency
# printed); each line prints the seconds since the stage began.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
say() { echo "stage_human: [$(( $(date +%s) - t0 ))s] $*"; }

if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (apt)"
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || say "chromium could not be installed: the browser test will skip"
  else
    say "no apt-get: the browser test will skip"
  fi
fi
say "installing the human-test extra (scipy, matplotlib, playwright)"
pip install -q scipy matplotlib playwright
pip install -q sureal choix || say "sureal / choix not installable: their cross-checks skip"
say "tests"
python -m pytest -q -rs tests/test_human*.py
say "load test (60 s)"
python -m pytest -q -rs -s -m slow tests/test_human_load.py
say "done"
