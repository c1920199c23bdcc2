/* SPDX-License-Identifier: MIT */
/*
 * Snapshots of the engine, for migration and savevm: the whole state as one
 * flat, versioned, little-endian blob, and its import. The blob holds what
 * cannot be derived (registers, queues, every object slot with its
 * generation, and the order of every list: a queue's devices, a device's
 * children, the offered FIFOs, the free slots); everything else (committed
 * and offered bytes, the aperture's maps, live counts) is recomputed at
 * import. A snapshot is untrusted input: the import checks every value and
 * every cross-reference, builds the new state aside, and installs it only
 * when all of it is consistent, so a bad blob leaves the engine as it was.
 *
 * Layout, version 3 (u8/u16/u32/u64 little-endian, bools as u8 0 or 1):
 *   header   u32 magic "VKSN", version, num_queues, aperture pages, features,
 *            non-local pages
 *   device   u32 status, driver_features, epoch, config_gen, isr[2];
 *            bool removed, failed, resetting, deaf, scrubbing;
 *            u32 poison, scrub_next, aperture cursor; u64 budget, backlog,
 *            draining; u32 non-local cursor; bool demote_pending
 *   faults   bool evict_stuck; u64 seed, stall_ns; per kind (commit,
 *            discard, stall): u32 every, ppm; u64 operations seen
 *   stats    u64 each cumulative counter (snap_stats() order), then
 *            u64 events, events_lost
 *   queues   per queue: u32 state, claim_seq, sq_head, sq_tail, cq_tail,
 *            phase; bool resumed; u64 trim_freed; u32 ev_tail, ev_lost;
 *            u64 reservation local, non-local; u64 budget, discarded bytes
 *   objects  u32 slots (index 0 included, never used); per slot from 1:
 *            u8 type, u16 gen; live ones add u16 queue, u32 parent, then
 *            paging queue: u64 fence, u32 sync;
 *            allocation: u8 state, prio, flags; u32 shape, group, page,
 *            locks; u64 size; u32 residency priority, residency count,
 *            non-local page (0 unless demoted);
 *            resource: u32 count, count x u32 member
 *   lists    u32 count + indices each: every queue's devices, every
 *            device's children (devices in index order), the three offered
 *            FIFOs (LOW, NORMAL, HIGH), the free slots
 * A new field means a new version; a version this code does not know is
 * refused (docs/DEVICE.md has the compatibility promise). Version 2 is
 * version 3 without the queues' budgets and discarded bytes (read as 0).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"

#define SNAP_MAGIC 0x4e534b56u /* "VKSN" */
/* The most bytes one object slot adds, lists included: a generous bound
 * on what a snapshot of the largest table may take. */
#define SNAP_SLOT_MAX 64u
#define SNAP_FIXED_MAX 4096u

/* The cumulative counters, in blob order; the live ones are recomputed. */
#define SNAP_NSTATS (19u + (2u + VKMT_RECLAIM_RESULTS) * VKMT_PRIO_CLASSES)

static void snap_stats(struct vkmt_stats *s, uint64_t *v[SNAP_NSTATS])
{
    uint64_t *fixed[] = { &s->commands,
                          &s->command_errors,
                          &s->guest_errors,
                          &s->queue_errors,
                          &s->offers,
                          &s->discards,
                          &s->discarded_bytes,
                          &s->decommits,
                          &s->reclaim_ok,
                          &s->reclaim_discarded,
                          &s->reclaim_not_committed,
                          &s->trims,
                          &s->trimmed_bytes,
                          &s->faults_commit,
                          &s->faults_discard,
                          &s->stalls,
                          &s->stall_ns,
                          &s->demotions,
                          &s->promotions };
    unsigned n = 0;

    for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        v[n++] = fixed[i];
    }
    for (unsigned p = 0; p < VKMT_PRIO_CLASSES; p++) {
        v[n++] = &s->discarded_bytes_by_prio[p];
        v[n++] = &s->offered_bytes_total_by_prio[p];
        /* offered_bytes_by_prio is live: recomputed */
        for (unsigned r = 0; r < VKMT_RECLAIM_RESULTS; r++) {
            v[n++] = &s->reclaims_by_prio[p][r];
        }
    }
}

/* ---- writing ---- */

struct writer {
    uint8_t *buf;
    size_t cap, pos;
};

static void put(struct writer *w, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++, w->pos++) {
        if (w->pos < w->cap) {
            w->buf[w->pos] = (uint8_t)(v >> (8 * i));
        }
    }
}

/* A sibling list (a queue's devices or a device's children) from @head. */
static void put_sib_list(struct writer *w, const struct vkmt_core *core, uint32_t head)
{
    uint32_t n = 0;

    for (uint32_t i = head; i != NIL; i = core->objs[i].sib_next) {
        n++;
    }
    put(w, n, 4);
    for (uint32_t i = head; i != NIL; i = core->objs[i].sib_next) {
        put(w, i, 4);
    }
}

/* A FIFO linked through next (the offered FIFOs, the free list). */
static void put_fifo(struct writer *w, const struct vkmt_core *core, const struct fifo *f)
{
    uint32_t n = 0;

    for (uint32_t i = f->head; i != NIL; i = core->objs[i].next) {
        n++;
    }
    put(w, n, 4);
    for (uint32_t i = f->head; i != NIL; i = core->objs[i].next) {
        put(w, i, 4);
    }
}

static void put_object(struct writer *w, const struct vkmt_obj *o)
{
    put(w, o->type, 1);
    put(w, o->gen, 2);
    if (o->type == OBJ_FREE) {
        return;
    }
    put(w, o->queue, 2);
    put(w, o->parent, 4);
    switch (o->type) {
    case OBJ_PAGING_QUEUE:
        put(w, o->u.pq.fence, 8);
        put(w, o->u.pq.sync, 4);
        break;
    case OBJ_ALLOCATION:
        put(w, o->state, 1);
        put(w, o->prio, 1);
        put(w, o->flags, 1);
        put(w, o->shape, 4);
        put(w, o->u.alloc.group, 4);
        put(w, o->u.alloc.page, 4);
        put(w, o->u.alloc.locks, 4);
        put(w, o->u.alloc.size, 8);
        put(w, o->u.alloc.rprio, 4);
        put(w, o->u.alloc.rcount, 4);
        put(w, o->state == ALLOC_DEMOTED ? o->u.alloc.nl_page : 0, 4);
        break;
    case OBJ_RESOURCE:
        put(w, o->u.res.count, 4);
        for (uint32_t m = 0; m < o->u.res.count; m++) {
            put(w, o->u.res.members[m], 4);
        }
        break;
    }
}

size_t vkmt_core_snapshot_save(const struct vkmt_core *core, void *buf, size_t cap)
{
    struct writer w = { .buf = buf, .cap = buf ? cap : 0 };
    struct vkmt_stats st = core->stats;
    uint64_t *stat[SNAP_NSTATS];

    put(&w, SNAP_MAGIC, 4);
    put(&w, VKMT_SNAPSHOT_VERSION, 4);
    put(&w, core->cfg.num_queues, 4);
    put(&w, core->ap.npages, 4);
    put(&w, core->cfg.features, 4);
    put(&w, core->nl.npages, 4);

    put(&w, core->status, 4);
    put(&w, core->driver_features, 4);
    put(&w, core->epoch, 4);
    put(&w, core->config_gen, 4);
    put(&w, core->isr[0], 4);
    put(&w, core->isr[1], 4);
    put(&w, core->removed, 1);
    put(&w, core->failed, 1);
    put(&w, core->resetting, 1);
    put(&w, core->deaf, 1);
    put(&w, core->scrubbing, 1);
    put(&w, core->poison, 4);
    put(&w, core->scrub_next, 4);
    put(&w, core->ap.cursor, 4);
    put(&w, core->budget, 8);
    put(&w, core->backlog, 8);
    put(&w, core->draining, 8);
    put(&w, core->nl.cursor, 4);
    put(&w, core->demote_pending, 1);

    put(&w, core->evict_stuck, 1);
    put(&w, core->faults.seed, 8);
    put(&w, core->faults.stall_ns, 8);
    for (unsigned k = 0; k < VKMT_FAULT_KINDS; k++) {
        put(&w, core->faults.rate[k].every, 4);
        put(&w, core->faults.rate[k].ppm, 4);
        put(&w, core->fault_seen[k], 8);
    }

    snap_stats(&st, stat);
    for (unsigned i = 0; i < SNAP_NSTATS; i++) {
        put(&w, *stat[i], 8);
    }
    put(&w, core->stats.events, 8);
    put(&w, core->stats.events_lost, 8);

    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        const struct vkmt_queue *vq = &core->queues[q];

        put(&w, vq->state, 4);
        put(&w, vq->claim_seq, 4);
        put(&w, vq->sq_head, 4);
        put(&w, vq->sq_tail, 4);
        put(&w, vq->cq_tail, 4);
        put(&w, vq->phase, 4);
        put(&w, vq->resumed, 1);
        put(&w, vq->trim_freed, 8);
        put(&w, vq->ev_tail, 4);
        put(&w, vq->ev_lost, 4);
        put(&w, vq->reservation[0], 8);
        put(&w, vq->reservation[1], 8);
        put(&w, vq->budget, 8);
        put(&w, vq->discarded, 8);
    }

    put(&w, core->nobjs, 4);
    for (uint32_t i = 1; i < core->nobjs; i++) {
        put_object(&w, &core->objs[i]);
    }

    for (uint32_t q = 0; q < core->cfg.num_queues; q++) {
        put_sib_list(&w, core, core->queues[q].first_device);
    }
    for (uint32_t i = 1; i < core->nobjs; i++) {
        if (core->objs[i].type == OBJ_DEVICE) {
            put_sib_list(&w, core, core->objs[i].u.dev.first_child);
        }
    }
    for (unsigned c = 0; c < EVICT_CLASSES; c++) {
        put_fifo(&w, core, &core->offered[c]);
    }
    put_fifo(&w, core, &core->free_list);
    return w.pos;
}

size_t vkmt_core_snapshot_max(const struct vkmt_core *core)
{
    (void)core; /* the table's limit is the handle format's, whatever max-objects says */
    return SNAP_FIXED_MAX + VKMT_MAX_QUEUES * 64u + (size_t)(OBJ_INDEX_MAX + 1) * SNAP_SLOT_MAX;
}

/* ---- reading ---- */

struct reader {
    const uint8_t *buf;
    size_t len, pos;
    char *why;
    size_t why_len;
    bool bad;
    bool nomem;       /* refused for want of memory, not for its content */
    uint32_t version; /* the blob's, from its header */
};

/* Records the first reason a snapshot is refused; returns false. */
__attribute__((format(printf, 2, 3))) static bool reject(struct reader *r, const char *fmt, ...)
{
    va_list ap;

    if (!r->bad && r->why_len) {
        va_start(ap, fmt);
        vsnprintf(r->why, r->why_len, fmt, ap);
        va_end(ap);
    }
    r->bad = true;
    return false;
}

static uint64_t get(struct reader *r, unsigned bytes)
{
    uint64_t v = 0;

    if (r->len - r->pos < bytes) {
        reject(r, "truncated at byte %zu of %zu", r->pos, r->len);
        r->pos = r->len;
        return 0;
    }
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint64_t)r->buf[r->pos + i] << (8 * i);
    }
    r->pos += bytes;
    return v;
}

static uint32_t get32(struct reader *r)
{
    return (uint32_t)get(r, 4);
}

static bool get_bool(struct reader *r, const char *what, bool *out)
{
    uint64_t v = get(r, 1);

    *out = v != 0;
    return v <= 1 || reject(r, "%s is %llu, not a boolean", what, (unsigned long long)v);
}

static bool check_header(struct reader *r, const struct vkmt_core *core)
{
    uint32_t magic = get32(r), version = get32(r), nq = get32(r), pages = get32(r);
    uint32_t features = get32(r), nl_pages = get32(r);

    if (r->bad) {
        return false;
    }
    if (magic != SNAP_MAGIC) {
        return reject(r, "not a vkmt engine snapshot (magic 0x%08x)", magic);
    }
    if (version != VKMT_SNAPSHOT_VERSION && version != 2) {
        return reject(r, "snapshot version %u; this device reads versions 2 and %u", version,
                      VKMT_SNAPSHOT_VERSION);
    }
    r->version = version;
    if (nq != core->cfg.num_queues) {
        return reject(r, "the snapshot has %u queues, this device %u", nq, core->cfg.num_queues);
    }
    if (pages != core->ap.npages) {
        return reject(r, "the snapshot's aperture has %u pages, this device's %u", pages,
                      core->ap.npages);
    }
    if (features != core->cfg.features) {
        return reject(r, "the snapshot's device offered features 0x%x, this one offers 0x%x",
                      features, core->cfg.features);
    }
    if (nl_pages != core->nl.npages) {
        return reject(r, "the snapshot's non-local segment has %u pages, this device's %u",
                      nl_pages, core->nl.npages);
    }
    return true;
}

#define STATUS_STORED                                                                              \
    (VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_DRIVER_OK |                        \
     VKMT_STATUS_FEATURES_OK | VKMT_STATUS_FAILED)

static bool read_device(struct reader *r, struct vkmt_core *n)
{
    uint64_t qmask = n->cfg.num_queues == 64 ? UINT64_MAX : (1ull << n->cfg.num_queues) - 1;

    n->status = get32(r);
    n->driver_features = get32(r);
    n->epoch = get32(r);
    n->config_gen = get32(r);
    n->isr[0] = get32(r);
    n->isr[1] = get32(r);
    if (!get_bool(r, "removed", &n->removed) || !get_bool(r, "failed", &n->failed) ||
        !get_bool(r, "resetting", &n->resetting) || !get_bool(r, "deaf", &n->deaf) ||
        !get_bool(r, "scrubbing", &n->scrubbing)) {
        return false;
    }
    n->poison = get32(r);
    n->scrub_next = get32(r);
    n->ap.cursor = get32(r);
    n->budget = get(r, 8);
    n->backlog = get(r, 8);
    n->draining = get(r, 8);
    n->nl.cursor = get32(r);
    if (!get_bool(r, "demote_pending", &n->demote_pending)) {
        return false;
    }
    if (n->status & ~STATUS_STORED) {
        return reject(r, "status 0x%x has bits the device never stores", n->status);
    }
    if ((n->status & VKMT_STATUS_DRIVER_OK) && !(n->status & VKMT_STATUS_FEATURES_OK)) {
        return reject(r, "status 0x%x: DRIVER_OK without FEATURES_OK", n->status);
    }
    if ((n->status & VKMT_STATUS_FEATURES_OK) && (n->driver_features & ~n->cfg.features)) {
        return reject(r, "driver features 0x%x exceed the offered 0x%x", n->driver_features,
                      n->cfg.features);
    }
    if ((((uint64_t)n->isr[1] << 32 | n->isr[0]) & ~qmask) || (n->backlog & ~qmask) ||
        (n->draining & ~qmask)) {
        return reject(r, "interrupt, backlog or draining bits name queues beyond %u",
                      n->cfg.num_queues);
    }
    if (n->resetting && (n->status != 0 || n->draining == 0)) {
        return reject(r, "a reset in progress with status 0x%x and no queue draining", n->status);
    }
    if (n->scrub_next >= n->ap.npages || n->ap.cursor >= n->ap.npages) {
        return reject(r, "scrub position %u or allocation cursor %u outside the aperture",
                      n->scrub_next, n->ap.cursor);
    }
    if (n->nl.cursor && n->nl.cursor >= n->nl.npages) {
        return reject(r, "non-local cursor %u outside the segment", n->nl.cursor);
    }
    if (n->budget > n->backend->size) {
        return reject(r, "budget %llu exceeds the aperture", (unsigned long long)n->budget);
    }
    return true;
}

/* The injected-fault settings and how far each kind's sequence got. */
static bool read_faults(struct reader *r, struct vkmt_core *n)
{
    if (!get_bool(r, "evict_stuck", &n->evict_stuck)) {
        return false;
    }
    n->faults.seed = get(r, 8);
    n->faults.stall_ns = get(r, 8);
    for (unsigned k = 0; k < VKMT_FAULT_KINDS; k++) {
        n->faults.rate[k].every = get32(r);
        n->faults.rate[k].ppm = get32(r);
        n->fault_seen[k] = get(r, 8);
        if (!r->bad && n->faults.rate[k].ppm > VKMT_FAULT_PPM) {
            return reject(r, "fault kind %u: chance %u ppm above %u", k, n->faults.rate[k].ppm,
                          VKMT_FAULT_PPM);
        }
    }
    if (!r->bad && n->faults.stall_ns > VKMT_FAULT_STALL_MAX_NS) {
        return reject(r, "stall of %llu ns above %u", (unsigned long long)n->faults.stall_ns,
                      VKMT_FAULT_STALL_MAX_NS);
    }
    return !r->bad;
}

static bool read_stats(struct reader *r, struct vkmt_core *n)
{
    uint64_t *stat[SNAP_NSTATS];

    memset(&n->stats, 0, sizeof(n->stats));
    snap_stats(&n->stats, stat);
    for (unsigned i = 0; i < SNAP_NSTATS; i++) {
        *stat[i] = get(r, 8); /* counters: every value is one a device can reach */
    }
    n->stats.events = get(r, 8);
    n->stats.events_lost = get(r, 8);
    return !r->bad;
}

static bool read_queue(struct reader *r, struct vkmt_core *n, uint32_t q)
{
    struct vkmt_queue *vq = &n->queues[q];
    bool draining = (n->draining >> q) & 1;

    memset(vq, 0, sizeof(*vq));
    vq->first_device = NIL;
    vq->state = get32(r);
    vq->claim_seq = get32(r);
    vq->sq_head = get32(r);
    vq->sq_tail = get32(r);
    vq->cq_tail = get32(r);
    vq->phase = get32(r);
    if (!get_bool(r, "a queue's resumed flag", &vq->resumed)) {
        return false;
    }
    vq->trim_freed = get(r, 8);
    /* Free-running like the ring indices: any value is one a queue reaches. */
    vq->ev_tail = get32(r);
    vq->ev_lost = get32(r);
    vq->reservation[0] = get(r, 8);
    vq->reservation[1] = get(r, 8);
    if (r->version >= 3) {
        vq->budget = get(r, 8);
        vq->discarded = get(r, 8); /* a counter: any value is one a queue reaches */
    }
    if (r->bad) {
        return false;
    }
    if (vq->budget > n->backend->size) {
        return reject(r, "queue %u: budget %llu exceeds the aperture", q,
                      (unsigned long long)vq->budget);
    }
    if (vq->budget && vq->state != VKMT_QSTATE_ACTIVE && vq->state != VKMT_QSTATE_ERROR) {
        return reject(r, "queue %u: a budget on a queue no driver holds", q);
    }
    if (vq->budget) {
        n->budgeted |= 1ull << q;
    }
    if (vq->reservation[0] > n->backend->size ||
        vq->reservation[1] > (uint64_t)n->nl.npages * VKMT_PAGE_SIZE) {
        return reject(r, "queue %u: reservations %llu and %llu exceed their segments", q,
                      (unsigned long long)vq->reservation[0],
                      (unsigned long long)vq->reservation[1]);
    }
    if (vq->state == VKMT_QSTATE_FREE && (vq->reservation[0] || vq->reservation[1])) {
        return reject(r, "queue %u: a released queue with a reservation", q);
    }
    if (vq->state != VKMT_QSTATE_FREE && vq->state != VKMT_QSTATE_ACTIVE &&
        vq->state != VKMT_QSTATE_ERROR && vq->state != QSTATE_DRAINING) {
        return reject(r, "queue %u: state 0x%x", q, vq->state);
    }
    if (draining != (vq->state == QSTATE_DRAINING)) {
        return reject(r, "queue %u: state 0x%x disagrees with the draining mask", q, vq->state);
    }
    if (!vq->resumed && vq->trim_freed) {
        return reject(r, "queue %u: a trim's progress without a command to resume", q);
    }
    if (vq->state == VKMT_QSTATE_FREE || vq->state == QSTATE_DRAINING) {
        if (vq->sq_head || vq->sq_tail || vq->cq_tail || vq->phase || vq->resumed || vq->ev_tail ||
            vq->ev_lost) {
            return reject(r, "queue %u: a released queue with ring state", q);
        }
        return true;
    }
    if (!(n->status & VKMT_STATUS_DRIVER_OK) || n->resetting) {
        return reject(r, "queue %u: claimed while the device is not up", q);
    }
    if (vq->sq_tail - vq->sq_head > VKMT_QUEUE_DEPTH) {
        return reject(r, "queue %u: tail %u is more than a ring ahead of head %u", q, vq->sq_tail,
                      vq->sq_head);
    }
    if (vq->cq_tail != vq->sq_head) {
        return reject(r, "queue %u: %u completions for %u commands", q, vq->cq_tail, vq->sq_head);
    }
    if (vq->phase != ((vq->cq_tail / VKMT_QUEUE_DEPTH) % 2 ? 0 : VKMT_CQE_F_PHASE)) {
        return reject(r, "queue %u: phase %u does not match completion tail %u", q, vq->phase,
                      vq->cq_tail);
    }
    return true;
}

/* An allocation's own fields; its range is taken in @n's aperture. */
static bool read_alloc(struct reader *r, struct vkmt_core *n, uint32_t idx)
{
    struct vkmt_obj *o = &n->objs[idx];
    const struct vkmt_backend *b = n->backend;
    uint64_t size;
    int err = 0;

    o->state = (uint8_t)get(r, 1);
    o->prio = (uint8_t)get(r, 1);
    o->flags = (uint8_t)get(r, 1);
    o->shape = get32(r);
    o->u.alloc.group = get32(r);
    o->u.alloc.page = get32(r);
    o->u.alloc.locks = get32(r);
    size = get(r, 8);
    o->u.alloc.rprio = get32(r); /* any value is a priority */
    o->u.alloc.rcount = get32(r);
    o->u.alloc.nl_page = get32(r);
    if (r->bad) {
        return false;
    }
    if (o->state < ALLOC_RESIDENT || o->state > ALLOC_DEMOTED ||
        (o->state == ALLOC_DEMOTED && !n->nl_base)) {
        return reject(r, "allocation %u: state %u", idx, o->state);
    }
    if (o->flags & ~OBJF_DECOMMIT) {
        return reject(r, "allocation %u: flags 0x%x", idx, o->flags);
    }
    if (o->state == ALLOC_RESIDENT || o->state == ALLOC_DEMOTED
            ? o->prio != 0 || o->flags
            : o->prio < VKMT_PRIO_LOW || o->prio > VKMT_PRIO_AUTO) {
        return reject(r, "allocation %u: priority %u or flags 0x%x do not fit state %s", idx,
                      o->prio, o->flags, vkmt_alloc_state_name(o->state));
    }
    if ((o->state == ALLOC_DISCARDED && o->flags) ||
        (o->state != ALLOC_RESIDENT && o->u.alloc.locks)) {
        return reject(r, "allocation %u: %s with flags 0x%x and %u locks", idx,
                      vkmt_alloc_state_name(o->state), o->flags, o->u.alloc.locks);
    }
    if (size == 0 || size > b->max_alloc) {
        return reject(r, "allocation %u: size %llu", idx, (unsigned long long)size);
    }
    o->u.alloc.size = size;
    o->u.alloc.npages = (uint32_t)((size + VKMT_PAGE_SIZE - 1) / VKMT_PAGE_SIZE);
    if (o->shape) {
        uint32_t bpp = vkmt_format_bpp(SHAPE_FORMAT(o->shape));
        uint32_t w = SHAPE_WIDTH(o->shape), h = SHAPE_HEIGHT(o->shape);

        if (bpp == 0 || w > b->max_texture_dim || h > b->max_texture_dim ||
            (uint64_t)bpp * w * h != size) {
            return reject(r, "allocation %u: texture shape 0x%x does not hold %llu bytes", idx,
                          o->shape, (unsigned long long)size);
        }
    }
    if (state_info[o->state].ranged) {
        err = aperture_claim(&n->ap, o->u.alloc.page, o->u.alloc.npages);
    } else if (o->u.alloc.page > n->ap.npages - o->u.alloc.npages) {
        err = -ERANGE; /* the range it had: past the aperture it never was */
    }
    if (err < 0) {
        return reject(r, "allocation %u: pages %u+%u %s", idx, o->u.alloc.page, o->u.alloc.npages,
                      err == -EBUSY ? "overlap another range" : "lie outside the aperture");
    }
    if (state_info[o->state].held) {
        aperture_hold(&n->ap, o->u.alloc.page, o->u.alloc.npages, 1);
    }
    if (o->state == ALLOC_DEMOTED) {
        err = aperture_claim(&n->nl, o->u.alloc.nl_page, o->u.alloc.npages);
    } else if (o->u.alloc.nl_page) {
        err = -EINVAL;
    }
    if (err < 0) {
        return reject(r, "allocation %u: non-local pages %u+%u %s", idx, o->u.alloc.nl_page,
                      o->u.alloc.npages,
                      err == -EBUSY    ? "overlap another range"
                      : err == -EINVAL ? "named while not demoted"
                                       : "lie outside the segment");
    }
    return true;
}

static bool read_object(struct reader *r, struct vkmt_core *n, uint32_t idx)
{
    struct vkmt_obj *o = &n->objs[idx];

    o->type = (uint8_t)get(r, 1);
    o->gen = (uint16_t)get(r, 2);
    o->prev = o->next = o->sib_prev = o->sib_next = NIL;
    if (r->bad) {
        return false;
    }
    if (o->type > OBJ_RESOURCE) {
        return reject(r, "object %u: type %u", idx, o->type);
    }
    if (o->gen > (o->type == OBJ_FREE ? GEN_RETIRED : HANDLE_GEN_MASK)) {
        return reject(r, "object %u: generation %u", idx, o->gen);
    }
    if (o->type == OBJ_FREE) {
        return true;
    }
    o->queue = (uint16_t)get(r, 2);
    o->parent = get32(r);
    if (r->bad) {
        return false;
    }
    if (o->queue >= n->cfg.num_queues || n->queues[o->queue].state == VKMT_QSTATE_FREE) {
        return reject(r, "object %u: owned by queue %u, which is not claimed", idx, o->queue);
    }
    switch (o->type) {
    case OBJ_DEVICE:
        o->u.dev.first_child = NIL;
        return o->parent == NIL || reject(r, "device %u: a parent %u", idx, o->parent);
    case OBJ_PAGING_QUEUE:
        o->u.pq.fence = get(r, 8);
        o->u.pq.sync = get32(r);
        return !r->bad;
    case OBJ_ALLOCATION:
        return read_alloc(r, n, idx);
    case OBJ_RESOURCE:
        o->u.res.count = get32(r);
        if (o->u.res.count == 0 || o->u.res.count > VKMT_MAX_BATCH ||
            o->u.res.count > (r->len - r->pos) / 4) {
            return reject(r, "resource %u: %u members", idx, o->u.res.count);
        }
        o->u.res.members = malloc((size_t)o->u.res.count * sizeof(uint32_t));
        if (!o->u.res.members) {
            o->u.res.count = 0;
            r->nomem = true;
            return reject(r, "out of memory");
        }
        for (uint32_t m = 0; m < o->u.res.count; m++) {
            o->u.res.members[m] = get32(r);
        }
        return !r->bad;
    }
    return true; /* a sync object: its paging queue is checked against it */
}

/* Index @i names a live object of type @type in @n (NIL never does). */
static bool is_a(const struct vkmt_core *n, uint32_t i, uint8_t type)
{
    return i != NIL && i < n->nobjs && n->objs[i].type == type;
}

/* Who points at whom: parents, a paging queue and its sync object, a
 * resource and its members. */
static bool check_links(struct reader *r, struct vkmt_core *n)
{
    uint64_t grouped = 0, members = 0;
    bool ok = true;

    for (uint32_t i = 1; ok && i < n->nobjs; i++) {
        struct vkmt_obj *o = &n->objs[i];
        uint8_t parent_type = o->type == OBJ_SYNC ? OBJ_PAGING_QUEUE : OBJ_DEVICE;

        if (o->type == OBJ_FREE || o->type == OBJ_DEVICE) {
            continue;
        }
        if (!is_a(n, o->parent, parent_type) || n->objs[o->parent].queue != o->queue) {
            ok = reject(r, "object %u: parent %u is not a %s of its queue", i, o->parent,
                        parent_type == OBJ_DEVICE ? "device" : "paging queue");
        } else if (o->type == OBJ_SYNC && n->objs[o->parent].u.pq.sync != i) {
            ok = reject(r, "sync object %u: its paging queue %u names another", i, o->parent);
        } else if (o->type == OBJ_PAGING_QUEUE &&
                   (!is_a(n, o->u.pq.sync, OBJ_SYNC) || n->objs[o->u.pq.sync].parent != i)) {
            ok = reject(r, "paging queue %u: sync object %u is not its own", i, o->u.pq.sync);
        } else if (o->type == OBJ_ALLOCATION && o->u.alloc.group != NIL) {
            grouped++;
            if (!is_a(n, o->u.alloc.group, OBJ_RESOURCE) ||
                n->objs[o->u.alloc.group].parent != o->parent) {
                ok = reject(r, "allocation %u: group %u is not a resource of its device", i,
                            o->u.alloc.group);
            }
        } else if (o->type == OBJ_RESOURCE) {
            for (uint32_t m = 0; ok && m < o->u.res.count; m++) {
                uint32_t a = o->u.res.members[m];

                if (!is_a(n, a, OBJ_ALLOCATION) || n->objs[a].u.alloc.group != i ||
                    (n->objs[a].flags & OBJF_MARK)) {
                    ok = reject(r, "resource %u: member %u is not its own, or listed twice", i, a);
                } else {
                    n->objs[a].flags |= OBJF_MARK;
                    members++;
                }
            }
        }
    }
    for (uint32_t i = 1; i < n->nobjs; i++) {
        n->objs[i].flags &= (uint8_t)~OBJF_MARK;
    }
    /* Every member names its resource once, so equal counts leave no
     * grouped allocation out of its resource's list. */
    return ok &&
           (grouped == members || reject(r, "%llu allocations in resources, %llu members listed",
                                         (unsigned long long)grouped, (unsigned long long)members));
}

/* One list's length, bounded by the table. */
static bool get_count(struct reader *r, const struct vkmt_core *n, uint32_t *count)
{
    *count = get32(r);
    return !r->bad && (*count < n->nobjs || reject(r, "a list of %u objects", *count));
}

/* Takes the next list entry and marks it; it must be unmarked and pass @ok. */
static uint32_t get_member(struct reader *r, struct vkmt_core *n,
                           bool (*ok)(const struct vkmt_core *, uint32_t, uint32_t), uint32_t owner,
                           const char *list)
{
    uint32_t i = get32(r);

    if (r->bad) {
        return NIL;
    }
    if (i == NIL || i >= n->nobjs || (n->objs[i].flags & OBJF_MARK) || !ok(n, i, owner)) {
        reject(r, "%s %u: entry %u does not belong, or is listed twice", list, owner, i);
        return NIL;
    }
    n->objs[i].flags |= OBJF_MARK;
    return i;
}

static bool device_of_queue(const struct vkmt_core *n, uint32_t i, uint32_t q)
{
    return n->objs[i].type == OBJ_DEVICE && n->objs[i].queue == q;
}

static bool child_of_device(const struct vkmt_core *n, uint32_t i, uint32_t dev)
{
    uint8_t t = n->objs[i].type;

    return (t == OBJ_PAGING_QUEUE || t == OBJ_ALLOCATION || t == OBJ_RESOURCE) &&
           n->objs[i].parent == dev;
}

static bool offered_in_class(const struct vkmt_core *n, uint32_t i, uint32_t c)
{
    const struct vkmt_obj *o = &n->objs[i];

    return o->type == OBJ_ALLOCATION && o->state == ALLOC_OFFERED && evict_class(o->prio) == c;
}

static bool free_slot(const struct vkmt_core *n, uint32_t i, uint32_t unused)
{
    (void)unused;
    return n->objs[i].type == OBJ_FREE && n->objs[i].gen != GEN_RETIRED;
}

/* A sibling list, linked in the order read. */
static bool read_sib_list(struct reader *r, struct vkmt_core *n, uint32_t *head,
                          bool (*ok)(const struct vkmt_core *, uint32_t, uint32_t), uint32_t owner,
                          const char *list)
{
    uint32_t count, tail = NIL;

    if (!get_count(r, n, &count)) {
        return false;
    }
    for (uint32_t k = 0; k < count; k++) {
        uint32_t i = get_member(r, n, ok, owner, list);

        if (i == NIL) {
            return false;
        }
        n->objs[i].sib_prev = tail;
        if (tail == NIL) {
            *head = i;
        } else {
            n->objs[tail].sib_next = i;
        }
        tail = i;
    }
    return true;
}

/* The objects that @want says belong on some list of this kind are all on one. */
static bool all_marked(struct reader *r, struct vkmt_core *n, bool (*want)(const struct vkmt_obj *),
                       const char *what)
{
    bool ok = true;

    for (uint32_t i = 1; i < n->nobjs; i++) {
        if (ok && want(&n->objs[i]) && !(n->objs[i].flags & OBJF_MARK)) {
            ok = reject(r, "object %u is on no %s", i, what);
        }
        n->objs[i].flags &= (uint8_t)~OBJF_MARK;
    }
    return ok;
}

static bool on_owner_list(const struct vkmt_obj *o)
{
    return o->type != OBJ_FREE && o->type != OBJ_SYNC;
}

static bool is_offered(const struct vkmt_obj *o)
{
    return o->type == OBJ_ALLOCATION && o->state == ALLOC_OFFERED;
}

static bool is_reusable(const struct vkmt_obj *o)
{
    return o->type == OBJ_FREE && o->gen != GEN_RETIRED;
}

static bool read_lists(struct reader *r, struct vkmt_core *n)
{
    uint32_t count;

    for (uint32_t q = 0; q < n->cfg.num_queues; q++) {
        if (!read_sib_list(r, n, &n->queues[q].first_device, device_of_queue, q, "queue")) {
            return false;
        }
    }
    for (uint32_t d = 1; d < n->nobjs; d++) {
        if (n->objs[d].type == OBJ_DEVICE &&
            !read_sib_list(r, n, &n->objs[d].u.dev.first_child, child_of_device, d, "device")) {
            return false;
        }
    }
    if (!all_marked(r, n, on_owner_list, "owner's list")) {
        return false;
    }
    memset(&n->stats.offered_bytes_by_prio, 0, sizeof(n->stats.offered_bytes_by_prio));
    n->offered_bytes = 0;
    for (unsigned c = 0; c < EVICT_CLASSES; c++) {
        n->offered[c].head = n->offered[c].tail = NIL;
        if (!get_count(r, n, &count)) {
            return false;
        }
        for (uint32_t k = 0; k < count; k++) {
            uint32_t i = get_member(r, n, offered_in_class, c, "offered FIFO");

            if (i == NIL) {
                return false;
            }
            evict_offer(n, i); /* appends, counting its bytes */
        }
    }
    if (!all_marked(r, n, is_offered, "offered FIFO of its priority")) {
        return false;
    }
    n->free_list.head = n->free_list.tail = NIL;
    if (!get_count(r, n, &count)) {
        return false;
    }
    for (uint32_t k = 0; k < count; k++) {
        uint32_t i = get_member(r, n, free_slot, 0, "free list");

        if (i == NIL) {
            return false;
        }
        free_list_append(n, i);
    }
    return all_marked(r, n, is_reusable, "free list");
}

/* What the state implies, recomputed: live counts, committed bytes. */
static bool derive(struct reader *r, struct vkmt_core *n)
{
    n->live_objs = n->retired_objs = 0;
    n->committed = 0;
    n->demoted_bytes = 0;
    n->stats.devices = n->stats.allocations = n->stats.resources = 0;
    for (uint32_t i = 1; i < n->nobjs; i++) {
        const struct vkmt_obj *o = &n->objs[i];

        if (o->type == OBJ_FREE) {
            n->retired_objs += o->gen == GEN_RETIRED;
            continue;
        }
        n->live_objs++;
        n->stats.devices += o->type == OBJ_DEVICE;
        n->stats.resources += o->type == OBJ_RESOURCE;
        if (o->type == OBJ_ALLOCATION) {
            n->stats.allocations++;
            if (state_info[o->state].committed) {
                n->committed += alloc_bytes(o);
                n->queues[o->queue].committed += alloc_bytes(o);
            }
            if (state_info[o->state].demoted) {
                n->demoted_bytes += alloc_bytes(o);
                n->queues[o->queue].demoted += alloc_bytes(o);
            }
        }
    }
    if (n->live_objs > n->max_objects) {
        return reject(r, "%u live objects, more than max-objects %u", n->live_objs, n->max_objects);
    }
    return true;
}

static bool read_all(struct reader *r, struct vkmt_core *n)
{
    uint32_t nobjs;

    if (!check_header(r, n) || !read_device(r, n) || !read_faults(r, n) || !read_stats(r, n)) {
        return false;
    }
    for (uint32_t q = 0; q < n->cfg.num_queues; q++) {
        if (!read_queue(r, n, q)) {
            return false;
        }
    }
    nobjs = get32(r);
    /* Every slot takes at least 3 bytes: a count the rest cannot hold is
     * refused before the table is allocated. */
    if (r->bad || nobjs == 0 || nobjs > OBJ_INDEX_MAX + 1 || nobjs - 1 > (r->len - r->pos) / 3) {
        return reject(r, "%u object slots", nobjs);
    }
    n->cap = nobjs < 64 ? 64 : nobjs;
    n->objs = calloc(n->cap, sizeof(*n->objs));
    if (!n->objs) {
        r->nomem = true;
        return reject(r, "out of memory");
    }
    n->nobjs = nobjs;
    for (uint32_t i = 1; i < nobjs; i++) {
        if (!read_object(r, n, i)) {
            return false;
        }
    }
    if (!check_links(r, n) || !read_lists(r, n) || !derive(r, n)) {
        return false;
    }
    return r->pos == r->len || reject(r, "%zu bytes after the end", r->len - r->pos);
}

/* Frees what a state owns: its table (resource member lists) and aperture maps. */
static void free_state(struct vkmt_core *n)
{
    for (uint32_t i = 1; n->objs && i < n->cap; i++) {
        if (n->objs[i].type == OBJ_RESOURCE) {
            free(n->objs[i].u.res.members);
        }
    }
    obj_table_fini(n);
    aperture_fini(&n->ap);
    aperture_fini(&n->nl);
}

int vkmt_core_snapshot_load(struct vkmt_core *core, const void *buf, size_t len, char *why,
                            size_t why_len)
{
    struct reader r = { .buf = buf, .len = buf ? len : 0, .why = why, .why_len = why_len };
    const struct vkmt_backend_ops *bops = core->backend->ops;
    struct vkmt_core n = *core; /* the new state, built aside */

    if (why_len) {
        why[0] = '\0';
    }
    /* Such a backend holds content the snapshot does not carry. */
    if (bops->commit || bops->lock || bops->unlock) {
        if (why_len) {
            snprintf(why, why_len, "the %s backend keeps content outside the aperture", bops->name);
        }
        return -ENOTSUP;
    }
    n.objs = NULL;
    n.nobjs = n.cap = 0;
    n.budgeted = 0;
    memset(n.queues, 0, sizeof(n.queues));
    memset(&n.nl, 0, sizeof(n.nl));
    if (aperture_init(&n.ap, core->ap.npages) < 0 ||
        (core->nl_base && aperture_init(&n.nl, core->nl.npages) < 0)) {
        aperture_fini(&n.ap);
        return -ENOMEM;
    }
    if (!read_all(&r, &n)) {
        free_state(&n);
        return r.nomem ? -ENOMEM : -EINVAL;
    }
    free_state(core);
    *core = n;
    return 0;
}

void vkmt_core_get_faults(const struct vkmt_core *core, bool *removed, bool *deaf,
                          struct vkmt_backend_faults *backend)
{
    *removed = core->removed;
    *deaf = core->deaf;
    *backend = core->faults;
}
