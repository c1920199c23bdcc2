/* SPDX-License-Identifier: MIT */
/*
 * Engine life cycle and the register file: creation, the virtio-style status
 * and feature handshake, queue claim and release, reset with its removal
 * epoch, and the host-side controls (trim, budget, removal, statistics).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "vkmt_shmem.h"

void core_guest_error(struct vkmt_core *core, const char *fmt, ...)
{
    char msg[160];
    va_list ap;

    core->stats.guest_errors++;
    if (!core->ops->guest_error) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    core->ops->guest_error(core->opaque, msg);
}

/*
 * A backend call failed where no command can fail in its place (returning
 * memory, scrubbing): the device needs a reset (PROTOCOL.md 4), and the
 * host's log says which call failed and why.
 */
void core_backend_failed(struct vkmt_core *core, const char *what, int err)
{
    core->failed = true;
    core_guest_error(core, "backend %s failed (%d): device needs reset", what, err);
}

void core_event(struct vkmt_core *core, enum vkmt_event_type type, uint32_t idx, uint32_t status)
{
    const struct vkmt_obj *o = &core->objs[idx];
    struct vkmt_event ev;

    /* Every allocation transition passes here: cost nothing without a hook. */
    if (!core->ops->event) {
        return;
    }
    ev = (struct vkmt_event){
        .type = type,
        .queue = o->queue,
        .handle = obj_handle(core, idx),
        .status = status,
        .priority = o->prio,
        .size = o->u.alloc.size,
    };
    core->ops->event(core->opaque, &ev);
}

/* An event that names no allocation: about queue @q, or the host's. */
void core_queue_event(struct vkmt_core *core, enum vkmt_event_type type, uint32_t q, uint64_t size)
{
    struct vkmt_event ev = { .type = type, .queue = q, .size = size };

    if (core->ops->event) {
        core->ops->event(core->opaque, &ev);
    }
}

void core_notify_event(struct vkmt_core *core, uint32_t q, uint32_t type, uint64_t value)
{
    struct vkmt_event ev = { .type = VKMT_EV_NOTIFY, .queue = q, .status = type, .size = value };

    if (core->ops->event) {
        core->ops->event(core->opaque, &ev);
    }
}

uint8_t *core_queue_base(struct vkmt_core *core, uint32_t q)
{
    return core->ctrl + (size_t)q * VKMT_QUEUE_STRIDE;
}

uint64_t vkmt_core_ctrl_size(uint32_t num_queues)
{
    return (uint64_t)num_queues * VKMT_QUEUE_STRIDE;
}

/*
 * 0 means half the aperture: discarded allocations keep their aperture range
 * so that a reclaim can recommit them in place, and that needs address space
 * beyond what the budget lets be committed at once.
 */
static uint64_t default_budget(uint64_t budget, uint64_t aperture)
{
    if (budget == 0) {
        return aperture / 2 / VKMT_PAGE_SIZE * VKMT_PAGE_SIZE;
    }
    return budget < aperture ? budget : aperture;
}

int vkmt_core_create(const struct vkmt_core_config *cfg, struct vkmt_backend *backend, void *ctrl,
                     const struct vkmt_core_ops *ops, void *opaque, struct vkmt_core **out)
{
    struct vkmt_core *core;
    uint64_t npages;

    if (!cfg || !backend || !ctrl || !ops || cfg->num_queues == 0 ||
        cfg->num_queues > VKMT_MAX_QUEUES || (cfg->features & ~VKMT_F_KNOWN) ||
        cfg->max_objects > OBJ_INDEX_MAX || backend->size % VKMT_PAGE_SIZE ||
        cfg->nonlocal_size % VKMT_PAGE_SIZE ||
        cfg->nonlocal_size / VKMT_PAGE_SIZE >= APERTURE_NONE) {
        return -EINVAL;
    }
    if (!backend->ops->scrub || backend->max_alloc == 0 || backend->max_alloc > backend->size ||
        backend->max_texture_dim == 0 || backend->max_texture_dim > VKMT_TEXTURE_MAX_DIM) {
        return -EINVAL;
    }
    npages = backend->size / VKMT_PAGE_SIZE;
    if (npages == 0 || npages >= APERTURE_NONE) {
        return -EINVAL;
    }
    core = calloc(1, sizeof(*core));
    if (!core) {
        return -ENOMEM;
    }
    core->cfg = *cfg;
    core->ops = ops;
    core->opaque = opaque;
    core->backend = backend;
    core->ctrl = ctrl;
    core->max_objects = cfg->max_objects ? cfg->max_objects : OBJ_INDEX_MAX;
    core->budget = default_budget(cfg->budget, backend->size);
    if (obj_table_init(core) < 0 || aperture_init(&core->ap, (uint32_t)npages) < 0 ||
        nonlocal_init(core) < 0) {
        vkmt_core_destroy(core);
        return -ENOMEM;
    }
    /* Headers and rings start zeroed (all queues FREE); staging is guest
     * scratch that the device reads only where a command points. */
    for (uint32_t q = 0; q < cfg->num_queues; q++) {
        memset(core_queue_base(core, q), 0, VKMT_QUEUE_STAGING_OFF);
    }
    *out = core;
    return 0;
}

void vkmt_core_destroy(struct vkmt_core *core)
{
    if (!core) {
        return;
    }
    if (core->objs && core->ap.npages) {
        for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
            if (core->queues[q].state != VKMT_QSTATE_FREE) {
                core_queue_objects_destroy(core, q);
            }
        }
        /* A host backend (a memdev) outlives the device: what the guest
         * wrote outside its allocations goes too, so an unplugged device
         * holds no host memory. Nobody is left to report a failure to. */
        core_scrub(core, 0, core->ap.npages);
    }
    obj_table_fini(core);
    aperture_fini(&core->ap);
    nonlocal_fini(core);
    free(core->scratch);
    free(core->results);
    free(core->batch);
    free(core);
}

static uint32_t queue_claim(struct vkmt_core *core)
{
    if (!(core->status & VKMT_STATUS_DRIVER_OK) || core->removed || core->failed ||
        core->resetting) {
        return VKMT_QUEUE_NONE;
    }
    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        struct vkmt_queue *vq = &core->queues[q];
        uint32_t seq = vq->claim_seq + 1;
        uint8_t *base;
        struct vkmt_queue_hdr *hdr;

        if (vq->state != VKMT_QSTATE_FREE) {
            continue;
        }
        base = core_queue_base(core, q);
        /* Rings start zeroed: phase-0 entries read as "not yet written". */
        memset(base, 0, VKMT_QUEUE_STAGING_OFF);
        memset(vq, 0, sizeof(*vq));
        vq->phase = VKMT_CQE_F_PHASE;
        vq->state = VKMT_QSTATE_ACTIVE;
        vq->claim_seq = seq;
        hdr = (struct vkmt_queue_hdr *)base;
        vkmt_sh_store(&hdr->sh_claim_seq, vq->claim_seq);
        vkmt_sh_store_release(&hdr->sh_state, VKMT_QSTATE_ACTIVE);
        core_queue_event(core, VKMT_EV_QUEUE_CLAIM, q, 0);
        return q;
    }
    return VKMT_QUEUE_NONE;
}

/* Claimed by a driver: active or in the error state (not free, not draining). */
bool core_queue_claimed(const struct vkmt_core *core, uint32_t q)
{
    return core->queues[q].state == VKMT_QSTATE_ACTIVE ||
           core->queues[q].state == VKMT_QSTATE_ERROR;
}

/* The end of a reset whose queues have drained. */
static void reset_finish(struct vkmt_core *core)
{
    core->resetting = false;
    /* After the teardown: a backend error during it is cleared too. */
    core->failed = false;
    obj_unretire_all(core);
    /* Nothing holds a range any more; rewinding the next-fit cursor makes a
     * reset device place allocations exactly as a new one would. */
    aperture_clear(&core->ap);
    if (core->nl_base) {
        aperture_clear(&core->nl);
    }
    core->scrubbing = false;
    /* Whatever the guest wrote into the aperture goes with the reset too:
     * the next boot starts with no host memory held (one backend call). */
    int err = core_scrub(core, 0, core->ap.npages);

    if (err < 0) {
        core_backend_failed(core, "scrub", err);
    }
    core_queue_event(core, VKMT_EV_RESET, 0, 0);
}

/* Tears down released queues' objects while the current bound lasts. */
static void drain(struct vkmt_core *core)
{
    while (core->draining && core->work_left) {
        uint32_t q = (uint32_t)__builtin_ctzll(core->draining);

        if (core_queue_objects_destroy_some(core, q, &core->work_left)) {
            core->queues[q].state = VKMT_QSTATE_FREE;
            core->draining &= ~(1ull << q);
            core_queue_event(core, VKMT_EV_QUEUE_RELEASE, q, 0);
        }
    }
    if (core->resetting && !core->draining) {
        reset_finish(core);
    }
}

/*
 * Every entry point that can do work brackets it with these: begin grants
 * the bound, end asks the host to call vkmt_core_continue() when the bound
 * ran out with work left.
 */
void core_work_begin(struct vkmt_core *core)
{
    core->work_left = core->cfg.work_bound ? core->cfg.work_bound : UINT32_MAX;
}

/* Work an entry point may leave for vkmt_core_continue(). */
static bool work_pending(const struct vkmt_core *core)
{
    return core->backlog || core->draining || core->scrubbing || evict_over_budget(core);
}

void core_work_end(struct vkmt_core *core)
{
    if (work_pending(core) && core->ops->more_work) {
        core->ops->more_work(core->opaque);
    }
}

/*
 * Releases @q: the guest sees it FREE at once, its objects go in bounded
 * steps (drain), and it can be claimed again once they are gone.
 */
static void queue_release_begin(struct vkmt_core *core, uint32_t q)
{
    struct vkmt_queue_hdr *hdr = (struct vkmt_queue_hdr *)core_queue_base(core, q);
    struct vkmt_queue *vq = &core->queues[q];

    /* The rings go now, as a FREE queue's; objects and their bytes when drained. */
    vq->sq_head = vq->sq_tail = vq->cq_tail = vq->phase = 0;
    vq->resumed = false;
    vq->trim_freed = 0;
    vq->ev_tail = vq->ev_lost = 0;
    /* A budget is the host's word on one process: the next one starts free. */
    vq->budget = 0;
    core->budgeted &= ~(1ull << q);
    vq->state = QSTATE_DRAINING;
    core->draining |= 1ull << q;
    core->backlog &= ~(1ull << q);
    core->isr[q / 32] &= ~(1u << (q % 32));
    vkmt_sh_store(&hdr->sh_state, VKMT_QSTATE_FREE);
}

void core_queue_release(struct vkmt_core *core, uint32_t q)
{
    queue_release_begin(core, q);
    drain(core);
}

void vkmt_core_reset(struct vkmt_core *core)
{
    core_work_begin(core);
    core->resetting = true;
    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        if (core_queue_claimed(core, q)) {
            queue_release_begin(core, q);
        }
    }
    core->status = 0;
    core->driver_features = 0;
    core->isr[0] = core->isr[1] = 0;
    core->epoch++;
    drain(core);
    core_work_end(core);
}

bool vkmt_core_continue(struct vkmt_core *core)
{
    core_work_begin(core);
    drain(core);
    /* Offers under a lowered budget, then a guest trim's scrub, then rings. */
    evict_enforce_budget(core, &core->work_left);
    if (core->scrubbing && core->work_left) {
        evict_scrub_free(core, &core->work_left);
    }
    for (uint64_t rest = core->backlog; rest && core->work_left; rest &= rest - 1) {
        core_process(core, (uint32_t)__builtin_ctzll(rest));
    }
    core_work_end(core);
    return work_pending(core) || core->resetting;
}

static void status_write(struct vkmt_core *core, uint32_t val)
{
    if (val == 0) {
        if (!core->resetting) {
            vkmt_core_reset(core);
        }
        return;
    }
    if (core->resetting) {
        core_guest_error(core, "status 0x%x written while the device resets", val);
        return;
    }
    if (val & ~core->status & VKMT_STATUS_FEATURES_OK) {
        /* Accept FEATURES_OK only for a subset of what was offered. */
        if (core->driver_features & ~core->cfg.features) {
            core_guest_error(core, "driver features 0x%x exceed offered 0x%x",
                             core->driver_features, core->cfg.features);
            val &= ~VKMT_STATUS_FEATURES_OK;
        }
    }
    if ((val & VKMT_STATUS_DRIVER_OK) && !((val | core->status) & VKMT_STATUS_FEATURES_OK)) {
        core_guest_error(core, "DRIVER_OK before FEATURES_OK");
        val &= ~VKMT_STATUS_DRIVER_OK;
    }
    /* The driver may only add bits; clearing needs a reset. */
    core->status |= val & (VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_DRIVER_OK |
                           VKMT_STATUS_FEATURES_OK | VKMT_STATUS_FAILED);
}

static void doorbell(struct vkmt_core *core, uint32_t q, uint32_t tail)
{
    struct vkmt_queue *vq = &core->queues[q];

    if (q >= core->cfg.num_queues || vq->state != VKMT_QSTATE_ACTIVE) {
        core_guest_error(core, "doorbell on queue %u that is not active", q);
        return;
    }
    if (tail - vq->sq_head > VKMT_QUEUE_DEPTH) {
        struct vkmt_queue_hdr *hdr = (struct vkmt_queue_hdr *)core_queue_base(core, q);

        core_guest_error(core, "queue %u: doorbell tail %u out of range (head %u)", q, tail,
                         vq->sq_head);
        vq->state = VKMT_QSTATE_ERROR;
        core->stats.queue_errors++;
        vkmt_sh_store(&hdr->sh_error, VKMT_QERR_DOORBELL_RANGE);
        vkmt_sh_store_release(&hdr->sh_state, VKMT_QSTATE_ERROR);
        core->isr[q / 32] |= 1u << (q % 32);
        core_queue_event(core, VKMT_EV_QUEUE_ERROR, q, 0);
        if (core->ops->raise_irq) {
            core->ops->raise_irq(core->opaque, q);
        }
        return;
    }
    vq->sq_tail = tail;
    if (core->ops->notify) {
        core->ops->notify(core->opaque, q);
    } else {
        vkmt_core_process(core, q);
    }
}

void vkmt_core_kick(struct vkmt_core *core, uint32_t q)
{
    const struct vkmt_queue_hdr *hdr;

    if (q >= core->cfg.num_queues || core->queues[q].state != VKMT_QSTATE_ACTIVE) {
        core_guest_error(core, "doorbell on queue %u that is not active", q);
        return;
    }
    hdr = (const struct vkmt_queue_hdr *)core_queue_base(core, q);
    /* Pairs with the driver's release store: the entries are in place. */
    doorbell(core, q, vkmt_sh_load_acquire(&hdr->sh_sq_tail));
}

uint32_t vkmt_core_reg_read(struct vkmt_core *core, uint32_t off)
{
    switch (off) {
    case VKMT_REG(magic):
        return VKMT_MAGIC;
    case VKMT_REG(version):
        return VKMT_VERSION;
    case VKMT_REG(device_features):
        return core->cfg.features;
    case VKMT_REG(driver_features):
        return core->driver_features;
    case VKMT_REG(status):
        return core->status |
               (core->failed || core->resetting ? VKMT_STATUS_DEVICE_NEEDS_RESET : 0);
    case VKMT_REG(removal_epoch):
        return core->epoch;
    case VKMT_REG(config_generation):
        return core->config_gen;
    case VKMT_REG(num_queues):
        return core->cfg.num_queues;
    case VKMT_REG(queue_depth):
        return VKMT_QUEUE_DEPTH;
    case VKMT_REG(queue_stride):
        return VKMT_QUEUE_STRIDE;
    case VKMT_REG(staging_size):
        return VKMT_STAGING_SIZE;
    case VKMT_REG(max_batch):
        return VKMT_MAX_BATCH;
    case VKMT_REG(queue_claim):
        return queue_claim(core);
    case VKMT_REG(isr_lo):
        return core->isr[0];
    case VKMT_REG(isr_hi):
        return core->isr[1];
    case VKMT_REG(aperture_size_lo):
        return (uint32_t)core->backend->size;
    case VKMT_REG(aperture_size_hi):
        return (uint32_t)(core->backend->size >> 32);
    case VKMT_REG(budget_lo):
        return (uint32_t)core->budget;
    case VKMT_REG(budget_hi):
        return (uint32_t)(core->budget >> 32);
    case VKMT_REG(max_alloc_lo):
        return (uint32_t)core->backend->max_alloc;
    case VKMT_REG(max_alloc_hi):
        return (uint32_t)(core->backend->max_alloc >> 32);
    case VKMT_REG(max_texture_dim):
        return core->backend->max_texture_dim;
    default:
        return 0;
    }
}

void vkmt_core_reg_write(struct vkmt_core *core, uint32_t off, uint32_t val)
{
    if (off >= VKMT_REG(sq_doorbell) && off < VKMT_REG_DOORBELL(VKMT_MAX_QUEUES)) {
        if (off % 4) {
            core_guest_error(core, "unaligned doorbell write at 0x%x", off);
            return;
        }
        doorbell(core, (off - VKMT_REG(sq_doorbell)) / 4, val);
        return;
    }
    switch (off) {
    case VKMT_REG(driver_features):
        if (core->status & VKMT_STATUS_FEATURES_OK) {
            core_guest_error(core, "driver features written after FEATURES_OK");
            return;
        }
        core->driver_features = val;
        return;
    case VKMT_REG(status):
        status_write(core, val);
        return;
    case VKMT_REG(queue_reap): {
        uint32_t q = val & 0xffu;

        /* A mismatch is not an error: someone else reaped or re-claimed it. */
        if (q < core->cfg.num_queues && core_queue_claimed(core, q) &&
            (core->queues[q].claim_seq & 0xffffffu) == val >> 8) {
            core_work_begin(core);
            core_queue_release(core, q);
            core_work_end(core);
        }
        return;
    }
    case VKMT_REG(queue_release):
        if (val >= core->cfg.num_queues || !core_queue_claimed(core, val)) {
            core_guest_error(core, "release of queue %u that is not claimed", val);
            return;
        }
        core_work_begin(core);
        core_queue_release(core, val);
        core_work_end(core);
        return;
    case VKMT_REG(isr_lo):
        core->isr[0] &= ~val;
        return;
    case VKMT_REG(isr_hi):
        core->isr[1] &= ~val;
        return;
    default:
        core_guest_error(core, "write 0x%x to read-only or unknown register 0x%x", val, off);
        return;
    }
}

void core_trim_done(struct vkmt_core *core, uint64_t freed)
{
    core->stats.trims++;
    core->stats.trimmed_bytes += freed;
}

/* The host's trim: all of it now, scrub included (the host chose the stall). */
uint64_t vkmt_core_trim(struct vkmt_core *core, uint64_t bytes)
{
    uint64_t freed;

    core_queue_event(core, VKMT_EV_TRIM, VKMT_EV_HOST, bytes);
    core->evict_stuck = false;
    freed = evict_bytes(core, QUEUE_ANY, bytes, NULL);
    /* The hard bound on host memory is the aperture (docs/DEVICE.md): what
     * the guest wrote outside its allocations goes now too. */
    core->scrub_next = 0;
    evict_scrub_free(core, NULL);
    core_trim_done(core, freed);
    core_post_over_budget(core);
    return freed;
}

void vkmt_core_set_budget(struct vkmt_core *core, uint64_t budget)
{
    core->budget = default_budget(budget, core->backend->size);
    core->config_gen++;
    core_queue_event(core, VKMT_EV_BUDGET, VKMT_EV_HOST, core->budget);
    core->evict_stuck = false;
    core->demote_pending = true;
    evict_enforce_budget(core, NULL);
    core_post_budget(core);
}

int vkmt_core_set_queue_budget(struct vkmt_core *core, uint32_t q, uint64_t budget)
{
    struct vkmt_queue *vq;
    uint64_t own, over;

    if (q >= core->cfg.num_queues || budget > core->backend->size) {
        return -EINVAL;
    }
    if (!core_queue_claimed(core, q)) {
        return -ENOENT;
    }
    vq = &core->queues[q];
    vq->budget = budget;
    if (budget) {
        core->budgeted |= 1ull << q;
    } else {
        core->budgeted &= ~(1ull << q);
    }
    core_queue_event(core, VKMT_EV_BUDGET, q, budget);
    core->evict_stuck = false;
    own = core_queue_own_budget(core, q);
    if (own && vq->committed > own) {
        evict_bytes(core, q, vq->committed - own, NULL);
    }
    if (own && vq->committed > own && !core->evict_stuck) {
        demote_bytes(core, q, vq->committed - own, NULL);
    }
    core_post_event(core, q, VKMT_QEV_BUDGET_CHANGED, core_queue_budget(core, q));
    over = core_queue_over_budget(core, q);
    if (over) {
        core_post_event(core, q, VKMT_QEV_TRIM_TO_BUDGET, over);
    }
    return 0;
}

void vkmt_core_get_queue_stats(const struct vkmt_core *core, uint32_t q,
                               struct vkmt_queue_stats *out)
{
    const struct vkmt_queue *vq = &core->queues[q];

    out->claimed = core_queue_claimed(core, q);
    out->budget = vq->budget;
    out->budget_local = core_queue_budget(core, q);
    out->committed = vq->committed;
    out->resident = vq->committed - vq->offered;
    out->offered = vq->offered;
    out->demoted = vq->demoted;
    out->discarded = vq->discarded;
}

void vkmt_core_set_removed(struct vkmt_core *core, bool removed)
{
    core->removed = removed;
}

void vkmt_core_set_faults(struct vkmt_core *core, uint32_t poison, bool deaf)
{
    core->poison = poison;
    core->deaf = deaf;
    if (!deaf) {
        /* What the deaf device noted runs now, within the bound. */
        for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
            const struct vkmt_queue *vq = &core->queues[q];

            if (vq->state == VKMT_QSTATE_ACTIVE && vq->sq_head != vq->sq_tail) {
                core->backlog |= 1ull << q;
            }
        }
        vkmt_core_continue(core);
    }
}

void vkmt_core_get_stats(const struct vkmt_core *core, struct vkmt_stats *out)
{
    *out = core->stats;
    out->committed_bytes = core->committed;
    out->offered_bytes = core->offered_bytes;
    out->budget_bytes = core->budget;
    out->demoted_bytes = core->demoted_bytes;
}
