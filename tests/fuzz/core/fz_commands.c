/* SPDX-License-Identifier: MIT */
/*
 * What each command must do, PROTOCOL.md 6, 7 and 10: m_command() judges the
 * entry and payload as the engine read them (C), predicts the status from
 * the spec (field and array rules, handle types and owners, duplicates,
 * states, budget, the handle-table limit, aperture space), follows the
 * events and backend calls the command caused, and fills in the values and
 * results its completion must carry.
 */
#include <string.h>

#include "fz.h"

/* ---- Commands: PROTOCOL.md 6, 7 and 10, on the entry the engine read ---- */

static VEC(uint8_t) results_scratch; /* RECLAIM: per allocation, decided up front */

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
    [VKMT_OP_QUERY_MEMORY] = { U_ARG0 | U_ARG1, 0 },
    [VKMT_OP_QUERY_FENCE] = { U_HANDLE, 0 },
    [VKMT_OP_TRIM] = { U_ARG64, 0 },
    [VKMT_OP_QUERY_STATS] = { U_RESULT, 0 },
    [VKMT_OP_MAKE_RESIDENT] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_ARG0, 0 },
    [VKMT_OP_EVICT] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_ARG0, 0 },
    [VKMT_OP_SET_PRIORITY] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_ARG0 | U_ARG1, 0 },
    [VKMT_OP_GET_PRIORITY] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_RESULT | U_ARG0, 0 },
    [VKMT_OP_QUERY_RESIDENCY] = { U_HANDLE | U_COUNT | U_PAYLOAD | U_RESULT | U_ARG0, 0 },
    [VKMT_OP_CHANGE_RESERVATION] = { U_ARG0 | U_ARG64, 0 },
    [VKMT_OP_QUERY_QUEUE_STATS] = { U_COUNT | U_RESULT | U_ARG0, 0 },
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
    d = mobj_new(K_DEVICE, C.q, NONE);
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
    p = mobj_new(K_PQ, C.q, d);
    sync = mobj_new(K_SYNC, C.q, p); /* apart: mobj_new may move every object */
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

static VEC(uint32_t) place_pages, place_out; /* the non-local mode's new ranges */

static void unplace(const uint32_t *pages, const uint32_t *out, uint32_t n, uint32_t cursor)
{
    for (uint32_t i = 0; i < n; i++) {
        map_set(out[i], pages[i], false);
    }
    M.ap_cursor = cursor;
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
 * The non-local mode: ranges for @n allocations of @pages[i] pages, placed
 * in order as the engine does, into @out; all or none (a failure leaves the
 * map and the cursor as they were).
 */
static bool place_all(const uint32_t *pages, uint32_t n, uint32_t *out)
{
    uint32_t cursor = M.ap_cursor;

    for (uint32_t i = 0; i < n; i++) {
        out[i] = m_place(pages[i]);
        if (out[i] == NONE) {
            unplace(pages, out, i, cursor);
            return false;
        }
    }
    return true;
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

/*
 * The non-local mode's creation after the budget and table checks: the
 * ranges (place_out), then room, where demotion can still fall short
 * (non-local fragmentation), which gives the ranges back.
 */
static bool create_place(uint32_t n)
{
    uint32_t cursor = M.ap_cursor;
    uint64_t need = 0;

    place_pages.n = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct vkmt_alloc_desc desc;

        memcpy(&desc, C.payload + (size_t)i * sizeof(desc), sizeof(desc));
        PUSH(place_pages, pages_of(desc.size));
        need += (uint64_t)pages_of(desc.size) * PAGE;
    }
    place_out.v = grow(place_out.v, &place_out.cap, n, sizeof(uint32_t));
    if (!place_all(place_pages.v, n, place_out.v)) {
        return false;
    }
    if (!m_make_room(need, NULL)) {
        unplace(place_pages.v, place_out.v, n, cursor);
        return false;
    }
    return true;
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
    if (!m_can_fit(need, 0, NULL)) {
        st = VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    } else if (!objects_fit(n + group)) {
        st = VKMT_ST_NO_MEMORY;
    } else if (G.nonlocal) {
        st = create_place(n) ? VKMT_ST_SUCCESS : VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    } else if (map_free() < need_pages || (n == 1 && !map_has_run(need_pages))) {
        st = VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    }
    alt = st == VKMT_ST_SUCCESS && n > 1 && !G.nonlocal ? VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY : st;
    if (!expect2(st, alt)) {
        return;
    }
    /* The aperture is carved before eviction frees anything. */
    if (group) {
        res = mobj_new(K_RES, C.q, d);
        obj(res)->nmembers = n;
        M.st.resources++;
        C.learn0 = res;
    }
    first = objs.n;
    for (uint32_t i = 0; i < n; i++) {
        struct vkmt_alloc_desc desc;
        const struct bcall *c;
        uint32_t a = mobj_new(K_ALLOC, C.q, d);

        obj(a)->rprio = VKMT_ALLOC_PRIO_NORMAL;
        obj(a)->rcount = 0;

        memcpy(&desc, C.payload + (size_t)i * sizeof(desc), sizeof(desc));
        obj(a)->size = desc.size;
        obj(a)->tex_flags = desc.flags;
        obj(a)->tex_dims = desc.dims;
        obj(a)->npages = pages_of(desc.size);
        obj(a)->group = res;
        obj(a)->state = A_RESIDENT;
        if (G.nonlocal) {
            obj(a)->page = place_out.v[i];
            continue;
        }
        c = bc_take(BC_COMMIT);
        check_shape(c, a);
        learn_range(a, c, true);
    }
    if (!G.nonlocal) { /* create_place made room already */
        m_make_room(need, NULL);
    }
    for (uint32_t a = first; a < first + n; a++) {
        const struct vkmt_event *e = ev_take(VKMT_EV_CREATE);

        CHECK(e->queue == C.q && e->size == obj(a)->size && e->handle != 0,
              "CREATE event queue %u size %llu handle 0x%x for size %llu", e->queue,
              (unsigned long long)e->size, e->handle, (unsigned long long)obj(a)->size);
        check_new_handle(e->handle, "new allocation");
        set_handle(a, e->handle);
        if (G.nonlocal) {
            obj(a)->bid = e->handle & 0xfffffu; /* the engine's id is the slot */
        }
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
    const struct bcall *c = NULL;

    /* PROTOCOL.md 12: the CPU view is the aperture, so a lock promotes. */
    if (a != NONE && obj(a)->state == A_DEMOTED) {
        if (!m_can_fit(bytes_of(obj(a)), 0, NULL) || !m_make_room(bytes_of(obj(a)), NULL)) {
            expect(VKMT_ST_NO_MEMORY);
            return;
        }
        m_promote(a);
    }
    if (a == NONE || obj(a)->state != A_RESIDENT) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    if (!G.nonlocal) {
        c = bc_take(BC_LOCK);
        check_range_call(c, a);
    }
    /* value0 is the range: in the non-local mode, the check of its placement. */
    if (expect(c && c->failed ? VKMT_ST_NO_MEMORY : VKMT_ST_SUCCESS)) {
        obj(a)->locks++;
        C.value0 = (uint64_t)obj(a)->page * PAGE;
        C.value1 = obj(a)->size;
    }
}

static void c_unlock(void)
{
    uint32_t a = lock_target();
    const struct bcall *c = NULL;

    if (a == NONE || obj(a)->locks == 0) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    if (!G.nonlocal) {
        c = bc_take(BC_UNLOCK);
        check_range_call(c, a);
    }
    if (expect(c && c->failed ? VKMT_ST_NO_MEMORY : VKMT_ST_SUCCESS)) {
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

/* PROTOCOL.md 12: an offered DEMOTED allocation is discarded at once (its
 * content is out of the local segment already), with no backend call. */
static void offer_demoted(uint32_t i)
{
    m_nl_release(i);
    m_discarded(i);
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
        const struct mobj *o = obj(batch.v[i]);

        if ((o->state != A_RESIDENT && o->state != A_DEMOTED) || o->locks) {
            expect(VKMT_ST_INVALID_PARAMETER);
            return;
        }
    }
    expect(VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < batch.n; i++) {
        struct mobj *o = obj(batch.v[i]);

        o->prio = (uint8_t)s->arg0;
        o->decommit = s->arg1 & VKMT_OFFER_F_ALLOW_DECOMMIT;
        if (o->state == A_DEMOTED) {
            offer_demoted(batch.v[i]);
            continue;
        }
        o->state = A_OFFERED;
        o->offer_seq = ++M.offer_seq;
        M.st.offers++;
        M.st.offered_bytes += bytes_of(o);
        M.st.offered_bytes_by_prio[vkmt_prio_index(o->prio)] += bytes_of(o);
        M.st.offered_bytes_total_by_prio[vkmt_prio_index(o->prio)] += bytes_of(o);
        ev_expect_alloc(VKMT_EV_OFFER, batch.v[i], true);
    }
    m_enforce_budget(false);
}

/*
 * The non-local mode's reclaim that needs memory, once it fits: new ranges
 * for the decommitted allocations it recommits (place_out, batch order),
 * then room with the batch kept out of it; short of room, the ranges go
 * back.
 */
static bool reclaim_place(const uint8_t *result, uint64_t need)
{
    uint32_t cursor = M.ap_cursor;

    place_pages.n = 0;
    for (uint32_t i = 0; i < batch.n; i++) {
        if (result[i] == VKMT_RECLAIM_DISCARDED && obj(batch.v[i])->state == A_DECOMMITTED) {
            PUSH(place_pages, obj(batch.v[i])->npages);
        }
    }
    place_out.v = grow(place_out.v, &place_out.cap, place_pages.n, sizeof(uint32_t));
    if (!place_all(place_pages.v, place_pages.n, place_out.v)) {
        return false;
    }
    if (!m_make_room(need, &batch)) {
        unplace(place_pages.v, place_out.v, place_pages.n, cursor);
        return false;
    }
    return true;
}

static void c_reclaim(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    bool recommit = s->flags & VKMT_SQE_F_RECOMMIT;
    bool write = s->flags & VKMT_SQE_F_WRITE_RESULTS;
    uint32_t pq = NONE, d, st = VKMT_ST_SUCCESS, alt, nrecommit = 0, rpages = 0, k = 0;
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
        } else if (o->state == A_DEMOTED) {
            need += bytes_of(o); /* promoted, its content kept */
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
    if (need && !m_can_fit(need, pinned, &batch)) {
        st = VKMT_ST_NO_MEMORY;
    } else if (G.nonlocal && need) {
        st = reclaim_place(result, need) ? VKMT_ST_SUCCESS : VKMT_ST_NO_MEMORY;
    } else if (nrecommit && (map_free() < rpages || (nrecommit == 1 && !map_has_run(rpages)))) {
        st = VKMT_ST_NO_MEMORY;
    }
    alt = st == VKMT_ST_SUCCESS && nrecommit > 1 && !G.nonlocal ? VKMT_ST_NO_MEMORY : st;
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
        if (G.nonlocal) {
            if (o->state == A_DECOMMITTED) {
                o->page = place_out.v[k++];
            }
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
    m_make_room(need, &batch);
    for (uint32_t i = 0; i < batch.n; i++) {
        struct mobj *o = obj(batch.v[i]);
        const struct vkmt_event *e;

        if (o->state == A_DEMOTED) {
            m_promote(batch.v[i]);
        }
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

/* What a queue may reserve: half the budget, or half the non-local segment. */
static uint64_t m_available(uint32_t g)
{
    return (g == VKMT_SEGMENT_LOCAL ? M.budget : (uint64_t)M.nl.npages * PAGE) / 2 / PAGE * PAGE;
}

static void c_query_memory(void)
{
    uint32_t seg = C.sqe.arg0, what = C.sqe.arg1;
    bool bad = seg > VKMT_SEGMENT_NON_LOCAL || what > VKMT_MEMQ_RESERVATION ||
               (what && !(M.driver_features & VKMT_F_RESIDENCY));

    if (!expect(bad ? VKMT_ST_INVALID_PARAMETER : VKMT_ST_SUCCESS)) {
        return;
    }
    if (what == VKMT_MEMQ_RESERVATION) {
        C.value0 = M.q[C.q].reservation[seg];
        C.value1 = m_available(seg);
    } else if (seg == VKMT_SEGMENT_LOCAL) {
        C.value0 = M.budget;
        C.value1 = queue_committed(C.q);
    } else if (M.driver_features & VKMT_F_RESIDENCY) {
        C.value0 = (uint64_t)M.nl.npages * PAGE;
        C.value1 = M.q_demoted[C.q];
    }
}

/* ---- residency (1.2): demotion only in the non-local mode (G.nonlocal) ---- */

static bool residency_negotiated(void)
{
    if (!(M.driver_features & VKMT_F_RESIDENCY)) {
        expect(VKMT_ST_NOT_SUPPORTED);
        return false;
    }
    return true;
}

/* The payload's allocations of device @d (every @stride-th word) into
 * batch; false: unknown, foreign or listed twice. */
static bool resolve_allocs(uint32_t d, uint32_t stride)
{
    uint32_t mark = ++M.mark;

    batch.n = 0;
    for (uint32_t i = 0; i < C.sqe.count; i++) {
        uint32_t x = lookup(pl32(i * stride), K_ALLOC, C.q);

        if (x == NONE || obj(x)->parent != d || obj(x)->mark == mark) {
            return false;
        }
        obj(x)->mark = mark;
        PUSH(batch, x);
    }
    return true;
}

static void c_make_resident(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t pq;
    uint64_t need = 0;

    if (!residency_negotiated()) {
        return;
    }
    pq = lookup(s->handle, K_PQ, C.q);
    if (pq == NONE || (s->arg0 & ~VKMT_RESIDENT_F_KNOWN) ||
        ((s->arg0 & VKMT_RESIDENT_F_MUST_SUCCEED) &&
         !(s->arg0 & VKMT_RESIDENT_F_CANT_TRIM_FURTHER)) ||
        !payload_ok(4) || !resolve_allocs(obj(pq)->parent, 1)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    for (uint32_t i = 0; i < batch.n; i++) {
        const struct mobj *o = obj(batch.v[i]);

        if ((o->state != A_RESIDENT && o->state != A_DEMOTED) || o->rcount == UINT32_MAX) {
            expect(VKMT_ST_INVALID_PARAMETER);
            return;
        }
        need += o->state == A_DEMOTED ? bytes_of(o) : 0;
    }
    /* Room as for any command; past the budget only with CantTrimFurther,
     * and never past the aperture. */
    if (need && M.st.committed_bytes + need > M.budget) {
        bool over_ok = (s->arg0 & VKMT_RESIDENT_F_CANT_TRIM_FURTHER) &&
                       M.st.committed_bytes + need <= G.aperture;

        if (!(m_can_fit(need, 0, &batch) && m_make_room(need, &batch)) && !over_ok) {
            expect(VKMT_ST_NO_MEMORY);
            C.value1 = M.st.committed_bytes + need - M.budget;
            return;
        }
    }
    expect(VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < batch.n; i++) {
        if (obj(batch.v[i])->state == A_DEMOTED) {
            m_promote(batch.v[i]);
        }
        obj(batch.v[i])->rcount++;
    }
    m_enforce_budget(false);
    C.value0 = obj(pq)->fence;
}

static void c_evict(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t d;
    uint64_t used;

    if (!residency_negotiated()) {
        return;
    }
    d = lookup(s->handle, K_DEVICE, C.q);
    if (d == NONE || (s->arg0 & ~VKMT_EVICT_F_KNOWN) || !payload_ok(4) || !resolve_allocs(d, 1)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    for (uint32_t i = 0; i < batch.n; i++) {
        if (obj(batch.v[i])->rcount == 0) {
            expect(VKMT_ST_INVALID_PARAMETER);
            return;
        }
    }
    expect(VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < batch.n; i++) {
        const struct mobj *o = obj(batch.v[i]);

        /* At count 0, demoted now where the segment has room (else it stays). */
        if (--obj(batch.v[i])->rcount == 0 && !(s->arg0 & VKMT_EVICT_F_ONLY_IF_NECESSARY) &&
            G.nonlocal && o->state == A_RESIDENT && !o->locks) {
            m_demote(batch.v[i]);
        }
    }
    used = queue_committed(C.q);
    C.value0 = used > M.budget ? used - M.budget : 0;
}

/* The allocations a priority or residency command names, into batch. */
static bool residency_targets(uint32_t stride, bool results)
{
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t d = lookup(s->handle, K_DEVICE, C.q);

    if (d == NONE) {
        return false;
    }
    if (s->arg0) {
        uint32_t r = lookup(s->arg0, K_RES, C.q);

        if (r == NONE || obj(r)->parent != d || s->count || s->payload_off || s->payload_len ||
            s->result_off || s->result_len) {
            return false;
        }
        batch.n = 0;
        for (uint32_t m = r + 1; m <= r + obj(r)->nmembers; m++) {
            PUSH(batch, m);
        }
        return true;
    }
    return payload_ok(stride * 4) && resolve_allocs(d, stride) && (!results || results_ok());
}

static void c_set_priority(void)
{
    if (!residency_negotiated()) {
        return;
    }
    if (!residency_targets(2, false) || (!C.sqe.arg0 && C.sqe.arg1)) {
        expect(VKMT_ST_INVALID_PARAMETER);
        return;
    }
    expect(VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < batch.n; i++) {
        obj(batch.v[i])->rprio = C.sqe.arg0 ? C.sqe.arg1 : pl32(2 * i + 1);
    }
}

static uint32_t m_residency(const struct mobj *o)
{
    return o->state == A_RESIDENT  ? VKMT_RESIDENCY_LOCAL
           : o->state == A_DEMOTED ? VKMT_RESIDENCY_NON_LOCAL
                                   : VKMT_RESIDENCY_NONE;
}

/* GET_PRIORITY (@prio) or QUERY_RESIDENCY: one value each, and in value0
 * the lowest priority or the least resident status. */
static void c_query_each(bool prio)
{
    uint32_t acc = prio ? UINT32_MAX : 0;

    if (!residency_negotiated()) {
        return;
    }
    if (!expect(residency_targets(1, true) ? VKMT_ST_SUCCESS : VKMT_ST_INVALID_PARAMETER)) {
        return;
    }
    for (uint32_t i = 0; i < batch.n; i++) {
        const struct mobj *o = obj(batch.v[i]);
        uint32_t v = prio ? o->rprio : m_residency(o);

        if (!C.sqe.arg0) {
            put_result(i, v);
        }
        acc = prio ? (v < acc ? v : acc) : (v > acc ? v : acc);
    }
    if (!C.sqe.arg0) {
        C.result_len = batch.n * 4;
    }
    C.value0 = acc;
}

static void c_change_reservation(void)
{
    const struct vkmt_sqe *s = &C.sqe;

    if (!residency_negotiated()) {
        return;
    }
    if (expect(s->arg0 > VKMT_SEGMENT_NON_LOCAL || s->arg64 > m_available(s->arg0)
                   ? VKMT_ST_INVALID_PARAMETER
                   : VKMT_ST_SUCCESS)) {
        M.q[C.q].reservation[s->arg0] = s->arg64;
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

/* QUERY_QUEUE_STATS: the caller's record, or every claimed queue's (the
 * fuzzer sets no queue budgets, and the model knows no demotion). */
static void c_query_queue_stats(void)
{
    const struct vkmt_sqe *s = &C.sqe;
    struct vkmt_wire_queue_stats w[VKMT_MAX_QUEUES] = { 0 };
    uint32_t n = 0, total = 0;

    if (!(M.driver_features & VKMT_F_QUEUE_STATS)) {
        expect(VKMT_ST_NOT_SUPPORTED);
        return;
    }
    if (!expect(s->arg0 & ~VKMT_QSTATS_ALL || s->count == 0 || s->count > VKMT_MAX_QUEUES ||
                        (!s->arg0 && s->count != 1) || s->result_off % 8 ||
                        s->result_len != s->count * sizeof(w[0]) ||
                        !staging_ok(s->result_off, s->result_len)
                    ? VKMT_ST_INVALID_PARAMETER
                    : VKMT_ST_SUCCESS)) {
        return;
    }
    for (uint32_t q = 0; q < G.nq; q++) {
        uint64_t offered = 0;

        if ((!s->arg0 && q != C.q) ||
            (M.q[q].state != VKMT_QSTATE_ACTIVE && M.q[q].state != VKMT_QSTATE_ERROR)) {
            continue;
        }
        total++;
        if (n == s->count) {
            continue;
        }
        for (uint32_t i = 0; i < live.n; i++) {
            const struct mobj *o = obj(live.v[i]);

            if (o->live && o->kind == K_ALLOC && o->queue == q && o->state == A_OFFERED) {
                offered += bytes_of(o);
            }
        }
        w[n].queue = q;
        w[n].flags = q == C.q ? VKMT_QSTATS_CALLER : 0;
        w[n].budget_local = M.budget;
        w[n].committed = queue_committed(q);
        w[n].offered = offered;
        w[n].resident = w[n].committed - offered;
        w[n].discarded = M.q[q].discarded;
        n++;
    }
    C.value0 = n;
    C.value1 = total;
    memcpy(C.results, w, s->result_len);
    C.result_len = s->result_len;
}

void m_command(void)
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
        expect(VKMT_ST_INVALID_PARAMETER);
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
    case VKMT_OP_MAKE_RESIDENT:
        c_make_resident();
        break;
    case VKMT_OP_EVICT:
        c_evict();
        break;
    case VKMT_OP_SET_PRIORITY:
        c_set_priority();
        break;
    case VKMT_OP_GET_PRIORITY:
        c_query_each(true);
        break;
    case VKMT_OP_QUERY_RESIDENCY:
        c_query_each(false);
        break;
    case VKMT_OP_CHANGE_RESERVATION:
        c_change_reservation();
        break;
    case VKMT_OP_QUERY_QUEUE_STATS:
        c_query_queue_stats();
        break;
    default:
        c_query_stats();
        break;
    }
}
