/* SPDX-License-Identifier: MIT */
/*
 * vkmt-fuzz: a device-specific QEMU fuzz target for the vkmt PCI device,
 * overlaid into QEMU's tree as tests/qtest/fuzz/vkmt/vkmt_fuzz.c (see
 * scripts/qemu-overlay.sh) and linked into qemu-fuzz-x86_64.
 *
 * Why not generic-fuzz: the device's rings and staging live in a RAM BAR,
 * which generic-fuzz never writes, and it reboots the machine (re-enumerating
 * PCI) after every input. This target boots once, maps the BARs once, and
 * per input decodes operations (vkmt_fuzz.h) into what a guest driver and the
 * host do: bring-up, queue claim/release/reap, commands written into control
 * memory with their payloads, doorbells in every form, registers, config
 * space, MSI-X, allocation content, and trim/budget/removal through the QMP
 * qom-set handler. Afterwards it resets only the device: config header and
 * MSI-X put back if touched, a write of 0 to status, the host properties put
 * back, the memory the input wrote cleared. Each input starts with no queue,
 * object or interrupt left by the one before; engine counters (epoch, claim
 * sequences, handle generations, the aperture's next-fit cursor) carry on.
 *
 * Besides sanitizers it checks what the protocol promises: completions of a
 * queue that only well-behaved operations touched arrive in order, one per
 * entry (inline doorbells: all of them before the doorbell returns); and a
 * device reset returns every object and byte (no allocations, devices,
 * resources, committed or offered bytes are left).
 *
 * It also checks that INTx is low whenever MSI-X is off and isr is clear.
 *
 * Targets: vkmt-fuzz (doorbell=inline) and vkmt-fuzz-ioeventfd
 * (doorbell=ioeventfd: the eventfd and bottom-half path) put the device on
 * q35's root bus with its own memfd aperture. The port targets put it where
 * users' machines do: behind a pcie-root-port with native hot-plug, its
 * aperture a memory-backend-file with share=on and an offset, MMCONFIG on
 * (so MSI-X messages can write config space, the root port's included), and
 * hot-unplug and re-plug as operations: vkmt-fuzz-port (inline),
 * vkmt-fuzz-port-ioeventfd and vkmt-fuzz-port-iothread (doorbell=iothread
 * with an iothread object). An input that leaves the device unplugged gets
 * it plugged back by the reset. QEMU_FUZZ_ARGS is appended to the command
 * line (e.g. -L for firmware).
 */
#include "qemu/osdep.h"

#include "block/aio.h"
#include "exec/cpu-common.h"
#include "exec/memory.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_regs.h"
#include "hw/qdev-core.h"
#include "monitor/qdev.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-qdev.h"
#include "qapi/qapi-commands-qom.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/thread.h"
#include "qobject/qbool.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "system/iothread.h"
#include "tests/qtest/fuzz/fuzz.h"
#include "tests/qtest/libqos/pci-pc.h"
#include "tests/qtest/libqos/pci.h"
#include "tests/qtest/libqtest.h"

#include "hw/vkmt/protocol/vkmt_proto.h"
#include "vkmt_fuzz.h"

#define VF_QUEUES 4
#define VF_APERTURE (4 * MiB)
/*
 * A non-local segment smaller than the aperture, so that demotion meets its
 * limit too; injected stalls of a microsecond, so that they cost the fuzzer
 * little.
 */
#define VF_PROPS ",nonlocal-size=2M,x-fault-stall-ns=1000"
#define VF_PATH "/machine/peripheral/vk"
#define VF_AP_TRACKED                                                          \
    64 /* aperture writes undone one by one; more: clear it all */
/* Staging is cut in 16 slots, so that a batch's payloads and results do not
 * overlap. */
#define VF_SLOTS 16
#define VF_SLOT_BYTES (VKMT_STAGING_SIZE / VF_SLOTS & ~7u)
#define VF_REMAPS_PER_DRAIN 32
/* Port targets: the aperture starts this far into its file. */
#define VF_FILE_OFFSET (1 * MiB)
/* The root port forwards this window; libqos maps the device's BARs from its
 * start. */
#define VF_WINDOW_BASE 0xe0000000u
#define VF_WINDOW_LIMIT 0xefffffffu

typedef struct VfConfig {
    const char *doorbell; /* the device's doorbell property */
    bool port;            /* behind a pcie-root-port, file memdev, hot-plug */
} VfConfig;

typedef struct VfPending { /* what a completion needs to be harvested */
    uint32_t cid;
    uint8_t opcode;
    uint32_t result_off;
    uint32_t nresults;
} VfPending;

typedef struct VfQueue { /* the driver's view of one queue */
    uint32_t tail;       /* entries posted */
    uint32_t rung;       /* tail at the last well-formed doorbell */
    uint32_t head;       /* completions consumed */
    uint32_t phase;      /* expected phase of the next completion */
    uint32_t cid;        /* last command id posted */
    bool tainted;        /* something raw touched it: the oracle stays out */
    VfPending pending[VKMT_QUEUE_DEPTH];
} VfQueue;

static struct {
    /* Set up once. */
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    PCIDevice *pdev; /* NULL while unplugged */
    const VfConfig *cfg;
    bool deferred; /* doorbell=ioeventfd or iothread: work happens later */
    bool iothread; /* doorbell=iothread: work happens in the iothread */
    AioContext *io_ctx;
    QemuEvent io_done;
    char *file_dir,
        *file_path;  /* the port targets' memdev file, unlinked once open */
    QPCIDevice *mch; /* the host bridge */
    QPCIDevice *rp;  /* the root port */
    DeviceState *rp_dev;
    uint8_t rp_exp;       /* its PCI Express capability */
    char ctrl_idstr[256]; /* the migration name of the device's control RAM */
    bool log;             /* QTEST_LOG: say what bypasses qtest */
    bool verbose;         /* VKMT_FUZZ_VERBOSE: print every completion */
    uint64_t regs, msix, ctrl, ap;
    uint64_t ctrl_size;
    uint8_t *ctrl_ram, *ap_ram;
    uint8_t msix_cap;
    uint32_t msix_table, msix_pba, msix_vectors;
    uint32_t config[16]; /* the config header as mapped */

    /* Per input. */
    VfQueue q[VKMT_MAX_QUEUES];
    uint8_t claimed[VKMT_MAX_QUEUES];
    uint32_t nclaimed;
    uint32_t pool[VF_POOL_MAX];
    uint32_t npool;
    bool judge;        /* the in-order oracle applies (no DMA or BAR moves) */
    uint32_t written;  /* queues whose control memory the input wrote (bit q) */
    bool config_dirty; /* config space written, or a host reset */
    bool msix_dirty;   /* MSI-X enabled or its table written */
    uint32_t remaps;   /* BAR moves since RCU last ran (not per input) */
    bool host_dirty;   /* budget or removal changed */
    bool port_dirty;   /* the root port's config space may have been written */
    bool present;      /* the device is plugged in */
    bool del_pending;  /* device_del asked the guest to eject it */
    bool racing;       /* a doorbell left the iothread working */
    uint32_t ap_off[VF_AP_TRACKED];
    uint32_t ap_len[VF_AP_TRACKED];
    uint32_t ap_n;
    bool ap_all;
} vf;

static uint8_t vf_buf[VKMT_STAGING_SIZE];

/* A broken promise: report it, flush the qtest log (QTEST_LOG), crash. */
static void G_GNUC_PRINTF(1, 2) G_NORETURN vf_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("vkmt-fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    abort();
}

/* ---- registers, control memory, queues ---- */

static uint32_t reg_rd(uint32_t off)
{
    return qtest_readl(vf.qts, vf.regs + off);
}

static void reg_wr(uint32_t off, uint32_t val)
{
    qtest_writel(vf.qts, vf.regs + off, val);
}

static void iothread_done(void *opaque)
{
    qemu_event_set(opaque);
}

/*
 * doorbell=iothread: wait until the iothread has handled every doorbell rung
 * so far, without turning the main loop (the interrupt bottom half stays
 * pending, as after a real doorbell). Three bottom halves in a row: the
 * first may run in an iteration that polled before the doorbell; the second
 * runs in one that saw it, but before that iteration's fd handlers; the
 * third runs after those. The iothread takes no BQL, so waiting with it held
 * is safe.
 */
static void iothread_drain(void)
{
    if (!vf.iothread) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        qemu_event_reset(&vf.io_done);
        aio_bh_schedule_oneshot(vf.io_ctx, iothread_done, &vf.io_done);
        qemu_event_wait(&vf.io_done);
    }
    vf.racing = false;
}

/*
 * Run what the device defers: the iothread's work, then bottom halves, the
 * doorbell modes' and those that continue work past the device's work bound
 * (docs/DEVICE.md), until the main loop has nothing pending.
 */
static void settle(void)
{
    iothread_drain();
    if (vf.deferred) {
        flush_events(vf.qts);
    }
    for (int i = 0; i < 100000 && g_main_context_pending(NULL); i++) {
        main_loop_wait(false);
    }
}

static void check_present(void);

/*
 * INTx is level-triggered and means "isr has a bit set": with MSI-X off, a
 * line left high while isr is clear is an interrupt storm in the guest.
 * Only while BAR 0 answers (config space or a reset may have unmapped it).
 */
static void check_intx(void)
{
    if (vf.cfg->port) {
        check_present(); /* the interrupt that just ran may have unplugged it */
    }
    if (!vf.present || msix_enabled(vf.pdev) || !(vf.pdev->irq_state & 1) ||
        reg_rd(VKMT_REG(magic)) != VKMT_MAGIC) {
        return;
    }
    if (!reg_rd(VKMT_REG(isr_lo)) && !reg_rd(VKMT_REG(isr_hi))) {
        vf_fail("INTx is asserted with isr clear (MSI-X off)");
    }
}

static uint64_t qaddr(uint32_t q, uint32_t off)
{
    return vf.ctrl + (uint64_t)q * VKMT_QUEUE_STRIDE + off;
}

static uint64_t hdr_addr(uint32_t q, size_t field)
{
    return qaddr(q, VKMT_QUEUE_HDR_OFF + (uint32_t)field);
}

static uint32_t pick_queue(uint8_t sel)
{
    if (!(sel & VF_Q_RAW) && vf.nclaimed) {
        return vf.claimed[(sel & VF_Q_INDEX) % vf.nclaimed];
    }
    return sel & VF_Q_INDEX;
}

/*
 * Control memory of the queues in @mask (bit q) was written, by the input or
 * by the device on its behalf: the reset has to clear it, or the next input
 * finds completions it never asked for.
 */
static void wrote(uint32_t mask)
{
    vf.written |= mask;
}

static void taint(uint32_t q)
{
    vf.q[q % VKMT_MAX_QUEUES].tainted = true;
    if (q < VF_QUEUES) {
        wrote(1u << q); /* a raw doorbell runs whatever the rings hold */
    }
}

/* A queue as claimed: zeroed rings, completions start with phase 1. */
static void queue_fresh(uint32_t q)
{
    memset(&vf.q[q], 0, sizeof(vf.q[q]));
    vf.q[q].phase = VKMT_CQE_F_PHASE;
}

/* queue_claim was read: a queue it handed out starts afresh. */
static void claimed(uint32_t q)
{
    if (q >= VF_QUEUES) {
        return;
    }
    queue_fresh(q);
    wrote(1u << q);
    for (uint32_t i = 0; i < vf.nclaimed; i++) {
        if (vf.claimed[i] == q) {
            return;
        }
    }
    vf.claimed[vf.nclaimed++] = (uint8_t)q;
}

static void pool_add(uint32_t handle)
{
    if (vf.npool < VF_POOL_MAX) {
        vf.pool[vf.npool++] = handle;
    }
}

static uint32_t pool_pick(uint8_t sel, uint32_t literal)
{
    if (sel == 0 || vf.npool == 0) {
        return literal;
    }
    if (sel < 0x80) {
        return vf.pool[(sel - 1u) % vf.npool];
    }
    return vf.pool[vf.npool - 1u - (sel - 0x80u) % vf.npool];
}

/* The handles a successful completion hands out go to the pool. */
static void harvest_handles(uint32_t q, const VfPending *p,
                            const struct vkmt_cqe *c)
{
    uint32_t h[VF_HARVEST_MAX];
    uint32_t n;

    switch (p->opcode) {
    case VKMT_OP_CREATE_DEVICE:
        pool_add((uint32_t)c->value0);
        break;
    case VKMT_OP_CREATE_PAGING_QUEUE:
        pool_add((uint32_t)c->value0);
        pool_add((uint32_t)c->value1);
        break;
    case VKMT_OP_CREATE_ALLOCATIONS:
        if (c->value0) {
            pool_add((uint32_t)c->value0);
        }
        n = MIN(p->nresults, VF_HARVEST_MAX);
        if (n && p->result_off <= VKMT_STAGING_SIZE - n * 4) {
            qtest_memread(vf.qts,
                          qaddr(q, VKMT_QUEUE_STAGING_OFF + p->result_off), h,
                          n * 4);
            for (uint32_t i = 0; i < n; i++) {
                pool_add(le32_to_cpu(h[i]));
            }
        }
        break;
    }
}

/* Consume the completions the device has posted on @q. */
static void harvest(uint32_t q)
{
    VfQueue *d = &vf.q[q];
    struct vkmt_cqe c;

    if (q >= VF_QUEUES) {
        return;
    }
    for (uint32_t i = 0; i < VKMT_QUEUE_DEPTH; i++) {
        const VfPending *p;

        qtest_memread(
            vf.qts,
            qaddr(q, VKMT_QUEUE_CQ_OFF + (d->head % VKMT_QUEUE_DEPTH) * 32), &c,
            sizeof(c));
        if ((le32_to_cpu(c.flags) & VKMT_CQE_F_PHASE) != d->phase) {
            break;
        }
        c.cid = le32_to_cpu(c.cid);
        c.status = le32_to_cpu(c.status);
        c.value0 = le64_to_cpu(c.value0);
        c.value1 = le64_to_cpu(c.value1);
        if (vf.judge && !d->tainted && c.cid != d->head + 1) {
            vf_fail("queue %u: completion for cid %u, expected %u", q, c.cid,
                    d->head + 1);
        }
        p = &d->pending[c.cid % VKMT_QUEUE_DEPTH];
        if (vf.verbose) {
            fprintf(stderr,
                    "vkmt-fuzz: q%u cid %u opcode 0x%x status 0x%08x value0 "
                    "0x%" PRIx64 "\n",
                    q, c.cid, p->cid == c.cid ? p->opcode : 0, c.status,
                    c.value0);
        }
        if (c.status == VKMT_ST_SUCCESS && p->cid == c.cid) {
            harvest_handles(q, p, &c);
        }
        d->head++;
        if (d->head % VKMT_QUEUE_DEPTH == 0) {
            d->phase ^= VKMT_CQE_F_PHASE;
        }
    }
    qtest_writel(vf.qts,
                 hdr_addr(q, offsetof(struct vkmt_queue_hdr, sh_cq_head)),
                 d->head);

    /* Inline doorbells run the queue inside the register write and settle(). */
    if (!vf.deferred && vf.judge && !d->tainted && d->head != d->rung &&
        qtest_readl(vf.qts,
                    hdr_addr(q, offsetof(struct vkmt_queue_hdr, sh_state))) ==
            VKMT_QSTATE_ACTIVE) {
        vf_fail("queue %u: %u entries rung, %u completed", q, d->rung, d->head);
    }
}

/* @nowait: return at once (VF_Q_DEFER on VF_OP_DOORBELL, vkmt_fuzz.h). */
static void ring(uint32_t q, uint8_t how, uint32_t val, bool nowait)
{
    uint32_t tail = q < VF_QUEUES ? vf.q[q].tail : 0;
    uint64_t sh_tail = hdr_addr(q, offsetof(struct vkmt_queue_hdr, sh_sq_tail));
    bool mapped = q < VF_QUEUES;

    if (mapped) {
        wrote(1u << q);
    }
    switch (how % VF_DB_COUNT) {
    case VF_DB_TAIL:
        if (mapped) {
            qtest_writel(vf.qts, sh_tail, tail);
            vf.q[q].rung = tail;
        }
        reg_wr(VKMT_REG_DOORBELL(q), tail);
        break;
    case VF_DB_RAW:
        taint(q);
        reg_wr(VKMT_REG_DOORBELL(q), val);
        break;
    case VF_DB_SHARED:
        taint(q);
        if (mapped) {
            qtest_writel(vf.qts, sh_tail, val);
        }
        reg_wr(VKMT_REG_DOORBELL(q), tail);
        break;
    case VF_DB_NUDGE:
        tail += (uint32_t)(int8_t)val;
        if ((int8_t)val) {
            taint(q);
        }
        if (mapped) {
            qtest_writel(vf.qts, sh_tail, tail);
            vf.q[q].rung = tail;
        }
        reg_wr(VKMT_REG_DOORBELL(q), tail);
        break;
    }
    if (nowait) {
        vf.racing = vf.iothread;
        return;
    }
    settle();
    harvest(q);
    check_intx();
}

/* Put @sqe on queue @q's ring (its cid replaced), and ring unless deferred. */
static void post(uint32_t q, struct vkmt_sqe *sqe, bool defer)
{
    if (q < VF_QUEUES) {
        VfQueue *d = &vf.q[q];
        VfPending *p;

        if (d->tail - d->head >= VKMT_QUEUE_DEPTH) {
            taint(q); /* overwrites an entry the device has not consumed */
        }
        sqe->cid = cpu_to_le32(++d->cid);
        p = &d->pending[d->cid % VKMT_QUEUE_DEPTH];
        p->cid = d->cid;
        p->opcode = sqe->opcode;
        p->result_off = le32_to_cpu(sqe->result_off);
        p->nresults = le32_to_cpu(sqe->count);
        qtest_memwrite(
            vf.qts,
            qaddr(q, VKMT_QUEUE_SQ_OFF + (d->tail % VKMT_QUEUE_DEPTH) * 64),
            sqe, sizeof(*sqe));
        wrote(1u << q);
        d->tail++;
    }
    if (!defer) {
        ring(q, VF_DB_TAIL, 0, false);
    }
}

/* ---- operations ---- */

static void op_bring_up(const uint8_t *a)
{
    reg_wr(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE);
    reg_wr(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    reg_wr(VKMT_REG(driver_features), a[0]);
    reg_wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    reg_wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
}

static void op_claim(const uint8_t *a)
{
    claimed(reg_rd(VKMT_REG(queue_claim)));
}

static void op_release(const uint8_t *a)
{
    reg_wr(VKMT_REG(queue_release), pick_queue(a[0]));
}

static void op_reap(const uint8_t *a)
{
    uint32_t q = pick_queue(a[0]);
    uint32_t seq = 0;

    if (q < VF_QUEUES) {
        seq = qtest_readl(
            vf.qts, hdr_addr(q, offsetof(struct vkmt_queue_hdr, sh_claim_seq)));
    }
    reg_wr(VKMT_REG(queue_reap), VKMT_REAP(q, seq + (uint32_t)(int8_t)a[1]));
}

static void op_cmd(const uint8_t *a)
{
    struct vf_cmd c;
    struct vkmt_sqe sqe = { 0 };
    uint32_t q, count, plen = 0, wlen = 0, rlen, roff, base = 0;

    memcpy(&c, a, sizeof(c));
    q = pick_queue(c.q);
    count = le16_to_cpu(c.count);
    c.pval = le32_to_cpu(c.pval);
    sqe.opcode = c.opcode;
    sqe.flags = cpu_to_le16(c.flags);
    sqe.handle = cpu_to_le32(pool_pick(c.hsel, le32_to_cpu(c.hval)));
    sqe.count = cpu_to_le32(count);
    sqe.arg0 = cpu_to_le32(pool_pick(c.asel, le32_to_cpu(c.aval)));
    sqe.arg1 = c.arg1;
    sqe.arg64 = c.arg64;

    switch (c.mode & VF_PAY_MASK) {
    case VF_PAY_HANDLES: {
        uint32_t *h = (uint32_t *)vf_buf;
        uint32_t start = c.pval & 0xff, step = (c.pval >> 8) & 0xff;
        /* SET_PRIORITY's elements are {handle, priority} pairs. */
        uint32_t width = c.opcode == VKMT_OP_SET_PRIORITY ? 2 : 1;

        plen = count * 4 * width;
        wlen = MIN(plen, VKMT_STAGING_SIZE);
        for (uint32_t i = 0; i < wlen / 4 / width; i++) {
            h[i * width] = cpu_to_le32(
                vf.npool ? vf.pool[(start + i * step) % vf.npool] : c.pval);
            if (width == 2) {
                h[i * 2 + 1] =
                    cpu_to_le32(le32_to_cpu(c.arg1) + i * 0x08000000u);
            }
        }
        if (width == 2) {
            sqe.arg1 = 0;
        }
        break;
    }
    case VF_PAY_DESCS: {
        struct vkmt_alloc_desc *dsc = (struct vkmt_alloc_desc *)vf_buf;

        plen = count * (uint32_t)sizeof(*dsc);
        wlen = MIN(plen, VKMT_STAGING_SIZE);
        uint64_t shape = (c.mode & VF_SHAPE) ? le64_to_cpu(c.arg64) : 0;

        for (uint32_t i = 0; i < wlen / sizeof(*dsc); i++) {
            uint64_t size =
                (uint64_t)c.pval * ((c.mode & VF_VARY) ? 1 + i % 3 : 1);

            dsc[i] = (struct vkmt_alloc_desc){
                .size = cpu_to_le64(size),
                .flags = cpu_to_le32((uint32_t)shape),
                .dims = cpu_to_le32((uint32_t)(shape >> 32))
            };
        }
        if (c.mode & VF_SHAPE) {
            sqe.arg64 = 0;
        }
        break;
    }
    case VF_PAY_RAW:
        plen = count * ((c.mode & VF_VARY) ? 16 : 4);
        sqe.payload_off = cpu_to_le32(c.pval);
        break;
    }
    rlen = !(c.mode & VF_RESULTS)                  ? 0
           : c.opcode == VKMT_OP_QUERY_STATS       ? 128
           : c.opcode == VKMT_OP_QUERY_QUEUE_STATS ? count * 64
                                                   : count * 4;
    roff = ROUND_UP(MIN(plen, VKMT_STAGING_SIZE), 8);
    if (q < VF_QUEUES && roff + rlen <= VF_SLOT_BYTES) {
        base = vf.q[q].tail % VF_SLOTS * VF_SLOT_BYTES;
    }
    if ((c.mode & VF_PAY_MASK) != VF_PAY_NONE) {
        sqe.payload_len = cpu_to_le32(plen);
        if ((c.mode & VF_PAY_MASK) != VF_PAY_RAW) {
            sqe.payload_off = cpu_to_le32(base);
        }
    }
    if (c.mode & VF_RESULTS) {
        sqe.result_off = cpu_to_le32(base + roff);
        sqe.result_len = cpu_to_le32(rlen);
    }
    if (wlen && q < VF_QUEUES) {
        qtest_memwrite(vf.qts, qaddr(q, VKMT_QUEUE_STAGING_OFF + base), vf_buf,
                       wlen);
    }
    post(q, &sqe, c.q & VF_Q_DEFER);
}

static void op_sqe_raw(const uint8_t *a)
{
    struct vkmt_sqe sqe;

    memcpy(&sqe, a + 1, sizeof(sqe));
    post(pick_queue(a[0]), &sqe, a[0] & VF_Q_DEFER);
}

static void op_doorbell(const uint8_t *a)
{
    uint32_t val;

    memcpy(&val, a + 2, 4);
    ring(pick_queue(a[0]), a[1], le32_to_cpu(val), a[0] & VF_Q_DEFER);
}

static void op_reg_write(const uint8_t *a)
{
    uint16_t off;
    uint32_t val;
    bool doorbell;

    memcpy(&off, a, 2);
    memcpy(&val, a + 2, 4);
    off = le16_to_cpu(off) & (VKMT_REGS_SIZE - 4);
    doorbell = off >= VKMT_REG(sq_doorbell) &&
               off < VKMT_REG_DOORBELL(VKMT_MAX_QUEUES);
    if (doorbell) {
        taint((off - VKMT_REG(sq_doorbell)) / 4);
    }
    reg_wr(off, le32_to_cpu(val));
    /* Only doorbells reach the iothread; other registers work in this write. */
    if (doorbell) {
        iothread_drain();
    }
    if (vf.deferred) {
        flush_events(vf.qts);
    }
    check_intx();
}

static void op_reg_read(const uint8_t *a)
{
    uint16_t off;
    uint32_t val;

    memcpy(&off, a, 2);
    off = le16_to_cpu(off) & (VKMT_REGS_SIZE - 4);
    val = reg_rd(off);
    if (off == VKMT_REG(queue_claim)) {
        claimed(val); /* a read that claims is a claim */
    }
}

/* The bytes after an operation's record: the data it writes. */
static size_t data_len(size_t len, size_t rec)
{
    return len > rec ? MIN(len - rec, VF_DATA_MAX) : 0;
}

static void op_ctrl_write(const uint8_t *a, const uint8_t *data, size_t n)
{
    static const uint8_t zero[4];
    uint32_t off;

    memcpy(&off, a, 4);
    off = le32_to_cpu(off) % vf.ctrl_size;
    if (!n) {
        data = zero;
        n = sizeof(zero);
    }
    n = MIN(n, vf.ctrl_size - off);
    for (uint32_t q = off / VKMT_QUEUE_STRIDE;
         q <= (off + n - 1) / VKMT_QUEUE_STRIDE; q++) {
        taint(q); /* rings or headers may have changed under the driver */
        wrote(1u << q);
    }
    qtest_memwrite(vf.qts, vf.ctrl + off, data, n);
}

/*
 * Config space, except what maps the BARs: the command register, the BARs
 * and the ROM BAR. Moving or disabling BARs exercises QEMU's PCI core, not
 * the device (generic-fuzz-vkmt covers it), and each such write rebuilds
 * every memory map: a third of the target's time went there when allowed.
 */
static void op_cfg_write(const uint8_t *a)
{
    static const uint8_t skip[][2] = { { PCI_COMMAND, 2 },
                                       { PCI_BASE_ADDRESS_0,
                                         PCI_BASE_ADDRESS_5 + 4 - 0x10 },
                                       { PCI_ROM_ADDRESS, 4 } };
    unsigned size = 1u << (a[0] % 3);
    uint32_t val;

    for (size_t i = 0; i < ARRAY_SIZE(skip); i++) {
        if (a[1] < skip[i][0] + skip[i][1] && skip[i][0] < a[1] + size) {
            return;
        }
    }
    memcpy(&val, a + 2, 4);
    val = le32_to_cpu(val);
    vf.config_dirty = true;
    vf.msix_dirty = true; /* the MSI-X capability is in reach */
    switch (a[0] % 3) {
    case 0:
        qpci_config_writeb(vf.dev, a[1], val);
        break;
    case 1:
        qpci_config_writew(vf.dev, a[1], val);
        break;
    default:
        qpci_config_writel(vf.dev, a[1], val);
        break;
    }
}

static void op_cfg_read(const uint8_t *a)
{
    switch (a[0] % 3) {
    case 0:
        qpci_config_readb(vf.dev, a[1]);
        break;
    case 1:
        qpci_config_readw(vf.dev, a[1]);
        break;
    default:
        qpci_config_readl(vf.dev, a[1]);
        break;
    }
}

static void op_msix(const uint8_t *a)
{
    uint16_t off, flags;
    uint32_t val;

    memcpy(&off, a + 1, 2);
    memcpy(&val, a + 3, 4);
    off = le16_to_cpu(off);
    val = le32_to_cpu(val);
    flags = qpci_config_readw(vf.dev, vf.msix_cap + PCI_MSIX_FLAGS);
    switch (a[0] % VF_MSIX_COUNT) {
    case VF_MSIX_ENABLE:
        flags |=
            PCI_MSIX_FLAGS_ENABLE | ((val & 1) ? PCI_MSIX_FLAGS_MASKALL : 0);
        qpci_config_writew(vf.dev, vf.msix_cap + PCI_MSIX_FLAGS, flags);
        vf.msix_dirty = true;
        break;
    case VF_MSIX_DISABLE:
        flags &= ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
        qpci_config_writew(vf.dev, vf.msix_cap + PCI_MSIX_FLAGS, flags);
        break;
    case VF_MSIX_TABLE:
        /* Messages now go where the input says, control memory included
         * (and, in the port targets, any config space through MMCONFIG). */
        vf.msix_dirty = true;
        vf.judge = false;
        wrote(~0u);
        vf.config_dirty |= vf.cfg->port;
        vf.port_dirty |= vf.cfg->port;
        qtest_writel(vf.qts,
                     vf.msix + vf.msix_table +
                         (off % (vf.msix_vectors * PCI_MSIX_ENTRY_SIZE) & ~3u),
                     val);
        break;
    case VF_MSIX_READ:
        qtest_readl(vf.qts,
                    vf.msix + vf.msix_pba +
                        (off % ((vf.msix_vectors + 63) / 64 * 8) & ~3u));
        break;
    }
}

static void op_aim(const uint8_t *a)
{
    static const uint32_t base[VF_AIM_COUNT] = {
        [VF_AIM_PORT] = VF_MMCONFIG + (VF_PORT_BDF << 12),
        [VF_AIM_PORT_EXP] = VF_MMCONFIG + (VF_PORT_BDF << 12),
        [VF_AIM_SELF] = VF_MMCONFIG + (VF_SELF_BDF << 12),
        [VF_AIM_LAPIC] = 0xfee00000u,
    };
    uint8_t target = a[1] % VF_AIM_COUNT;
    uint64_t entry =
        vf.msix + vf.msix_table + a[0] % vf.msix_vectors * PCI_MSIX_ENTRY_SIZE;
    uint16_t off, flags;
    uint32_t data;

    memcpy(&off, a + 2, 2);
    memcpy(&data, a + 4, 4);
    off = le16_to_cpu(off) % 4096;
    if (target == VF_AIM_PORT_EXP) {
        off = (off + vf.rp_exp) % 4096;
    }
    /* Config space may change under the driver, the device go away. */
    vf.msix_dirty = vf.config_dirty = true;
    vf.port_dirty |= vf.cfg->port;
    vf.judge = false;
    qtest_writel(vf.qts, entry + PCI_MSIX_ENTRY_LOWER_ADDR,
                 base[target] + (off & ~3u));
    qtest_writel(vf.qts, entry + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    qtest_writel(vf.qts, entry + PCI_MSIX_ENTRY_DATA, le32_to_cpu(data));
    qtest_writel(vf.qts, entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    flags = qpci_config_readw(vf.dev, vf.msix_cap + PCI_MSIX_FLAGS);
    if ((flags & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)) !=
        PCI_MSIX_FLAGS_ENABLE) {
        flags = (flags | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL;
        qpci_config_writew(vf.dev, vf.msix_cap + PCI_MSIX_FLAGS, flags);
    }
}

/*
 * Moved BARs (or bus mastering switched) leave replaced memory maps for RCU
 * to free, and its thread needs the BQL, which this one holds between main
 * loop turns: without a drain now and then, memory grows with every such
 * input. A drain costs ~50 ms (the RCU thread waits to batch), so not per
 * input.
 */
static void remapped(void)
{
    if (++vf.remaps >= VF_REMAPS_PER_DRAIN) {
        drain_call_rcu();
        vf.remaps = 0;
    }
}

/*
 * Put the config header back as pre_fuzz left it, touching only what
 * changed; the caller calls remapped() if this returns true (BARs moved),
 * outside any memory transaction of its own.
 */
static bool config_restore(void)
{
    static const uint8_t dwords[] = { PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_1,
                                      PCI_BASE_ADDRESS_2, PCI_BASE_ADDRESS_3,
                                      PCI_BASE_ADDRESS_4, PCI_BASE_ADDRESS_5,
                                      PCI_CACHE_LINE_SIZE };
    bool moved = false;

    /* One memory map rebuild for all of them, not one per BAR. */
    memory_region_transaction_begin();
    for (size_t i = 0; i < ARRAY_SIZE(dwords); i++) {
        if (qpci_config_readl(vf.dev, dwords[i]) != vf.config[dwords[i] / 4]) {
            qpci_config_writel(vf.dev, dwords[i], vf.config[dwords[i] / 4]);
            moved |= dwords[i] != PCI_CACHE_LINE_SIZE;
        }
    }
    if (qpci_config_readw(vf.dev, PCI_COMMAND) !=
        (uint16_t)vf.config[PCI_COMMAND / 4]) {
        qpci_config_writew(vf.dev, PCI_COMMAND, vf.config[PCI_COMMAND / 4]);
        moved = true;
    }
    qpci_config_writeb(vf.dev, PCI_INTERRUPT_LINE,
                       vf.config[PCI_INTERRUPT_LINE / 4]);
    memory_region_transaction_commit();
    return moved;
}

/* ---- the root port and hot-plug (port targets) ---- */

/* MMCONFIG at VF_MMCONFIG, 256 buses, as firmware sets it up (PCIEXBAR, enable
 * bit). */
static void mmconfig_on(void)
{
    qpci_config_writel(vf.mch, 0x64, 0);
    qpci_config_writel(vf.mch, 0x60, VF_MMCONFIG | 1);
}

/* Bus numbers, the memory window, forwarding and bus mastering, slot power on.
 */
static void port_setup(void)
{
    uint16_t ctl;

    memory_region_transaction_begin(); /* one memory map rebuild for the lot */
    qpci_config_writeb(vf.rp, PCI_PRIMARY_BUS, 0);
    qpci_config_writeb(vf.rp, PCI_SECONDARY_BUS, VF_SELF_BDF >> 8);
    qpci_config_writeb(vf.rp, PCI_SUBORDINATE_BUS, VF_SELF_BDF >> 8);
    qpci_config_writew(vf.rp, PCI_MEMORY_BASE, VF_WINDOW_BASE >> 16);
    qpci_config_writew(vf.rp, PCI_MEMORY_LIMIT, VF_WINDOW_LIMIT >> 16);
    /* Base above limit: no prefetchable window (BAR 4 fits the other one). */
    qpci_config_writew(vf.rp, PCI_PREF_MEMORY_BASE, 0xfff0);
    qpci_config_writew(vf.rp, PCI_PREF_MEMORY_LIMIT, 0);
    qpci_config_writew(vf.rp, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    ctl = qpci_config_readw(vf.rp, vf.rp_exp + PCI_EXP_SLTCTL);
    ctl = (ctl & ~(PCI_EXP_SLTCTL_PCC | PCI_EXP_SLTCTL_PIC)) |
          PCI_EXP_SLTCTL_PWR_IND_ON;
    qpci_config_writew(vf.rp, vf.rp_exp + PCI_EXP_SLTCTL, ctl);
    memory_region_transaction_commit();
}

/* The device as realized now (after boot or a re-plug). */
static void attach(void)
{
    vf.pdev = PCI_DEVICE(object_resolve_path(VF_PATH, NULL));
    g_assert(vf.pdev);
    vf.ctrl_ram =
        memory_region_get_ram_ptr(vf.pdev->io_regions[VKMT_BAR_CTRL].memory);
    vf.ap_ram = memory_region_get_ram_ptr(
        vf.pdev->io_regions[VKMT_BAR_APERTURE].memory);
    pstrcpy(vf.ctrl_idstr, sizeof(vf.ctrl_idstr),
            qemu_ram_get_idstr(
                vf.pdev->io_regions[VKMT_BAR_CTRL].memory->ram_block));
    vf.present = true;
}

/* After each operation: did it unplug the device (an MSI-X message can)? */
static void check_present(void)
{
    if (vf.present && !object_resolve_path(VF_PATH, NULL)) {
        vf.present = vf.del_pending = false;
        vf.pdev = NULL;
        for (uint32_t q = 0; q < VKMT_MAX_QUEUES; q++) {
            queue_fresh(q);
        }
        vf.nclaimed = 0;
    }
}

/* What a guest does to eject: power and power indicator off. */
static void slot_power_off(void)
{
    uint16_t ctl = qpci_config_readw(vf.rp, vf.rp_exp + PCI_EXP_SLTCTL);

    ctl = (ctl & ~(PCI_EXP_SLTCTL_PCC | PCI_EXP_SLTCTL_PIC)) |
          PCI_EXP_SLTCTL_PWR_OFF | PCI_EXP_SLTCTL_PWR_IND_OFF;
    qpci_config_writew(vf.rp, vf.rp_exp + PCI_EXP_SLTCTL, ctl);
}

static bool config_restore(void);

/*
 * device_add with the boot-time properties, then power and BARs as before.
 * With @guest_may_refuse, a refusal the guest caused (it locked the slot's
 * electromechanical interlock) leaves the device unplugged and the port to
 * the next input's reset; false: the slot was refused.
 */
static bool plug(bool guest_may_refuse)
{
    QDict *opts = qdict_new();
    DeviceState *dev;
    Error *err = NULL;

    qdict_put_str(opts, "driver", "vkmt");
    qdict_put_str(opts, "id", "vk");
    qdict_put_str(opts, "bus", "rp");
    qdict_put_str(opts, "queues", stringify(VF_QUEUES));
    qdict_put_str(opts, "memdev", "ap");
    qdict_put_str(opts, "doorbell", vf.cfg->doorbell);
    if (vf.iothread) {
        qdict_put_str(opts, "iothread", "io");
    }
    if (vf.log) {
        fprintf(stderr, "[vkmt-fuzz] # qmp {'execute': 'device_add', "
                        "'arguments': {'driver': "
                        "'vkmt', 'id': 'vk', 'bus': 'rp', ...}}\n");
    }
    /*
     * The unplugged device's RAM lives until RCU frees it, but its migration
     * name must be gone already: a device plugged in its place now takes the
     * same name (QEMU aborts on "RAMBlock ... already registered").
     */
    if (qemu_ram_block_by_name(vf.ctrl_idstr)) {
        vf_fail("the unplugged device's control RAM still holds its name %s",
                vf.ctrl_idstr);
    }
    dev = qdev_device_add_from_qdict(opts, false, &err);
    qobject_unref(opts);
    if (!dev && guest_may_refuse) {
        error_free(err);
        vf.port_dirty = true;
        return false;
    }
    if (!dev) {
        vf_fail("device_add: %s", error_get_pretty(err));
    }
    object_unref(OBJECT(dev));
    port_setup();
    attach();
    config_restore();
    remapped();
    return true;
}

static void op_plug(const uint8_t *a)
{
    Error *err = NULL;
    uint16_t ctl;

    if (!vf.cfg->port) {
        return; /* q35's root bus has no hot-plug */
    }
    vf.judge = false;
    switch (a[0] % VF_PLUG_COUNT) {
    case VF_PLUG_DEL:
        if (vf.log) {
            fprintf(stderr,
                    "[vkmt-fuzz] # qmp {'execute': 'device_del', 'arguments': "
                    "{'id': 'vk'}}\n");
        }
        qmp_device_del("vk", &err);
        if (err) {
            error_free(err); /* unplugged, or already asked */
        } else {
            vf.del_pending = true;
        }
        break;
    case VF_PLUG_POWER_OFF:
        vf.port_dirty = true;
        slot_power_off();
        break;
    case VF_PLUG_ADD:
        if (!vf.present) {
            plug(true);
        }
        break;
    case VF_PLUG_BUS_RESET:
        vf.port_dirty = vf.config_dirty = vf.msix_dirty = true;
        ctl = qpci_config_readw(vf.rp, PCI_BRIDGE_CONTROL);
        qpci_config_writew(vf.rp, PCI_BRIDGE_CONTROL,
                           ctl | PCI_BRIDGE_CTL_BUS_RESET);
        qpci_config_writew(vf.rp, PCI_BRIDGE_CONTROL,
                           ctl & ~PCI_BRIDGE_CTL_BUS_RESET);
        if (vf.present && config_restore()) { /* the reset cleared the BARs */
            remapped();
        }
        break;
    }
}

/*
 * Before the device reset: finish an ejection the input asked for, undo
 * what it did to the root port (a reset of the port and its bus, then the
 * set-up again), and plug the device back if it is gone.
 */
static void port_restore(void)
{
    if (vf.del_pending && vf.present) {
        slot_power_off();
        check_present();
        vf.port_dirty = true;
    }
    if (vf.port_dirty) {
        memory_region_transaction_begin();
        device_cold_reset(vf.rp_dev);
        port_setup();
        mmconfig_on(); /* a message may have hit the host bridge's PCIEXBAR */
        memory_region_transaction_commit();
        vf.config_dirty = vf.msix_dirty = true;
    }
    if (!vf.present) {
        plug(false);
    }
    vf.port_dirty = vf.del_pending = false;
}

/* qom-set of @property to @val; a refusal fails the run unless @may_refuse. */
static void qom_set_checked(const char *property, QObject *val, bool may_refuse)
{
    Error *err = NULL;

    if (vf.log) {
        GString *json = qobject_to_json(val);

        /* After the last ']', so reorder_fuzzer_qtest_trace.py keeps it as a
         * note. */
        fprintf(stderr,
                "[vkmt-fuzz] # qmp {'execute': 'qom-set', 'arguments': "
                "{'path': '" VF_PATH "', 'property': '%s', 'value': %s}}\n",
                property, json->str);
        g_string_free(json, true);
    }
    qmp_qom_set(VF_PATH, property, val, &err);
    qobject_unref(val);
    if (err && !may_refuse) {
        vf_fail("qom-set %s: %s", property, error_get_pretty(err));
    }
    error_free(err);
}

static void qom_set(const char *property, QObject *val)
{
    qom_set_checked(property, val, false);
}

static const char *const host_reads[] = {
    "stats",           "budget",         "trim",
    "removed",         "trim-notify",    "trim-period-ms",
    "longest-step-ns", "x-fault-commit", "queue-stats",
    "queue-budget",
};

static const char *const fault_props[] = {
    "x-fault-commit",
    "x-fault-discard",
    "x-fault-stall",
};

static void op_host(const uint8_t *a)
{
    QObject *o;
    uint64_t val;
    char rule[16];

    memcpy(&val, a + 1, 8);
    val = le64_to_cpu(val);
    switch (a[0] % VF_HOST_COUNT) {
    case VF_HOST_TRIM:
        qom_set("trim", QOBJECT(qnum_from_uint(val)));
        break;
    case VF_HOST_BUDGET:
        vf.host_dirty = true;
        qom_set("budget", QOBJECT(qnum_from_uint(val)));
        break;
    case VF_HOST_REMOVED:
        vf.host_dirty = true;
        qom_set("removed", QOBJECT(qbool_from_bool(val & 1)));
        break;
    case VF_HOST_STATS: /* every property a monitor reads */
        for (size_t i = 0; i < ARRAY_SIZE(host_reads); i++) {
            o = qmp_qom_get(VF_PATH, host_reads[i], &error_abort);
            qobject_unref(o);
        }
        /* Restarts the step measurement, as a monitor between phases. */
        qom_set("longest-step-ns", QOBJECT(qnum_from_uint(0)));
        break;
    case VF_HOST_RESET:
        /* As a machine reset: the device's reset and a PCI one (BARs, MSI-X).
         */
        if (vf.log) {
            fprintf(stderr, "[vkmt-fuzz] # device reset: in a reproducer, "
                            "system_reset and map "
                            "the BARs again\n");
        }
        memory_region_transaction_begin();
        device_cold_reset(DEVICE(vf.pdev));
        config_restore();
        memory_region_transaction_commit();
        remapped();
        break;
    case VF_HOST_FLUSH:
        flush_events(vf.qts);
        check_intx();
        break;
    case VF_HOST_TRIM_NOTIFY:
        qom_set("trim-notify", QOBJECT(qnum_from_uint(val)));
        break;
    case VF_HOST_TRIM_PERIOD:
        vf.host_dirty = true;
        qom_set("trim-period-ms", QOBJECT(qnum_from_uint(val & 0xffff)));
        break;
    case VF_HOST_CLOCK:
        /* Never 0: qtest refuses a step that does not advance the clock. */
        qtest_clock_step(vf.qts, 1 + (val & 0x0fffffff));
        break;
    case VF_HOST_FAULT:
        vf.host_dirty = true;
        if ((val >> 8) & 0xff) {
            snprintf(rule, sizeof(rule), "every:%u",
                     (unsigned)((val >> 8) & 0xff));
        } else {
            snprintf(rule, sizeof(rule), "off");
        }
        qom_set(fault_props[(val & 0xff) % ARRAY_SIZE(fault_props)],
                QOBJECT(qstring_from_str(rule)));
        break;
    case VF_HOST_QUEUE_BUDGET: {
        /* Refused for a free or unknown queue, or past the aperture; a
         * queue's release (the reset after the input) clears it. */
        g_autofree char *qb =
            g_strdup_printf("%u:%" PRIu64, (unsigned)(val & 0xff),
                            ((val >> 8) & 0xffffffffu) * VKMT_PAGE_SIZE);

        qom_set_checked("queue-budget", QOBJECT(qstring_from_str(qb)), true);
        break;
    }
    }
}

static void op_aperture(const uint8_t *a, const uint8_t *data, size_t n)
{
    static const uint8_t zero[4];
    uint32_t off;

    memcpy(&off, a, 4);
    off = le32_to_cpu(off) % VF_APERTURE;
    if (!n) {
        data = zero;
        n = sizeof(zero);
    }
    n = MIN(n, VF_APERTURE - off);
    if (vf.ap_n < VF_AP_TRACKED) {
        vf.ap_off[vf.ap_n] = off;
        vf.ap_len[vf.ap_n++] = n;
    } else {
        vf.ap_all = true;
    }
    qtest_memwrite(vf.qts, vf.ap + off, data, n);
}

/* ---- the per-input cycle ---- */

static void run_op(const uint8_t *cmd, size_t len)
{
    static const uint8_t rec_len[VF_OP_COUNT] = {
        [VF_OP_BRING_UP] = VF_LEN_BRING_UP,
        [VF_OP_CLAIM] = VF_LEN_CLAIM,
        [VF_OP_RELEASE] = VF_LEN_RELEASE,
        [VF_OP_REAP] = VF_LEN_REAP,
        [VF_OP_CMD] = VF_LEN_CMD,
        [VF_OP_SQE_RAW] = VF_LEN_SQE_RAW,
        [VF_OP_DOORBELL] = VF_LEN_DOORBELL,
        [VF_OP_REG_WRITE] = VF_LEN_REG_WRITE,
        [VF_OP_REG_READ] = VF_LEN_REG_READ,
        [VF_OP_CTRL_WRITE] = VF_LEN_CTRL_WRITE,
        [VF_OP_CFG_WRITE] = VF_LEN_CFG_WRITE,
        [VF_OP_CFG_READ] = VF_LEN_CFG_READ,
        [VF_OP_MSIX] = VF_LEN_MSIX,
        [VF_OP_HOST] = VF_LEN_HOST,
        [VF_OP_APERTURE] = VF_LEN_APERTURE,
        [VF_OP_AIM] = VF_LEN_AIM,
        [VF_OP_PLUG] = VF_LEN_PLUG,
    };
    uint8_t rec[VF_LEN_SQE_RAW] = {
        0
    }; /* the longest record; short ones read zeros */
    _Static_assert(VF_LEN_AIM < VF_LEN_SQE_RAW && VF_LEN_PLUG < VF_LEN_SQE_RAW,
                   "rec holds every record");
    uint8_t op = cmd[0] % VF_OP_COUNT;
    const uint8_t *data = cmd + 1 + rec_len[op];
    size_t n = data_len(len - 1, rec_len[op]);

    memcpy(rec, cmd + 1, MIN(len - 1, rec_len[op]));
    if (vf.verbose) {
        fprintf(stderr, "vkmt-fuzz: op %u, %zu bytes\n", op, len - 1);
    }
    /* Only hot-plug races with the iothread's work: the rest waits for it. */
    if (vf.racing && op != VF_OP_PLUG) {
        iothread_drain();
    }
    if (!vf.present && op != VF_OP_PLUG) {
        return; /* an unplugged device has nothing to drive */
    }
    switch (op) {
    case VF_OP_BRING_UP:
        op_bring_up(rec);
        break;
    case VF_OP_CLAIM:
        op_claim(rec);
        break;
    case VF_OP_RELEASE:
        op_release(rec);
        break;
    case VF_OP_REAP:
        op_reap(rec);
        break;
    case VF_OP_CMD:
        op_cmd(rec);
        break;
    case VF_OP_SQE_RAW:
        op_sqe_raw(rec);
        break;
    case VF_OP_DOORBELL:
        op_doorbell(rec);
        break;
    case VF_OP_REG_WRITE:
        op_reg_write(rec);
        break;
    case VF_OP_REG_READ:
        op_reg_read(rec);
        break;
    case VF_OP_CTRL_WRITE:
        op_ctrl_write(rec, data, n);
        break;
    case VF_OP_CFG_WRITE:
        op_cfg_write(rec);
        break;
    case VF_OP_CFG_READ:
        op_cfg_read(rec);
        break;
    case VF_OP_MSIX:
        op_msix(rec);
        break;
    case VF_OP_HOST:
        op_host(rec);
        break;
    case VF_OP_APERTURE:
        op_aperture(rec, data, n);
        break;
    case VF_OP_AIM:
        op_aim(rec);
        break;
    case VF_OP_PLUG:
        op_plug(rec);
        break;
    }
    if (vf.cfg->port) {
        check_present();
    }
}

static uint64_t stat_get(QDict *st, const char *key)
{
    return qnum_get_uint(qobject_to(QNum, qdict_get(st, key)));
}

/*
 * Back to the state after pre_fuzz: the root port set up again and the
 * device plugged back if the input changed them, reset the device (and its
 * config space if the input touched it), put the host properties back,
 * check that the reset returned everything, and clear what the input wrote
 * to memory.
 */
static void vf_reset(void)
{
    static const char *const zero_after_reset[] = {
        "devices",         "allocations",   "resources",
        "committed_bytes", "offered_bytes", "demoted_bytes",
    };
    QObject *o;
    QDict *st;

    settle();
    check_intx();
    if (vf.cfg->port) {
        port_restore();
    }
    if (vf.config_dirty && config_restore()) {
        remapped();
    }
    if (vf.msix_dirty) {
        msix_reset(
            vf.pdev); /* disabled, table masked and cleared, nothing pending */
    }
    reg_wr(VKMT_REG(status), 0);
    /* Teardown runs in bounded steps in bottom halves; status reads 0 when
     * done. */
    for (int i = 0; i < 100000 && reg_rd(VKMT_REG(status)); i++) {
        main_loop_wait(false);
    }
    if (vf.host_dirty) {
        qom_set("removed", QOBJECT(qbool_from_bool(false)));
        qom_set("budget", QOBJECT(qnum_from_uint(0)));
        qom_set("trim-period-ms", QOBJECT(qnum_from_uint(0)));
        for (size_t i = 0; i < ARRAY_SIZE(fault_props); i++) {
            qom_set(fault_props[i], QOBJECT(qstring_from_str("off")));
        }
    }
    settle();

    o = qmp_qom_get(VF_PATH, "stats", &error_abort);
    st = qobject_to(QDict, o);
    for (size_t i = 0; i < ARRAY_SIZE(zero_after_reset); i++) {
        if (stat_get(st, zero_after_reset[i])) {
            vf_fail("after a device reset, stats.%s = %" PRIu64,
                    zero_after_reset[i], stat_get(st, zero_after_reset[i]));
        }
    }
    qobject_unref(o);
    if (reg_rd(VKMT_REG(magic)) != VKMT_MAGIC) {
        vf_fail("BAR 0 does not answer after the reset");
    }

    /* Staging keeps what an input wrote (claims clear the rings): clear it. */
    for (uint32_t q = 0; q < VF_QUEUES; q++) {
        if (vf.written & (1u << q)) {
            memset(vf.ctrl_ram + (size_t)q * VKMT_QUEUE_STRIDE, 0,
                   VKMT_QUEUE_STRIDE);
        }
    }
    if (vf.ap_all) {
        memset(vf.ap_ram, 0, VF_APERTURE);
    } else {
        for (uint32_t i = 0; i < vf.ap_n; i++) {
            memset(vf.ap_ram + vf.ap_off[i], 0, vf.ap_len[i]);
        }
    }
    for (uint32_t q = 0; q < VKMT_MAX_QUEUES; q++) {
        queue_fresh(q);
    }
    vf.nclaimed = vf.npool = vf.ap_n = vf.written = 0;
    vf.config_dirty = vf.msix_dirty = vf.host_dirty = vf.ap_all = false;
    vf.judge = true;
}

static void vkmt_fuzz(QTestState *s, const unsigned char *data, size_t size)
{
    const unsigned char *cmd = data;

    while (size) {
        const unsigned char *next =
            memmem(cmd, size, VF_SEPARATOR, VF_SEPARATOR_LEN);
        size_t len = next ? (size_t)(next - cmd) : size;

        if (len) {
            run_op(cmd, len);
        }
        if (!next) {
            break;
        }
        cmd = next + VF_SEPARATOR_LEN;
        size -= len + VF_SEPARATOR_LEN;
    }
    vf_reset();
}

/* ---- set-up, once ---- */

static void found(QPCIDevice *dev, int devfn, void *data)
{
    *(QPCIDevice **)data = dev;
}

static void vkmt_pre_fuzz(QTestState *s)
{
    uint32_t table, pba;
    sigset_t alarm;

    /*
     * QEMU blocks SIGALRM and reads it from a signalfd in the main loop, so
     * libFuzzer's -timeout (a SIGALRM timer) only fires when an input turns
     * the main loop: an input that deadlocks inside the device would hang
     * for ever. Take SIGALRM in this thread directly.
     */
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &alarm, NULL);

    vf.qts = s;
    vf.log = getenv("QTEST_LOG") != NULL;
    vf.verbose = getenv("VKMT_FUZZ_VERBOSE") != NULL;
    vf.bus = qpci_new_pc(s, NULL);
    if (vf.cfg->port) {
        /* QEMU has the file open: leave nothing behind when the fuzzer is
         * killed. */
        unlink(vf.file_path);
        rmdir(vf.file_dir);
        vf.mch = qpci_device_find(vf.bus, 0);
        mmconfig_on();
        vf.rp = qpci_device_find(vf.bus, VF_PORT_BDF);
        g_assert(vf.rp);
        vf.rp_dev = DEVICE(object_resolve_path("/machine/peripheral/rp", NULL));
        vf.rp_exp = qpci_find_capability(vf.rp, PCI_CAP_ID_EXP, 0);
        g_assert(vf.rp_exp);
        port_setup();
        vf.dev = qpci_device_find(vf.bus, VF_SELF_BDF);
    } else {
        qpci_device_foreach(vf.bus, VKMT_PCI_VENDOR_ID, VKMT_PCI_DEVICE_ID,
                            found, &vf.dev);
    }
    g_assert(vf.dev);
    if (vf.iothread) {
        vf.io_ctx = iothread_get_aio_context(
            IOTHREAD(object_resolve_path("/objects/io", NULL)));
        qemu_event_init(&vf.io_done, false);
    }
    vf.regs = qpci_iomap(vf.dev, VKMT_BAR_REGS, NULL).addr;
    vf.msix = qpci_iomap(vf.dev, VKMT_BAR_MSIX, NULL).addr;
    vf.ctrl = qpci_iomap(vf.dev, VKMT_BAR_CTRL, &vf.ctrl_size).addr;
    vf.ap = qpci_iomap(vf.dev, VKMT_BAR_APERTURE, NULL).addr;
    qpci_device_enable(vf.dev);
    for (int i = 0; i < 16; i++) {
        vf.config[i] = qpci_config_readl(vf.dev, i * 4);
    }

    vf.msix_cap = qpci_find_capability(vf.dev, PCI_CAP_ID_MSIX, 0);
    g_assert(vf.msix_cap);
    vf.msix_vectors = (qpci_config_readw(vf.dev, vf.msix_cap + PCI_MSIX_FLAGS) &
                       PCI_MSIX_FLAGS_QSIZE) +
                      1;
    table = qpci_config_readl(vf.dev, vf.msix_cap + PCI_MSIX_TABLE);
    pba = qpci_config_readl(vf.dev, vf.msix_cap + PCI_MSIX_PBA);
    g_assert((table & PCI_MSIX_FLAGS_BIRMASK) == VKMT_BAR_MSIX);
    g_assert((pba & PCI_MSIX_FLAGS_BIRMASK) == VKMT_BAR_MSIX);
    vf.msix_table = table & ~PCI_MSIX_FLAGS_BIRMASK;
    vf.msix_pba = pba & ~PCI_MSIX_FLAGS_BIRMASK;

    attach();
    g_assert(vf.ctrl_size == VF_QUEUES * VKMT_QUEUE_STRIDE);
    g_assert(reg_rd(VKMT_REG(magic)) == VKMT_MAGIC);
    g_assert(reg_rd(VKMT_REG(num_queues)) == VF_QUEUES);
    for (uint32_t q = 0; q < VKMT_MAX_QUEUES; q++) {
        queue_fresh(q);
    }
    vf.judge = true;
    if (vf.verbose) {
        fprintf(stderr,
                "vkmt-fuzz: BARs: regs 0x%" PRIx64 ", MSI-X 0x%" PRIx64
                ", control 0x%" PRIx64 ", aperture 0x%" PRIx64
                "; MSI-X capability at 0x%x, %u vectors\n",
                vf.regs, vf.msix, vf.ctrl, vf.ap, vf.msix_cap, vf.msix_vectors);
    }
}

/* The port targets' aperture file: VF_FILE_OFFSET bytes, then the aperture. */
static void make_memdev_file(void)
{
    GError *gerr = NULL;
    int fd;

    vf.file_dir = g_dir_make_tmp("vkmt-fuzz-XXXXXX", &gerr);
    if (!vf.file_dir) {
        vf_fail("temporary directory: %s", gerr->message);
    }
    vf.file_path = g_build_filename(vf.file_dir, "aperture", NULL);
    fd = open(vf.file_path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, VF_FILE_OFFSET + VF_APERTURE) < 0) {
        vf_fail("%s: %s", vf.file_path, strerror(errno));
    }
    close(fd);
}

static GString *vkmt_fuzz_cmdline(FuzzTarget *t)
{
    GString *cmd = g_string_new(TARGET_NAME);

    vf.cfg = t->opaque;
    vf.deferred = strcmp(vf.cfg->doorbell, "inline") != 0;
    vf.iothread = strcmp(vf.cfg->doorbell, "iothread") == 0;
    g_string_append(
        cmd, " -display none -machine q35,accel=qtest -m 64M -nodefaults");
    if (!vf.cfg->port) {
        g_string_append_printf(
            cmd,
            " -device "
            "vkmt,id=vk,queues=%u,aperture-size=%u,doorbell=%s" VF_PROPS,
            VF_QUEUES, (unsigned)VF_APERTURE, vf.cfg->doorbell);
    } else {
        make_memdev_file();
        /* Native PCIe hot-plug (Slot Control), as with ACPI hot-plug off. */
        g_string_append_printf(
            cmd,
            " -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"
            " -device pcie-root-port,id=rp,bus=pcie.0,addr=0x%x,chassis=1"
            " -object "
            "memory-backend-file,id=ap,mem-path=%s,size=%u,share=on,offset=%u%s"
            " -device "
            "vkmt,id=vk,bus=rp,queues=%u,memdev=ap,doorbell=%s%s" VF_PROPS,
            VF_PORT_BDF >> 3, vf.file_path, (unsigned)VF_APERTURE,
            (unsigned)VF_FILE_OFFSET,
            vf.iothread ? " -object iothread,id=io" : "", VF_QUEUES,
            vf.cfg->doorbell, vf.iothread ? ",iothread=io" : "");
    }
    g_string_append_printf(cmd, " %s", getenv("QEMU_FUZZ_ARGS") ?: "");
    return cmd;
}

static void register_vkmt_fuzz_targets(void)
{
    static const struct {
        const char *name;
        const char *description;
        VfConfig cfg;
    } targets[] = {
        { "vkmt-fuzz",
          "Fuzz the vkmt device like a guest driver and its host: registers, "
          "rings and "
          "staging in control memory, doorbells, config space, MSI-X, QMP "
          "trim/budget; "
          "device reset per input",
          { "inline", false } },
        { "vkmt-fuzz-ioeventfd",
          "vkmt-fuzz with doorbell=ioeventfd (eventfd and bottom-half path)",
          { "ioeventfd", false } },
        { "vkmt-fuzz-port",
          "vkmt-fuzz behind a pcie-root-port: MSI-X aimed at config space, "
          "hot-unplug and "
          "re-plug, a share=on memory-backend-file aperture at an offset",
          { "inline", true } },
        { "vkmt-fuzz-port-ioeventfd",
          "vkmt-fuzz-port with doorbell=ioeventfd",
          { "ioeventfd", true } },
        { "vkmt-fuzz-port-iothread",
          "vkmt-fuzz-port with doorbell=iothread and an iothread object "
          "(doorbells can race with hot-unplug)",
          { "iothread", true } },
    };

    for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
        fuzz_add_target(&(FuzzTarget){
            .name = targets[i].name,
            .description = targets[i].description,
            .get_init_cmdline = vkmt_fuzz_cmdline,
            .pre_fuzz = vkmt_pre_fuzz,
            .fuzz = vkmt_fuzz,
            .opaque = (void *)&targets[i].cfg,
        });
    }
}

fuzz_target_init(register_vkmt_fuzz_targets);
