/* SPDX-License-Identifier: MIT */
/*
 * The allocation state machine of PROTOCOL.md section 8, kept in one place:
 * every change of an allocation's state goes through alloc_move() (or
 * alloc_set_state(), which reads the state it moves from), which keeps in
 * step what the state implies (the offered FIFO and its bytes, the
 * committed, offered, demoted and discarded bytes of the device and of the
 * queue, which aperture pages are held), the statistics and the event of
 * the transition. A new state is a
 * new row of the table below and its transitions' cases. Included by
 * core_priv.h and always inline, so that each call site compiles to just
 * the bookkeeping of its move: as an out-of-line call it made batch
 * commands 1.3x slower per element.
 */
#ifndef VKMT_ALLOC_STATE_H
#define VKMT_ALLOC_STATE_H

/* What each state implies, for what alloc_set_state() keeps in step. */
static const struct alloc_state_info {
    bool committed; /* counts against the budget (committed bytes) */
    bool held;      /* holds its aperture pages: a trim's scrub leaves them */
    bool ranged;    /* owns an aperture range */
    bool offered;   /* on an eviction FIFO */
    bool demoted;   /* holds a non-local range with its content */
} state_info[VKMT_ALLOC_STATES] = {
    [ALLOC_NONE] = { false, false, false, false, false },
    [ALLOC_RESIDENT] = { true, true, true, false, false },
    [ALLOC_OFFERED] = { true, true, true, true, false },
    [ALLOC_DISCARDED] = { false, false, true, false, false },
    [ALLOC_DECOMMITTED] = { false, false, false, false, false },
    /* Keeps its aperture range, so a promotion never needs address space. */
    [ALLOC_DEMOTED] = { false, false, true, false, true },
};

/*
 * Move allocation @idx from state @from, which it is in, to state @to. A
 * range (aperture or non-local, with its content copied there) is the
 * caller's to take before a state that owns one (taking it may fail, and
 * commands fail whole); this function gives it back when the allocation
 * leaves such states, so content leaving the non-local segment is copied
 * out by the caller first. A destroy (to ALLOC_NONE) leaves the slot
 * to the caller. The offer in effect (o->prio, OBJF_DECOMMIT) is set before
 * a move to ALLOC_OFFERED. A caller that knows @from as a constant (an
 * offer moves only resident allocations) gets just that move's bookkeeping.
 */
static inline __attribute__((always_inline)) void alloc_move(struct vkmt_core *core, uint32_t idx,
                                                             uint8_t from, uint8_t to)
{
    struct vkmt_obj *o = &core->objs[idx];
    uint64_t bytes = alloc_bytes(o);
    unsigned prio = vkmt_prio_index(o->prio);

    if (state_info[from].offered && !state_info[to].offered) {
        evict_unlink(core, idx);
    } else if (!state_info[from].offered && state_info[to].offered) {
        evict_offer(core, idx);
    }
    if (state_info[from].committed != state_info[to].committed) {
        if (state_info[to].committed) {
            core->committed += bytes;
            core->queues[o->queue].committed += bytes;
        } else {
            core->committed -= bytes;
            core->queues[o->queue].committed -= bytes;
        }
    }
    if (state_info[from].held != state_info[to].held) {
        aperture_hold(&core->ap, o->u.alloc.page, o->u.alloc.npages, state_info[to].held);
    }
    if (state_info[from].ranged && !state_info[to].ranged) {
        aperture_free(&core->ap, o->u.alloc.page, o->u.alloc.npages);
    }
    if (state_info[from].demoted != state_info[to].demoted) {
        if (state_info[to].demoted) {
            core->demoted_bytes += bytes;
            core->queues[o->queue].demoted += bytes;
        } else {
            core->demoted_bytes -= bytes;
            core->queues[o->queue].demoted -= bytes;
            nonlocal_free(core, o->u.alloc.nl_page, o->u.alloc.npages);
        }
    }
    o->state = to;

    if (from == ALLOC_NONE && to == ALLOC_RESIDENT) {
        core->stats.allocations++;
        core_event(core, VKMT_EV_CREATE, idx, 0);
    } else if (to == ALLOC_OFFERED) {
        core->stats.offers++;
        core->stats.offered_bytes_total_by_prio[prio] += bytes;
        core_event(core, VKMT_EV_OFFER, idx, 0);
    } else if (to == ALLOC_DISCARDED) {
        core->stats.discards++;
        core->stats.discarded_bytes += bytes;
        core->stats.discarded_bytes_by_prio[prio] += bytes;
        core->queues[o->queue].discarded += bytes;
        core_event(core, VKMT_EV_DISCARD, idx, 0);
    } else if (to == ALLOC_DECOMMITTED) {
        core->stats.decommits++;
        core_event(core, VKMT_EV_DECOMMIT, idx, 0);
    } else if (to == ALLOC_DEMOTED) {
        core->stats.demotions++;
        core_event(core, VKMT_EV_DEMOTE, idx, 0);
    } else if (from == ALLOC_DEMOTED && to == ALLOC_RESIDENT) {
        core->stats.promotions++;
        core_event(core, VKMT_EV_PROMOTE, idx, 0);
    } else if (to == ALLOC_NONE) {
        core->stats.allocations--;
        core_event(core, VKMT_EV_DESTROY, idx, 0);
    }
}

/* Move allocation @idx to state @to, from whatever state it is in. */
static inline __attribute__((always_inline)) void alloc_set_state(struct vkmt_core *core,
                                                                  uint32_t idx, uint8_t to)
{
    alloc_move(core, idx, core->objs[idx].state, to);
}

/*
 * A reclaim's outcome for allocation @idx: its result counted (overall and
 * by the priority of the offer in effect) and reported, and the state it
 * implies: RESIDENT unless the allocation stays decommitted. The range of
 * a recommitted one was taken, scrubbed and committed by the caller.
 */
static inline void alloc_reclaimed(struct vkmt_core *core, uint32_t idx, uint32_t result)
{
    struct vkmt_obj *o = &core->objs[idx];

    if (result != VKMT_RECLAIM_NOT_COMMITTED && o->state != ALLOC_RESIDENT) {
        alloc_set_state(core, idx, ALLOC_RESIDENT);
    }
    if (result == VKMT_RECLAIM_DISCARDED) {
        core->stats.reclaim_discarded++;
    } else if (result == VKMT_RECLAIM_NOT_COMMITTED) {
        core->stats.reclaim_not_committed++;
    } else {
        core->stats.reclaim_ok++;
    }
    o->flags &= (uint8_t)~OBJF_DECOMMIT;
    /* prio is that of the offer in effect, 0 once none is. */
    if (o->prio) {
        core->stats.reclaims_by_prio[vkmt_prio_index(o->prio)][result]++;
    }
    core_event(core, VKMT_EV_RECLAIM, idx, result);
    if (o->state == ALLOC_RESIDENT) {
        o->prio = 0;
    }
}

#endif /* VKMT_ALLOC_STATE_H */
