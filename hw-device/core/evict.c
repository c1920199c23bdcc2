/* SPDX-License-Identifier: MIT */
/*
 * Budget and eviction. Offered allocations that still hold content sit in one
 * FIFO per eviction class; pressure discards from the head of LOW, then
 * NORMAL (AUTO is treated as NORMAL), then HIGH, so within a class the oldest
 * offer goes first. Only then does it demote resident content to the
 * non-local segment (residency.c). Every discard hands the pages back to the host through
 * the backend before the accounting says they are free.
 */
#include "core_priv.h"

unsigned evict_class(uint32_t prio)
{
    switch (prio) {
    case VKMT_PRIO_LOW:
        return 0;
    case VKMT_PRIO_HIGH:
        return 2;
    default:
        return 1;
    }
}

void evict_offer(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];
    struct fifo *f = &core->offered[evict_class(o->prio)];

    o->prev = f->tail;
    o->next = NIL;
    if (f->tail != NIL) {
        core->objs[f->tail].next = idx;
    } else {
        f->head = idx;
    }
    f->tail = idx;
    core->offered_bytes += alloc_bytes(o);
    core->stats.offered_bytes_by_prio[vkmt_prio_index(o->prio)] += alloc_bytes(o);
}

void evict_unlink(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];
    struct fifo *f = &core->offered[evict_class(o->prio)];

    if (o->prev != NIL) {
        core->objs[o->prev].next = o->next;
    } else {
        f->head = o->next;
    }
    if (o->next != NIL) {
        core->objs[o->next].prev = o->prev;
    } else {
        f->tail = o->prev;
    }
    o->prev = o->next = NIL;
    core->offered_bytes -= alloc_bytes(o);
    core->stats.offered_bytes_by_prio[vkmt_prio_index(o->prio)] -= alloc_bytes(o);
}

/*
 * Discard offered allocation @idx. False when an injected fault fails it:
 * nothing happened, the allocation stays offered with its content and its
 * place in the eviction order.
 */
static bool discard(struct vkmt_core *core, uint32_t idx)
{
    struct vkmt_obj *o = &core->objs[idx];
    int err;

    if (fault_discard(core, idx)) {
        return false;
    }
    err = core->backend->ops->discard(core->backend, idx, alloc_off(o), alloc_bytes(o));
    if (err < 0) {
        /* Content may survive, but the guest must not rely on it either way. */
        core_backend_failed(core, "discard", err);
    }
    alloc_set_state(core, idx, ALLOC_DISCARDED);
    if (o->flags & OBJF_DECOMMIT) {
        alloc_set_state(core, idx, ALLOC_DECOMMITTED);
    }
    return true;
}

/* Takes @cost from the work *@work has left; NULL is the host's unbounded call. */
static void take_work(uint32_t *work, uint32_t cost)
{
    if (work) {
        *work -= cost < *work ? cost : *work;
    }
}

/*
 * Discards offered content, oldest and least important first, until @bytes
 * are freed, nothing is left to discard, *@work runs out
 * (VKMT_WORK_PER_OBJECT a discard) or a discard fails (injected; it sets
 * evict_stuck). Offered allocations marked OBJF_MARK belong to the batch
 * being applied (a reclaim's own) and are passed over.
 */
uint64_t evict_bytes(struct vkmt_core *core, uint64_t bytes, uint32_t *work)
{
    uint64_t freed = 0;

    for (unsigned c = 0; c < EVICT_CLASSES && freed < bytes && !core->evict_stuck; c++) {
        uint32_t idx = core->offered[c].head;

        while (freed < bytes && idx != NIL && (!work || *work)) {
            uint32_t next = core->objs[idx].next;

            if (!(core->objs[idx].flags & OBJF_MARK)) {
                uint64_t size = alloc_bytes(&core->objs[idx]);

                take_work(work, VKMT_WORK_PER_OBJECT);
                if (!discard(core, idx)) {
                    core->evict_stuck = true;
                    break;
                }
                freed += size;
            }
            idx = next;
        }
    }
    return freed;
}

/*
 * Scrub aperture pages no allocation holds, from core->scrub_next on, while
 * *@work lasts (VKMT_WORK_PER_OBJECT a backend call, one per run of such
 * pages): free space and discarded ranges, where the guest's stray stores
 * through the BAR hold host memory the budget never counted. Returns true
 * once the pass reached the end of the aperture.
 */
bool evict_scrub_free(struct vkmt_core *core, uint32_t *work)
{
    uint32_t page = core->scrub_next, n;

    while ((!work || *work) &&
           (page = aperture_next_unheld(&core->ap, page, &n)) < core->ap.npages) {
        int err = core_scrub(core, page, n);

        if (err < 0) {
            core_backend_failed(core, "scrub", err);
            page = core->ap.npages;
            break;
        }
        page += n;
        take_work(work, VKMT_WORK_PER_OBJECT);
    }
    core->scrub_next = page < core->ap.npages ? page : 0;
    core->scrubbing = page < core->ap.npages;
    return !core->scrubbing;
}

/*
 * Whether @need more committed bytes fit the budget once every offered
 * allocation outside the batch being validated is discarded and, with
 * demotion, every resident unlocked allocation outside it (OBJF_MARK) is
 * demoted into the non-local segment's free pages. @pinned is the batch's
 * own offered bytes, which cannot be discarded to make room for itself.
 * Pure: changes nothing. The table is scanned only when discards alone
 * cannot suffice. Exact but for non-local fragmentation, which can still
 * end a true answer in ROOM_REFUSED. Sizes stay far below 2^63.
 */
bool evict_can_fit(const struct vkmt_core *core, uint64_t need, uint64_t pinned)
{
    uint64_t room = core->budget + (core->offered_bytes - pinned);

    return core->committed + need <= room ||
           (demotion_enabled(core) && core->committed + need <= room + demotable_bytes(core));
}

/*
 * Discard offered content, then demote resident content, until @need more
 * bytes fit (check can_fit first), within the work left. Short of room,
 * the command has changed nothing but offered content, which the offer
 * contract lets go at any time, and where allocations' content lives,
 * which demotion keeps: it retries from a fresh copy in a later step when
 * the bound stopped it, and fails when a discard failed or nothing more
 * could be demoted.
 */
enum room evict_make_room(struct vkmt_core *core, uint64_t need)
{
    if (core->committed + need > core->budget) {
        evict_bytes(core, core->committed + need - core->budget, &core->work_left);
    }
    if (core->committed + need > core->budget && !core->evict_stuck && core->work_left) {
        demote_bytes(core, core->committed + need - core->budget, &core->work_left);
        if (core->committed + need > core->budget && core->work_left) {
            return ROOM_REFUSED; /* nothing left that could be demoted */
        }
    }
    if (core->committed + need <= core->budget) {
        return ROOM_MADE;
    }
    return core->evict_stuck ? ROOM_REFUSED : ROOM_LATER;
}

/* Over the budget with content left to discard or demote, and no failed
 * discard to wait out: evict_enforce_budget's work. */
bool evict_over_budget(const struct vkmt_core *core)
{
    return core->committed > core->budget && (core->offered_bytes || core->demote_pending) &&
           !core->evict_stuck;
}

void evict_enforce_budget(struct vkmt_core *core, uint32_t *work)
{
    if (core->committed > core->budget) {
        evict_bytes(core, core->committed - core->budget, work);
    }
    if (core->demote_pending && core->committed > core->budget && !core->evict_stuck &&
        (!work || *work)) {
        demote_bytes(core, core->committed - core->budget, work);
    }
    /* Done when it fits, or when a pass with work to spare found no more. */
    if (core->committed <= core->budget || !work || *work) {
        core->demote_pending = false;
    }
}
