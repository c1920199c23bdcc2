#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: campaign.sh FUZZER OUT_DIR SECONDS JOBS SEED_DIR [LIBFUZZER_FLAG...]
# A fuzzing campaign for make fuzz: JOBS libFuzzer processes for SECONDS,
# all growing OUT_DIR/corpus (each reloads what the others add) and reading
# SEED_DIR, never writing it. Every second process (the 2nd, 4th, ...) also
# gets the flags in CAMPAIGN_EVEN_FLAGS, after the others so that they win
# (make fuzz: long inputs there, short ones elsewhere). A process that finds
# a crash saves the input in OUT_DIR/crashes/ and is started again for the
# time left, so one finding does not end the campaign. Plain processes rather
# than libFuzzer's -fork mode: its short jobs re-run their seeds on every
# start, which for this harness cost three quarters of the time. Ends with
# the inputs run per second by each process and by all together, the edges
# the corpus reaches, and the number of corpus and crash files.
set -u

fuzzer=$1
out=$2
seconds=$3
jobs=$4
seeds=$5
shift 5
mkdir -p "$out/corpus" "$out/crashes"
rm -f "$out"/worker-*.log
start=$(date +%s)
end=$((start + seconds))

i=0
while [ "$i" -lt "$jobs" ]; do
    i=$((i + 1))
    even=
    [ $((i % 2)) -eq 0 ] && even=${CAMPAIGN_EVEN_FLAGS:-}
    (
        while [ "$(date +%s)" -lt "$end" ]; do
            # shellcheck disable=SC2086 # CAMPAIGN_EVEN_FLAGS is a list of flags
            "$fuzzer" -max_total_time=$((end - $(date +%s))) -print_final_stats=1 \
                -artifact_prefix="$out/crashes/" "$@" $even "$out/corpus" "$seeds" \
                >>"$out/worker-$i.log" 2>&1
        done
    ) &
done
echo "campaign: $jobs processes for $seconds s, logs in $out/worker-*.log"
while [ "$(date +%s)" -lt "$end" ]; do
    left=$((end - $(date +%s)))
    sleep $((left < 30 ? left : 30))
    now=$(($(date +%s) - start))
    [ "$now" -gt "$seconds" ] && now=$seconds
    grep -hE '^#[0-9]+[[:space:]]+(pulse|NEW|REDUCE)' "$out"/worker-*.log 2>/dev/null |
        tail -n 1 | sed "s/^/campaign: ${now}s: /"
done
wait

elapsed=$(($(date +%s) - start))
[ "$elapsed" -gt 0 ] || elapsed=1
i=0
runs=0
while [ "$i" -lt "$jobs" ]; do
    i=$((i + 1))
    n=$(awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' \
        "$out/worker-$i.log")
    lim=$(sed -n 's/.* lim: \([0-9]*\) .*/\1/p' "$out/worker-$i.log" | tail -n 1)
    echo "campaign: process $i (inputs up to ${lim:-?} bytes): $n inputs, $((n / elapsed)) inputs/s"
    runs=$((runs + n))
done
edges=$("$fuzzer" -runs=0 "$out/corpus" "$seeds" 2>&1 |
    sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' | tail -n 1)
echo "campaign: $runs inputs in ${elapsed}s by $jobs processes:" \
    "$((runs / elapsed)) inputs/s in all"
echo "campaign: the corpus reaches ${edges:-?} edges; $(find "$out/corpus" -type f | wc -l) corpus" \
    "inputs, $(find "$out/crashes" -type f | wc -l) crash inputs in $out/crashes"
