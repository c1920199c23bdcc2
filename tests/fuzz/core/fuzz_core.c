/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the device engine (hw-device/core). An input is a
 * small device configuration and a sequence of guest and host operations
 * (fuzz_input.h). The harness is at once a hostile guest driver and a
 * reference model of protocol/PROTOCOL.md: from the engine's public
 * interface only (registers, completions, result arrays, the event hook,
 * statistics and the calls the engine makes into its backend) it predicts
 * what every command and host control must do and aborts on the first
 * difference. Allocation content is checked through the aperture with
 * patterns the guest writes, and shared memory is rewritten from inside the
 * event hook while the engine works, to prove it acts on its private copies.
 * One engine is created and destroyed per input, so every input replays the
 * same way on its own; the aperture and control memory are reused, and must
 * therefore be left as they were found, which is itself checked.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "vkmt_backend.h"
#include "vkmt_core.h"
#include "vkmt_proto.h"
#include "vkmt_shmem.h"

#define PAGE VKMT_PAGE_SIZE
#define DEPTH VKMT_QUEUE_DEPTH
#define STAGING VKMT_STAGING_SIZE
#define NONE UINT32_MAX
/* Staging bytes per SQ slot for structured commands: payload, then results. */
#define REGION 0xf40u
#define MAX_PAYLOAD (VKMT_MAX_BATCH * sizeof(struct vkmt_alloc_desc))
#define RESULT_SNAP 4096u /* bytes of a failed command's result area compared */
#define DEFAULT_MAX_OBJECTS ((1u << 20) - 1u)

/* ---- Failure reports ---- */

static uint32_t fail_op;
static size_t fail_pos;

static void fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void fail(int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fuzz_core.c:%d: invariant violated at operation %u (input byte %zu): ", line,
            fail_op, fail_pos);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail(__LINE__, __VA_ARGS__);                                                           \
        }                                                                                          \
    } while (0)

/* ---- Growable arrays: capacity survives across inputs, length does not ---- */

static void *grow(void *v, uint32_t *cap, uint32_t need, size_t elem)
{
    uint32_t c = *cap ? *cap : 64;

    if (need <= *cap) {
        return v;
    }
    while (c < need) {
        c *= 2;
    }
    v = realloc(v, (size_t)c * elem);
    if (!v) {
        abort();
    }
    *cap = c;
    return v;
}

#define VEC(T)                                                                                     \
    struct {                                                                                       \
        T *v;                                                                                      \
        uint32_t n, cap;                                                                           \
    }
#define PUSH(vec, val)                                                                             \
    do {                                                                                           \
        (vec).v = grow((vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v));                        \
        (vec).v[(vec).n++] = (val);                                                                \
    } while (0)

/* ---- The model: what the engine must hold, learned only from its outputs ---- */

enum kind { K_DEVICE, K_PQ, K_SYNC, K_ALLOC, K_RES, K_COUNT };
enum astate { A_RESIDENT, A_OFFERED, A_DISCARDED, A_DECOMMITTED };

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
    uint32_t locks;
    uint32_t bid;  /* the id the engine gives the backend for this allocation */
    uint32_t sync; /* paging queue: its sync object */
    uint64_t size;
    uint32_t tex_flags, tex_dims; /* allocations: the descriptor's shape, 0 for a buffer */
    uint64_t offer_seq;
    uint64_t stamp; /* the pattern its pages must hold; 0: zeros */
    uint64_t fence; /* paging queue: reclaims through it */
};

struct mqueue {
    uint32_t state, head, tail, cq_tail, phase, claim_seq;
};

static struct {
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
} M;

static VEC(struct mobj) objs;
static VEC(uint32_t) live;            /* indices into objs in creation order, dead ones lazily */
static VEC(uint32_t) pool[K_COUNT];   /* every object of each kind ever created */
static VEC(uint32_t) batch;           /* OFFER/RECLAIM: the allocations, resources expanded */
static VEC(uint32_t) elem_end;        /* per payload element: its end in batch */
static VEC(struct vkmt_event) events; /* what the engine reported during one call */
static VEC(uint32_t) exp_destroy;     /* allocations whose DESTROY events are due */
static VEC(uint8_t) results_scratch;  /* RECLAIM: per allocation, decided up front */

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
static VEC(struct bcall) bcalls;
static VEC(struct bcall) exp_discards;

/* The guest driver's own view of one queue. */
struct drv {
    bool claimed;
    uint32_t sq_tail, cq_head, phase, cid;
};

/* The command being executed: the entry and payload as the engine read them. */
static struct {
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
} C;

static struct {
    /* this input's device */
    uint8_t cfg;
    uint32_t nq, npages, features, max_objects, fault_at;
    bool deferred, memfd;
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
    uint32_t backend_calls;
    uint8_t committed[FZ_PAGES_MAX]; /* the backend's view */
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
} G;

/* Memory reused by every input: control memory and two apertures. */
static uint8_t ctrl_mem[FZ_MAX_QUEUES * VKMT_QUEUE_STRIDE] __attribute__((aligned(4096)));
static uint8_t *ap_anon, *ap_memfd;
static int memfd = -1;
static int trace_env = -1; /* FUZZ_CORE_TRACE: print what each input does */

/* ---- Input ---- */

static uint8_t g8(void)
{
    fail_pos = G.pos;
    return G.pos < G.len ? G.in[G.pos++] : 0;
}

static uint32_t g32(void)
{
    uint32_t v = g8();

    v |= (uint32_t)g8() << 8;
    v |= (uint32_t)g8() << 16;
    return v | (uint32_t)g8() << 24;
}

/* ---- Shared memory ---- */

static uint8_t *qbase(uint32_t q)
{
    return ctrl_mem + (size_t)q * VKMT_QUEUE_STRIDE;
}

static struct vkmt_queue_hdr *hdr(uint32_t q)
{
    return (struct vkmt_queue_hdr *)qbase(q);
}

static uint8_t *staging(uint32_t q)
{
    return qbase(q) + VKMT_QUEUE_STAGING_OFF;
}

static struct vkmt_cqe *cqe_at(uint32_t q, uint32_t i)
{
    return (struct vkmt_cqe *)(qbase(q) + VKMT_QUEUE_CQ_OFF) + (i & (DEPTH - 1));
}

/* Bounds of [off, off + len) in staging, as PROTOCOL.md 6.1 states them. */
static bool staging_ok(uint32_t off, uint32_t len)
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

/* ---- Model objects ---- */

static struct mobj *obj(uint32_t i)
{
    return &objs.v[i];
}

static uint32_t pages_of(uint64_t size)
{
    return (uint32_t)((size + PAGE - 1) / PAGE);
}

static uint64_t bytes_of(const struct mobj *o)
{
    return (uint64_t)o->npages * PAGE;
}

static uint32_t obj_new(uint8_t kind, uint32_t q, uint32_t parent)
{
    struct mobj o = { .kind = kind, .queue = (uint8_t)q, .live = true, .parent = parent };

    o.group = o.sync = NONE;
    PUSH(objs, o);
    PUSH(live, objs.n - 1);
    PUSH(pool[kind], objs.n - 1);
    M.live_objs++;
    return objs.n - 1;
}

/*
 * Handles that died in this input, so that a new one can be checked against
 * them (PROTOCOL.md 7: stale handles are detected even when the slot was
 * reused). Open addressing; entries of other inputs are told apart by epoch,
 * so nothing is cleared per input.
 */
#define DEAD_BITS 15u
static struct {
    uint32_t handle;
    uint32_t epoch;
} dead_set[1u << DEAD_BITS];
static uint32_t dead_epoch, dead_count;

static uint32_t dead_slot(uint32_t h)
{
    return (h * 0x9e3779b1u) >> (32 - DEAD_BITS);
}

static bool dead_has(uint32_t h)
{
    for (uint32_t i = dead_slot(h);; i = (i + 1) & ((1u << DEAD_BITS) - 1)) {
        if (dead_set[i].epoch != dead_epoch) {
            return false;
        }
        if (dead_set[i].handle == h) {
            return true;
        }
    }
}

static void dead_add(uint32_t h)
{
    uint32_t i = dead_slot(h);

    if (h == 0 || dead_count >= (1u << DEAD_BITS) / 2) {
        return; /* half full: longer inputs check fewer handles */
    }
    while (dead_set[i].epoch == dead_epoch) {
        if (dead_set[i].handle == h) {
            return;
        }
        i = (i + 1) & ((1u << DEAD_BITS) - 1);
    }
    dead_set[i].handle = h;
    dead_set[i].epoch = dead_epoch;
    dead_count++;
}

static void obj_kill(uint32_t i)
{
    obj(i)->live = false;
    dead_add(obj(i)->handle);
    M.live_objs--;
    G.dead++;
}

/* Keeps the live list short; order is creation order either way. */
static void live_compact(void)
{
    uint32_t n = 0;

    if (G.dead * 2 < live.n) {
        return;
    }
    for (uint32_t i = 0; i < live.n; i++) {
        if (obj(live.v[i])->live) {
            live.v[n++] = live.v[i];
        }
    }
    live.n = n;
    G.dead = 0;
}

/*
 * Handle -> model object, so that checking a handle costs the same however
 * many objects are live. Open addressing, epoch-tagged like dead_set; an
 * entry stays when its object dies (lookups check liveness), and a handle
 * handed out again after a reset overwrites its entry. Past half full, new
 * handles are not entered and lookups fall back to a scan of the live list.
 */
#define HMAP_BITS 16u
static struct {
    uint32_t handle;
    uint32_t obj;
    uint32_t epoch;
} hmap[1u << HMAP_BITS];
static uint32_t hmap_count;
static bool hmap_full;

static void set_handle(uint32_t i, uint32_t h)
{
    uint32_t k = (h * 0x9e3779b1u) >> (32 - HMAP_BITS);

    obj(i)->handle = h;
    for (; hmap[k].epoch == dead_epoch; k = (k + 1) & ((1u << HMAP_BITS) - 1)) {
        if (hmap[k].handle == h) {
            hmap[k].obj = i;
            return;
        }
    }
    if (hmap_count >= (1u << HMAP_BITS) / 2) {
        hmap_full = true;
        return;
    }
    hmap[k].handle = h;
    hmap[k].obj = i;
    hmap[k].epoch = dead_epoch;
    hmap_count++;
}

/* Empties dead_set and hmap: a new input, or a reset, which kills everything. */
static void forget_handles(void)
{
    dead_epoch++;
    dead_count = 0;
    hmap_count = 0;
    hmap_full = false;
}

/* The live object with handle @h, whatever its kind or queue. */
static uint32_t lookup_any(uint32_t h)
{
    if (h == 0) {
        return NONE;
    }
    if (!hmap_full) {
        for (uint32_t k = (h * 0x9e3779b1u) >> (32 - HMAP_BITS); hmap[k].epoch == dead_epoch;
             k = (k + 1) & ((1u << HMAP_BITS) - 1)) {
            if (hmap[k].handle == h) {
                return obj(hmap[k].obj)->live ? hmap[k].obj : NONE;
            }
        }
        return NONE;
    }
    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->handle == h) {
            return live.v[i];
        }
    }
    return NONE;
}

/* A handle the engine just returned: not zero, not live, never seen to die. */
static void check_new_handle(uint32_t h, const char *what)
{
    CHECK(h != 0 && lookup_any(h) == NONE && !dead_has(h), "%s handle 0x%x is %s", what, h,
          h == 0                  ? "zero"
          : lookup_any(h) != NONE ? "already live"
                                  : "a stale handle reused");
}

/* PROTOCOL.md 7: live, of the right type, of this queue. */
static uint32_t lookup(uint32_t h, uint8_t kind, uint32_t q)
{
    uint32_t i = lookup_any(h);

    return i != NONE && obj(i)->kind == kind && obj(i)->queue == q ? i : NONE;
}

static void map_set(uint32_t page, uint32_t n, bool used)
{
    CHECK(page <= G.npages && n <= G.npages - page,
          "range of %u pages at page %u is outside the %u-page aperture", n, page, G.npages);
    for (uint32_t p = page; p < page + n; p++) {
        CHECK(M.page_used[p] != used, "aperture page %u %s twice", p,
              used ? "given to allocations" : "freed");
        M.page_used[p] = used;
        M.page_held[p] = 0;
        M.page_stamp[p] = 0;
    }
}

/* Bring the expected page state in line with allocation @i's state. */
static void pages_sync(uint32_t i)
{
    const struct mobj *o = obj(i);
    bool held = o->state == A_RESIDENT || o->state == A_OFFERED;

    for (uint32_t p = o->page; p < o->page + o->npages; p++) {
        M.page_held[p] = held;
        M.page_stamp[p] = held ? o->stamp : 0;
    }
}

static uint32_t map_free(void)
{
    uint32_t n = 0;

    for (uint32_t p = 0; p < G.npages; p++) {
        n += !M.page_used[p];
    }
    return n;
}

static bool map_has_run(uint32_t want)
{
    for (uint32_t p = 0, run = 0; p < G.npages; p++) {
        run = M.page_used[p] ? 0 : run + 1;
        if (run >= want) {
            return true;
        }
    }
    return false;
}

static uint64_t queue_committed(uint32_t q)
{
    uint64_t sum = 0;

    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->kind == K_ALLOC && o->queue == q &&
            (o->state == A_RESIDENT || o->state == A_OFFERED)) {
            sum += bytes_of(o);
        }
    }
    return sum;
}

/* ---- Matching what the engine reported against what the model expects ---- */

static void step_begin(void)
{
    G.ev_cur = 0;
    exp_discards.n = 0;
    exp_destroy.n = 0;
}

static const struct vkmt_event *ev_take(enum vkmt_event_type type)
{
    const struct vkmt_event *e;

    CHECK(G.ev_cur < events.n, "event %d is missing", type);
    e = &events.v[G.ev_cur++];
    CHECK(e->type == type, "event %d (queue %u handle 0x%x) where %d was due", e->type, e->queue,
          e->handle, type);
    return e;
}

/* A TRIM or BUDGET event: who asked, and the size it names. */
static void ev_expect_host(enum vkmt_event_type type, uint32_t queue, uint64_t size)
{
    const struct vkmt_event *e = ev_take(type);

    CHECK(e->queue == queue && e->size == size, "event %d names queue %u size %llu; due %u %llu",
          type, e->queue, (unsigned long long)e->size, queue, (unsigned long long)size);
}

static void ev_expect_alloc(enum vkmt_event_type type, uint32_t i, bool prio)
{
    const struct mobj *o = obj(i);
    const struct vkmt_event *e = ev_take(type);

    CHECK(e->handle == o->handle && e->queue == o->queue && e->size == o->size &&
              (!prio || e->priority == o->prio),
          "event %d names 0x%x queue %u size %llu prio %u; due 0x%x queue %u size %llu prio %u",
          type, e->handle, e->queue, (unsigned long long)e->size, e->priority, o->handle, o->queue,
          (unsigned long long)o->size, o->prio);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The DESTROY events of exp_destroy, in any order (teardown order is free). */
static void ev_expect_destroys(void)
{
    uint32_t n = exp_destroy.n;
    uint64_t *want = malloc(((size_t)n + 1) * sizeof(uint64_t) * 2), *got = want + n;

    if (!want) {
        abort();
    }
    CHECK(events.n - G.ev_cur >= n, "%u DESTROY events due, %u events left", n,
          events.n - G.ev_cur);
    for (uint32_t i = 0; i < n; i++) {
        const struct mobj *o = obj(exp_destroy.v[i]);
        const struct vkmt_event *e = ev_take(VKMT_EV_DESTROY);

        want[i] = (uint64_t)o->handle << 32 | (uint64_t)o->queue << 24 | (o->size & 0xffffff);
        got[i] = (uint64_t)e->handle << 32 | (uint64_t)e->queue << 24 | (e->size & 0xffffff);
    }
    qsort(want, n, sizeof(*want), cmp_u64);
    qsort(got, n, sizeof(*got), cmp_u64);
    for (uint32_t i = 0; i < n; i++) {
        CHECK(want[i] == got[i], "DESTROY events name 0x%llx, due 0x%llx",
              (unsigned long long)(got[i] >> 32), (unsigned long long)(want[i] >> 32));
    }
    free(want);
    exp_destroy.n = 0;
}

/* The next backend call of type @op not yet matched. */
static struct bcall *bc_take(uint8_t op)
{
    for (uint32_t i = 0; i < bcalls.n; i++) {
        if (bcalls.v[i].op == op && !bcalls.v[i].used) {
            bcalls.v[i].used = true;
            return &bcalls.v[i];
        }
    }
    fail(__LINE__, "backend call %u is missing", op);
}

static void bc_expect_discard(uint32_t i)
{
    const struct mobj *o = obj(i);
    struct bcall c = {
        .op = BC_DISCARD, .id = o->bid, .off = (uint64_t)o->page * PAGE, .len = bytes_of(o)
    };

    PUSH(exp_discards, c);
}

static int cmp_bcall(const void *a, const void *b)
{
    const struct bcall *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * End of one model step: every event and backend call accounted for.
 * Returns whether a commit or discard failed (the device then needs reset).
 */
static bool step_end(void)
{
    uint32_t m = 0;
    bool failed = false;

    CHECK(G.ev_cur == events.n, "%u unexpected events, the first of type %d handle 0x%x",
          events.n - G.ev_cur, events.v[G.ev_cur].type, events.v[G.ev_cur].handle);
    for (uint32_t i = 0; i < bcalls.n; i++) {
        const struct bcall *c = &bcalls.v[i];

        failed |= (c->op == BC_COMMIT || c->op == BC_DISCARD) && c->failed;
        if (c->op == BC_DISCARD) {
            bcalls.v[m++] = *c;
        } else {
            CHECK(c->used, "unexpected backend call %u [0x%llx +0x%llx]", c->op,
                  (unsigned long long)c->off, (unsigned long long)c->len);
        }
    }
    /* Discards in any order: teardown and eviction order are checked by events. */
    CHECK(m == exp_discards.n, "%u backend discards, %u due", m, exp_discards.n);
    if (m > 1) {
        qsort(bcalls.v, m, sizeof(*bcalls.v), cmp_bcall);
        qsort(exp_discards.v, m, sizeof(*exp_discards.v), cmp_bcall);
    }
    for (uint32_t i = 0; i < m; i++) {
        const struct bcall *a = &bcalls.v[i], *b = &exp_discards.v[i];

        CHECK(a->off == b->off && a->len == b->len && a->id == b->id,
              "backend discard [0x%llx +0x%llx] id %u, due [0x%llx +0x%llx] id %u",
              (unsigned long long)a->off, (unsigned long long)a->len, a->id,
              (unsigned long long)b->off, (unsigned long long)b->len, b->id);
    }
    events.n = 0;
    bcalls.n = 0;
    G.ev_cur = 0;
    exp_discards.n = 0;
    return failed;
}

/* ---- Model semantics: PROTOCOL.md 8 and 9 ---- */

static unsigned evict_class(uint8_t prio)
{
    return prio == VKMT_PRIO_LOW ? 0 : prio == VKMT_PRIO_HIGH ? 2 : 1;
}

static bool evicts_before(const struct mobj *a, const struct mobj *b)
{
    unsigned ca = evict_class(a->prio), cb = evict_class(b->prio);

    return ca != cb ? ca < cb : a->offer_seq < b->offer_seq;
}

static void m_discard(uint32_t i)
{
    struct mobj *o = obj(i);
    uint64_t b = bytes_of(o);
    unsigned pi = vkmt_prio_index(o->prio);

    bc_expect_discard(i);
    M.st.committed_bytes -= b;
    M.st.offered_bytes -= b;
    M.st.offered_bytes_by_prio[pi] -= b;
    M.st.discards++;
    M.st.discarded_bytes += b;
    M.st.discarded_bytes_by_prio[pi] += b;
    o->state = A_DISCARDED;
    o->stamp = 0; /* a reclaim brings it back as zeros */
    pages_sync(i);
    ev_expect_alloc(VKMT_EV_DISCARD, i, true);
    if (o->decommit) {
        map_set(o->page, o->npages, false);
        o->state = A_DECOMMITTED;
        M.st.decommits++;
        ev_expect_alloc(VKMT_EV_DECOMMIT, i, true);
    }
}

/* Discard offered content in eviction order until @bytes were freed. */
static uint64_t m_evict(uint64_t bytes)
{
    uint32_t order[FZ_PAGES_MAX], n = 0;
    uint64_t freed = 0;

    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->kind == K_ALLOC && o->state == A_OFFERED) {
            CHECK(n < FZ_PAGES_MAX, "more offered allocations than pages");
            order[n++] = live.v[i];
        }
    }
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: n is at most the page count */
        uint32_t x = order[i], j = i;

        for (; j > 0 && evicts_before(obj(x), obj(order[j - 1])); j--) {
            order[j] = order[j - 1];
        }
        order[j] = x;
    }
    for (uint32_t i = 0; i < n && freed < bytes; i++) {
        freed += bytes_of(obj(order[i]));
        m_discard(order[i]);
    }
    return freed;
}

static void m_make_room(uint64_t need)
{
    if (M.st.committed_bytes + need > M.budget) {
        m_evict(M.st.committed_bytes + need - M.budget);
    }
}

static void m_enforce_budget(void)
{
    if (M.st.committed_bytes > M.budget) {
        m_evict(M.st.committed_bytes - M.budget);
    }
}

static void m_unlink_offer(struct mobj *o)
{
    M.st.offered_bytes -= bytes_of(o);
    M.st.offered_bytes_by_prio[vkmt_prio_index(o->prio)] -= bytes_of(o);
}

static void m_destroy_alloc(uint32_t i)
{
    struct mobj *o = obj(i);

    PUSH(exp_destroy, i);
    if (o->state == A_OFFERED) {
        m_unlink_offer(o);
    }
    if (o->state == A_RESIDENT || o->state == A_OFFERED) {
        M.st.committed_bytes -= bytes_of(o);
        bc_expect_discard(i);
    }
    if (o->state != A_DECOMMITTED) {
        map_set(o->page, o->npages, false);
    }
    M.st.allocations--;
    obj_kill(i);
}

static void m_destroy_resource(uint32_t r)
{
    for (uint32_t m = r + 1; m <= r + obj(r)->nmembers; m++) {
        m_destroy_alloc(m);
    }
    M.st.resources--;
    obj_kill(r);
}

static void m_destroy_device(uint32_t d)
{
    for (uint32_t i = 0; i < live.n; i++) {
        uint32_t x = live.v[i];
        const struct mobj *o = obj(x);

        if (!o->live || o->parent != d || o->kind == K_SYNC || o->kind == K_DEVICE) {
            continue;
        }
        if (o->kind == K_PQ) {
            obj_kill(o->sync);
            obj_kill(x);
        } else if (o->kind == K_RES) {
            m_destroy_resource(x);
        } else if (o->group == NONE) {
            m_destroy_alloc(x);
        }
    }
    M.st.devices--;
    obj_kill(d);
}

static void m_destroy_queue_objects(uint32_t q)
{
    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->kind == K_DEVICE && o->queue == q) {
            m_destroy_device(live.v[i]);
        }
    }
}

/* PROTOCOL.md 5: release destroys what the queue created and frees it. */
static void m_release(uint32_t q)
{
    const struct vkmt_event *e;
    uint32_t seq = M.q[q].claim_seq;

    m_destroy_queue_objects(q);
    ev_expect_destroys();
    e = ev_take(VKMT_EV_QUEUE_RELEASE);
    CHECK(e->queue == q, "QUEUE_RELEASE names queue %u, due %u", e->queue, q);
    memset(&M.q[q], 0, sizeof(M.q[q]));
    M.q[q].claim_seq = seq;
    M.isr &= ~(1u << q);
    G.drv[q].claimed = false;
    G.released |= 1u << q;
}

/* PROTOCOL.md 4: a reset releases every queue and clears the status. */
static void m_reset(void)
{
    for (uint32_t q = 0; q < G.nq; q++) {
        if (M.q[q].state != VKMT_QSTATE_FREE) {
            m_release(q);
        }
    }
    M.status = 0;
    M.driver_features = 0;
    M.isr = 0;
    M.failed = false;
    M.epoch++;
    /* A reset ends every handle, and retired slots come back (PROTOCOL.md 7). */
    forget_handles();
    ev_take(VKMT_EV_RESET);
}

static uint32_t m_claim(void)
{
    const struct vkmt_event *e;

    if (!(M.status & VKMT_STATUS_DRIVER_OK) || M.removed || M.failed) {
        return VKMT_QUEUE_NONE;
    }
    for (uint32_t q = 0; q < G.nq; q++) {
        if (M.q[q].state == VKMT_QSTATE_FREE) {
            M.q[q].state = VKMT_QSTATE_ACTIVE;
            M.q[q].head = M.q[q].tail = M.q[q].cq_tail = 0;
            M.q[q].phase = VKMT_CQE_F_PHASE;
            M.q[q].claim_seq++;
            e = ev_take(VKMT_EV_QUEUE_CLAIM);
            CHECK(e->queue == q, "QUEUE_CLAIM names queue %u, due %u", e->queue, q);
            return q;
        }
    }
    return VKMT_QUEUE_NONE;
}

static void m_status_write(uint32_t val)
{
    if (val == 0) {
        m_reset();
        return;
    }
    /* FEATURES_OK sticks only for a subset of what was offered. */
    if ((val & ~M.status & VKMT_STATUS_FEATURES_OK) && (M.driver_features & ~G.features)) {
        val &= ~VKMT_STATUS_FEATURES_OK;
    }
    if ((val & VKMT_STATUS_DRIVER_OK) && !((val | M.status) & VKMT_STATUS_FEATURES_OK)) {
        val &= ~VKMT_STATUS_DRIVER_OK;
    }
    M.status |= val & (VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_DRIVER_OK |
                       VKMT_STATUS_FEATURES_OK | VKMT_STATUS_FAILED);
}

static uint64_t budget_for(uint64_t b)
{
    if (b == 0) {
        return G.aperture / 2 / PAGE * PAGE;
    }
    return b < G.aperture ? b : G.aperture;
}

/* Register values, PROTOCOL.md 3 (queue_claim is handled by the caller). */
static uint32_t m_reg_value(uint32_t off)
{
    switch (off) {
    case VKMT_REG(magic):
        return VKMT_MAGIC;
    case VKMT_REG(version):
        return VKMT_VERSION;
    case VKMT_REG(device_features):
        return G.features;
    case VKMT_REG(driver_features):
        return M.driver_features;
    case VKMT_REG(status):
        return M.status | (M.failed ? VKMT_STATUS_DEVICE_NEEDS_RESET : 0);
    case VKMT_REG(removal_epoch):
        return M.epoch;
    case VKMT_REG(config_generation):
        return M.config_gen;
    case VKMT_REG(num_queues):
        return G.nq;
    case VKMT_REG(queue_depth):
        return DEPTH;
    case VKMT_REG(queue_stride):
        return VKMT_QUEUE_STRIDE;
    case VKMT_REG(staging_size):
        return STAGING;
    case VKMT_REG(max_batch):
        return VKMT_MAX_BATCH;
    case VKMT_REG(isr_lo):
        return M.isr;
    case VKMT_REG(aperture_size_lo):
        return (uint32_t)G.aperture;
    case VKMT_REG(aperture_size_hi):
        return (uint32_t)(G.aperture >> 32);
    case VKMT_REG(budget_lo):
        return (uint32_t)M.budget;
    case VKMT_REG(budget_hi):
        return (uint32_t)(M.budget >> 32);
    default:
        return 0;
    }
}

/* ---- Commands: PROTOCOL.md 6, 7 and 10, on the entry the engine read ---- */

#define U_HANDLE 0x01u
#define U_COUNT 0x02u
#define U_PAYLOAD 0x04u
#define U_RESULT 0x08u
#define U_ARG0 0x10u
#define U_ARG1 0x20u
#define U_ARG64 0x40u

/* The "fields used" and flags columns of the opcode table. */
static const struct {
    uint8_t fields;
    uint16_t flags;
} op_use[VKMT_OP_MAX + 1] = {
    [VKMT_OP_CREATE_DEVICE] = { 0, 0 },
    [VKMT_OP_DESTROY_DEVICE] = { U_HANDLE, 0 },
    [VKMT_OP_CREATE_PAGING_QUEUE] = { U_HANDLE | U_ARG0, 0 },
    [VKMT_OP_DESTROY_PAGING_QUEUE] = { U_HANDLE, 0 },
    [VKMT_OP_CREATE_ALLOCATIONS] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_RESULT,
                                     VKMT_SQE_F_CREATE_RESOURCE },
    [VKMT_OP_DESTROY_ALLOCATIONS] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_ARG0, 0 },
    [VKMT_OP_LOCK] = { U_HANDLE | U_ARG0, 0 },
    [VKMT_OP_UNLOCK] = { U_HANDLE | U_ARG0, 0 },
    [VKMT_OP_OFFER] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_ARG0 | U_ARG1, VKMT_SQE_F_RESOURCES },
    [VKMT_OP_RECLAIM] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_RESULT,
                          VKMT_SQE_F_RESOURCES | VKMT_SQE_F_PAGING_QUEUE |
                              VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT },
    [VKMT_OP_QUERY_MEMORY] = { U_ARG0, 0 },
    [VKMT_OP_QUERY_FENCE] = { U_HANDLE, 0 },
    [VKMT_OP_TRIM] = { U_ARG64, 0 },
    [VKMT_OP_QUERY_STATS] = { U_RESULT, 0 },
};

static bool fields_ok(const struct vkmt_sqe *s)
{
    static const uint8_t zero[16];
    uint8_t f = op_use[s->opcode].fields;

    return !s->reserved0 && !memcmp(s->reserved1, zero, sizeof(zero)) &&
           !(s->flags & ~(op_use[s->opcode].flags | VKMT_SQE_F_IRQ)) &&
           ((f & U_HANDLE) || !s->handle) && ((f & U_COUNT) || !s->count) &&
           ((f & U_PAYLOAD) || (!s->payload_off && !s->payload_len)) &&
           ((f & U_RESULT) || (!s->result_off && !s->result_len)) && ((f & U_ARG0) || !s->arg0) &&
           ((f & U_ARG1) || !s->arg1) && ((f & U_ARG64) || !s->arg64);
}

/* The array rule of PROTOCOL.md 6.1. */
static bool payload_ok(uint32_t elem)
{
    const struct vkmt_sqe *s = &C.sqe;

    return s->count >= 1 && s->count <= VKMT_MAX_BATCH && s->payload_len == s->count * elem &&
           staging_ok(s->payload_off, s->payload_len) && C.payload_ok;
}

static bool results_ok(void)
{
    const struct vkmt_sqe *s = &C.sqe;

    return s->result_len == s->count * 4u && staging_ok(s->result_off, s->result_len);
}

static uint32_t pl32(uint32_t i)
{
    uint32_t v;

    memcpy(&v, C.payload + (size_t)i * 4, sizeof(v));
    return v;
}

static void put_result(uint32_t i, uint32_t v)
{
    memcpy(C.results + (size_t)i * 4, &v, sizeof(v));
}

/* The actual status must be @want or @alt; returns whether it succeeded. */
static bool expect2(uint32_t want, uint32_t alt)
{
    CHECK(C.status == want || C.status == alt,
          "queue %u opcode 0x%x cid %u: status 0x%08x, due 0x%08x%s", C.q, C.sqe.opcode, C.sqe.cid,
          C.status, want, want != alt ? " (or the other acceptable one)" : "");
    return C.status == VKMT_ST_SUCCESS;
}

static bool expect(uint32_t want)
{
    return expect2(want, want);
}

static bool objects_fit(uint32_t n)
{
    return n <= G.max_objects - M.live_objs;
}

static void c_create_device(void)
{
    uint32_t d;

    if (!expect(objects_fit(1) ? VKMT_ST_SUCCESS : VKMT_ST_NO_MEMORY)) {
        return;
    }
    d = obj_new(K_DEVICE, C.q, NONE);
    M.st.devices++;
    C.learn0 = d;
}

static void c_destroy_device(void)
{
    uint32_t d = lookup(C.sqe.handle, K_DEVICE, C.q);

    if (!expect(d == NONE ? VKMT_ST_INVALID_PARAMETER : VKMT_ST_SUCCESS)) {
        return;
    }
    m_destroy_device(d);
    ev_expect_destroys();
}

static void c_create_paging_queue(void)
{
    uint32_t d = lookup(C.sqe.handle, K_DEVICE, C.q);
    int32_t prio = (int32_t)C.sqe.arg0;
    uint32_t st = VKMT_ST_SUCCESS, p, sync;

    if (d == NONE || prio < -1 || prio > 1) {
        st = VKMT_ST_INVALID_PARAMETER;
    } else if (!objects_fit(2)) {
        st = VKMT_ST_NO_MEMORY;
    }
    if (!expect(st)) {
        return;
    }
    p = obj_new(K_PQ, C.q, d);
    sync = obj_new(K_SYNC, C.q, p); /* apart: obj_new may move every object */
    obj(p)->sync = sync;
    C.learn0 = p;
    C.learn1 = sync;
}

static void c_destroy_paging_queue(void)
{
    uint32_t p = lookup(C.sqe.handle, K_PQ, C.q);

    if (!expect(p == NONE ? VKMT_ST_INVALID_PARAMETER : VKMT_ST_SUCCESS)) {
        return;
    }
    obj_kill(obj(p)->sync);
    obj_kill(p);
}

static void c_query_fence(void)
{
    uint32_t s = lookup(C.sqe.handle, K_SYNC, C.q);

    if (expect(s == NONE ? VKMT_ST_INVALID_PARAMETER : VKMT_ST_SUCCESS)) {
        C.value0 = obj(obj(s)->parent)->fence;
    }
}

/*
 * Record the range the engine carved for allocation @i from its commit call
 * (@fresh: a new allocation, whose backend id is learned here too).
 */
static void learn_range(uint32_t i, const struct bcall *c, bool fresh)
{
    struct mobj *o = obj(i);

    CHECK(c->len == bytes_of(o), "commit of 0x%llx bytes for an allocation of %u pages",
          (unsigned long long)c->len, o->npages);
    CHECK(fresh || c->id == o->bid, "recommit with backend id %u of an allocation with id %u",
          c->id, o->bid);
    o->page = (uint32_t)(c->off / PAGE);
    o->bid = c->id;
    map_set(o->page, o->npages, true);
    for (uint32_t k = 0; fresh && k < live.n; k++) {
        const struct mobj *x = obj(live.v[k]);

        CHECK(!x->live || x->kind != K_ALLOC || live.v[k] == i || x->bid != c->id,
              "backend id %u given to two live allocations", c->id);
    }
}

/*
 * PROTOCOL.md 8.1, written from the text rather than from the engine: a buffer
 * has flags 0 and dims 0; a 2D texture (only with VKMT_F_TEXTURES accepted)
 * has flag bit 0, a format code 1..3 in bits 8..15 and no other bit, width
 * and height 1..16384 in dims, and size = bytes per pixel * width * height.
 */
static bool m_desc_ok(const struct vkmt_alloc_desc *d)
{
    static const uint32_t bpp[4] = { 0, 4, 4, 1 };
    uint32_t fmt = d->flags >> 8 & 0xffu, w = d->dims & 0xffffu, h = d->dims >> 16;

    if (d->size == 0 || d->size > G.aperture) {
        return false;
    }
    if (d->flags == 0) {
        return d->dims == 0;
    }
    if (!(M.driver_features & VKMT_F_TEXTURES) || d->flags != (1u | fmt << 8) || fmt == 0 ||
        fmt > 3 || w == 0 || h == 0 || w > 16384 || h > 16384) {
        return false;
    }
    return d->size == (uint64_t)bpp[fmt] * w * h;
}

/* A commit carries allocation @a's texture shape, packed rows, or none for a buffer. */
static void check_shape(const struct bcall *c, uint32_t a)
{
    const struct mobj *o = obj(a);
    uint32_t fmt = o->tex_flags >> 8 & 0xffu, w = o->tex_dims & 0xffffu, h = o->tex_dims >> 16;

    if (!o->tex_flags) {
        CHECK(!c->textured, "buffer allocation committed with a texture shape");
        return;
    }
    CHECK(c->textured && c->shape.format == fmt && c->shape.width == w && c->shape.height == h &&
              (uint64_t)c->shape.stride * h == o->size,
          "texture %u x %u format %u committed as %u x %u format %u stride %u", w, h, fmt,
          c->shape.width, c->shape.height, c->shape.format, c->shape.stride);
}

static void c_create_allocations(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t d = lookup(s->handle, K_DEVICE, C.q);
    bool group = s->flags & VKMT_SQE_F_CREATE_RESOURCE;
    uint32_t st = VKMT_ST_SUCCESS, alt, n = s->count, need_pages = 0, first, res = NONE;
    uint64_t need = 0;

    if (d == NONE || !payload_ok(sizeof(struct vkmt_alloc_desc)) || !results_ok()) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct vkmt_alloc_desc desc;

        memcpy(&desc, C.payload + (size_t)i * sizeof(desc), sizeof(desc));
        if (!m_desc_ok(&desc)) {
            expect(VKMT_ST_INVALID_PARAMETER);
            return;
        }
        need_pages += pages_of(desc.size);
    }
    need = (uint64_t)need_pages * PAGE;
    /* Budget first (after discarding everything offered), then the handle
     * table, then aperture space; a multi-element batch can miss aperture
     * space to fragmentation the model does not place, so either outcome. */
    if (M.st.committed_bytes + need > M.budget + M.st.offered_bytes) {
        st = VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    } else if (!objects_fit(n + group)) {
        st = VKMT_ST_NO_MEMORY;
    } else if (map_free() < need_pages || (n == 1 && !map_has_run(need_pages))) {
        st = VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    }
    alt = st == VKMT_ST_SUCCESS && n > 1 ? VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY : st;
    if (!expect2(st, alt)) {
        return;
    }
    /* The aperture is carved before eviction frees anything. */
    if (group) {
        res = obj_new(K_RES, C.q, d);
        obj(res)->nmembers = n;
        M.st.resources++;
        C.learn0 = res;
    }
    first = objs.n;
    for (uint32_t i = 0; i < n; i++) {
        struct vkmt_alloc_desc desc;
        const struct bcall *c;
        uint32_t a = obj_new(K_ALLOC, C.q, d);

        memcpy(&desc, C.payload + (size_t)i * sizeof(desc), sizeof(desc));
        obj(a)->size = desc.size;
        obj(a)->tex_flags = desc.flags;
        obj(a)->tex_dims = desc.dims;
        obj(a)->npages = pages_of(desc.size);
        obj(a)->group = res;
        obj(a)->state = A_RESIDENT;
        c = bc_take(BC_COMMIT);
        check_shape(c, a);
        learn_range(a, c, true);
    }
    m_make_room(need);
    for (uint32_t a = first; a < first + n; a++) {
        const struct vkmt_event *e = ev_take(VKMT_EV_CREATE);

        CHECK(e->queue == C.q && e->size == obj(a)->size && e->handle != 0,
              "CREATE event queue %u size %llu handle 0x%x for size %llu", e->queue,
              (unsigned long long)e->size, e->handle, (unsigned long long)obj(a)->size);
        check_new_handle(e->handle, "new allocation");
        set_handle(a, e->handle);
        pages_sync(a);
        M.st.committed_bytes += bytes_of(obj(a));
        M.st.allocations++;
        put_result(a - first, e->handle);
    }
    C.result_len = n * 4;
}

static void c_destroy_allocations(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t d = lookup(s->handle, K_DEVICE, C.q);
    uint32_t mark = ++M.mark, r;

    if (d == NONE) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    if (s->arg0) {
        r = lookup(s->arg0, K_RES, C.q);
        if (expect(r == NONE || obj(r)->parent != d || s->count || s->payload_off || s->payload_len
                       ? VKMT_ST_INVALID_PARAMETER
                       : VKMT_ST_SUCCESS)) {
            m_destroy_resource(r);
            ev_expect_destroys();
        }
        return;
    }
    if (!payload_ok(4)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    batch.n = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        uint32_t a = lookup(pl32(i), K_ALLOC, C.q);

        /* Resource members go only with their resource (PROTOCOL.md 10). */
        if (a == NONE || obj(a)->parent != d || obj(a)->group != NONE || obj(a)->mark == mark) {
            expect(VKMT_ST_INVALID_PARAMETER);
            return;
        }
        obj(a)->mark = mark;
        PUSH(batch, a);
    }
    expect(VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < batch.n; i++) {
        m_destroy_alloc(batch.v[i]);
    }
    ev_expect_destroys();
}

static uint32_t lock_target(void)
{
    uint32_t d = lookup(C.sqe.handle, K_DEVICE, C.q);
    uint32_t a = d == NONE ? NONE : lookup(C.sqe.arg0, K_ALLOC, C.q);

    return a != NONE && obj(a)->parent == d ? a : NONE;
}

static void check_range_call(const struct bcall *c, uint32_t a)
{
    const struct mobj *o = obj(a);

    CHECK(c->off == (uint64_t)o->page * PAGE && c->len == bytes_of(o) && c->id == o->bid,
          "backend call %u on [0x%llx +0x%llx] id %u for an allocation at page %u (%u pages, id "
          "%u)",
          c->op, (unsigned long long)c->off, (unsigned long long)c->len, c->id, o->page, o->npages,
          o->bid);
}

static void c_lock(void)
{
    uint32_t a = lock_target();
    const struct bcall *c;

    if (a == NONE || obj(a)->state != A_RESIDENT) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    c = bc_take(BC_LOCK);
    check_range_call(c, a);
    if (expect(c->failed ? VKMT_ST_NO_MEMORY : VKMT_ST_SUCCESS)) {
        obj(a)->locks++;
        C.value0 = (uint64_t)obj(a)->page * PAGE;
        C.value1 = obj(a)->size;
    }
}

static void c_unlock(void)
{
    uint32_t a = lock_target();
    const struct bcall *c;

    if (a == NONE || obj(a)->locks == 0) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    c = bc_take(BC_UNLOCK);
    check_range_call(c, a);
    if (expect(c->failed ? VKMT_ST_NO_MEMORY : VKMT_ST_SUCCESS)) {
        obj(a)->locks--;
    }
}

/* Expand the payload of OFFER or RECLAIM into batch; false: a bad element. */
static bool resolve(uint32_t d)
{
    bool res = C.sqe.flags & VKMT_SQE_F_RESOURCES;
    uint32_t mark = ++M.mark;

    batch.n = 0;
    elem_end.n = 0;
    for (uint32_t i = 0; i < C.sqe.count; i++) {
        uint32_t x = lookup(pl32(i), res ? K_RES : K_ALLOC, C.q);

        if (x == NONE || obj(x)->parent != d || obj(x)->mark == mark) {
            return false;
        }
        obj(x)->mark = mark;
        if (res) {
            for (uint32_t m = x + 1; m <= x + obj(x)->nmembers; m++) {
                PUSH(batch, m);
            }
        } else {
            PUSH(batch, x);
        }
        PUSH(elem_end, batch.n);
    }
    return true;
}

static void c_offer(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t d = lookup(s->handle, K_DEVICE, C.q);

    if (d == NONE || s->arg0 < VKMT_PRIO_LOW || s->arg0 > VKMT_PRIO_AUTO ||
        (s->arg1 & ~VKMT_OFFER_F_KNOWN) || !payload_ok(4) || !resolve(d)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    for (uint32_t i = 0; i < batch.n; i++) {
        if (obj(batch.v[i])->state != A_RESIDENT || obj(batch.v[i])->locks) {
            expect(VKMT_ST_INVALID_PARAMETER);
            return;
        }
    }
    expect(VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < batch.n; i++) {
        struct mobj *o = obj(batch.v[i]);

        o->state = A_OFFERED;
        o->prio = (uint8_t)s->arg0;
        o->decommit = s->arg1 & VKMT_OFFER_F_ALLOW_DECOMMIT;
        o->offer_seq = ++M.offer_seq;
        M.st.offers++;
        M.st.offered_bytes += bytes_of(o);
        M.st.offered_bytes_by_prio[vkmt_prio_index(o->prio)] += bytes_of(o);
        M.st.offered_bytes_total_by_prio[vkmt_prio_index(o->prio)] += bytes_of(o);
        ev_expect_alloc(VKMT_EV_OFFER, batch.v[i], true);
    }
    m_enforce_budget();
}

static void c_reclaim(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    bool recommit = s->flags & VKMT_SQE_F_RECOMMIT;
    bool write = s->flags & VKMT_SQE_F_WRITE_RESULTS;
    uint32_t pq = NONE, d, st = VKMT_ST_SUCCESS, alt, nrecommit = 0, rpages = 0;
    uint64_t need = 0, pinned = 0;
    uint8_t *result;

    if (s->flags & VKMT_SQE_F_PAGING_QUEUE) {
        pq = lookup(s->handle, K_PQ, C.q);
        d = pq == NONE ? NONE : obj(pq)->parent;
    } else {
        d = lookup(s->handle, K_DEVICE, C.q);
    }
    if (d == NONE || !payload_ok(4) || (write ? !results_ok() : s->result_off || s->result_len) ||
        !resolve(d)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    results_scratch.v = grow(results_scratch.v, &results_scratch.cap, batch.n, 1);
    result = results_scratch.v;
    /* PROTOCOL.md 8: the result follows from the state alone. */
    for (uint32_t i = 0; i < batch.n; i++) {
        const struct mobj *o = obj(batch.v[i]);

        result[i] = VKMT_RECLAIM_OK;
        if (o->state == A_OFFERED) {
            pinned += bytes_of(o);
        } else if (o->state == A_DISCARDED || (o->state == A_DECOMMITTED && recommit)) {
            need += bytes_of(o);
            result[i] = VKMT_RECLAIM_DISCARDED;
            if (o->state == A_DECOMMITTED) {
                nrecommit++;
                rpages += o->npages;
            }
        } else if (o->state == A_DECOMMITTED) {
            result[i] = VKMT_RECLAIM_NOT_COMMITTED;
        }
    }
    /*
     * PROTOCOL.md 9: the batch's own offers cannot make room for it; and
     * NO_MEMORY means a recommit that cannot fit (6.4), so a batch with
     * nothing to recommit succeeds even on a device over its budget.
     */
    if (need && M.st.committed_bytes + need > M.budget + (M.st.offered_bytes - pinned)) {
        st = VKMT_ST_NO_MEMORY;
    } else if (nrecommit && (map_free() < rpages || (nrecommit == 1 && !map_has_run(rpages)))) {
        st = VKMT_ST_NO_MEMORY;
    }
    alt = st == VKMT_ST_SUCCESS && nrecommit > 1 ? VKMT_ST_NO_MEMORY : st;
    if (!expect2(st, alt)) {
        return;
    }
    /* New ranges are carved, and old ones recommitted, in batch order. */
    for (uint32_t i = 0; i < batch.n; i++) {
        struct mobj *o = obj(batch.v[i]);
        const struct bcall *c;

        if (result[i] != VKMT_RECLAIM_DISCARDED) {
            continue;
        }
        c = bc_take(BC_COMMIT);
        check_shape(c, batch.v[i]);
        if (o->state == A_DECOMMITTED) {
            learn_range(batch.v[i], c, false);
        } else {
            check_range_call(c, batch.v[i]);
        }
    }
    for (uint32_t i = 0; i < batch.n; i++) {
        struct mobj *o = obj(batch.v[i]);

        if (o->state == A_OFFERED) {
            m_unlink_offer(o);
            o->state = A_RESIDENT;
        }
    }
    m_make_room(need);
    for (uint32_t i = 0; i < batch.n; i++) {
        struct mobj *o = obj(batch.v[i]);
        const struct vkmt_event *e;

        if (result[i] == VKMT_RECLAIM_DISCARDED) {
            o->state = A_RESIDENT;
            o->stamp = 0;
            pages_sync(batch.v[i]);
            M.st.committed_bytes += bytes_of(o);
            M.st.reclaim_discarded++;
        } else if (result[i] == VKMT_RECLAIM_NOT_COMMITTED) {
            M.st.reclaim_not_committed++;
        } else {
            M.st.reclaim_ok++;
        }
        o->decommit = false;
        if (o->prio) {
            M.st.reclaims_by_prio[vkmt_prio_index(o->prio)][result[i]]++;
        }
        e = ev_take(VKMT_EV_RECLAIM);
        CHECK(e->handle == o->handle && e->queue == C.q && e->status == result[i] &&
                  e->priority == o->prio,
              "RECLAIM event 0x%x result %u prio %u, due 0x%x result %u prio %u", e->handle,
              e->status, e->priority, o->handle, result[i], o->prio);
        /* No offer is in effect any more: the engine reports priority 0. */
        if (o->state == A_RESIDENT) {
            o->prio = 0;
        }
    }
    /* With RESOURCES an element reports the worst of its members. */
    for (uint32_t e = 0, i = 0; write && e < s->count; e++) {
        uint32_t r = VKMT_RECLAIM_OK;

        for (; i < elem_end.v[e]; i++) {
            r = result[i] > r ? result[i] : r;
        }
        put_result(e, r);
    }
    C.result_len = write ? s->count * 4 : 0;
    if (pq != NONE) {
        C.value0 = ++obj(pq)->fence;
    }
}

static void c_query_memory(void)
{
    uint32_t seg = C.sqe.arg0;

    if (!expect(seg > VKMT_SEGMENT_NON_LOCAL ? VKMT_ST_INVALID_PARAMETER : VKMT_ST_SUCCESS)) {
        return;
    }
    if (seg == VKMT_SEGMENT_LOCAL) {
        C.value0 = M.budget;
        C.value1 = queue_committed(C.q);
    }
}

static void c_trim(void)
{
    uint64_t freed;

    if (!expect(M.driver_features & VKMT_F_GUEST_TRIM ? VKMT_ST_SUCCESS : VKMT_ST_NOT_SUPPORTED)) {
        return;
    }
    ev_expect_host(VKMT_EV_TRIM, C.q, C.sqe.arg64 ? C.sqe.arg64 : UINT64_MAX);
    freed = m_evict(C.sqe.arg64 ? C.sqe.arg64 : UINT64_MAX);
    M.st.trims++;
    M.st.trimmed_bytes += freed;
    C.value0 = freed;
}

static void c_query_stats(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    struct vkmt_wire_stats w = { 0 };

    if (!expect(s->result_len != sizeof(w) || s->result_off % 8 ||
                        s->result_off > STAGING - sizeof(w)
                    ? VKMT_ST_INVALID_PARAMETER
                    : VKMT_ST_SUCCESS)) {
        return;
    }
    w.allocations = M.st.allocations;
    w.committed_bytes = M.st.committed_bytes;
    w.offered_bytes = M.st.offered_bytes;
    w.budget_bytes = M.budget;
    w.offers = M.st.offers;
    w.discards = M.st.discards;
    w.discarded_bytes = M.st.discarded_bytes;
    w.reclaim_ok = M.st.reclaim_ok;
    w.reclaim_discarded = M.st.reclaim_discarded;
    w.reclaim_not_committed = M.st.reclaim_not_committed;
    w.trims = M.st.trims;
    w.commands = M.st.commands; /* this command is not counted yet */
    w.command_errors = M.st.command_errors;
    for (uint32_t q = 0; q < G.nq; q++) {
        w.queues_claimed += M.q[q].state != VKMT_QSTATE_FREE;
    }
    memcpy(C.results, &w, sizeof(w));
    C.result_len = sizeof(w);
}

static void m_command(void)
{
    const struct vkmt_sqe *s = &C.sqe;

    C.value0 = C.value1 = 0;
    C.learn0 = C.learn1 = NONE;
    C.result_len = 0;
    if (M.removed || M.failed || !(M.status & VKMT_STATUS_DRIVER_OK)) {
        expect(VKMT_ST_DEVICE_REMOVED);
        return;
    }
    if (s->opcode == 0 || s->opcode > VKMT_OP_MAX) {
        expect(VKMT_ST_NOT_SUPPORTED);
        return;
    }
    if (!fields_ok(s)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    if ((s->flags & (VKMT_SQE_F_RESOURCES | VKMT_SQE_F_CREATE_RESOURCE)) &&
        !(M.driver_features & VKMT_F_RESOURCES)) {
        expect(VKMT_ST_NOT_SUPPORTED);
        return;
    }
    switch (s->opcode) {
    case VKMT_OP_CREATE_DEVICE:
        c_create_device();
        break;
    case VKMT_OP_DESTROY_DEVICE:
        c_destroy_device();
        break;
    case VKMT_OP_CREATE_PAGING_QUEUE:
        c_create_paging_queue();
        break;
    case VKMT_OP_DESTROY_PAGING_QUEUE:
        c_destroy_paging_queue();
        break;
    case VKMT_OP_CREATE_ALLOCATIONS:
        c_create_allocations();
        break;
    case VKMT_OP_DESTROY_ALLOCATIONS:
        c_destroy_allocations();
        break;
    case VKMT_OP_LOCK:
        c_lock();
        break;
    case VKMT_OP_UNLOCK:
        c_unlock();
        break;
    case VKMT_OP_OFFER:
        c_offer();
        break;
    case VKMT_OP_RECLAIM:
        c_reclaim();
        break;
    case VKMT_OP_QUERY_MEMORY:
        c_query_memory();
        break;
    case VKMT_OP_QUERY_FENCE:
        c_query_fence();
        break;
    case VKMT_OP_TRIM:
        c_trim();
        break;
    default:
        c_query_stats();
        break;
    }
}

/* ---- Following the engine through a processing pass ---- */

/* The completion of the command before is in the CQ now: check it all. */
static void completion_check(void)
{
    const struct vkmt_cqe *cqe = cqe_at(C.q, C.cq_index);

    G.check_pending = false;
    CHECK(vkmt_sh_load_acquire(&cqe->flags) == C.phase && cqe->cid == C.sqe.cid &&
              cqe->status == C.status && cqe->sq_head == C.sq_head,
          "completion flags %u cid %u status 0x%x sq_head %u, due %u %u 0x%x %u", cqe->flags,
          cqe->cid, cqe->status, cqe->sq_head, C.phase, C.sqe.cid, C.status, C.sq_head);
    if (C.learn0 != NONE) {
        CHECK(cqe->value0 <= UINT32_MAX, "opcode 0x%x returned handle 0x%llx", C.sqe.opcode,
              (unsigned long long)cqe->value0);
        check_new_handle((uint32_t)cqe->value0, "returned");
        set_handle(C.learn0, (uint32_t)cqe->value0);
    } else {
        CHECK(cqe->value0 == C.value0, "opcode 0x%x value0 0x%llx, due 0x%llx", C.sqe.opcode,
              (unsigned long long)cqe->value0, (unsigned long long)C.value0);
    }
    if (C.learn1 != NONE) {
        CHECK(cqe->value1 <= UINT32_MAX, "opcode 0x%x returned handle 0x%llx as value1",
              C.sqe.opcode, (unsigned long long)cqe->value1);
        check_new_handle((uint32_t)cqe->value1, "returned sync");
        set_handle(C.learn1, (uint32_t)cqe->value1);
    } else {
        CHECK(cqe->value1 == C.value1, "opcode 0x%x value1 0x%llx, due 0x%llx", C.sqe.opcode,
              (unsigned long long)cqe->value1, (unsigned long long)C.value1);
    }
    /* Both areas were checked to lie inside staging. */
    if (C.status == VKMT_ST_SUCCESS && C.result_len) {
        CHECK(!memcmp(staging(C.q) + C.sqe.result_off, C.results, C.result_len),
              "opcode 0x%x wrote other results", C.sqe.opcode);
    } else if (C.snap_len) {
        CHECK(!memcmp(staging(C.q) + C.sqe.result_off, C.snap, C.snap_len),
              "opcode 0x%x (status 0x%x) wrote its result area", C.sqe.opcode, C.status);
    }
}

/* First sign of the next entry: read it as the engine must have read it. */
static void cmd_start(void)
{
    uint32_t q = (uint32_t)G.proc_q;
    struct mqueue *mq = &M.q[q];
    const struct vkmt_sqe *s = &C.sqe;

    if (G.check_pending) {
        completion_check();
    }
    CHECK(mq->state == VKMT_QSTATE_ACTIVE && mq->head != mq->tail,
          "queue %u executed an entry with none due (state %u head %u tail %u)", q, mq->state,
          mq->head, mq->tail);
    CHECK(mq->cq_tail - vkmt_sh_load(&hdr(q)->sh_cq_head) < DEPTH,
          "queue %u executed an entry with its completion queue full", q);
    C.q = q;
    memcpy(&C.sqe, qbase(q) + VKMT_QUEUE_SQ_OFF + (mq->head & (DEPTH - 1)) * sizeof(C.sqe),
           sizeof(C.sqe));
    C.payload_ok = staging_ok(s->payload_off, s->payload_len) && s->payload_len <= MAX_PAYLOAD;
    if (C.payload_ok) {
        memcpy(C.payload, staging(q) + s->payload_off, s->payload_len);
    }
    G.started = true;
}

static void cmd_finish(const struct vkmt_event *ev)
{
    struct mqueue *mq = &M.q[C.q];
    const struct vkmt_sqe *s = &C.sqe;

    CHECK(ev->queue == C.q && ev->opcode == s->opcode && ev->handle == s->handle,
          "COMMAND event queue %u opcode 0x%x handle 0x%x for entry opcode 0x%x handle 0x%x",
          ev->queue, ev->opcode, ev->handle, s->opcode, s->handle);
    C.status = ev->status;
    G.ev_cur = 0;
    m_command();
    if (step_end()) {
        M.failed = true;
    }
    M.st.commands++;
    M.st.command_errors += C.status != VKMT_ST_SUCCESS;
    if (C.status == VKMT_ST_INVALID_PARAMETER || C.status == VKMT_ST_NOT_SUPPORTED) {
        CHECK(G.guest_errors > C.ge_start, "status 0x%x for opcode 0x%x without a guest error",
              C.status, s->opcode);
    }
    if (G.trace) {
        fprintf(stderr, "  q%u cid %u opcode 0x%02x -> 0x%08x\n", C.q, s->cid, s->opcode, C.status);
    }
    G.batch_irq |= (s->flags & VKMT_SQE_F_IRQ) != 0;
    mq->head++;
    C.sq_head = mq->head;
    C.cq_index = mq->cq_tail;
    C.phase = mq->phase;
    mq->cq_tail++;
    if ((mq->cq_tail & (DEPTH - 1)) == 0) {
        mq->phase ^= VKMT_CQE_F_PHASE;
    }
    /* A failed command must leave its result area alone (PROTOCOL.md 6.1). */
    C.snap_len = 0;
    if (C.status != VKMT_ST_SUCCESS && staging_ok(s->result_off, s->result_len)) {
        C.snap_len = s->result_len < RESULT_SNAP ? s->result_len : RESULT_SNAP;
        memcpy(C.snap, staging(C.q) + s->result_off, C.snap_len);
    }
    G.check_pending = true;
    G.started = false;
    G.executed++;
    C.ge_start = G.guest_errors; /* the next entry's reports come after this */
}

static uint64_t rnd(void)
{
    G.rng ^= G.rng << 13;
    G.rng ^= G.rng >> 7;
    G.rng ^= G.rng << 17;
    return G.rng;
}

static void scribble_bytes(uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        p[i] = (uint8_t)rnd();
    }
}

/*
 * The guest rewrites shared memory of queue @q: entries, staging and header,
 * but never sh_cq_head (that only stalls the queue, which CQ_HEAD covers) nor
 * the CQ (the guest would lose its own completions). @cur: mid-command, so
 * also the entry and payload the engine is working from.
 */
static void scribble(uint32_t q, bool cur)
{
    uint64_t r = rnd();
    uint8_t *base = qbase(q);
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t off;

    switch (r % 6) {
    case 0:
        off = cur ? M.q[q].head & (DEPTH - 1) : (uint32_t)(r >> 8) % DEPTH;
        scribble_bytes(base + VKMT_QUEUE_SQ_OFF + off * sizeof(struct vkmt_sqe),
                       sizeof(struct vkmt_sqe));
        break;
    case 1:
        if (cur && staging_ok(s->payload_off, s->payload_len) && s->payload_len) {
            uint32_t end = s->payload_off + s->payload_len;

            off = s->payload_off + (uint32_t)(r >> 8) % s->payload_len;
            scribble_bytes(staging(q) + off, end - off < 64 ? end - off : 64);
        }
        break;
    case 2: {
        static const uint32_t fields[] = { 0, 8, 12, 16, 20, 24, 28, 60 };
        uint32_t v = (uint32_t)(r >> 16);

        memcpy(base + fields[(r >> 8) % 8], &v, sizeof(v));
        break;
    }
    case 3:
        if (cur && staging_ok(s->result_off, s->result_len) && s->result_len) {
            scribble_bytes(staging(q) + s->result_off, s->result_len < 64 ? s->result_len : 64);
        }
        break;
    case 4:
        scribble_bytes(base + VKMT_QUEUE_SQ_OFF + ((r >> 8) % DEPTH) * sizeof(struct vkmt_sqe),
                       sizeof(struct vkmt_sqe));
        break;
    default:
        scribble_bytes(staging(q) + (r >> 8) % (STAGING - 64), 64);
        break;
    }
}

/* ---- Engine callbacks ---- */

static void on_event(void *opaque, const struct vkmt_event *ev)
{
    (void)opaque;
    if (G.proc_q >= 0) {
        if (!G.started) {
            cmd_start();
        }
        if (ev->type == VKMT_EV_COMMAND) {
            cmd_finish(ev);
            return;
        }
        PUSH(events, *ev);
        if (G.scribbles) {
            G.scribbles--;
            scribble((uint32_t)G.proc_q, true);
        }
        return;
    }
    PUSH(events, *ev);
}

static void on_irq(void *opaque, uint32_t q)
{
    (void)opaque;
    CHECK(q < G.nq, "interrupt for queue %u", q);
    G.irqs[q]++;
}

static void on_notify(void *opaque, uint32_t q)
{
    (void)opaque;
    CHECK(q < G.nq, "notify for queue %u", q);
    G.notifies[q]++;
}

static void on_guest_error(void *opaque, const char *msg)
{
    (void)opaque;
    G.guest_errors++;
    if (G.trace) {
        fprintf(stderr, "  guest error: %s\n", msg);
    }
}

static const struct vkmt_core_ops ops_inline = {
    .raise_irq = on_irq,
    .guest_error = on_guest_error,
    .event = on_event,
};

static const struct vkmt_core_ops ops_deferred = {
    .raise_irq = on_irq,
    .notify = on_notify,
    .guest_error = on_guest_error,
    .event = on_event,
};

/* ---- The backend: checks every call, then does what the memfd one does ---- */

NO_ASAN static bool page_zero(uint32_t p)
{
    const uint8_t *b = G.ap + (size_t)p * PAGE;

    return !G.dirty[p] && !rd64(b) && !rd64(b + PAGE - 8);
}

static int backend_call(uint8_t op, uint32_t id, uint64_t off, uint64_t len)
{
    struct bcall c = { .op = op, .id = id, .off = off, .len = len };
    uint32_t first = (uint32_t)(off / PAGE), n = (uint32_t)(len / PAGE);

    CHECK(off % PAGE == 0 && len % PAGE == 0 && len && off <= G.aperture && len <= G.aperture - off,
          "backend call %u on [0x%llx +0x%llx]: not whole pages of the aperture", op,
          (unsigned long long)off, (unsigned long long)len);
    for (uint32_t p = first; p < first + n; p++) {
        if (op == BC_COMMIT) {
            CHECK(!G.committed[p], "commit of page %u, already committed", p);
            /* PROTOCOL.md 8: new and recommitted ranges read as zeros. */
            CHECK(page_zero(p), "page %u is committed with stale content", p);
            G.committed[p] = 1;
        } else {
            CHECK(G.committed[p], "backend call %u on page %u, which is not committed", op, p);
        }
    }
    c.failed = ++G.backend_calls == G.fault_at;
    PUSH(bcalls, c);
    if (op == BC_DISCARD) {
        if (G.inner) {
            CHECK(G.inner->ops->discard(G.inner, id, off, len) == 0, "memfd discard failed: %s",
                  strerror(errno));
        }
        for (uint32_t p = first; p < first + n; p++) {
            if (G.dirty[p]) {
                if (!G.inner) {
                    memset(G.ap + (size_t)p * PAGE, 0, PAGE);
                }
                G.dirty[p] = 0;
            }
            CHECK(page_zero(p), "page %u holds content after a discard", p);
            G.committed[p] = 0;
        }
    }
    /* A failed call still did its work: the device must stop trusting it. */
    return c.failed ? -EIO : 0;
}

static int be_commit(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                     const struct vkmt_shape *shape)
{
    int ret;

    (void)b;
    ret = backend_call(BC_COMMIT, id, off, len);
    if (shape) {
        bcalls.v[bcalls.n - 1].textured = true;
        bcalls.v[bcalls.n - 1].shape = *shape;
    }
    return ret;
}

static int be_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    return backend_call(BC_DISCARD, id, off, len);
}

static int be_lock(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    return backend_call(BC_LOCK, id, off, len);
}

static int be_unlock(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    return backend_call(BC_UNLOCK, id, off, len);
}

static void be_destroy(struct vkmt_backend *b)
{
    (void)b;
}

static const struct vkmt_backend_ops backend_ops = {
    .name = "fuzz",
    .commit = be_commit,
    .discard = be_discard,
    .lock = be_lock,
    .unlock = be_unlock,
    .destroy = be_destroy,
};

static struct vkmt_backend backend;

/* ---- Calling the engine ---- */

static void call_begin(int proc_q)
{
    G.proc_q = proc_q;
    G.started = false;
    G.check_pending = false;
    G.batch_irq = false;
    G.executed = 0;
    G.released = 0;
    C.ge_start = G.guest_errors;
    events.n = 0;
    bcalls.n = 0;
    step_begin();
}

/* Entries a processing pass on @q must execute: PROTOCOL.md 5.2. */
static uint32_t runnable(uint32_t q)
{
    const struct mqueue *mq = &M.q[q];
    uint32_t used = mq->cq_tail - vkmt_sh_load(&hdr(q)->sh_cq_head);
    uint32_t space = used >= DEPTH ? 0 : DEPTH - used;

    if (mq->state != VKMT_QSTATE_ACTIVE) {
        return 0;
    }
    return mq->tail - mq->head < space ? mq->tail - mq->head : space;
}

static void process_end(uint32_t q, uint32_t want, uint32_t irqs)
{
    if (G.check_pending) {
        completion_check();
    }
    CHECK(!G.started && events.n == 0, "events after the last command of a pass");
    CHECK(G.executed == want, "queue %u: %u entries executed, %u due", q, G.executed, want);
    CHECK(vkmt_sh_load(&hdr(q)->sh_sq_head) == M.q[q].head, "queue %u: sh_sq_head %u, due %u", q,
          vkmt_sh_load(&hdr(q)->sh_sq_head), M.q[q].head);
    if (G.batch_irq) {
        M.isr |= 1u << q;
    }
    CHECK(G.irqs[q] == irqs + G.batch_irq, "queue %u: %u interrupts, due %u", q, G.irqs[q] - irqs,
          G.batch_irq);
    G.proc_q = -1;
}

/* @failures: whether a failed commit or discard leaves the device needing reset
 * (not after a reset, which clears that). */
static void host_step_end_(bool failures)
{
    if (step_end() && failures) {
        M.failed = true;
    }
    for (uint32_t q = 0; q < G.nq; q++) {
        if (G.released & (1u << q)) {
            CHECK(vkmt_sh_load(&hdr(q)->sh_state) == VKMT_QSTATE_FREE,
                  "released queue %u has sh_state %u", q, vkmt_sh_load(&hdr(q)->sh_state));
        }
    }
}

static void host_step_end(void)
{
    host_step_end_(true);
}

/* A doorbell write (@kick: an event doorbell reading sh_sq_tail). */
static void doorbell(uint32_t q, uint32_t tail, bool kick)
{
    enum { IGNORE, ERROR, ACCEPT } act = ACCEPT;
    uint32_t irqs = q < G.nq ? G.irqs[q] : 0, notifies = q < G.nq ? G.notifies[q] : 0, want = 0;
    bool run;

    if (q >= G.nq || M.q[q].state != VKMT_QSTATE_ACTIVE) {
        act = IGNORE;
    } else if (tail - M.q[q].head > DEPTH) {
        act = ERROR;
    }
    run = act == ACCEPT && !G.deferred;
    if (act == ACCEPT) {
        M.q[q].tail = tail;
        want = run ? runnable(q) : 0;
    }
    call_begin(run ? (int)q : -1);
    if (kick) {
        vkmt_core_kick(G.core, q);
    } else {
        vkmt_core_reg_write(G.core, VKMT_REG_DOORBELL(q), tail);
    }
    if (run) {
        process_end(q, want, irqs);
        CHECK(G.notifies[q] == notifies, "notify without the notify mode");
        return;
    }
    if (act == ERROR) {
        const struct vkmt_event *e = ev_take(VKMT_EV_QUEUE_ERROR);

        CHECK(e->queue == q, "QUEUE_ERROR names queue %u, due %u", e->queue, q);
        M.q[q].state = VKMT_QSTATE_ERROR;
        M.st.queue_errors++;
        M.isr |= 1u << q;
        CHECK(G.irqs[q] == irqs + 1, "queue %u entered ERROR without an interrupt", q);
        CHECK(vkmt_sh_load(&hdr(q)->sh_state) == VKMT_QSTATE_ERROR &&
                  vkmt_sh_load(&hdr(q)->sh_error) == VKMT_QERR_DOORBELL_RANGE,
              "queue %u in ERROR shows sh_state %u sh_error %u", q, vkmt_sh_load(&hdr(q)->sh_state),
              vkmt_sh_load(&hdr(q)->sh_error));
    } else if (q < G.nq) {
        CHECK(G.irqs[q] == irqs, "interrupt on a doorbell that ran nothing");
        CHECK(G.notifies[q] == notifies + (act == ACCEPT),
              "queue %u: notify count %u after a doorbell (%s)", q, G.notifies[q] - notifies,
              act == ACCEPT ? "accepted" : "ignored");
    }
    host_step_end();
}

static void process(uint32_t q)
{
    uint32_t want, irqs, done;

    if (q >= G.nq) {
        call_begin(-1);
        CHECK(vkmt_core_process(G.core, q) == 0, "processing queue %u that does not exist", q);
        host_step_end();
        return;
    }
    want = runnable(q);
    irqs = G.irqs[q];
    call_begin((int)q);
    done = vkmt_core_process(G.core, q);
    process_end(q, want, irqs);
    CHECK(done == want, "vkmt_core_process returned %u, ran %u", done, want);
}

static void reg_write(uint32_t off, uint32_t val)
{
    bool reset = false;

    if (off >= VKMT_REG(sq_doorbell) && off < VKMT_REG_DOORBELL(VKMT_MAX_QUEUES) && off % 4 == 0) {
        doorbell((off - VKMT_REG(sq_doorbell)) / 4, val, false);
        return;
    }
    call_begin(-1);
    vkmt_core_reg_write(G.core, off, val);
    switch (off) {
    case VKMT_REG(driver_features):
        /* Frozen once FEATURES_OK is set. */
        if (!(M.status & VKMT_STATUS_FEATURES_OK)) {
            M.driver_features = val;
        }
        break;
    case VKMT_REG(status):
        m_status_write(val);
        reset = val == 0;
        break;
    case VKMT_REG(queue_reap): {
        uint32_t q = val & 0xffu;

        if (q < G.nq && M.q[q].state != VKMT_QSTATE_FREE &&
            (M.q[q].claim_seq & 0xffffffu) == val >> 8) {
            m_release(q);
        }
        break;
    }
    case VKMT_REG(queue_release):
        if (val < G.nq && M.q[val].state != VKMT_QSTATE_FREE) {
            m_release(val);
        }
        break;
    case VKMT_REG(isr_lo):
        M.isr &= ~val;
        break;
    default:
        break;
    }
    host_step_end_(!reset);
}

static void reg_read(uint32_t off)
{
    uint32_t got, want;

    call_begin(-1);
    got = vkmt_core_reg_read(G.core, off);
    want = off == VKMT_REG(queue_claim) ? m_claim() : m_reg_value(off);
    CHECK(got == want, "register 0x%x reads 0x%x, due 0x%x", off, got, want);
    host_step_end();
    if (off == VKMT_REG(queue_claim) && got != VKMT_QUEUE_NONE) {
        static const uint8_t zero[VKMT_QUEUE_STAGING_OFF];
        struct vkmt_queue_hdr h;

        /* PROTOCOL.md 5: a claim zeroes header, SQ and CQ. */
        memcpy(&h, hdr(got), sizeof(h));
        CHECK(h.sh_claim_seq == M.q[got].claim_seq && h.sh_state == VKMT_QSTATE_ACTIVE,
              "claimed queue %u shows claim_seq %u state %u", got, h.sh_claim_seq, h.sh_state);
        h.sh_claim_seq = h.sh_state = 0;
        CHECK(!memcmp(&h, zero, sizeof(h)) &&
                  !memcmp(qbase(got) + sizeof(h), zero, sizeof(zero) - sizeof(h)),
              "claimed queue %u is not zeroed", got);
        G.drv[got] = (struct drv){ .claimed = true, .phase = VKMT_CQE_F_PHASE };
    }
}

static void host_trim(uint64_t bytes)
{
    uint64_t got, freed;

    call_begin(-1);
    got = vkmt_core_trim(G.core, bytes);
    ev_expect_host(VKMT_EV_TRIM, VKMT_EV_HOST, bytes);
    freed = m_evict(bytes);
    M.st.trims++;
    M.st.trimmed_bytes += freed;
    CHECK(got == freed, "trim of %llu freed %llu, due %llu", (unsigned long long)bytes,
          (unsigned long long)got, (unsigned long long)freed);
    host_step_end();
}

static void host_budget(uint64_t b)
{
    call_begin(-1);
    vkmt_core_set_budget(G.core, b);
    M.budget = budget_for(b);
    M.config_gen++;
    ev_expect_host(VKMT_EV_BUDGET, VKMT_EV_HOST, M.budget);
    m_enforce_budget();
    host_step_end();
}

static void host_reset(void)
{
    call_begin(-1);
    vkmt_core_reset(G.core);
    m_reset();
    host_step_end_(false);
}

/* The guest consumes every completion, as a polling driver does. */
static void reap(void)
{
    for (uint32_t q = 0; q < G.nq; q++) {
        struct drv *d = &G.drv[q];
        uint32_t n = 0;

        if (!d->claimed) {
            continue;
        }
        while ((vkmt_sh_load_acquire(&cqe_at(q, d->cq_head)->flags) & VKMT_CQE_F_PHASE) ==
               d->phase) {
            CHECK(++n <= DEPTH, "queue %u: more than a ring of completions", q);
            d->cq_head++;
            if ((d->cq_head & (DEPTH - 1)) == 0) {
                d->phase ^= VKMT_CQE_F_PHASE;
            }
        }
        if (n) {
            vkmt_sh_store_release(&hdr(q)->sh_cq_head, d->cq_head);
        }
        CHECK(d->cq_head == M.q[q].cq_tail, "queue %u: %u completions visible, %u produced", q,
              d->cq_head, M.q[q].cq_tail);
    }
}

/* ---- Invariants after every operation ---- */

#define ST_EQ(field)                                                                               \
    CHECK(st.field == M.st.field, "stats." #field " %llu, due %llu", (unsigned long long)st.field, \
          (unsigned long long)M.st.field)

static void check_stats(void)
{
    struct vkmt_stats st;

    vkmt_core_get_stats(G.core, &st);
    ST_EQ(commands);
    ST_EQ(command_errors);
    ST_EQ(queue_errors);
    ST_EQ(devices);
    ST_EQ(allocations);
    ST_EQ(resources);
    ST_EQ(committed_bytes);
    ST_EQ(offered_bytes);
    ST_EQ(offers);
    ST_EQ(discards);
    ST_EQ(discarded_bytes);
    ST_EQ(decommits);
    ST_EQ(reclaim_ok);
    ST_EQ(reclaim_discarded);
    ST_EQ(reclaim_not_committed);
    ST_EQ(trims);
    ST_EQ(trimmed_bytes);
    for (int i = 0; i < VKMT_PRIO_CLASSES; i++) {
        ST_EQ(offered_bytes_by_prio[i]);
        ST_EQ(discarded_bytes_by_prio[i]);
        ST_EQ(offered_bytes_total_by_prio[i]);
        for (int r = 0; r < VKMT_RECLAIM_RESULTS; r++) {
            ST_EQ(reclaims_by_prio[i][r]);
        }
    }
    CHECK(st.budget_bytes == M.budget, "stats.budget_bytes %llu, due %llu",
          (unsigned long long)st.budget_bytes, (unsigned long long)M.budget);
    CHECK(st.guest_errors == G.guest_errors, "stats.guest_errors %llu, %u reported",
          (unsigned long long)st.guest_errors, G.guest_errors);
    /* PROTOCOL.md 9: over budget only when nothing offered is left to discard
     * (a budget lowered below what is resident). */
    CHECK(st.committed_bytes <= st.budget_bytes || st.offered_bytes == 0,
          "committed %llu over budget %llu with %llu offered",
          (unsigned long long)st.committed_bytes, (unsigned long long)st.budget_bytes,
          (unsigned long long)st.offered_bytes);
}

static void check_registers(void)
{
    static const uint32_t regs[] = {
        VKMT_REG(status),        VKMT_REG(driver_features),
        VKMT_REG(removal_epoch), VKMT_REG(config_generation),
        VKMT_REG(isr_lo),        VKMT_REG(isr_hi),
        VKMT_REG(budget_lo),     VKMT_REG(budget_hi),
    };

    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        uint32_t got = vkmt_core_reg_read(G.core, regs[i]), want = m_reg_value(regs[i]);

        CHECK(got == want, "register 0x%x reads 0x%x, due 0x%x", regs[i], got, want);
    }
}

/*
 * The model agrees with itself, the backend holds exactly the ranges of
 * resident and offered allocations, and content is what the guest left:
 * its pattern, or zeros once discarded (PROTOCOL.md 8).
 */
NO_ASAN static void check_memory(void)
{
    uint64_t committed = 0, offered = 0, by_prio[VKMT_PRIO_CLASSES] = { 0 };
    uint64_t allocs = 0, devices = 0, resources = 0, nlive = 0;
    uint8_t want[FZ_PAGES_MAX] = { 0 }, used[FZ_PAGES_MAX] = { 0 };

    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);
        const uint8_t *base;

        if (!o->live) {
            continue;
        }
        nlive++;
        devices += o->kind == K_DEVICE;
        resources += o->kind == K_RES;
        if (o->kind != K_ALLOC) {
            continue;
        }
        allocs++;
        if (o->state == A_DECOMMITTED) {
            continue;
        }
        base = G.ap + (size_t)o->page * PAGE;
        for (uint32_t p = o->page; p < o->page + o->npages; p++) {
            used[p] = 1;
            want[p] = o->state != A_DISCARDED;
        }
        if (o->state == A_DISCARDED) {
            for (uint32_t p = o->page; p < o->page + o->npages; p++) {
                CHECK(page_zero(p), "discarded allocation 0x%x: page %u is not zero", o->handle, p);
            }
            continue;
        }
        committed += bytes_of(o);
        if (o->state == A_OFFERED) {
            offered += bytes_of(o);
            by_prio[vkmt_prio_index(o->prio)] += bytes_of(o);
        }
        for (uint32_t p = 0; p < o->npages; p++) {
            CHECK(rd64(base + (size_t)p * PAGE) == o->stamp,
                  "allocation 0x%x (state %u) page %u holds 0x%llx, due 0x%llx", o->handle,
                  o->state, p, (unsigned long long)rd64(base + (size_t)p * PAGE),
                  (unsigned long long)o->stamp);
        }
        if (o->size >= 8) {
            CHECK(rd64(base + o->size - 8) == o->stamp, "allocation 0x%x: last bytes changed",
                  o->handle);
        }
        if (bytes_of(o) - o->size >= 8) {
            CHECK(!rd64(base + bytes_of(o) - 8), "allocation 0x%x: bytes past its size", o->handle);
        }
    }
    CHECK(committed == M.st.committed_bytes && offered == M.st.offered_bytes &&
              allocs == M.st.allocations && devices == M.st.devices && resources == M.st.resources,
          "model sums disagree with the model's counters");
    for (int i = 0; i < VKMT_PRIO_CLASSES; i++) {
        CHECK(by_prio[i] == M.st.offered_bytes_by_prio[i], "model offered bytes by priority");
    }
    CHECK(nlive == M.live_objs, "model live count %llu, counter %u", (unsigned long long)nlive,
          M.live_objs);
    for (uint32_t p = 0; p < G.npages; p++) {
        CHECK(used[p] == M.page_used[p], "model page map at page %u", p);
        CHECK(G.committed[p] == want[p], "page %u: backend %s it, the model %s", p,
              G.committed[p] ? "holds" : "does not hold", want[p] ? "does" : "does not");
        if (!used[p]) {
            CHECK(page_zero(p), "free page %u is not zero", p);
        }
    }
}

/*
 * After every step: the backend holds exactly the pages of resident and
 * offered allocations, and each of those starts with the guest's pattern
 * (or zeros). Pages nobody holds are only checked against the guest's own
 * writes here; check_memory reads them, checks every allocation's last bytes
 * and the model against itself every CHECK_FULL_EVERY steps and at the end,
 * since touching all of a 128-page aperture every step costs more than the
 * step. Registers, which only operations the model follows can change, are
 * read back on the same schedule.
 */
#define CHECK_FULL_EVERY 16u

NO_ASAN static void check_pages(void)
{
    CHECK(!memcmp(G.committed, M.page_held, G.npages), "backend pages differ from the model's");
    for (uint32_t p = 0; p < G.npages; p++) {
        if (M.page_held[p]) {
            uint64_t v = rd64(G.ap + (size_t)p * PAGE);

            CHECK(v == M.page_stamp[p], "page %u starts with 0x%llx, due 0x%llx", p,
                  (unsigned long long)v, (unsigned long long)M.page_stamp[p]);
        } else {
            CHECK(!G.dirty[p], "page %u, which nobody holds, has guest content", p);
        }
    }
}

static void check_all(void)
{
    reap();
    check_stats();
    check_pages();
    if (G.nops % CHECK_FULL_EVERY == 0) {
        check_registers();
        check_memory();
    }
}

/* ---- Decoding operations ---- */

static const uint8_t other_kind[K_COUNT][4] = {
    [K_DEVICE] = { K_PQ, K_SYNC, K_ALLOC, K_RES }, [K_PQ] = { K_DEVICE, K_SYNC, K_ALLOC, K_RES },
    [K_SYNC] = { K_PQ, K_DEVICE, K_ALLOC, K_RES }, [K_ALLOC] = { K_RES, K_DEVICE, K_PQ, K_SYNC },
    [K_RES] = { K_ALLOC, K_DEVICE, K_PQ, K_SYNC },
};

/* The @k-th live object of @kind matching @q (and device @dev), or NONE. */
static uint32_t nth_live(uint8_t kind, uint32_t q, bool same_q, uint32_t dev, uint32_t k,
                         uint32_t *count)
{
    uint32_t n = 0, hit = NONE;

    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (!o->live || o->kind != kind || (o->queue == q) != same_q ||
            (dev != NONE && (kind == K_ALLOC || kind == K_RES) && o->parent != dev)) {
            continue;
        }
        if (n++ == k) {
            hit = live.v[i];
        }
    }
    *count = n;
    return hit;
}

/* A handle operand (fuzz_input.h describes the selector byte). */
static uint32_t pick(uint8_t kind, uint32_t q, uint32_t dev)
{
    uint8_t s = g8();
    uint32_t n, i;

    if (s == FZ_SEL_LITERAL) {
        return g32();
    }
    if (s == FZ_SEL_ZERO) {
        return 0;
    }
    if (s >= FZ_SEL_STALE) {
        for (uint32_t k = pool[kind].n; k-- > 0;) {
            if (!obj(pool[kind].v[k])->live) {
                return obj(pool[kind].v[k])->handle;
            }
        }
        return 0;
    }
    if (s >= FZ_SEL_FOREIGN || s >= FZ_SEL_OTHER_KIND) {
        uint8_t k = s >= FZ_SEL_FOREIGN ? kind : other_kind[kind][s & 3];

        nth_live(k, q, s < FZ_SEL_FOREIGN, NONE, 0, &n);
        i = n ? nth_live(k, q, s < FZ_SEL_FOREIGN, NONE, s % n, &n) : NONE;
        return i == NONE ? 0 : obj(i)->handle;
    }
    if (s >= FZ_SEL_ANY) {
        n = pool[kind].n;
        return n ? obj(pool[kind].v[(s - FZ_SEL_ANY) % n])->handle : 0;
    }
    nth_live(kind, q, true, dev, 0, &n);
    i = n ? nth_live(kind, q, true, dev, s % n, &n) : NONE;
    return i == NONE ? 0 : obj(i)->handle;
}

static uint32_t pick_device(uint32_t q, uint32_t *dev)
{
    uint32_t h = pick(K_DEVICE, q, NONE);

    *dev = lookup(h, K_DEVICE, q);
    return h;
}

static void corrupt(struct vkmt_sqe *s, uint8_t c)
{
    switch (c % 14) {
    case 0:
        s->reserved0 = (uint8_t)(c | 1);
        break;
    case 1:
        s->reserved1[c % 16] = 1;
        break;
    case 2:
        s->flags |= (uint16_t)(1u << (1 + c % 15));
        break;
    case 3:
        s->handle ^= 1u + c;
        break;
    case 4:
        s->count++;
        break;
    case 5:
        s->count = 0;
        break;
    case 6:
        s->count = VKMT_MAX_BATCH + 1;
        break;
    case 7:
        s->payload_off += 2;
        break;
    case 8:
        s->payload_off = STAGING - 4;
        break;
    case 9:
        s->result_len += 4;
        break;
    case 10:
        s->result_off = STAGING;
        break;
    case 11:
        s->arg0 ^= 0x80000000u;
        break;
    case 12:
        s->arg1 |= 0x10u;
        break;
    default:
        s->arg64 = 1ull << (c % 64);
        break;
    }
}

/* Lay a command's payload and result area out in its slot's staging region. */
static void place(uint32_t q, struct vkmt_sqe *s, const void *payload, uint32_t plen, uint32_t rlen)
{
    uint32_t region = (G.drv[q].sq_tail & (DEPTH - 1)) * REGION;

    if (plen) {
        memcpy(staging(q) + region, payload, plen);
        s->payload_off = region;
        s->payload_len = plen;
    }
    if (rlen) {
        s->result_off = region + ((plen + 63u) & ~63u);
        s->result_len = rlen;
        memset(staging(q) + s->result_off, 0xa5, rlen);
    }
}

static void ring(uint32_t q, uint8_t mod)
{
    struct drv *d = &G.drv[q];

    if (mod & FZ_MOD_KICK) {
        vkmt_sh_store_release(&hdr(q)->sh_sq_tail, d->sq_tail);
        doorbell(q, d->sq_tail, true);
    } else {
        doorbell(q, d->sq_tail, false);
    }
    if (G.deferred && !(mod & FZ_MOD_PENDING)) {
        process(q);
    }
}

static void submit(uint32_t q, struct vkmt_sqe *s, uint8_t mod)
{
    struct drv *d = &G.drv[q];

    memcpy(qbase(q) + VKMT_QUEUE_SQ_OFF + (d->sq_tail & (DEPTH - 1)) * sizeof(*s), s, sizeof(*s));
    d->sq_tail++;
    if (!(mod & FZ_MOD_BATCH)) {
        ring(q, mod);
    }
}

static void command_op(uint8_t op)
{
    static uint8_t pl[FZ_MAX_ELEMS * sizeof(struct vkmt_alloc_desc)];
    uint32_t q = g8() % G.nq, plen = 0, rlen = 0, n, dev = NONE;
    uint8_t mod = g8(), c = (mod & FZ_MOD_CORRUPT) == FZ_MOD_CORRUPT ? g8() : 0, f;
    struct vkmt_sqe s = { .cid = G.drv[q].cid + 1 };
    bool stats_shape = false;

    G.drv[q].cid++;
    if (mod & FZ_MOD_IRQ) {
        s.flags = VKMT_SQE_F_IRQ;
    }
    switch (op) {
    case FZ_OP_CREATE_DEVICE:
        s.opcode = VKMT_OP_CREATE_DEVICE;
        break;
    case FZ_OP_DESTROY_DEVICE:
        s.opcode = VKMT_OP_DESTROY_DEVICE;
        s.handle = pick(K_DEVICE, q, NONE);
        break;
    case FZ_OP_CREATE_PQ:
        s.opcode = VKMT_OP_CREATE_PAGING_QUEUE;
        s.handle = pick(K_DEVICE, q, NONE);
        f = g8();
        s.arg0 = f < 0xf0 ? (uint32_t)((int32_t)(f % 5) - 2) : (uint32_t)f << 24;
        break;
    case FZ_OP_DESTROY_PQ:
        s.opcode = VKMT_OP_DESTROY_PAGING_QUEUE;
        s.handle = pick(K_PQ, q, NONE);
        break;
    case FZ_OP_CREATE_ALLOCS:
        s.opcode = VKMT_OP_CREATE_ALLOCATIONS;
        s.handle = pick_device(q, &dev);
        s.flags |= g8() & 1 ? VKMT_SQE_F_CREATE_RESOURCE : 0;
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t b = g8();
            struct vkmt_alloc_desc desc = fz_desc(b, G.aperture, M.budget);

            memcpy(pl + i * sizeof(desc), &desc, sizeof(desc));
        }
        s.count = n;
        plen = n * (uint32_t)sizeof(struct vkmt_alloc_desc);
        rlen = n * 4;
        break;
    case FZ_OP_DESTROY_ALLOCS:
        s.opcode = VKMT_OP_DESTROY_ALLOCATIONS;
        s.handle = pick_device(q, &dev);
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(K_ALLOC, q, dev);

            memcpy(pl + i * 4, &h, 4);
        }
        s.count = n;
        plen = n * 4;
        break;
    case FZ_OP_DESTROY_RESOURCE:
        s.opcode = VKMT_OP_DESTROY_ALLOCATIONS;
        s.handle = pick_device(q, &dev);
        s.arg0 = pick(K_RES, q, dev);
        break;
    case FZ_OP_LOCK:
    case FZ_OP_UNLOCK:
        s.opcode = op == FZ_OP_LOCK ? VKMT_OP_LOCK : VKMT_OP_UNLOCK;
        s.handle = pick_device(q, &dev);
        s.arg0 = pick(K_ALLOC, q, dev);
        break;
    case FZ_OP_OFFER: {
        uint8_t p, o;

        s.opcode = VKMT_OP_OFFER;
        s.handle = pick_device(q, &dev);
        f = g8();
        p = g8();
        o = g8();
        s.flags |= f & 1 ? VKMT_SQE_F_RESOURCES : 0;
        s.arg0 = p < 0xf0 ? 1u + p % 4 : p & 0x0fu;
        s.arg1 = (o & 3u) | (o & 0x80 ? 4u : 0);
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(f & 1 ? K_RES : K_ALLOC, q, dev);

            memcpy(pl + i * 4, &h, 4);
        }
        s.count = n;
        plen = n * 4;
        break;
    }
    case FZ_OP_RECLAIM:
        s.opcode = VKMT_OP_RECLAIM;
        f = g8();
        s.flags |= (f & FZ_RF_RESOURCES ? VKMT_SQE_F_RESOURCES : 0) |
                   (f & FZ_RF_PAGING_QUEUE ? VKMT_SQE_F_PAGING_QUEUE : 0) |
                   (f & FZ_RF_WRITE_RESULTS ? VKMT_SQE_F_WRITE_RESULTS : 0) |
                   (f & FZ_RF_RECOMMIT ? VKMT_SQE_F_RECOMMIT : 0);
        if (f & FZ_RF_PAGING_QUEUE) {
            uint32_t p;

            s.handle = pick(K_PQ, q, NONE);
            p = lookup(s.handle, K_PQ, q);
            dev = p == NONE ? NONE : obj(p)->parent;
        } else {
            s.handle = pick_device(q, &dev);
        }
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(f & FZ_RF_RESOURCES ? K_RES : K_ALLOC, q, dev);

            memcpy(pl + i * 4, &h, 4);
        }
        s.count = n;
        plen = n * 4;
        rlen = f & FZ_RF_WRITE_RESULTS ? n * 4 : 0;
        break;
    case FZ_OP_QUERY_MEMORY:
        s.opcode = VKMT_OP_QUERY_MEMORY;
        f = g8();
        s.arg0 = f < 0xf0 ? f % 2u : f;
        break;
    case FZ_OP_QUERY_FENCE:
        s.opcode = VKMT_OP_QUERY_FENCE;
        s.handle = pick(K_SYNC, q, NONE);
        break;
    case FZ_OP_TRIM_CMD:
        s.opcode = VKMT_OP_TRIM;
        s.arg64 = (uint64_t)g8() * FZ_BYTE_UNIT;
        break;
    case FZ_OP_QUERY_STATS:
        s.opcode = VKMT_OP_QUERY_STATS;
        rlen = sizeof(struct vkmt_wire_stats);
        stats_shape = true;
        break;
    default: /* FZ_OP_RAW_SQE */
        for (uint32_t i = 0; i < sizeof(s); i++) {
            ((uint8_t *)&s)[i] = g8();
        }
        break;
    }
    place(q, &s, pl, plen, rlen);
    if (stats_shape) {
        f = g8();
        if (f >= 0xf0) {
            s.result_off += f & 1 ? 4 : 0;
            s.result_len = f & 2 ? 64 : s.result_len;
            s.result_off = f & 4 ? STAGING - 64 : s.result_off;
        }
    }
    if (c) {
        corrupt(&s, c);
    }
    if (G.trace) {
        fprintf(stderr, "post q%u opcode 0x%02x handle 0x%x count %u arg0 0x%x%s\n", q, s.opcode,
                s.handle, s.count, s.arg0, mod & FZ_MOD_BATCH ? " (batched)" : "");
    }
    submit(q, &s, mod);
}

/* Many small creations behind one doorbell: grows the handle table past its
 * first allocation and fills the ring in one pass. */
static void bulk_op(void)
{
    uint32_t q = g8() % G.nq, n, dev = NONE, count;
    uint8_t mod = g8(), what = g8();
    struct vkmt_sqe s = { .opcode =
                              what & 1 ? VKMT_OP_CREATE_PAGING_QUEUE : VKMT_OP_CREATE_DEVICE };

    n = 1 + g8() % DEPTH;
    if (what & 1) {
        nth_live(K_DEVICE, q, true, NONE, 0, &count);
        dev = count ? nth_live(K_DEVICE, q, true, NONE, count - 1, &count) : NONE;
        s.handle = dev == NONE ? 0 : obj(dev)->handle;
    }
    for (uint32_t i = 0; i < n; i++) {
        s.cid = ++G.drv[q].cid;
        submit(q, &s, i + 1 < n ? FZ_MOD_BATCH : mod & (uint8_t)~FZ_MOD_BATCH);
    }
}

static void stamp_write(uint32_t i)
{
    struct mobj *o = obj(i);
    uint8_t *base = G.ap + (size_t)o->page * PAGE;
    uint64_t v = (++G.stamps * 0x9e3779b97f4a7c15ull) | 1u;

    for (uint32_t p = 0; p < o->npages; p++) {
        memcpy(base + (size_t)p * PAGE, &v, sizeof(v));
        G.dirty[o->page + p] = 1;
    }
    if (o->size >= 8) {
        memcpy(base + o->size - 8, &v, sizeof(v));
    }
    o->stamp = v;
    pages_sync(i);
}

static void handshake(uint32_t features)
{
    reg_write(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE);
    reg_write(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    reg_read(VKMT_REG(device_features));
    reg_write(VKMT_REG(driver_features), features);
    reg_write(VKMT_REG(status),
              VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_FEATURES_OK);
    reg_read(VKMT_REG(status));
    reg_write(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER |
                                    VKMT_STATUS_FEATURES_OK | VKMT_STATUS_DRIVER_OK);
}

static void one_op(void)
{
    uint8_t op = g8() % FZ_OP_COUNT, a, b;
    uint32_t q, n, i;

    fail_op = ++G.nops;
    live_compact();
    if (G.trace) {
        fprintf(stderr, "op %u: %u\n", G.nops, op);
    }
    switch (op) {
    case FZ_OP_HANDSHAKE:
        a = g8();
        handshake(a < 0xc0 ? a & 3u : a);
        break;
    case FZ_OP_CLAIM:
        reg_read(VKMT_REG(queue_claim));
        break;
    case FZ_OP_RELEASE:
        reg_write(VKMT_REG(queue_release), g8());
        break;
    case FZ_OP_REAP:
        a = g8();
        b = g8();
        reg_write(VKMT_REG(queue_reap),
                  VKMT_REAP(a, M.q[a % G.nq].claim_seq + (uint32_t)(int32_t)(int8_t)b));
        break;
    case FZ_OP_REG_WRITE:
        a = g8();
        reg_write(fz_reg_off(a), g32());
        break;
    case FZ_OP_REG_READ:
        reg_read(fz_reg_off(g8()));
        break;
    case FZ_OP_STATUS:
        reg_write(VKMT_REG(status), g8());
        break;
    case FZ_OP_DOORBELL:
        a = g8() & 3;
        b = g8();
        doorbell(a, (a < G.nq ? G.drv[a].sq_tail : 0) + (uint32_t)(int32_t)(int8_t)b, false);
        break;
    case FZ_OP_KICK:
        a = g8() & 3;
        b = g8();
        if (a < G.nq && b != 0x80) {
            vkmt_sh_store_release(&hdr(a)->sh_sq_tail,
                                  G.drv[a].sq_tail + (uint32_t)(int32_t)(int8_t)b);
        }
        doorbell(a, a < G.nq ? vkmt_sh_load(&hdr(a)->sh_sq_tail) : 0, true);
        break;
    case FZ_OP_PROCESS:
        process(g8() & 3);
        break;
    case FZ_OP_CQ_HEAD:
        q = g8() % G.nq;
        b = g8();
        vkmt_sh_store_release(&hdr(q)->sh_cq_head, G.drv[q].cq_head + (uint32_t)(int32_t)(int8_t)b);
        break;
    case FZ_OP_TRIM:
        a = g8();
        host_trim(a == 0xff ? UINT64_MAX : (uint64_t)a * FZ_BYTE_UNIT);
        break;
    case FZ_OP_BUDGET:
        host_budget((uint64_t)g8() * FZ_BYTE_UNIT);
        break;
    case FZ_OP_RESET:
        host_reset();
        break;
    case FZ_OP_REMOVE:
        M.removed = g8() & 1;
        vkmt_core_set_removed(G.core, M.removed);
        break;
    case FZ_OP_FILL:
        a = g8();
        n = 0;
        for (i = 0; i < live.n; i++) {
            const struct mobj *o = obj(live.v[i]);

            n += o->live && o->kind == K_ALLOC && o->locks;
        }
        for (i = 0, n = n ? a % n + 1 : 0; n && i < live.n; i++) {
            const struct mobj *o = obj(live.v[i]);

            if (o->live && o->kind == K_ALLOC && o->locks && --n == 0) {
                stamp_write(live.v[i]);
            }
        }
        break;
    case FZ_OP_SCRIBBLE:
        a = g8();
        b = g8();
        G.rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)b << 32 | a) ^ G.nops;
        if (a == 0) {
            scribble(b % G.nq, false);
        } else {
            G.scribbles = a;
        }
        break;
    case FZ_OP_BULK:
        bulk_op();
        break;
    default:
        command_op(op);
        break;
    }
}

/* ---- One input ---- */

static void map_apertures(void)
{
    size_t size = (size_t)FZ_PAGES_MAX * PAGE;

    ap_anon = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ap_anon != MAP_FAILED, "mmap: %s", strerror(errno));
    memfd = memfd_create("vkmt-fuzz-aperture", MFD_CLOEXEC);
    if (memfd >= 0 && ftruncate(memfd, (off_t)size) == 0) {
        ap_memfd = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    }
    if (!ap_memfd || ap_memfd == MAP_FAILED) {
        ap_memfd = NULL; /* no memfd here: FZ_CFG_MEMFD inputs use the plain aperture */
    }
}

static void setup(const uint8_t *data, size_t size)
{
    struct vkmt_core_config cfg = { 0 };
    uint8_t h[FZ_HDR_LEN] = { 0 };
    int err;

    if (!ap_anon) {
        map_apertures();
    }
    memset(&G, 0, sizeof(G));
    memset(&M, 0, sizeof(M));
    forget_handles();
    objs.n = live.n = batch.n = elem_end.n = events.n = exp_destroy.n = 0;
    bcalls.n = exp_discards.n = 0;
    for (int k = 0; k < K_COUNT; k++) {
        pool[k].n = 0;
    }
    memcpy(h, data, size < FZ_HDR_LEN ? size : FZ_HDR_LEN);
    G.in = data;
    G.len = size;
    G.pos = FZ_HDR_LEN;
    G.proc_q = -1;
    if (trace_env < 0) {
        trace_env = getenv("FUZZ_CORE_TRACE") != NULL;
    }
    G.trace = trace_env;
    G.cfg = h[FZ_HDR_CONFIG];
    G.nq = G.cfg & FZ_CFG_TWO_QUEUES ? 2 : 1;
    G.deferred = G.cfg & FZ_CFG_DEFERRED;
    G.memfd = (G.cfg & FZ_CFG_MEMFD) && ap_memfd;
    /* No header bit is left for textures: the device always offers them and
     * the handshake operand decides whether the driver takes them. */
    G.features = ((G.cfg >> FZ_CFG_FEATURES_SHIFT) & FZ_CFG_FEATURES_MASK) | VKMT_F_TEXTURES;
    G.npages = FZ_PAGES_MIN + h[FZ_HDR_PAGES] % FZ_PAGES_SPAN;
    G.aperture = (uint64_t)G.npages * PAGE;
    G.fault_at = h[FZ_HDR_FAULT];
    G.ap = G.memfd ? ap_memfd : ap_anon;
    cfg.num_queues = G.nq;
    cfg.budget = (uint64_t)h[FZ_HDR_BUDGET] * FZ_BYTE_UNIT;
    cfg.max_objects = G.cfg & FZ_CFG_OBJ_LIMIT ? 4u + h[FZ_HDR_OBJECTS] % 124u : 0;
    cfg.features = G.features;
    G.max_objects = cfg.max_objects ? cfg.max_objects : DEFAULT_MAX_OBJECTS;
    M.budget = budget_for(cfg.budget);
    backend =
        (struct vkmt_backend){ .ops = &backend_ops, .base = G.ap, .size = G.aperture, .fd = -1 };
    if (G.memfd) {
        err = vkmt_backend_mem_create(G.aperture, memfd, G.ap, &G.inner);
        CHECK(err == 0, "memfd backend: %d", err);
    }
    err = vkmt_core_create(&cfg, &backend, ctrl_mem, G.deferred ? &ops_deferred : &ops_inline, NULL,
                           &G.core);
    CHECK(err == 0, "vkmt_core_create: %d", err);
    if (G.trace) {
        fprintf(stderr, "device: %u queues, %u pages, budget %llu, features %u, objects %u%s%s\n",
                G.nq, G.npages, (unsigned long long)M.budget, G.features, G.max_objects,
                G.deferred ? ", deferred" : "", G.memfd ? ", memfd" : "");
    }
    if (!(G.cfg & FZ_CFG_NO_BRINGUP)) {
        handshake(G.features);
        for (uint32_t q = 0; q < G.nq; q++) {
            reg_read(VKMT_REG(queue_claim));
        }
    }
}

/* Tear down and check the device gave every page back. */
static void finish(void)
{
    if (G.cfg & FZ_CFG_NO_RESET) {
        /* Destroying a live device frees what it holds, without queue events. */
        call_begin(-1);
        vkmt_core_destroy(G.core);
        for (uint32_t q = 0; q < G.nq; q++) {
            m_destroy_queue_objects(q);
        }
        ev_expect_destroys();
        step_end();
    } else {
        host_reset();
        check_all();
        call_begin(-1);
        vkmt_core_destroy(G.core);
        step_end();
    }
    G.core = NULL;
    for (uint32_t p = 0; p < G.npages; p++) {
        CHECK(!G.committed[p] && page_zero(p), "page %u still held after teardown", p);
    }
    if (G.inner) {
        vkmt_backend_destroy(G.inner);
        G.inner = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup(data, size);
    check_all();
    while (G.pos < G.len) {
        one_op();
        check_all();
    }
    check_registers();
    check_memory();
    fail_op = 0;
    finish();
    return 0;
}
