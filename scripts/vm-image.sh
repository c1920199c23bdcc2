#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/vm-image.sh [--refresh] [--generic-kernel MODULE,...] OUT_DIR
#                            [HOST_FILE:GUEST_PATH ...]
#
# Builds the test-VM image that scripts/vm-run boots (docs/VM.md):
#   OUT_DIR/vmlinuz            Debian 12's cloud kernel (or, with
#                              --generic-kernel, its generic amd64 kernel,
#                              with the named modules and what they depend on
#                              in the initramfs, for busybox modprobe)
#   OUT_DIR/initramfs.cpio.gz  busybox-static, /init (below) and the extra files
#   OUT_DIR/kernel-version     the kernel package, as apt's NAME=VERSION
#   OUT_DIR/busybox-version    the busybox package, as apt's NAME=VERSION
#
# Both packages are fetched with apt-get download through a private list of
# sources (bookworm, bookworm-security) in the cache dir ./configure uses
# ($VKMT_CACHE, else $XDG_CACHE_HOME/vkmt, else ~/.cache/vkmt) and unpacked
# there with dpkg-deb -x, once per version; nothing is installed on the host.
# The first build takes the newest versions; later builds keep the versions
# that OUT_DIR records (no network needed) until --refresh asks again.
# Nothing is rewritten when the inputs (versions, this script, the extra
# files and their guest paths) are the same as last time.
set -eu

say() { printf 'vm-image: %s\n' "$*"; }
die() { printf 'vm-image: error: %s\n' "$*" >&2; exit 1; }

refresh=0
modules=
flavour=cloud
while :; do
    case ${1:-} in
    --refresh) refresh=1 ;;
    --generic-kernel)
        # The cloud kernel has no DRM: benchmarks against virtio-gpu need the
        # generic one and its modules (a comma-separated list).
        [ $# -ge 2 ] || die "--generic-kernel needs a module list"
        flavour=generic modules=$(echo "$2" | tr , ' ')
        shift
        ;;
    *) break ;;
    esac
    shift
done
[ $# -ge 1 ] || die "usage: $0 [--refresh] [--generic-kernel MODULE,...] OUT_DIR [HOST_FILE:GUEST_PATH ...]"
out=$1
shift
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cwd=$(pwd)

for spec in "$@"; do
    host=${spec%:*}
    guest=${spec##*:}
    [ "$host" != "$spec" ] && [ -n "$host" ] || die "'$spec': expected HOST_FILE:GUEST_PATH"
    case $guest in
    /*) ;;
    *) die "'$spec': the guest path must be absolute" ;;
    esac
    case $guest/ in
    */../* | */./* | *//*) die "'$spec': bad guest path" ;;
    esac
    [ -f "$host" ] || die "'$spec': no file $host"
done

cache_dir=${VKMT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vkmt}
if [ "$flavour" = cloud ]; then
    kernel_meta=linux-image-cloud-amd64 kernel_suffix=-cloud-amd64 kernel_glob='*-cloud-amd64-*'
else
    kernel_meta=linux-image-amd64 kernel_suffix=-amd64 kernel_glob='*[0-9]-amd64-*'
fi
busybox_pkg="busybox-static"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- packages ----------------------------------------------------------------
. "$(dirname "$0")/debian-fetch.sh"

newest_cached() { # GLOB: NAME=VERSION of the newest complete unpacked dir
    for d in "$cache_dir"/vm-$1; do
        [ -e "$d/.vkmt-complete" ] && cat "$d/.vkmt-complete"
    done | sort -t= -k2 -V | tail -n 1
}

# Sets kernel_pv and busybox_pv (NAME=VERSION) from Debian's archive.
resolve_online() {
    apt_update || return 1
    meta_ver=$(apt_private apt-cache madison "$kernel_meta" |
        awk -F' *[|] *' '$3 ~ /Packages/ { print $2 }' | sort -V | tail -n 1)
    [ -n "$meta_ver" ] || { echo "no $kernel_meta in bookworm" >"$tmp/update.log"; return 1; }
    # The metapackage depends on exactly one linux-image-ABI[-cloud]-amd64 (= VERSION).
    kernel_pv=$(apt_private apt-cache show "$kernel_meta=$meta_ver" |
        sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*'"$kernel_suffix"'\) (= \([^)]*\)).*/\1=\2/p' |
        head -n 1)
    [ -n "$kernel_pv" ] || { echo "cannot read what $kernel_meta=$meta_ver depends on" \
        >"$tmp/update.log"; return 1; }
    bb_ver=$(apt_private apt-cache madison "$busybox_pkg" |
        awk -F' *[|] *' '$3 ~ /Packages/ { print $2 }' | sort -V | tail -n 1)
    [ -n "$bb_ver" ] || { echo "no $busybox_pkg in bookworm" >"$tmp/update.log"; return 1; }
    busybox_pv=$busybox_pkg=$bb_ver
}

mkdir -p "$cache_dir"
exec 9>"$cache_dir/lock"
flock 9 2>/dev/null || true # one configure or vm-image at a time fills the cache

kernel_pv=$(cat "$out/kernel-version" 2>/dev/null || true)
busybox_pv=$(cat "$out/busybox-version" 2>/dev/null || true)
if [ "$refresh" = 1 ] || ! cached "$kernel_pv" || ! cached "$busybox_pv"; then
    pinned_k=$kernel_pv pinned_b=$busybox_pv
    if resolve_online; then
        fetch "$kernel_pv"
        fetch "$busybox_pv"
    else
        grep '^E:' "$tmp/update.log" >&2 || cat "$tmp/update.log" >&2
        if cached "$pinned_k" && cached "$pinned_b"; then
            kernel_pv=$pinned_k busybox_pv=$pinned_b
        else
            kernel_pv=$(newest_cached "linux-image-$kernel_glob")
            busybox_pv=$(newest_cached "$busybox_pkg-*")
        fi
        [ -n "$kernel_pv" ] && [ -n "$busybox_pv" ] ||
            die "cannot reach Debian's archive (above) and $cache_dir holds no earlier fetch"
        say "warning: Debian's archive is unreachable; using $kernel_pv and $busybox_pv from $cache_dir"
    fi
fi
kdir=$(unpacked_dir "$kernel_pv")
bbdir=$(unpacked_dir "$busybox_pv")
vmlinuz=
for f in "$kdir"/boot/vmlinuz-*; do vmlinuz=$f; done
[ -f "$vmlinuz" ] || die "$kdir has no boot/vmlinuz-*"
busybox=$bbdir/bin/busybox
[ -x "$busybox" ] || die "$bbdir has no bin/busybox"

# --- up to date? ---------------------------------------------------------------
{
    echo "$kernel_pv $busybox_pv"
    echo "modules: $modules"
    sha256sum "$script" | cut -d' ' -f1
    for spec in "$@"; do
        printf '%s %s\n' "${spec##*:}" "$(sha256sum "${spec%:*}" | cut -d' ' -f1)"
        [ -x "${spec%:*}" ] && echo x || echo -
    done
} >"$tmp/inputs"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ] &&
    [ "$(cat "$out/kernel-version" 2>/dev/null)" = "$kernel_pv" ] &&
    [ "$(cat "$out/busybox-version" 2>/dev/null)" = "$busybox_pv" ] &&
    cmp -s "$tmp/inputs" "$out/.inputs"; then
    say "$out is up to date ($kernel_pv, $# extra files)"
    exit 0
fi

# --- the initramfs -------------------------------------------------------------
root=$tmp/root
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys tmp run root etc mnt var/tmp
cp "$busybox" bin/busybox
for applet in $(bin/busybox --list); do
    [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
echo vkmt-vm >etc/hostname
printf 'root:x:0:0:root:/root:/bin/sh\n' >etc/passwd
printf 'root:x:0:\n' >etc/group
printf '%s\n%s\n' "$kernel_pv" "$busybox_pv" >etc/vkmt-vm-packages

cat >init <<'INIT'
#!/bin/sh
# vkmt test-VM init, written by scripts/vm-image.sh; the protocol is in docs/VM.md.
# Runs base64-decoded vkmt.cmd= from the kernel command line with sh -c on the
# console, between the lines "vkmt-vm: start" and "vkmt-vm: exit STATUS", then
# powers off; without vkmt.cmd it runs an interactive shell instead. With
# vkmt.wait=1 it says "vkmt-vm: ready" and reads the base64 command from the
# console instead: the host saves that state and starts later runs from it.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname vkmt-vm
exec </dev/console >/dev/console 2>&1
cd /root
set -f
cmd=
wait=
for arg in $(cat /proc/cmdline); do
    case $arg in
    vkmt.cmd=*) cmd=${arg#vkmt.cmd=} ;;
    vkmt.wait=1) wait=1 ;;
    esac
done
set +f
if [ -n "$wait" ]; then
    stty -echo
    echo "vkmt-vm: ready"
    read -r cmd
fi
if [ -n "$cmd" ]; then
    stty -echo
    if script=$(echo "$cmd" | base64 -d); then
        echo "vkmt-vm: start"
        sh -c "$script"
        status=$?
    else
        echo "vkmt-vm: start"
        echo "vkmt-vm: vkmt.cmd is not base64"
        status=125
    fi
else
    echo "vkmt-vm: start"
    setsid cttyhack sh -l
    status=$?
fi
echo "vkmt-vm: exit $status"
poweroff -f
INIT
chmod 755 init

for spec in "$@"; do
    guest=$root${spec##*:}
    mkdir -p "$(dirname "$guest")"
    rm -f "$guest"
    host=${spec%:*}
    case $host in /*) ;; *) host=$cwd/$host ;; esac
    cp "$host" "$guest"
    chmod go-w "$guest"
done

# --generic-kernel: the modules asked for and everything they depend on, at
# their paths below /lib/modules/VERSION, and a modules.dep for them that
# busybox modprobe reads (Debian's package ships no modules.dep: depmod
# writes one for the whole tree into $tmp first, reading the cached tree
# through a link so that the cache stays as unpacked).
if [ -n "$modules" ]; then
    kver=${vmlinuz##*/vmlinuz-}
    mkdir -p "$tmp/dep/lib/modules/$kver"
    ln -s "$kdir/lib/modules/$kver/kernel" "$tmp/dep/lib/modules/$kver/kernel"
    cp "$kdir/lib/modules/$kver"/modules.builtin* "$kdir/lib/modules/$kver/modules.order" \
        "$tmp/dep/lib/modules/$kver/"
    depmod -b "$tmp/dep" "$kver" || die "depmod failed on $kdir"
    for m in $modules; do
        paths=$(awk -F': *' -v want="$(echo "$m" | tr - _)" '{
            name = $1; sub(/.*\//, "", name); sub(/\.ko.*/, "", name); gsub(/-/, "_", name)
            if (name == want) { print $1; if ($2 != "") print $2 }
        }' "$tmp/dep/lib/modules/$kver/modules.dep" | tr ' ' '\n')
        [ -n "$paths" ] || die "no module $m in $kernel_pv"
        for p in $paths; do
            mkdir -p "$root/lib/modules/$kver/$(dirname "$p")"
            cp "$kdir/lib/modules/$kver/$p" "$root/lib/modules/$kver/$p"
        done
    done
    cp "$kdir/lib/modules/$kver"/modules.builtin* "$kdir/lib/modules/$kver/modules.order" \
        "$root/lib/modules/$kver/"
    depmod -b "$root" "$kver" || die "depmod failed on the image's modules"
fi

# /dev/console, needed before /init runs (the kernel opens it for init's
# stdio), cannot be made by cpio from a file list without root: a second
# newc archive written here holds it; the kernel unpacks both.
newc_member() { # NAME MODE RDEVMAJOR RDEVMINOR: one header and name, no data
    n=$((${#1} + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$n" 0
    printf '%s\0' "$1"
    pad=$(((4 - (110 + n) % 4) % 4))
    [ "$pad" = 0 ] || head -c "$pad" /dev/zero
}

epoch=${SOURCE_DATE_EPOCH:-0}
find . -exec touch -h -d "@$epoch" {} +
{
    find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet
    newc_member dev/console 8576 5 1 # 020600: character device, rw-------
    newc_member TRAILER!!! 0 0 0
} | gzip -n -9 >"$tmp/initramfs.cpio.gz"
cd "$cwd"

# --- outputs -------------------------------------------------------------------
mkdir -p "$out"
cp -p "$vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$tmp/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "$kernel_pv" >"$out/kernel-version"
echo "$busybox_pv" >"$out/busybox-version"
cp "$tmp/inputs" "$out/.inputs"
say "built $out: $kernel_pv, $busybox_pv, $# extra files," \
    "initramfs $(($(wc -c <"$out/initramfs.cpio.gz") / 1024)) KiB"
