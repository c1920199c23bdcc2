/* SPDX-License-Identifier: MIT */
/*
 * What the files of the device-engine harness share (fuzz_core.c describes
 * the harness): constants, failure reports, growable arrays, the model's and
 * the harness's state with the types it needs, accessors of shared memory and
 * of model objects, and the functions one file offers the others, grouped by
 * the file that defines them. Everything used by one file only stays static
 * there.
 */
#ifndef VKMT_FUZZ_CORE_FZ_H
#define VKMT_FUZZ_CORE_FZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz_input.h"
#include "vkmt_backend.h"
#include "vkmt_core.h"
#include "vkmt_proto.h"
#include "vkmt_shmem.h"

#define PAGE VKMT_PAGE_SIZE
#define DEPTH VKMT_QUEUE_DEPTH
#define STAGING VKMT_STAGING_SIZE
#define NONE UINT32_MAX
#define MAX_PAYLOAD (VKMT_MAX_BATCH * sizeof(struct vkmt_alloc_desc))
#define RESULT_SNAP 4096u /* bytes of a failed command's result area compared */

/* ---- Failure reports (fuzz_core.c) ---- */

extern uint32_t fail_op;
extern size_t fail_pos;

/* Prints "FILE:LINE: invariant violated at ..." (FILE without its directory) and aborts. */
void fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__FILE__, __LINE__, __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)

/* ---- Growable arrays: capacity survives across inputs, length does not ---- */

/* @v with room for @need elements of @elem bytes (aborts if out of memory). */
void *grow(void *v, uint32_t *cap, uint32_t need, size_t elem);

/* VEC_TYPE(name, T) names the type, for arrays more than one file uses. */
#define VEC_TYPE(name, T)                                                                          \
    struct name {                                                                                  \
        T *v;                                                                                      \
        uint32_t n, cap;                                                                           \
    }
#define VEC(T) VEC_TYPE(, T)
#define PUSH(vec, val)                                                                             \
    do {                                                                                           \
        (vec).v = grow((vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v));                        \
        (vec).v[(vec).n++] = (val);                                                                \
    } while (0)

/* ---- The model: what the engine must hold, learned only from its outputs ---- */

enum kind { K_DEVICE, K_PQ, K_SYNC, K_ALLOC, K_RES, K_COUNT };
enum astate { A_RESIDENT, A_OFFERED, A_DISCARDED, A_DECOMMITTED, A_DEMOTED };

struct mobj {
    uint32_t handle; /* 0 until the completion that creates it is read */
    uint8_t kind;
    uint8_t queue;
    bool live;
    uint8_t state;     /* allocations: enum astate */
    uint8_t prio;      /* allocations: priority of the offer in effect, 0: none */
    bool decommit;     /* offered with AllowDecommit */
    uint32_t mark;     /* the batch that listed it, to spot duplicates */
    uint32_t parent;   /* device; a sync object's paging queue */
    uint32_t group;    /* allocation: its resource, or NONE */
    uint32_t nmembers; /* resource: its members follow it in objs */
    uint32_t page, npages;
    uint32_t nl_page; /* allocations: A_DEMOTED: its range in the non-local segment */
    uint32_t locks;
    uint32_t bid;  /* the id the engine gives the backend for this allocation */
    uint32_t sync; /* paging queue: its sync object */
    uint64_t size;
    uint32_t tex_flags, tex_dims; /* allocations: the descriptor's shape, 0 for a buffer */
    uint64_t offer_seq;
    uint64_t stamp;  /* the pattern its pages must hold; 0: zeros */
    uint64_t fence;  /* paging queue: reclaims through it */
    uint32_t rprio;  /* allocations: residency priority */
    uint32_t rcount; /* allocations: MAKE_RESIDENTs not yet evicted */
};

struct mqueue {
    uint32_t state, head, tail, cq_tail, phase, claim_seq;
    uint64_t reservation[2];            /* CHANGE_RESERVATION, per segment group */
    uint64_t discarded;                 /* bytes of its offered content discarded since the claim */
    uint32_t ev_tail, ev_lost;          /* the event ring (PROTOCOL.md 5.4) */
    struct vkmt_qev ev[VKMT_EVQ_DEPTH]; /* what each slot must hold once posted */
};

/* A next-fit page map, as the engine's allocator places ranges (the
 * non-local mode places them itself: no commit reports them). */
struct mplace {
    uint8_t used[FZ_PAGES_MAX];
    uint32_t npages, cursor;
};

struct model {
    uint32_t status, driver_features, epoch, config_gen, isr;
    bool removed, failed;
    uint64_t budget;
    struct mqueue q[FZ_MAX_QUEUES];
    struct vkmt_stats st; /* guest_errors is compared with the callback count instead */
    uint32_t live_objs;
    uint64_t offer_seq;
    uint32_t mark;
    uint8_t page_used[FZ_PAGES_MAX];   /* in the range of an allocation not DECOMMITTED */
    uint8_t page_held[FZ_PAGES_MAX];   /* ... that is RESIDENT or OFFERED: the backend holds it */
    uint64_t page_stamp[FZ_PAGES_MAX]; /* what its first 8 bytes must read */
    uint32_t ap_cursor;                /* the non-local mode: where the next range goes */
    struct mplace nl;                  /* ... and the non-local segment */
    uint64_t q_demoted[FZ_MAX_QUEUES]; /* demoted bytes of each queue */
};
extern struct model M;

VEC_TYPE(mobj_vec, struct mobj);
VEC_TYPE(u32_vec, uint32_t);
VEC_TYPE(event_vec, struct vkmt_event);

extern struct mobj_vec objs;
extern struct u32_vec live;          /* indices into objs in creation order, dead ones lazily */
extern struct u32_vec pool[K_COUNT]; /* every object of each kind ever created */
extern struct u32_vec batch;         /* OFFER/RECLAIM: the allocations, resources expanded */
extern struct u32_vec elem_end;      /* per payload element: its end in batch */
extern struct event_vec events;      /* what the engine reported during one call */
extern struct u32_vec exp_destroy;   /* allocations whose DESTROY events are due */

/* A call the engine made into the backend. */
enum { BC_COMMIT, BC_DISCARD, BC_LOCK, BC_UNLOCK };
struct bcall {
    uint8_t op;
    bool failed;
    bool used; /* matched by the model */
    uint32_t id;
    uint64_t off, len;
    bool textured; /* commit: a shape came with it */
    struct vkmt_shape shape;
};
VEC_TYPE(bcall_vec, struct bcall);
extern struct bcall_vec bcalls;
extern struct bcall_vec exp_discards;
/* Where the engine copied content into the non-local segment (its wrote hook). */
struct range {
    uint64_t off, len;
};
VEC_TYPE(range_vec, struct range);
extern struct range_vec nl_writes;

/* The guest driver's own view of one queue. */
struct drv {
    bool claimed;
    uint32_t sq_tail, cq_head, phase, cid;
    uint32_t ev_head; /* events read */
};

/* The command being executed: the entry and payload as the engine read them. */
struct cur_cmd {
    uint32_t q;
    struct vkmt_sqe sqe;
    bool payload_ok;
    uint8_t payload[MAX_PAYLOAD];
    uint32_t status;
    uint32_t ge_start;
    uint64_t value0, value1;
    uint32_t learn0, learn1; /* objects whose handle value0 / value1 deliver */
    uint32_t result_len;
    uint8_t results[VKMT_MAX_BATCH * 4];
    uint32_t snap_len;
    uint8_t snap[RESULT_SNAP];
    uint32_t cq_index, phase, sq_head;
};
extern struct cur_cmd C;

/* The harness's own state for one input (fuzz_core.c). */
struct harness {
    /* this input's device */
    uint8_t cfg;
    uint32_t nq, npages, max_objects, fault_at;
    uint32_t offered, features; /* the device's features; what the bring-up takes */
    bool deferred, memfd;
    bool nonlocal; /* FZ_FAULT_NONLOCAL: no commit or lock hooks, a non-local segment */
    uint64_t aperture;
    struct vkmt_core *core;
    struct vkmt_backend *inner;
    uint8_t *ap;
    /* input */
    const uint8_t *in;
    size_t len, pos;
    uint32_t nops;
    /* the guest */
    struct drv drv[FZ_MAX_QUEUES];
    uint64_t stamps;
    uint8_t dirty[FZ_PAGES_MAX]; /* the guest wrote into the page */
    /* what the engine did */
    uint32_t guest_errors, irqs[FZ_MAX_QUEUES], notifies[FZ_MAX_QUEUES];
    uint32_t irq_base[FZ_MAX_QUEUES], posted[FZ_MAX_QUEUES]; /* a host step's events */
    uint32_t backend_calls;
    uint8_t committed[FZ_PAGES_MAX]; /* the backend's view */
    /* pages a step changed or may have changed, for check_all */
    uint8_t touched[FZ_PAGES_MAX], touched_list[FZ_PAGES_MAX];
    uint32_t ntouched;
    /* a processing pass */
    int proc_q;
    bool started, check_pending, batch_irq;
    uint32_t executed;
    uint32_t ev_cur;
    uint32_t released; /* queues a host step released */
    uint32_t dead;
    /* rewriting shared memory from the event hook */
    uint32_t scribbles;
    uint64_t rng;
    bool trace;
};
extern struct harness G;

/* Control memory, reused by every input (fuzz_core.c). */
extern uint8_t *ctrl_mem; /* FZ_MAX_QUEUES * VKMT_QUEUE_STRIDE bytes */

/* ---- Shared memory ---- */

static inline uint8_t *qbase(uint32_t q)
{
    return ctrl_mem + (size_t)q * VKMT_QUEUE_STRIDE;
}

static inline struct vkmt_queue_hdr *hdr(uint32_t q)
{
    return (struct vkmt_queue_hdr *)qbase(q);
}

static inline uint8_t *staging(uint32_t q)
{
    return qbase(q) + VKMT_QUEUE_STAGING_OFF;
}

static inline struct vkmt_cqe *cqe_at(uint32_t q, uint32_t i)
{
    return (struct vkmt_cqe *)(qbase(q) + VKMT_QUEUE_CQ_OFF) + (i & (DEPTH - 1));
}

/* Bounds of [off, off + len) in staging, as PROTOCOL.md 6.1 states them. */
static inline bool staging_ok(uint32_t off, uint32_t len)
{
    return off % 4 == 0 && off <= STAGING && len <= STAGING - off;
}

/*
 * The aperture is scanned after every step. It is a plain mapping the harness
 * made, so ASan's shadow checks there would only cost time.
 */
#define NO_ASAN __attribute__((no_sanitize("address")))

NO_ASAN __attribute__((always_inline)) static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

/* Pages [@first, @first + @n) changed in this step: check_all reads them. */
static inline void touch(uint32_t first, uint32_t n)
{
    for (uint32_t p = first; p < first + n && p < FZ_PAGES_MAX; p++) {
        if (!G.touched[p]) {
            G.touched[p] = 1;
            G.touched_list[G.ntouched++] = (uint8_t)p;
        }
    }
}

/* ---- Model objects ---- */

static inline struct mobj *obj(uint32_t i)
{
    return &objs.v[i];
}

static inline uint32_t pages_of(uint64_t size)
{
    return (uint32_t)((size + PAGE - 1) / PAGE);
}

static inline uint64_t bytes_of(const struct mobj *o)
{
    return (uint64_t)o->npages * PAGE;
}

/* ---- fz_model.c: model objects, matching engine reports, model semantics ---- */

/* A new live object; returns its index in objs (which may move every object). */
uint32_t mobj_new(uint8_t kind, uint32_t q, uint32_t parent);
void obj_kill(uint32_t i);
void live_compact(void);
void set_handle(uint32_t i, uint32_t h);
void forget_handles(void);
void check_new_handle(uint32_t h, const char *what);
/* The index of the live object @h of @kind on queue @q, or NONE. */
uint32_t lookup(uint32_t h, uint8_t kind, uint32_t q);
void map_set(uint32_t page, uint32_t n, bool used);
void pages_sync(uint32_t i);
/* Free aperture pages; whether @want of them lie in one run; bytes queue @q holds committed. */
uint32_t map_free(void);
bool map_has_run(uint32_t want);
/* The non-local mode: the first page of a new range of @n aperture pages
 * as the engine's next-fit allocator picks it, or NONE; mp_free gives one back. */
uint32_t m_place(uint32_t n);
uint32_t mp_alloc(struct mplace *mp, uint32_t n);
void mp_free(struct mplace *mp, uint32_t first, uint32_t n);
uint64_t queue_committed(uint32_t q);

void step_begin(void);
/* The next event reported, which must be of @type. */
const struct vkmt_event *ev_take(enum vkmt_event_type type);
void ev_expect_host(enum vkmt_event_type type, uint32_t queue, uint64_t size);
void ev_expect_alloc(enum vkmt_event_type type, uint32_t i, bool prio);
void ev_expect_destroys(void);
struct bcall *bc_take(uint8_t op);
/* Returns whether a commit or discard failed (the device then needs reset). */
bool step_end(void);

/* Discards offered content in eviction order until @bytes were freed;
 * returns the bytes discarded. */
uint64_t m_evict(uint64_t bytes);
/* Allocation @i's content is gone: DISCARDED, or DECOMMITTED with AllowDecommit. */
void m_discarded(uint32_t i);
/* Makes room for @need bytes (discards, then demotions of allocations not
 * in @excl); returns whether they fit. */
bool m_make_room(uint64_t need, const struct u32_vec *excl);
/* Whether @need bytes can fit once every offer outside the batch (@pinned
 * bytes are its own) is discarded and everything demotable demoted. */
bool m_can_fit(uint64_t need, uint64_t pinned, const struct u32_vec *excl);
void m_enforce_budget(bool demote);
/* Moves allocation @i into the non-local segment; false: no room there. */
bool m_demote(uint32_t i);
void m_promote(uint32_t i);
/* A DEMOTED allocation leaves the segment (offered or destroyed). */
void m_nl_release(uint32_t i);
void m_unlink_offer(struct mobj *o);
void m_destroy_alloc(uint32_t i);
void m_destroy_resource(uint32_t r);
void m_destroy_device(uint32_t d);
void m_destroy_queue_objects(uint32_t q);
void m_release(uint32_t q);
void m_reset(void);
/* The queue a claim gets, or VKMT_QUEUE_NONE. */
uint32_t m_claim(void);
void m_status_write(uint32_t val);
/* Event ring entries a host step posts (PROTOCOL.md 5.4): each queue's
 * budget, and a trim request to the queues over it. */
void m_post(uint32_t q, uint32_t type, uint64_t value);
void m_post_budget(void);
void m_post_over_budget(void);
/* Bytes queue @q holds over the budget (every queue lives under the device's). */
uint64_t m_over_budget(uint32_t q);
/* The budget in effect when the host asks for @b (0: half the aperture; at most all of it). */
uint64_t budget_for(uint64_t b);
uint32_t m_reg_value(uint32_t off);

/* ---- fz_commands.c: what each command must do ---- */

/* Judges C.sqe, as the engine read it, against C.status and the events and
 * backend calls it caused; fills in the values and results due. */
void m_command(void);

/* ---- fz_engine.c: following and calling the engine, its callbacks, the backend ---- */

extern const struct vkmt_core_ops ops_inline, ops_deferred;
extern const struct vkmt_backend_ops backend_ops, backend_ops_nl;

void scribble(uint32_t q, bool cur);
/* Whether aperture page @p is clean: unwritten by the guest, first and last 8 bytes zero. */
NO_ASAN bool page_zero(uint32_t p);
void call_begin(int proc_q);
void doorbell(uint32_t q, uint32_t tail, bool kick);
void process(uint32_t q);
void reg_write(uint32_t off, uint32_t val);
void reg_read(uint32_t off);
void host_trim(uint64_t bytes);
void host_budget(uint64_t b);
void host_reset(void);
void reap(void);
void read_events(uint32_t q, uint8_t d);
void host_event(uint8_t kind, uint8_t b);

/* ---- fz_checks.c: invariants after every operation ---- */

void check_registers(void);
NO_ASAN void check_memory(void);
void check_all(void);

/* ---- fz_decode.c: decoding operations ---- */

void handshake(uint32_t features);
void one_op(void);

#endif
