#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tests of scripts/qmp-trim-schedule.py against a real QEMU with the vkmt
device and its event log: steps run in order on time and event-log triggers,
each action reaches the device and is reported with what the device answers,
the script's clock is the event log's, and bad schedules, a missing device
and a missing socket give their exit statuses.

    tests/scripts/test_qmp_schedule.py QEMU_BINARY

No guest runs (the machine stays paused), so the device sees only host
steps; the qtest covers the guest's side of the event log. Ends with the
line "# test_qmp_schedule: N passed, N failed". Python 3 standard library.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "qmp-trim-schedule.py")
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print("%s - %s%s" % ("ok" if ok else "not ok", name, "" if ok else ": " + detail))


def schedule(tmp, sock, text, *extra):
    path = os.path.join(tmp, "schedule")
    with open(path, "w") as f:
        f.write(text)
    return subprocess.run([sys.executable, SCRIPT, "--qmp", sock, "--wait", "10", *extra, path],
                          capture_output=True, text=True, timeout=60)


def log_lines(path):
    """The event log's data lines, split into columns."""
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f.readlines()[2:]]


def main(argv):
    if len(argv) != 1:
        print("usage: test_qmp_schedule.py QEMU_BINARY", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vkmt-sched-") as tmp:
        sock, evlog = os.path.join(tmp, "qmp.sock"), os.path.join(tmp, "ev.tsv")
        qemu = subprocess.Popen(
            [argv[0], "-machine", "q35", "-nodefaults", "-display", "none", "-S",
             "-device", "vkmt,id=vk,aperture-size=16M,event-log=" + evlog,
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            run_tests(tmp, sock, evlog)
        finally:
            qemu.kill()
            qemu.wait()

    print("# test_qmp_schedule: %d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


def run_tests(tmp, sock, evlog):
    r = schedule(tmp, sock,
                 "# host steps only\n"
                 "at 0 trim 4K\n"
                 "after 1 reset budget 1M   # the reset of the machine's start\n"
                 "at 0.1s stats\n"
                 "after 1 budget budget default\n",
                 "--event-log", evlog)
    check("a schedule runs to the end", r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr))
    out = [line.split("\t") for line in r.stdout.splitlines()]
    check("one report line per step", len(out) == 4 and all(len(f) == 5 for f in out), r.stdout)
    if len(out) != 4 or any(len(f) != 5 for f in out):
        return
    check("trim: asked bytes, bytes freed", out[0][2:] == ["trim", "4096", "freed=0"], out[0])
    check("budget: asked bytes, budget in force",
          out[1][2:] == ["budget", "1048576", "budget=1048576"], out[1])
    stats = json.loads(out[2][4])
    check("stats: the device's counters, per priority too",
          out[2][2] == "stats" and stats.get("budget_bytes") == 1048576
          and stats.get("trims") == 1 and stats.get("reclaim_ok_low") == 0, out[2])
    check("budget default: half the aperture",
          out[3][2:] == ["budget", "0", "budget=%d" % (8 << 20)], out[3])
    check("steps keep their order", [float(f[0]) for f in out] == sorted(float(f[0]) for f in out),
          r.stdout)

    log = log_lines(evlog)
    check("the event log holds the steps, in order",
          [f[1:] for f in log] == [["1", "reset", "-", "-", "-", "-", "-"],
                                   ["2", "trim", "-", "-", "4096", "-", "-"],
                                   ["3", "budget", "-", "-", "1048576", "-", "-"],
                                   ["4", "budget", "-", "-", str(8 << 20), "-", "-"]], log)
    # The script reads the clock just before it acts, on the log's clock.
    sched_ns = [int(out[i][1]) for i in (0, 1, 3)]
    log_ns = [int(f[0]) for f in log[1:]]
    check("the script's and the log's clocks agree",
          sched_ns[0] <= log_ns[0] <= sched_ns[1] <= log_ns[1] <= sched_ns[2] <= log_ns[2],
          "%s %s" % (sched_ns, log_ns))

    r = schedule(tmp, sock, "at 0 trim 4K\nat soon trim 4K\n")
    check("a bad line: exit 2, its number named",
          r.returncode == 2 and "line 2" in r.stderr and not r.stdout, r.stderr)
    r = schedule(tmp, sock, "after 3 offer trim all\n")
    check("after without --event-log: exit 2", r.returncode == 2 and "--event-log" in r.stderr,
          r.stderr)
    r = schedule(tmp, sock, "at 0 trim 1Q\n")
    check("a bad size: exit 2", r.returncode == 2 and "bad size" in r.stderr, r.stderr)
    r = schedule(tmp, sock, "at 0 trim all\n", "--device", "nope")
    check("an unknown device: exit 1, QEMU's message",
          r.returncode == 1 and "/machine/peripheral/nope" in r.stderr, r.stderr)
    start = time.monotonic()
    r = schedule(tmp, os.path.join(tmp, "none.sock"), "at 0 stats\n", "--wait", "0.2")
    check("no QMP socket: exit 1 after --wait",
          r.returncode == 1 and "no QMP server" in r.stderr and time.monotonic() - start < 5,
          r.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
