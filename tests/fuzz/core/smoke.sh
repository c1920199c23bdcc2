#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: smoke.sh FUZZER CORPUS_DIR...
# A short, fixed-count libFuzzer run of the device-engine harness, for make
# check: FUZZ_CORE_SMOKE_RUNS (default 20000) mutations from the corpus with a fixed
# seed, new inputs going to a scratch directory (never into the committed
# corpus). Ends with the summary line tests/run-suites.sh adds up: one test,
# which fails on a crash (the input is kept in build/fuzz/core/smoke-crashes/)
# and counts as skipped when FUZZER was not built because
# clang cannot link libFuzzer (the reason is printed).
set -u

name=fuzz_core_smoke
fuzzer=$1
shift
if [ ! -x "$fuzzer" ]; then
    echo "# $name: skipped: $fuzzer was not built (clang cannot link libFuzzer:" \
        "on Debian, apt-get install clang libclang-rt-14-dev)"
    echo "# $name: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
out=$(dirname "$fuzzer")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$out/smoke-crashes"
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
    "$fuzzer" -runs="${FUZZ_CORE_SMOKE_RUNS:-20000}" -seed=1 -max_len=4096 \
    -dict="$(dirname "$0")/vkmt.dict" -artifact_prefix="$out/smoke-crashes/" \
    "$scratch" "$@" >"$scratch.log" 2>&1
rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$scratch.log"
if [ "$rc" -eq 0 ]; then
    echo "# $name: 1 passed, 0 failed"
else
    tail -n 30 "$scratch.log"
    echo "# $name: libFuzzer exited with status $rc; inputs in $out/smoke-crashes/"
    echo "# $name: 0 passed, 1 failed"
fi
rm -f "$scratch.log"
exit "$rc"
