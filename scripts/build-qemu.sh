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

[ -f "$src/VERSION" ] && [ -L "$src/hw/vkmt" ] ||
    die "$src is not a QEMU tree with the vkmt overlay; run ./configure"
version=$(cat "$src/VERSION")
src=$(cd "$src" && pwd)

# meson, unpacked from Debian's package by ./configure, runs from PYTHONPATH:
# here, and (through the .pth file below) whenever ninja re-runs it.
if [ -n "$meson_py" ]; then
    PYTHONPATH=$meson_py${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONPATH
fi

# A small QEMU: x86_64 only, the devices of hw-device/qemu/x86_64-vkmt.mak,
# KVM and TCG, user networking, virglrenderer and OpenGL (libepoxy) for the
# device's backend=virgl (docs/VIRGL.md), and firmware looked up where
# Debian's seabios, qemu-system-data and ipxe-qemu put it (the +ds source has
# no blobs).
set -- --target-list=x86_64-softmmu --without-default-devices --with-devices-x86_64=vkmt \
    --without-default-features --enable-kvm --enable-tcg --enable-slirp --enable-fdt=system \
    --enable-pixman --enable-virglrenderer --enable-opengl --disable-download --disable-install-blobs --disable-docs \
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
    --python=/usr/bin/python3 --cc="$qemu_cc"
stamp="$src $version $*"

if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/.vkmt-configured" 2>/dev/null)" != "$stamp" ]; then
    say "configuring QEMU $version in $build (~10 s; log: $build-configure.log)"
    rm -rf "$build"
    mkdir -p "$build"
    (cd "$build" && "$src/configure" "$@") >"$build-configure.log" 2>&1 || {
        tail -n 30 "$build-configure.log" >&2
        die "QEMU's configure failed; full log: $build-configure.log"
    }
    printf '%s\n' "$stamp" >"$build/.vkmt-configured"
fi

# ninja re-runs meson through pyvenv/bin/meson when a meson.build changes;
# without this that fails with "No module named 'mesonbuild'".
if [ -n "$meson_py" ]; then
    for site in "$build"/pyvenv/lib/python3*/site-packages; do
        [ -d "$site" ] || die "no site-packages in $build/pyvenv"
        [ "$(cat "$site/vkmt-meson.pth" 2>/dev/null)" = "$meson_py" ] ||
            printf '%s\n' "$meson_py" >"$site/vkmt-meson.pth"
    done
fi

# Run from the build tree, QEMU looks for everything below build/qemu/qemu-bundle,
# firmware included (--firmwarepath is for an installed QEMU): link Debian's
# firmware directories there, so that qtests and users need no -L.
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
    [ -d "$d" ] && [ ! -e "$build/qemu-bundle$d" ] || continue
    mkdir -p "$(dirname "$build/qemu-bundle$d")"
    ln -sfn "$d" "$build/qemu-bundle$d"
done

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
