#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The mutant gate: every guarantee of PROTOCOL.md has a test that fails
when the code stops keeping it.

    scripts/mutants.py [--list FILE] [--only NAME]... [--suites NAME,...] [--keep] [--fuzz]

Each mutant of the list (tests/mutants/mutants.txt) is a small named edit of
the engine or the guest library that breaks one guarantee. The gate copies
the working tree to build/mutants/tree, builds the fast suites there once
(test_core, test_protocol, test_guestlib, conformance and modeltest with the
loopback transport and the memory backend), checks that they pass unmutated, then
for each mutant applies its edit, rebuilds what changed, runs the suites in
that order until one fails, and puts the file back. A mutant is killed when
a suite fails, crashes or runs past 120 s; it survives when every suite
passes. Prints one line per mutant with the tests that killed it, then
"# mutants: N passed, N failed" (a killed mutant passes) for
tests/run-suites.sh, and exits non-zero when any mutant survived, did not
apply (its text is not in the file exactly once) or did not build.

List format: a mutant starts with "== NAME", then "file: PATH", "guards:
WHAT IT BREAKS", and its edit as "- " lines (consecutive lines of the file,
compared without their leading whitespace) followed by "+ " lines (their
replacement, indented like the first line replaced). "#" starts a comment.

--suites runs only the suites named, to learn what one suite kills on its
own (a mutant it misses then counts as survived).

--fuzz also replays the engine fuzz harness's corpus (fuzz_core_replay, its
differential model) on every mutant the fast suites let through, to find
the mutants only the fuzz model kills; those still count as not killed.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = os.path.join(ROOT, "build", "mutants", "tree")
TARGETS = ["build/tests/test_core", "build/tests/test_protocol", "build/tests/test_guestlib",
           "build/tests/conformance", "build/tests/modeltest", "build/libvkmt-loopback.so"]
SUITES = ["test_core", "test_protocol", "test_guestlib", "conformance", "modeltest"]
SUITE_TIMEOUT = 120
# The scratch build is for speed, not for measuring: light optimisation
# compiles a mutated file fastest while keeping the suites quick.
MAKE_VARS = ["OPT_CFLAGS=-O1 -g0"]


class Mutant:
    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.file = None
        self.guards = None
        self.old = []
        self.new = []


def parse(path):
    mutants = []
    cur = None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("== "):
                cur = Mutant(line[3:].strip(), n)
                mutants.append(cur)
            elif cur is None:
                sys.exit("%s:%d: text before the first '== NAME'" % (path, n))
            elif line.startswith("file: "):
                cur.file = line[6:].strip()
            elif line.startswith("guards: "):
                cur.guards = line[8:].strip()
            elif line.startswith("- ") or line == "-":
                if cur.new:
                    sys.exit("%s:%d: '-' line after '+' lines" % (path, n))
                cur.old.append(line[2:])
            elif line.startswith("+ ") or line == "+":
                cur.new.append(line[2:])
            else:
                sys.exit("%s:%d: cannot read %r" % (path, n, line))
    names = set()
    for m in mutants:
        if not (m.file and m.guards and m.old):
            sys.exit("%s:%d: mutant %s needs file:, guards: and '-' lines" % (path, m.line, m.name))
        if m.name in names:
            sys.exit("%s:%d: mutant %s listed twice" % (path, m.line, m.name))
        names.add(m.name)
    return mutants


def mutate(text, m):
    """The file's text with the mutant's edit applied, or an error string."""
    lines = text.split("\n")
    want = [s.strip() for s in m.old]
    hits = [i for i in range(len(lines) - len(want) + 1)
            if [s.strip() for s in lines[i:i + len(want)]] == want]
    if len(hits) != 1:
        return None, "its '-' lines occur %d times in %s (want once)" % (len(hits), m.file)
    i = hits[0]
    indent = re.match(r"\s*", lines[i]).group(0)
    new = [indent + s.strip() if s.strip() else "" for s in m.new]
    return "\n".join(lines[:i] + new + lines[i + len(want):]), None


def copy_tree():
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    os.makedirs(SCRATCH, exist_ok=True)
    wanted = {f.decode() for f in files if f}
    # Files the tree no longer has (moved or deleted) go from the copy too.
    for top, dirs, names in os.walk(SCRATCH):
        rel = os.path.relpath(top, SCRATCH)
        if rel == "build":
            dirs[:] = []
            continue
        for name in names:
            path = os.path.normpath(os.path.join(rel, name))
            if path not in wanted:
                os.unlink(os.path.join(top, name))
    for f in sorted(wanted):
        if not os.path.isfile(os.path.join(ROOT, f)):
            continue
        dst = os.path.join(SCRATCH, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        src = os.path.join(ROOT, f)
        # Only changed files are written, so the scratch build stays incremental.
        with open(src, "rb") as a:
            data = a.read()
        if os.path.exists(dst):
            with open(dst, "rb") as b:
                if b.read() == data:
                    continue
        with open(dst, "wb") as b:
            b.write(data)
        shutil.copymode(src, dst)
    os.makedirs(os.path.join(SCRATCH, "build"), exist_ok=True)
    shutil.copy(os.path.join(ROOT, "build", "config.mk"), os.path.join(SCRATCH, "build", "config.mk"))


def build(targets):
    r = subprocess.run(["make", "-s", "-j%d" % (os.cpu_count() or 2)] + MAKE_VARS + targets,
                       cwd=SCRATCH, capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


FUZZ_REPLAY = ["build/fuzz/core/fuzz_core_replay", "tests/fuzz/core/corpus",
               "tests/fuzz/core/crashes"]


def run_suites(suites):
    """(None, "") when every suite passes; else (suite, the tests that failed)."""
    env = dict(os.environ, VKMT_TRANSPORT="loopback", VKMT_LOOPBACK_BACKEND="mem",
               VKMT_LOOPBACK_LIB=os.path.join(SCRATCH, "build", "libvkmt-loopback.so"))
    env.pop("VKMT_TEST", None)  # every test, whatever the caller selected
    for suite in suites:
        cmd = ([os.path.join(SCRATCH, "build", "tests", suite)] if suite != "fuzz_core_replay"
               else [os.path.join(SCRATCH, FUZZ_REPLAY[0])] + FUZZ_REPLAY[1:])
        try:
            r = subprocess.run(cmd, cwd=SCRATCH,
                               env=env, capture_output=True, text=True, errors="replace",
                               timeout=SUITE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return suite, "timed out after %d s" % SUITE_TIMEOUT
        failed = re.findall(r"^not ok \d+ - (\S+)", r.stdout, re.M)
        if failed:
            more = " (+%d more)" % (len(failed) - 2) if len(failed) > 2 else ""
            return suite, ", ".join(failed[:2]) + more
        if r.returncode != 0:
            how = ("killed by signal %d" % -r.returncode if r.returncode < 0
                   else "exit status %d" % r.returncode)
            return suite, "crashed (%s)" % how
    return None, ""


def main():
    ap = argparse.ArgumentParser(description="Run the mutant gate (see the module docstring).")
    ap.add_argument("--list", default=os.path.join(ROOT, "tests", "mutants", "mutants.txt"))
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this mutant (repeatable)")
    ap.add_argument("--suites", type=lambda v: v.split(","), default=SUITES, metavar="NAME,...",
                    help="run only these suites (default: %s)" % ",".join(SUITES))
    ap.add_argument("--keep", action="store_true",
                    help="leave the last mutant applied in the scratch tree")
    ap.add_argument("--fuzz", action="store_true",
                    help="replay the engine fuzz corpus on mutants the fast suites miss")
    args = ap.parse_args()
    mutants = parse(args.list)
    if args.only:
        unknown = set(args.only) - {m.name for m in mutants}
        if unknown:
            sys.exit("mutants: no mutant named %s" % ", ".join(sorted(unknown)))
        mutants = [m for m in mutants if m.name in args.only]
    t0 = time.monotonic()
    print("mutants: %d from %s; scratch tree %s" % (len(mutants), os.path.relpath(args.list, ROOT),
                                                    os.path.relpath(SCRATCH, ROOT)), flush=True)
    targets = TARGETS + ([FUZZ_REPLAY[0]] if args.fuzz else [])
    copy_tree()
    ok, out = build(targets)
    if not ok:
        print(out)
        sys.exit("mutants: the unmutated tree does not build")
    unknown = set(args.suites) - set(SUITES)
    if unknown:
        sys.exit("mutants: no suite named %s" % ", ".join(sorted(unknown)))
    suite, why = run_suites(args.suites + (["fuzz_core_replay"] if args.fuzz else []))
    if suite:
        sys.exit("mutants: the unmutated tree fails %s: %s" % (suite, why))
    print("mutants: the unmutated tree builds and passes (%.1f s)" % (time.monotonic() - t0),
          flush=True)
    killed = 0
    bad = []
    for i, m in enumerate(mutants, 1):
        t = time.monotonic()
        path = os.path.join(SCRATCH, m.file)
        with open(path) as f:
            orig = f.read()
        text, err = mutate(orig, m)
        if err:
            verdict, detail = "NOT APPLIED", err
        else:
            with open(path, "w") as f:
                f.write(text)
            ok, out = build(targets)
            if not ok:
                verdict, detail = "NOT BUILT", out.strip().splitlines()[-1] if out.strip() else ""
            else:
                suite, why = run_suites(args.suites)
                verdict, detail = ("killed", "by %s: %s" % (suite, why)) if suite else \
                    ("SURVIVED", "every fast suite passes")
                if not suite and args.fuzz:
                    suite, why = run_suites(["fuzz_core_replay"])
                    if suite:
                        verdict, detail = "FUZZ ONLY", "killed only by %s: %s" % (suite, why)
            if not (args.keep and i == len(mutants)):
                with open(path, "w") as f:
                    f.write(orig)
        if verdict == "killed":
            killed += 1
        else:
            bad.append(m.name)
        print("%-11s %-40s %s [%.1f s]" % (verdict, m.name, detail, time.monotonic() - t), flush=True)
        if verdict != "killed":
            print("            guards: %s (%s:%d)" % (m.guards, os.path.relpath(args.list, ROOT), m.line))
    print("mutants: %d of %d killed in %.0f s%s" % (killed, len(mutants), time.monotonic() - t0,
                                                    "" if not bad else "; not killed: " + ", ".join(bad)))
    print("# mutants: %d passed, %d failed" % (killed, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
