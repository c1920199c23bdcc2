/* SPDX-License-Identifier: MIT */
/*
 * Decoding an input's operations (fuzz_input.h) into what a hostile guest
 * driver and a host do: handle operands from selector bytes, commands laid
 * out in staging and posted to the SQ, deliberately broken fields, doorbells,
 * host controls, allocation content written through the aperture, and
 * requests to rewrite shared memory under the engine (fz_engine.c does it).
 */
#include <stdio.h>
#include <string.h>

#include "fz.h"

/* Staging bytes per SQ slot for structured commands: payload, then results. */
#define REGION 0xf40u

/* ---- Input ---- */

static uint8_t g8(void)
{
    fail_pos = G.pos;
    return G.pos < G.len ? G.in[G.pos++] : 0;
}

static uint32_t g32(void)
{
    uint32_t v = g8();

    v |= (uint32_t)g8() << 8;
    v |= (uint32_t)g8() << 16;
    return v | (uint32_t)g8() << 24;
}

/* ---- Decoding operations ---- */

static const uint8_t other_kind[K_COUNT][4] = {
    [K_DEVICE] = { K_PQ, K_SYNC, K_ALLOC, K_RES }, [K_PQ] = { K_DEVICE, K_SYNC, K_ALLOC, K_RES },
    [K_SYNC] = { K_PQ, K_DEVICE, K_ALLOC, K_RES }, [K_ALLOC] = { K_RES, K_DEVICE, K_PQ, K_SYNC },
    [K_RES] = { K_ALLOC, K_DEVICE, K_PQ, K_SYNC },
};

static struct u32_vec matching; /* what live_matching found */

/* Collects in `matching` the live objects of @kind on queue @q (on another
 * queue when !@same_q), of device @dev for allocations and resources (any
 * device when NONE), oldest first; returns how many. */
static uint32_t live_matching(uint8_t kind, uint32_t q, bool same_q, uint32_t dev)
{
    /* Both lists are in creation order; walk the shorter. */
    const struct u32_vec *from = pool[kind].n < live.n ? &pool[kind] : &live;

    matching.n = 0;
    for (uint32_t i = 0; i < from->n; i++) {
        const struct mobj *o = obj(from->v[i]);

        if (o->live && o->kind == kind && (o->queue == q) == same_q &&
            (dev == NONE || (kind != K_ALLOC && kind != K_RES) || o->parent == dev)) {
            PUSH(matching, from->v[i]);
        }
    }
    return matching.n;
}

/* A handle operand (fuzz_input.h describes the selector byte). */
static uint32_t pick(uint8_t kind, uint32_t q, uint32_t dev)
{
    uint8_t s = g8();
    uint32_t n, i;

    if (s == FZ_SEL_LITERAL) {
        return g32();
    }
    if (s == FZ_SEL_ZERO) {
        return 0;
    }
    if (s >= FZ_SEL_STALE) {
        for (uint32_t k = pool[kind].n; k-- > 0;) {
            if (!obj(pool[kind].v[k])->live) {
                return obj(pool[kind].v[k])->handle;
            }
        }
        return 0;
    }
    if (s >= FZ_SEL_FOREIGN || s >= FZ_SEL_OTHER_KIND) {
        uint8_t k = s >= FZ_SEL_FOREIGN ? kind : other_kind[kind][s & 3];

        n = live_matching(k, q, s < FZ_SEL_FOREIGN, NONE);
        i = n ? matching.v[s % n] : NONE;
        return i == NONE ? 0 : obj(i)->handle;
    }
    if (s >= FZ_SEL_ANY) {
        n = pool[kind].n;
        return n ? obj(pool[kind].v[(s - FZ_SEL_ANY) % n])->handle : 0;
    }
    n = live_matching(kind, q, true, dev);
    i = n ? matching.v[s % n] : NONE;
    return i == NONE ? 0 : obj(i)->handle;
}

static uint32_t pick_device(uint32_t q, uint32_t *dev)
{
    uint32_t h = pick(K_DEVICE, q, NONE);

    *dev = lookup(h, K_DEVICE, q);
    return h;
}

/* A paging queue handle of queue @q; *@dev gets its device (NONE if none). */
static uint32_t pick_paging_queue(uint32_t q, uint32_t *dev)
{
    uint32_t h = pick(K_PQ, q, NONE), p = lookup(h, K_PQ, q);

    *dev = p == NONE ? NONE : obj(p)->parent;
    return h;
}

static void corrupt(struct vkmt_sqe *s, uint8_t c)
{
    switch (c % 14) {
    case 0:
        s->reserved0 = (uint8_t)(c | 1);
        break;
    case 1:
        s->reserved1[c % 16] = 1;
        break;
    case 2:
        s->flags |= (uint16_t)(1u << (1 + c % 15));
        break;
    case 3:
        s->handle ^= 1u + c;
        break;
    case 4:
        s->count++;
        break;
    case 5:
        s->count = 0;
        break;
    case 6:
        s->count = VKMT_MAX_BATCH + 1;
        break;
    case 7:
        s->payload_off += 2;
        break;
    case 8:
        s->payload_off = STAGING - 4;
        break;
    case 9:
        s->result_len += 4;
        break;
    case 10:
        s->result_off = STAGING;
        break;
    case 11:
        s->arg0 ^= 0x80000000u;
        break;
    case 12:
        s->arg1 |= 0x10u;
        break;
    default:
        s->arg64 = 1ull << (c % 64);
        break;
    }
}

/* Lay a command's payload and result area out in its slot's staging region. */
static void place(uint32_t q, struct vkmt_sqe *s, const void *payload, uint32_t plen, uint32_t rlen)
{
    uint32_t region = (G.drv[q].sq_tail & (DEPTH - 1)) * REGION;

    if (plen) {
        memcpy(staging(q) + region, payload, plen);
        s->payload_off = region;
        s->payload_len = plen;
    }
    if (rlen) {
        s->result_off = region + ((plen + 63u) & ~63u);
        s->result_len = rlen;
        memset(staging(q) + s->result_off, 0xa5, rlen);
    }
}

static void ring(uint32_t q, uint8_t mod)
{
    struct drv *d = &G.drv[q];

    if (mod & FZ_MOD_KICK) {
        vkmt_sh_store_release(&hdr(q)->sh_sq_tail, d->sq_tail);
        doorbell(q, d->sq_tail, true);
    } else {
        doorbell(q, d->sq_tail, false);
    }
    if (G.deferred && !(mod & FZ_MOD_PENDING)) {
        process(q);
    }
}

static void submit(uint32_t q, struct vkmt_sqe *s, uint8_t mod)
{
    struct drv *d = &G.drv[q];

    memcpy(qbase(q) + VKMT_QUEUE_SQ_OFF + (d->sq_tail & (DEPTH - 1)) * sizeof(*s), s, sizeof(*s));
    d->sq_tail++;
    if (!(mod & FZ_MOD_BATCH)) {
        ring(q, mod);
    }
}

static void command_op(uint8_t op)
{
    static uint8_t pl[FZ_MAX_ELEMS * sizeof(struct vkmt_alloc_desc)];
    uint32_t q = g8() % G.nq, plen = 0, rlen = 0, n, dev = NONE;
    uint8_t mod = g8(), c = (mod & FZ_MOD_CORRUPT) == FZ_MOD_CORRUPT ? g8() : 0, f;
    struct vkmt_sqe s = { .cid = G.drv[q].cid + 1 };
    bool stats_shape = false;

    G.drv[q].cid++;
    if (mod & FZ_MOD_IRQ) {
        s.flags = VKMT_SQE_F_IRQ;
    }
    switch (op) {
    case FZ_OP_CREATE_DEVICE:
        s.opcode = VKMT_OP_CREATE_DEVICE;
        break;
    case FZ_OP_DESTROY_DEVICE:
        s.opcode = VKMT_OP_DESTROY_DEVICE;
        s.handle = pick(K_DEVICE, q, NONE);
        break;
    case FZ_OP_CREATE_PQ:
        s.opcode = VKMT_OP_CREATE_PAGING_QUEUE;
        s.handle = pick(K_DEVICE, q, NONE);
        f = g8();
        s.arg0 = f < 0xf0 ? (uint32_t)((int32_t)(f % 5) - 2) : (uint32_t)f << 24;
        break;
    case FZ_OP_DESTROY_PQ:
        s.opcode = VKMT_OP_DESTROY_PAGING_QUEUE;
        s.handle = pick(K_PQ, q, NONE);
        break;
    case FZ_OP_CREATE_ALLOCS:
        s.opcode = VKMT_OP_CREATE_ALLOCATIONS;
        s.handle = pick_device(q, &dev);
        s.flags |= g8() & 1 ? VKMT_SQE_F_CREATE_RESOURCE : 0;
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t b = g8();
            struct vkmt_alloc_desc desc = fz_desc(b, G.aperture, M.budget);

            memcpy(pl + i * sizeof(desc), &desc, sizeof(desc));
        }
        s.count = n;
        plen = n * (uint32_t)sizeof(struct vkmt_alloc_desc);
        rlen = n * 4;
        break;
    case FZ_OP_DESTROY_ALLOCS:
        s.opcode = VKMT_OP_DESTROY_ALLOCATIONS;
        s.handle = pick_device(q, &dev);
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(K_ALLOC, q, dev);

            memcpy(pl + i * 4, &h, 4);
        }
        s.count = n;
        plen = n * 4;
        break;
    case FZ_OP_DESTROY_RESOURCE:
        s.opcode = VKMT_OP_DESTROY_ALLOCATIONS;
        s.handle = pick_device(q, &dev);
        s.arg0 = pick(K_RES, q, dev);
        break;
    case FZ_OP_LOCK:
    case FZ_OP_UNLOCK:
        s.opcode = op == FZ_OP_LOCK ? VKMT_OP_LOCK : VKMT_OP_UNLOCK;
        s.handle = pick_device(q, &dev);
        s.arg0 = pick(K_ALLOC, q, dev);
        break;
    case FZ_OP_OFFER: {
        uint8_t p, o;

        s.opcode = VKMT_OP_OFFER;
        s.handle = pick_device(q, &dev);
        f = g8();
        p = g8();
        o = g8();
        s.flags |= f & 1 ? VKMT_SQE_F_RESOURCES : 0;
        s.arg0 = p < 0xf0 ? 1u + p % 4 : p & 0x0fu;
        s.arg1 = (o & 3u) | (o & 0x80 ? 4u : 0);
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(f & 1 ? K_RES : K_ALLOC, q, dev);

            memcpy(pl + i * 4, &h, 4);
        }
        s.count = n;
        plen = n * 4;
        break;
    }
    case FZ_OP_RECLAIM:
        s.opcode = VKMT_OP_RECLAIM;
        f = g8();
        s.flags |= (f & FZ_RF_RESOURCES ? VKMT_SQE_F_RESOURCES : 0) |
                   (f & FZ_RF_PAGING_QUEUE ? VKMT_SQE_F_PAGING_QUEUE : 0) |
                   (f & FZ_RF_WRITE_RESULTS ? VKMT_SQE_F_WRITE_RESULTS : 0) |
                   (f & FZ_RF_RECOMMIT ? VKMT_SQE_F_RECOMMIT : 0);
        if (f & FZ_RF_PAGING_QUEUE) {
            s.handle = pick_paging_queue(q, &dev);
        } else {
            s.handle = pick_device(q, &dev);
        }
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(f & FZ_RF_RESOURCES ? K_RES : K_ALLOC, q, dev);

            memcpy(pl + i * 4, &h, 4);
        }
        s.count = n;
        plen = n * 4;
        rlen = f & FZ_RF_WRITE_RESULTS ? n * 4 : 0;
        break;
    case FZ_OP_QUERY_MEMORY:
        s.opcode = VKMT_OP_QUERY_MEMORY;
        f = g8();
        s.arg0 = f < 0xf0 ? f % 2u : f;
        s.arg1 = f & 0x80 ? (f >> 4) % 3u : 0; /* 1: reservation, 2: invalid */
        break;
    case FZ_OP_RESIDENCY: {
        static const uint8_t ops[5] = { VKMT_OP_MAKE_RESIDENT, VKMT_OP_EVICT, VKMT_OP_SET_PRIORITY,
                                        VKMT_OP_GET_PRIORITY, VKMT_OP_QUERY_RESIDENCY };
        uint8_t kind = g8();

        s.opcode = ops[kind % 5];
        if (s.opcode == VKMT_OP_MAKE_RESIDENT) {
            s.handle = pick_paging_queue(q, &dev);
        } else {
            s.handle = pick_device(q, &dev);
        }
        f = g8();
        if (s.opcode <= VKMT_OP_EVICT) {
            s.arg0 = f & 0x0fu; /* flags, reserved bits included */
        }
        if ((kind & 0x80) && s.opcode >= VKMT_OP_SET_PRIORITY) {
            s.arg0 = pick(K_RES, q, dev);
            s.arg1 = s.opcode == VKMT_OP_SET_PRIORITY ? (uint32_t)f << 24 : 0;
            break;
        }
        n = 1 + g8() % FZ_MAX_ELEMS;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = pick(K_ALLOC, q, dev), prio = (uint32_t)g8() << 24;

            if (s.opcode == VKMT_OP_SET_PRIORITY) {
                memcpy(pl + i * 8, &h, 4);
                memcpy(pl + i * 8 + 4, &prio, 4);
            } else {
                memcpy(pl + i * 4, &h, 4);
            }
        }
        s.count = n;
        plen = n * (s.opcode == VKMT_OP_SET_PRIORITY ? 8 : 4);
        rlen = s.opcode >= VKMT_OP_GET_PRIORITY ? n * 4 : 0;
        break;
    }
    case FZ_OP_RESERVE:
        s.opcode = VKMT_OP_CHANGE_RESERVATION;
        s.arg0 = g8() % 3u;
        s.arg64 = (uint64_t)g8() * FZ_BYTE_UNIT;
        break;
    case FZ_OP_QUERY_FENCE:
        s.opcode = VKMT_OP_QUERY_FENCE;
        s.handle = pick(K_SYNC, q, NONE);
        break;
    case FZ_OP_TRIM_CMD:
        s.opcode = VKMT_OP_TRIM;
        s.arg64 = (uint64_t)g8() * FZ_BYTE_UNIT;
        break;
    case FZ_OP_QUERY_STATS:
        s.opcode = VKMT_OP_QUERY_STATS;
        rlen = sizeof(struct vkmt_wire_stats);
        stats_shape = true;
        break;
    default: /* FZ_OP_RAW_SQE */
        for (uint32_t i = 0; i < sizeof(s); i++) {
            ((uint8_t *)&s)[i] = g8();
        }
        break;
    }
    place(q, &s, pl, plen, rlen);
    if (stats_shape) {
        f = g8();
        if (f >= 0xf0) {
            s.result_off += f & 1 ? 4 : 0;
            s.result_len = f & 2 ? 64 : s.result_len;
            s.result_off = f & 4 ? STAGING - 64 : s.result_off;
        }
    }
    if (c) {
        corrupt(&s, c);
    }
    if (G.trace) {
        fprintf(stderr, "post q%u opcode 0x%02x handle 0x%x count %u arg0 0x%x%s\n", q, s.opcode,
                s.handle, s.count, s.arg0, mod & FZ_MOD_BATCH ? " (batched)" : "");
    }
    submit(q, &s, mod);
}

/* Many small creations behind one doorbell: grows the handle table past its
 * first allocation and fills the ring in one pass. */
static void bulk_op(void)
{
    uint32_t q = g8() % G.nq, n, dev = NONE, count;
    uint8_t mod = g8(), what = g8();
    struct vkmt_sqe s = { .opcode =
                              what & 1 ? VKMT_OP_CREATE_PAGING_QUEUE : VKMT_OP_CREATE_DEVICE };

    n = 1 + g8() % DEPTH;
    if (what & 1) {
        count = live_matching(K_DEVICE, q, true, NONE);
        dev = count ? matching.v[count - 1] : NONE;
        s.handle = dev == NONE ? 0 : obj(dev)->handle;
    }
    for (uint32_t i = 0; i < n; i++) {
        s.cid = ++G.drv[q].cid;
        submit(q, &s, i + 1 < n ? FZ_MOD_BATCH : mod & (uint8_t)~FZ_MOD_BATCH);
    }
}

static void stamp_write(uint32_t i)
{
    struct mobj *o = obj(i);
    uint8_t *base = G.ap + (size_t)o->page * PAGE;
    uint64_t v = (++G.stamps * 0x9e3779b97f4a7c15ull) | 1u;

    for (uint32_t p = 0; p < o->npages; p++) {
        memcpy(base + (size_t)p * PAGE, &v, sizeof(v));
        G.dirty[o->page + p] = 1;
    }
    if (o->size >= 8) {
        memcpy(base + o->size - 8, &v, sizeof(v));
    }
    o->stamp = v;
    pages_sync(i);
}

void handshake(uint32_t features)
{
    reg_write(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE);
    reg_write(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    reg_read(VKMT_REG(device_features));
    reg_write(VKMT_REG(driver_features), features);
    reg_write(VKMT_REG(status),
              VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_FEATURES_OK);
    reg_read(VKMT_REG(status));
    reg_write(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER |
                                    VKMT_STATUS_FEATURES_OK | VKMT_STATUS_DRIVER_OK);
}

void one_op(void)
{
    uint8_t op = g8() % FZ_OP_COUNT, a, b;
    uint32_t q, n, i;

    fail_op = ++G.nops;
    live_compact();
    if (G.trace) {
        fprintf(stderr, "op %u: %u\n", G.nops, op);
    }
    switch (op) {
    case FZ_OP_HANDSHAKE:
        a = g8();
        handshake(a < 0x80 ? a & 3u : a < 0xc0 ? a & VKMT_F_KNOWN : a);
        break;
    case FZ_OP_CLAIM:
        reg_read(VKMT_REG(queue_claim));
        break;
    case FZ_OP_RELEASE:
        reg_write(VKMT_REG(queue_release), g8());
        break;
    case FZ_OP_REAP:
        a = g8();
        b = g8();
        reg_write(VKMT_REG(queue_reap),
                  VKMT_REAP(a, M.q[a % G.nq].claim_seq + (uint32_t)(int32_t)(int8_t)b));
        break;
    case FZ_OP_REG_WRITE:
        a = g8();
        reg_write(fz_reg_off(a), g32());
        break;
    case FZ_OP_REG_READ:
        reg_read(fz_reg_off(g8()));
        break;
    case FZ_OP_STATUS:
        reg_write(VKMT_REG(status), g8());
        break;
    case FZ_OP_DOORBELL:
        a = g8() & 3;
        b = g8();
        doorbell(a, (a < G.nq ? G.drv[a].sq_tail : 0) + (uint32_t)(int32_t)(int8_t)b, false);
        break;
    case FZ_OP_KICK:
        a = g8() & 3;
        b = g8();
        if (a < G.nq && b != 0x80) {
            vkmt_sh_store_release(&hdr(a)->sh_sq_tail,
                                  G.drv[a].sq_tail + (uint32_t)(int32_t)(int8_t)b);
        }
        doorbell(a, a < G.nq ? vkmt_sh_load(&hdr(a)->sh_sq_tail) : 0, true);
        break;
    case FZ_OP_PROCESS:
        process(g8() & 3);
        break;
    case FZ_OP_CQ_HEAD:
        q = g8() % G.nq;
        b = g8();
        vkmt_sh_store_release(&hdr(q)->sh_cq_head, G.drv[q].cq_head + (uint32_t)(int32_t)(int8_t)b);
        break;
    case FZ_OP_TRIM:
        a = g8();
        host_trim(a == 0xff ? UINT64_MAX : (uint64_t)a * FZ_BYTE_UNIT);
        break;
    case FZ_OP_BUDGET:
        host_budget((uint64_t)g8() * FZ_BYTE_UNIT);
        break;
    case FZ_OP_RESET:
        host_reset();
        break;
    case FZ_OP_REMOVE:
        M.removed = g8() & 1;
        vkmt_core_set_removed(G.core, M.removed);
        break;
    case FZ_OP_FILL:
        a = g8();
        n = 0;
        for (i = 0; i < live.n; i++) {
            const struct mobj *o = obj(live.v[i]);

            n += o->live && o->kind == K_ALLOC && o->locks;
        }
        for (i = 0, n = n ? a % n + 1 : 0; n && i < live.n; i++) {
            const struct mobj *o = obj(live.v[i]);

            if (o->live && o->kind == K_ALLOC && o->locks && --n == 0) {
                stamp_write(live.v[i]);
            }
        }
        break;
    case FZ_OP_SCRIBBLE:
        a = g8();
        b = g8();
        G.rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)b << 32 | a) ^ G.nops;
        if (a == 0) {
            scribble(b % G.nq, false);
        } else {
            G.scribbles = a;
        }
        break;
    case FZ_OP_BULK:
        bulk_op();
        break;
    case FZ_OP_EVENTS:
        a = g8();
        read_events(a % G.nq, g8());
        break;
    case FZ_OP_HOST_EVENT:
        a = g8();
        host_event(a, g8());
        break;
    default:
        command_op(op);
        break;
    }
}
