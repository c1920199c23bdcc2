/* SPDX-License-Identifier: MIT */
/*
 * The vkmt PCI device: thin QEMU 10.0 glue over the device engine in
 * hw-device/core. It owns the BARs (registers, MSI-X, control memory, the
 * aperture), routes register accesses and doorbells to the engine, raises
 * interrupts, exposes properties, statistics and a trim control through QOM
 * (so qom-get / qom-set over QMP reach them with no QAPI change), turns
 * engine events into trace points and, with "event-log", into an event log
 * file (vkmt_evlog.c), turns guest mistakes into LOG_GUEST_ERROR, resets
 * with the machine, and migrates (below). Protocol: protocol/PROTOCOL.md.
 *
 * Backends (property "backend"): mem (default) maps the aperture onto host
 * memory; virgl, in a QEMU built with virglrenderer and OpenGL, puts a GL
 * buffer resource behind every allocation and keeps the aperture as the
 * guest's staging view of it (docs/VIRGL.md).
 *
 * Doorbell modes (property "doorbell": inline, ioeventfd, iothread) decide
 * which thread processes a queue; docs/DEVICE.md weighs them. Every engine
 * call happens under one mutex, so the modes differ only in that.
 *
 * Lock discipline (docs/DEVICE.md): nothing that can re-enter QEMU runs with
 * s->lock held. An MSI-X message is a DMA write to a guest-chosen address,
 * which can reach a bridge's config space and reset or unplug this device
 * inside the call; so the engine only records interrupts and continuations
 * under the lock, and vkmt_unlock() acts on them after dropping it, holding
 * a reference and stopping as soon as the device was reset or unrealized.
 *
 * Bounded work: one register write, doorbell or bottom half does at most
 * "work-bound" units (a command costs 1 + its elements, a torn-down object
 * VKMT_WORK_PER_OBJECT); the rest continues in the next run of work_bh, so a
 * guest cannot hold the BQL, the main loop or the iothread for longer than
 * that.
 *
 * Migration and savevm (docs/DEVICE.md): control memory and the aperture
 * are RAM and go with guest RAM; the engine's state goes as one snapshot
 * blob (core/snapshot.c), which the destination's engine checks value by
 * value. While the VM is stopped the device does no work, so RAM and the
 * engine's state stay in step; the engine writes control memory through a
 * host pointer, which dirty logging does not see, so stopping marks it all
 * dirty for the final RAM pass. With migrate-offered=discard, offered
 * content is discarded when a migration or savevm sets up, before any RAM
 * is sent. backend=virgl keeps content in GPU resources and stays blocked.
 */
#include "qemu/osdep.h" /* QEMU's rule: first, in a block of its own */

#include "block/aio.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-properties.h"
#include "migration/blocker.h"
#include "migration/misc.h"
#include "migration/vmstate.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/event_notifier.h"
#include "qemu/host-utils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memfd.h"
#include "qemu/module.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "system/hostmem.h"
#include "system/iothread.h"
#include "system/runstate.h"
#include "system/system.h"

#include "../core/vkmt_core.h"
#include "../trace.h"
#include "vkmt_evlog.h"
#include "vkmt_proto.h"

/* meson.build compiles core/backend_virgl.c exactly when QEMU has both
 * virglrenderer and OpenGL, which config-host.h records as these two. */
#if defined(VIRGL_VERSION_MAJOR) && defined(CONFIG_OPENGL)
#define VKMT_HAVE_VIRGL 1
#include "../core/backend_virgl.h"
#define VKMT_BACKENDS "mem, virgl"
#else
#define VKMT_BACKENDS "mem"
#endif

#define TYPE_VKMT "vkmt"
OBJECT_DECLARE_SIMPLE_TYPE(VkmtState, VKMT)

enum vkmt_backend_kind {
    BACKEND_MEM,
    BACKEND_VIRGL,
};

/* What a migration does with offered content (docs/DEVICE.md). */
enum {
    OFFERED_KEEP,
    OFFERED_DISCARD,
};

enum vkmt_doorbell_mode {
    DOORBELL_INLINE,
    DOORBELL_IOEVENTFD,
    DOORBELL_IOTHREAD,
};

typedef struct VkmtDoorbell {
    EventNotifier notifier;
    struct VkmtState *s;
    uint32_t queue;
    uint32_t *sh_tail;    /* the queue header's sh_sq_tail, guest RAM */
    uint32_t polled_tail; /* iothread: the sh_tail last acted on */
} VkmtDoorbell;

struct VkmtState {
    PCIDevice parent_obj;

    /* Properties. */
    uint32_t num_queues;
    uint64_t aperture_size;
    uint64_t budget; /* 0: half the aperture */
    uint32_t max_objects;
    bool guest_trim;
    bool events;             /* offer VKMT_F_EVENTS */
    uint32_t trim_period_ms; /* PERIODIC_TRIM events every this long; 0 off */
    QEMUTimer *trim_timer;
    uint32_t last_notified; /* queues the last "trim-notify" reached */
    char *pressure;     /* "off", "psi" or "cgroup:DIR": the budget policy */
    char *pressure_dir; /* cgroup:DIR's DIR */
    uint32_t pressure_period_ms;
    QEMUTimer *pressure_timer;
    uint64_t pressure_base; /* the budget configured, which pressure shrinks */
    char *backend;
    char *doorbell;
    char *event_log; /* path of the event log, or NULL */
    uint64_t event_log_size;
    HostMemoryBackend *memdev;
    IOThread *iothread;

    enum vkmt_backend_kind kind;
    enum vkmt_doorbell_mode mode;
    MemoryRegion regs;
    MemoryRegion ctrl;
    MemoryRegion aperture_own; /* used when no memdev is given */
    MemoryRegion *aperture;
    uint64_t nonlocal_size; /* property "nonlocal-size"; 0: no segment */
    MemoryRegion nonlocal;  /* in no BAR: demoted content, migrated as RAM */
    struct vkmt_backend *be;
    struct vkmt_core *core;
    QemuMutex lock; /* serializes every engine call */
    VkmtDoorbell doorbells[VKMT_MAX_QUEUES];
    uint32_t work_bound; /* property "work-bound" */
    QEMUBH *work_bh; /* rung queues and continued work; iothread mode: in the
                        iothread */
    QEMUBH *irq_bh;  /* iothread: raises interrupts under the BQL */
    /* Queues rung but not yet processed (atomic): ioeventfd, and any
     * deferred mode while the VM is stopped. */
    uint64_t pending;
    uint64_t irq_pending; /* queues whose interrupt is due (atomic) */
    bool more;            /* the engine left work for work_bh (atomic) */
    bool unrealized;      /* exit ran: a callout that returns must stop */
    uint32_t
        resets; /* device resets so far: a callout that returns re-checks */
    uint64_t last_trim;       /* bytes freed by the last "trim" request */
    int64_t step_start;       /* when the running engine call took s->lock */
    uint64_t longest_step_ns; /* the longest engine call: stats */
    bool removed;             /* the "removed" property */
    uint32_t poison;          /* "x-poison-completions" being written */
    bool deaf;                /* "x-deaf": doorbells are not processed */
    struct vkmt_backend_faults faults; /* "x-fault-*", in force from realize */
    VkmtEvlog evlog;
    Error *migration_blocker;   /* backend=virgl */
    int migrate_offered;        /* property "migrate-offered": OFFERED_* */
    NotifierWithReturn precopy; /* discards offers as a migration starts */
    bool precopy_added;
    VMChangeStateEntry *vm_state;
    bool stopped;  /* the VM is stopped: no engine work (s->lock) */
    uint8_t *snap; /* the engine's snapshot while it is saved or loaded */
    uint32_t snap_len;
    Notifier
        machine_done; /* backend=virgl: looks for virtio-gpu-gl at start-up */
    bool machine_done_added;
};

/* ---- the lock and the callouts made after it ---- */

/* Drive a level INTx line from isr: asserted exactly while a bit is set. */
static void vkmt_intx_update(VkmtState *s)
{
    uint32_t isr;

    qemu_mutex_lock(&s->lock);
    isr = vkmt_core_reg_read(s->core, VKMT_REG(isr_lo)) |
          vkmt_core_reg_read(s->core, VKMT_REG(isr_hi));
    qemu_mutex_unlock(&s->lock);
    pci_set_irq(PCI_DEVICE(s), isr != 0);
}

/* The device is the one the callouts started with. */
static bool vkmt_same_device(VkmtState *s, uint32_t resets)
{
    return !s->unrealized && s->resets == resets;
}

/*
 * Under the BQL, s->lock not held: send the MSI-X messages that are due, or
 * bring INTx in line with isr. Any of these calls may reset or unplug the
 * device (a message aimed at a bridge's config space): the reference keeps
 * the state alive and the rest is dropped once it was reset or unrealized.
 */
static void vkmt_callouts(VkmtState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint32_t resets = s->resets;
    uint64_t due;

    object_ref(OBJECT(s));
    due = qatomic_xchg(&s->irq_pending, 0);
    for (; due && vkmt_same_device(s, resets) && msix_enabled(pdev);
         due &= due - 1) {
        trace_vkmt_irq(ctz64(due), 1);
        msix_notify(pdev, ctz64(due) % s->num_queues);
    }
    if (vkmt_same_device(s, resets) && !msix_enabled(pdev)) {
        if (due) {
            trace_vkmt_irq(ctz64(due), 0);
        }
        vkmt_intx_update(s);
    }
    object_unref(OBJECT(s));
}

static void vkmt_irq_bh(void *opaque)
{
    vkmt_callouts(opaque);
}

/* Take s->lock for engine work, whose duration the "stats" report. */
static void vkmt_lock(VkmtState *s)
{
    qemu_mutex_lock(&s->lock);
    s->step_start = get_clock();
}

/*
 * Drop s->lock, then act on what the engine recorded under it: continued
 * work goes to work_bh; interrupts are raised here under the BQL, or from
 * irq_bh when this is the iothread. With the BQL the device may be gone on
 * return: callers touch nothing of it afterwards.
 */
static void vkmt_unlock(VkmtState *s)
{
    uint64_t took = get_clock() - s->step_start;

    s->longest_step_ns = MAX(s->longest_step_ns, took);
    qemu_mutex_unlock(&s->lock);
    if (qatomic_xchg(&s->more, false)) {
        qemu_bh_schedule(s->work_bh);
    }
    if (bql_locked()) {
        vkmt_callouts(s);
    } else if (qatomic_read(&s->irq_pending)) {
        qemu_bh_schedule(s->irq_bh);
    }
}

/* ---- engine callbacks (called with s->lock held: they only record) ---- */

static void vkmt_core_irq(void *opaque, uint32_t q)
{
    VkmtState *s = opaque;

    qatomic_or(&s->irq_pending, 1ull << q);
}

static void vkmt_core_more_work(void *opaque)
{
    VkmtState *s = opaque;

    qatomic_set(&s->more, true);
}

static void vkmt_core_guest_error(void *opaque, const char *msg)
{
    qemu_log_mask(LOG_GUEST_ERROR, "vkmt: %s\n", msg);
}

static void vkmt_core_event(void *opaque, const struct vkmt_event *ev)
{
    VkmtState *s = opaque;

    switch (ev->type) {
    case VKMT_EV_COMMAND:
        trace_vkmt_command(ev->queue, ev->opcode, ev->handle, ev->status);
        break;
    case VKMT_EV_QUEUE_CLAIM:
    case VKMT_EV_QUEUE_RELEASE:
    case VKMT_EV_QUEUE_ERROR:
        trace_vkmt_queue_state(vkmt_event_name(ev->type), ev->queue);
        break;
    case VKMT_EV_RESET:
        trace_vkmt_reset();
        break;
    case VKMT_EV_TRIM:
    case VKMT_EV_BUDGET:
        break; /* vkmt_trim and vkmt_budget trace the host's, with their outcome
                */
    default:
        trace_vkmt_alloc_state(vkmt_event_name(ev->type), ev->queue, ev->handle,
                               ev->priority, ev->status, ev->size);
        break;
    }
    vkmt_evlog_event(&s->evlog, ev);
}

/* Content the engine copied between the segments: dirty for migration. */
static void vkmt_core_wrote(void *opaque, bool nonlocal, uint64_t off,
                            uint64_t len)
{
    VkmtState *s = opaque;

    memory_region_set_dirty(nonlocal ? &s->nonlocal : s->aperture, off, len);
}

static const struct vkmt_core_ops vkmt_core_ops = {
    .raise_irq = vkmt_core_irq,
    .guest_error = vkmt_core_guest_error,
    .event = vkmt_core_event,
    .more_work = vkmt_core_more_work,
    .wrote = vkmt_core_wrote,
};

/* ---- registers and doorbells ---- */

static uint64_t vkmt_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    VkmtState *s = opaque;
    uint32_t val;

    qemu_mutex_lock(&s->lock);
    val = vkmt_core_reg_read(s->core, addr);
    qemu_mutex_unlock(&s->lock);
    trace_vkmt_reg_read(addr, val);
    return val;
}

static void vkmt_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    VkmtState *s = opaque;

    trace_vkmt_reg_write(addr, val);
    vkmt_lock(s);
    vkmt_core_reg_write(s->core, addr, val);
    /* Also brings INTx down once the guest cleared every status bit. */
    vkmt_unlock(s);
}

static const MemoryRegionOps vkmt_mmio_ops = {
    .read = vkmt_mmio_read,
    .write = vkmt_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* Rung queues (ioeventfd), then what the work bound left (all modes). */
static void vkmt_work_bh(void *opaque)
{
    VkmtState *s = opaque;
    uint64_t rung;

    vkmt_lock(s);
    if (s->stopped) {
        /* Nothing done, nothing to act on: vkmt_vm_state() runs this BH
         * again when the VM does. */
        qemu_mutex_unlock(&s->lock);
        return;
    }
    rung = qatomic_xchg(&s->pending, 0);
    for (; rung; rung &= rung - 1) {
        vkmt_core_kick(s->core, ctz64(rung));
    }
    vkmt_core_continue(s->core);
    vkmt_unlock(s);
}

/*
 * iothread: run the queue (only note it while the VM is stopped), noting
 * which tail the run saw at least.
 */
static void vkmt_doorbell_run(VkmtDoorbell *db)
{
    VkmtState *s = db->s;

    db->polled_tail = qatomic_load_acquire(db->sh_tail);
    vkmt_lock(s);
    if (s->stopped) {
        qatomic_or(&s->pending, 1ull << db->queue);
    } else {
        vkmt_core_kick(s->core, db->queue);
    }
    vkmt_unlock(s);
}

/*
 * iothread: while the iothread busy-polls (its poll-max-ns), a tail the
 * guest published is seen without the eventfd's wake-up, which costs the
 * guest tens of microseconds on a loaded host. It reads only the tail and
 * compares it with the last one acted on: a guest that scribbles on it
 * causes at most one kick per change, no more than ringing would.
 */
static bool vkmt_doorbell_poll(void *opaque)
{
    VkmtDoorbell *db = container_of(opaque, VkmtDoorbell, notifier);

    return qatomic_load_acquire(db->sh_tail) != db->polled_tail;
}

static void vkmt_doorbell_poll_ready(EventNotifier *n)
{
    vkmt_doorbell_run(container_of(n, VkmtDoorbell, notifier));
}

static void vkmt_doorbell_event(EventNotifier *n)
{
    VkmtDoorbell *db = container_of(n, VkmtDoorbell, notifier);
    VkmtState *s = db->s;

    if (!event_notifier_test_and_clear(n)) {
        return;
    }
    if (s->mode == DOORBELL_IOTHREAD) {
        vkmt_doorbell_run(db);
    } else {
        qatomic_or(&s->pending, 1ull << db->queue);
        qemu_bh_schedule(s->work_bh);
    }
}

/* Route each queue's doorbell to an eventfd served by the main loop or the
 * iothread. */
static void vkmt_doorbells_bind(VkmtState *s)
{
    for (uint32_t q = 0; q < s->num_queues; q++) {
        VkmtDoorbell *db = &s->doorbells[q];

        db->s = s;
        db->queue = q;
        db->sh_tail =
            (uint32_t *)((uint8_t *)memory_region_get_ram_ptr(&s->ctrl) +
                         (size_t)q * VKMT_QUEUE_STRIDE +
                         offsetof(struct vkmt_queue_hdr, sh_sq_tail));
        db->polled_tail = qatomic_read(db->sh_tail);
        event_notifier_init(&db->notifier, 0);
        if (s->iothread) {
            aio_set_event_notifier(iothread_get_aio_context(s->iothread),
                                   &db->notifier, vkmt_doorbell_event,
                                   vkmt_doorbell_poll,
                                   vkmt_doorbell_poll_ready);
        } else {
            event_notifier_set_handler(&db->notifier, vkmt_doorbell_event);
        }
        memory_region_add_eventfd(&s->regs, VKMT_REG_DOORBELL(q), 4, false, 0,
                                  &db->notifier);
    }
}

/*
 * Runs in the iothread (aio_wait_bh_oneshot): between two of its handlers,
 * so none is running now, and after this none runs again.
 */
static void vkmt_iothread_detach(void *opaque)
{
    VkmtState *s = opaque;
    AioContext *ctx = iothread_get_aio_context(s->iothread);

    for (uint32_t q = 0; q < s->num_queues; q++) {
        aio_set_event_notifier(ctx, &s->doorbells[q].notifier, NULL, NULL,
                               NULL);
    }
    qemu_bh_delete(s->work_bh);
}

/* Stop doorbells and bottom halves; after this no thread enters the engine. */
static void vkmt_doorbells_stop(VkmtState *s)
{
    if (s->mode != DOORBELL_INLINE) {
        for (uint32_t q = 0; q < s->num_queues; q++) {
            memory_region_del_eventfd(&s->regs, VKMT_REG_DOORBELL(q), 4, false,
                                      0, &s->doorbells[q].notifier);
        }
    }
    if (s->mode == DOORBELL_IOTHREAD) {
        /* A handler may be running there now: detach from inside and wait. */
        aio_wait_bh_oneshot(iothread_get_aio_context(s->iothread),
                            vkmt_iothread_detach, s);
        qemu_bh_delete(s->irq_bh);
    } else {
        for (uint32_t q = 0; s->mode == DOORBELL_IOEVENTFD && q < s->num_queues;
             q++) {
            event_notifier_set_handler(&s->doorbells[q].notifier, NULL);
        }
        qemu_bh_delete(s->work_bh);
    }
    for (uint32_t q = 0; s->mode != DOORBELL_INLINE && q < s->num_queues; q++) {
        event_notifier_cleanup(&s->doorbells[q].notifier);
    }
    s->work_bh = s->irq_bh = NULL;
}

/* ---- QOM properties beyond the static ones ---- */

static void vkmt_get_stats(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    struct vkmt_stats st = { 0 };
    uint64_t evlog_dropped = 0, longest_step_ns = 0;

    if (s->core) {
        qemu_mutex_lock(&s->lock);
        vkmt_core_get_stats(s->core, &st);
        evlog_dropped = s->evlog.dropped;
        longest_step_ns = s->longest_step_ns;
        qemu_mutex_unlock(&s->lock);
    }
    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
#define STAT(f) visit_type_uint64(v, #f, &st.f, errp)
    if (STAT(commands) && STAT(command_errors) && STAT(guest_errors) &&
        STAT(queue_errors) && STAT(devices) && STAT(allocations) &&
        STAT(resources) && STAT(committed_bytes) && STAT(offered_bytes) &&
        STAT(budget_bytes) && STAT(offers) && STAT(discards) &&
        STAT(discarded_bytes) && STAT(decommits) && STAT(reclaim_ok) &&
        STAT(reclaim_discarded) && STAT(reclaim_not_committed) && STAT(trims) &&
        STAT(trimmed_bytes) && STAT(faults_commit) && STAT(faults_discard) &&
        STAT(stalls) && STAT(stall_ns) && STAT(events) && STAT(events_lost) &&
        STAT(demoted_bytes) && STAT(demotions) && STAT(promotions) &&
        visit_type_uint64(v, "evlog_dropped", &evlog_dropped, errp) &&
        visit_type_uint64(v, "longest_step_ns", &longest_step_ns, errp)) {
#undef STAT
        bool ok = true;

        for (int i = 0; ok && i < VKMT_PRIO_CLASSES; i++) {
            const struct {
                const char *what;
                uint64_t *val;
            } per[] = {
                { "offered_bytes", &st.offered_bytes_by_prio[i] },
                { "offered_bytes_total", &st.offered_bytes_total_by_prio[i] },
                { "discarded_bytes", &st.discarded_bytes_by_prio[i] },
                { "reclaim_ok", &st.reclaims_by_prio[i][VKMT_RECLAIM_OK] },
                { "reclaim_discarded",
                  &st.reclaims_by_prio[i][VKMT_RECLAIM_DISCARDED] },
                { "reclaim_not_committed",
                  &st.reclaims_by_prio[i][VKMT_RECLAIM_NOT_COMMITTED] },
            };

            for (size_t j = 0; ok && j < ARRAY_SIZE(per); j++) {
                char key[48];

                /* Index i is VKMT_PRIO_* - 1 (vkmt_prio_index). */
                snprintf(key, sizeof(key), "%s_%s", per[j].what,
                         vkmt_prio_name(i + 1));
                ok = visit_type_uint64(v, key, per[j].val, errp);
            }
        }
        if (ok) {
            visit_check_struct(v, errp);
        }
    }
    visit_end_struct(v, NULL);
}

static uint64_t vkmt_engine_budget(VkmtState *s)
{
    return vkmt_core_reg_read(s->core, VKMT_REG(budget_lo)) |
           (uint64_t)vkmt_core_reg_read(s->core, VKMT_REG(budget_hi)) << 32;
}

static void vkmt_get_budget(Object *obj, Visitor *v, const char *name,
                            void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    uint64_t budget = s->budget;

    if (s->core) {
        qemu_mutex_lock(&s->lock);
        budget = vkmt_engine_budget(s);
        qemu_mutex_unlock(&s->lock);
    }
    visit_type_size(v, name, &budget, errp);
}

static void vkmt_set_budget(Object *obj, Visitor *v, const char *name,
                            void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    uint64_t budget;

    if (!visit_type_size(v, name, &budget, errp)) {
        return;
    }
    s->budget = budget;
    if (s->core) {
        trace_vkmt_budget(budget);
        vkmt_lock(s);
        vkmt_core_set_budget(s->core, budget);
        s->pressure_base = vkmt_engine_budget(s);
        vkmt_evlog_flush(&s->evlog);
        /* BUDGET_CHANGED events raise their interrupts here. */
        vkmt_unlock(s);
    }
}

/*
 * "queue-budget": write "QUEUE:SIZE" to give a claimed queue (one guest
 * process) a budget of its own, "QUEUE:0" to lift it; reads back every
 * queue's that has one, as "QUEUE:BYTES" joined by commas.
 */
static void vkmt_get_queue_budget(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    g_autoptr(GString) out = g_string_new("");
    g_autofree char *text = NULL;

    if (s->core) {
        qemu_mutex_lock(&s->lock);
        for (uint32_t q = 0; q < s->num_queues; q++) {
            struct vkmt_queue_stats st;

            vkmt_core_get_queue_stats(s->core, q, &st);
            if (st.budget) {
                g_string_append_printf(out, "%s%u:%" PRIu64,
                                       out->len ? "," : "", q, st.budget);
            }
        }
        qemu_mutex_unlock(&s->lock);
    }
    text = g_string_free(g_steal_pointer(&out), false);
    visit_type_str(v, name, &text, errp);
}

static void vkmt_set_queue_budget(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    g_autofree char *text = NULL;
    uint32_t nq = s->num_queues;
    const char *end;
    unsigned int q;
    uint64_t size;
    int err;

    if (!visit_type_str(v, name, &text, errp)) {
        return;
    }
    if (qemu_strtoui(text, &end, 10, &q) < 0 || *end != ':' ||
        qemu_strtosz(end + 1, NULL, &size) < 0) {
        error_setg(errp, "vkmt: %s wants QUEUE:SIZE (e.g. 1:64M), not '%s'",
                   name, text);
        return;
    }
    if (!s->core) {
        error_setg(errp, "vkmt: %s needs a realized device", name);
        return;
    }
    vkmt_lock(s);
    err = vkmt_core_set_queue_budget(s->core, q, size);
    vkmt_evlog_flush(&s->evlog);
    /* BUDGET_CHANGED raises its interrupt here; s is not touched after. */
    vkmt_unlock(s);
    if (err == -ENOENT) {
        error_setg(errp, "vkmt: queue %u is free: no guest process holds it",
                   q);
    } else if (err < 0) {
        error_setg(errp,
                   "vkmt: queue %u of %u or %" PRIu64 " bytes is out "
                   "of range (at most the aperture)",
                   q, nq, size);
    }
}

/* "queue-stats": one struct per claimed queue, in queue order. */
static void vkmt_get_queue_stats(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    struct vkmt_queue_stats st[VKMT_MAX_QUEUES] = { 0 };
    bool ok;

    if (s->core) {
        qemu_mutex_lock(&s->lock);
        for (uint32_t q = 0; q < s->num_queues; q++) {
            vkmt_core_get_queue_stats(s->core, q, &st[q]);
        }
        qemu_mutex_unlock(&s->lock);
    }
    if (!visit_start_list(v, name, NULL, 0, errp)) {
        return;
    }
    ok = true;
    for (uint32_t q = 0; ok && q < VKMT_MAX_QUEUES; q++) {
        if (!st[q].claimed) {
            continue;
        }
        ok = visit_start_struct(v, NULL, NULL, 0, errp);
        if (!ok) {
            break;
        }
#define QSTAT(f) visit_type_uint64(v, #f, &st[q].f, errp)
        ok = visit_type_uint32(v, "queue", &q, errp) && QSTAT(budget) &&
             QSTAT(budget_local) && QSTAT(committed) && QSTAT(resident) &&
             QSTAT(offered) && QSTAT(demoted) && QSTAT(discarded);
#undef QSTAT
        if (ok) {
            ok = visit_check_struct(v, errp);
        }
        visit_end_struct(v, NULL);
    }
    if (ok) {
        visit_check_list(v, errp);
    }
    visit_end_list(v, NULL);
}

static void vkmt_get_trim(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    visit_type_size(v, name, &VKMT(obj)->last_trim, errp);
}

/*
 * "trim" (opaque NULL) discards offered content now; "trim-notify" asks
 * the guest's processes to give memory back (TRIM_TO_BUDGET events).
 */
static void vkmt_set_trim(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    uint64_t bytes;

    if (!visit_type_size(v, name, &bytes, errp)) {
        return;
    }
    if (!s->core) {
        error_setg(errp, "vkmt: %s needs a realized device", name);
        return;
    }
    vkmt_lock(s);
    /* Records first: the callouts after the lock may reset or unplug it. */
    if (opaque) {
        s->last_notified =
            vkmt_core_trim_notify(s->core, bytes ? bytes : UINT64_MAX);
        trace_vkmt_trim_notify(bytes, s->last_notified);
    } else {
        s->last_trim = vkmt_core_trim(s->core, bytes ? bytes : UINT64_MAX);
        trace_vkmt_trim(bytes, s->last_trim);
    }
    vkmt_evlog_flush(&s->evlog);
    vkmt_unlock(s);
}

static void vkmt_get_trim_notify(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    visit_type_uint32(v, name, &VKMT(obj)->last_notified, errp);
}

/* The periodic trim's tick, on the virtual clock: a stopped VM gets none. */
static void vkmt_trim_tick(void *opaque)
{
    VkmtState *s = opaque;

    /* Armed first: after the callouts the device may be gone (unrealize
     * frees the timer with it). */
    timer_mod(s->trim_timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->trim_period_ms);
    vkmt_lock(s);
    vkmt_core_periodic_trim(s->core, false);
    vkmt_evlog_flush(&s->evlog);
    vkmt_unlock(s);
}

/* A new period: the guest's processes restart their periodic trim. */
static void vkmt_trim_period_start(VkmtState *s)
{
    if (!s->trim_period_ms) {
        timer_del(s->trim_timer);
        return;
    }
    timer_mod(s->trim_timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->trim_period_ms);
    vkmt_lock(s);
    vkmt_core_periodic_trim(s->core, true);
    vkmt_evlog_flush(&s->evlog);
    vkmt_unlock(s); /* the device may be gone on return */
}

/* A cgroup v2 memory file's number: "max" is no limit. */
static bool vkmt_read_cgroup(VkmtState *s, const char *name, uint64_t *out)
{
    g_autofree char *path = g_build_filename(s->pressure_dir, name, NULL);
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return false;
    }
    g_strstrip(text); /* the kernel ends the value with a newline */
    if (!strcmp(text, "max")) {
        *out = UINT64_MAX;
        return true;
    }
    return qemu_strtou64(text, NULL, 10, out) == 0;
}

/*
 * The pressure policy's inputs (docs/DEVICE.md), read before the device's
 * lock is taken: PSI's some avg10 in permille, or the cgroup's
 * memory.current and memory.high. False when they cannot be read (the
 * budget then stays).
 */
static bool vkmt_pressure_read(VkmtState *s, uint32_t *pm, uint64_t *current,
                               uint64_t *high)
{
    g_autofree char *text = NULL;

    if (s->pressure_dir) {
        return vkmt_read_cgroup(s, "memory.current", current) &&
               vkmt_read_cgroup(s, "memory.high", high);
    }
    return g_file_get_contents("/proc/pressure/memory", &text, NULL, NULL) &&
           vkmt_psi_some_avg10(text, pm) == 0;
}

/*
 * Every pressure-period-ms of guest time: apply the budget the host's
 * pressure allows when it moved by 1/64 of the base or more (smaller
 * moves would only churn events). The change is logged and posted as any
 * budget change.
 */
static void vkmt_pressure_tick(void *opaque)
{
    VkmtState *s = opaque;
    uint64_t current = 0, high = 0, now, want;
    struct vkmt_stats st;
    uint32_t pm = 0;

    /* Armed first: after the callouts the device may be gone. */
    timer_mod(s->pressure_timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->pressure_period_ms);
    if (vkmt_pressure_read(s, &pm, &current, &high)) {
        vkmt_lock(s);
        vkmt_core_get_stats(s->core, &st);
        now = vkmt_engine_budget(s);
        want = s->pressure_dir ? vkmt_pressure_budget_cgroup(s->pressure_base,
                                                             st.committed_bytes,
                                                             current, high)
                               : vkmt_pressure_budget_psi(s->pressure_base, pm);
        if ((want > now ? want - now : now - want) >= s->pressure_base / 64) {
            trace_vkmt_budget(want);
            vkmt_core_set_budget(s->core, want);
            vkmt_evlog_flush(&s->evlog);
        }
        vkmt_unlock(s);
    }
}

static bool vkmt_parse_pressure(VkmtState *s, Error **errp)
{
    const char *p = s->pressure ? s->pressure : "off";

    if (strcmp(p, "off") && s->pressure_period_ms < 10) {
        error_setg(errp, "vkmt: pressure-period-ms must be at least 10");
        return false;
    }
    if (!strcmp(p, "off") || !strcmp(p, "psi")) {
        return true;
    }
    if (g_str_has_prefix(p, "cgroup:") && p[7]) {
        s->pressure_dir = g_strdup(p + 7);
        return true;
    }
    error_setg(errp, "vkmt: pressure=%s: use off, psi or cgroup:DIR", p);
    return false;
}

static void vkmt_get_trim_period(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    visit_type_uint32(v, name, &VKMT(obj)->trim_period_ms, errp);
}

static void vkmt_set_trim_period(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    uint32_t ms;

    if (!visit_type_uint32(v, name, &ms, errp)) {
        return;
    }
    s->trim_period_ms = ms;
    if (s->core) {
        vkmt_trim_period_start(s);
    }
}

/* Faults on purpose (vkmt_core_set_faults), to test a guest driver. */
static bool vkmt_apply_faults(VkmtState *s, Error **errp)
{
    if (!s->core) {
        error_setg(errp, "vkmt: faults need a realized device");
        return false;
    }
    vkmt_lock(s);
    vkmt_core_set_faults(s->core, s->poison, s->deaf);
    /* Work a deaf device noted is scheduled, interrupts raised. */
    vkmt_unlock(s);
    return true;
}

static void vkmt_set_poison(Object *obj, Visitor *v, const char *name,
                            void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);

    if (visit_type_uint32(v, name, &s->poison, errp)) {
        vkmt_apply_faults(s, errp);
        s->poison = 0; /* the engine counts them down */
    }
}

static bool vkmt_get_deaf(Object *obj, Error **errp)
{
    return VKMT(obj)->deaf;
}

static void vkmt_set_deaf(Object *obj, bool deaf, Error **errp)
{
    VkmtState *s = VKMT(obj);
    bool was = s->deaf;

    s->deaf = deaf;
    if (!vkmt_apply_faults(s, errp)) {
        s->deaf = was;
    }
}

/*
 * Injected backend faults (vkmt_core_set_backend_faults): kept here, so that
 * they can be set on the command line too, and put in force from realize on.
 */
static void vkmt_put_faults(VkmtState *s, const struct vkmt_backend_faults *f,
                            Error **errp)
{
    int err = 0;

    if (f->stall_ns > VKMT_FAULT_STALL_MAX_NS) {
        error_setg(errp, "vkmt: x-fault-stall-ns is at most %u",
                   VKMT_FAULT_STALL_MAX_NS);
        return;
    }
    if (s->core) {
        qemu_mutex_lock(&s->lock);
        err = vkmt_core_set_backend_faults(s->core, f);
        qemu_mutex_unlock(&s->lock);
    }
    if (err < 0) {
        error_setg_errno(errp, -err, "vkmt: cannot set the faults");
        return;
    }
    s->faults = *f;
}

/* "x-fault-commit", "x-fault-discard", "x-fault-stall": @opaque is the kind. */
static void vkmt_get_fault_rate(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    char buf[32];
    char *text = buf;

    vkmt_fault_rate_format(&VKMT(obj)->faults.rate[(uintptr_t)opaque], buf,
                           sizeof(buf));
    visit_type_str(v, name, &text, errp);
}

static void vkmt_set_fault_rate(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    struct vkmt_backend_faults f = s->faults;
    g_autofree char *text = NULL;

    if (!visit_type_str(v, name, &text, errp)) {
        return;
    }
    if (vkmt_fault_rate_parse(text, &f.rate[(uintptr_t)opaque]) < 0) {
        error_setg(errp,
                   "vkmt: %s=%s: use off, every:N (N >= 1) or rate:P "
                   "(0 <= P <= 1, to a millionth)",
                   name, text);
        return;
    }
    vkmt_put_faults(s, &f, errp);
}

/* "x-fault-seed" and "x-fault-stall-ns": @opaque is the field. */
static void vkmt_get_fault_u64(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    uint64_t val =
        *(uint64_t *)((char *)&VKMT(obj)->faults + (uintptr_t)opaque);

    visit_type_uint64(v, name, &val, errp);
}

static void vkmt_set_fault_u64(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    struct vkmt_backend_faults f = s->faults;

    if (visit_type_uint64(v, name, (uint64_t *)((char *)&f + (uintptr_t)opaque),
                          errp)) {
        vkmt_put_faults(s, &f, errp);
    }
}

/* The longest engine call since realize or the last write (of any value:
 * it restarts the measurement), in nanoseconds. */
static void vkmt_get_longest_step(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    uint64_t ns = 0;

    if (s->core) { /* the lock exists from realize on */
        qemu_mutex_lock(&s->lock);
        ns = s->longest_step_ns;
        qemu_mutex_unlock(&s->lock);
    }
    visit_type_uint64(v, name, &ns, errp);
}

static void vkmt_set_longest_step(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    uint64_t ns;

    if (visit_type_uint64(v, name, &ns, errp) && s->core) {
        qemu_mutex_lock(&s->lock);
        s->longest_step_ns = 0;
        qemu_mutex_unlock(&s->lock);
    }
}

#ifdef VKMT_HAVE_VIRGL
/* The virgl backend's counters and GL renderer (docs/VIRGL.md). */
static void vkmt_get_virgl(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    VkmtState *s = VKMT(obj);
    struct vkmt_virgl_info in;
    char *renderer = in.renderer;

    if (!s->be || vkmt_backend_virgl_info(s->be, &in) < 0) {
        error_setg(
            errp,
            "vkmt: virgl statistics need a realized device with backend=virgl");
        return;
    }
    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
    if (visit_type_uint64(v, "resources", &in.resources, errp) &&
        visit_type_uint64(v, "resource_bytes", &in.resource_bytes, errp) &&
        visit_type_uint64(v, "textures", &in.textures, errp) &&
        visit_type_uint64(v, "creates", &in.creates, errp) &&
        visit_type_uint64(v, "destroys", &in.destroys, errp) &&
        visit_type_uint64(v, "writes", &in.writes, errp) &&
        visit_type_uint64(v, "reads", &in.reads, errp) &&
        visit_type_uint64(v, "gl_memory", &in.gl_memory, errp) &&
        visit_type_str(v, "renderer", &renderer, errp)) {
        visit_check_struct(v, errp);
    }
    visit_end_struct(v, NULL);
}
#endif

static bool vkmt_get_removed(Object *obj, Error **errp)
{
    return VKMT(obj)->removed;
}

static void vkmt_set_removed(Object *obj, bool removed, Error **errp)
{
    VkmtState *s = VKMT(obj);

    if (!s->core) {
        error_setg(errp, "vkmt: removal needs a realized device");
        return;
    }
    qemu_mutex_lock(&s->lock);
    vkmt_core_set_removed(s->core, removed);
    qemu_mutex_unlock(&s->lock);
    s->removed = removed;
}

/* ---- migration and savevm ---- */

static const char *const vkmt_offered_names[] = { "keep", "discard" };
static const QEnumLookup vkmt_offered_lookup = {
    .array = vkmt_offered_names,
    .size = ARRAY_SIZE(vkmt_offered_names),
};

static int vkmt_get_migrate_offered(Object *obj, Error **errp)
{
    return VKMT(obj)->migrate_offered;
}

static void vkmt_set_migrate_offered(Object *obj, int value, Error **errp)
{
    VKMT(obj)->migrate_offered = value;
}

/*
 * A migration or savevm sets up: with migrate-offered=discard, every
 * offered allocation loses its content as in a host trim (the guest's
 * reclaim then answers DISCARDED), before the first RAM pass, which sends
 * the punched pages as zero pages. Device pre_save would be too late: RAM
 * goes before device state.
 */
static int vkmt_precopy_notify(NotifierWithReturn *n, void *data, Error **errp)
{
    VkmtState *s = container_of(n, VkmtState, precopy);
    PrecopyNotifyData *pnd = data;
    uint64_t freed;

    if (pnd->reason != PRECOPY_NOTIFY_SETUP ||
        s->migrate_offered != OFFERED_DISCARD) {
        return 0;
    }
    qemu_mutex_lock(&s->lock);
    freed = vkmt_core_trim(s->core, UINT64_MAX);
    vkmt_evlog_flush(&s->evlog);
    qemu_mutex_unlock(&s->lock);
    trace_vkmt_trim(0, freed);
    return 0;
}

/*
 * Stopped (the end of a migration, savevm), the device does no work:
 * doorbells that still come in are noted in s->pending, which migrates,
 * and what the engine left waits for the VM to run again. Control memory
 * the engine wrote through its host pointer was not dirty-logged: all of it
 * goes in the final RAM pass.
 */
static void vkmt_vm_state(void *opaque, bool running, RunState state)
{
    VkmtState *s = opaque;

    qemu_mutex_lock(&s->lock);
    s->stopped = !running;
    for (uint32_t q = 0;
         !running && s->mode != DOORBELL_INLINE && q < s->num_queues; q++) {
        if (event_notifier_test_and_clear(&s->doorbells[q].notifier)) {
            qatomic_or(&s->pending, 1ull << q);
        }
    }
    qemu_mutex_unlock(&s->lock);
    if (running) {
        /* Noted doorbells, the engine's leftovers, interrupts due. */
        qemu_bh_schedule(s->work_bh);
    } else {
        memory_region_set_dirty(&s->ctrl, 0, memory_region_size(&s->ctrl));
    }
}

static int vkmt_pre_save(void *opaque)
{
    VkmtState *s = opaque;
    size_t len;

    qemu_mutex_lock(&s->lock);
    len = vkmt_core_snapshot_save(s->core, NULL, 0);
    s->snap = g_malloc(len);
    vkmt_core_snapshot_save(s->core, s->snap, len);
    qemu_mutex_unlock(&s->lock);
    s->snap_len = len; /* at most vkmt_core_snapshot_max(): 32 bits */
    return 0;
}

static int vkmt_post_save(void *opaque)
{
    VkmtState *s = opaque;

    g_clear_pointer(&s->snap, g_free);
    return 0;
}

static int vkmt_pre_load(void *opaque)
{
    return vkmt_post_save(opaque);
}

/* Before the snapshot's buffer is allocated: its length is input too. */
static bool vkmt_snap_len_ok(void *opaque, int version_id)
{
    VkmtState *s = opaque;
    size_t max = vkmt_core_snapshot_max(s->core);

    if (s->snap_len == 0 || s->snap_len > max) {
        error_report("vkmt: the device state in the stream claims %" PRIu32
                     " bytes; a valid one takes 1 to %zu",
                     s->snap_len, max);
        return false;
    }
    return true;
}

static int vkmt_post_load(void *opaque, int version_id)
{
    VkmtState *s = opaque;
    char why[192];
    int err;

    qemu_mutex_lock(&s->lock);
    err = vkmt_core_snapshot_load(s->core, s->snap, s->snap_len, why,
                                  sizeof(why));
    if (err == 0) {
        vkmt_core_get_faults(s->core, &s->removed, &s->deaf, &s->faults);
    }
    qemu_mutex_unlock(&s->lock);
    g_clear_pointer(&s->snap, g_free);
    if (err < 0) {
        error_report("vkmt: the device state in the stream is refused: %s",
                     why);
        return err;
    }
    return 0;
}

/*
 * Version 1. The engine's state is one blob with a version of its own
 * (VKMT_SNAPSHOT_VERSION), which the engine checks; doorbells and
 * interrupts the stopped device noted but did not act on go beside it.
 */
static const VMStateDescription vkmt_vmstate = {
    .name = TYPE_VKMT,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = vkmt_pre_save,
    .post_save = vkmt_post_save,
    .pre_load = vkmt_pre_load,
    .post_load = vkmt_post_load,
    .fields =
        (const VMStateField[]){
            VMSTATE_PCI_DEVICE(parent_obj, VkmtState),
            VMSTATE_MSIX(parent_obj, VkmtState),
            VMSTATE_UINT64(pending, VkmtState),
            VMSTATE_UINT64(irq_pending, VkmtState),
            VMSTATE_UINT32(snap_len, VkmtState),
            VMSTATE_VALIDATE("engine snapshot length", vkmt_snap_len_ok),
            VMSTATE_VBUFFER_ALLOC_UINT32(snap, VkmtState, 0, NULL, snap_len),
            VMSTATE_END_OF_LIST() },
};

/* ---- life cycle ---- */

static bool vkmt_parse_mode(VkmtState *s, Error **errp)
{
    const char *mode = s->doorbell ? s->doorbell : "inline";

    if (!strcmp(mode, "inline")) {
        s->mode = DOORBELL_INLINE;
    } else if (!strcmp(mode, "ioeventfd")) {
        s->mode = DOORBELL_IOEVENTFD;
    } else if (!strcmp(mode, "iothread")) {
        s->mode = DOORBELL_IOTHREAD;
    } else {
        error_setg(errp, "vkmt: doorbell=%s: use inline, ioeventfd or iothread",
                   mode);
        return false;
    }
    if ((s->mode == DOORBELL_IOTHREAD) != (s->iothread != NULL)) {
        error_setg(errp, "vkmt: doorbell=iothread and iothread= go together");
        return false;
    }
    return true;
}

static bool vkmt_parse_backend(VkmtState *s, Error **errp)
{
    const char *name = s->backend ? s->backend : "mem";

    if (!strcmp(name, "mem")) {
        s->kind = BACKEND_MEM;
#ifdef VKMT_HAVE_VIRGL
    } else if (!strcmp(name, "virgl")) {
        s->kind = BACKEND_VIRGL;
#endif
    } else {
        error_setg(
            errp,
            "vkmt: backend=%s is not available in this QEMU (available: %s)",
            name, VKMT_BACKENDS);
        return false;
    }
    return true;
}

#ifdef VKMT_HAVE_VIRGL
#define VKMT_VIRGL_PEER                                                        \
    "virtio-gpu-gl is in this machine too, and virglrenderer has one user "    \
    "per process"

/*
 * virtio-gpu-gl starts virglrenderer only at its guest driver's first
 * command and then fails (-EBUSY) if the backend holds it: look for the
 * device itself instead. TYPE_VIRTIO_GPU_GL, spelled out to keep
 * virtio-gpu's headers out.
 */
static bool vkmt_virgl_peer(void)
{
    bool ambiguous = false;

    return object_resolve_path_type("", "virtio-gpu-gl-device", &ambiguous) ||
           ambiguous;
}

/* A virtio-gpu-gl created after this device on the command line: stop
 * before the guest runs rather than leave one of the two dead. */
static void vkmt_machine_done(Notifier *n, void *data)
{
    if (vkmt_virgl_peer()) {
        error_report("vkmt: backend=virgl: %s", VKMT_VIRGL_PEER);
        exit(1);
    }
}
#endif

/* What holds allocation content, over the aperture mapping @base (its file @fd,
 * or -1). */
static bool vkmt_create_backend(VkmtState *s, uint64_t size, int fd, void *base,
                                Error **errp)
{
    int err;

#ifdef VKMT_HAVE_VIRGL
    if (s->kind == BACKEND_VIRGL) {
        char why[256];

        if (vkmt_virgl_peer()) {
            error_setg(errp, "vkmt: backend=virgl: %s", VKMT_VIRGL_PEER);
            return false;
        }
        err =
            vkmt_backend_virgl_create(size, fd, base, &s->be, why, sizeof(why));
        if (err < 0) {
            error_setg(errp, "vkmt: backend=virgl: %s",
                       why[0] ? why : strerror(-err));
            return false;
        }
        if (!phase_check(PHASE_MACHINE_READY)) {
            s->machine_done.notify = vkmt_machine_done;
            qemu_add_machine_init_done_notifier(&s->machine_done);
            s->machine_done_added = true;
        }
        return true;
    }
#endif
    err = vkmt_backend_mem_create(size, fd, base, &s->be);
    if (err < 0) {
        error_setg_errno(errp, -err, "vkmt: cannot set up the memory backend");
        return false;
    }
    return true;
}

/* The aperture BAR: the user's memory backend, or a memfd of our own. */
static bool vkmt_init_aperture(VkmtState *s, Error **errp)
{
    uint64_t size;
    int fd;

    if (s->memdev) {
        if (host_memory_backend_is_mapped(s->memdev)) {
            error_setg(errp, "vkmt: memdev '%s' is already in use",
                       object_get_canonical_path_component(OBJECT(s->memdev)));
            return false;
        }
        MemoryRegion *mr = host_memory_backend_get_memory(s->memdev);

        fd = memory_region_get_fd(mr);
        /*
         * A private (share=off) mapping of a file keeps copies of the pages
         * the guest wrote: punching the file frees none of them, and a
         * discarded range would read the file's old bytes, not zeros.
         * Private anonymous memory (memory-backend-ram) is fine: dropping
         * its pages frees them and they read as zeros.
         */
        if (fd >= 0 && !qemu_ram_is_shared(mr->ram_block)) {
            error_setg(
                errp,
                "vkmt: memdev '%s' maps its file private (share=off): "
                "discarded "
                "allocations would keep their memory and content; use share=on",
                object_get_canonical_path_component(OBJECT(s->memdev)));
            return false;
        }
        s->aperture = mr;
        host_memory_backend_set_mapped(s->memdev, true);
        vmstate_register_ram(s->aperture, DEVICE(s));
    } else {
        if (!is_power_of_2(s->aperture_size) ||
            s->aperture_size < VKMT_PAGE_SIZE) {
            error_setg(errp,
                       "vkmt: aperture-size must be a power of two >= 4 KiB");
            return false;
        }
        fd = qemu_memfd_create("vkmt-aperture", s->aperture_size, false, 0, 0,
                               errp);
        if (fd < 0) {
            return false;
        }
        /* The RAM block owns the fd from here on and closes it. */
        if (!memory_region_init_ram_from_fd(&s->aperture_own, OBJECT(s),
                                            "vkmt-aperture", s->aperture_size,
                                            RAM_SHARED, fd, 0, errp)) {
            close(fd);
            return false;
        }
        s->aperture = &s->aperture_own;
        /* Unlike memory_region_init_ram(), this does not make it migrate. */
        vmstate_register_ram(s->aperture, DEVICE(s));
    }
    size = memory_region_size(s->aperture);
    if (!is_power_of_2(size) || size < VKMT_PAGE_SIZE) {
        error_setg(errp,
                   "vkmt: the memdev's size must be a power of two >= 4 KiB");
        return false;
    }
    return vkmt_create_backend(s, size, fd,
                               memory_region_get_ram_ptr(s->aperture), errp);
}

/* Undo whatever realize set up; safe on a partly realized device. */
static void vkmt_teardown(VkmtState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (s->migration_blocker) {
        migrate_del_blocker(&s->migration_blocker);
    }
    if (s->precopy_added) {
        precopy_remove_notifier(&s->precopy);
        s->precopy_added = false;
    }
    if (s->vm_state) {
        qemu_del_vm_change_state_handler(s->vm_state);
        s->vm_state = NULL;
    }
    g_clear_pointer(&s->snap, g_free);
    if (s->machine_done_added) {
        qemu_remove_machine_init_done_notifier(&s->machine_done);
        s->machine_done_added = false;
    }
    if (s->work_bh) {
        vkmt_doorbells_stop(s);
    }
    g_clear_pointer(&s->trim_timer, timer_free);
    g_clear_pointer(&s->pressure_timer, timer_free);
    g_clear_pointer(&s->pressure_dir, g_free);
    msix_uninit_exclusive_bar(pdev);
    vkmt_core_destroy(s->core);
    s->core = NULL;
    vkmt_backend_destroy(s->be);
    s->be = NULL;
    if (s->aperture) {
        vmstate_unregister_ram(s->aperture, DEVICE(s));
    }
    if (s->memdev && s->aperture) {
        host_memory_backend_set_mapped(s->memdev, false);
    }
    /* memory_region_init_ram() registered the control RAM's migration name;
     * the RAM itself lives until RCU frees the device, and a device plugged
     * in its place before then needs the name. */
    if (s->ctrl.ram_block) {
        vmstate_unregister_ram(&s->ctrl, DEVICE(s));
    }
    if (s->nonlocal.ram_block) {
        vmstate_unregister_ram(&s->nonlocal, DEVICE(s));
    }
    s->aperture = NULL;
    /* After the engine: tearing it down logs the last destroys. */
    vkmt_evlog_close(&s->evlog);
    qemu_mutex_destroy(&s->lock);
}

/* The event log: truncated, and started with its header. */
static bool vkmt_open_event_log(VkmtState *s, Error **errp)
{
    return !s->event_log ||
           vkmt_evlog_open(&s->evlog, s->event_log, s->event_log_size, errp);
}

static void vkmt_realize(PCIDevice *pdev, Error **errp)
{
    VkmtState *s = VKMT(pdev);
    struct vkmt_core_config cfg = {
        .num_queues = s->num_queues,
        .budget = s->budget,
        .max_objects = s->max_objects,
        .features = VKMT_F_RESOURCES | VKMT_F_TEXTURES | VKMT_F_RESIDENCY |
                    VKMT_F_QUEUE_STATS |
                    (s->guest_trim ? VKMT_F_GUEST_TRIM : 0) |
                    (s->events ? VKMT_F_EVENTS : 0),
        .work_bound = s->work_bound,
        .nonlocal_size = s->nonlocal_size,
    };
    int err;

    if (s->num_queues == 0 || s->num_queues > VKMT_MAX_QUEUES) {
        error_setg(errp, "vkmt: queues must be 1..%u", VKMT_MAX_QUEUES);
        return;
    }
    if (!vkmt_parse_backend(s, errp) || !vkmt_parse_mode(s, errp) ||
        !vkmt_parse_pressure(s, errp)) {
        return;
    }
    if (s->nonlocal_size % VKMT_PAGE_SIZE ||
        s->nonlocal_size / VKMT_PAGE_SIZE >= UINT32_MAX) {
        error_setg(errp, "vkmt: nonlocal-size must be a multiple of 4 KiB "
                         "below 16 TiB");
        return;
    }
    qemu_mutex_init(&s->lock);
    if (!vkmt_open_event_log(s, errp) || !vkmt_init_aperture(s, errp) ||
        !memory_region_init_ram(&s->ctrl, OBJECT(s), "vkmt-ctrl",
                                pow2ceil(vkmt_core_ctrl_size(s->num_queues)),
                                errp)) {
        goto fail;
    }
    /*
     * Host memory in no BAR: the guest never maps it. As RAM it migrates
     * with the rest (memory_region_init_ram() registers it), so demoted
     * content needs no code of its own in the stream.
     */
    if (s->nonlocal_size) {
        if (!memory_region_init_ram(&s->nonlocal, OBJECT(s), "vkmt-nonlocal",
                                    s->nonlocal_size, errp)) {
            goto fail;
        }
        cfg.nonlocal = memory_region_get_ram_ptr(&s->nonlocal);
    }
#ifdef VKMT_HAVE_VIRGL
    cfg.budget = vkmt_backend_virgl_budget(s->be, s->budget);
#endif
    err = vkmt_core_create(&cfg, s->be, memory_region_get_ram_ptr(&s->ctrl),
                           &vkmt_core_ops, s, &s->core);
    if (err < 0) {
        error_setg_errno(errp, -err, "vkmt: cannot create the device engine");
        goto fail;
    }
    vkmt_core_set_backend_faults(s->core, &s->faults); /* checked when set */
    s->trim_timer = timer_new_ms(QEMU_CLOCK_VIRTUAL, vkmt_trim_tick, s);
    s->pressure_base = vkmt_engine_budget(s);
    if (s->pressure && strcmp(s->pressure, "off")) {
        s->pressure_timer =
            timer_new_ms(QEMU_CLOCK_VIRTUAL, vkmt_pressure_tick, s);
        timer_mod(s->pressure_timer, qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) +
                                         s->pressure_period_ms);
    }
    if (s->trim_period_ms) {
        /* No queue is claimed yet: nothing to restart. */
        timer_mod(s->trim_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->trim_period_ms);
    }

    memory_region_init_io(&s->regs, OBJECT(s), &vkmt_mmio_ops, s, "vkmt-regs",
                          VKMT_REGS_SIZE);
    pci_register_bar(pdev, VKMT_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    if (msix_init_exclusive_bar(pdev, s->num_queues, VKMT_BAR_MSIX, errp)) {
        goto fail;
    }
    for (uint32_t v = 0; v < s->num_queues; v++) {
        msix_vector_use(pdev, v);
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    pci_register_bar(
        pdev, VKMT_BAR_CTRL,
        PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64, &s->ctrl);
    pci_register_bar(pdev, VKMT_BAR_APERTURE,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                         PCI_BASE_ADDRESS_MEM_PREFETCH |
                         PCI_BASE_ADDRESS_MEM_TYPE_64,
                     s->aperture);

    if (s->mode == DOORBELL_IOTHREAD) {
        /* Unguarded: the guard is the main thread's, and this BH does no I/O.
         */
        s->work_bh =
            aio_bh_new(iothread_get_aio_context(s->iothread), vkmt_work_bh, s);
        s->irq_bh = qemu_bh_new_guarded(vkmt_irq_bh, s,
                                        &DEVICE(s)->mem_reentrancy_guard);
    } else {
        s->work_bh = qemu_bh_new_guarded(vkmt_work_bh, s,
                                         &DEVICE(s)->mem_reentrancy_guard);
    }
    if (s->mode != DOORBELL_INLINE) {
        vkmt_doorbells_bind(s);
    }

    s->stopped = !runstate_is_running();
    s->vm_state = qemu_add_vm_change_state_handler(vkmt_vm_state, s);
    s->precopy.notify = vkmt_precopy_notify;
    precopy_add_notifier(&s->precopy);
    s->precopy_added = true;
    if (s->kind == BACKEND_VIRGL) {
        error_setg(&s->migration_blocker,
                   "vkmt: backend=virgl does not migrate: allocation content "
                   "lives in GPU resources outside guest RAM (migrating it "
                   "needs every resource read back into host memory at save "
                   "and created again at load)");
        if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
            goto fail; /* the blocker was freed and cleared */
        }
    }
    return;

fail:
    vkmt_teardown(s);
}

static void vkmt_exit(PCIDevice *pdev)
{
    VkmtState *s = VKMT(pdev);

    s->unrealized = true;
    vkmt_teardown(s);
}

/* Also runs inside a callout (a Secondary Bus Reset aimed by MSI-X). */
static void vkmt_reset(DeviceState *dev)
{
    VkmtState *s = VKMT(dev);

    s->resets++;
    qatomic_set(&s->pending, 0);
    qatomic_set(&s->irq_pending, 0);
    pci_set_irq(PCI_DEVICE(s), 0);
    if (s->core) {
        vkmt_lock(s);
        vkmt_core_reset(s->core);
        /* Schedules the teardown's continuation; no interrupt is due. */
        vkmt_unlock(s);
    }
}

static const Property vkmt_properties[] = {
    DEFINE_PROP_UINT32("queues", VkmtState, num_queues, 8),
    DEFINE_PROP_SIZE("aperture-size", VkmtState, aperture_size, 256 * MiB),
    DEFINE_PROP_SIZE("nonlocal-size", VkmtState, nonlocal_size, 256 * MiB),
    DEFINE_PROP_UINT32("max-objects", VkmtState, max_objects, 0),
    DEFINE_PROP_UINT32("work-bound", VkmtState, work_bound, 2048),
    DEFINE_PROP_BOOL("guest-trim", VkmtState, guest_trim, true),
    DEFINE_PROP_BOOL("events", VkmtState, events, true),
    DEFINE_PROP_STRING("pressure", VkmtState, pressure),
    DEFINE_PROP_UINT32("pressure-period-ms", VkmtState, pressure_period_ms,
                       1000),
    DEFINE_PROP_STRING("backend", VkmtState, backend),
    DEFINE_PROP_STRING("doorbell", VkmtState, doorbell),
    DEFINE_PROP_STRING("event-log", VkmtState, event_log),
    DEFINE_PROP_SIZE("event-log-size", VkmtState, event_log_size, 64 * MiB),
    DEFINE_PROP_LINK("memdev", VkmtState, memdev, TYPE_MEMORY_BACKEND,
                     HostMemoryBackend *),
    DEFINE_PROP_LINK("iothread", VkmtState, iothread, TYPE_IOTHREAD,
                     IOThread *),
};

static const struct {
    const char *name;
    const char *text;
} vkmt_descriptions[] = {
    { "queues", "number of submission/completion queue pairs (1-64), one per "
                "guest process" },
    { "aperture-size", "bytes of allocation address space, a power of two "
                       "(ignored with memdev)" },
    { "max-objects", "handle-table limit (0: 1048575)" },
    { "work-bound",
      "work one register write, doorbell or bottom half may do before the rest "
      "continues in a bottom half: a command costs 1 + its elements, a "
      "torn-down "
      "object 16 (0: unbounded)" },
    { "guest-trim",
      "let the guest request trims itself (feature VKMT_F_GUEST_TRIM)" },
    { "events",
      "post trim and budget events on each queue's event ring (feature "
      "VKMT_F_EVENTS, protocol 1.2)" },
    { "pressure",
      "a budget that follows the host's memory pressure: off (default), psi "
      "(/proc/pressure/memory) or cgroup:DIR (DIR's memory.current against "
      "memory.high); each change is logged and posted as BUDGET_CHANGED" },
    { "pressure-period-ms",
      "how often the pressure policy samples, in guest time (default 1000)" },
    { "trim-notify",
      "write N to ask every guest process for N bytes back (0: all it holds; "
      "at least what it holds over budget) with a TRIM_TO_BUDGET event; "
      "reads back how many queues the last request reached" },
    { "trim-period-ms",
      "post a PERIODIC_TRIM event to every queue this often, in guest "
      "(virtual clock) time; setting it posts RESTART_PERIODIC_TRIM (0: off)" },
    { "backend",
      "what holds allocation content: mem (host memory, default)"
#ifdef VKMT_HAVE_VIRGL
      " or virgl (a virglrenderer GL buffer per allocation; docs/VIRGL.md)"
#endif
    },
#ifdef VKMT_HAVE_VIRGL
    { "virgl",
      "read-only, backend=virgl: live GPU resources and their bytes, resources "
      "created and destroyed, transfers each way, the GL renderer and the "
      "memory it reports" },
#endif
    { "doorbell",
      "doorbell processing: inline (default), ioeventfd, iothread" },
    { "memdev", "memory backend for the aperture instead of a private memfd" },
    { "nonlocal-size",
      "bytes of host memory outside the BARs that keep demoted allocations' "
      "content (the non-local segment; default 256 MiB, 0: none, so pressure "
      "that offers cannot relieve fails)" },
    { "iothread", "IOThread that processes doorbells with doorbell=iothread" },
    { "event-log",
      "log every allocation transition, trim and budget change to this file, "
      "one tab-separated line each (docs/RESEARCH.md)" },
    { "event-log-size",
      "most bytes the event log may hold (default 64 MiB, at least 4 KiB); "
      "past it one line says the log was cut and stats.evlog_dropped counts "
      "the events left out" },
    { "budget",
      "bytes that may be committed at once (0: half the aperture, or with "
      "backend=virgl the GPU memory the GL driver reports); "
      "lowering it at run time discards offered content" },
    { "queue-budget",
      "write QUEUE:SIZE (e.g. 1:64M) to give the guest process holding that "
      "queue a budget of its own (0: none; it lives under the device's "
      "budget either way); reads back QUEUE:BYTES of each queue that has "
      "one. Beyond it, only that process's content is discarded, then "
      "demoted; the budget goes when the process releases its queue" },
    { "queue-stats",
      "read-only, per claimed queue (one guest process each): its budget, "
      "the budget in force, committed, resident, offered, demoted and "
      "discarded bytes" },
    { "stats",
      "read-only statistics: commands, allocations, committed, offered and "
      "discarded bytes, reclaim results (the last three also per priority), "
      "trims, "
      "events the event log left out, the longest engine call" },
    { "x-poison-completions",
      "testing a driver: write N, and the next N completions carry a wrong "
      "cid and an undefined status (their commands still run)" },
    { "x-deaf",
      "testing a driver: while true, doorbells are not processed and nothing "
      "completes" },
    { "x-fault-seed",
      "injected backend faults: the seed of the rate:P choices; writing it "
      "starts every fault sequence again (docs/DEVICE.md)" },
    { "x-fault-commit",
      "injected backend faults: which allocation commits fail (off, every:N, "
      "rate:P); the command fails with NO_MEMORY and changes nothing" },
    { "x-fault-discard",
      "injected backend faults: which discards of offered content fail (off, "
      "every:N, rate:P); the allocation stays offered with its content" },
    { "x-fault-stall",
      "injected backend faults: which commits and discards stall (off, "
      "every:N, rate:P) for x-fault-stall-ns" },
    { "x-fault-stall-ns",
      "injected backend faults: how long a stall holds the device (default "
      "1 ms, at most 1 s)" },
    { "longest-step-ns",
      "the longest time one engine call (register write, doorbell or "
      "continuation) held the device, in ns; write to restart the "
      "measurement" },
    { "trim",
      "write N to discard at least N bytes of offered content (0: all) in "
      "eviction order; reads back the bytes the last trim freed" },
    { "removed",
      "surprise removal: while true every command fails with DEVICE_REMOVED" },
    { "migrate-offered",
      "what a migration or savevm does with offered content: keep "
      "(default) or discard it as it starts, as a host trim would, so that "
      "less RAM is sent and the guest's reclaim answers DISCARDED" },
};

static void vkmt_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vkmt_realize;
    k->exit = vkmt_exit;
    k->vendor_id = VKMT_PCI_VENDOR_ID;
    k->device_id = VKMT_PCI_DEVICE_ID;
    k->revision = VKMT_PCI_REVISION;
    k->class_id = PCI_CLASS_OTHERS;
    dc->desc = "vkmt paravirtual GPU memory (offer/reclaim)";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_legacy_reset(dc, vkmt_reset);
    device_class_set_props(dc, vkmt_properties);
    dc->vmsd = &vkmt_vmstate;

    object_class_property_add(klass, "budget", "size", vkmt_get_budget,
                              vkmt_set_budget, NULL, NULL);
    object_class_property_add(klass, "stats", "VkmtStats", vkmt_get_stats, NULL,
                              NULL, NULL);
    object_class_property_add(klass, "queue-budget", "str",
                              vkmt_get_queue_budget, vkmt_set_queue_budget,
                              NULL, NULL);
    object_class_property_add(klass, "queue-stats", "VkmtQueueStatsList",
                              vkmt_get_queue_stats, NULL, NULL, NULL);
    object_class_property_add(klass, "trim", "size", vkmt_get_trim,
                              vkmt_set_trim, NULL, NULL);
    object_class_property_add(klass, "trim-notify", "size",
                              vkmt_get_trim_notify, vkmt_set_trim, NULL,
                              (void *)1);
    object_class_property_add(klass, "trim-period-ms", "uint32",
                              vkmt_get_trim_period, vkmt_set_trim_period, NULL,
                              NULL);
    object_class_property_add_bool(klass, "removed", vkmt_get_removed,
                                   vkmt_set_removed);
    object_class_property_add_enum(
        klass, "migrate-offered", "VkmtMigrateOffered", &vkmt_offered_lookup,
        vkmt_get_migrate_offered, vkmt_set_migrate_offered);
    object_class_property_add(klass, "x-poison-completions", "uint32", NULL,
                              vkmt_set_poison, NULL, NULL);
    object_class_property_add_bool(klass, "x-deaf", vkmt_get_deaf,
                                   vkmt_set_deaf);
    object_class_property_add(
        klass, "x-fault-seed", "uint64", vkmt_get_fault_u64, vkmt_set_fault_u64,
        NULL, (void *)offsetof(struct vkmt_backend_faults, seed));
    for (uintptr_t kind = 0; kind < VKMT_FAULT_KINDS; kind++) {
        static const char *const names[VKMT_FAULT_KINDS] = {
            [VKMT_FAULT_COMMIT] = "x-fault-commit",
            [VKMT_FAULT_DISCARD] = "x-fault-discard",
            [VKMT_FAULT_STALL] = "x-fault-stall",
        };

        object_class_property_add(klass, names[kind], "str",
                                  vkmt_get_fault_rate, vkmt_set_fault_rate,
                                  NULL, (void *)kind);
    }
    object_property_set_default_uint(
        object_class_property_add(
            klass, "x-fault-stall-ns", "uint64", vkmt_get_fault_u64,
            vkmt_set_fault_u64, NULL,
            (void *)offsetof(struct vkmt_backend_faults, stall_ns)),
        1000000);
    object_class_property_add(klass, "longest-step-ns", "uint64",
                              vkmt_get_longest_step, vkmt_set_longest_step,
                              NULL, NULL);
#ifdef VKMT_HAVE_VIRGL
    object_class_property_add(klass, "virgl", "VkmtVirglInfo", vkmt_get_virgl,
                              NULL, NULL, NULL);
#endif
    for (size_t i = 0; i < ARRAY_SIZE(vkmt_descriptions); i++) {
        object_class_property_set_description(klass, vkmt_descriptions[i].name,
                                              vkmt_descriptions[i].text);
    }
}

static const TypeInfo vkmt_info = {
    .name = TYPE_VKMT,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VkmtState),
    .class_init = vkmt_class_init,
    .interfaces =
        (InterfaceInfo[]){ { INTERFACE_CONVENTIONAL_PCI_DEVICE }, {} },
};

static void vkmt_register_types(void)
{
    type_register_static(&vkmt_info);
}

type_init(vkmt_register_types)
