/* SPDX-License-Identifier: MIT */
/*
 * Budget and eviction. Offered allocations that still hold content sit in one
 * FIFO per eviction class; pressure discards from the head of LOW, then
 * NORMAL (AUTO is treated as NORMAL), then HIGH, so within a class the oldest
 * offer goes first. Only then does it demote resident content to the
 * non-local segment (residency.c). Every discard hands the pages back to the host through
 * the backend before the accounting says they are free. A queue with a
 * budget of its own below the device's meets it the same way, from its own
 * allocations only, before the device's budget is considered.
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
    core->queues[o->queue].offered += alloc_bytes(o);
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
    core->queues[o->queue].offered -= alloc_bytes(o);
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
 * Discards offered content of queue @q (QUEUE_ANY: of every queue), oldest
 * and least important first, until @bytes are freed, nothing is left to
 * discard, *@work runs out (VKMT_WORK_PER_OBJECT a discard) or a discard
 * fails (injected; it sets evict_stuck). Offered allocations marked
 * OBJF_MARK belong to the batch being applied (a reclaim's own) and are
 * passed over.
 */
uint64_t evict_bytes(struct vkmt_core *core, uint32_t q, uint64_t bytes, uint32_t *work)
{
    uint64_t freed = 0;

    for (unsigned c = 0; c < EVICT_CLASSES && freed < bytes && !core->evict_stuck; c++) {
        uint32_t idx = core->offered[c].head;

        while (freed < bytes && idx != NIL && (!work || *work)) {
            uint32_t next = core->objs[idx].next;

            if (!(core->objs[idx].flags & OBJF_MARK) &&
                (q == QUEUE_ANY || core->objs[idx].queue == q)) {
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
 * Bytes that @need more committed bytes by queue @q would hold beyond a
 * budget: the device's, or the queue's own, whichever is exceeded more.
 */
uint64_t evict_over_by(const struct vkmt_core *core, uint32_t q, uint64_t need)
{
    uint64_t dev = core->committed + need, own = core->queues[q].committed + need;
    uint64_t qb = core_queue_budget(core, q);

    dev = dev > core->budget ? dev - core->budget : 0;
    own = own > qb ? own - qb : 0;
    return dev > own ? dev : own;
}

/* Whether @need more bytes fit @budget over @used once @offered bytes are
 * discarded and, with demotion, queue @q's demotable content demoted. */
static bool fits(const struct vkmt_core *core, uint32_t q, uint64_t used, uint64_t budget,
                 uint64_t offered, uint64_t need)
{
    uint64_t room = budget + offered;

    return used + need <= room ||
           (demotion_enabled(core) && used + need <= room + demotable_bytes(core, q));
}

/*
 * Whether @need more committed bytes by queue @q fit the device's budget
 * once every offered allocation outside the batch being validated is
 * discarded and, with demotion, every resident unlocked allocation outside
 * it (OBJF_MARK) is demoted into the non-local segment's free pages; and,
 * under a budget of the queue's own, the same with the queue's allocations
 * only. @pinned is the batch's own offered bytes (all of queue @q), which
 * cannot be discarded to make room for itself. Pure: changes nothing. The
 * table is scanned only when discards alone cannot suffice. Exact but for
 * non-local fragmentation, which can still end a true answer in
 * ROOM_REFUSED. Sizes stay far below 2^63.
 */
bool evict_can_fit(const struct vkmt_core *core, uint32_t q, uint64_t need, uint64_t pinned)
{
    const struct vkmt_queue *vq = &core->queues[q];
    uint64_t own = core_queue_own_budget(core, q);

    return fits(core, QUEUE_ANY, core->committed, core->budget, core->offered_bytes - pinned,
                need) &&
           (!own || fits(core, q, vq->committed, own, vq->offered - pinned, need));
}

/* evict_make_room() against one budget: *@used (the device's or queue @q's
 * committed bytes, which discards and demotions lower) under @budget. */
static enum room make_room(struct vkmt_core *core, uint32_t q, const uint64_t *used,
                           uint64_t budget, uint64_t need)
{
    if (*used + need > budget) {
        evict_bytes(core, q, *used + need - budget, &core->work_left);
    }
    if (*used + need > budget && !core->evict_stuck && core->work_left) {
        demote_bytes(core, q, *used + need - budget, &core->work_left);
        if (*used + need > budget && core->work_left) {
            return ROOM_REFUSED; /* nothing left that could be demoted */
        }
    }
    if (*used + need <= budget) {
        return ROOM_MADE;
    }
    return core->evict_stuck ? ROOM_REFUSED : ROOM_LATER;
}

/*
 * Discard offered content, then demote resident content, until @need more
 * bytes by queue @q fit (check can_fit first), within the work left: under
 * the queue's own budget first, from its own allocations only, then under
 * the device's, from every queue's. Short of room, the command has changed
 * nothing but offered content, which the offer contract lets go at any
 * time, and where allocations' content lives, which demotion keeps: it
 * retries from a fresh copy in a later step when the bound stopped it, and
 * fails when a discard failed or nothing more could be demoted.
 */
enum room evict_make_room(struct vkmt_core *core, uint32_t q, uint64_t need)
{
    uint64_t own = core_queue_own_budget(core, q);
    enum room room = own ? make_room(core, q, &core->queues[q].committed, own, need) : ROOM_MADE;

    return room == ROOM_MADE ? make_room(core, QUEUE_ANY, &core->committed, core->budget, need)
                             : room;
}

/* Queue @q over a budget of its own with offered content left to discard. */
static bool queue_over_own(const struct vkmt_core *core, uint32_t q)
{
    uint64_t own = core_queue_own_budget(core, q);

    return own && core->queues[q].committed > own && core->queues[q].offered;
}

/* Over the budget (the device's, or a queue's own) with content left to
 * discard or demote, and no failed discard to wait out:
 * evict_enforce_budget's work. */
bool evict_over_budget(const struct vkmt_core *core)
{
    if (core->evict_stuck) {
        return false;
    }
    if (core->committed > core->budget && (core->offered_bytes || core->demote_pending)) {
        return true;
    }
    for (uint64_t rest = core->budgeted; rest; rest &= rest - 1) {
        if (queue_over_own(core, (uint32_t)__builtin_ctzll(rest))) {
            return true;
        }
    }
    return false;
}

void evict_enforce_budget(struct vkmt_core *core, uint32_t *work)
{
    /* Queues over their own budgets discard their own offers first (their
     * demotions were done when the host set the budget). */
    for (uint64_t rest = core->budgeted; rest && (!work || *work); rest &= rest - 1) {
        uint32_t q = (uint32_t)__builtin_ctzll(rest);

        if (queue_over_own(core, q)) {
            evict_bytes(core, q, core_queue_over_budget(core, q), work);
        }
    }
    if (core->committed > core->budget) {
        evict_bytes(core, QUEUE_ANY, core->committed - core->budget, work);
    }
    if (core->demote_pending && core->committed > core->budget && !core->evict_stuck &&
        (!work || *work)) {
        demote_bytes(core, QUEUE_ANY, core->committed - core->budget, work);
    }
    /* Done when it fits, or when a pass with work to spare found no more. */
    if (core->committed <= core->budget || !work || *work) {
        core->demote_pending = false;
    }
}
