#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the test VM: loads the guest kernel driver the image carries
# (/lib/vkmt.ko) and waits for devtmpfs to show /dev/vkmt0. Not run at boot:
# the PCI-transport suites need the device unbound.
insmod /lib/vkmt.ko || exit 1
i=0
while [ ! -c /dev/vkmt0 ]; do
    i=$((i + 1))
    if [ $i -gt 50 ]; then
        echo "kmd-load: no /dev/vkmt0 after insmod" >&2
        exit 1
    fi
    sleep 0.1
done
