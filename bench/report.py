#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make bench's report (docs/BENCH.md): reads OUT_DIR/raw/ (sample lines
"vkmt-bench: KEY UNIT VALUE", one per run, and meta.txt) and writes
OUT_DIR/results.json, results.md (Markdown tables, with the targets) and
results.gp (the gnuplot script for results.png)."""
import glob
import json
import os
import statistics
import sys

BATCHES = (1, 64, 1024, 10240)
CALLS = (("offer", "D3DKMTOfferAllocations"), ("reclaim", "D3DKMTReclaimAllocations"),
         ("reclaim2", "D3DKMTReclaimAllocations2"))
# Samples are in ns; rows shown in these units are divided by this.
SCALE = {"us": 1e3, "ms": 1e6, "MiB": 1 << 20}


# The scenarios of scripts/bench-stall.py, in its order.
STALLS = (("create", "a 10,240-allocation creation"),
          ("storm", "a storm of 63 commands of 10,240 elements, one doorbell"),
          ("evict", "a creation that evicts 30,000 offers"),
          ("trim", "a guest TRIM of 10,240 offers and its scrub"),
          ("destroy", "a DESTROY_DEVICE of 40,241 allocations"),
          ("reset", "a reset (status = 0) with 30,000 allocations alive"))


def load(raw):
    """{source: {key: (unit, [values])}}, meta dict."""
    meta = {}
    with open(os.path.join(raw, "meta.txt")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    samples = {}
    for path in sorted(glob.glob(os.path.join(raw, "*.txt"))):
        source = os.path.basename(path)[:-4]
        if source == "meta":
            continue
        with open(path) as f:
            for line in f:
                words = line.split()
                if len(words) == 4 and words[0] == "vkmt-bench:":
                    unit, values = samples.setdefault(source, {}).setdefault(
                        words[1], (words[2], []))
                    values.append(float(words[3]))
                elif line.startswith("vkmt-bench: error"):
                    sys.exit("report: %s: %s" % (path, line.strip()))
    return samples, meta


def stats(unit, values, accel):
    return {"unit": unit, "min": min(values), "median": statistics.median(values),
            "max": max(values), "runs": len(values), "accelerator": accel}


def fmt(x):
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def cell(fig, scale=1.0):
    if fig is None:
        return "-"
    return "%s / **%s** / %s" % (fmt(fig["min"] / scale), fmt(fig["median"] / scale),
                                fmt(fig["max"] / scale))


def kmd_targets(figs, target):
    """The kmd transport's targets (steps 6-8), all from build/vm boots."""
    def med(name):
        return figs[name]["median"]

    kmd = med("vm.kmd.reclaim2.1@kmd-inline")
    nop, mmio = med("vm.kmd.nop@kmd-inline"), med("vm.mmio_read@kmd-inline")
    floor = nop + mmio
    target("kmd reclaim <= 1.5x (nop ioctl + MMIO)",
           "VM (build/vm): single-allocation reclaim round trip over the guest kernel driver "
           "(D3DKMTReclaimAllocations2, kmd transport, doorbell=inline, default pointer checks) "
           "<= 1.5x a no-op ioctl on /dev/vkmt0 plus a bare MMIO read (same boot)",
           "%.1fx (%s ns vs %s + %s ns)" % (kmd / floor, fmt(kmd), fmt(nop), fmt(mmio)),
           "<= 1.5x", kmd <= 1.5 * floor)
    pci = med("vm.pci.reclaim2.1@kmd-inline")
    target("kmd reclaim below pci reclaim",
           "VM (build/vm): that reclaim over kmd below the same reclaim over the PCI transport "
           "(default pointer checks, same boot, before the driver is loaded)",
           "%s ns vs %s ns (%.2fx)" % (fmt(kmd), fmt(pci), kmd / pci), "< 1x", kmd < pci)
    for mode in ("ioeventfd", "iothread"):
        name = "vm.kmd.reclaim2.1@kmd-" + mode
        if name not in figs:
            continue
        other = med(name)
        target("kmd reclaim %s <= 3x inline" % mode,
               "VM (build/vm): that reclaim over kmd with doorbell=%s (the driver sleeps on the "
               "MSI-X interrupt after a 30 us spin) <= 3x the same with doorbell=inline" % mode,
               "%.1fx (%s ns vs %s ns)" % (other / kmd, fmt(other), fmt(kmd)), "<= 3x",
               other <= 3 * kmd)
    cpu = med("vm.kmd.wait_cpu@kmd-inline")
    target("kmd wait < 5% CPU",
           "VM (build/vm): CPU time of a thread waiting over kmd for a completion the device "
           "holds back ~10 ms (x-deaf), over its wall time (guest CPU time: under TCG, "
           "emulated time)",
           "%.2f%% of %s ms" % (cpu, fmt(med("vm.kmd.wait_wall@kmd-inline") / 1e6)), "< 5%",
           cpu < 5)


def kmd_tables(figs, md):
    """Rows of the kmd steps (6-9), when they ran."""
    if "vm.kmd.reclaim2.1@kmd-inline" not in figs:
        return
    md.append("")
    md.append("The guest kernel driver (kmd transport) against the PCI transport, on the test VM "
              "image build/vm (Debian's cloud kernel, the driver's), each doorbell mode one boot; "
              "pci figures in the same boot before kmd-load:")
    md.append("")
    md.append("| figure | unit | min / **median** / max | runs | accelerator |")
    md.append("|---|---|---|---:|---|")
    rows = [("vkmt bare MMIO register read (pci, before kmd-load)", "vm.mmio_read@kmd-inline",
             "ns"),
            ("no-op ioctl on /dev/vkmt0 (VKMT_KMD_IOC_NOP)", "vm.kmd.nop@kmd-inline", "ns")]
    for call, what in (("reclaim2.1", "D3DKMTReclaimAllocations2, 1 allocation"),
                       ("query", "D3DKMTQueryVideoMemoryInfo (no handle array)")):
        rows += [("%s, pci, doorbell=inline" % what, "vm.pci.%s@kmd-inline" % call, "ns"),
                 ("... kmd, doorbell=inline", "vm.kmd.%s@kmd-inline" % call, "ns"),
                 ("... kmd, VKMT_POINTER_CHECKS=0", "vm.kmd.%s.nochecks@kmd-inline" % call, "ns"),
                 ("... kmd, doorbell=ioeventfd", "vm.kmd.%s@kmd-ioeventfd" % call, "ns"),
                 ("... kmd, doorbell=iothread", "vm.kmd.%s@kmd-iothread" % call, "ns")]
    rows += [("waiting ~10 ms (x-deaf) for a completion: the thread's CPU time / wall time, kmd",
              "vm.kmd.wait_cpu@kmd-inline", "%"),
             ("... wall time, kmd", "vm.kmd.wait_wall@kmd-inline", "ms"),
             ("... CPU / wall, pci (polls, then sleeps growing to 1 ms)",
              "vm.pci.wait_cpu@kmd-inline", "%"),
             ("... wall time, pci", "vm.pci.wait_wall@kmd-inline", "ms")]
    for label, key, unit in rows:
        f = figs.get(key)
        if f is not None:
            md.append("| %s | %s | %s | %d | %s |" % (label, unit, cell(f, SCALE.get(unit, 1.0)),
                                                     f["runs"], f["accelerator"]))
    one = figs.get("vm.kmd.scale.1@kmd-scale")
    if one is None:
        return
    md.append("")
    md.append("Throughput over kmd, build/vm with 4 vCPUs (%s), doorbell=inline: N processes, "
              "each its own /dev/vkmt0 file (its own queue), each offering and reclaiming 64 "
              "handles (offer, reclaim, offer, reclaim2) for 0.5 s; calls per second, all "
              "processes together. Under TCG the vCPUs share the host's cores; with "
              "doorbell=inline every command runs on a vCPU thread under QEMU's big lock:"
              % one["accelerator"])
    md.append("")
    md.append("| processes | calls/s | per process (median) | scaling (median / 1 process) |")
    md.append("|---:|---|---:|---:|")
    for n in range(1, 5):
        f = figs.get("vm.kmd.scale.%d@kmd-scale" % n)
        if f is not None:
            md.append("| %d | %s | %s | %.2fx |" % (n, cell(f), fmt(f["median"] / n),
                                                    f["median"] / one["median"]))


def main():
    out = sys.argv[1]
    samples, meta = load(os.path.join(out, "raw"))
    accel = {"loopback": "none (in process)", "backends": "none (in process)",
             "boot": meta.get("accel_boot", "?"), "stall": "qtest (guest played over qtest)"}
    for source in samples:
        if source.startswith("vm-"):
            accel[source] = meta.get("accel_" + source[3:], "?")
    figs = {}
    for source, keys in samples.items():
        for key, (unit, values) in keys.items():
            name = key if source in ("loopback", "backends", "boot", "stall") else "%s@%s" % (key, source[3:])
            figs[name] = stats(unit, values, accel[source])

    def fig(name):
        return figs.get(name)

    def med(name):
        return figs[name]["median"]

    vm_accel = accel["vm-inline"]
    targets = []

    def target(short, what, measured, goal, met):
        targets.append({"short": short, "target": what, "measured": measured, "goal": goal,
                        "met": bool(met)})

    mmio, edu = med("vm.mmio_read@inline"), med("vm.edu_cmd@inline")
    for suffix, how in (("", "default pointer checks"), (".nochecks", "VKMT_POINTER_CHECKS=0")):
        r1 = med("vm.reclaim2.1%s@inline" % suffix)
        ratio = med("vm.reclaim2_per_mmio%s@inline" % suffix)
        target("reclaim <= 2x MMIO (%s)" % how,
               "VM: single-allocation reclaim round trip (D3DKMTReclaimAllocations2, "
               "doorbell=inline, %s) <= 2x the bare MMIO read (measured alternating, "
               "ratio per run)" % how,
               "%.1fx (alone: %s ns and %s ns)" % (ratio, fmt(r1), fmt(mmio)), "<= 2x",
               ratio <= 2)
        target("reclaim 50x faster than edu (%s)" % how, "VM: that reclaim (%s) >= 50x faster than an edu command round trip" % how,
               "%.1fx (edu %s ns)" % (edu / r1, fmt(edu)), ">= 50x", edu / r1 >= 50)
    r1 = med("vm.reclaim2.1@inline")
    per = med("vm.reclaim2.10240@inline") / 10240
    target("batch 50x cheaper per allocation", "VM: per-allocation cost of a 10240-handle batch >= 50x lower than single calls "
           "(reclaim2, inline)", "%s ns vs %s ns per call: %.0fx" % (fmt(per), fmt(r1), r1 / per),
           ">= 50x", r1 / per >= 50)
    gpu = med("vm.gpu_create_wait_close@inline")
    for suffix, how in (("", "default pointer checks"), (".nochecks", "VKMT_POINTER_CHECKS=0")):
        cd = med("vm.create_destroy%s@inline" % suffix)
        target("create+destroy 50x faster than virtio-gpu (%s)" % how,
               "VM: allocation create + destroy (%s) >= 50x faster than virtio-gpu resource "
               "create + wait + close (64x64, 16 KiB)" % how,
               "%.1fx (%s ns vs %s ns)" % (gpu / cd, fmt(cd), fmt(gpu)), ">= 50x", gpu / cd >= 50)
    worst = max(med("loopback.%s.10240" % c) / 10240 for c, _ in CALLS)
    target("loopback <= 20 ns per allocation", "loopback: <= 20 ns per allocation in 10240-handle batches (slowest of the three calls)",
           "%s ns" % fmt(worst), "<= 20 ns", worst <= 20)
    for what, label in STALLS:
        if "step.%s.max" % what not in figs:
            continue
        step = figs["step.%s.max" % what]["max"] / 1000
        worst = figs["stall.%s.max" % what]["max"] / 1000
        target("main-loop stall <= 1 ms (%s)" % what,
               "host: longest time one engine call held the main loop (the device's "
               "longest-step-ns) during %s (doorbell=inline, default work-bound; worst of all "
               "runs); the QMP round trip beside it" % label,
               "%s us (QMP round trip %s us, idle %s us)"
               % (fmt(step), fmt(worst), fmt(figs["stall.idle.max"]["max"] / 1000)),
               "<= 1000 us", step <= 1000)
    if "vm.kmd.reclaim2.1@kmd-inline" in figs:
        kmd_targets(figs, target)
    if fig("vm.snapshot_to_command"):
        snap, boot = med("vm.snapshot_to_command"), med("vm.boot_to_command")
        target("first command from a snapshot <= 0.5 s",
               "VM (build/vm): first guest command from a saved state (vm-run --snapshot) "
               "<= 0.5 s", "%s s (a boot: %s s)" % (fmt(snap), fmt(boot)), "<= 0.5 s",
               snap <= 0.5)
    bk = med("loopback.bookkeeping")
    target("<= 96 B per allocation", "<= 96 bytes of host bookkeeping per allocation (100k alive)", "%s B" % fmt(bk),
           "<= 96 B", bk <= 96)

    machine = "%s; %s" % (meta.get("host", "?"), meta.get("os", "?"))
    load_note = "load average %s at the start, %s at the end" % (meta.get("load_start", "?"),
                                                            meta.get("load_end", "?"))
    doc = {"date": meta.get("date"), "commit": meta.get("commit"), "machine": machine,
           "load": load_note, "accelerators": accel, "figures": figs, "targets": targets}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")

    md = []
    md.append("Measured %s on %s (%s), commit %s. Guest: Debian 12 generic kernel, "
              "accelerator **%s**. Cells: min / **median** / max over runs." %
              (meta.get("date"), machine, load_note, meta.get("commit"), vm_accel))
    md.append("")
    md.append("| target | goal | measured (medians) | met |")
    md.append("|---|---|---|---|")
    for t in targets:
        md.append("| %s | %s | %s | %s |" % (t["target"], t["goal"], t["measured"],
                                            "yes" if t["met"] else "**no**"))
    met = [t for t in targets if t["met"]]
    md.append("")
    md.append("This run meets %d of the %d targets; not met: %s." % (
        len(met), len(targets),
        "; ".join(t["short"] for t in targets if not t["met"]) or "none"))
    md.append("")
    md.append("Offer and reclaim, 4 KiB allocations, ns per call (ns per allocation = "
              "median / batch):")
    md.append("")
    md.append("| call | batch | loopback | per alloc | VM inline (%s) | per alloc | "
              "VM inline, checks off | VM ioeventfd | VM iothread |" % vm_accel)
    md.append("|---|---:|---|---:|---|---:|---|---|---|")
    for c, name in CALLS:
        for b in BATCHES:
            lo, vi = fig("loopback.%s.%d" % (c, b)), fig("vm.%s.%d@inline" % (c, b))
            md.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                name, b, cell(lo), fmt(lo["median"] / b), cell(vi), fmt(vi["median"] / b),
                cell(fig("vm.%s.%d.nochecks@inline" % (c, b))),
                cell(fig("vm.%s.%d@ioeventfd" % (c, b))), cell(fig("vm.%s.%d@iothread" % (c, b)))))
    md.append("")
    md.append("Loopback with VKMT_POINTER_CHECKS=0, ns per call: " + "; ".join(
        "%s %d: %s" % (c, b, fmt(med("loopback.%s.%d.nochecks" % (c, b))))
        for c, _ in CALLS for b in (1, 10240)) + ".")
    md.append("")
    rows = []
    for c, name in (("resident", "D3DKMTMakeResident"), ("evict", "D3DKMTEvict")):
        for b in (1, 1024):
            row, measured = [name, str(b)], False
            for key in ("loopback.%s.%d", "vm.pci.%s.%d@kmd-inline", "vm.kmd.%s.%d@kmd-inline"):
                f = fig(key % (c, b))
                row += [cell(f), fmt(f["median"] / b) if f else "-"]
                measured = measured or f is not None
            if measured:
                rows.append("| %s |" % " | ".join(row))
    if rows:
        md.append("Residency: D3DKMTMakeResident promoting and D3DKMTEvict demoting every 4 KiB "
                  "allocation of the batch, alternately (non-local segment 256 MiB), ns per call "
                  "(ns per allocation = median / batch); in the VM (build/vm, doorbell=inline, "
                  "%s) over pci, then over kmd in the same boot:"
                  % accel.get("vm-kmd-inline", "not run"))
        md.append("")
        md.append("| call | batch | loopback | per alloc | VM pci | per alloc | VM kmd | per alloc |")
        md.append("|---|---:|---|---:|---|---:|---|---:|")
        md += rows + [""]
    md.append("Baselines in the same VM run (doorbell=inline unless named), and host figures:")
    md.append("")
    md.append("| figure | unit | min / **median** / max | runs | accelerator |")
    md.append("|---|---|---|---:|---|")
    rows = [("vkmt bare MMIO register read", "vm.mmio_read@inline", "ns"),
            ("vkmt D3DKMTQueryVideoMemoryInfo (command, no handle array)", "vm.query@inline", "ns"),
            ("... VKMT_POINTER_CHECKS=0", "vm.query.nochecks@inline", "ns"),
            ("... doorbell=ioeventfd", "vm.query@ioeventfd", "ns"),
            ("... doorbell=iothread", "vm.query@iothread", "ns"),
            ("vkmt D3DKMTReclaimAllocations2, 1 allocation", "vm.reclaim2.1@inline", "ns"),
            ("... VKMT_POINTER_CHECKS=0", "vm.reclaim2.1.nochecks@inline", "ns"),
            ("... doorbell=ioeventfd", "vm.reclaim2.1@ioeventfd", "ns"),
            ("... doorbell=iothread", "vm.reclaim2.1@iothread", "ns"),
            ("reclaim2 (1 allocation) over the MMIO read, alternating, ratio per run",
             "vm.reclaim2_per_mmio@inline", "x"),
            ("... VKMT_POINTER_CHECKS=0", "vm.reclaim2_per_mmio.nochecks@inline", "x"),
            ("edu command round trip (write, poll status)", "vm.edu_cmd@inline", "ns"),
            ("vkmt CreateAllocation2 + DestroyAllocation2, 16 KiB", "vm.create_destroy@inline", "us"),
            ("... VKMT_POINTER_CHECKS=0", "vm.create_destroy.nochecks@inline", "us"),
            ("... doorbell=ioeventfd", "vm.create_destroy@ioeventfd", "us"),
            ("... doorbell=iothread", "vm.create_destroy@iothread", "us"),
            ("virtio-gpu resource create + wait + close, 64x64", "vm.gpu_create_wait_close@inline",
             "us"),
            ("... of which create", "vm.gpu_create@inline", "us"),
            ("... of which wait", "vm.gpu_wait@inline", "us"),
            ("... of which close", "vm.gpu_close@inline", "us"),
            ("host memory returned by a trim of 32 MiB offered (aperture file st_blocks)",
             "vm.trim_returned@inline", "%"),
            ("host bookkeeping per allocation, 100k alive (loopback)", "loopback.bookkeeping", "B"),
            ("VM boot to first command (build/vm, cloud kernel)", "vm.boot_to_command", "s"),
            ("... first command from a saved state (vm-run --snapshot)", "vm.snapshot_to_command",
             "s"),
            ("migration into a file of a guest with 64 MiB of allocations, half offered: "
             "stream, migrate-offered=keep", "vm.migrate.stream_keep@migrate", "MiB"),
            ("... stream, migrate-offered=discard", "vm.migrate.stream_discard@migrate", "MiB"),
            ("live migration of that guest into a second QEMU: downtime (QEMU's)",
             "vm.migrate.downtime@migrate", "ms"),
            ("... total time", "vm.migrate.total@migrate", "ms"),
            ("host trim request (QMP trim-notify) to the guest's trim callback, pci transport",
             "vm.notify.trim_callback@notify-pci", "ms"),
            ("... kmd transport", "vm.notify.trim_callback@notify-kmd", "ms"),
            ("longest QMP round trip, idle device", "stall.idle.max", "us")]
    for what, label in STALLS:
        rows += [("longest engine call during %s" % label, "step.%s.max" % what, "us"),
                 ("... QMP round trip", "stall.%s.max" % what, "us"),
                 ("... engine call with work-bound=0", "step.%s.bound0.max" % what, "us"),
                 ("... QMP round trip with work-bound=0", "stall.%s.bound0.max" % what, "us")]
    for label, key, unit in rows:
        f = fig(key)
        if f is None:
            continue
        md.append("| %s | %s | %s | %d | %s |" % (label, unit, cell(f, SCALE.get(unit, 1.0)), f["runs"],
                                                 f["accelerator"]))
    kmd_tables(figs, md)
    md.append("")
    md.append("Content backends over loopback (in process), ns per call: host memory (mem) "
              "and a virglrenderer GL buffer per allocation (virgl; Mesa's llvmpipe on a "
              "machine without a GPU):")
    md.append("")
    md.append("| figure | mem | virgl | virgl bandwidth (median) |")
    md.append("|---|---|---|---:|")
    for label, what, size in (
            ("Lock2, 4 MiB (virgl: transfer from the GPU resource)", "lock.4m", 4 << 20),
            ("Unlock2, 4 MiB (virgl: transfer to the GPU resource)", "unlock.4m", 4 << 20),
            ("offer + reclaim2, 4 KiB, nothing evicted", "offer_reclaim.4k", 0),
            ("trim discarding one 4 KiB allocation (virgl: resource destroyed)", "trim.4k", 0),
            ("reclaim2 recreating it, result DISCARDED (virgl: resource created)",
             "recreate.4k", 0)):
        mem, virgl = fig("backend.mem." + what), fig("backend.virgl." + what)
        bw = "%.1f GB/s" % (size / virgl["median"]) if size and virgl else "-"
        md.append("| %s | %s | %s | %s |" % (label, cell(mem), cell(virgl), bw))
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # The plot: in-VM round trips (log scale, min..max as error bars) and ns
    # per allocation against batch size.
    with open(os.path.join(out, "plot-latency.dat"), "w") as f:
        for i, (label, key) in enumerate([
                ("MMIO read", "vm.mmio_read@inline"),
                ("reclaim2 inline", "vm.reclaim2.1@inline"),
                ("same, checks off", "vm.reclaim2.1.nochecks@inline"),
                ("reclaim2 iothread", "vm.reclaim2.1@iothread"),
                ("reclaim2 ioeventfd", "vm.reclaim2.1@ioeventfd"),
                ("edu command", "vm.edu_cmd@inline"),
                ("vkmt create+destroy", "vm.create_destroy@inline"),
                ("virtio-gpu c+w+c", "vm.gpu_create_wait_close@inline")]):
            g = figs[key]
            f.write('%d "%s" %g %g %g\n' % (i, label, g["median"], g["min"], g["max"]))
    with open(os.path.join(out, "plot-batch.dat"), "w") as f:
        for b in BATCHES:
            f.write("%d %g %g %g %g\n" % (
                b, med("loopback.reclaim2.%d" % b) / b, med("loopback.offer.%d" % b) / b,
                med("vm.reclaim2.%d@inline" % b) / b, med("vm.offer.%d@inline" % b) / b))
    with open(os.path.join(out, "results.gp"), "w") as f:
        f.write("""set terminal png size 1400,600 font ",10"
set output "{out}/results.png"
set multiplot layout 1,2 title "vkmt, {date}, guest accelerator {accel}"
set title "Round trips in the VM (median, min..max)"
set bmargin 8
set logscale y
set ylabel "ns"
set xtics rotate by -30 nomirror
set style fill solid 0.5
set boxwidth 0.6
set grid ytics
set key off
plot "{out}/plot-latency.dat" using 1:3:xtic(2) with boxes, \\
     "" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0
set title "Cost per allocation against batch size"
set logscale xy
set xtics (1, 64, 1024, 10240) norotate
set xrange [0.7:15000]
set xlabel "handles per call"
set ylabel "ns per allocation"
set key top right
plot "{out}/plot-batch.dat" using 1:2 with linespoints title "loopback reclaim2", \\
     "" using 1:3 with linespoints title "loopback offer", \\
     "" using 1:4 with linespoints title "VM reclaim2 (inline)", \\
     "" using 1:5 with linespoints title "VM offer (inline)"
unset multiplot
""".format(out=out, date=meta.get("date"), accel=vm_accel))


if __name__ == "__main__":
    main()
