#!/bin/sh
# SPDX-License-Identifier: MIT
# Usage: scripts/bench-compare.sh BASE [RUNS]
# Compares the host-side figures of make bench (docs/BENCH.md, step 1: the
# loopback calls at batches 1/64/1024/10240 and the bookkeeping per
# allocation, pointer checks on and off) between git revision BASE and this
# tree, side by side in one run: BASE's bench_host and libvkmt-loopback.so
# are built in a scratch worktree (build/compare/BASE, ./configure
# --without-qemu), then the two run alternately, RUNS times each (default
# 5), so that the machine's noise falls on both alike. Prints one line per
# figure: BASE's median, this tree's median and their ratio (this / BASE:
# above 1 is slower or bigger). The VM figures are left out: they need a
# QEMU and a test VM built per revision.
set -eu

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 BASE [RUNS]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
rev=$(git -C "$root" rev-parse --short "$1^{commit}") || { echo "$0: no revision $1" >&2; exit 2; }
runs=${2:-5}
say() { printf 'bench-compare: %s\n' "$*" >&2; }

tree=$root/build/compare/$rev
if [ ! -x "$tree/build/bench/bench_host" ]; then
    say "building $rev's bench_host in $tree"
    rm -rf "$tree"
    git -C "$root" worktree prune
    git -C "$root" worktree add -q --detach "$tree" "$rev"
    (cd "$tree" && ./configure --without-qemu >/dev/null &&
        make -s -j"$(nproc)" build/bench/bench_host build/libvkmt-loopback.so >/dev/null) ||
        { echo "$0: $rev does not build its bench_host" >&2; exit 1; }
fi
(cd "$root" && make -s build/bench/bench_host build/libvkmt-loopback.so)

raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
for i in $(seq "$runs"); do
    say "run $i of $runs"
    for side in base head; do
        dir=$root
        [ $side = base ] && dir=$tree
        for checks in 1 0; do
            # bench_host names the checks-off figures itself (.nochecks).
            VKMT_TRANSPORT=loopback VKMT_LOOPBACK_LIB="$dir/build/libvkmt-loopback.so" \
                VKMT_POINTER_CHECKS=$checks "$dir/build/bench/bench_host" --raw |
                sed -n 's/^vkmt-bench: //p' >>"$raw/$side"
        done
    done
done
python3 - "$raw/base" "$raw/head" "$rev" <<'PY'
import statistics, sys
def load(path):
    figs = {}
    for line in open(path):
        key, unit, value = line.split()
        figs.setdefault(key, (unit, []))[1].append(float(value))
    return figs
base, head = load(sys.argv[1]), load(sys.argv[2])
print("%-40s %6s %12s %12s %7s" % ("figure (median of runs)", "unit", sys.argv[3], "this tree", "ratio"))
for key in sorted(set(base) & set(head)):
    b, h = statistics.median(base[key][1]), statistics.median(head[key][1])
    print("%-40s %6s %12.1f %12.1f %7.2f" % (key, base[key][0], b, h, h / b if b else float("nan")))
PY
