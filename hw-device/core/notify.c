/* SPDX-License-Identifier: MIT */
/*
 * Device events (PROTOCOL.md 5.4, VKMT_F_EVENTS): what the host wants a
 * guest process to know without being asked (trim to budget, periodic trim,
 * a new budget) goes on the event ring of each queue, and the queue's
 * interrupt is raised. The ring is device-produced and guest-consumed; the
 * guest's head is untrusted, so a bogus one only costs that queue its events.
 * A full ring drops the new event and counts it in sh_ev_lost: every event
 * is a hint the driver can rebuild (the budget by QUERY_MEMORY), and never
 * overwriting a slot the driver may be reading keeps its copy untorn.
 */
#include "core_priv.h"
#include "vkmt_shmem.h"

/* Queues that take events: negotiated, and claimed in working order. */
static bool queue_takes_events(const struct vkmt_core *core, uint32_t q)
{
    return (core->driver_features & VKMT_F_EVENTS) && core->queues[q].state == VKMT_QSTATE_ACTIVE;
}

bool core_post_event(struct vkmt_core *core, uint32_t q, uint32_t type, uint64_t value)
{
    struct vkmt_queue *vq = &core->queues[q];
    uint8_t *base = core_queue_base(core, q);
    struct vkmt_queue_hdr *hdr = (struct vkmt_queue_hdr *)base;
    struct vkmt_qev *ring = (struct vkmt_qev *)(base + VKMT_QUEUE_EVQ_OFF);
    struct vkmt_qev *e;
    /* Pairs with the driver's release store of sh_ev_head: it is done with
     * the slots before it. */
    uint32_t head = vkmt_sh_load_acquire(&hdr->sh_ev_head);

    if (!queue_takes_events(core, q)) {
        return false;
    }
    /* Full, or a head that is not behind the tail by at most a ring. */
    if (vq->ev_tail - head >= VKMT_EVQ_DEPTH) {
        vq->ev_lost++;
        core->stats.events_lost++;
        vkmt_sh_store(&hdr->sh_ev_lost, vq->ev_lost);
        return false;
    }
    e = &ring[vq->ev_tail & (VKMT_EVQ_DEPTH - 1)];
    e->type = type;
    e->reserved = 0;
    e->value = value;
    vq->ev_tail++;
    /* Pairs with the driver's acquire load of sh_ev_tail: the entry first. */
    vkmt_sh_store_release(&hdr->sh_ev_tail, vq->ev_tail);
    core->stats.events++;
    core_notify_event(core, q, type, value);
    core->isr[q / 32] |= 1u << (q % 32);
    if (core->ops->raise_irq) {
        core->ops->raise_irq(core->opaque, q);
    }
    return true;
}

uint64_t core_queue_own_budget(const struct vkmt_core *core, uint32_t q)
{
    uint64_t own = core->queues[q].budget;

    return own && own < core->budget ? own : 0;
}

uint64_t core_queue_budget(const struct vkmt_core *core, uint32_t q)
{
    uint64_t own = core_queue_own_budget(core, q);

    return own ? own : core->budget;
}

uint64_t core_queue_over_budget(const struct vkmt_core *core, uint32_t q)
{
    uint64_t budget = core_queue_budget(core, q);

    return core->queues[q].committed > budget ? core->queues[q].committed - budget : 0;
}

void core_post_over_budget(struct vkmt_core *core)
{
    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        uint64_t over = core_queue_over_budget(core, q);

        if (over) {
            core_post_event(core, q, VKMT_QEV_TRIM_TO_BUDGET, over);
        }
    }
}

uint32_t vkmt_core_trim_notify(struct vkmt_core *core, uint64_t bytes)
{
    uint32_t posted = 0;

    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        const uint64_t held = core->queues[q].committed;
        uint64_t ask = bytes < held ? bytes : held;
        uint64_t over = core_queue_over_budget(core, q);

        ask = ask > over ? ask : over;
        if (ask && core_post_event(core, q, VKMT_QEV_TRIM_TO_BUDGET, ask)) {
            posted++;
        }
    }
    return posted;
}

uint32_t vkmt_core_periodic_trim(struct vkmt_core *core, bool restart)
{
    uint32_t type = restart ? VKMT_QEV_RESTART_PERIODIC_TRIM : VKMT_QEV_PERIODIC_TRIM;
    uint32_t posted = 0;

    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        posted += core_post_event(core, q, type, 0);
    }
    return posted;
}

void core_post_budget(struct vkmt_core *core)
{
    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        core_post_event(core, q, VKMT_QEV_BUDGET_CHANGED, core_queue_budget(core, q));
    }
    core_post_over_budget(core);
}
