#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the test VM: every suite that runs over the PCI transport. Each
# prints its own "# NAME: N passed, N failed" line for the host to add up;
# the exit status is non-zero when any of them failed.
status=0
for suite in conformance test_reap; do
    "$suite" || status=1
done
exit $status
