/* SPDX-License-Identifier: MIT */
/*
 * The reference model of the device-engine harness: the objects the engine
 * must hold (learned only from its outputs), their handles and aperture
 * pages; matching the events and backend calls the engine reported against
 * what the model expects; and the semantics of PROTOCOL.md 4, 5, 8 and 9
 * that more than one command or host control shares (eviction, destruction,
 * release, reset, claims, the status handshake, register values).
 */
#include <stdlib.h>
#include <string.h>

#include "fz.h"

/* ---- The model's state (fz.h says what each holds) ---- */

struct model M;
struct mobj_vec objs;
struct u32_vec live;
struct u32_vec pool[K_COUNT];
struct u32_vec batch;
struct u32_vec elem_end;
struct event_vec events;
struct u32_vec exp_destroy;
struct bcall_vec bcalls;
struct bcall_vec exp_discards;
struct range_vec nl_writes;
struct cur_cmd C;

/* ---- Model objects ---- */

uint32_t mobj_new(uint8_t kind, uint32_t q, uint32_t parent)
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

void obj_kill(uint32_t i)
{
    obj(i)->live = false;
    dead_add(obj(i)->handle);
    M.live_objs--;
    G.dead++;
}

/* Keeps the live list short; order is creation order either way. */
void live_compact(void)
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

void set_handle(uint32_t i, uint32_t h)
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
void forget_handles(void)
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
void check_new_handle(uint32_t h, const char *what)
{
    CHECK(h != 0 && lookup_any(h) == NONE && !dead_has(h), "%s handle 0x%x is %s", what, h,
          h == 0                  ? "zero"
          : lookup_any(h) != NONE ? "already live"
                                  : "a stale handle reused");
}

/* PROTOCOL.md 7: live, of the right type, of this queue. */
uint32_t lookup(uint32_t h, uint8_t kind, uint32_t q)
{
    uint32_t i = lookup_any(h);

    return i != NONE && obj(i)->kind == kind && obj(i)->queue == q ? i : NONE;
}

void map_set(uint32_t page, uint32_t n, bool used)
{
    CHECK(page <= G.npages && n <= G.npages - page,
          "range of %u pages at page %u is outside the %u-page aperture", n, page, G.npages);
    touch(page, n);
    for (uint32_t p = page; p < page + n; p++) {
        CHECK(M.page_used[p] != used, "aperture page %u %s twice", p,
              used ? "given to allocations" : "freed");
        M.page_used[p] = used;
        M.page_held[p] = 0;
        M.page_stamp[p] = 0;
    }
}

/* Bring the expected page state in line with allocation @i's state. */
void pages_sync(uint32_t i)
{
    const struct mobj *o = obj(i);
    bool held = o->state == A_RESIDENT || o->state == A_OFFERED;

    touch(o->page, o->npages);
    for (uint32_t p = o->page; p < o->page + o->npages; p++) {
        M.page_held[p] = held;
        M.page_stamp[p] = held ? o->stamp : 0;
    }
}

uint32_t map_free(void)
{
    uint32_t n = 0;

    for (uint32_t p = 0; p < G.npages; p++) {
        n += !M.page_used[p];
    }
    return n;
}

bool map_has_run(uint32_t want)
{
    for (uint32_t p = 0, run = 0; p < G.npages; p++) {
        run = M.page_used[p] ? 0 : run + 1;
        if (run >= want) {
            return true;
        }
    }
    return false;
}

/*
 * The engine's placement, written from its contract (hw-device/core/
 * aperture.c): next fit from the cursor; failing that, a search from page 0
 * up to where a run through the cursor would end; the cursor then goes past
 * the new range. Ranges that do not match are caught where they show: LOCK's
 * offset, the backend's discards, the pages' content.
 */
static uint32_t find_run(const uint8_t *used, uint32_t from, uint32_t end, uint32_t n)
{
    for (uint32_t p = from, run = 0; p < end; p++) {
        run = used[p] ? 0 : run + 1;
        if (run == n) {
            return p + 1 - n;
        }
    }
    return NONE;
}

static uint32_t place(const uint8_t *used, uint32_t npages, uint32_t *cursor, uint32_t n)
{
    uint32_t first, free = 0;

    for (uint32_t p = 0; p < npages; p++) {
        free += !used[p];
    }
    if (n == 0 || n > free) {
        return NONE;
    }
    first = find_run(used, *cursor, npages, n);
    if (first == NONE) {
        first = find_run(used, 0, *cursor + n - 1 < npages ? *cursor + n - 1 : npages, n);
    }
    if (first != NONE) {
        *cursor = first + n == npages ? 0 : first + n;
    }
    return first;
}

uint32_t m_place(uint32_t n)
{
    uint32_t first = place(M.page_used, G.npages, &M.ap_cursor, n);

    if (first != NONE) {
        map_set(first, n, true);
    }
    return first;
}

uint32_t mp_alloc(struct mplace *mp, uint32_t n)
{
    uint32_t first = place(mp->used, mp->npages, &mp->cursor, n);

    for (uint32_t p = first; first != NONE && p < first + n; p++) {
        mp->used[p] = 1;
    }
    return first;
}

void mp_free(struct mplace *mp, uint32_t first, uint32_t n)
{
    for (uint32_t p = first; p < first + n; p++) {
        CHECK(mp->used[p], "non-local page %u freed twice", p);
        mp->used[p] = 0;
    }
}

uint64_t queue_committed(uint32_t q)
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

void step_begin(void)
{
    G.ev_cur = 0;
    nl_writes.n = 0;
    exp_discards.n = 0;
    exp_destroy.n = 0;
}

const struct vkmt_event *ev_take(enum vkmt_event_type type)
{
    const struct vkmt_event *e;

    CHECK(G.ev_cur < events.n, "event %d is missing", type);
    e = &events.v[G.ev_cur++];
    CHECK(e->type == type, "event %d (queue %u handle 0x%x) where %d was due", e->type, e->queue,
          e->handle, type);
    return e;
}

/* A TRIM or BUDGET event: who asked, and the size it names. */
void ev_expect_host(enum vkmt_event_type type, uint32_t queue, uint64_t size)
{
    const struct vkmt_event *e = ev_take(type);

    CHECK(e->queue == queue && e->size == size, "event %d names queue %u size %llu; due %u %llu",
          type, e->queue, (unsigned long long)e->size, queue, (unsigned long long)size);
}

void ev_expect_alloc(enum vkmt_event_type type, uint32_t i, bool prio)
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
void ev_expect_destroys(void)
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
struct bcall *bc_take(uint8_t op)
{
    for (uint32_t i = 0; i < bcalls.n; i++) {
        if (bcalls.v[i].op == op && !bcalls.v[i].used) {
            bcalls.v[i].used = true;
            return &bcalls.v[i];
        }
    }
    fail(__FILE__, __LINE__, "backend call %u is missing", op);
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
bool step_end(void)
{
    uint32_t m = 0;
    bool failed = false;

    CHECK(G.ev_cur == events.n, "%u unexpected events, the first of type %d handle 0x%x",
          events.n - G.ev_cur, events.v[G.ev_cur].type, events.v[G.ev_cur].handle);
    CHECK(nl_writes.n == 0, "%u copies into the non-local segment without a demotion", nl_writes.n);
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

/* Content is gone (offered, or demoted and offered): the counters, the
 * events, and with AllowDecommit the range. */
void m_discarded(uint32_t i)
{
    struct mobj *o = obj(i);
    uint64_t b = bytes_of(o);
    unsigned pi = vkmt_prio_index(o->prio);

    M.st.discards++;
    M.st.discarded_bytes += b;
    M.st.discarded_bytes_by_prio[pi] += b;
    M.q[o->queue].discarded += b;
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

static void m_discard(uint32_t i)
{
    const struct mobj *o = obj(i);
    uint64_t b = bytes_of(o);

    bc_expect_discard(i);
    M.st.committed_bytes -= b;
    M.st.offered_bytes -= b;
    M.st.offered_bytes_by_prio[vkmt_prio_index(o->prio)] -= b;
    m_discarded(i);
}

static bool excluded(uint32_t i, const struct u32_vec *excl);

/* Discard offered content outside @excl (the command's own batch) in
 * eviction order until @bytes were freed. */
static uint64_t evict_excl(uint64_t bytes, const struct u32_vec *excl)
{
    uint32_t order[FZ_PAGES_MAX], n = 0;
    uint64_t freed = 0;

    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->kind == K_ALLOC && o->state == A_OFFERED && !excluded(live.v[i], excl)) {
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

uint64_t m_evict(uint64_t bytes)
{
    return evict_excl(bytes, NULL);
}

/* ---- Demotion (PROTOCOL.md 12): the non-local mode only ---- */

static bool excluded(uint32_t i, const struct u32_vec *excl)
{
    for (uint32_t k = 0; excl && k < excl->n; k++) {
        if (excl->v[k] == i) {
            return true;
        }
    }
    return false;
}

/* RESIDENT, unlocked, created (a creation's own allocations are not yet)
 * and outside the command's batch. */
static bool demotable(uint32_t i, const struct u32_vec *excl)
{
    const struct mobj *o = obj(i);

    return G.nonlocal && (M.driver_features & VKMT_F_RESIDENCY) && o->live && o->kind == K_ALLOC &&
           o->state == A_RESIDENT && !o->locks && o->handle && !excluded(i, excl);
}

/* The handle-table slot, the last key of the demotion order: the handle's
 * low 20 bits (hw-device/core/core_priv.h). */
static uint32_t slot(const struct mobj *o)
{
    return o->handle & 0xfffffu;
}

/* Pressure order: count 0 first, then the lowest priority, then the lowest slot. */
static bool demotes_before(const struct mobj *a, const struct mobj *b)
{
    if ((a->rcount != 0) != (b->rcount != 0)) {
        return a->rcount == 0;
    }
    if (a->rprio != b->rprio) {
        return a->rprio < b->rprio;
    }
    return slot(a) < slot(b);
}

bool m_demote(uint32_t i)
{
    struct mobj *o = obj(i);
    uint32_t page = mp_alloc(&M.nl, o->npages);
    const struct range *w;

    if (page == NONE) {
        return false;
    }
    CHECK(nl_writes.n > 0, "demotion of 0x%x without a copy into the non-local segment", o->handle);
    w = &nl_writes.v[0];
    CHECK(w->off == (uint64_t)page * PAGE && w->len == bytes_of(o),
          "demotion of 0x%x copied to non-local [0x%llx +0x%llx], due [0x%llx +0x%llx]", o->handle,
          (unsigned long long)w->off, (unsigned long long)w->len, (unsigned long long)page * PAGE,
          (unsigned long long)bytes_of(o));
    memmove(nl_writes.v, nl_writes.v + 1, (nl_writes.n - 1) * sizeof(*nl_writes.v));
    nl_writes.n--;
    o->nl_page = page;
    o->state = A_DEMOTED;
    M.st.committed_bytes -= bytes_of(o);
    M.st.demoted_bytes += bytes_of(o);
    M.q_demoted[o->queue] += bytes_of(o);
    M.st.demotions++;
    /* The range is kept and reads zeros; o->stamp is the content it keeps. */
    pages_sync(i);
    ev_expect_alloc(VKMT_EV_DEMOTE, i, true);
    return true;
}

void m_nl_release(uint32_t i)
{
    struct mobj *o = obj(i);

    mp_free(&M.nl, o->nl_page, o->npages);
    M.st.demoted_bytes -= bytes_of(o);
    M.q_demoted[o->queue] -= bytes_of(o);
}

/* Content byte-identical: the pages hold its stamp again. */
void m_promote(uint32_t i)
{
    struct mobj *o = obj(i);

    m_nl_release(i);
    o->state = A_RESIDENT;
    M.st.committed_bytes += bytes_of(o);
    M.st.promotions++;
    pages_sync(i);
    ev_expect_alloc(VKMT_EV_PROMOTE, i, true);
}

/* What demotion could free now: demotable bytes, as far as the segment's
 * free pages reach (fragmentation aside, which passes allocations over). */
static uint64_t demotable_bytes(const struct u32_vec *excl)
{
    uint64_t sum = 0, nl_free = 0;

    for (uint32_t p = 0; p < M.nl.npages; p++) {
        nl_free += M.nl.used[p] ? 0 : PAGE;
    }
    for (uint32_t k = 0; k < live.n && sum < nl_free; k++) {
        if (demotable(live.v[k], excl)) {
            sum += bytes_of(obj(live.v[k]));
        }
    }
    return sum < nl_free ? sum : nl_free;
}

bool m_can_fit(uint64_t need, uint64_t pinned, const struct u32_vec *excl)
{
    uint64_t room = M.budget + (M.st.offered_bytes - pinned);

    return M.st.committed_bytes + need <= room ||
           M.st.committed_bytes + need <= room + demotable_bytes(excl);
}

/* Demote in pressure order until @bytes were freed. */
static void m_demote_bytes(uint64_t bytes, const struct u32_vec *excl)
{
    uint32_t order[FZ_PAGES_MAX], n = 0;
    uint64_t freed = 0;

    for (uint32_t k = 0; k < live.n; k++) {
        if (demotable(live.v[k], excl)) {
            CHECK(n < FZ_PAGES_MAX, "more resident allocations than pages");
            order[n++] = live.v[k];
        }
    }
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x = order[i], j = i;

        for (; j > 0 && demotes_before(obj(x), obj(order[j - 1])); j--) {
            order[j] = order[j - 1];
        }
        order[j] = x;
    }
    for (uint32_t i = 0; i < n && freed < bytes; i++) {
        if (m_demote(order[i])) {
            freed += bytes_of(obj(order[i]));
        }
    }
}

bool m_make_room(uint64_t need, const struct u32_vec *excl)
{
    /* A command that needs nothing makes no room, even over the budget
     * (MAKE_RESIDENT with CantTrimFurther may have gone past it). */
    if (need == 0) {
        return true;
    }
    if (M.st.committed_bytes + need > M.budget) {
        evict_excl(M.st.committed_bytes + need - M.budget, excl);
    }
    if (M.st.committed_bytes + need > M.budget) {
        m_demote_bytes(M.st.committed_bytes + need - M.budget, excl);
    }
    return M.st.committed_bytes + need <= M.budget;
}

/* @demote: a new budget, which may also demote (the engine's demote_pending). */
void m_enforce_budget(bool demote)
{
    if (M.st.committed_bytes > M.budget) {
        m_evict(M.st.committed_bytes - M.budget);
    }
    if (demote && M.st.committed_bytes > M.budget) {
        m_demote_bytes(M.st.committed_bytes - M.budget, NULL);
    }
}

void m_unlink_offer(struct mobj *o)
{
    M.st.offered_bytes -= bytes_of(o);
    M.st.offered_bytes_by_prio[vkmt_prio_index(o->prio)] -= bytes_of(o);
}

void m_destroy_alloc(uint32_t i)
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
    if (o->state == A_DEMOTED) {
        m_nl_release(i);
    }
    if (o->state != A_DECOMMITTED) {
        map_set(o->page, o->npages, false);
    }
    M.st.allocations--;
    obj_kill(i);
}

void m_destroy_resource(uint32_t r)
{
    for (uint32_t m = r + 1; m <= r + obj(r)->nmembers; m++) {
        m_destroy_alloc(m);
    }
    M.st.resources--;
    obj_kill(r);
}

/* A live child of a device (paging queue, resource, allocation outside a
 * resource) and what it holds; a sync object goes with its paging queue. */
static void destroy_child(uint32_t x)
{
    const struct mobj *o = obj(x);

    if (o->kind == K_PQ) {
        obj_kill(o->sync);
        obj_kill(x);
    } else if (o->kind == K_RES) {
        m_destroy_resource(x);
    } else if (o->kind == K_ALLOC && o->group == NONE) {
        m_destroy_alloc(x);
    }
}

void m_destroy_device(uint32_t d)
{
    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->parent == d && o->kind != K_SYNC && o->kind != K_DEVICE) {
            destroy_child(live.v[i]);
        }
    }
    M.st.devices--;
    obj_kill(d);
}

/* Objects never cross queues, so one pass over the live objects finds every
 * device's children on @q (a pass per device cost quadratic time). */
void m_destroy_queue_objects(uint32_t q)
{
    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->queue == q && o->kind != K_SYNC && o->kind != K_DEVICE) {
            destroy_child(live.v[i]);
        }
    }
    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);

        if (o->live && o->queue == q && o->kind == K_DEVICE) {
            M.st.devices--;
            obj_kill(live.v[i]);
        }
    }
}

/* PROTOCOL.md 5: release destroys what the queue created and frees it. */
void m_release(uint32_t q)
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
void m_reset(void)
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
    M.ap_cursor = M.nl.cursor = 0;
    /* A reset ends every handle, and retired slots come back (PROTOCOL.md 7). */
    forget_handles();
    ev_take(VKMT_EV_RESET);
}

uint32_t m_claim(void)
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
            M.q[q].reservation[0] = M.q[q].reservation[1] = 0;
            M.q[q].ev_tail = M.q[q].ev_lost = 0;
            M.q[q].discarded = 0;
            e = ev_take(VKMT_EV_QUEUE_CLAIM);
            CHECK(e->queue == q, "QUEUE_CLAIM names queue %u, due %u", e->queue, q);
            return q;
        }
    }
    return VKMT_QUEUE_NONE;
}

void m_status_write(uint32_t val)
{
    if (val == 0) {
        m_reset();
        return;
    }
    /* FEATURES_OK sticks only for a subset of what was offered. */
    if ((val & ~M.status & VKMT_STATUS_FEATURES_OK) && (M.driver_features & ~G.offered)) {
        val &= ~VKMT_STATUS_FEATURES_OK;
    }
    if ((val & VKMT_STATUS_DRIVER_OK) && !((val | M.status) & VKMT_STATUS_FEATURES_OK)) {
        val &= ~VKMT_STATUS_DRIVER_OK;
    }
    M.status |= val & (VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_DRIVER_OK |
                       VKMT_STATUS_FEATURES_OK | VKMT_STATUS_FAILED);
}

/* ---- Device events: PROTOCOL.md 5.4 ---- */

/*
 * One event for queue @q: only an ACTIVE queue of a driver that took
 * VKMT_F_EVENTS gets it; a ring the driver's head (untrusted, read as the
 * device read it) says is full drops it and counts the loss; otherwise the
 * entry is in the slot at the tail, the tail is published, bit q of isr is
 * set and the interrupt raised (host_step_end checks the count).
 */
void m_post(uint32_t q, uint32_t type, uint64_t value)
{
    struct mqueue *mq = &M.q[q];
    struct vkmt_qev *slot =
        (struct vkmt_qev *)(qbase(q) + VKMT_QUEUE_EVQ_OFF) + (mq->ev_tail & (VKMT_EVQ_DEPTH - 1));
    uint32_t head = vkmt_sh_load(&hdr(q)->sh_ev_head);
    const struct vkmt_event *e;

    if (!(M.driver_features & VKMT_F_EVENTS) || mq->state != VKMT_QSTATE_ACTIVE) {
        return;
    }
    if (mq->ev_tail - head >= VKMT_EVQ_DEPTH) {
        mq->ev_lost++;
        M.st.events_lost++;
        G.posted[q] |= 0x80000000u; /* a change to check, without an interrupt */
        return;
    }
    e = ev_take(VKMT_EV_NOTIFY);
    CHECK(e->queue == q && e->status == type && e->size == value,
          "NOTIFY event queue %u type 0x%x value %llu, due %u 0x%x %llu", e->queue, e->status,
          (unsigned long long)e->size, q, type, (unsigned long long)value);
    mq->ev[mq->ev_tail & (VKMT_EVQ_DEPTH - 1)] = (struct vkmt_qev){ .type = type, .value = value };
    CHECK(!memcmp(slot, &mq->ev[mq->ev_tail & (VKMT_EVQ_DEPTH - 1)], sizeof(*slot)),
          "queue %u event slot %u holds type 0x%x reserved %u value %llu, due 0x%x %llu", q,
          mq->ev_tail, slot->type, slot->reserved, (unsigned long long)slot->value, type,
          (unsigned long long)value);
    mq->ev_tail++;
    M.st.events++;
    M.isr |= 1u << q;
    G.posted[q]++;
}

uint64_t m_over_budget(uint32_t q)
{
    uint64_t held = queue_committed(q);

    return held > M.budget ? held - M.budget : 0;
}

void m_post_over_budget(void)
{
    for (uint32_t q = 0; q < G.nq; q++) {
        if (m_over_budget(q)) {
            m_post(q, VKMT_QEV_TRIM_TO_BUDGET, m_over_budget(q));
        }
    }
}

void m_post_budget(void)
{
    for (uint32_t q = 0; q < G.nq; q++) {
        m_post(q, VKMT_QEV_BUDGET_CHANGED, M.budget);
    }
    m_post_over_budget();
}

uint64_t budget_for(uint64_t b)
{
    if (b == 0) {
        return G.aperture / 2 / PAGE * PAGE;
    }
    return b < G.aperture ? b : G.aperture;
}

/* Register values, PROTOCOL.md 3 (queue_claim is handled by the caller). */
uint32_t m_reg_value(uint32_t off)
{
    switch (off) {
    case VKMT_REG(magic):
        return VKMT_MAGIC;
    case VKMT_REG(version):
        return VKMT_VERSION;
    case VKMT_REG(device_features):
        return G.offered;
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
    case VKMT_REG(max_alloc_lo): /* the harness's backend holds up to the aperture */
        return (uint32_t)G.aperture;
    case VKMT_REG(max_alloc_hi):
        return (uint32_t)(G.aperture >> 32);
    case VKMT_REG(max_texture_dim):
        return VKMT_TEXTURE_MAX_DIM;
    default:
        return 0;
    }
}
