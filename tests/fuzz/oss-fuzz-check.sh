#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: tests/fuzz/oss-fuzz-check.sh
# Builds both fuzzers through the OSS-Fuzz / ClusterFuzzLite build contract,
# checks what the contract promises in $OUT, and runs each fuzzer from $OUT
# alone over its seed corpus (the engine's, 2000 fuzzed inputs more):
#   the engine fuzzer: tests/fuzz/core/build.sh with $CC, $CFLAGS, $CXX,
#     $LIB_FUZZING_ENGINE, $OUT, $WORK set as the infrastructure sets them
#     for libFuzzer + ASan;
#   the QEMU targets: tests/qtest/fuzz/build.sh, through make
#     fuzz-qemu-oss-fuzz (the same variables, with the QEMU tree ./configure
#     prepared; the build is make's own, so after make check it only lays out
#     $OUT), each target run in an empty environment. Skipped, with a
#     message, where QEMU is not configured or clang cannot fuzz.
# .ci/run calls it, so a change that breaks the contract fails CI, not a
# later move to OSS-Fuzz.
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

qout=$out/qemu
if ! grep -q '^WITH_QEMU := 1' "$src/build/config.mk" 2>/dev/null; then
    echo "oss-fuzz-check: QEMU targets skipped: QEMU is not configured (./configure)"
    exit 0
fi
if ! "$src/scripts/build-qemu-fuzz.sh" --probe; then
    echo "oss-fuzz-check: QEMU targets skipped: no clang fuzzer toolchain (above)"
    exit 0
fi
make -s -C "$src" fuzz-qemu-oss-fuzz QFUZZ_OSS_OUT="$qout"
n=0
for t in vkmt-fuzz vkmt-fuzz-ioeventfd vkmt-fuzz-port vkmt-fuzz-port-ioeventfd \
    vkmt-fuzz-port-iothread; do
    name=qemu-fuzz-x86_64-target-$t
    for f in "$name" "$name.dict" "$name.options" "${name}_seed_corpus.zip"; do
        [ -s "$qout/$f" ] || { echo "oss-fuzz-check: build.sh left no $f in \$OUT" >&2; exit 1; }
    done
    rm -rf "$out/seeds" "$out/new" && mkdir -p "$out/seeds" "$out/new"
    (cd "$out/seeds" && unzip -q "$qout/${name}_seed_corpus.zip")
    # What the runner has: $OUT, and the options file's settings as flags.
    # Each seed once: QEMU's timing makes new inputs differ from run to run,
    # and finding bugs is the campaigns' job (make fuzz-qemu), not CI's.
    (cd "$out/work" && env -i PATH=/usr/bin:/bin ASAN_OPTIONS=detect_leaks=0 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$qout/$name" -runs=0 \
        -max_len=8192 -dict="$qout/$name.dict" -timeout=10 -detect_leaks=0 \
        "$out/new" "$out/seeds") >"$out/run.log" 2>&1 ||
        { tail -n 30 "$out/run.log" >&2; echo "oss-fuzz-check: $name failed" >&2; exit 1; }
    n=$((n + 1))
done
echo "oss-fuzz-check: $n QEMU targets built through the contract and ran their seeds"
