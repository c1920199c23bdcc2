#!/bin/sh
# SPDX-License-Identifier: MIT
# OSS-Fuzz / ClusterFuzzLite build script for the QEMU-level fuzz targets
# (vkmt_fuzz.c), with their conventions: $CC and $CXX, $CFLAGS (the
# sanitizer and coverage flags the infrastructure chose: address and
# undefined are what QEMU's build offers), $LIB_FUZZING_ENGINE, $OUT for the
# results and $WORK for scratch (the QEMU build goes to $WORK/qemu-fuzz).
# The QEMU 10.0 source is $QEMU_SRC, by default $SRC/qemu, where a project
# Dockerfile would unpack it; this script overlays the device onto it. QEMU
# needs meson >= 1.5: on PATH, or its Python package directory in $MESON_PY.
#
# $OUT gets, as QEMU's own OSS-Fuzz build lays it out: one binary per target,
# qemu-fuzz-x86_64-target-NAME (hard links: QEMU's fuzzer reads the target
# from its name), each with its seed corpus (the committed corpus and crash
# inputs, zipped), dictionary and options file; the shared libraries the
# binary needs in $OUT/lib (its rpath); the firmware in $OUT/qemu-bundle,
# where QEMU looks beside its binary. Runs from any directory; outside the
# infrastructure, set the variables yourself, e.g.:
#   CC=clang CXX=clang++ CFLAGS=-fsanitize=address,undefined,fuzzer-no-link \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out WORK=/tmp/work \
#   QEMU_SRC=build/src/qemu tests/qtest/fuzz/build.sh
set -eu

repo=$(cd "$(dirname "$0")/../../.." && pwd)
fuzz=$repo/tests/qtest/fuzz
qemu=${QEMU_SRC:-${SRC:?set QEMU_SRC or SRC}/qemu}
work=${WORK:-$(mktemp -d)}
mkdir -p "${OUT:?set OUT}"
OUT=$(cd "$OUT" && pwd)
targets="vkmt-fuzz vkmt-fuzz-ioeventfd vkmt-fuzz-port vkmt-fuzz-port-ioeventfd
vkmt-fuzz-port-iothread"

"$repo/scripts/build-qemu-fuzz.sh" "$work/qemu-fuzz" "$qemu" "${MESON_PY:-}" "$CC" --contract
bin=$work/qemu-fuzz/qemu-fuzz-x86_64

mkdir -p "$OUT/lib"
# The libraries the runner image may lack, beside the binary (its rpath).
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    case $lib in
    */libc.so.* | */libm.so.* | */libpthread.so.* | */libdl.so.* | */librt.so.*) ;;
    *) cp -L "$lib" "$OUT/lib/" ;;
    esac
done
# Firmware (the PC BIOS, option ROMs), as the build tree links it.
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
    [ -d "$d" ] || continue
    mkdir -p "$OUT/qemu-bundle$(dirname "$d")"
    rm -rf "$OUT/qemu-bundle$d"
    cp -rL "$d" "$OUT/qemu-bundle$d"
done

rm -f "$OUT"/qemu-fuzz-x86_64-target-*
first=
for t in $targets; do
    name=qemu-fuzz-x86_64-target-$t
    if [ -z "$first" ]; then
        cp "$bin" "$OUT/$name"
        first=$OUT/$name
    else
        ln "$first" "$OUT/$name"
    fi
    cp "$fuzz/vkmt-fuzz.dict" "$OUT/$name.dict"
    printf '[libfuzzer]\nmax_len = 8192\ndict = %s.dict\ntimeout = 10\ndetect_leaks = 0\n' \
        "$name" >"$OUT/$name.options"
    (cd "$fuzz" && find corpus crashes -type f ! -name 'README*' | sort |
        zip -q -j "$OUT/${name}_seed_corpus.zip" -@)
done
