#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: run-suites.sh BUILD_DIR... [--without-virgl]
#                      [--qtest QEMU_BINARY QTEST_BINARY | --no-qtest]
#                      [--vm SHELL_COMMAND EXPECTED_SUITES]... [--replay BINARY ARG...]...
#                      [-- EXAMPLE...]
# Runs every test suite of each build directory given (build, build/asan;
# the conformance suite once per loopback backend, memory and virgl; with
# --without-virgl the two suites over virgl count as skipped), each
# --replay command, the device's QEMU qtest, each --vm command, then each
# example program, shows their output, and ends with two lines: "# N
# skipped ..." and "N passed, N failed", summing all of them.
#
# How a run is counted (tests/selftest/run-suites-selftest.sh checks each rule):
# - TAP lines: "ok" passes, "not ok" fails; a "# SKIP" directive on either, or
#   "# TODO" on "not ok", makes the test skipped, not failed; "ok ... # TODO"
#   passes. Only lines at the start of a line count: indented ones are
#   subtests, which their parent line sums up.
# - A suite's summary line "# NAME: N passed, N failed[, N skipped]" must
#   agree with its TAP lines, and the TAP lines must reach the "1..N" plan;
#   a "not ok" always fails, whatever the summary says.
# - A run that dies before its summary, stops short of its plan, exits
#   non-zero with nothing failed, or runs past its timeout (SUITE_TIMEOUT,
#   default 600 s, for every suite, replay and example; QTEST_TIMEOUT for the
#   qtest; VM runs bring their own) counts one failure more.
# - --vm runs SHELL_COMMAND (the VM runner), whose output holds the summary
#   lines of the suites run inside the test guest; each suite named in
#   EXPECTED_SUITES (space-separated) must report exactly once, and every
#   one missing counts as a failure.
# - --replay runs BINARY with the ARGs that follow it, up to the next
#   argument starting with "--" (a fuzz harness's replay binary and its
#   corpus and crash directories; no whitespace in them): with a summary
#   line, it counts as the summary says; without one it is one test that
#   passes when it exits 0.
set -u

# SUITE or SUITE@BACKEND: the loopback transport's backend (default mem).
suites="test_protocol test_core test_guestlib test_virgl conformance conformance@virgl modeltest"
timeout_s=${SUITE_TIMEOUT:-600}
total_pass=0
total_fail=0
total_skip=0
log=$(mktemp)
trap 'rm -f "$log" "$log.clean"' EXIT

dirs=
vm_cmds=
replays=
qemu=
qtest=
no_qtest=0
without_virgl=0
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
    --qtest)
        [ $# -ge 3 ] || { echo "run-suites.sh: --qtest QEMU_BINARY QTEST_BINARY" >&2; exit 2; }
        qemu=$2
        qtest=$3
        shift 3
        ;;
    --no-qtest) no_qtest=1; shift ;;
    --without-virgl)
        suites="test_protocol test_core test_guestlib conformance modeltest"
        without_virgl=1
        shift
        ;;
    --vm)
        [ $# -ge 3 ] || { echo "run-suites.sh: --vm SHELL_COMMAND EXPECTED_SUITES" >&2; exit 2; }
        vm_cmds="$vm_cmds$3|$2
"
        shift 3
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

SUMMARY_RE='^# [a-z_]+: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$'

# tap_counts FILE: "PASS FAIL SKIP PLAN NOT_OK" from the TAP lines of FILE
# (PLAN -1 without a plan line; NOT_OK counts real failures only).
tap_counts() {
    awk '
        /^ok( |$)/ {
            if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) s++; else p++
            next
        }
        /^not ok( |$)/ {
            if ($0 ~ /#[ \t]*([Ss][Kk][Ii][Pp]|[Tt][Oo][Dd][Oo])/) s++; else f++
            next
        }
        /^1\.\.[0-9]+/ { split($0, a, /\.\./); plan = a[2] + 0 }
        END { printf "%d %d %d %d\n", p, f, s, (plan == "" ? -1 : plan) }' "$1"
}

# count NAME RC: adds what the run in $log reported to the totals, by the
# rules above. RC is its exit status; NAME is what the messages call it.
# Returns 1 when $log has neither a summary line nor TAP lines.
count() {
    name=$1
    rc=$2
    read -r tp tf ts plan <<EOF
$(tap_counts "$log")
EOF
    line=$(grep -E "$SUMMARY_RE" "$log" | tail -n 1)
    if [ -z "$line" ] && [ $((tp + tf + ts)) -eq 0 ]; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            printf '# %s timed out\n' "$name"
        fi
        return 1
    fi
    if [ -n "$line" ]; then
        np=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
        nf=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        ns=$(echo "$line" | sed -E -n 's/.* ([0-9]+) skipped$/\1/p')
        ns=${ns:-0}
        if [ $((tp + tf + ts)) -gt 0 ] && { [ "$tp" -ne "$np" ] || [ "$tf" -ne "$nf" ] ||
            [ "$ts" -ne "$ns" ]; }; then
            printf '# %s: the summary (%d passed, %d failed, %d skipped) disagrees with its TAP lines (%d, %d, %d)\n' \
                "$name" "$np" "$nf" "$ns" "$tp" "$tf" "$ts"
            [ "$tf" -gt "$nf" ] && nf=$tf
            [ "$tp" -lt "$np" ] && np=$tp
            nf=$((nf + 1))
        fi
    else
        np=$tp
        nf=$tf
        ns=$ts
    fi
    extra=0
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        printf '# %s timed out\n' "$name"
        extra=1
    elif [ -z "$line" ] && [ "$plan" -lt 0 ]; then
        printf '# %s died (exit status %d) before its summary\n' "$name" "$rc"
        extra=1
    elif [ "$plan" -ge 0 ] && [ $((tp + tf + ts)) -lt "$plan" ]; then
        printf '# %s stopped after %d of %d tests (exit status %d)\n' "$name" \
            $((tp + tf + ts)) "$plan" "$rc"
        extra=1
    elif [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
        printf '# %s exited with status %d with nothing failed\n' "$name" "$rc"
        extra=1
    fi
    total_pass=$((total_pass + np))
    total_fail=$((total_fail + nf + extra))
    total_skip=$((total_skip + ns))
    return 0
}

# run_logged KIND NAME COMMAND...: runs COMMAND under the suite timeout into
# $log, shows the log and counts it. With nothing to count, a "suite" fails
# and a "command" is one test that passes when it exits 0.
run_logged() {
    kind=$1
    name=$2
    shift 2
    timeout -k 10 "$timeout_s" "$@" </dev/null >"$log" 2>&1
    rc=$?
    cat "$log"
    count "$name" "$rc" && return
    if [ "$kind" = suite ]; then
        printf '# %s died (exit status %d) before reporting\n' "$name" "$rc"
        total_fail=$((total_fail + 1))
    elif [ "$rc" -eq 0 ]; then
        total_pass=$((total_pass + 1))
    else
        printf '# %s exited with status %d\n' "$name" "$rc"
        total_fail=$((total_fail + 1))
    fi
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
        # Suites that bring up virglrenderer: Mesa's EGL driver leaks at each
        # display (tests/lsan.supp says how the suppression finds it).
        asan_opts=${ASAN_OPTIONS-}
        lsan_opts=${LSAN_OPTIONS-}
        case "$s" in
        test_virgl | *@virgl)
            asan_opts="${asan_opts:+$asan_opts:}fast_unwind_on_malloc=0"
            lsan_opts="${lsan_opts:+$lsan_opts:}suppressions=$(pwd)/tests/lsan.supp"
            ;;
        esac
        printf '== %s\n' "$label"
        if [ ! -x "$bin" ]; then
            printf '# %s is missing\n' "$bin"
            total_fail=$((total_fail + 1))
            continue
        fi
        run_logged suite "$label" env "ASAN_OPTIONS=$asan_opts" "LSAN_OPTIONS=$lsan_opts" \
            VKMT_TRANSPORT=loopback \
            VKMT_LOOPBACK_LIB="$(pwd)/$dir/libvkmt-loopback.so" VKMT_LOOPBACK_BACKEND=$backend "$bin"
    done
done

while IFS= read -r cmd; do
    [ -n "$cmd" ] || continue
    printf '== %s\n' "$cmd"
    set -f
    # shellcheck disable=SC2086 # the words of one --replay, split on purpose
    run_logged command "$cmd" $cmd
    set +f
done <<REPLAYS
$replays
REPLAYS

if [ -n "$qtest" ]; then
    printf '== %s\n' "$qtest"
    timeout_s=${QTEST_TIMEOUT:-600}
    run_logged suite vkmt-test env \
        QTEST_QEMU_BINARY="$(cd "$(dirname "$qemu")" && pwd)/$(basename "$qemu")" "$qtest" --tap -k
    timeout_s=${SUITE_TIMEOUT:-600}
fi

while IFS= read -r entry; do
    [ -n "$entry" ] || continue
    expect=${entry%%|*}
    vm_cmd=${entry#*|}
    printf '== in the test VM: %s\n' "$vm_cmd"
    sh -c "$vm_cmd" </dev/null >"$log" 2>&1
    rc=$?
    tr -d '\r' <"$log" >"$log.clean" && mv "$log.clean" "$log"
    cat "$log"
    p=0
    f=0
    s=0
    for suite in $expect; do
        lines=$(grep -E "$SUMMARY_RE" "$log" | grep -c "^# $suite: ")
        if [ "$lines" -ne 1 ]; then
            printf '# the test VM reported suite %s %d times (want once; runner exit status %d)\n' \
                "$suite" "$lines" "$rc"
            f=$((f + 1))
        fi
    done
    counts=$(grep -E "$SUMMARY_RE" "$log" | awk '{ p += $3; f += $5; s += $7 } END { printf "%d %d %d\n", p, f, s }')
    read -r sp sf ss <<COUNTS
$counts
COUNTS
    notok=$(tap_counts "$log" | awk '{ print $2 }')
    [ "$notok" -gt "$sf" ] && sf=$notok
    if [ "$rc" -ne 0 ] && [ "$sf" -eq 0 ] && [ "$f" -eq 0 ]; then
        printf '# the test VM runner exited with status %d with nothing failed\n' "$rc"
        f=1
    fi
    total_pass=$((total_pass + sp))
    total_fail=$((total_fail + sf + f))
    total_skip=$((total_skip + ss))
done <<VMS
$vm_cmds
VMS

for ex in "$@"; do
    printf '== %s\n' "$ex"
    VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB=$(pwd)/build/libvkmt-loopback.so \
        timeout -k 10 "$timeout_s" "$ex"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        total_pass=$((total_pass + 1))
    else
        printf '# %s failed (exit status %d)\n' "$ex" "$rc"
        total_fail=$((total_fail + 1))
    fi
done

if [ "$without_virgl" = 1 ]; then
    for dir in $dirs; do
        echo "# $dir/tests/test_virgl and conformance over virgl not run: configured --without-virgl"
        total_skip=$((total_skip + 2))
    done
fi
if [ "$no_qtest" = 1 ]; then
    echo "# QEMU qtest not run (--no-qtest: configured --without-qemu, or make check-unit)"
    total_skip=$((total_skip + 1))
fi
echo "# $total_skip skipped (tests and suites that did not run here; not counted below)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
