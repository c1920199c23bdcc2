/* SPDX-License-Identifier: MIT */
/*
 * Residency (protocol 1.2, VKMT_F_RESIDENCY): the non-local segment and
 * the commands around it. The local segment is the aperture under the
 * budget; the non-local one is host memory outside every BAR, with its own
 * page map, where a demoted allocation's content waits until a promotion
 * copies it back. A demoted allocation keeps its aperture range, so a
 * promotion needs budget but never address space. Pressure discards
 * offered content first (evict.c), then demotes here: allocations no
 * MAKE_RESIDENT holds before held ones, then lowest priority, then table
 * order, which makes the order reproducible.
 */
#ifndef _GNU_SOURCE /* QEMU defines it for every file */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core_priv.h"

int nonlocal_init(struct vkmt_core *core)
{
    uint64_t size = core->cfg.nonlocal_size;
    uint8_t *base = core->cfg.nonlocal;

    const struct vkmt_backend_ops *b = core->backend->ops;

    /* A backend with commit or lock hooks keeps content outside the
     * aperture, where a copy would miss it: no segment to demote into. */
    if (size == 0 || b->commit || b->lock || b->unlock) {
        return 0;
    }
    if (!base) {
        base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) {
            return -ENOMEM;
        }
        core->nl_owned = true;
    }
    core->nl_base = base;
    return aperture_init(&core->nl, (uint32_t)(size / VKMT_PAGE_SIZE));
}

void nonlocal_fini(struct vkmt_core *core)
{
    if (core->nl_owned) {
        munmap(core->nl_base, core->cfg.nonlocal_size);
    }
    core->nl_base = NULL;
    aperture_fini(&core->nl);
}

void nonlocal_free(struct vkmt_core *core, uint32_t page, uint32_t npages)
{
    aperture_free(&core->nl, page, npages);
    /* The host gets the memory back; a later demotion overwrites it whole. */
    madvise(core->nl_base + (uint64_t)page * VKMT_PAGE_SIZE, (uint64_t)npages * VKMT_PAGE_SIZE,
            MADV_DONTNEED);
}

bool demotion_enabled(const struct vkmt_core *core)
{
    return core->nl_base && (core->driver_features & VKMT_F_RESIDENCY);
}

bool demote_one(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];
    uint32_t page = aperture_alloc(&core->nl, o->u.alloc.npages);
    int err;

    if (page == APERTURE_NONE) {
        return false;
    }
    memcpy(core->nl_base + (uint64_t)page * VKMT_PAGE_SIZE, core->backend->base + alloc_off(o),
           alloc_bytes(o));
    o->u.alloc.nl_page = page;
    if (core->ops->wrote) {
        core->ops->wrote(core->opaque, true, (uint64_t)page * VKMT_PAGE_SIZE, alloc_bytes(o));
    }
    /* The local copy goes back to the host, and the range reads zeros
     * until the promotion fills it. */
    err = core_scrub(core, o->u.alloc.page, o->u.alloc.npages);
    if (err < 0) {
        core_backend_failed(core, "scrub", err);
    }
    alloc_move(core, idx, ALLOC_RESIDENT, ALLOC_DEMOTED);
    return true;
}

void promote(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];

    memcpy(core->backend->base + alloc_off(o),
           core->nl_base + (uint64_t)o->u.alloc.nl_page * VKMT_PAGE_SIZE, alloc_bytes(o));
    if (core->ops->wrote) {
        core->ops->wrote(core->opaque, false, alloc_off(o), alloc_bytes(o));
    }
    alloc_move(core, idx, ALLOC_DEMOTED, ALLOC_RESIDENT);
}

/* What demote_bytes() could free now: resident, unlocked, unmarked
 * allocations, as far as the non-local segment's free pages reach. */
static bool demotable(const struct vkmt_obj *o)
{
    return o->type == OBJ_ALLOCATION && o->state == ALLOC_RESIDENT && !o->u.alloc.locks &&
           !(o->flags & OBJF_MARK);
}

uint64_t demotable_bytes(const struct vkmt_core *core, uint32_t q)
{
    uint64_t nl_free = (uint64_t)(core->nl.npages - core->nl.used) * VKMT_PAGE_SIZE, sum = 0;

    for (uint32_t i = 1; i < core->nobjs && sum < nl_free; i++) {
        if (demotable(&core->objs[i]) && (q == QUEUE_ANY || core->objs[i].queue == q)) {
            sum += alloc_bytes(&core->objs[i]);
        }
    }
    return sum < nl_free ? sum : nl_free;
}

/* Demotion order: unheld (rcount 0) first, then priority, then index. */
static const struct vkmt_core *sort_core;

static int victim_cmp(const void *a, const void *b)
{
    const struct vkmt_obj *x = &sort_core->objs[*(const uint32_t *)a];
    const struct vkmt_obj *y = &sort_core->objs[*(const uint32_t *)b];
    int hx = x->u.alloc.rcount != 0, hy = y->u.alloc.rcount != 0;

    if (hx != hy) {
        return hx - hy;
    }
    if (x->u.alloc.rprio != y->u.alloc.rprio) {
        return x->u.alloc.rprio < y->u.alloc.rprio ? -1 : 1;
    }
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

uint64_t demote_bytes(struct vkmt_core *core, uint32_t q, uint64_t bytes, uint32_t *work)
{
    uint32_t *victims, n = 0;
    uint64_t freed = 0;

    if (!demotion_enabled(core) || bytes == 0) {
        return 0;
    }
    victims = malloc((size_t)core->stats.allocations * sizeof(*victims) + 1);
    if (!victims) {
        return 0;
    }
    for (uint32_t i = 1; i < core->nobjs && n < core->stats.allocations; i++) {
        if (demotable(&core->objs[i]) && (q == QUEUE_ANY || core->objs[i].queue == q)) {
            victims[n++] = i;
        }
    }
    sort_core = core;
    qsort(victims, n, sizeof(*victims), victim_cmp);
    for (uint32_t i = 0; i < n && freed < bytes && (!work || *work); i++) {
        if (demote_one(core, victims[i])) {
            freed += alloc_bytes(&core->objs[victims[i]]);
        }
        if (work) {
            *work -= VKMT_WORK_PER_OBJECT < *work ? VKMT_WORK_PER_OBJECT : *work;
        }
    }
    free(victims);
    return freed;
}

/* ---- commands ---- */

static uint32_t require_residency(struct cmd *c)
{
    if (!(c->core->driver_features & VKMT_F_RESIDENCY)) {
        core_guest_error(c->core, "opcode %u without the RESIDENCY feature", c->sqe.opcode);
        return VKMT_ST_NOT_SUPPORTED;
    }
    return VKMT_ST_SUCCESS;
}

static void unmark_all(struct vkmt_core *core, const uint32_t *idx, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        core->objs[idx[i]].flags &= (uint8_t)~OBJF_MARK;
    }
}

/*
 * Resolve @n allocation handles at @h (stride @stride words) of device @dev
 * into indices in core->batch, returned through *@out. Unknown, foreign
 * and repeated handles fail the whole list. On success every element is
 * left marked (OBJF_MARK): the caller unmarks.
 */
static uint32_t resolve_allocs(struct cmd *c, uint32_t dev, const uint32_t *h, uint32_t stride,
                               uint32_t **out)
{
    struct vkmt_core *core = c->core;
    uint32_t n = c->sqe.count;
    uint32_t *idx;

    if (core_buf_reserve(&core->batch, &core->batch_cap, n * 4u, UINT32_MAX) < 0) {
        return VKMT_ST_NO_MEMORY;
    }
    idx = core->batch;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x = obj_lookup(core, h[i * stride], OBJ_ALLOCATION, c->queue);

        if (x == NIL || core->objs[x].parent != dev || (core->objs[x].flags & OBJF_MARK)) {
            core_guest_error(
                core, "opcode %u element %u: 0x%x is %s", c->sqe.opcode, i, h[i * stride],
                x == NIL || core->objs[x].parent != dev ? "not an allocation of this device"
                                                        : "listed twice");
            unmark_all(core, idx, i);
            return VKMT_ST_INVALID_PARAMETER;
        }
        core->objs[x].flags |= OBJF_MARK;
        idx[i] = x;
    }
    *out = idx;
    return VKMT_ST_SUCCESS;
}

/*
 * MAKE_RESIDENT: handle = paging queue, payload = allocation handles,
 * arg0 = VKMT_RESIDENT_F_*. Every element must be resident or demoted;
 * demoted ones are promoted, making room as a creation does (their own
 * batch is never demoted for it). All or nothing: on NO_MEMORY no count
 * changed and value1 says how many bytes the queue must give up first.
 * value0 = the paging queue's fence, already reached: the work is done
 * when the command completes.
 */
uint32_t cmd_make_resident(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t flags = c->sqe.arg0, pq, *idx, st;
    const uint32_t *h;
    uint64_t need = 0;
    enum room room = ROOM_MADE;

    if ((st = require_residency(c)) != VKMT_ST_SUCCESS) {
        return st;
    }
    pq = obj_lookup(core, c->sqe.handle, OBJ_PAGING_QUEUE, c->queue);
    if (pq == NIL || (flags & ~VKMT_RESIDENT_F_KNOWN) ||
        (flags & VKMT_RESIDENT_F_MUST_SUCCEED && !(flags & VKMT_RESIDENT_F_CANT_TRIM_FURTHER))) {
        core_guest_error(core, "make resident: paging queue 0x%x, flags 0x%x", c->sqe.handle,
                         flags);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (!(h = cmd_payload(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    if ((st = resolve_allocs(c, core->objs[pq].parent, h, 1, &idx)) != VKMT_ST_SUCCESS) {
        return st;
    }
    for (uint32_t i = 0; i < c->sqe.count; i++) {
        const struct vkmt_obj *o = &core->objs[idx[i]];

        if ((o->state != ALLOC_RESIDENT && o->state != ALLOC_DEMOTED) ||
            o->u.alloc.rcount == UINT32_MAX) {
            core_guest_error(core, "make resident: allocation 0x%x is %s", h[i],
                             vkmt_alloc_state_name(o->state));
            unmark_all(core, idx, c->sqe.count);
            return VKMT_ST_INVALID_PARAMETER;
        }
        if (o->state == ALLOC_DEMOTED) {
            need += alloc_bytes(o);
        }
    }
    if (need && evict_over_by(core, c->queue, need)) {
        /* Room as for any command first; past a budget (the device's or the
         * queue's own) only for a caller that trimmed all it could, and
         * never past the aperture, the hard bound. */
        bool over_ok = (flags & VKMT_RESIDENT_F_CANT_TRIM_FURTHER) &&
                       core->committed + need <= core->ap.npages * (uint64_t)VKMT_PAGE_SIZE;

        room = evict_can_fit(core, c->queue, need, 0) ? evict_make_room(core, c->queue, need)
                                                      : ROOM_REFUSED;
        if (room == ROOM_REFUSED && over_ok) {
            room = ROOM_MADE;
        }
    }
    unmark_all(core, idx, c->sqe.count);
    if (room == ROOM_LATER) {
        return CMD_RETRY;
    }
    if (room == ROOM_REFUSED) {
        c->value1 = evict_over_by(core, c->queue, need);
        return VKMT_ST_NO_MEMORY;
    }
    for (uint32_t i = 0; i < c->sqe.count; i++) {
        if (core->objs[idx[i]].state == ALLOC_DEMOTED) {
            promote(core, idx[i]);
        }
        core->objs[idx[i]].u.alloc.rcount++;
    }
    /* Over a budget now, offered content goes first (PROTOCOL.md 9); what
     * the work bound leaves goes on in vkmt_core_continue(). */
    evict_enforce_budget(core, &core->work_left);
    c->value0 = core->objs[pq].u.pq.fence;
    return VKMT_ST_SUCCESS;
}

/*
 * EVICT: handle = device, payload = allocation handles, arg0 =
 * VKMT_EVICT_F_*. Undoes one MAKE_RESIDENT of each element; an element
 * whose count is already 0 fails the batch. At 0, without
 * ONLY_IF_NECESSARY, a resident unlocked allocation is demoted now if the
 * non-local segment has room. NOT_WRITTEN_TO is accepted and changes
 * nothing: content that is not offered is never dropped. value0 = the
 * bytes the queue is over its budget.
 */
uint32_t cmd_evict(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t flags = c->sqe.arg0, dev, *idx, st;
    const uint32_t *h;

    if ((st = require_residency(c)) != VKMT_ST_SUCCESS) {
        return st;
    }
    dev = obj_lookup(core, c->sqe.handle, OBJ_DEVICE, c->queue);
    if (dev == NIL || (flags & ~VKMT_EVICT_F_KNOWN)) {
        core_guest_error(core, "evict: device 0x%x, flags 0x%x", c->sqe.handle, flags);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (!(h = cmd_payload(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    if ((st = resolve_allocs(c, dev, h, 1, &idx)) != VKMT_ST_SUCCESS) {
        return st;
    }
    unmark_all(core, idx, c->sqe.count);
    for (uint32_t i = 0; i < c->sqe.count; i++) {
        if (core->objs[idx[i]].u.alloc.rcount == 0) {
            core_guest_error(core, "evict: allocation 0x%x was not made resident", h[i]);
            return VKMT_ST_INVALID_PARAMETER;
        }
    }
    for (uint32_t i = 0; i < c->sqe.count; i++) {
        struct vkmt_obj *o = &core->objs[idx[i]];

        if (--o->u.alloc.rcount == 0 && !(flags & VKMT_EVICT_F_ONLY_IF_NECESSARY) &&
            o->state == ALLOC_RESIDENT && !o->u.alloc.locks && demotion_enabled(core)) {
            demote_one(core, idx[i]);
        }
    }
    c->value0 = core_queue_over_budget(core, c->queue);
    return VKMT_ST_SUCCESS;
}

/*
 * The allocations a priority or residency command names: arg0 = a
 * resource of the device with count 0 (its members), or count handles at
 * @h with stride @stride. Returns the status; *@idx and *@n on success,
 * with no marks left.
 */
static uint32_t residency_targets(struct cmd *c, uint32_t stride, const uint32_t **idx, uint32_t *n)
{
    struct vkmt_core *core = c->core;
    uint32_t dev = obj_lookup(core, c->sqe.handle, OBJ_DEVICE, c->queue), st, *out;
    const uint32_t *h;

    if ((st = require_residency(c)) != VKMT_ST_SUCCESS) {
        return st;
    }
    if (dev == NIL) {
        core_guest_error(core, "opcode %u: 0x%x is not a device of this queue", c->sqe.opcode,
                         c->sqe.handle);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (c->sqe.arg0) {
        uint32_t res = obj_lookup(core, c->sqe.arg0, OBJ_RESOURCE, c->queue);

        if (res == NIL || core->objs[res].parent != dev || c->sqe.count || c->sqe.payload_off ||
            c->sqe.payload_len || c->sqe.result_off || c->sqe.result_len) {
            core_guest_error(core, "opcode %u: bad resource 0x%x (count %u)", c->sqe.opcode,
                             c->sqe.arg0, c->sqe.count);
            return VKMT_ST_INVALID_PARAMETER;
        }
        *idx = core->objs[res].u.res.members;
        *n = core->objs[res].u.res.count;
        return VKMT_ST_SUCCESS;
    }
    if (!(h = cmd_payload(c, stride * (uint32_t)sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    if ((st = resolve_allocs(c, dev, h, stride, &out)) != VKMT_ST_SUCCESS) {
        return st;
    }
    unmark_all(core, out, c->sqe.count);
    *idx = out;
    *n = c->sqe.count;
    return VKMT_ST_SUCCESS;
}

/*
 * SET_PRIORITY: handle = device; payload = count {handle, priority} pairs,
 * or arg0 = a resource and arg1 = the priority for all its members.
 */
uint32_t cmd_set_priority(struct cmd *c)
{
    const uint32_t *idx, *pairs = (const uint32_t *)c->core->scratch;
    uint32_t n, st = residency_targets(c, 2, &idx, &n);

    if (st != VKMT_ST_SUCCESS) {
        return st;
    }
    if (!c->sqe.arg0 && c->sqe.arg1) {
        core_guest_error(c->core, "set priority: arg1 without a resource");
        return VKMT_ST_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < n; i++) {
        c->core->objs[idx[i]].u.alloc.rprio = c->sqe.arg0 ? c->sqe.arg1 : pairs[2 * i + 1];
    }
    return VKMT_ST_SUCCESS;
}

/*
 * GET_PRIORITY and QUERY_RESIDENCY: handle = device; payload = count
 * handles and a result area of count u32, or arg0 = a resource with its
 * one answer in value0 (the lowest priority, the least resident status).
 */
static uint32_t residency_status(const struct vkmt_obj *o)
{
    switch (o->state) {
    case ALLOC_RESIDENT:
        return VKMT_RESIDENCY_LOCAL;
    case ALLOC_DEMOTED:
        return VKMT_RESIDENCY_NON_LOCAL;
    default:
        return VKMT_RESIDENCY_NONE;
    }
}

static uint32_t query_each(struct cmd *c, bool prio)
{
    const struct vkmt_obj *objs = c->core->objs;
    const uint32_t *idx;
    uint32_t n, *out = NULL, st = residency_targets(c, 1, &idx, &n);
    uint32_t acc = prio ? UINT32_MAX : 0;

    if (st != VKMT_ST_SUCCESS) {
        return st;
    }
    if (!c->sqe.arg0 && !(out = cmd_results(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = prio ? objs[idx[i]].u.alloc.rprio : residency_status(&objs[idx[i]]);

        if (out) {
            out[i] = v;
        }
        acc = prio ? (v < acc ? v : acc) : (v > acc ? v : acc);
    }
    c->value0 = acc;
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_get_priority(struct cmd *c)
{
    return query_each(c, true);
}

uint32_t cmd_query_residency(struct cmd *c)
{
    return query_each(c, false);
}

/* What queue @q may reserve in segment group @g: half its budget there, the
 * share Windows' own reference implementations report. */
uint64_t residency_available(const struct vkmt_core *core, uint32_t q, uint32_t g)
{
    uint64_t size = g == VKMT_SEGMENT_LOCAL ? core_queue_budget(core, q)
                                            : (uint64_t)core->nl.npages * VKMT_PAGE_SIZE;

    return size / 2 / VKMT_PAGE_SIZE * VKMT_PAGE_SIZE;
}

/* CHANGE_RESERVATION: arg0 = segment group, arg64 = bytes, at most what
 * QUERY_MEMORY reports as available. A hint: nothing is set aside. */
uint32_t cmd_change_reservation(struct cmd *c)
{
    uint32_t st = require_residency(c);

    if (st != VKMT_ST_SUCCESS) {
        return st;
    }
    if (c->sqe.arg0 > VKMT_SEGMENT_NON_LOCAL ||
        c->sqe.arg64 > residency_available(c->core, c->queue, c->sqe.arg0)) {
        core_guest_error(c->core, "change reservation: group %u, %llu bytes", c->sqe.arg0,
                         (unsigned long long)c->sqe.arg64);
        return VKMT_ST_INVALID_PARAMETER;
    }
    c->core->queues[c->queue].reservation[c->sqe.arg0] = c->sqe.arg64;
    return VKMT_ST_SUCCESS;
}
