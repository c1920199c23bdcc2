#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Usage: distill.py COVERAGE_DIR INPUT_DIR...
# Picks the few fuzzer inputs worth committing: with the gcov builds of
# make coverage (COVERAGE_DIR/test_core, COVERAGE_DIR/fuzz_core_replay), it
# measures the engine lines the unit tests and the committed corpus and crash
# inputs reach, then runs every file of INPUT_DIR... alone and greedily picks
# the one adding most lines (the smaller on a tie) until none adds any. It
# prints each pick with the lines it adds; copying them into
# tests/fuzz/core/corpus/ under telling names is left to the reader, which
# keeps the committed corpus to tens of files.
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def covered(objdir, sources):
    """Engine lines with a non-zero count in the current .gcda files."""
    out = subprocess.run(["gcov", "-t", "-o", objdir] + sources, cwd=ROOT,
                         capture_output=True, text=True).stdout
    lines, source = set(), None
    for row in out.splitlines():
        parts = row.split(":", 2)
        if len(parts) < 3:
            continue
        count, number = parts[0].strip(), parts[1].strip()
        if number == "0" and parts[2].startswith("Source:"):
            source = parts[2][len("Source:"):]
        elif source and count not in ("-", "#####", "====="):
            lines.add((source, int(number)))
    return lines


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: distill.py COVERAGE_DIR INPUT_DIR...")
    cov = os.path.abspath(sys.argv[1])
    objdir = os.path.join(cov, "obj", "hw-device", "core")
    sources = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "hw-device/core/*.c")))
    quiet = {"cwd": ROOT, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}

    def reset():
        for f in glob.glob(os.path.join(objdir, "*.gcda")):
            os.remove(f)

    reset()
    subprocess.run([os.path.join(cov, "test_core")], **quiet)
    subprocess.run([os.path.join(cov, "fuzz_core_replay"), "--no-fork", "tests/fuzz/core/corpus",
                    "tests/fuzz/core/crashes"], **quiet)
    base = covered(objdir, sources)
    gains = {}
    for d in sys.argv[2:]:
        for f in sorted(glob.glob(os.path.join(d, "*"))):
            reset()
            subprocess.run([os.path.join(cov, "fuzz_core_replay"), "--no-fork", f], **quiet)
            extra = covered(objdir, sources) - base
            if extra:
                gains[f] = extra
    print(f"distill: the unit tests and the committed inputs reach {len(base)} engine lines")
    while gains:
        best = max(gains, key=lambda f: (len(gains[f]), -os.path.getsize(f)))
        lines = gains.pop(best)
        print(f"{best} ({os.path.getsize(best)} bytes): +{len(lines)} lines: " +
              " ".join(f"{s.split('/')[-1]}:{n}" for s, n in sorted(lines)))
        for f in list(gains):
            gains[f] -= lines
            if not gains[f]:
                del gains[f]


if __name__ == "__main__":
    main()
