# SPDX-License-Identifier: MIT
# Sourced by scripts/build-qemu.sh and scripts/build-qemu-fuzz.sh: what the
# two QEMU builds share. The caller defines say and die and sets build, src
# and meson_py.

# A small QEMU: x86_64 only, the devices of hw-device/qemu/x86_64-vkmt.mak,
# KVM and TCG, user networking, and firmware looked up where Debian's
# seabios, qemu-system-data and ipxe-qemu put it (the +ds source has no
# blobs). One word per option, so that callers can split it.
QEMU_BASE_OPTS="--target-list=x86_64-softmmu --without-default-devices --with-devices-x86_64=vkmt
--without-default-features --enable-kvm --enable-tcg --enable-slirp --enable-fdt=system
--enable-pixman --disable-download --disable-install-blobs --disable-docs
--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu --python=/usr/bin/python3"

# Checks that $src is an overlaid QEMU tree and brings the overlay up to
# date (a checkout may have added a link since ./configure ran); sets version
# and makes src absolute.
qemu_tree() {
    [ -f "$src/VERSION" ] && [ -L "$src/hw/vkmt" ] ||
        die "$src is not a QEMU tree with the vkmt overlay; run ./configure"
    version=$(cat "$src/VERSION")
    src=$(cd "$src" && pwd)
    overlay_out=$("$(dirname "$0")/qemu-overlay.sh" "$src" "$(dirname "$0")/..") ||
        die "the overlay failed (above)"
    printf '%s\n' "$overlay_out" | grep -v 'already carries the vkmt overlay' || true
    # meson, unpacked from Debian's package by ./configure, runs from
    # PYTHONPATH: here, and (through the .pth file qemu_prepare writes)
    # whenever ninja re-runs it.
    if [ -n "$meson_py" ]; then
        PYTHONPATH=$meson_py${PYTHONPATH:+:$PYTHONPATH}
        export PYTHONPATH
    fi
}

# qemu_prepare WHAT OPTION...: configures QEMU into $build with OPTIONs
# unless that was done with the same ones and QEMU version (WHAT names the
# build in the progress line), then readies the tree for ninja.
qemu_prepare() {
    what=$1
    shift
    stamp="$src $version $*"
    if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/.vkmt-configured" 2>/dev/null)" != "$stamp" ]; then
        say "configuring QEMU $version $what in $build (log: $build-configure.log)"
        rm -rf "$build"
        mkdir -p "$build"
        (cd "$build" && "$src/configure" "$@") >"$build-configure.log" 2>&1 || {
            tail -n 30 "$build-configure.log" >&2
            die "QEMU's configure failed; full log: $build-configure.log"
        }
        printf '%s\n' "$stamp" >"$build/.vkmt-configured"
    fi

    # ninja re-runs meson through pyvenv/bin/meson when a meson.build
    # changes; without this that fails with "No module named 'mesonbuild'".
    if [ -n "$meson_py" ]; then
        for site in "$build"/pyvenv/lib/python3*/site-packages; do
            [ -d "$site" ] || die "no site-packages in $build/pyvenv"
            [ "$(cat "$site/vkmt-meson.pth" 2>/dev/null)" = "$meson_py" ] ||
                printf '%s\n' "$meson_py" >"$site/vkmt-meson.pth"
        done
    fi

    # Run from its build tree, QEMU looks for everything below
    # BUILD/qemu-bundle, firmware included (--firmwarepath is for an
    # installed QEMU): link Debian's firmware directories there, so that
    # qtests, the fuzzer and users need no -L.
    for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
        [ -d "$d" ] && [ ! -e "$build/qemu-bundle$d" ] || continue
        mkdir -p "$(dirname "$build/qemu-bundle$d")"
        ln -sfn "$d" "$build/qemu-bundle$d"
    done
}
