#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/build-qemu-fuzz.sh --probe
#        scripts/build-qemu-fuzz.sh BUILD_DIR QEMU_SRC MESON_PY QEMU_CC [--coverage | --contract]
# Builds QEMU's libFuzzer binary, qemu-fuzz-x86_64, with the vkmt-fuzz
# targets (tests/qtest/fuzz/vkmt_fuzz.c) into BUILD_DIR (the Makefile passes
# build/qemu-fuzz and what ./configure recorded in build/config.mk). The
# same small QEMU as scripts/build-qemu.sh (x86_64, the devices of
# hw-device/qemu/x86_64-vkmt.mak), built with clang, --enable-fuzzing,
# --enable-asan and --enable-ubsan. ccache is used when QEMU_CC uses it.
# --coverage adds clang's source-based coverage (-fprofile-instr-generate
# -fcoverage-mapping), for line coverage reports with llvm-cov; use another
# BUILD_DIR for it.
# --contract takes the compiler and sanitizers from the OSS-Fuzz build
# contract's variables instead (tests/qtest/fuzz/build.sh): $CC and $CXX,
# the -fsanitize= lists in $CFLAGS (address: --enable-asan, undefined:
# --enable-ubsan, fuzzer-no-link: what --enable-fuzzing adds itself) with
# the rest of $CFLAGS as extra flags, and $LIB_FUZZING_ENGINE (QEMU's
# default, -fsanitize=fuzzer, unless it names another engine); the binary
# gets an rpath of $ORIGIN/lib, where build.sh puts the libraries it needs.
# The Makefile builds this way too, so CI's contract build reuses its tree.
#
# --probe only checks the toolchain: clang, clang++ and clang's fuzzer and
# sanitizer runtimes (Debian: clang and libclang-rt-14-dev), with a tiny
# libFuzzer link. Exit status 0: usable; 77: not usable (the reason on
# stderr). A build without them stops with status 77 and the same reason.
#
# The QEMU tree gets the overlay again first (scripts/qemu-overlay.sh, which
# is idempotent), so that a tree overlaid before the fuzz target existed gains
# it without a new ./configure.
set -eu

say() { printf 'build-qemu-fuzz: %s\n' "$*"; }
die() { printf 'build-qemu-fuzz: error: %s\n' "$*" >&2; exit 1; }

probe() {
    for tool in clang clang++; do
        command -v $tool >/dev/null 2>&1 || {
            echo "build-qemu-fuzz: $tool not found (Debian: apt-get install clang)" >&2
            return 77
        }
    done
    dir=$(mktemp -d)
    cat >"$dir/t.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return size > 0 && data[0] == 'v';
}
EOF
    if ! clang -fsanitize=fuzzer,address,undefined -o "$dir/t" "$dir/t.c" >"$dir/log" 2>&1 ||
        ! "$dir/t" -runs=1 >>"$dir/log" 2>&1; then
        sed 's/^/  /' "$dir/log" | tail -n 5 >&2
        rm -rf "$dir"
        echo "build-qemu-fuzz: clang cannot link a libFuzzer + ASan + UBSan program" \
            "(Debian: apt-get install libclang-rt-14-dev)" >&2
        return 77
    fi
    rm -rf "$dir"
}

if [ "${1:-}" = --probe ]; then
    probe
    exit $?
fi
[ $# -eq 4 ] || { [ $# -eq 5 ] && { [ "$5" = --coverage ] || [ "$5" = --contract ]; }; } ||
    { echo "usage: $0 BUILD_DIR QEMU_SRC MESON_PY QEMU_CC [--coverage | --contract] | --probe" >&2
      exit 2; }
build=$1
src=$2
meson_py=$3
qemu_cc=$4
mode=${5:-}
repo=$(cd "$(dirname "$0")/.." && pwd)

probe || exit 77
. "$repo/scripts/qemu-build-common.sh"
qemu_tree

case $qemu_cc in
ccache\ *) cc="ccache clang" cxx="ccache clang++" ;;
*) cc=clang cxx=clang++ ;;
esac
sanitizers="--enable-asan --enable-ubsan"
if [ "$mode" = --contract ]; then
    cc=${CC:?--contract needs CC} cxx=${CXX:-clang++} sanitizers= extra=
    for flag in ${CFLAGS:-}; do
        case $flag in
        -fsanitize=*)
            for s in $(printf '%s' "${flag#-fsanitize=}" | tr , ' '); do
                case $s in
                address) sanitizers="$sanitizers --enable-asan" ;;
                undefined) sanitizers="$sanitizers --enable-ubsan" ;;
                fuzzer-no-link) ;;
                *) die "-fsanitize=$s: QEMU's build offers address and undefined only" ;;
                esac
            done
            ;;
        *) extra="$extra $flag" ;;
        esac
    done
fi

# The shared options (qemu-build-common.sh), without virglrenderer and
# OpenGL (the device then has backend=mem only: the fuzz target drives the
# engine and the glue, not the GPU stack), then the fuzzing ones. QEMU's
# --enable-fuzzing instruments only hw/ (and a few other directories) for
# coverage, through its instrumentation filter.
# shellcheck disable=SC2086 # one word per option
set -- $QEMU_BASE_OPTS --enable-fuzzing $sanitizers --cc="$cc" --cxx="$cxx"
if [ "$mode" = --contract ]; then
    [ -z "$extra" ] || set -- "$@" --extra-cflags="${extra# }"
    # shellcheck disable=SC2016 # $ORIGIN is for the dynamic linker
    set -- "$@" --extra-ldflags='-Wl,-rpath,$ORIGIN/lib'
    case ${LIB_FUZZING_ENGINE:--fsanitize=fuzzer} in
    -fsanitize=fuzzer) ;;
    *) set -- "$@" "-Dfuzzing_engine=$LIB_FUZZING_ENGINE" ;;
    esac
fi
# QEMU's configure reads LIB_FUZZING_ENGINE too; the option above says it.
unset LIB_FUZZING_ENGINE
if [ "$mode" = --coverage ]; then
    set -- "$@" --extra-cflags="-fprofile-instr-generate -fcoverage-mapping" \
        --extra-ldflags=-fprofile-instr-generate
fi
qemu_prepare "for fuzzing (clang, ASan, UBSan)" "$@"

[ -x "$build/qemu-fuzz-x86_64" ] ||
    say "building qemu-fuzz-x86_64 (first build: ~$((9 / $(nproc) + 1)) min on $(nproc) cores, less with a warm ccache)"
exec ninja -C "$build" qemu-fuzz-x86_64
