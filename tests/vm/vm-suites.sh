#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the test VM: every suite that runs over the PCI transport, with the
# device unbound, then, after kmd-load binds the guest kernel driver, the
# conformance suite and the model-based test over it as an unprivileged user
# and the driver's suite. Each prints its own "# NAME: N passed, N failed"
# line for the host to add up; the exit status is non-zero when any of them
# failed.
# With --migrate, test_migrate runs first over each transport: it saves and
# loads the VM and migrates it live into a second QEMU, so every suite after
# it runs on a device that came through a loadvm and a migration; and the
# model-based test over the driver pauses halfway for a savevm, a loadvm and
# a live migration (vm-save-restore), then goes on checking.
# With --unplug (a VM from vm-run --hotplug), test_unplug also runs last over
# each transport: it unplugs the device and plugs it in again.
status=0
unplug=0
migrate=0
for arg in "$@"; do
    case $arg in
    --unplug) unplug=1 ;;
    --migrate) migrate=1 ;;
    *) echo "vm-suites: unknown option $arg" >&2; exit 2 ;;
    esac
done
if [ $migrate = 1 ]; then
    test_migrate || status=1
fi
for suite in conformance test_reap test_squeeze; do
    "$suite" || status=1
done
# The model-based test, with trims made by the host that it is not told of
# and budgets the host sets, which demote.
modeltest --seed 101 --steps 3000 --host-trims --host-budget || status=1
if [ $unplug = 1 ]; then
    test_unplug || status=1
fi
if kmd-load; then
    if [ $migrate = 1 ]; then
        test_migrate || status=1
    fi
    # The driver's node is for everyone: the suite runs as nobody.
    as-nobody conformance || status=1
    if [ $migrate = 1 ]; then
        as-nobody modeltest --seed 102 --steps 3000 --host-budget --pause-at 1500 \
            --pause-cmd vm-save-restore || status=1
    else
        as-nobody modeltest --seed 102 --steps 3000 --host-budget || status=1
    fi
    # A reset over the driver needs the privilege: that test as root; and
    # every process's figures.
    VKMT_TEST=every_call_after_a_reset_is_device_removed conformance || status=1
    test_squeeze || status=1
    test_kmd || status=1
    if [ $unplug = 1 ]; then
        test_unplug || status=1
    fi
else
    echo "vm-suites: kmd-load failed: test_kmd not run" >&2
    status=1
fi
exit $status
