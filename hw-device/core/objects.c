/* SPDX-License-Identifier: MIT */
/*
 * The handle table. A handle is type:3 | generation:9 | index:20 and never 0.
 * A lookup succeeds only when type, generation, liveness and owning queue all
 * match, so stale handles (slot reused: generation moved on), forged values
 * and handles of another queue (another guest process) are all rejected.
 * Freed slots are reused in FIFO order, and a slot whose generations are all
 * used up is retired rather than wrapped, so within one device reset a stale
 * handle never becomes valid again (PROTOCOL.md 7). Reset returns retired
 * slots: it ends every handle anyway.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"

#define TABLE_MIN 64u /* grows by doubling */

int obj_table_init(struct vkmt_core *core)
{
    core->cap = TABLE_MIN;
    core->objs = calloc(core->cap, sizeof(*core->objs));
    if (!core->objs) {
        return -ENOMEM;
    }
    core->nobjs = 1; /* index 0 is reserved so that no handle is 0 */
    core->free_list.head = core->free_list.tail = NIL;
    core->live_objs = 0;
    core->retired_objs = 0;
    return 0;
}

void obj_table_fini(struct vkmt_core *core)
{
    free(core->objs);
    core->objs = NULL;
}

static int grow(struct vkmt_core *core, uint32_t min_cap)
{
    uint32_t cap = core->cap;
    struct vkmt_obj *objs;

    /* Retired slots keep their index, so the table may hold more slots than
     * max_objects; the handle format bounds it. */
    if (min_cap > OBJ_INDEX_MAX + 1) {
        return -ENOSPC;
    }
    while (cap < min_cap) {
        cap *= 2;
    }
    if (cap > OBJ_INDEX_MAX + 1) {
        cap = OBJ_INDEX_MAX + 1;
    }
    objs = realloc(core->objs, (size_t)cap * sizeof(*objs));
    if (!objs) {
        return -ENOMEM;
    }
    memset(objs + core->cap, 0, (size_t)(cap - core->cap) * sizeof(*objs));
    core->objs = objs;
    core->cap = cap;
    return 0;
}

/* The list @idx belongs on: its queue's devices, or its device's children. */
static uint32_t *obj_owner_list(struct vkmt_core *core, uint32_t idx)
{
    const struct vkmt_obj *o = &core->objs[idx];

    if (o->type == OBJ_DEVICE) {
        return &core->queues[o->queue].first_device;
    }
    return &core->objs[o->parent].u.dev.first_child;
}

static void obj_link(struct vkmt_core *core, uint32_t *head, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];

    o->sib_prev = NIL;
    o->sib_next = *head;
    if (*head != NIL) {
        core->objs[*head].sib_prev = idx;
    }
    *head = idx;
}

static void obj_unlink(struct vkmt_core *core, uint32_t *head, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];

    if (o->sib_prev != NIL) {
        core->objs[o->sib_prev].sib_next = o->sib_next;
    } else {
        *head = o->sib_next;
    }
    if (o->sib_next != NIL) {
        core->objs[o->sib_next].sib_prev = o->sib_prev;
    }
}

/*
 * Make sure @n more objects can be created without failing, so that a batch
 * can be checked before anything changes. Returns 0, or -ENOSPC when the
 * table limit would be passed, or -ENOMEM.
 */
int obj_reserve(struct vkmt_core *core, uint32_t n)
{
    /* Slots below nobjs that are neither live nor retired sit on the free list. */
    uint32_t freed = core->nobjs - 1 - core->live_objs - core->retired_objs;

    if (n > core->max_objects - core->live_objs) {
        return -ENOSPC;
    }
    if (freed + (core->cap - core->nobjs) >= n) {
        return 0;
    }
    return grow(core, core->nobjs + (n - freed));
}

/* Returns the new slot's index, or NIL when the table is full. */
uint32_t obj_new(struct vkmt_core *core, uint8_t type, uint32_t queue, uint32_t parent)
{
    uint32_t idx;
    struct vkmt_obj *o;
    uint16_t gen;

    if (core->live_objs >= core->max_objects) {
        return NIL;
    }
    if (core->free_list.head != NIL) {
        idx = core->free_list.head;
        core->free_list.head = core->objs[idx].next;
        if (core->free_list.head == NIL) {
            core->free_list.tail = NIL;
        }
    } else {
        if (core->nobjs == core->cap && grow(core, core->cap + 1) < 0) {
            return NIL;
        }
        idx = core->nobjs++;
    }
    o = &core->objs[idx];
    gen = o->gen;
    memset(o, 0, sizeof(*o));
    o->gen = gen;
    o->type = type;
    o->queue = (uint16_t)queue;
    o->parent = parent;
    if (type != OBJ_SYNC) { /* a sync object lives and dies with its paging queue */
        obj_link(core, obj_owner_list(core, idx), idx);
    }
    core->live_objs++;
    return idx;
}

void free_list_append(struct vkmt_core *core, uint32_t idx)
{
    core->objs[idx].next = NIL;
    if (core->free_list.tail != NIL) {
        core->objs[core->free_list.tail].next = idx;
    } else {
        core->free_list.head = idx;
    }
    core->free_list.tail = idx;
}

void obj_free(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];

    if (o->type != OBJ_SYNC) {
        obj_unlink(core, obj_owner_list(core, idx), idx);
    }
    o->type = OBJ_FREE;
    core->live_objs--;
    if (o->gen == HANDLE_GEN_MASK) {
        o->gen = GEN_RETIRED;
        core->retired_objs++;
        return;
    }
    o->gen++;
    free_list_append(core, idx);
}

/*
 * Take back the object obj_new() just returned, for a command that fails
 * after creating it: unlike obj_free() the slot keeps its generation and goes
 * back where obj_new() took it from, so that undoing a command's creations in
 * reverse order leaves the table exactly as it was.
 */
void obj_unnew(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];

    if (o->type != OBJ_SYNC) {
        obj_unlink(core, obj_owner_list(core, idx), idx);
    }
    o->type = OBJ_FREE;
    core->live_objs--;
    if (idx == core->nobjs - 1 && core->free_list.head == NIL) {
        core->nobjs--; /* it came from the unused end */
        return;
    }
    o->next = core->free_list.head;
    core->free_list.head = idx;
    if (core->free_list.tail == NIL) {
        core->free_list.tail = idx;
    }
}

void obj_unretire_all(struct vkmt_core *core)
{
    for (uint32_t idx = 1; core->retired_objs && idx < core->nobjs; idx++) {
        if (core->objs[idx].gen == GEN_RETIRED) {
            core->objs[idx].gen = 0;
            free_list_append(core, idx);
            core->retired_objs--;
        }
    }
}

uint32_t obj_handle(const struct vkmt_core *core, uint32_t idx)
{
    const struct vkmt_obj *o = &core->objs[idx];

    return ((uint32_t)o->type << HANDLE_TYPE_SHIFT) | ((uint32_t)o->gen << HANDLE_INDEX_BITS) | idx;
}

/* Returns the slot index, or NIL if @handle is not a live @type of @queue. */
uint32_t obj_lookup(const struct vkmt_core *core, uint32_t handle, uint8_t type, uint32_t queue)
{
    uint32_t idx = handle & HANDLE_INDEX_MASK;
    const struct vkmt_obj *o;

    if (idx == NIL || idx >= core->nobjs || handle >> HANDLE_TYPE_SHIFT != type) {
        return NIL;
    }
    o = &core->objs[idx];
    if (o->type != type || o->queue != queue ||
        o->gen != ((handle >> HANDLE_INDEX_BITS) & HANDLE_GEN_MASK)) {
        return NIL;
    }
    return idx;
}
