/* SPDX-License-Identifier: MIT */
/*
 * Object life cycle commands: devices, paging queues with their fences,
 * allocations and resources, lock and unlock, memory and fence queries, and
 * teardown. Every batch command checks all of its elements and reserves every
 * resource it needs before it changes anything.
 */
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"

/* The shape of texture allocation @o, filled into *@buf; NULL for a buffer. */
const struct vkmt_shape *alloc_shape(const struct vkmt_obj *o, struct vkmt_shape *buf)
{
    if (!o->shape) {
        return NULL;
    }
    buf->format = SHAPE_FORMAT(o->shape);
    buf->width = SHAPE_WIDTH(o->shape);
    buf->height = SHAPE_HEIGHT(o->shape);
    buf->stride = vkmt_format_bpp(buf->format) * buf->width;
    return buf;
}

/*
 * Whether descriptor @d is well formed under the negotiated features: a
 * buffer has no flags and no dims; a texture (VKMT_F_TEXTURES only) has a
 * known format, dimensions in range and exactly the size they need.
 */
static bool desc_valid(const struct vkmt_core *core, const struct vkmt_alloc_desc *d)
{
    const struct vkmt_backend *b = core->backend;

    /* The backend's limits (registers max_alloc, max_texture_dim): what it
     * could never hold is a bad element, not a device failure. */
    if (d->size == 0 || d->size > b->max_alloc) {
        return false;
    }
    if (d->flags == 0) {
        return d->dims == 0;
    }
    return (core->driver_features & VKMT_F_TEXTURES) &&
           vkmt_texture_bytes(d->flags, d->dims) == d->size &&
           VKMT_ALLOC_WIDTH(d->dims) <= b->max_texture_dim &&
           VKMT_ALLOC_HEIGHT(d->dims) <= b->max_texture_dim;
}

/* Give back the memory of @npages at @page, which no allocation holds, and
 * leave them reading as zeros. Returns 0 or a negative errno. */
int core_scrub(struct vkmt_core *core, uint32_t page, uint32_t npages)
{
    return core->backend->ops->scrub(core->backend, (uint64_t)page * VKMT_PAGE_SIZE,
                                     (uint64_t)npages * VKMT_PAGE_SIZE);
}

/*
 * A batch's ranges are scrubbed before they are handed out: the guest may
 * have written into them while no allocation held them, and a new or
 * recommitted range must read as zeros. Next-fit places a batch's ranges
 * side by side, so adjacent ones are merged and a batch usually costs one
 * backend call. The first error sticks; scrub_end() returns it.
 */
void scrub_add(struct vkmt_core *core, struct scrub *s, uint32_t page, uint32_t npages)
{
    if (s->n && s->first + s->n == page) {
        s->n += npages;
        return;
    }
    if (s->n && s->err == 0) {
        s->err = core_scrub(core, s->first, s->n);
    }
    s->first = page;
    s->n = npages;
}

int scrub_end(struct vkmt_core *core, struct scrub *s)
{
    if (s->n && s->err == 0) {
        s->err = core_scrub(core, s->first, s->n);
    }
    s->n = 0;
    return s->err;
}

/* Back allocation @idx's range, scrubbed already, for a create or a
 * recommit. Returns 0, or a negative errno with nothing left committed. */
int core_alloc_commit(struct vkmt_core *core, uint32_t idx)
{
    const struct vkmt_obj *o = &core->objs[idx];
    struct vkmt_shape shape;
    int err = fault_commit(core, idx);

    if (err < 0 || !core->backend->ops->commit) {
        return err;
    }
    return core->backend->ops->commit(core->backend, idx, alloc_off(o), alloc_bytes(o),
                                      alloc_shape(o, &shape));
}

/* Undo core_alloc_commit() of @idx when the command it was for fails. */
void core_alloc_uncommit(struct vkmt_core *core, uint32_t idx)
{
    const struct vkmt_obj *o = &core->objs[idx];
    int err = core->backend->ops->discard(core->backend, idx, alloc_off(o), alloc_bytes(o));

    if (err < 0) {
        core_backend_failed(core, "discard", err);
    }
}

/* ---- teardown ---- */

void core_alloc_destroy(struct vkmt_core *core, uint32_t idx)
{
    const struct vkmt_obj *o = &core->objs[idx];
    bool content = o->state == ALLOC_OFFERED || o->state == ALLOC_RESIDENT;

    alloc_set_state(core, idx, ALLOC_NONE);
    if (content) {
        /* Return the pages now, and leave the range zeroed for its next user. */
        int err = core->backend->ops->discard(core->backend, idx, alloc_off(o), alloc_bytes(o));

        if (err < 0) {
            core_backend_failed(core, "discard", err);
        }
    }
    obj_free(core, idx);
}

void core_resource_destroy(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];

    for (uint32_t i = 0; i < o->u.res.count; i++) {
        core_alloc_destroy(core, o->u.res.members[i]);
    }
    free(o->u.res.members);
    core->stats.resources--;
    obj_free(core, idx);
}

static void paging_queue_destroy(struct vkmt_core *core, uint32_t idx)
{
    obj_free(core, core->objs[idx].u.pq.sync);
    obj_free(core, idx);
}

/* Destroys @child, the first child of its device; returns the objects it took. */
static uint32_t device_child_destroy(struct vkmt_core *core, uint32_t child)
{
    const struct vkmt_obj *o = &core->objs[child];
    uint32_t group = o->type == OBJ_ALLOCATION ? o->u.alloc.group : NIL;

    if (o->type == OBJ_PAGING_QUEUE) {
        paging_queue_destroy(core, child);
        return 2;
    }
    if (o->type == OBJ_RESOURCE || group != NIL) {
        uint32_t res = o->type == OBJ_RESOURCE ? child : group; /* with all its members */
        uint32_t cost = 1 + core->objs[res].u.res.count;

        core_resource_destroy(core, res);
        return cost;
    }
    core_alloc_destroy(core, child);
    return 1;
}

/*
 * Destroys device @idx one child at a time while *@budget lasts, taking
 * VKMT_WORK_PER_OBJECT per object from it (a resource goes whole, so a step
 * may overshoot by one batch); the device itself goes last. NULL: all of it.
 * Returns true once the device is gone.
 */
static bool device_destroy_some(struct vkmt_core *core, uint32_t idx, uint32_t *budget)
{
    uint32_t child;

    while (!budget || *budget) {
        uint32_t cost = VKMT_WORK_PER_OBJECT;

        if ((child = core->objs[idx].u.dev.first_child) == NIL) {
            core->stats.devices--;
            obj_free(core, idx);
            return true;
        }
        cost *= device_child_destroy(core, child);
        if (budget) {
            *budget -= cost < *budget ? cost : *budget;
        }
    }
    return false;
}

void core_queue_objects_destroy(struct vkmt_core *core, uint32_t q)
{
    while (core->queues[q].first_device != NIL) {
        device_destroy_some(core, core->queues[q].first_device, NULL);
    }
}

/* The same in steps (device_destroy_some); true once @q owns nothing. */
bool core_queue_objects_destroy_some(struct vkmt_core *core, uint32_t q, uint32_t *budget)
{
    uint32_t dev;

    while (*budget && (dev = core->queues[q].first_device) != NIL) {
        device_destroy_some(core, dev, budget);
    }
    return core->queues[q].first_device == NIL;
}

/* ---- devices and paging queues ---- */

static uint32_t lookup_device(struct cmd *c, uint32_t handle)
{
    uint32_t idx = obj_lookup(c->core, handle, OBJ_DEVICE, c->queue);

    if (idx == NIL) {
        core_guest_error(c->core, "queue %u: 0x%x is not a device of this queue", c->queue, handle);
    }
    return idx;
}

uint32_t cmd_create_device(struct cmd *c)
{
    uint32_t idx;

    if (obj_reserve(c->core, 1) < 0) {
        return VKMT_ST_NO_MEMORY;
    }
    idx = obj_new(c->core, OBJ_DEVICE, c->queue, NIL);
    c->core->stats.devices++;
    c->value0 = obj_handle(c->core, idx);
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_destroy_device(struct cmd *c)
{
    uint32_t idx = lookup_device(c, c->sqe.handle);

    if (idx == NIL) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    /* A device with many allocations goes over several steps; its queue
     * runs nothing else meanwhile, and no other queue can name its objects. */
    return device_destroy_some(c->core, idx, &c->core->work_left) ? VKMT_ST_SUCCESS : CMD_RETRY;
}

uint32_t cmd_create_paging_queue(struct cmd *c)
{
    uint32_t dev = lookup_device(c, c->sqe.handle);
    int32_t prio = (int32_t)c->sqe.arg0;
    uint32_t pq;

    if (dev == NIL) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (prio < -1 || prio > 1) {
        core_guest_error(c->core, "paging queue priority %d outside -1..1", prio);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (obj_reserve(c->core, 2) < 0) {
        return VKMT_ST_NO_MEMORY;
    }
    pq = obj_new(c->core, OBJ_PAGING_QUEUE, c->queue, dev);
    c->core->objs[pq].u.pq.sync = obj_new(c->core, OBJ_SYNC, c->queue, pq);
    c->value0 = obj_handle(c->core, pq);
    c->value1 = obj_handle(c->core, c->core->objs[pq].u.pq.sync);
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_destroy_paging_queue(struct cmd *c)
{
    uint32_t pq = obj_lookup(c->core, c->sqe.handle, OBJ_PAGING_QUEUE, c->queue);

    if (pq == NIL) {
        core_guest_error(c->core, "0x%x is not a paging queue of this queue", c->sqe.handle);
        return VKMT_ST_INVALID_PARAMETER;
    }
    paging_queue_destroy(c->core, pq);
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_query_fence(struct cmd *c)
{
    uint32_t sync = obj_lookup(c->core, c->sqe.handle, OBJ_SYNC, c->queue);

    if (sync == NIL) {
        core_guest_error(c->core, "0x%x is not a sync object of this queue", c->sqe.handle);
        return VKMT_ST_INVALID_PARAMETER;
    }
    c->value0 = c->core->objs[c->core->objs[sync].parent].u.pq.fence;
    return VKMT_ST_SUCCESS;
}

/* ---- allocations ---- */

static uint32_t pages_of(const struct vkmt_alloc_desc *d)
{
    return (uint32_t)((d->size + VKMT_PAGE_SIZE - 1) / VKMT_PAGE_SIZE);
}

/* Free the aperture ranges @page[from..to) that a failed create took and
 * put the placement cursor back to @cursor, where it was before them: a
 * failed command changes no later placement. */
static void free_ranges(struct vkmt_core *core, const uint32_t *page,
                        const struct vkmt_alloc_desc *desc, uint32_t from, uint32_t to,
                        uint32_t cursor)
{
    for (uint32_t i = from; i < to; i++) {
        aperture_free(&core->ap, page[i], pages_of(&desc[i]));
    }
    core->ap.cursor = cursor;
}

uint32_t cmd_create_allocations(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    const struct vkmt_alloc_desc *desc;
    uint32_t *out;
    uint32_t dev = lookup_device(c, c->sqe.handle);
    uint32_t n = c->sqe.count;
    bool group = c->sqe.flags & VKMT_SQE_F_CREATE_RESOURCE;
    uint32_t *members = NULL;
    struct scrub scrub = { 0 };
    uint64_t need = 0;
    uint32_t res = NIL, cursor;
    enum room room;
    int err;

    if (dev == NIL || !(desc = cmd_payload(c, sizeof(*desc))) ||
        !(out = cmd_results(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!desc_valid(core, &desc[i])) {
            core_guest_error(core, "allocation %u: size %llu flags 0x%x dims 0x%x", i,
                             (unsigned long long)desc[i].size, desc[i].flags, desc[i].dims);
            return VKMT_ST_INVALID_PARAMETER;
        }
        need += (uint64_t)pages_of(&desc[i]) * VKMT_PAGE_SIZE;
    }
    if (!evict_can_fit(core, c->queue, need, 0)) {
        return VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    }
    if (obj_reserve(core, n + group) < 0 ||
        (group && !(members = malloc((size_t)n * sizeof(*members))))) {
        return VKMT_ST_NO_MEMORY;
    }
    /* Address space first: the steps that can still fail are undone here. */
    cursor = core->ap.cursor;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = aperture_alloc(&core->ap, pages_of(&desc[i]));
        if (out[i] == APERTURE_NONE) {
            free_ranges(core, out, desc, 0, i, cursor);
            free(members);
            return VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
        }
        scrub_add(core, &scrub, out[i], pages_of(&desc[i]));
    }
    err = scrub_end(core, &scrub);
    if (err < 0) {
        core_guest_error(core, "create: the backend cannot scrub the new ranges (%d)", err);
        free_ranges(core, out, desc, 0, n, cursor);
        free(members);
        return VKMT_ST_NO_MEMORY;
    }
    /*
     * Room before the backend commits, so that a GPU backend whose budget is
     * its memory can hold the new resources; after the address space, so
     * that a creation the aperture cannot place discards nothing. What it
     * discards is offered content, which the offer contract lets go at any
     * time: a command that then fails has still changed nothing its caller
     * can rely on. Stopped by the work bound, the creation gives its ranges
     * back and runs again; stopped by a discard that failed, it fails as a
     * creation that cannot fit.
     */
    room = evict_make_room(core, c->queue, need);
    if (room != ROOM_MADE) {
        free_ranges(core, out, desc, 0, n, cursor);
        free(members);
        return room == ROOM_LATER ? CMD_RETRY : VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY;
    }
    if (group) {
        res = obj_new(core, OBJ_RESOURCE, c->queue, dev);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = obj_new(core, OBJ_ALLOCATION, c->queue, dev);
        struct vkmt_obj *o = &core->objs[idx];

        o->shape = desc[i].flags
                       ? SHAPE_PACK(VKMT_ALLOC_FORMAT(desc[i].flags),
                                    VKMT_ALLOC_WIDTH(desc[i].dims), VKMT_ALLOC_HEIGHT(desc[i].dims))
                       : 0;
        o->u.alloc.group = res;
        o->u.alloc.page = out[i];
        o->u.alloc.npages = pages_of(&desc[i]);
        o->u.alloc.size = desc[i].size;
        o->u.alloc.rprio = VKMT_ALLOC_PRIO_NORMAL;
        o->u.alloc.rcount = 0;
        out[i] = idx;
        err = core_alloc_commit(core, idx);
        if (err < 0) {
            /* The GPU side cannot hold it now: this command fails and the
             * device stays healthy. Undone in reverse, so the handle table
             * and the aperture are exactly as before. */
            core_guest_error(core, "allocation %u: the backend cannot commit it now (%d)", i, err);
            for (uint32_t j = i + 1; j-- > 0;) {
                o = &core->objs[out[j]];
                if (j < i) {
                    core_alloc_uncommit(core, out[j]);
                }
                aperture_free(&core->ap, o->u.alloc.page, o->u.alloc.npages);
                obj_unnew(core, out[j]);
            }
            free_ranges(core, out, desc, i + 1, n, cursor);
            if (group) {
                obj_unnew(core, res);
            }
            free(members);
            return VKMT_ST_NO_MEMORY;
        }
    }
    if (group) {
        core->objs[res].u.res.members = members;
        core->objs[res].u.res.count = n;
        core->stats.resources++;
        c->value0 = obj_handle(core, res);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = out[i];

        if (members) {
            members[i] = idx;
        }
        out[i] = obj_handle(core, idx);
        alloc_set_state(core, idx, ALLOC_RESIDENT);
    }
    return VKMT_ST_SUCCESS;
}

static uint32_t lookup_alloc(struct cmd *c, uint32_t dev, uint32_t handle)
{
    uint32_t idx = obj_lookup(c->core, handle, OBJ_ALLOCATION, c->queue);

    if (idx == NIL || c->core->objs[idx].parent != dev) {
        core_guest_error(c->core, "0x%x is not an allocation of device 0x%x", handle,
                         c->sqe.handle);
        return NIL;
    }
    return idx;
}

uint32_t cmd_destroy_allocations(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t dev = lookup_device(c, c->sqe.handle);
    const uint32_t *h;
    uint32_t *idx = core->results;
    uint32_t n = c->sqe.count;
    uint32_t bad = 0;

    if (dev == NIL) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (c->sqe.arg0) {
        uint32_t res = obj_lookup(core, c->sqe.arg0, OBJ_RESOURCE, c->queue);

        if (res == NIL || core->objs[res].parent != dev || n || c->sqe.payload_off ||
            c->sqe.payload_len) {
            core_guest_error(core, "bad resource destroy 0x%x (count %u)", c->sqe.arg0, n);
            return VKMT_ST_INVALID_PARAMETER;
        }
        core_resource_destroy(core, res);
        return VKMT_ST_SUCCESS;
    }
    if (!(h = cmd_payload(c, sizeof(uint32_t)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < n && !bad; i++) {
        idx[i] = lookup_alloc(c, dev, h[i]);
        if (idx[i] == NIL || core->objs[idx[i]].u.alloc.group != NIL ||
            (core->objs[idx[i]].flags & OBJF_MARK)) {
            core_guest_error(core, "destroy element %u (0x%x): unknown, duplicate or in a resource",
                             i, h[i]);
            bad = i + 1;
            break;
        }
        core->objs[idx[i]].flags |= OBJF_MARK;
    }
    for (uint32_t i = 0; i < (bad ? bad - 1 : n); i++) {
        core->objs[idx[i]].flags &= (uint8_t)~OBJF_MARK;
    }
    if (bad) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < n; i++) {
        core_alloc_destroy(core, idx[i]);
    }
    return VKMT_ST_SUCCESS;
}

static uint32_t lock_target(struct cmd *c)
{
    uint32_t dev = lookup_device(c, c->sqe.handle);

    return dev == NIL ? NIL : lookup_alloc(c, dev, c->sqe.arg0);
}

uint32_t cmd_lock(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t idx = lock_target(c);
    struct vkmt_obj *o;

    if (idx == NIL) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    o = &core->objs[idx];
    if (o->state == ALLOC_DEMOTED) {
        /* The CPU view is the aperture: a lock pages the content back in
         * first, making room as a creation does. */
        enum room room = evict_can_fit(core, c->queue, alloc_bytes(o), 0)
                             ? evict_make_room(core, c->queue, alloc_bytes(o))
                             : ROOM_REFUSED;

        if (room != ROOM_MADE) {
            return room == ROOM_LATER ? CMD_RETRY : VKMT_ST_NO_MEMORY;
        }
        promote(core, idx);
    }
    if (o->state != ALLOC_RESIDENT || o->u.alloc.locks == UINT32_MAX) {
        core_guest_error(core, "lock of allocation 0x%x that is %s", c->sqe.arg0,
                         o->state != ALLOC_RESIDENT ? vkmt_alloc_state_name(o->state)
                                                    : "locked 2^32 - 1 times");
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (core->backend->ops->lock &&
        core->backend->ops->lock(core->backend, idx, alloc_off(o), alloc_bytes(o)) < 0) {
        return VKMT_ST_NO_MEMORY;
    }
    o->u.alloc.locks++;
    c->value0 = alloc_off(o);
    c->value1 = o->u.alloc.size; /* as created; the range is page-rounded */
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_unlock(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    uint32_t idx = lock_target(c);
    struct vkmt_obj *o;

    if (idx == NIL) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    o = &core->objs[idx];
    if (o->u.alloc.locks == 0) {
        core_guest_error(core, "unlock of allocation 0x%x that is not locked", c->sqe.arg0);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (core->backend->ops->unlock &&
        core->backend->ops->unlock(core->backend, idx, alloc_off(o), alloc_bytes(o)) < 0) {
        return VKMT_ST_NO_MEMORY;
    }
    o->u.alloc.locks--;
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_query_memory(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    const struct vkmt_queue *vq = &core->queues[c->queue];
    bool residency = core->driver_features & VKMT_F_RESIDENCY;
    uint32_t g = c->sqe.arg0;

    if (g > VKMT_SEGMENT_NON_LOCAL || c->sqe.arg1 > VKMT_MEMQ_RESERVATION ||
        (c->sqe.arg1 && !residency)) {
        core_guest_error(core, "query memory: segment group %u, what %u", g, c->sqe.arg1);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (c->sqe.arg1 == VKMT_MEMQ_RESERVATION) {
        c->value0 = vq->reservation[g];
        c->value1 = residency_available(core, c->queue, g);
    } else if (g == VKMT_SEGMENT_LOCAL) {
        c->value0 = core_queue_budget(core, c->queue);
        c->value1 = vq->committed;
    } else if (residency) {
        /* Before 1.2 the device reported no system-memory segment. */
        c->value0 = (uint64_t)core->nl.npages * VKMT_PAGE_SIZE;
        c->value1 = vq->demoted;
    }
    return VKMT_ST_SUCCESS;
}

/*
 * A guest's trim, in steps: discards until the bytes asked for (0: all) are
 * freed, keeping the count across retries, then starts a scrub of the
 * unheld pages (the hard bound on host memory is the aperture,
 * docs/DEVICE.md), which goes on in later steps.
 */
static uint32_t guest_trim(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    struct vkmt_queue *vq = &core->queues[c->queue];
    uint64_t want = c->sqe.arg64 ? c->sqe.arg64 : UINT64_MAX;

    if (!vq->resumed) {
        core_queue_event(core, VKMT_EV_TRIM, c->queue, want);
    }
    if (vq->trim_freed < want) {
        vq->trim_freed += evict_bytes(core, QUEUE_ANY, want - vq->trim_freed, &core->work_left);
    }
    /* A failed discard ends the trim with what it freed so far. */
    if (vq->trim_freed < want && core->offered_bytes && !core->work_left && !core->evict_stuck) {
        return CMD_RETRY;
    }
    c->value0 = vq->trim_freed;
    core_trim_done(core, vq->trim_freed);
    core->scrub_next = 0;
    evict_scrub_free(core, &core->work_left);
    return VKMT_ST_SUCCESS;
}

uint32_t cmd_trim(struct cmd *c)
{
    if (!(c->core->driver_features & VKMT_F_GUEST_TRIM)) {
        core_guest_error(c->core, "TRIM without the GUEST_TRIM feature");
        return VKMT_ST_NOT_SUPPORTED;
    }
    return guest_trim(c);
}

uint32_t cmd_query_stats(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    struct vkmt_wire_stats w = { 0 };
    struct vkmt_stats st;
    uint32_t claimed = 0;

    if (c->sqe.result_len != sizeof(w) || c->sqe.result_off % 8 ||
        c->sqe.result_off > VKMT_STAGING_SIZE - sizeof(w)) {
        core_guest_error(core, "QUERY_STATS: result area [0x%x +%u] is not one stats block",
                         c->sqe.result_off, c->sqe.result_len);
        return VKMT_ST_INVALID_PARAMETER;
    }
    vkmt_core_get_stats(core, &st);
    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        claimed += core_queue_claimed(core, q);
    }
    w.allocations = st.allocations;
    w.committed_bytes = st.committed_bytes;
    w.offered_bytes = st.offered_bytes;
    w.budget_bytes = st.budget_bytes;
    w.offers = st.offers;
    w.discards = st.discards;
    w.discarded_bytes = st.discarded_bytes;
    w.reclaim_ok = st.reclaim_ok;
    w.reclaim_discarded = st.reclaim_discarded;
    w.reclaim_not_committed = st.reclaim_not_committed;
    w.trims = st.trims;
    w.commands = st.commands;
    w.command_errors = st.command_errors;
    w.queues_claimed = claimed;
    memcpy(core->results, &w, sizeof(w));
    c->result_bytes = sizeof(w);
    return VKMT_ST_SUCCESS;
}

/* One queue's figures as QUERY_QUEUE_STATS reports them. */
static void wire_queue_stats(const struct vkmt_core *core, uint32_t q, uint32_t caller,
                             struct vkmt_wire_queue_stats *w)
{
    struct vkmt_queue_stats st;

    vkmt_core_get_queue_stats(core, q, &st);
    w->queue = q;
    w->flags = q == caller ? VKMT_QSTATS_CALLER : 0;
    w->budget = st.budget;
    w->budget_local = st.budget_local;
    w->committed = st.committed;
    w->resident = st.resident;
    w->offered = st.offered;
    w->demoted = st.demoted;
    w->discarded = st.discarded;
}

/*
 * QUERY_QUEUE_STATS: arg0 = VKMT_QSTATS_ALL or 0 (the caller's queue only,
 * count 1); count records of result area, 8-aligned. value0 = records
 * written (claimed queues in index order, as many as fit), value1 = the
 * records there were. Which processes may see other queues' figures is the
 * guest's to decide (the kernel driver asks for CAP_SYS_ADMIN).
 */
uint32_t cmd_query_queue_stats(struct cmd *c)
{
    struct vkmt_core *core = c->core;
    struct vkmt_wire_queue_stats *out;
    uint32_t n = 0, total = 0;

    if (!(core->driver_features & VKMT_F_QUEUE_STATS)) {
        core_guest_error(core, "QUERY_QUEUE_STATS without the QUEUE_STATS feature");
        return VKMT_ST_NOT_SUPPORTED;
    }
    if (c->sqe.arg0 & ~VKMT_QSTATS_ALL || c->sqe.count == 0 || c->sqe.count > VKMT_MAX_QUEUES ||
        (!c->sqe.arg0 && c->sqe.count != 1) || c->sqe.result_off % 8) {
        core_guest_error(core, "QUERY_QUEUE_STATS: arg0 0x%x, %u records at 0x%x", c->sqe.arg0,
                         c->sqe.count, c->sqe.result_off);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if (!(out = (struct vkmt_wire_queue_stats *)cmd_results(c, sizeof(*out)))) {
        return VKMT_ST_INVALID_PARAMETER;
    }
    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        if ((c->sqe.arg0 || q == c->queue) && core_queue_claimed(core, q)) {
            if (n < c->sqe.count) {
                wire_queue_stats(core, q, c->queue, &out[n++]);
            }
            total++;
        }
    }
    memset(out + n, 0, (size_t)(c->sqe.count - n) * sizeof(*out));
    c->value0 = n;
    c->value1 = total;
    return VKMT_ST_SUCCESS;
}
