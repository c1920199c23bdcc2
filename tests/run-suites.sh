#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: run-suites.sh BUILD_DIR... [--qtest QEMU_BINARY QTEST_BINARY | --no-qtest]
#                      [--vm SHELL_COMMAND] [--replay BINARY ARG...]... [-- EXAMPLE...]
# Runs every test suite of each build directory given (build, build/asan;
# the conformance suite once per loopback backend, memory and virgl),
# then the device's QEMU qtest (TAP: each "ok N" passes, each "not ok N"
# fails; "# SKIP" and "# TODO" ones are reported but not counted), then each
# example program (one test each: it passes when it exits 0), shows their
# output, and ends with one line "N passed, N failed" summing all of them. A
# suite that dies before its summary line, or a qtest that exits non-zero,
# stops short of its TAP plan or runs past QTEST_TIMEOUT seconds (default
# 600), counts as one failure. --vm runs a command (the VM runner) whose
# output holds the summary lines of suites run inside the test guest; each
# one is counted, and a run without any, or that exits non-zero with none
# failing, counts as one failure. --vm may be given more than once (one
# guest per device configuration). --replay runs BINARY with the ARGs that
# follow it, up to the next argument starting with "--" (a fuzz harness's
# replay binary and its corpus and crash directories; no whitespace in
# them); when its output ends with a summary line, each input counts as one
# test, otherwise the whole run is one test that passes when it exits 0.
set -u

# SUITE or SUITE@BACKEND: the loopback transport's backend (default mem).
suites="test_protocol test_core test_guestlib test_virgl conformance conformance@virgl"
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

dirs=
vm_cmds=
replays=
qemu=
qtest=
no_qtest=0
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
    --qtest)
        [ $# -ge 3 ] || { echo "run-suites.sh: --qtest QEMU_BINARY QTEST_BINARY" >&2; exit 2; }
        qemu=$2
        qtest=$3
        shift 3
        ;;
    --no-qtest) no_qtest=1; shift ;;
    --vm)
        [ $# -ge 2 ] || { echo "run-suites.sh: --vm SHELL_COMMAND" >&2; exit 2; }
        vm_cmds="$vm_cmds$2
"
        shift 2
        ;;
    --replay)
        [ $# -ge 2 ] || { echo "run-suites.sh: --replay BINARY ARG..." >&2; exit 2; }
        cmd=$2
        shift 2
        while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do
            cmd="$cmd $1"
            shift
        done
        replays="$replays$cmd
"
        ;;
    *) dirs="$dirs $1"; shift ;;
    esac
done
[ $# -gt 0 ] && shift # the "--"

# add_summary RC: adds the counts of the last "# NAME: N passed, N failed"
# line in $log to the totals (a clean summary with a bad exit status RC, e.g.
# a leak report, counts one failure); status 1 when $log has no such line.
add_summary() {
    line=$(grep -E '^# [a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    [ -n "$line" ] || return 1
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    if [ "$1" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

for dir in $dirs; do
    for s in $suites; do
        bin=$dir/tests/${s%@*}
        backend=mem
        label=$bin
        if [ "$s" != "${s#*@}" ]; then
            backend=${s#*@}
            label="$bin (loopback backend $backend)"
        fi
        printf '== %s\n' "$label"
        VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(pwd)/$dir/libvkmt-loopback.so \
            VKMT_LOOPBACK_BACKEND=$backend "$bin" >"$log" 2>&1
        rc=$?
        cat "$log"
        if ! add_summary "$rc"; then
            printf '# %s died (exit status %d) before reporting\n' "$bin" "$rc"
            total_fail=$((total_fail + 1))
        fi
    done
done

while IFS= read -r cmd; do
    [ -n "$cmd" ] || continue
    printf '== %s\n' "$cmd"
    set -f
    # shellcheck disable=SC2086 # the words of one --replay, split on purpose
    $cmd </dev/null >"$log" 2>&1
    rc=$?
    set +f
    cat "$log"
    add_summary "$rc" && continue
    if [ "$rc" -eq 0 ]; then
        total_pass=$((total_pass + 1))
    else
        printf '# %s exited with status %d\n' "$cmd" "$rc"
        total_fail=$((total_fail + 1))
    fi
done <<REPLAYS
$replays
REPLAYS

if [ -n "$qtest" ]; then
    printf '== %s\n' "$qtest"
    QTEST_QEMU_BINARY=$(cd "$(dirname "$qemu")" && pwd)/$(basename "$qemu") \
        timeout -k 10 "${QTEST_TIMEOUT:-600}" "$qtest" --tap -k >"$log" 2>&1
    rc=$?
    cat "$log"
    counts=$(awk '
        /^ok [0-9]+/ { if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) s++; else p++; next }
        /^not ok [0-9]+/ { if ($0 ~ /# *[Tt][Oo][Dd][Oo]/) s++; else f++; next }
        /^1\.\.[0-9]+/ { split($0, a, /\.\./); plan = a[2] + 0 }
        END { printf "%d %d %d %d\n", p, f, s, (plan == "" ? -1 : plan) }' "$log")
    read -r p f s plan <<COUNTS
$counts
COUNTS
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        printf '# %s timed out after %s s\n' "$qtest" "${QTEST_TIMEOUT:-600}"
        f=$((f + 1))
    elif [ $((p + f + s)) -eq 0 ]; then
        printf '# %s died (exit status %d) before reporting\n' "$qtest" "$rc"
        f=$((f + 1))
    elif [ "$plan" -ge 0 ] && [ $((p + f + s)) -lt "$plan" ]; then
        printf '# %s stopped after %d of %d tests (exit status %d)\n' "$qtest" \
            $((p + f + s)) "$plan" "$rc"
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        printf '# %s exited with status %d\n' "$qtest" "$rc"
        f=1
    fi
    printf '# vkmt-test (qtest): %d passed, %d failed, %d skipped\n' "$p" "$f" "$s"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
fi

while IFS= read -r vm_cmd; do
    [ -n "$vm_cmd" ] || continue
    printf '== in the test VM: %s\n' "$vm_cmd"
    sh -c "$vm_cmd" </dev/null >"$log" 2>&1
    rc=$?
    tr -d '\r' <"$log" >"$log.clean" && mv "$log.clean" "$log"
    cat "$log"
    counts=$(awk '/^# [a-z_]+: [0-9]+ passed, [0-9]+ failed$/ {
            n++; p += $3; f += $5 } END { printf "%d %d %d\n", n, p, f }' "$log")
    read -r n p f <<COUNTS
$counts
COUNTS
    if [ "$n" -eq 0 ]; then
        printf '# the test VM reported no suite (runner exit status %d)\n' "$rc"
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
done <<VMS
$vm_cmds
VMS

for ex in "$@"; do
    printf '== %s\n' "$ex"
    if VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(pwd)/build/libvkmt-loopback.so "$ex"; then
        total_pass=$((total_pass + 1))
    else
        printf '# %s failed\n' "$ex"
        total_fail=$((total_fail + 1))
    fi
done

[ "$no_qtest" = 0 ] ||
    echo "# QEMU qtest not run: configured --without-qemu (only the non-QEMU suites ran)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
