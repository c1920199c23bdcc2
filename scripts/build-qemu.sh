#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/build-qemu.sh BUILD_DIR QEMU_SRC MESON_PY QEMU_CC NINJA_TARGET...
# Called by the Makefile with build/qemu and what ./configure recorded in
# build/config.mk. Configures QEMU into BUILD_DIR unless that was done with
# the same options and QEMU version, then has ninja build the targets (ninja
# decides what is out of date). With nothing to do, the only output is
# ninja's: its directory line and QEMU's version-header step, which QEMU marks
# as always due (it changes nothing, so nothing is compiled or linked).
set -eu

[ $# -ge 5 ] || { echo "usage: $0 BUILD_DIR QEMU_SRC MESON_PY QEMU_CC TARGET..." >&2; exit 2; }
build=$1
src=$2
meson_py=$3
qemu_cc=$4
shift 4
targets=$* # ninja target names: no spaces

say() { printf 'build-qemu: %s\n' "$*"; }
die() { printf 'build-qemu: error: %s\n' "$*" >&2; exit 1; }

. "$(dirname "$0")/qemu-build-common.sh"
qemu_tree

# The shared options (qemu-build-common.sh), plus virglrenderer and OpenGL
# (libepoxy) for the device's backend=virgl (docs/VIRGL.md) unless the
# project was configured --without-virgl (VKMT_QEMU_VIRGL=0).
if [ "${VKMT_QEMU_VIRGL:-1}" = 1 ]; then
    virgl_opts="--enable-virglrenderer --enable-opengl"
else
    virgl_opts="--disable-virglrenderer --disable-opengl"
fi
# shellcheck disable=SC2086 # one word per option
set -- $QEMU_BASE_OPTS $virgl_opts --cc="$qemu_cc"
qemu_prepare "(~10 s)" "$@"

if [ ! -x "$build/qemu-system-x86_64" ]; then
    say "building QEMU (first build: ~$((4 / $(nproc) + 1)) min on $(nproc) cores, less with a warm ccache)"
else
    case " $targets " in
    *" tests/qtest/vkmt-test "*)
        [ -x "$build/tests/qtest/vkmt-test" ] || say "building the qtest and libqos (first time: ~20 s)"
        ;;
    esac
fi
exec ninja -C "$build" $targets
