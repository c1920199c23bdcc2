#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the test VM: every suite that runs over the PCI transport, with the
# device unbound, then the guest kernel driver's suite after kmd-load binds
# it. Each prints its own "# NAME: N passed, N failed" line for the host to
# add up; the exit status is non-zero when any of them failed.
status=0
for suite in conformance test_reap; do
    "$suite" || status=1
done
if kmd-load; then
    test_kmd || status=1
else
    echo "vm-suites: kmd-load failed: test_kmd not run" >&2
    status=1
fi
exit $status
