/* SPDX-License-Identifier: MIT */
/*
 * OFFER and RECLAIM, the reason the device exists. Both resolve their element
 * list (allocation handles, or resource handles expanded to their members)
 * into a private index list, check every element and the budget, and only
 * then apply, so a batch with any bad element changes nothing.
 */

#include "core_priv.h"

struct batch {
    uint32_t *idx;   /* allocation indices, members of resources expanded */
    uint8_t *result; /* RECLAIM: per allocation, decided before applying */
    uint32_t n;
    uint32_t *elem_end; /* per element: end of its members in idx[] */
};

static void unmark(struct vkmt_core *core, const uint32_t *h, uint32_t n, uint8_t type, uint32_t q)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x = obj_lookup(core, h[i], type, q);

        if (x != NIL) {
            core->objs[x].flags &= (uint8_t)~OBJF_MARK;
        }
    }
}

/*
 * Resolve the payload into @b. Returns VKMT_ST_SUCCESS, or the status for
 * an unknown, foreign or duplicate element; marks are always cleared.
 */
static uint32_t resolve(struct cmd *c, uint32_t dev, const uint32_t *h, struct batch *b)
{
    struct vkmt_core *core = c->core;
    bool res = c->sqe.flags & VKMT_SQE_F_RESOURCES;
    uint8_t type = res ? OBJ_RESOURCE : OBJ_ALLOCATION;
    uint32_t n = c->sqe.count;
    uint32_t total = 0;
    uint32_t status = VKMT_ST_SUCCESS;

    for (uint32_t i = 0; i < n; i++) {
        uint32_t x = obj_lookup(core, h[i], type, c->queue);

        if (x == NIL || core->objs[x].parent != dev || (core->objs[x].flags & OBJF_MARK)) {
            core_guest_error(core, "opcode %u element %u: 0x%x is %s", c->sqe.opcode, i, h[i],
                             x == NIL || core->objs[x].parent != dev
                                 ? "not an object of this device"
                                 : "listed twice");
            status = VKMT_ST_INVALID_PARAMETER;
            break;
        }
        core->objs[x].flags |= OBJF_MARK;
        total += res ? core->objs[x].u.res.count : 1;
    }
    unmark(core, h, n, type, c->queue);
    if (status != VKMT_ST_SUCCESS) {
        return status;
    }
    /* One buffer: idx[total], elem_end[n], result[total]. total is at most
     * the table size and n at most VKMT_MAX_BATCH, so 5 * total + 4 * n
     * fits 32 bits. */
    if (core_buf_reserve(&core->batch, &core->batch_cap, 5 * total + 4 * n, UINT32_MAX) < 0) {
        return VKMT_ST_NO_MEMORY;
    }
    b->n = total;
    b->idx = core->batch;
    b->elem_end = b->idx + total;
    b->result = (uint8_t *)(b->elem_end + n);
    total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x = obj_lookup(core, h[i], type, c->queue);

        if (res) {
            for (uint32_t m = 0; m < core->objs[x].u.res.count; m++) {
                b->idx[total++] = core->objs[x].u.res.members[m];
            }
        } else {
            b->idx[total++] = x;
        }
        b->elem_end[i] = total;
    }
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_offer(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t dev = obj_lookup(core, c->sqe.handle, OBJ_DEVICE, c->queue);
    uint32_t prio = c->sqe.arg0;
    uint32_t flags = c->sqe.arg1;
    struct batch b = { 0 };
    const uint32_t *h;
    uint32_t status;

    if (dev == NIL) {
        core_guest_error(core, "offer: 0x%x is not a device of this queue", c->sqe.handle);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (prio < VKMT_PRIO_LOW || prio > VKMT_PRIO_AUTO || (flags & ~VKMT_OFFER_F_KNOWN)) {
        core_guest_error(core, "offer: priority %u or flags 0x%x invalid", prio, flags);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (!(h = cmd_payload(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    status = resolve(c, dev, h, &b);
    for (uint32_t i = 0; status == VKMT_ST_SUCCESS && i < b.n; i++) {
        const struct vkmt_obj *o = &core->objs[b.idx[i]];

        if ((o->state != ALLOC_RESIDENT && o->state != ALLOC_DEMOTED) || o->u.alloc.locks) {
            core_guest_error(core, "offer: allocation 0x%x is %s", obj_handle(core, b.idx[i]),
                             o->u.alloc.locks ? "locked" : vkmt_alloc_state_name(o->state));
            status = VKMT_ST_INVALID_PARAMETER;
        }
    }
    if (status != VKMT_ST_SUCCESS) {
        return status;
    }
    for (uint32_t i = 0; i < b.n; i++) {
        struct vkmt_obj *o = &core->objs[b.idx[i]];

        o->prio = (uint8_t)prio;
        if (flags & VKMT_OFFER_F_ALLOW_DECOMMIT) {
            o->flags |= OBJF_DECOMMIT;
        } else {
            o->flags &= (uint8_t)~OBJF_DECOMMIT;
        }
        if (o->state == ALLOC_DEMOTED) {
            /* Its content is already out of the local segment, and pressure
             * would discard it before any other: the offer lets it go now. */
            alloc_move(core, b.idx[i], ALLOC_DEMOTED, ALLOC_DISCARDED);
            if (flags & VKMT_OFFER_F_ALLOW_DECOMMIT) {
                alloc_move(core, b.idx[i], ALLOC_DISCARDED, ALLOC_DECOMMITTED);
            }
            continue;
        }
        alloc_move(core, b.idx[i], ALLOC_RESIDENT, ALLOC_OFFERED); /* checked above */
    }
    /* A budget lowered while these were in use may now be enforceable; what
     * the work bound leaves goes on in vkmt_core_continue(). */
    evict_enforce_budget(core, &core->work_left);
    return VKMT_ST_SUCCESS;
}

static uint32_t reclaim_device(struct cmd *c, uint32_t *pq)
{
    struct vkmt_core *core = c->core;

    *pq = NIL;
    if (c->sqe.flags & VKMT_SQE_F_PAGING_QUEUE) {
        *pq = obj_lookup(core, c->sqe.handle, OBJ_PAGING_QUEUE, c->queue);
        if (*pq != NIL) {
            return core->objs[*pq].parent;
        }
    } else {
        uint32_t dev = obj_lookup(core, c->sqe.handle, OBJ_DEVICE, c->queue);

        if (dev != NIL) {
            return dev;
        }
    }
    core_guest_error(core, "reclaim: 0x%x is not a %s of this queue", c->sqe.handle,
                     *pq == NIL && (c->sqe.flags & VKMT_SQE_F_PAGING_QUEUE) ? "paging queue"
                                                                            : "device");
    return NIL;
}

/* Free the new ranges that @b's decommitted allocations got, from element
 * @from on, when the reclaim fails after all. */
static void free_new_ranges(struct vkmt_core *core, const struct batch *b, uint32_t from)
{
    for (uint32_t j = from; j < b->n; j++) {
        const struct vkmt_obj *o = &core->objs[b->idx[j]];

        if (b->result[j] == VKMT_RECLAIM_DISCARDED && o->state == ALLOC_DECOMMITTED) {
            aperture_free(&core->ap, o->u.alloc.page, o->u.alloc.npages);
        }
    }
}

/*
 * Step 4, recommit: back every allocation of @b that comes back without
 * its content, on its scrubbed range. All or nothing: when the backend
 * cannot commit one, the ones before it are given back, the new ranges of
 * decommitted allocations are freed, and NO_MEMORY fails the command.
 */
static uint32_t recommit_all(struct vkmt_core *core, const struct batch *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        int err;

        if (b->result[i] != VKMT_RECLAIM_DISCARDED) {
            continue;
        }
        err = core_alloc_commit(core, b->idx[i]);
        if (err == 0) {
            continue;
        }
        core_guest_error(core, "reclaim: the backend cannot recommit allocation 0x%x now (%d)",
                         obj_handle(core, b->idx[i]), err);
        for (uint32_t j = 0; j < i; j++) {
            if (b->result[j] == VKMT_RECLAIM_DISCARDED) {
                core_alloc_uncommit(core, b->idx[j]);
            }
        }
        free_new_ranges(core, b, 0);
        return VKMT_ST_NO_MEMORY;
    }
    return VKMT_ST_SUCCESS;
}

/*
 * Step 1, classify: each allocation's result, decided before anything
 * changes. Returns the bytes the batch must recommit; *@pinned is its own
 * offered bytes, which making room must not count on.
 */
static uint64_t reclaim_classify(struct vkmt_core *core, struct batch *b, bool recommit,
                                 uint64_t *pinned)
{
    uint64_t need = 0;

    for (uint32_t i = 0; i < b->n; i++) {
        const struct vkmt_obj *o = &core->objs[b->idx[i]];

        b->result[i] = VKMT_RECLAIM_OK;
        if (o->state == ALLOC_OFFERED) {
            *pinned += alloc_bytes(o);
        } else if (o->state == ALLOC_DEMOTED) {
            need += alloc_bytes(o); /* promoted, its content kept */
        } else if (o->state == ALLOC_DISCARDED || (o->state == ALLOC_DECOMMITTED && recommit)) {
            need += alloc_bytes(o);
            b->result[i] = VKMT_RECLAIM_DISCARDED;
        } else if (o->state == ALLOC_DECOMMITTED) {
            b->result[i] = VKMT_RECLAIM_NOT_COMMITTED;
        }
    }
    return need;
}

/*
 * Step 2, ranges: a new address range for each decommitted allocation that
 * comes back, then every range that comes back scrubbed, so it reads zeros
 * even where the guest wrote into it after its discard. Undone on failure.
 */
static uint32_t reclaim_ranges(struct vkmt_core *core, const struct batch *b)
{
    struct scrub scrub = { 0 };
    int err;

    for (uint32_t i = 0; i < b->n; i++) {
        struct vkmt_obj *o = &core->objs[b->idx[i]];
        uint32_t page;

        if (b->result[i] != VKMT_RECLAIM_DISCARDED || o->state != ALLOC_DECOMMITTED) {
            continue;
        }
        page = aperture_alloc(&core->ap, o->u.alloc.npages);
        if (page == APERTURE_NONE) {
            for (uint32_t j = 0; j < i; j++) {
                o = &core->objs[b->idx[j]];
                if (b->result[j] == VKMT_RECLAIM_DISCARDED && o->state == ALLOC_DECOMMITTED) {
                    aperture_free(&core->ap, o->u.alloc.page, o->u.alloc.npages);
                }
            }
            return VKMT_ST_NO_MEMORY;
        }
        o->u.alloc.page = page;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        const struct vkmt_obj *o = &core->objs[b->idx[i]];

        if (b->result[i] == VKMT_RECLAIM_DISCARDED) {
            scrub_add(core, &scrub, o->u.alloc.page, o->u.alloc.npages);
        }
    }
    err = scrub_end(core, &scrub);
    if (err < 0) {
        core_guest_error(core, "reclaim: the backend cannot scrub the ranges (%d)", err);
        free_new_ranges(core, b, 0);
        return VKMT_ST_NO_MEMORY;
    }
    return VKMT_ST_SUCCESS;
}

/*
 * Step 3, room (see cmd_create_allocations), the whole batch marked so
 * that making room neither discards its offers nor demotes its members. Short of ROOM_MADE the
 * caller frees step 2's ranges; the command runs again (ROOM_LATER: the work bound stopped it) or
 * fails (ROOM_REFUSED: a discard failed).
 */
static enum room reclaim_room(struct vkmt_core *core, uint32_t q, const struct batch *b,
                              uint64_t need)
{
    enum room room;

    if (!evict_over_by(core, q, need)) {
        return ROOM_MADE; /* nothing to discard: no marks needed */
    }
    for (uint32_t i = 0; i < b->n; i++) {
        core->objs[b->idx[i]].flags |= OBJF_MARK;
    }
    room = evict_make_room(core, q, need);
    for (uint32_t i = 0; i < b->n; i++) {
        core->objs[b->idx[i]].flags &= (uint8_t)~OBJF_MARK;
    }
    return room;
}

uint32_t cmd_reclaim(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t *results = NULL;
    struct batch b = { 0 };
    uint64_t need, pinned = 0;
    const uint32_t *h;
    uint32_t pq, dev, status;
    enum room room;

    dev = reclaim_device(c, &pq);
    if (dev == NIL || !(h = cmd_payload(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (c->sqe.flags & VKMT_SQE_F_WRITE_RESULTS) {
        if (!(results = cmd_results(c, sizeof(uint32_t)))) {
            return VKMT_ST_INVALID_PARAMETER;
        }
    } else if (c->sqe.result_off || c->sqe.result_len) {
        core_guest_error(core, "reclaim: result area without WRITE_RESULTS");
        return VKMT_ST_INVALID_PARAMETER;
    }
    status = resolve(c, dev, h, &b);
    if (status != VKMT_ST_SUCCESS) {
        return status;
    }
    need = reclaim_classify(core, &b, c->sqe.flags & VKMT_SQE_F_RECOMMIT, &pinned);
    /* Steps 2 to 4 concern what comes back without its content: a batch
     * that needs no memory succeeds even while the device is over a
     * lowered budget; NO_MEMORY is for a recommit that cannot fit. */
    if (need) {
        /* Failing, they leave the aperture as it was, down to where the
         * next range goes, so a failed command changes no placement. */
        uint32_t cursor = core->ap.cursor;
        bool fits;

        /* Marked, the batch's resident members count as nothing to demote. */
        for (uint32_t i = 0; i < b.n; i++) {
            core->objs[b.idx[i]].flags |= OBJF_MARK;
        }
        fits = evict_can_fit(core, c->queue, need, pinned);
        for (uint32_t i = 0; i < b.n; i++) {
            core->objs[b.idx[i]].flags &= (uint8_t)~OBJF_MARK;
        }
        if (!fits) {
            return VKMT_ST_NO_MEMORY;
        }
        status = reclaim_ranges(core, &b);
        if (status == VKMT_ST_SUCCESS) {
            room = reclaim_room(core, c->queue, &b, need);
            if (room != ROOM_MADE) {
                free_new_ranges(core, &b, 0);
                status = room == ROOM_LATER ? CMD_RETRY : VKMT_ST_NO_MEMORY;
            }
        }
        if (status == VKMT_ST_SUCCESS) {
            status = recommit_all(core, &b);
        }
        if (status != VKMT_ST_SUCCESS) {
            core->ap.cursor = cursor;
            return status;
        }
    }
    /* Step 5, apply: nothing can fail any more. */
    for (uint32_t i = 0; i < b.n; i++) {
        if (core->objs[b.idx[i]].state == ALLOC_DEMOTED) {
            promote(core, b.idx[i]);
        }
        alloc_reclaimed(core, b.idx[i], b.result[i]);
    }
    /* A resource reports the worst result among its members. */
    for (uint32_t e = 0, i = 0; results && e < c->sqe.count; e++) {
        uint32_t r = VKMT_RECLAIM_OK;

        for (; i < b.elem_end[e]; i++) {
            r = b.result[i] > r ? b.result[i] : r;
        }
        results[e] = r;
    }
    if (pq != NIL) {
        c->value0 = ++core->objs[pq].u.pq.fence;
    }
    return VKMT_ST_SUCCESS;
}
