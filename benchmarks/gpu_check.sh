#!/usr/bin/env bash
# The GPU check for a lent GPU, under the name the developers' guide and issue 23 give it:
# runs tests/gpu/gpu_check.sh (build, selftest, CUDA tests, compute-sanitizer, speed against
# the performance model; its header says what each step does). Logs go to $OUT when set.
exec bash "$(dirname "$0")/../tests/gpu/gpu_check.sh" "$@"
