/* SPDX-License-Identifier: MIT */
/*
 * Engine internals shared by the files of hw-device/core: the object table
 * layout, queue state and the helpers each concern exports to the others.
 * Nothing here is visible outside the engine.
 */
#ifndef VKMT_CORE_PRIV_H
#define VKMT_CORE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "aperture.h"
#include "vkmt_core.h"
#include "vkmt_proto.h"

/* Object types; also the top bits of every handle (0 marks a free slot). */
enum {
    OBJ_FREE = 0,
    OBJ_DEVICE = 1,
    OBJ_PAGING_QUEUE = 2,
    OBJ_SYNC = 3,
    OBJ_ALLOCATION = 4,
    OBJ_RESOURCE = 5,
};

/* Allocation states (PROTOCOL.md 8); only alloc_set_state() changes one. */
enum {
    ALLOC_NONE = VKMT_ALLOC_NONE,               /* a slot not (or no longer) holding one */
    ALLOC_RESIDENT = VKMT_ALLOC_RESIDENT,       /* content valid, usable */
    ALLOC_OFFERED = VKMT_ALLOC_OFFERED,         /* content valid, may be discarded */
    ALLOC_DISCARDED = VKMT_ALLOC_DISCARDED,     /* offered and lost; range kept, memory returned */
    ALLOC_DECOMMITTED = VKMT_ALLOC_DECOMMITTED, /* offered and lost with its aperture range */
    ALLOC_DEMOTED = VKMT_ALLOC_DEMOTED,         /* content in the non-local segment */
};

/* Object flags. */
#define OBJF_MARK 0x01u     /* transient: seen in the batch being validated */
#define OBJF_DECOMMIT 0x02u /* offered with AllowDecommit */

#define HANDLE_INDEX_BITS 20u
#define HANDLE_GEN_BITS 9u
#define HANDLE_TYPE_SHIFT (HANDLE_INDEX_BITS + HANDLE_GEN_BITS)
#define HANDLE_INDEX_MASK ((1u << HANDLE_INDEX_BITS) - 1u)
#define HANDLE_GEN_MASK ((1u << HANDLE_GEN_BITS) - 1u)
#define OBJ_INDEX_MAX HANDLE_INDEX_MASK    /* index 0 is never used */
#define GEN_RETIRED (HANDLE_GEN_MASK + 1u) /* a free slot's: outside every handle's generation */
#define NIL 0u                             /* "no object" in index links */

/*
 * One slot of the object table; allocations dominate, so it is kept at 72
 * bytes. Links are table indices, not pointers, so the table can grow.
 * Every object but a sync object sits on its owner's list (a device on its
 * queue's, the rest on their device's), so tearing an owner down costs what
 * it owns, never a scan of the table.
 */
struct vkmt_obj {
    uint8_t type;
    uint8_t state; /* allocations: ALLOC_* */
    uint8_t prio;  /* allocations: VKMT_PRIO_* of the offer in effect, 0: none */
    uint8_t flags; /* OBJF_* */
    uint16_t gen;
    uint16_t queue;  /* owner: objects never cross queues */
    uint32_t parent; /* index of the device (sync: of its paging queue) */
    uint32_t prev;   /* offered FIFO or free list */
    uint32_t next;
    uint32_t sib_prev; /* the owner's list */
    uint32_t sib_next;
    /* Allocations: a texture's SHAPE_PACK(), 0 for a buffer. Here it fills
     * the hole the union's 8-byte alignment leaves, so it costs nothing. */
    uint32_t shape;
    union {
        struct {
            uint32_t first_child; /* head of its children's list */
        } dev;
        struct {
            uint32_t group; /* resource index, or NIL */
            uint32_t page;  /* first aperture page */
            uint32_t npages;
            uint32_t locks;
            uint64_t size;    /* bytes the guest asked for */
            uint32_t nl_page; /* first non-local page while demoted */
            uint32_t rprio;   /* residency priority (VKMT_ALLOC_PRIO_* scale) */
            uint32_t rcount;  /* MAKE_RESIDENT count not yet undone by EVICT */
        } alloc;
        struct {
            uint32_t *members; /* allocation indices */
            uint32_t count;
        } res;
        struct {
            uint64_t fence; /* last value signalled */
            uint32_t sync;  /* index of its sync object */
        } pq;
    } u;
};

VKMT_STATIC_ASSERT(sizeof(struct vkmt_obj) == 72, "an allocation costs 72 bytes of table");

/* A texture shape in 32 bits: format code (4 bits), width - 1 and height - 1
 * (14 bits each; dimensions are 1..VKMT_TEXTURE_MAX_DIM). Never 0. */
#define SHAPE_PACK(format, w, h)                                                                   \
    ((uint32_t)(format) << 28 | ((uint32_t)(w)-1u) << 14 | ((uint32_t)(h)-1u))
#define SHAPE_FORMAT(shape) ((shape) >> 28)
#define SHAPE_WIDTH(shape) (((shape) >> 14 & 0x3fffu) + 1u)
#define SHAPE_HEIGHT(shape) (((shape)&0x3fffu) + 1u)
VKMT_STATIC_ASSERT(VKMT_FORMAT_COUNT <= 16 && VKMT_TEXTURE_MAX_DIM == 1u << 14, "shape packs");

struct vkmt_queue {
    uint32_t first_device; /* head of its devices' list */
    uint32_t sq_head;      /* private copies; the shared ones are only reports */
    uint32_t sq_tail;
    uint32_t cq_tail;
    uint32_t phase;
    uint32_t state; /* VKMT_QSTATE_* */
    uint32_t claim_seq;
    uint64_t committed;      /* bytes committed by this queue's allocations */
    uint64_t offered;        /* ... of them offered and still holding content */
    uint64_t demoted;        /* bytes of its allocations in the non-local segment */
    uint64_t discarded;      /* bytes of its offered content discarded since the claim */
    uint64_t reservation[2]; /* CHANGE_RESERVATION, per segment group */
    /* The host's budget for this queue (vkmt_core_set_queue_budget), 0:
     * none; it lives under the device's either way, and goes with the claim. */
    uint64_t budget;
    /*
     * The command at sq_head stopped at the work bound (CMD_RETRY) and runs
     * again from a fresh copy; a TRIM keeps what it freed so far.
     */
    bool resumed;
    uint64_t trim_freed;
    uint32_t ev_tail; /* events posted (private; sh_ev_tail is its report) */
    uint32_t ev_lost; /* events dropped on a full ring */
};

struct fifo {
    uint32_t head;
    uint32_t tail;
};

/*
 * Engine-only queue state beside VKMT_QSTATE_*: released (sh_state already
 * reads FREE) while its objects are torn down in bounded steps; it cannot be
 * claimed until that is done. Never written to shared memory.
 */
#define QSTATE_DRAINING 0x100u

/* "Every queue" where eviction and demotion may be scoped to one queue. */
#define QUEUE_ANY VKMT_MAX_QUEUES

/* Eviction classes: LOW, NORMAL (and AUTO), HIGH. */
#define EVICT_CLASSES 3

struct vkmt_core {
    const struct vkmt_core_ops *ops;
    void *opaque;
    struct vkmt_backend *backend;
    uint8_t *ctrl;
    struct vkmt_core_config cfg;

    uint32_t status;
    uint32_t driver_features;
    uint32_t epoch;
    uint32_t config_gen; /* bumped when a read-only config register changes */
    uint32_t isr[2];
    bool removed;
    bool failed;    /* a backend error: DEVICE_NEEDS_RESET until reset */
    bool resetting; /* a reset waits for its queues to drain */

    /*
     * Bounded work (cfg.work_bound): what one entry point may still spend
     * (a command costs 1 + its element count, a torn-down object
     * VKMT_WORK_PER_OBJECT), the
     * queues left with submissions when it ran out, and the released queues
     * whose objects are still being torn down.
     */
    uint32_t work_left;
    uint64_t backlog;
    uint64_t draining;
    /* Faults asked for by the host (vkmt_core_set_faults). */
    uint32_t poison; /* completions left to break */
    bool deaf;       /* doorbells are not processed */
    /* Injected backend faults (vkmt_core_set_backend_faults, fault.c): the
     * settings, and per kind the operations seen since it was set, which
     * with the seed is the whole state of its generator. */
    struct vkmt_backend_faults faults;
    uint64_t fault_seen[VKMT_FAULT_KINDS];
    /*
     * A discard failed (injected), so eviction stopped short: enforcing a
     * lowered budget in the background would only fail again, so it waits
     * for the next command or host request to try once more.
     */
    bool evict_stuck;
    /* A guest trim's scrub of unheld pages, done in steps from scrub_next. */
    bool scrubbing;
    uint32_t scrub_next;

    struct vkmt_queue queues[VKMT_MAX_QUEUES];

    struct vkmt_obj *objs;
    uint32_t nobjs; /* slots in use or freed: the high-water mark */
    uint32_t cap;
    struct fifo free_list; /* FIFO so a freed slot is reused last */
    uint32_t max_objects;
    uint32_t live_objs;
    uint32_t retired_objs; /* generations used up: kept out of use until reset */

    struct fifo offered[EVICT_CLASSES];
    struct vkmt_aperture ap;
    /*
     * The non-local segment (residency.c): host memory outside every BAR
     * that keeps demoted allocations' content, with its own page map. Its
     * size is nl.npages pages; none when nl_base is NULL.
     */
    uint8_t *nl_base;
    bool nl_owned; /* mapped here, not the host's */
    struct vkmt_aperture nl;
    uint64_t demoted_bytes;
    /* A lowered budget still to be met by demotion: cleared when a pass
     * finds nothing more it can demote, so the engine never spins. */
    bool demote_pending;
    uint64_t budget;
    uint64_t committed;
    uint64_t offered_bytes;
    uint64_t budgeted; /* queues with a budget of their own, one bit each */

    /* Per-command working memory, grown on demand to the largest command
     * seen (at most one staging area and one batch of results). */
    uint8_t *scratch; /* private copy of one command's payload */
    uint32_t *results;
    uint32_t scratch_cap, results_cap; /* bytes */
    /* OFFER/RECLAIM's resolved batch (offer_reclaim.c), the same way: the
     * hot path allocates nothing once the device has seen its largest batch. */
    void *batch;
    uint32_t batch_cap; /* bytes */

    struct vkmt_stats stats;
};

/* core.c */
void core_guest_error(struct vkmt_core *core, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void core_event(struct vkmt_core *core, enum vkmt_event_type type, uint32_t idx, uint32_t status);
uint8_t *core_queue_base(struct vkmt_core *core, uint32_t q);
void core_trim_done(struct vkmt_core *core, uint64_t freed);
void core_queue_event(struct vkmt_core *core, enum vkmt_event_type type, uint32_t q, uint64_t size);
void core_queue_release(struct vkmt_core *core, uint32_t q);
bool core_queue_claimed(const struct vkmt_core *core, uint32_t q);
void core_work_begin(struct vkmt_core *core);
void core_work_end(struct vkmt_core *core);

/*
 * notify.c: device events on the queues' event rings (VKMT_F_EVENTS).
 * core_post_event posts one to queue @q and raises its interrupt; false when
 * the queue takes no events or its ring is full (the event is then lost and
 * counted). core_post_over_budget posts TRIM_TO_BUDGET to every queue over
 * its budget, core_post_budget BUDGET_CHANGED to all, then the former.
 */
bool core_post_event(struct vkmt_core *core, uint32_t q, uint32_t type, uint64_t value);
/* Queue @q's own budget where it binds (below the device's), else 0. */
uint64_t core_queue_own_budget(const struct vkmt_core *core, uint32_t q);
/* The local budget queue @q lives under: the smaller of the two. */
uint64_t core_queue_budget(const struct vkmt_core *core, uint32_t q);
/* Bytes queue @q holds beyond that budget. */
uint64_t core_queue_over_budget(const struct vkmt_core *core, uint32_t q);
void core_post_over_budget(struct vkmt_core *core);
void core_post_budget(struct vkmt_core *core);
/* core.c: the event hook's record of a posted event. */
void core_notify_event(struct vkmt_core *core, uint32_t q, uint32_t type, uint64_t value);

/* objects.c */
int obj_table_init(struct vkmt_core *core);
void free_list_append(struct vkmt_core *core, uint32_t idx);
void obj_table_fini(struct vkmt_core *core);
int obj_reserve(struct vkmt_core *core, uint32_t n);
uint32_t obj_new(struct vkmt_core *core, uint8_t type, uint32_t queue, uint32_t parent);
void obj_free(struct vkmt_core *core, uint32_t idx);
void obj_unnew(struct vkmt_core *core, uint32_t idx);
void obj_unretire_all(struct vkmt_core *core);
uint32_t obj_handle(const struct vkmt_core *core, uint32_t idx);
uint32_t obj_lookup(const struct vkmt_core *core, uint32_t handle, uint8_t type, uint32_t queue);

/* Allocation @o's aperture range: its offset, and its page-rounded bytes
 * (what the budget counts and every byte count the device reports). */
static inline uint64_t alloc_off(const struct vkmt_obj *o)
{
    return (uint64_t)o->u.alloc.page * VKMT_PAGE_SIZE;
}

static inline uint64_t alloc_bytes(const struct vkmt_obj *o)
{
    return (uint64_t)o->u.alloc.npages * VKMT_PAGE_SIZE;
}

/* core.c: a backend call that failed where no command can fail instead. */
void core_backend_failed(struct vkmt_core *core, const char *what, int err);

/* alloc.c: the allocation life cycle and teardown */
const struct vkmt_shape *alloc_shape(const struct vkmt_obj *o, struct vkmt_shape *buf);
int core_scrub(struct vkmt_core *core, uint32_t page, uint32_t npages);
struct scrub {
    uint32_t first, n; /* the run being gathered */
    int err;
};
void scrub_add(struct vkmt_core *core, struct scrub *s, uint32_t page, uint32_t npages);
int scrub_end(struct vkmt_core *core, struct scrub *s);
int core_alloc_commit(struct vkmt_core *core, uint32_t idx);
void core_alloc_uncommit(struct vkmt_core *core, uint32_t idx);
void core_alloc_destroy(struct vkmt_core *core, uint32_t idx);
void core_resource_destroy(struct vkmt_core *core, uint32_t idx);
void core_queue_objects_destroy(struct vkmt_core *core, uint32_t q);
bool core_queue_objects_destroy_some(struct vkmt_core *core, uint32_t q, uint32_t *budget);

/* fault.c: injected backend faults, decided (and stalls slept) here. The
 * commit of allocation @idx: 0, or -ENOMEM when it must fail. */
int fault_commit(struct vkmt_core *core, uint32_t idx);
/* The discard of offered allocation @idx: true when it must fail. */
bool fault_discard(struct vkmt_core *core, uint32_t idx);

/* residency.c: the non-local segment, demotion and promotion */
int nonlocal_init(struct vkmt_core *core);
void nonlocal_fini(struct vkmt_core *core);
/* Give back @npages non-local pages at @page (their memory too). */
void nonlocal_free(struct vkmt_core *core, uint32_t page, uint32_t npages);
/* Whether pressure may demote: a non-local segment (none with a backend
 * that keeps content outside the aperture) and the driver took
 * VKMT_F_RESIDENCY. */
bool demotion_enabled(const struct vkmt_core *core);
/* Demote resident, unlocked, unmarked allocations of queue @q (QUEUE_ANY:
 * of every queue), lowest residency count class, then priority, then table
 * order first, until @bytes are freed or *@work runs out (NULL:
 * unbounded). Returns the bytes demoted. */
uint64_t demote_bytes(struct vkmt_core *core, uint32_t q, uint64_t bytes, uint32_t *work);
/* The bytes demote_bytes() could free now (for evict_can_fit). */
uint64_t demotable_bytes(const struct vkmt_core *core, uint32_t q);
/* Demote @idx if the non-local segment has room; true when it did. */
bool demote_one(struct vkmt_core *core, uint32_t idx);
/* Copy demoted @idx's content back to its aperture range and make it
 * resident; the committed bytes are the caller's to have made room for. */
void promote(struct vkmt_core *core, uint32_t idx);
/* What queue @q may reserve in segment group @g (CHANGE_RESERVATION). */
uint64_t residency_available(const struct vkmt_core *core, uint32_t q, uint32_t g);

/* evict.c */
unsigned evict_class(uint32_t prio);
/* The eviction FIFOs, kept by alloc_set_state(). */
void evict_offer(struct vkmt_core *core, uint32_t idx);
void evict_unlink(struct vkmt_core *core, uint32_t idx);
uint64_t evict_bytes(struct vkmt_core *core, uint32_t q, uint64_t bytes, uint32_t *work);
bool evict_scrub_free(struct vkmt_core *core, uint32_t *work);
uint64_t evict_over_by(const struct vkmt_core *core, uint32_t q, uint64_t need);
bool evict_can_fit(const struct vkmt_core *core, uint32_t q, uint64_t need, uint64_t pinned);
enum room {
    ROOM_MADE,    /* the bytes fit the budget now */
    ROOM_LATER,   /* the work bound stopped the discards: retry the command */
    ROOM_REFUSED, /* a discard failed: the command fails as one that cannot fit */
};
enum room evict_make_room(struct vkmt_core *core, uint32_t q, uint64_t need);
bool evict_over_budget(const struct vkmt_core *core);
void evict_enforce_budget(struct vkmt_core *core, uint32_t *work);

/*
 * Commands: each returns the completion status (VKMT_ST_*), or CMD_RETRY
 * when the work bound ran out before the command could finish. A command
 * returns CMD_RETRY only with core->work_left spent and with nothing changed
 * but what its next attempt builds on (offered content discarded, objects
 * of a device being destroyed gone); its entry then runs again in a later
 * step, copied and validated afresh.
 */
#define CMD_RETRY 0xffffffffu
struct cmd {
    struct vkmt_core *core;
    uint32_t queue;
    struct vkmt_sqe sqe; /* private copy */
    uint64_t value0;
    uint64_t value1;
    uint32_t result_bytes; /* set by cmd_results(); copied out on success */
};
uint32_t cmd_create_device(struct cmd *c);
uint32_t cmd_destroy_device(struct cmd *c);
uint32_t cmd_create_paging_queue(struct cmd *c);
uint32_t cmd_destroy_paging_queue(struct cmd *c);
uint32_t cmd_query_fence(struct cmd *c);
uint32_t cmd_create_allocations(struct cmd *c);
uint32_t cmd_destroy_allocations(struct cmd *c);
uint32_t cmd_lock(struct cmd *c);
uint32_t cmd_unlock(struct cmd *c);
uint32_t cmd_query_memory(struct cmd *c);
uint32_t cmd_offer(struct cmd *c);
uint32_t cmd_reclaim(struct cmd *c);
uint32_t cmd_trim(struct cmd *c);
uint32_t cmd_query_stats(struct cmd *c);
uint32_t cmd_make_resident(struct cmd *c);
uint32_t cmd_evict(struct cmd *c);
uint32_t cmd_set_priority(struct cmd *c);
uint32_t cmd_get_priority(struct cmd *c);
uint32_t cmd_query_residency(struct cmd *c);
uint32_t cmd_change_reservation(struct cmd *c);
uint32_t cmd_query_queue_stats(struct cmd *c);

/* queue.c: ring processing within the current work bound; payload and
 * result access for command handlers */
uint32_t core_process(struct vkmt_core *core, uint32_t q);
const void *cmd_payload(struct cmd *c, uint32_t elem_size);
uint32_t *cmd_results(struct cmd *c, uint32_t elem_size);
/* Makes *@buf hold at least @need bytes (at most @limit); its content need
 * not survive. Returns 0 or -ENOMEM. */
int core_buf_reserve(void **buf, uint32_t *cap, uint32_t need, uint32_t limit);

/* The one writer of an allocation's state, inline (alloc_state.h). */
#include "alloc_state.h"

#endif /* VKMT_CORE_PRIV_H */
