#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Usage: scripts/bench-stall.py QEMU_BINARY [--runs N] [--work-bound N]

The longest main-loop stall a guest causes (docs/BENCH.md), seen two ways:
from the host, one process sends QMP query-status in a tight loop and keeps
the longest round trip; from the device, its "longest-step-ns" property
(the longest time one engine call held it, restarted before each scenario).
The guest is played through the qtest protocol (its MMIO writes hold the BQL
on the main loop as a vCPU's would) and does, one after the other:
  create  CREATE_ALLOCATIONS of 10,240 one-page allocations, one command;
  storm   63 commands of 10,240 elements each (OFFER / RECLAIM of 10,240
          allocations, alternating) on one ring, rung with one doorbell;
  evict   with 30,000 more allocations offered and the budget at what is
          committed, a 30,000-page creation that discards 30,000 offers;
  trim    a guest TRIM of everything still offered (10,240 allocations),
          then its scrub of every page no allocation holds;
  destroy DESTROY_DEVICE of the device, 40,241 allocations;
  reset   status = 0 with 30,000 allocations alive (teardown of all).
The same QMP loop over an idle device gives the host's floor (idle). Runs
with SCHED_FIFO priority 5 where it may (root or CAP_SYS_NICE). Prints
"vkmt-bench: stall.WHAT.max ns VALUE" (QMP) and "vkmt-bench: step.WHAT.max
ns VALUE" (device) lines per scenario and run, the format of bench/report.py
(with --work-bound N, the device's property, the keys are
stall.WHAT.boundN.max and step.WHAT.boundN.max). doorbell=inline: the
doorbell write itself processes commands, the worst case for the main
loop."""
import base64
import json
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

PAGE = 4096
REGS, CTRL = 0xe0000000, 0xe0400000  # where the script maps BARs 0 and 2
DEVFN = 4 << 3  # -device vkmt,addr=0x4
SQE = struct.Struct("<BBHIIIIIIIIIQ16s")  # struct vkmt_sqe, field by field
CQE = struct.Struct("<IIQQII")  # struct vkmt_cqe

# What the script needs from protocol/vkmt_proto.h, printed by a small C
# program compiled against it, so no offset or opcode is restated here.
NAMES = {
    "status": "VKMT_REG(status)", "driver_features": "VKMT_REG(driver_features)",
    "queue_claim": "VKMT_REG(queue_claim)", "doorbell0": "VKMT_REG_DOORBELL(0)",
    "sq_tail": "offsetof(struct vkmt_queue_hdr, sh_sq_tail)",
    "cq_head": "offsetof(struct vkmt_queue_hdr, sh_cq_head)",
    "sq_off": "VKMT_QUEUE_SQ_OFF", "cq_off": "VKMT_QUEUE_CQ_OFF",
    "staging_off": "VKMT_QUEUE_STAGING_OFF", "depth": "VKMT_QUEUE_DEPTH",
    "sqe_size": "sizeof(struct vkmt_sqe)", "cqe_size": "sizeof(struct vkmt_cqe)",
    "ack": "VKMT_STATUS_ACKNOWLEDGE", "driver": "VKMT_STATUS_DRIVER",
    "features_ok": "VKMT_STATUS_FEATURES_OK", "driver_ok": "VKMT_STATUS_DRIVER_OK",
    "op_create_device": "VKMT_OP_CREATE_DEVICE", "op_create": "VKMT_OP_CREATE_ALLOCATIONS",
    "op_offer": "VKMT_OP_OFFER", "op_reclaim": "VKMT_OP_RECLAIM", "prio": "VKMT_PRIO_NORMAL",
    "op_trim": "VKMT_OP_TRIM", "op_destroy_device": "VKMT_OP_DESTROY_DEVICE",
    "f_guest_trim": "VKMT_F_GUEST_TRIM",
    "desc_size": "sizeof(struct vkmt_alloc_desc)",
}


def protocol(root):
    prog = "#include <stddef.h>\n#include <stdio.h>\n#include \"vkmt_proto.h\"\nint main(void)\n{\n"
    for name, expr in NAMES.items():
        prog += '    printf("%s %%lu\\n", (unsigned long)(%s));\n' % (name, expr)
    prog += "    return 0;\n}\n"
    with tempfile.TemporaryDirectory() as d:
        c, exe = os.path.join(d, "p.c"), os.path.join(d, "p")
        with open(c, "w") as f:
            f.write(prog)
        subprocess.check_call(["cc", "-std=c11", "-I", os.path.join(root, "protocol"), c, "-o",
                               exe])
        out = subprocess.check_output([exe]).decode().split("\n")
    p = {k: int(v) for k, v in (line.split() for line in out if line)}
    assert p["sqe_size"] == SQE.size and p["cqe_size"] == CQE.size, "SQE/CQE layout changed"
    return p


class Qtest:
    def __init__(self, sock):
        self.f = sock.makefile("rwb", buffering=0)

    def cmd(self, line):
        self.f.write(line.encode() + b"\n")
        while True:
            reply = self.f.readline().decode().strip()
            if reply.startswith("IRQ"):
                continue
            if not reply.startswith("OK"):
                raise RuntimeError("qtest %r: %r" % (line, reply))
            return reply[3:]

    def outl(self, port, val):
        self.cmd("outl 0x%x 0x%x" % (port, val))

    def cfg_writel(self, reg, val):
        self.outl(0xcf8, 0x80000000 | DEVFN << 8 | reg)
        self.outl(0xcfc, val)

    def cfg_writew(self, reg, val):
        self.outl(0xcf8, 0x80000000 | DEVFN << 8 | (reg & ~3))
        self.cmd("outw 0x%x 0x%x" % (0xcfc + (reg & 2), val))

    def writel(self, addr, val):
        self.cmd("writel 0x%x 0x%x" % (addr, val))

    def readl(self, addr):
        return int(self.cmd("readl 0x%x" % addr), 16)

    def write(self, addr, data):
        self.cmd("b64write 0x%x 0x%x %s" % (addr, len(data), base64.b64encode(data).decode()))

    def read(self, addr, size):
        return base64.b64decode(self.cmd("b64read 0x%x 0x%x" % (addr, size)))


class Qmp:
    def __init__(self, sock):
        self.f = sock.makefile("rwb", buffering=0)
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            reply = json.loads(self.f.readline())
            if "event" not in reply:
                return reply


def stall_loop(qmp, stop, worst):
    """Child process: QMP round trips until @stop is set; the longest to @worst."""
    longest = 0.0
    while not stop.is_set():
        t = time.perf_counter()
        qmp.cmd("query-status")
        longest = max(longest, time.perf_counter() - t)
    worst.put(longest)


class Stall:
    """The QMP round-trip loop, run while a scenario runs. A process of its
    own, so that the driver's Python (the GIL) never delays a round trip."""

    def __init__(self, qmp):
        self.qmp, self.worst = qmp, 0.0

    def __enter__(self):
        self.stop, self.result = multiprocessing.Event(), multiprocessing.Queue()
        self.proc = multiprocessing.Process(target=stall_loop,
                                            args=(self.qmp, self.stop, self.result))
        self.proc.start()
        time.sleep(0.05)  # the loop is running before the scenario starts
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.worst = self.result.get()
        self.proc.join()


class Guest:
    """A driver for queue 0, played through qtest."""

    def __init__(self, qt, p):
        self.qt, self.p = qt, p
        self.tail = self.head = self.cid = 0
        self.phase = 1

    def bring_up(self):
        qt, p = self.qt, self.p
        qt.writel(REGS + p["status"], p["ack"] | p["driver"])
        qt.writel(REGS + p["driver_features"], p["f_guest_trim"])
        qt.writel(REGS + p["status"], p["features_ok"])
        qt.writel(REGS + p["status"], p["driver_ok"])
        assert qt.readl(REGS + p["queue_claim"]) == 0

    def post(self, opcode, handle=0, count=0, payload_off=0, payload_len=0, result_off=0,
             result_len=0, arg0=0):
        self.cid += 1
        sqe = SQE.pack(opcode, 0, 0, self.cid, handle, count, payload_off, payload_len,
                       result_off, result_len, arg0, 0, 0, b"")
        self.qt.write(CTRL + self.p["sq_off"] + (self.tail % self.p["depth"]) * SQE.size, sqe)
        self.tail += 1

    def ring(self):
        self.qt.writel(CTRL + self.p["sq_tail"], self.tail)
        self.qt.writel(REGS + self.p["doorbell0"], self.tail)

    def reap_all(self, timeout=600):
        """Waits for every posted command; returns their (status, value0)."""
        out, end = [], time.time() + timeout
        while self.head != self.tail:
            off = self.p["cq_off"] + (self.head % self.p["depth"]) * CQE.size
            _cid, status, value0, _value1, _sq_head, flags = CQE.unpack(
                self.qt.read(CTRL + off, CQE.size))
            if flags & 1 != self.phase:
                if time.time() > end:
                    raise RuntimeError("no completion for command %d" % (self.head + 1))
                time.sleep(0.0005)
                continue
            out.append((status, value0))
            self.head += 1
            if self.head % self.p["depth"] == 0:
                self.phase ^= 1
            self.qt.writel(CTRL + self.p["cq_head"], self.head)
        return out

    def run(self, opcode, **kw):
        self.post(opcode, **kw)
        self.ring()
        (status, value0), = self.reap_all()
        if status:
            raise RuntimeError("opcode %d: status 0x%x" % (opcode, status))
        return value0

    def create(self, dev, n, pages=1):
        """n allocations of @pages pages on @dev; returns their handles."""
        desc_off = n * 4
        desc = struct.pack("<QII", pages * PAGE, 0, 0)
        assert len(desc) == self.p["desc_size"]
        self.qt.write(CTRL + self.p["staging_off"] + desc_off, desc * n)
        self.run(self.p["op_create"], handle=dev, count=n, payload_off=desc_off,
                 payload_len=n * len(desc), result_len=n * 4)
        return self.qt.read(CTRL + self.p["staging_off"], n * 4)

    def offer(self, dev, handles):
        """OFFER of @handles (packed), at normal priority."""
        self.qt.write(CTRL + self.p["staging_off"], handles)
        self.run(self.p["op_offer"], handle=dev, count=len(handles) // 4,
                 payload_len=len(handles), arg0=self.p["prio"])


def start(qemu, work_bound, tmp):
    qsock, msock = os.path.join(tmp, "qtest"), os.path.join(tmp, "qmp")
    servers = []
    for path in (qsock, msock):
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(1)
        servers.append(s)
    proc = subprocess.Popen(
        [qemu, "-machine", "pc", "-accel", "qtest", "-nodefaults", "-display", "none",
         "-qtest", "unix:" + qsock, "-qtest-log", "/dev/null", "-qmp", "unix:" + msock,
         "-device", "vkmt,id=vk,addr=0x4,queues=1,aperture-size=512M,doorbell=inline" +
         ("" if work_bound is None else ",work-bound=%d" % work_bound)],
        stdin=subprocess.DEVNULL)
    qt = Qtest(servers[0].accept()[0])
    qmp = Qmp(servers[1].accept()[0])
    qt.cfg_writel(0x10, REGS)  # BAR 0: registers
    qt.cfg_writel(0x18, CTRL)  # BAR 2: control memory, 64-bit
    qt.cfg_writel(0x1c, 0)
    qt.cfg_writew(0x04, 0x6)  # memory, bus master
    return proc, qt, qmp


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    qemu, runs, work_bound, suffix = args[0], 1, None, ""
    if "--runs" in args:
        runs = int(args[args.index("--runs") + 1])
    if "--work-bound" in args:
        work_bound = int(args[args.index("--work-bound") + 1])
        suffix = ".bound%d" % work_bound
    p = protocol(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # Real-time priority for this process, the QMP loop and QEMU (inherited),
    # for a few seconds a run: on a loaded host, ordinary scheduling adds
    # stalls of several milliseconds that are not the device's.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
    except OSError as e:
        print("bench-stall: no SCHED_FIFO (%s): figures include the host's scheduling noise" % e,
              file=sys.stderr)
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            proc, qt, qmp = start(qemu, work_bound, tmp)
            try:
                scenarios(Guest(qt, p), qt, qmp, p, suffix)
            finally:
                proc.kill()
                proc.wait()


def scenarios(g, qt, qmp, p, suffix):
    stall = Stall(qmp)

    def measure(what, scenario):
        """Runs @scenario under the QMP loop and prints both figures."""
        qmp.cmd("qom-set", path="/machine/peripheral/vk", property="longest-step-ns", value=0)
        with stall:
            scenario()
        step = qmp.cmd("qom-get", path="/machine/peripheral/vk",
                       property="longest-step-ns")["return"]
        print("vkmt-bench: stall.%s%s.max ns %.0f" % (what, suffix, stall.worst * 1e9))
        print("vkmt-bench: step.%s%s.max ns %d" % (what, suffix, step))
        sys.stdout.flush()

    def ring_and_reap():
        g.ring()
        bad = [s for s, _ in g.reap_all() if s]
        if bad:
            raise RuntimeError("%d commands failed (0x%x)" % (len(bad), bad[0]))

    def storm():
        for i in range(p["depth"] - 1):
            g.post(p["op_reclaim"] if i % 2 else p["op_offer"], handle=dev, count=10240,
                   payload_len=10240 * 4, arg0=0 if i % 2 else p["prio"])
        ring_and_reap()

    def reset():
        qt.writel(REGS + p["status"], 0)
        while qt.readl(REGS + p["status"]) != 0:
            time.sleep(0.0005)

    with stall:
        time.sleep(0.5)
    print("vkmt-bench: stall.idle%s.max ns %.0f" % (suffix, stall.worst * 1e9))
    g.bring_up()
    dev = g.run(p["op_create_device"])
    handles = []
    measure("create", lambda: handles.append(g.create(dev, 10240)))
    # The storm's handles sit at staging offset 0, where create left them.
    measure("storm", storm)
    more = b"".join(g.create(dev, 10000) for _ in range(3))
    for i in range(0, len(more), 40000):
        g.offer(dev, more[i:i + 40000])
    stats = qmp.cmd("qom-get", path="/machine/peripheral/vk", property="stats")["return"]
    qmp.cmd("qom-set", path="/machine/peripheral/vk", property="budget",
            value=stats["committed_bytes"])
    measure("evict", lambda: g.create(dev, 1, pages=30000))
    measure("trim", lambda: g.run(p["op_trim"]))
    measure("destroy", lambda: g.run(p["op_destroy_device"], handle=dev))
    qmp.cmd("qom-set", path="/machine/peripheral/vk", property="budget", value=0)
    dev = g.run(p["op_create_device"])
    for _n in range(3):
        g.create(dev, 10000)
    measure("reset", reset)


if __name__ == "__main__":
    main()
