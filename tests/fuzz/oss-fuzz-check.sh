#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: tests/fuzz/oss-fuzz-check.sh
# Builds the engine fuzzer through the OSS-Fuzz / ClusterFuzzLite build
# contract (tests/fuzz/core/build.sh with $CC, $CFLAGS, $CXX,
# $LIB_FUZZING_ENGINE, $OUT, $WORK set as the infrastructure sets them for
# libFuzzer + ASan), checks what the contract promises in $OUT, and runs the
# fuzzer briefly over its seed corpus. .ci/run calls it, so a change that
# breaks the contract fails CI, not a later move to OSS-Fuzz.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/work" "$out/seeds" "$out/new"

CC=clang CXX=clang++ CFLAGS='-O1 -g -fno-omit-frame-pointer -fsanitize=address,fuzzer-no-link' \
    CXXFLAGS='-O1 -g -fsanitize=address,fuzzer-no-link' LIB_FUZZING_ENGINE=-fsanitize=fuzzer \
    OUT="$out" WORK="$out/work" "$src/tests/fuzz/core/build.sh"
for f in fuzz_core fuzz_core.dict fuzz_core.options fuzz_core_seed_corpus.zip; do
    [ -s "$out/$f" ] || { echo "oss-fuzz-check: build.sh left no $f in \$OUT" >&2; exit 1; }
done
(cd "$out/seeds" && unzip -q "$out/fuzz_core_seed_corpus.zip")
"$out/fuzz_core" -runs=2000 -seed=1 -dict="$out/fuzz_core.dict" -max_len=4096 \
    "$out/new" "$out/seeds" >"$out/run.log" 2>&1 ||
    { tail -n 30 "$out/run.log" >&2; echo "oss-fuzz-check: fuzz_core failed" >&2; exit 1; }
echo "oss-fuzz-check: fuzz_core built through the contract and ran $(ls "$out/seeds" | wc -l) seeds and 2000 inputs"
