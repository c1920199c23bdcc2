#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/kmd-headers.sh VM_DIR
#
# Prints the directory of a kernel build tree (what /lib/modules/VERSION/build
# is on an installed system) for exactly the kernel the test VM image in
# VM_DIR records (VM_DIR/kernel-version, linux-image-ABI-FLAVOUR=VERSION), so
# that the guest driver builds with make -C DIR M=... modules. Debian's three
# packages of it (linux-headers-ABI-FLAVOUR, linux-headers-ABI-common,
# linux-kbuild-SERIES, all of the same VERSION) are fetched the way
# scripts/vm-image.sh fetches the kernel (scripts/debian-fetch.sh) and
# unpacked together into one cache directory per version; nothing is
# installed on the host. Messages go to stderr.
set -eu

say() { printf 'kmd-headers: %s\n' "$*" >&2; }
die() { printf 'kmd-headers: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 VM_DIR"
kernel_pv=$(cat "$1/kernel-version" 2>/dev/null) || die "no $1/kernel-version: run make vm-image"
name=${kernel_pv%%=*}
ver=${kernel_pv#*=}
krel=${name#linux-image-}            # 6.1.0-57-cloud-amd64
abi=$(echo "$krel" | sed -n 's/^\([0-9][0-9.]*-[0-9][0-9]*\)-.*/\1/p')  # 6.1.0-57
series=$(echo "$abi" | cut -d. -f1-2) # 6.1
[ "$name" != "$kernel_pv" ] && [ "$krel" != "$name" ] && [ -n "$abi" ] ||
    die "$1/kernel-version: '$kernel_pv' is not linux-image-ABI-FLAVOUR=VERSION"

cache_dir=${VKMT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vkmt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/debian-fetch.sh"

pkgs="linux-headers-$krel=$ver linux-headers-$abi-common=$ver linux-kbuild-$series=$ver"
dir=$(unpacked_dir "linux-headers-$krel=$ver")
if [ ! -e "$dir/.vkmt-complete" ]; then
    mkdir -p "$cache_dir"
    exec 9>"$cache_dir/lock"
    flock 9 2>/dev/null || true # one configure or vm-image at a time fills the cache
    # The private lists vm-image.sh left may predate these versions.
    # shellcheck disable=SC2086 # one word per package
    if ! apt_private apt-cache show $pkgs >/dev/null 2>&1; then
        apt_update || { cat "$tmp/update.log" >&2; die "cannot update the package lists"; }
    fi
    # shellcheck disable=SC2086
    fetch_into "$dir" $pkgs
fi

# The packages expect to live in /usr/src: the flavour's Makefile is one line
# that includes the common tree's by its absolute path. Point it at the
# cache (again each time: the cache may have moved). The scripts and tools
# links are relative (../../lib/linux-kbuild-SERIES/...) and hold because the
# three packages are unpacked into one tree.
tree=$dir/usr/src/linux-headers-$krel
common=$dir/usr/src/linux-headers-$abi-common
[ -f "$tree/Makefile" ] && [ -f "$common/Makefile" ] || die "$dir lacks the headers' Makefiles"
sed -i "s|^include .*/linux-headers-$abi-common/Makefile\$|include $common/Makefile|" "$tree/Makefile"
grep -qx "include $common/Makefile" "$tree/Makefile" ||
    die "$tree/Makefile: unexpected content (expected one include of the common tree)"
[ -d "$tree/scripts" ] ||
    die "$tree/scripts does not resolve into linux-kbuild-$series"
echo "$tree"
