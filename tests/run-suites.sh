#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: run-suites.sh BUILD_DIR... [-- EXAMPLE...]
# Runs every test suite of each build directory given (build, build/asan),
# then each example program (one test each: it passes when it exits 0),
# shows their output, and ends with one line "N passed, N failed" summing all
# of them. A suite that dies before its summary line counts as one failure.
set -u

suites="test_protocol test_core test_guestlib conformance"
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

dirs=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    dirs="$dirs $1"
    shift
done
[ $# -gt 0 ] && shift # the "--"

for dir in $dirs; do
    for s in $suites; do
        bin=$dir/tests/$s
        printf '== %s\n' "$bin"
        VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(pwd)/$dir/libvkmt-loopback.so \
            "$bin" >"$log" 2>&1
        rc=$?
        cat "$log"
        line=$(grep -E '^# [a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
        if [ -z "$line" ]; then
            printf '# %s died (exit status %d) before reporting\n' "$bin" "$rc"
            total_fail=$((total_fail + 1))
            continue
        fi
        p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1 # a clean summary but a bad exit (e.g. a leak report)
        fi
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
    done
done

for ex in "$@"; do
    printf '== %s\n' "$ex"
    if VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(pwd)/build/libvkmt-loopback.so "$ex"; then
        total_pass=$((total_pass + 1))
    else
        printf '# %s failed\n' "$ex"
        total_fail=$((total_fail + 1))
    fi
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
