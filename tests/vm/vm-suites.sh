#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the test VM: every suite that runs over the PCI transport, with the
# device unbound, then, after kmd-load binds the guest kernel driver, the
# conformance suite and the model-based test over it as an unprivileged user
# and the driver's suite. Each prints its own "# NAME: N passed, N failed"
# line for the host to add up; the exit status is non-zero when any of them
# failed.
status=0
for suite in conformance test_reap; do
    "$suite" || status=1
done
# The model-based test, with trims made by the host that it is not told of.
modeltest --seed 101 --steps 3000 --host-trims || status=1
if kmd-load; then
    # The driver's node is for everyone: the suite runs as nobody.
    as-nobody conformance || status=1
    as-nobody modeltest --seed 102 --steps 3000 || status=1
    # A reset over the driver needs the privilege: that test as root.
    VKMT_TEST=every_call_after_a_reset_is_device_removed conformance || status=1
    test_kmd || status=1
else
    echo "vm-suites: kmd-load failed: test_kmd not run" >&2
    status=1
fi
exit $status
