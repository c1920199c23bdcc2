/* SPDX-License-Identifier: MIT */
/*
 * The vkmt device engine: a pure C11 model of the device behind the wire
 * contract in protocol/vkmt_proto.h. It owns queues, the handle table, the
 * allocation state machine, budget and eviction, and drives a backend that
 * holds allocation content. It never calls QEMU or glib: the outside world is
 * reached only through the vkmt_core_ops table given at creation, so the QEMU
 * glue, the in-process loopback transport, unit tests and fuzzers all drive
 * the same code. Not thread-safe: callers serialize every entry point.
 */
#ifndef VKMT_CORE_H
#define VKMT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkmt_backend.h"

struct vkmt_core;

/* What the engine reports to its host (tracing, event logs, tests). */
enum vkmt_event_type {
    VKMT_EV_COMMAND,       /* a command completed: opcode, status */
    VKMT_EV_CREATE,        /* an allocation was created: handle, size */
    VKMT_EV_DESTROY,       /* an allocation was destroyed */
    VKMT_EV_OFFER,         /* an allocation was offered: priority */
    VKMT_EV_DISCARD,       /* offered content was discarded: priority, size */
    VKMT_EV_DECOMMIT,      /* ... and its aperture range released */
    VKMT_EV_RECLAIM,       /* an allocation was reclaimed: result */
    VKMT_EV_QUEUE_CLAIM,   /* a queue was claimed */
    VKMT_EV_QUEUE_RELEASE, /* a queue was released and its objects freed */
    VKMT_EV_QUEUE_ERROR,   /* a queue entered the error state */
    VKMT_EV_RESET,         /* the device was reset */
    VKMT_EV_TRIM,          /* a trim begins: size = bytes asked (UINT64_MAX: all) */
    VKMT_EV_BUDGET,        /* the budget changed: size = the budget in force */
    VKMT_EV_FAULT_COMMIT,  /* an injected fault failed an allocation's commit */
    VKMT_EV_FAULT_DISCARD, /* an injected fault failed the discard of an offer */
    VKMT_EV_STALL_COMMIT,  /* an injected stall delayed an allocation's commit */
    VKMT_EV_STALL_DISCARD, /* ... or the discard of an offer */
    VKMT_EV_NOTIFY,        /* an event was posted to a queue: status = VKMT_QEV_*, size = value */
    VKMT_EV_DEMOTE,        /* content moved to the non-local segment */
    VKMT_EV_PROMOTE,       /* ... and back into the aperture */
};

/* The queue of an event the host caused (a trim or a budget change). */
#define VKMT_EV_HOST UINT32_MAX

struct vkmt_event {
    enum vkmt_event_type type;
    uint32_t queue;
    uint32_t handle;
    uint32_t opcode;   /* VKMT_EV_COMMAND */
    uint32_t status;   /* VKMT_EV_COMMAND: NTSTATUS; VKMT_EV_RECLAIM: result */
    uint32_t priority; /* priority of the offer in effect (VKMT_PRIO_*); 0: none */
    uint64_t size;     /* bytes where a size applies */
};

struct vkmt_core_ops {
    /* A completion asked for an interrupt on @queue. May be NULL. */
    void (*raise_irq)(void *opaque, uint32_t queue);
    /* A doorbell left work on @queue: process now or schedule. NULL: now. */
    void (*notify)(void *opaque, uint32_t queue);
    /* The guest did something malformed; @msg is one formatted line. */
    void (*guest_error)(void *opaque, const char *msg);
    /* Optional trace hook, called for every state change. */
    void (*event)(void *opaque, const struct vkmt_event *ev);
    /*
     * An entry point stopped at cfg.work_bound with work left (submissions,
     * or objects of released queues to tear down): call vkmt_core_continue()
     * soon, from a fresh event-loop turn. May be NULL when work_bound is 0.
     */
    void (*more_work)(void *opaque);
    /*
     * The engine copied @len bytes of allocation content through its own
     * pointer to @off of the aperture (a promotion) or, @nonlocal, of the
     * non-local segment (a demotion): guest-side dirty logging never sees
     * such writes, and a live migration must. May be NULL.
     */
    void (*wrote)(void *opaque, bool nonlocal, uint64_t off, uint64_t len);
};

/* Work units a torn-down object costs: it gives its memory back to the host
 * (a syscall per allocation), which is what makes teardown slow. */
#define VKMT_WORK_PER_OBJECT 16u

struct vkmt_core_config {
    uint32_t num_queues;  /* 1..VKMT_MAX_QUEUES */
    uint64_t budget;      /* committed-byte limit; 0: half the aperture */
    uint32_t max_objects; /* handle-table limit; 0 means the protocol maximum */
    uint32_t features;    /* VKMT_F_* offered; must be within VKMT_F_KNOWN */
    /*
     * Work one entry point (a register write, kick, process, reset or
     * continue) may do, in units: a command costs 1 + its element count, a
     * torn-down object VKMT_WORK_PER_OBJECT; at least one command runs per
     * call. 0: unbounded.
     */
    uint32_t work_bound;
    /*
     * The non-local segment: bytes of host memory (a multiple of
     * VKMT_PAGE_SIZE, 0: none) that keep demoted allocations' content, at
     * @nonlocal (the host's, e.g. migratable RAM), or mapped by the engine
     * when NULL. Never visible to the guest.
     */
    uint64_t nonlocal_size;
    void *nonlocal;
};

/* Per-priority counters; index with vkmt_prio_index(). */
#define VKMT_PRIO_CLASSES 4
/* Reclaim results (VKMT_RECLAIM_OK, _DISCARDED, _NOT_COMMITTED) per priority. */
#define VKMT_RECLAIM_RESULTS 3

struct vkmt_stats {
    uint64_t commands;
    uint64_t command_errors;
    uint64_t guest_errors;
    uint64_t queue_errors;
    uint64_t devices;     /* live */
    uint64_t allocations; /* live */
    uint64_t resources;   /* live */
    uint64_t committed_bytes;
    uint64_t offered_bytes; /* offered and still holding content */
    uint64_t budget_bytes;
    uint64_t offers;
    uint64_t discards;
    uint64_t discarded_bytes;
    uint64_t decommits;
    uint64_t reclaim_ok;
    uint64_t reclaim_discarded;
    uint64_t reclaim_not_committed;
    uint64_t trims;
    uint64_t trimmed_bytes;
    /* Injected backend faults (vkmt_core_set_backend_faults), cumulative. */
    uint64_t faults_commit;
    uint64_t faults_discard;
    uint64_t stalls;
    uint64_t stall_ns;
    /* Events posted on the queues' event rings, and those a full ring lost. */
    uint64_t events;
    uint64_t events_lost;
    uint64_t demoted_bytes;                            /* live: content in the non-local segment */
    uint64_t demotions;                                /* cumulative */
    uint64_t promotions;                               /* cumulative */
    uint64_t offered_bytes_by_prio[VKMT_PRIO_CLASSES]; /* LOW NORMAL HIGH AUTO */
    uint64_t discarded_bytes_by_prio[VKMT_PRIO_CLASSES];     /* cumulative */
    uint64_t offered_bytes_total_by_prio[VKMT_PRIO_CLASSES]; /* cumulative */
    /*
     * Reclaim results, indexed by VKMT_RECLAIM_*, of allocations that were
     * offered at that priority (or lost from such an offer). A reclaim of an
     * allocation that was already resident counts only in reclaim_ok.
     */
    uint64_t reclaims_by_prio[VKMT_PRIO_CLASSES][VKMT_RECLAIM_RESULTS];
};

/*
 * Create an engine over @ctrl (control memory of num_queues * VKMT_QUEUE_STRIDE
 * bytes, shared with the guest) and @backend (allocation content; the engine
 * borrows it). Returns 0 and sets *out, or a negative errno: -EINVAL for a bad
 * configuration, -ENOMEM.
 */
int vkmt_core_create(const struct vkmt_core_config *cfg, struct vkmt_backend *backend, void *ctrl,
                     const struct vkmt_core_ops *ops, void *opaque, struct vkmt_core **out);
void vkmt_core_destroy(struct vkmt_core *core);

/* Bytes of control memory the engine needs for @num_queues queues. */
uint64_t vkmt_core_ctrl_size(uint32_t num_queues);

/* Register access at byte offset @off of BAR 0; unknown offsets read 0. */
uint32_t vkmt_core_reg_read(struct vkmt_core *core, uint32_t off);
void vkmt_core_reg_write(struct vkmt_core *core, uint32_t off, uint32_t val);

/*
 * A doorbell whose written value is not known (an ioeventfd): take the new
 * tail from the queue header's sh_sq_tail and check it like a register write.
 */
void vkmt_core_kick(struct vkmt_core *core, uint32_t queue);

/* Consume the submissions a doorbell left on @queue. Returns entries done. */
uint32_t vkmt_core_process(struct vkmt_core *core, uint32_t queue);

/*
 * Full device reset, as a guest write of 0 to the status register: queues
 * are released and the epoch bumped at once; their objects are torn down
 * within the work bound and the rest by vkmt_core_continue(). Until that
 * ends, status reads DEVICE_NEEDS_RESET, claims fail and writes of status
 * other than 0 are ignored.
 */
void vkmt_core_reset(struct vkmt_core *core);

/*
 * Resume within one work bound what earlier calls left (ops->more_work):
 * teardown of released queues, then queues stopped with submissions.
 * Returns true while work is left.
 */
bool vkmt_core_continue(struct vkmt_core *core);

/*
 * Host-side pressure: discard offered content in eviction order until at
 * least @bytes were freed or nothing offered is left (UINT64_MAX: all);
 * queues that still hold more than their budget get TRIM_TO_BUDGET.
 * Returns the bytes discarded.
 */
uint64_t vkmt_core_trim(struct vkmt_core *core, uint64_t bytes);

/*
 * Device events (VKMT_F_EVENTS, PROTOCOL.md 5.4), to the queues that
 * negotiated them. trim_notify asks every queue for @bytes back (at most what
 * it holds, at least what it holds beyond its budget) with TRIM_TO_BUDGET;
 * periodic_trim posts PERIODIC_TRIM, or RESTART_PERIODIC_TRIM when the
 * host's period (re)starts. Both return the queues that got the event.
 */
uint32_t vkmt_core_trim_notify(struct vkmt_core *core, uint64_t bytes);
uint32_t vkmt_core_periodic_trim(struct vkmt_core *core, bool restart);

/* Change the budget (0: half the aperture, capped at the aperture); content
 * offered beyond the new budget is discarded. Queues that take events get
 * BUDGET_CHANGED, and TRIM_TO_BUDGET when they hold more than the budget. */
void vkmt_core_set_budget(struct vkmt_core *core, uint64_t budget);

/*
 * A budget that follows the host's memory pressure (pressure.c), from the
 * budget configured, @base. PSI: the first line's "some avg10" share of
 * time stalled on memory, parsed by vkmt_psi_some_avg10 into permille (0
 * or -1 for text that is not a PSI line); the budget shrinks in proportion,
 * to half of @base at VKMT_PSI_HALF_PERMILLE and beyond. cgroup: the
 * device may hold what it has committed plus the room left under the
 * cgroup's memory.high (@high minus @current), between a quarter of @base
 * and @base.
 */
#define VKMT_PSI_HALF_PERMILLE 200u /* 20% of the time stalled: half the budget */
int vkmt_psi_some_avg10(const char *text, uint32_t *permille);
uint64_t vkmt_pressure_budget_psi(uint64_t base, uint32_t some_avg10_permille);
uint64_t vkmt_pressure_budget_cgroup(uint64_t base, uint64_t committed, uint64_t current,
                                     uint64_t high);

/* Surprise removal: every later command completes with DEVICE_REMOVED. */
void vkmt_core_set_removed(struct vkmt_core *core, bool removed);

/*
 * A misbehaving device, to test a driver's defences: the next @poison
 * completions carry a cid no command had and a status the protocol does not
 * define (their commands still run); while @deaf, doorbells are noted but
 * nothing is processed, so nothing completes (turning it off runs what
 * waited).
 */
void vkmt_core_set_faults(struct vkmt_core *core, uint32_t poison, bool deaf);

/*
 * Injected backend faults, for research and for testing how callers cope:
 * which backend commits (backing an allocation's range at creation or at a
 * recommit) and discards (of offered content, by pressure; never teardown's)
 * fail or stall. Each kind picks its operations one of two ways, both
 * reproducible: every Nth one (@every, counted from when the kind was set),
 * or each one with probability @ppm / 1000000 drawn from a generator seeded
 * with @seed (a stream of its own per kind, so that setting one kind does
 * not shift another's choices). @every wins when both are set; both 0: off.
 */
enum vkmt_fault_kind {
    VKMT_FAULT_COMMIT,  /* the commit fails: its command fails with NO_MEMORY */
    VKMT_FAULT_DISCARD, /* the discard fails: the allocation stays offered with its content */
    VKMT_FAULT_STALL,   /* the commit or discard takes stall_ns longer */
    VKMT_FAULT_KINDS,
};

#define VKMT_FAULT_PPM 1000000u
/* The longest stall: a stall holds the device (and, inline, the vCPU). */
#define VKMT_FAULT_STALL_MAX_NS 1000000000u

struct vkmt_fault_rate {
    uint32_t every; /* the Nth, 2Nth, ... operation; 0: not by count */
    uint32_t ppm;   /* chance per operation in millionths, at most VKMT_FAULT_PPM */
};

struct vkmt_backend_faults {
    uint64_t seed;
    struct vkmt_fault_rate rate[VKMT_FAULT_KINDS];
    uint64_t stall_ns; /* at most VKMT_FAULT_STALL_MAX_NS */
};

/*
 * Put @f in force and start every kind's sequence again (count 0, generator
 * from the seed), so that the same settings and the same operations after
 * them fault the same way. Returns 0, or -EINVAL (changing nothing) for a
 * rate or stall out of range.
 */
int vkmt_core_set_backend_faults(struct vkmt_core *core, const struct vkmt_backend_faults *f);

/*
 * The text form of a rate, for host controls: "off", "every:N" (N >= 1) or
 * "rate:P" (a probability 0 <= P <= 1, kept to a millionth). Parse returns
 * 0 or -EINVAL; format writes at most @len bytes, NUL included.
 */
int vkmt_fault_rate_parse(const char *text, struct vkmt_fault_rate *out);
void vkmt_fault_rate_format(const struct vkmt_fault_rate *r, char *buf, unsigned len);

void vkmt_core_get_stats(const struct vkmt_core *core, struct vkmt_stats *out);

/*
 * Per-queue (per guest process) budgets and statistics. A queue's own
 * budget (0: none) holds only while it is below the device's; beyond it the
 * queue's creations, reclaims and MAKE_RESIDENTs first discard its own
 * offered content, then demote its own resident content, and fail short of
 * room, without touching other queues' allocations. It belongs to the
 * claim: releasing the queue clears it.
 */
struct vkmt_queue_stats {
    bool claimed;
    uint64_t budget;       /* the queue's own, as set (0: none) */
    uint64_t budget_local; /* the budget in force: the smaller of the two */
    uint64_t committed;    /* resident + offered */
    uint64_t resident;     /* resident in the local segment, not offered */
    uint64_t offered;      /* offered and still holding content */
    uint64_t demoted;      /* in the non-local segment */
    uint64_t discarded;    /* offered content discarded since the claim */
};

void vkmt_core_get_queue_stats(const struct vkmt_core *core, uint32_t q,
                               struct vkmt_queue_stats *out);

/*
 * Give claimed queue @q a budget of its own (0: none), enforced at once as
 * a lowered device budget is: the queue's offered content beyond it is
 * discarded, then its resident content demoted; the queue gets
 * BUDGET_CHANGED with the budget in force, and TRIM_TO_BUDGET with what it
 * still holds beyond it. Returns 0, -EINVAL for a queue or size out of
 * range (beyond the aperture), or -ENOENT for a queue no driver claimed.
 */
int vkmt_core_set_queue_budget(struct vkmt_core *core, uint32_t q, uint64_t budget);

/* The host's fault settings in force: a snapshot load brings the source's. */
void vkmt_core_get_faults(const struct vkmt_core *core, bool *removed, bool *deaf,
                          struct vkmt_backend_faults *backend);

/*
 * Snapshots, for migration and savevm (snapshot.c has the layout): the
 * engine's whole state as one flat little-endian blob. Control memory, the
 * aperture and the non-local segment are not in it: the host moves them as
 * RAM, before the blob is loaded.
 */
#define VKMT_SNAPSHOT_VERSION 3u

/* Writes at most @cap bytes of the snapshot to @buf (may be NULL with @cap
 * 0); returns the snapshot's whole size. */
size_t vkmt_core_snapshot_save(const struct vkmt_core *core, void *buf, size_t cap);

/* The most bytes a snapshot this engine accepts can take: a host reading
 * one from a stream refuses a larger length before allocating for it. */
size_t vkmt_core_snapshot_max(const struct vkmt_core *core);

/*
 * Replace the engine's state with the @len-byte snapshot at @buf, taken
 * from an engine of the same configuration (queues, aperture and
 * non-local sizes, features offered) with a backend that keeps all content in the aperture. Every
 * value is checked: the snapshot may be corrupt or hostile. Returns 0; or
 * -EINVAL for a snapshot that is malformed, inconsistent or of another
 * configuration, -ENOTSUP for a backend with content outside the aperture,
 * -ENOMEM; then the engine is unchanged and @why (@why_len bytes) says why.
 * Nothing is reported through the event hook: the state just appears.
 */
int vkmt_core_snapshot_load(struct vkmt_core *core, const void *buf, size_t len, char *why,
                            size_t why_len);

/* Index into the per-priority statistics for a VKMT_PRIO_* value. */
static inline unsigned vkmt_prio_index(uint32_t prio)
{
    return (prio - 1u) % VKMT_PRIO_CLASSES;
}

#endif /* VKMT_CORE_H */
