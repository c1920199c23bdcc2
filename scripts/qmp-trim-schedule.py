#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Apply memory pressure to a running vkmt device on a schedule, over QMP.

    scripts/qmp-trim-schedule.py --qmp SOCKET [options] SCHEDULE

SCHEDULE is a file ('-' for stdin) with one step per line, run in order:

    at 2.0s trim 16M          2.0 s after connecting: discard at least 16 MiB
    at 5 budget 8M            5 s after connecting: set the budget to 8 MiB
    after 4 offer trim all    once the event log holds 4 "offer" lines: trim all
    after 1 reclaim budget default    back to the default budget (half the aperture)
    at 6s stats               print the device's statistics
    # a comment

A step waits for its trigger and then acts; a trigger already past fires at
once, so the steps keep their order whatever the timing. Triggers: "at T"
(seconds, optional "s", on CLOCK_MONOTONIC from the moment QMP answered) and
"after N EVENT" (the device's event-log file, given with --event-log, holds
at least N lines of EVENT, counted from the top of the file). Actions:
"trim SIZE|all", "budget SIZE|default", "stats". Sizes take K, M, G (powers
of 1024).

Output: one tab-separated line per step: seconds since connecting,
CLOCK_MONOTONIC nanoseconds (the event log's clock), the action, its
argument in bytes, and what the device reports (bytes a trim freed, the
budget in force, or the statistics as JSON). Exit status 0, 1 when QMP or
the device refused a step, 2 on a bad schedule or usage.

Python 3 standard library only. docs/RESEARCH.md explains how to use it.
"""

import argparse
import json
import os
import re
import socket
import sys
import time

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
STEP_RE = re.compile(
    r"^(?:at\s+(?P<at>\d+(?:\.\d*)?)s?|after\s+(?P<count>\d+)\s+(?P<event>[a-z_]+))"
    r"\s+(?P<action>trim|budget|stats)(?:\s+(?P<arg>\S+))?$"
)


class ScheduleError(Exception):
    pass


class QmpError(Exception):
    pass


def parse_size(text, zero_word):
    """Bytes from '16M', '4096', or @zero_word (which means 0)."""
    if text == zero_word:
        return 0
    m = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not m:
        raise ScheduleError("bad size %r (e.g. 4096, 64K, 16M, or %s)" % (text, zero_word))
    return int(m.group(1)) * SIZE_UNITS[m.group(2)]


def parse_schedule(lines):
    """A list of steps: dicts with at or (count, event), action and bytes."""
    steps = []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = STEP_RE.match(line)
        if not m:
            raise ScheduleError("line %d: %r: expected 'at T ACTION' or 'after N EVENT ACTION'"
                                % (n, raw.rstrip("\n")))
        action, arg = m.group("action"), m.group("arg")
        step = {"line": n, "action": action, "bytes": None}
        if m.group("at") is not None:
            step["at"] = float(m.group("at"))
        else:
            step["count"], step["event"] = int(m.group("count")), m.group("event")
        try:
            if action == "trim":
                step["bytes"] = parse_size(arg or "", "all")
            elif action == "budget":
                step["bytes"] = parse_size(arg or "", "default")
            elif arg is not None:
                raise ScheduleError("stats takes no argument")
        except ScheduleError as e:
            raise ScheduleError("line %d: %s" % (n, e)) from None
        steps.append(step)
    return steps


class Qmp:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, wait):
        deadline = time.monotonic() + wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() >= deadline:
                    raise QmpError("no QMP server at %s after %g s" % (path, wait))
                time.sleep(0.05)
        self.file = sock.makefile("rwb")
        if "QMP" not in self.recv():
            raise QmpError("%s is not a QMP socket" % path)
        self.execute("qmp_capabilities")

    def recv(self):
        line = self.file.readline()
        if not line:
            raise QmpError("QMP connection closed")
        return json.loads(line)

    def execute(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self.recv()
            if "event" in reply:
                continue
            if "error" in reply:
                raise QmpError("%s: %s" % (command, reply["error"].get("desc", reply["error"])))
            return reply.get("return")


class EventLog:
    """Counts the event log's lines per event as the device appends them."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.counts = {}

    def count(self, event):
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self.offset:
                    # Truncated: the device was created again; start over.
                    self.offset, self.partial, self.counts = 0, b"", {}
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            fields = line.split(b"\t")
            if len(fields) > 2 and not line.startswith(b"#"):
                name = fields[2].decode(errors="replace")
                self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts.get(event, 0)


def run_step(qmp, path, step):
    """Act; returns the argument and the device's answer for the report."""
    if step["action"] == "trim":
        qmp.execute("qom-set", path=path, property="trim", value=step["bytes"])
        return step["bytes"], "freed=%d" % qmp.execute("qom-get", path=path, property="trim")
    if step["action"] == "budget":
        qmp.execute("qom-set", path=path, property="budget", value=step["bytes"])
        return step["bytes"], "budget=%d" % qmp.execute("qom-get", path=path, property="budget")
    stats = qmp.execute("qom-get", path=path, property="stats")
    return "-", json.dumps(stats, sort_keys=True, separators=(",", ":"))


def main(argv):
    ap = argparse.ArgumentParser(
        description="Trim a vkmt device or change its budget over QMP on a schedule "
        "(see the script's docstring and docs/RESEARCH.md).")
    ap.add_argument("--qmp", required=True, metavar="SOCKET",
                    help="QEMU's QMP unix socket (-qmp unix:SOCKET,server=on,wait=off)")
    ap.add_argument("--device", default="vk", metavar="ID",
                    help="the device's id= (default vk): QOM path /machine/peripheral/ID")
    ap.add_argument("--path", metavar="QOMPATH", help="the device's QOM path instead of --device")
    ap.add_argument("--event-log", metavar="FILE",
                    help="the device's event-log= file, for 'after' triggers")
    ap.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                    help="how long to wait for the QMP socket (default 30)")
    ap.add_argument("--poll", type=float, default=0.005, metavar="SECONDS",
                    help="how often triggers are checked (default 0.005)")
    ap.add_argument("schedule", help="schedule file, '-' for stdin")
    opts = ap.parse_args(argv)

    try:
        if opts.schedule == "-":
            steps = parse_schedule(sys.stdin)
        else:
            with open(opts.schedule) as f:
                steps = parse_schedule(f)
        if any("event" in s for s in steps) and not opts.event_log:
            raise ScheduleError("'after' triggers need --event-log FILE")
    except (OSError, ScheduleError) as e:
        print("qmp-trim-schedule: %s" % e, file=sys.stderr)
        return 2

    qom_path = opts.path or "/machine/peripheral/" + opts.device
    log = EventLog(opts.event_log) if opts.event_log else None
    try:
        qmp = Qmp(opts.qmp, opts.wait)
        start = time.monotonic()
        for step in steps:
            while True:
                if "at" in step:
                    left = start + step["at"] - time.monotonic()
                    if left <= 0:
                        break
                    time.sleep(min(left, opts.poll))
                elif log.count(step["event"]) >= step["count"]:
                    break
                else:
                    time.sleep(opts.poll)
            now = time.monotonic_ns()
            arg, answer = run_step(qmp, qom_path, step)
            print("%.3f\t%d\t%s\t%s\t%s" % (now / 1e9 - start, now, step["action"], arg, answer),
                  flush=True)
    except (OSError, QmpError) as e:
        print("qmp-trim-schedule: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
