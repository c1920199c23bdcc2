#!/bin/sh
# SPDX-License-Identifier: MIT
# OSS-Fuzz / ClusterFuzzLite build script for the device-engine fuzzer, with
# their conventions: $CC and $CFLAGS (which carry the sanitizer and coverage
# flags the infrastructure chose), $CXX and $CXXFLAGS for the link (libFuzzer
# is C++), $LIB_FUZZING_ENGINE, $OUT for the results and $WORK for scratch.
# It builds $OUT/fuzz_core and puts the dictionary, an options file and the
# seed corpus (corpus and crash inputs, zipped) beside it. Runs from any
# directory; outside the infrastructure, set the variables yourself, e.g.:
#   CC=clang CXX=clang++ CFLAGS='-O1 -g -fsanitize=address,fuzzer-no-link' \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out tests/fuzz/core/build.sh
set -eu

src=$(cd "$(dirname "$0")/../../.." && pwd)
fuzz=$src/tests/fuzz/core
work=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$work/fuzz_core"

for f in "$src"/hw-device/core/*.c "$fuzz"/fuzz_core.c "$fuzz"/fz_*.c; do
    # The virgl backend needs virglrenderer; the engine the fuzzer drives does
    # not link it (the Makefile's CORE_SRC leaves it out too).
    case $f in */backend_virgl.c) continue ;; esac
    # shellcheck disable=SC2086 # CFLAGS is a list of flags
    $CC ${CFLAGS:-} -std=c11 -I"$src/protocol" -I"$src/hw-device/core" \
        -c "$f" -o "$work/fuzz_core/$(basename "$f" .c).o"
done
# shellcheck disable=SC2086
${CXX:-$CC} ${CXXFLAGS:-${CFLAGS:-}} "$work"/fuzz_core/*.o $LIB_FUZZING_ENGINE \
    -o "$OUT/fuzz_core"

cp "$fuzz/vkmt.dict" "$OUT/fuzz_core.dict"
printf '[libfuzzer]\nmax_len = 4096\ndict = fuzz_core.dict\n' >"$OUT/fuzz_core.options"
rm -f "$OUT/fuzz_core_seed_corpus.zip"
(cd "$fuzz" && find corpus crashes -type f ! -name 'README*' | sort |
    zip -q -j "$OUT/fuzz_core_seed_corpus.zip" -@)
