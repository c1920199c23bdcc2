#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the test VM, for a program that holds device state across it
# (modeltest --pause-cmd vm-save-restore): asks the VM runner (docs/VM.md)
# to savevm, to loadvm that state (the VM goes back into the savevm request,
# which then answers "loaded"), and to migrate the VM live into a second
# QEMU. Exits non-zero when a step failed.
fail() { echo "vm-save-restore: $1: $2" >&2; exit 1; }
echo "vkmt-vm: savevm pause"
read -r r
if [ "$r" = saved ]; then
    echo "vkmt-vm: loadvm pause"
    read -r r # answered only if the load failed
fi
[ "$r" = loaded ] || fail loadvm "$r"
echo "vkmt-vm: migrate-start"
read -r r
[ "$r" = started ] || fail migrate-start "$r"
echo "vkmt-vm: migrate-wait"
read -r r
case $r in done*) ;; *) fail migrate-wait "$r" ;; esac
