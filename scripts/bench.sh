#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/bench.sh OUT_DIR
# make bench (docs/BENCH.md): measures every figure of the benchmark table
# in one run and writes OUT_DIR/results.json, results.md and results.png.
# The Makefile builds what it runs first (bench_host, QEMU, build/vm and
# build/vm-bench). Raw sample lines ("vkmt-bench: KEY UNIT VALUE", one per
# run) go to OUT_DIR/raw/; bench/report.py turns them into the results.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out=$1
raw=$out/raw
root=$(cd "$(dirname "$0")/.." && pwd)
host_runs=5
boots=5

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

rm -rf "$raw"
mkdir -p "$raw"
start=$(date +%s)
step() { say "[$1/14] $2 ($(($(date +%s) - start)) s so far)"; }

{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host=$(uname -sr), $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
    echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
} >"$raw/meta.txt"

# --- loopback: separate processes, so that each bookkeeping figure starts
# from a fresh heap.
step 1 "loopback (in process): offer, reclaim, reclaim2 at 1/64/1024/10240, bookkeeping; $host_runs runs, pointer checks on and off"
for i in $(seq "$host_runs"); do
    for checks in 1 0; do
        VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB="$root/build/libvkmt-loopback.so" \
            VKMT_POINTER_CHECKS=$checks "$root/build/bench/bench_host" --raw \
            >>"$raw/loopback.txt" || die "bench_host failed: $(tail -n 3 "$raw/loopback.txt")"
    done
done

# --- the content backends over loopback: Lock2/Unlock2 of 4 MiB, offer +
# reclaim, and the discard and recreate a trim and a reclaim cause, with host
# memory and with virglrenderer GL buffers (Mesa's llvmpipe without a GPU).
# BENCH_BACKENDS: those built (make bench leaves virgl out when configured without it).
backends=${BENCH_BACKENDS:-mem virgl}
step 2 "loopback, content backends $backends: lock/unlock 4 MiB, offer+reclaim, trim, recreate; $host_runs runs each"
for i in $(seq "$host_runs"); do
    for backend in $backends; do
        VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB="$root/build/libvkmt-loopback.so" \
            VKMT_LOOPBACK_BACKEND=$backend "$root/build/bench/bench_host" --raw --backend \
            >>"$raw/backends.txt" || die "bench_host --backend failed: $(tail -n 3 "$raw/backends.txt")"
    done
done

# --- in the VM. vm-run chooses the accelerator (KVM only after a probe boot
# succeeded within 5 s, else TCG) and says which on stderr.
vm_on() { # IMAGE NAME VM-RUN-ARG... -- COMMAND: one VM run, its samples to raw/vm-NAME.txt
    image=$1
    name=$2
    shift 2
    "$root/scripts/vm-run" --timeout 300 --image "$image" "$@" \
        >"$raw/vm-$name.txt" 2>"$raw/vm-$name.err" || {
        tail -n 20 "$raw/vm-$name.txt" "$raw/vm-$name.err" >&2
        die "the VM run '$name' failed (logs: $raw/vm-$name.txt, $raw/vm-$name.err)"
    }
    sed -n 's/^vkmt-vm: accel \([a-z]*\).*/accel_'"$name"'=\1/p' "$raw/vm-$name.err" >>"$raw/meta.txt"
}
vm() { vm_on "$root/build/vm-bench" "$@"; } # NAME ...: on the bench image

step 3 "VM, doorbell=inline: MMIO read, edu, the calls (pointer checks on and off), create+destroy, virtio-gpu, trim"
vm inline --device-props doorbell=inline \
    --qemu-arg=-device --qemu-arg=edu --qemu-arg=-device --qemu-arg=virtio-gpu-pci -- \
    'modprobe virtio_pci && modprobe virtio-gpu && vkmt-bench mmio edu calls pair create gpu trim &&' \
    'VKMT_POINTER_CHECKS=0 vkmt-bench calls pair create'

step 4 "VM, doorbell=ioeventfd: MMIO read, the calls, create+destroy"
vm ioeventfd --device-props doorbell=ioeventfd -- 'vkmt-bench mmio calls create'

step 5 "VM, doorbell=iothread: MMIO read, the calls, create+destroy"
vm iothread --qemu-arg=-object --qemu-arg=iothread,id=io0 \
    --device-props doorbell=iothread,iothread=io0 -- 'vkmt-bench mmio calls create'

# --- the guest kernel driver (kmd transport). The driver is built for the
# test VM image's kernel (build/vm, Debian's cloud kernel; docs/KMD.md), so
# these runs boot build/vm, and each measures its PCI-transport floor in the
# same boot before kmd-load binds the driver to the device.
# MakeResident and Evict move allocations into and out of the non-local
# segment, named here so that the rows never run without one.
step 6 "VM (build/vm), doorbell=inline: MMIO read, round trips, MakeResident/Evict at 1 and 1024 and a 10 ms wait over pci, then kmd-load: nop ioctl, round trips (pointer checks on and off), MakeResident/Evict, the wait over kmd"
vm_on "$root/build/vm" kmd-inline --device-props doorbell=inline,nonlocal-size=256M -- \
    'VKMT_TRANSPORT=pci vkmt-bench mmio rtt resident wait && kmd-load &&' \
    'VKMT_TRANSPORT=kmd vkmt-bench nop rtt resident wait && VKMT_TRANSPORT=kmd VKMT_POINTER_CHECKS=0 vkmt-bench rtt'

step 7 "VM (build/vm), doorbell=ioeventfd, kmd: round trips"
vm_on "$root/build/vm" kmd-ioeventfd --device-props doorbell=ioeventfd -- \
    'kmd-load && VKMT_TRANSPORT=kmd vkmt-bench rtt'

step 8 "VM (build/vm), doorbell=iothread, kmd: round trips"
vm_on "$root/build/vm" kmd-iothread --qemu-arg=-object --qemu-arg=iothread,id=io0 \
    --device-props doorbell=iothread,iothread=io0 -- 'kmd-load && VKMT_TRANSPORT=kmd vkmt-bench rtt'

# Four vCPUs, so that four processes can run at once (under TCG, as many
# as the host has cores).
step 9 "VM (build/vm, 4 vCPUs), doorbell=inline, kmd: 1-4 processes offering and reclaiming 64 handles, 0.5 s each"
vm_on "$root/build/vm" kmd-scale --device-props doorbell=inline --qemu-arg=-smp --qemu-arg=4 -- \
    'kmd-load && VKMT_TRANSPORT=kmd vkmt-bench scale'

# --- boot to the first command, as make bench-vm measures it, on the test
# VM image (build/vm); then the same from a saved state (vm-run --snapshot),
# after one run that makes sure the state exists.
step 10 "VM first command (build/vm): $boots boots, then $boots starts from a saved state"
boot_runs() { # KEY VM-RUN-ARG...: $boots runs, their boot-to-command as KEY
    key=$1
    shift
    for i in $(seq "$boots"); do
        "$root/scripts/vm-run" --timeout 60 "$@" -- true >/dev/null 2>"$raw/boot.err" || {
            cat "$raw/boot.err" >&2
            die "a boot failed"
        }
        sed -n 's/^vkmt-vm: boot-to-command \(.*\)/vkmt-bench: '"$key"' s \1/p' \
            "$raw/boot.err" >>"$raw/boot.txt"
        sed -n 's/^vkmt-vm: accel \([a-z]*\).*/accel_boot=\1/p' "$raw/boot.err" >>"$raw/boot-accel.txt"
    done
}
boot_runs vm.boot_to_command
"$root/scripts/vm-run" --timeout 120 --snapshot -- true >/dev/null 2>"$raw/boot.err" || {
    cat "$raw/boot.err" >&2
    die "the run that saves the booted state failed"
}
boot_runs vm.snapshot_to_command --snapshot
head -n 1 "$raw/boot-accel.txt" >>"$raw/meta.txt"

step 11 "VM (build/vm), migration: 64 MiB of allocations, half offered: stream bytes with migrate-offered keep and discard, then live downtime; 7 runs"
vm_on "$root/build/vm" migrate -- 'vkmt-bench migrate'

step 12 "VM (build/vm): a host trim request (QMP trim-notify) to the guest's trim callback, over pci and over kmd; 7 runs each"
vm_on "$root/build/vm" notify-pci -- 'vkmt-bench notify'
vm_on "$root/build/vm" notify-kmd -- 'kmd-load && VKMT_TRANSPORT=kmd vkmt-bench notify'
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/meta.txt"

# --- the longest main-loop stall a guest causes, seen from a host QMP loop
# (docs/DEVICE.md, threat model): the guest is played over qtest, whose MMIO writes hold the BQL
# on the main loop as a vCPU's do. Once more with the work bound off, as the
# device was before it had one.
step 13 "host: longest QMP round trip during a 10,240-element command storm and a 40,240-allocation reset; 3 runs, then 1 unbounded"
"$root/scripts/bench-stall.py" "$root/build/qemu/qemu-system-x86_64" --runs 3 >"$raw/stall.txt" ||
    die "bench-stall.py failed"
"$root/scripts/bench-stall.py" "$root/build/qemu/qemu-system-x86_64" --runs 1 --work-bound 0 \
    >>"$raw/stall.txt" || die "bench-stall.py --work-bound 0 failed"

step 14 "results: $out/results.json, results.md, results.png"
python3 "$root/bench/report.py" "$out"
gnuplot "$out/results.gp" || die "gnuplot failed on $out/results.gp"
cat "$out/results.md"
say "done in $(($(date +%s) - start)) s"
