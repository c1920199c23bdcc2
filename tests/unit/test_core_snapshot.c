/* SPDX-License-Identifier: MIT */
/*
 * test_core: snapshots (snapshot.c). A snapshot loaded into a second engine
 * over copies of control memory and the aperture (what a migration moves
 * as RAM) gives back the same snapshot, the same statistics and content,
 * and the same answers to every later command, a command stopped by the
 * work bound included. A snapshot is untrusted: each field the import
 * checks is broken on its own and refused with its reason, every
 * truncation is refused, random corruption never gets past the checks into
 * an inconsistent engine, and a refused snapshot leaves the engine as it
 * was.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

/* The layout's fixed offsets (snapshot.c): header, device, faults, stats,
 * queues. */
#define DEV 24u
#define FAULTS (DEV + 70u)
#define STATS (FAULTS + 17u + VKMT_FAULT_KINDS * 16u)
#define QUEUES (STATS + 41u * 8u)
#define QUEUE_BYTES 73u
#define QUEUE_BYTES_V2 57u /* without budget and discarded bytes */
#define OBJECTS(nq) (QUEUES + (nq)*QUEUE_BYTES)

struct blob {
    uint8_t *p;
    size_t len;
};

static struct blob save(void)
{
    struct blob b;

    b.len = vkmt_core_snapshot_save(F.core, NULL, 0);
    b.p = malloc(b.len + 1); /* one spare byte, for a test of trailing bytes */
    CHECK(b.p != NULL);
    CHECK_EQ(vkmt_core_snapshot_save(F.core, b.p, b.len), b.len);
    return b;
}

static bool same(struct blob a, struct blob b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* A second engine, as the destination of a migration builds it. */
struct engine {
    struct vkmt_core *core;
    struct vkmt_backend *be;
    uint8_t *ctrl;
};

static struct engine twin(const struct vkmt_core_ops *ops, uint32_t work_bound)
{
    struct vkmt_core_config cfg = { .num_queues = F.queues,
                                    .features = VKMT_F_KNOWN,
                                    .work_bound = work_bound };
    struct engine e;

    e.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(F.queues));
    CHECK(e.ctrl != NULL);
    CHECK_EQ(vkmt_backend_mem_create(F.be->size, -1, NULL, &e.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, e.be, e.ctrl, ops, NULL, &e.core), 0);
    /* The RAM a migration moves before the device state. */
    memcpy(e.ctrl, F.ctrl, vkmt_core_ctrl_size(F.queues));
    memcpy(e.be->base, F.be->base, F.be->size);
    return e;
}

/* Make @e the fixture's engine and the fixture's engine @e. */
static void swap(struct engine *e)
{
    struct engine f = { F.core, F.be, F.ctrl };

    F.core = e->core;
    F.be = e->be;
    F.ctrl = e->ctrl;
    *e = f;
}

static void engine_free(struct engine *e)
{
    vkmt_core_destroy(e->core);
    vkmt_backend_destroy(e->be);
    free(e->ctrl);
}

static int load(struct blob b, char *why, size_t why_len)
{
    return vkmt_core_snapshot_load(F.core, b.p, b.len, why, why_len);
}

/*
 * The scenario of the refusal tests, with known slot numbers: device 1 on
 * queue 0; allocations 2 (resident, filled), 3 (offered LOW) and 4
 * (offered with AllowDecommit, then decommitted by a trim); resource 5 of
 * allocations 6 and 7; paging queue 8 with sync object 9; 10 destroyed
 * (a free slot). Queue 1 is claimed and empty.
 */
static uint32_t h[3], dev;

static void scenario(void)
{
    struct vkmt_cqe c;
    uint32_t one;
    uint64_t res;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], PAGE, 7);
    CHECK_EQ(offer_ex(dev, &h[2], 1, VKMT_PRIO_NORMAL, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), PAGE);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(create_on(&F.d, dev, 2, PAGE, NULL, VKMT_SQE_F_CREATE_RESOURCE, &res),
             VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, &one), VKMT_ST_SUCCESS);
    CHECK_EQ(destroy_allocs(dev, &one, 1), VKMT_ST_SUCCESS);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 1);
}

static void snapshot_round_trip_keeps_everything(void)
{
    struct blob before, after;
    struct engine e;
    struct vkmt_stats s1, s2;
    struct drv d0;
    uint32_t r1[3], r2[3], n1[2], n2[2];
    char why[160];

    scenario();
    before = save();
    e = twin(&fake_ops, 0);
    swap(&e);
    CHECK_EQ(load(before, why, sizeof(why)), 0);
    after = save();
    CHECK(same(before, after));
    vkmt_core_get_stats(e.core, &s1);
    vkmt_core_get_stats(F.core, &s2);
    CHECK(memcmp(&s1, &s2, sizeof(s1)) == 0);
    CHECK_EQ(rd(VKMT_REG(removal_epoch)), vkmt_core_reg_read(e.core, VKMT_REG(removal_epoch)));
    CHECK_EQ(content(dev, h[0], PAGE, 7), 1);
    swap(&e);
    CHECK_EQ(content(dev, h[0], PAGE, 7), 1);

    /* Both engines answer what follows alike: reclaims, new handles (the
     * free slot's next generation), and eviction order. */
    d0 = F.d;
    CHECK_EQ(reclaim(dev, h, 3, r1), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 2, PAGE, n1), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, n1, 2, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), PAGE);
    vkmt_core_get_stats(F.core, &s1);
    swap(&e);
    F.d = d0;
    CHECK_EQ(reclaim(dev, h, 3, r2), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 2, PAGE, n2), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, n2, 2, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), PAGE);
    vkmt_core_get_stats(F.core, &s2);
    CHECK(memcmp(r1, r2, sizeof(r1)) == 0);
    CHECK_EQ(r1[1], VKMT_RECLAIM_OK);
    CHECK_EQ(r1[2], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK(memcmp(n1, n2, sizeof(n1)) == 0);
    CHECK(memcmp(&s1, &s2, sizeof(s1)) == 0);
    engine_free(&e);
    free(before.p);
    free(after.p);
    teardown();
}

static unsigned more_calls;

static void count_more(void *opaque)
{
    (void)opaque;
    more_calls++;
}

/* A DESTROY_DEVICE stopped by the work bound completes on the engine the
 * snapshot is loaded into, and only there. */
static void snapshot_resumes_a_command_stopped_by_the_work_bound(void)
{
    struct vkmt_core_config cfg = { .num_queues = 2, .features = VKMT_F_KNOWN, .work_bound = 64 };
    struct vkmt_core_ops ops = fake_ops;
    struct vkmt_cqe c;
    struct vkmt_stats s;
    struct engine e;
    struct blob b;
    uint32_t d;

    ops.more_work = count_more;
    setup_config(&cfg, 4 * MIB, &ops, VKMT_F_KNOWN);
    d = new_device();
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(create(d, 16, PAGE, NULL), VKMT_ST_SUCCESS);
    }
    post(&F.d, &(struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = d });
    wr(VKMT_REG_DOORBELL(F.d.q), F.d.sq_tail);
    CHECK(!reap(&F.d, &c));
    b = save();
    e = twin(&ops, 64);
    swap(&e);
    CHECK_EQ(load(b, NULL, 0), 0);
    while (vkmt_core_continue(F.core)) {
    }
    CHECK(reap(&F.d, &c));
    CHECK_EQ(c.status, VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations + s.devices + s.committed_bytes, 0);
    /* The source, stopped, holds what the first step left. */
    vkmt_core_get_stats(e.core, &s);
    CHECK(s.allocations > 0);
    engine_free(&e);
    free(b.p);
    teardown();
}

/* Offset of slot @idx's record in snapshot @b (the scenario's 4 queues). */
static size_t slot(struct blob b, uint32_t idx)
{
    size_t off = OBJECTS(4) + 4;

    for (uint32_t i = 1; i < idx && off < b.len; i++) {
        uint8_t type = b.p[off];

        off += type == 0 ? 3 : 9;
        off += type == 2 ? 12 : type == 4 ? 39 : 0;
        if (type == 5) {
            uint32_t count;

            memcpy(&count, b.p + off, 4);
            off += 4 + 4 * (size_t)count;
        }
    }
    return off;
}

/* A field to break: at byte @off of slot @slot's record (slot 11: of the
 * lists that follow the last slot), or of the blob when @slot is 0. */
struct bad {
    const char *what;
    uint32_t slot;
    size_t off;
    unsigned width;
    uint64_t value;
    const char *reason; /* a part of the message */
};

#define LISTS 11u

static const struct bad bad_fields[] = {
    { "magic", 0, 0, 4, 0, "magic" },
    { "version", 0, 4, 4, 4, "version 4" },
    { "version 1", 0, 4, 4, 1, "version 1" },
    { "queue count", 0, 8, 4, 3, "3 queues" },
    { "aperture pages", 0, 12, 4, 512, "aperture has 512 pages" },
    { "features", 0, 16, 4, 0, "features 0x0" },
    { "non-local pages", 0, 20, 4, 4, "non-local segment has 4 pages" },
    { "status bits", 0, DEV, 4, 0x4f, "never stores" },
    { "DRIVER_OK alone", 0, DEV, 4, VKMT_STATUS_DRIVER_OK, "DRIVER_OK without" },
    { "driver features", 0, DEV + 4, 4, 0x80, "exceed" },
    { "isr of queue 5", 0, DEV + 16, 4, 1u << 5, "beyond 4" },
    { "backlog of queue 4", 0, DEV + 49, 8, 1u << 4, "beyond 4" },
    { "removed", 0, DEV + 24, 1, 2, "removed is 2" },
    { "resetting while up", 0, DEV + 26, 1, 1, "reset in progress" },
    { "scrub position", 0, DEV + 33, 4, 256, "scrub position 256" },
    { "cursor", 0, DEV + 37, 4, 300, "cursor 300" },
    { "budget", 0, DEV + 41, 8, 2 * MIB, "budget" },
    { "non-local cursor", 0, DEV + 65, 4, 1, "non-local cursor 1" },
    { "demote_pending", 0, DEV + 69, 1, 2, "demote_pending is 2" },
    { "evict_stuck", 0, FAULTS, 1, 3, "evict_stuck is 3" },
    { "stall length", 0, FAULTS + 9, 8, VKMT_FAULT_STALL_MAX_NS + 1ull, "stall of" },
    { "discard chance", 0, FAULTS + 17 + 16 + 4, 4, VKMT_FAULT_PPM + 1u, "fault kind 1: chance" },
    { "queue state", 0, QUEUES, 4, 7, "queue 0: state 0x7" },
    { "queue draining", 0, QUEUES, 4, 0x100, "draining mask" },
    { "trim progress", 0, QUEUES + 25, 8, 5, "trim's progress" },
    { "sq tail", 0, QUEUES + 12, 4, 1000, "more than a ring" },
    { "cq tail", 0, QUEUES + 16, 4, 3, "completions for" },
    { "phase", 0, QUEUES + 20, 4, 0, "phase 0" },
    { "reservation", 0, QUEUES + 41, 8, 2 * MIB, "queue 0: reservations 2097152" },
    { "non-local reservation", 0, QUEUES + 49, 8, 1, "queue 0: reservations 0 and 1" },
    { "free queue's reservation", 0, QUEUES + 2 * QUEUE_BYTES + 41, 8, PAGE,
      "queue 2: a released queue with a reservation" },
    { "queue budget", 0, QUEUES + 57, 8, MIB + PAGE, "queue 0: budget 1052672 exceeds" },
    { "free queue's budget", 0, QUEUES + 2 * QUEUE_BYTES + 57, 8, PAGE,
      "queue 2: a budget on a queue no driver holds" },
    { "free queue's ring", 0, QUEUES + 2 * QUEUE_BYTES + 8, 4, 1, "queue 2: a released queue" },
    { "free queue's events", 0, QUEUES + 2 * QUEUE_BYTES + 33, 4, 1, "queue 2: a released queue" },
    { "free queue's lost events", 0, QUEUES + 2 * QUEUE_BYTES + 37, 4, 1,
      "queue 2: a released queue" },
    { "no slots", 0, OBJECTS(4), 4, 0, "0 object slots" },
    { "too many slots", 0, OBJECTS(4), 4, 0xffffffffu, "object slots" },
    { "object type", 1, 0, 1, 9, "object 1: type 9" },
    { "object queue", 1, 3, 2, 2, "queue 2, which is not claimed" },
    { "device parent", 1, 5, 4, 2, "device 1: a parent" },
    { "generation", 2, 1, 2, 512, "object 2: generation 512" },
    { "free slot's generation", 10, 1, 2, 513, "object 10: generation 513" },
    { "parent", 2, 5, 4, 2, "parent 2 is not a device" },
    { "state none", 2, 9, 1, 0, "allocation 2: state 0" },
    { "state past the last", 2, 9, 1, 6, "allocation 2: state 6" },
    { "demoted without a non-local segment", 2, 9, 1, 5, "allocation 2: state 5" },
    { "resident with a priority", 2, 10, 1, 1, "do not fit state resident" },
    { "offered without one", 3, 10, 1, 0, "do not fit state offered" },
    { "transient flag", 2, 11, 1, 1, "flags 0x1" },
    { "texture shape", 2, 12, 4, (1u << 28) | (1u << 14) | 1u, "texture shape" },
    { "group", 2, 16, 4, 1, "group 1 is not a resource" },
    { "overlapping range", 2, 20, 4, 1, "overlap" },
    { "range outside", 2, 20, 4, 256, "outside the aperture" },
    { "decommitted range outside", 4, 20, 4, 256, "outside the aperture" },
    { "size 0", 2, 28, 8, 0, "allocation 2: size 0" },
    { "size past the backend", 2, 28, 8, 2 * MIB, "allocation 2: size 2097152" },
    { "non-local page while resident", 2, 44, 4, 1, "named while not demoted" },
    { "locked offer", 3, 24, 4, 1, "offered with flags 0x0 and 1 locks" },
    { "no members", 5, 9, 4, 0, "resource 5: 0 members" },
    { "member twice", 5, 17, 4, 6, "listed twice" },
    { "member not its own", 5, 17, 4, 2, "member 2" },
    { "paging queue's sync", 8, 17, 4, 2, "sync object 2" },
    { "sync object's parent", 9, 5, 4, 1, "sync object 9 is not its own" },
    /* The lists: queue 0's count and device, queues 1-3 empty, device 1's. */
    { "queue list entry", LISTS, 4, 4, 2, "queue 0: entry 2" },
    { "child list short", LISTS, 20, 4, 0, "" },
    { "child twice", LISTS, 28, 4, 2, "" },
};

static void put_le(uint8_t *p, uint64_t v, unsigned width)
{
    for (unsigned i = 0; i < width; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void snapshot_refuses_each_bad_field(void)
{
    struct blob good, now, b;
    char why[160];

    scenario();
    good = save();
    b.p = malloc(good.len + 1);
    b.len = good.len;
    for (size_t i = 0; i < sizeof(bad_fields) / sizeof(bad_fields[0]); i++) {
        const struct bad *t = &bad_fields[i];
        size_t off = t->slot ? slot(good, t->slot) + t->off : t->off;

        CHECK(off + t->width <= good.len);
        memcpy(b.p, good.p, good.len);
        put_le(b.p + off, t->value, t->width);
        if (load(b, why, sizeof(why)) != -EINVAL || !strstr(why, t->reason)) {
            harness_fail(__FILE__, __LINE__, "%s: \"%s\"", t->what, why);
        }
    }
    /* Bytes after the end. */
    memcpy(b.p, good.p, good.len);
    b.p[good.len] = 0;
    b.len = good.len + 1;
    CHECK_EQ(load(b, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "1 bytes after the end") != NULL);
    /* The free list, last, loses its one slot: a well-formed blob that
     * leaves slot 10 on no list. */
    memcpy(b.p, good.p, good.len);
    b.len = good.len - 4;
    put_le(b.p + b.len - 4, 0, 4);
    CHECK_EQ(load(b, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "object 10 is on no free list") != NULL);
    now = save();
    CHECK(same(good, now));
    free(now.p);
    free(b.p);
    free(good.p);
    teardown();
}

static void snapshot_refuses_every_truncation(void)
{
    struct blob good, now;
    char why[160];

    scenario();
    good = save();
    for (size_t len = 0; len < good.len; len++) {
        struct blob b = { malloc(len ? len : 1), len };

        memcpy(b.p, good.p, len);
        /* Truncated, or a count the rest cannot hold. */
        if (load(b, why, sizeof(why)) != -EINVAL || !why[0]) {
            harness_fail(__FILE__, __LINE__, "%zu bytes: \"%s\"", len, why);
        }
        free(b.p);
    }
    CHECK_EQ(vkmt_core_snapshot_load(F.core, NULL, 0, why, sizeof(why)), -EINVAL);
    now = save();
    CHECK(same(good, now));
    free(now.p);
    free(good.p);
    teardown();
}

/* Random bytes flipped: a refused snapshot changes nothing, and one that
 * loads is consistent: it saves and loads again, and the engine runs. */
static void snapshot_corruption_never_gets_in(void)
{
    struct blob good, b, again, now;
    uint32_t seed = 12345, loaded = 0;

    scenario();
    good = save();
    b.p = malloc(good.len);
    b.len = good.len;
    for (int round = 0; round < 3000; round++) {
        memcpy(b.p, good.p, good.len);
        for (int k = 0; k < 1 + round % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            b.p[(seed >> 8) % b.len] ^= (uint8_t)(1u << (seed >> 28 & 7));
        }
        now = save();
        if (load(b, NULL, 0) == 0) {
            loaded++;
            again = save();
            CHECK_EQ(load(again, NULL, 0), 0);
            vkmt_core_continue(F.core);
            trim(UINT64_MAX);
            free(again.p);
            CHECK_EQ(load(good, NULL, 0), 0);
        } else {
            again = save();
            CHECK(same(now, again));
            free(again.p);
        }
        free(now.p);
    }
    /* Counters and such take any value: some flips load. */
    CHECK(loaded > 0);
    free(b.p);
    free(good.p);
    teardown();
}

static void snapshot_needs_content_in_the_aperture(void)
{
    struct vkmt_backend_ops gpu;
    const struct vkmt_backend_ops *real;
    struct blob b;
    char why[160];

    setup(MIB, 0);
    b = save();
    real = F.be->ops;
    gpu = *real;
    gpu.lock = failing_discard; /* a hook of the same shape: what it does is never reached */
    F.be->ops = &gpu;
    CHECK_EQ(load(b, why, sizeof(why)), -ENOTSUP);
    CHECK(strstr(why, "outside the aperture") != NULL);
    F.be->ops = real;
    CHECK_EQ(load(b, why, sizeof(why)), 0);
    free(b.p);
    teardown();
}

/* Queue budgets and discarded bytes travel, and the budget still binds. */
static void snapshot_carries_queue_budgets(void)
{
    struct vkmt_queue_stats s;
    struct engine e;
    struct blob b;
    uint32_t more;

    scenario();
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, 3 * PAGE), 0);
    b = save();
    e = twin(&fake_ops, 0);
    swap(&e);
    CHECK_EQ(load(b, NULL, 0), 0);
    vkmt_core_get_queue_stats(F.core, 0, &s);
    CHECK_EQ(s.budget, 3 * PAGE);
    CHECK_EQ(s.discarded, 2 * PAGE); /* the scenario's trim, then the budget's discard */
    vkmt_core_get_queue_stats(F.core, 1, &s);
    CHECK_EQ(s.budget, 0);
    CHECK(s.claimed);
    /* Queue 0 holds its 3 pages: a creation finds no room of its own. */
    vkmt_core_get_queue_stats(F.core, 0, &s);
    CHECK_EQ(s.committed, 3 * PAGE);
    CHECK_EQ(create(dev, 1, PAGE, &more), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    engine_free(&e);
    free(b.p);
    teardown();
}

/* A version 2 blob (no queue budgets) loads with every queue budget 0. */
static void snapshot_loads_version_2(void)
{
    struct blob v3, v2, again;
    struct vkmt_queue_stats s;

    scenario();
    v3 = save();
    v2.p = malloc(v3.len);
    CHECK(v2.p != NULL);
    /* Version 3 less each queue's last 16 bytes. */
    memcpy(v2.p, v3.p, QUEUES);
    put_le(v2.p + 4, 2, 4);
    v2.len = QUEUES;
    for (uint32_t q = 0; q < 4; q++) {
        memcpy(v2.p + v2.len, v3.p + QUEUES + q * QUEUE_BYTES, QUEUE_BYTES_V2);
        v2.len += QUEUE_BYTES_V2;
    }
    memcpy(v2.p + v2.len, v3.p + OBJECTS(4), v3.len - OBJECTS(4));
    v2.len += v3.len - OBJECTS(4);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, 3 * PAGE), 0);
    CHECK_EQ(load(v2, NULL, 0), 0);
    vkmt_core_get_queue_stats(F.core, 0, &s);
    CHECK_EQ(s.budget, 0);
    CHECK_EQ(s.discarded, 0);
    /* All else as saved: the discarded bytes were the only non-zero field. */
    put_le(v3.p + QUEUES + 65, 0, 8);
    again = save();
    CHECK(same(v3, again));
    /* A version 2 blob is cut where version 2 ends. */
    v2.len--;
    CHECK_EQ(load(v2, NULL, 0), -EINVAL);
    free(again.p);
    free(v2.p);
    free(v3.p);
    teardown();
}

/* The event rings' private state travels with the rest. */
static void snapshot_carries_event_state(void)
{
    struct blob b;
    struct vkmt_stats s;

    scenario();
    for (int i = 0; i < 3; i++) {
        vkmt_core_periodic_trim(F.core, false);
    }
    CHECK_EQ(hdr(0)->sh_ev_tail, 3);
    b = save();
    CHECK_EQ(load(b, NULL, 0), 0);
    vkmt_core_periodic_trim(F.core, false);
    CHECK_EQ(hdr(0)->sh_ev_tail, 4); /* went on from the tail it carried */
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.events, 8); /* 3 + 1 on queue 0, as many on queue 1 */
    free(b.p);
    teardown();
}

const struct test core_snapshot_tests[] = {
    TEST(snapshot_carries_event_state),
    TEST(snapshot_round_trip_keeps_everything),
    TEST(snapshot_resumes_a_command_stopped_by_the_work_bound),
    TEST(snapshot_refuses_each_bad_field),
    TEST(snapshot_refuses_every_truncation),
    TEST(snapshot_corruption_never_gets_in),
    TEST(snapshot_needs_content_in_the_aperture),
    TEST(snapshot_carries_queue_budgets),
    TEST(snapshot_loads_version_2),
};
const unsigned core_snapshot_ntests = sizeof(core_snapshot_tests) / sizeof(core_snapshot_tests[0]);
