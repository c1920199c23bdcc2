#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: run-suites-selftest.sh [RUN_SUITES_SCRIPT]
# Checks each counting rule of tests/run-suites.sh (or the script given)
# with fake suites: a build directory of shell scripts standing in for the
# seven suites, fake replays, a fake qtest and a fake VM runner, each printing
# the output under test. Every case states the totals the rule implies; the
# result is one "# run_suites_selftest: N passed, N failed" line.
set -u

here=$(cd "$(dirname "$0")" && pwd)
script=${1:-$here/../run-suites.sh}
script=$(cd "$(dirname "$script")" && pwd)/$(basename "$script")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
n=0
case_timeout=20 # seconds each fake suite may take

# fake PATH CONTENT: an executable shell script printing CONTENT (printf format).
fake() {
    printf '#!/bin/sh\nprintf %s\n' "'$2'" >"$1"
    chmod +x "$1"
}

# A build directory whose seven suites all pass one test each.
fresh_build() {
    rm -rf "$tmp/b" && mkdir -p "$tmp/b/tests"
    for s in test_protocol test_core test_guestlib test_virgl conformance modeltest; do
        fake "$tmp/b/tests/$s" "1..1\nok 1 - fine\n# $s: 1 passed, 0 failed\n"
    done
}

# expect NAME PASSED FAILED SKIPPED [ARG...]: runs the script on $tmp/b with
# ARGs and checks its totals and exit status.
expect() {
    name=$1
    want="$2 passed, $3 failed"
    want_fail=$3
    want_skip=$4
    shift 4
    n=$((n + 1))
    (cd "$tmp" && SUITE_TIMEOUT=$case_timeout sh "$script" b "$@") >"$tmp/out" 2>&1
    rc=$?
    got=$(tail -n 1 "$tmp/out")
    got_skip=$(sed -n 's/^# \([0-9]*\) skipped.*/\1/p' "$tmp/out" | tail -n 1)
    want_rc=0
    [ "$want_fail" -eq 0 ] || want_rc=1
    [ "$rc" -eq 0 ] || rc=1
    if [ "$got" = "$want" ] && [ "$got_skip" = "$want_skip" ] && [ "$rc" -eq "$want_rc" ]; then
        echo "ok $n - $name"
        passed=$((passed + 1))
    else
        echo "not ok $n - $name"
        echo "#   want \"$want\", $want_skip skipped, exit $want_rc; got \"$got\", ${got_skip:-no} skipped, exit $rc"
        sed 's/^/#   | /' "$tmp/out" | tail -n 12
        failed=$((failed + 1))
    fi
}

echo "1..12"

fresh_build
expect "seven passing suites pass; a qtest not run is one skipped suite" 7 0 1 --no-qtest

fresh_build
fake "$tmp/b/tests/test_core" "1..2\nok 1 - a\nnot ok 2 - b\n# test_core: 2 passed, 0 failed\n"
expect "a not ok line fails although the summary says 0 failed" 7 2 0

fresh_build
fake "$tmp/b/tests/test_core" "1..3\nok 1 - a\n"
expect "a suite that stops short of its plan fails" 7 1 0

fresh_build
fake "$tmp/b/tests/test_core" "1..1\n    not ok 1 - subtest\n    1..1\nok 1 - parent\n# test_core: 1 passed, 0 failed\n"
expect "an indented not ok is a subtest, summed up by its parent" 7 0 0

fresh_build
fake "$tmp/b/tests/test_core" "1..2\nok 1 - a\nnot ok 2 - b # TODO not yet\n# test_core: 1 passed, 0 failed, 1 skipped\n"
expect "not ok with a TODO directive is skipped, not failed" 7 0 1

fresh_build
fake "$tmp/b/tests/test_virgl" "1..2\nok 1 - a # SKIP no GL here\nok 2 - b\n# test_virgl: 1 passed, 0 failed, 1 skipped\n"
expect "ok with a SKIP directive is counted as skipped" 7 0 1

fresh_build
fake "$tmp/b/tests/test_virgl" "1..1\nok 1 - a\n"
expect "a suite without its summary but with its whole plan counts by its TAP lines" 7 0 0

fresh_build
printf '#!/bin/sh\nsleep 30\n' >"$tmp/b/tests/test_guestlib"
case_timeout=2
expect "a suite past SUITE_TIMEOUT fails" 6 1 0

fresh_build
printf '#!/bin/sh\nsleep 30\necho "# slow_replay: 5 passed, 0 failed"\n' >"$tmp/slow"
chmod +x "$tmp/slow"
expect "a replay past SUITE_TIMEOUT fails" 7 1 0 --replay "$tmp/slow"
case_timeout=20

fresh_build
fake "$tmp/vm" "1..1\nok 1 - x\n# conformance: 4 passed, 0 failed\n"
expect "a VM run missing an expected suite fails" 11 1 0 --vm "$tmp/vm" "conformance test_reap"

fresh_build
fake "$tmp/vm" "# conformance: 4 passed, 0 failed\nnot ok 3 - y\n# test_reap: 2 passed, 0 failed\n"
expect "a not ok line in the VM output fails" 13 1 0 --vm "$tmp/vm" "conformance test_reap"

fresh_build
fake "$tmp/qtest" "1..3\nok 1 - a\nnot ok 2 - b # TODO later\nok 3 - c # SKIP no bus\n"
expect "qtest TAP: TODO and SKIP directives are skipped" 8 0 2 --qtest "$tmp/qemu" "$tmp/qtest"

echo "# run_suites_selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
