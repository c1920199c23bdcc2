/* SPDX-License-Identifier: MIT */
/*
 * test_core: commands as a whole: batches (all or nothing, up to the largest
 * size), resources, paging queues and their fences, the memory query, and
 * malformed commands, each with its exact status.
 */
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"
#include "vkmt_bad_cmds.h"

/* ---- batches ---- */

static void batches_are_all_or_nothing(void)
{
    uint32_t dev, h[5], bad[3], r[5];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 5, PAGE, h), VKMT_ST_SUCCESS);
    bad[0] = h[0];
    bad[1] = h[1];
    bad[2] = h[1] ^ 0x40000000u;
    CHECK_EQ(offer(dev, bad, 3, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    bad[2] = h[0]; /* duplicate */
    CHECK_EQ(offer(dev, bad, 3, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_SUCCESS);                     /* nothing was offered */
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER); /* locked */
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_SUCCESS);
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h + 1, 2, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[2], NULL), VKMT_ST_SUCCESS); /* h[2] was not offered */
    CHECK_EQ(unlock(dev, h[2]), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    /* A reclaim with one stranger changes nothing: h[0] stays discarded. */
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], 0x12345678u }, 2, r), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], h[0] }, 2, r), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim(dev, h, 5, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[2], VKMT_RECLAIM_OK);
    /* Destroy with one bad handle destroys nothing. */
    CHECK_EQ(destroy_allocs(dev, (uint32_t[]){ h[3], h[4], h[4] }, 3), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[3], NULL), VKMT_ST_SUCCESS);
    teardown();
}

/* A bad element spoils its batch in any position, the last one included:
 * each of three positions gets an offered, then a locked, allocation. */
static void a_bad_element_in_any_position_spoils_the_batch(void)
{
    uint32_t dev, h[4], r[3];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[3], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    for (int pos = 0; pos < 3; pos++) {
        uint32_t batch[3];

        for (int i = 0, j = 0; i < 3; i++) {
            batch[i] = i == pos ? h[3] : h[j++];
        }
        CHECK_EQ(offer(dev, batch, 3, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
        CHECK_EQ(lock(dev, h[pos], NULL), VKMT_ST_SUCCESS);
        CHECK_EQ(offer(dev, h, 3, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
        CHECK_EQ(unlock(dev, h[pos]), VKMT_ST_SUCCESS);
    }
    for (int i = 0; i < 3; i++) { /* nothing was offered */
        CHECK_EQ(lock(dev, h[i], NULL), VKMT_ST_SUCCESS);
        CHECK_EQ(unlock(dev, h[i]), VKMT_ST_SUCCESS);
    }
    /* Reclaim and destroy with a stranger last change nothing either. */
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(1), PAGE); /* h[0] */
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], h[1], 0x12345678u }, 3, r),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER); /* still discarded */
    CHECK_EQ(lock(dev, h[1], NULL), VKMT_ST_INVALID_PARAMETER); /* still offered */
    CHECK_EQ(destroy_allocs(dev, (uint32_t[]){ h[2], h[1], 0x12345678u }, 3),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[2], NULL), VKMT_ST_SUCCESS);
    teardown();
}

/* PROTOCOL.md 8: a resource's result is the worst of its members', whichever
 * member it is: NOT_COMMITTED > DISCARDED > OK. */
static void a_resource_reports_its_worst_member(void)
{
    uint32_t dev, h[3], r[1], res32;
    uint64_t res;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create_on(&F.d, dev, 3, PAGE, h, VKMT_SQE_F_CREATE_RESOURCE, &res), VKMT_ST_SUCCESS);
    res32 = (uint32_t)res;
    /* Only the last member is lost. */
    CHECK_EQ(offer(dev, &h[2], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(1), PAGE);
    CHECK_EQ(F.discard_order[0], h[2]);
    CHECK_EQ(reclaim_ex(dev, &res32, 1, r, VKMT_SQE_F_RESOURCES, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    /* The middle member decommitted, the last discarded: NOT_COMMITTED. */
    CHECK_EQ(offer_ex(dev, &h[1], 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[2], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(2 * PAGE), 2 * PAGE);
    CHECK_EQ(reclaim_ex(dev, &res32, 1, r, VKMT_SQE_F_RESOURCES, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    teardown();
}

/*
 * The array rule (PROTOCOL.md 6.1) decides on its own: each command below
 * names only live, offerable allocations wherever the device would read
 * them, so nothing but the framing rule can refuse it.
 */
static void framing_refuses_otherwise_valid_commands(void)
{
    static uint32_t h[VKMT_MAX_BATCH + 1];
    const uint32_t n = VKMT_MAX_BATCH + 1;
    struct vkmt_stats s;
    uint32_t dev;

    setup(64 * MIB, 64 * MIB);
    dev = new_device();
    CHECK_EQ(create(dev, VKMT_MAX_BATCH, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, &h[VKMT_MAX_BATCH]), VKMT_ST_SUCCESS);
    memcpy(staging(0), h, sizeof(h));
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                    .handle = dev,
                                    .count = n,
                                    .payload_len = n * 4,
                                    .arg0 = VKMT_PRIO_LOW },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    /* A handle at offset 2, read only if misaligned offsets were allowed. */
    memcpy(staging(0) + 2, &h[0], 4);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                    .handle = dev,
                                    .count = 1,
                                    .payload_off = 2,
                                    .payload_len = 4,
                                    .arg0 = VKMT_PRIO_LOW },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    /* Two handles straddling the end of staging: the second lies in the
     * next queue's (unclaimed) header. */
    memcpy(staging(0) + VKMT_STAGING_SIZE - 4, &h[0], 4);
    memcpy(qbase(1), &h[1], 4);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                    .handle = dev,
                                    .count = 2,
                                    .payload_off = VKMT_STAGING_SIZE - 4,
                                    .payload_len = 8,
                                    .arg0 = VKMT_PRIO_LOW },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    memset(qbase(1), 0, 4);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.offers, 0);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_SUCCESS); /* never offered */
    teardown();
}

static void batch_sizes(void)
{
    static uint32_t h[VKMT_MAX_BATCH], r[VKMT_MAX_BATCH];
    const uint32_t sizes[] = { 1, 2, 64, VKMT_MAX_BATCH };

    setup(64 * MIB, 64 * MIB);
    for (unsigned s = 0; s < 4; s++) {
        uint32_t n = sizes[s], dev = new_device();
        int ok = 1;

        CHECK_EQ(create(dev, n, PAGE, h), VKMT_ST_SUCCESS);
        {
            uint32_t *after = (uint32_t *)(staging(0) + ((n * 4 + 63) & ~63u) + n * 4);

            CHECK_EQ(offer(dev, h, n, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
            CHECK_EQ(trim((uint64_t)(n / 2) * PAGE), (uint64_t)(n / 2) * PAGE);
            memset(r, 0xff, sizeof(r));
            *after = 0xcafebabe; /* the word after the result array */
            CHECK_EQ(reclaim(dev, h, n, r), VKMT_ST_SUCCESS);
            for (uint32_t i = 0; i < n; i++) {
                ok &= r[i] == (i < n / 2 ? VKMT_RECLAIM_DISCARDED : VKMT_RECLAIM_OK);
            }
            CHECK(ok);
            CHECK_EQ(*after, 0xcafebabe);
        }
        CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev }, NULL),
                 VKMT_ST_SUCCESS);
    }
    teardown();
}

/* ---- resources, paging queues, fences ---- */

static void resources_group_their_allocations(void)
{
    uint32_t dev, h[3], r[2], res2h[2];
    uint64_t res, res2;
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create_on(&F.d, dev, 3, PAGE, h, VKMT_SQE_F_CREATE_RESOURCE, &res), VKMT_ST_SUCCESS);
    CHECK_EQ(create_on(&F.d, dev, 2, PAGE, res2h, VKMT_SQE_F_CREATE_RESOURCE, &res2),
             VKMT_ST_SUCCESS);
    CHECK(res != 0 && res2 != 0 && res != res2);
    CHECK_EQ(offer_ex(dev, (uint32_t[]){ (uint32_t)res, (uint32_t)res2 }, 2, VKMT_PRIO_LOW, 0,
                      VKMT_SQE_F_RESOURCES),
             VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[1], NULL), VKMT_ST_INVALID_PARAMETER); /* member offered */
    CHECK_EQ(trim(1), PAGE); /* the oldest member of the first resource */
    CHECK_EQ(reclaim_ex(dev, (uint32_t[]){ (uint32_t)res, (uint32_t)res2 }, 2, r,
                        VKMT_SQE_F_RESOURCES, NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED); /* worst of its members */
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    /* Members go with their resource, not one by one. */
    CHECK_EQ(destroy_allocs(dev, &h[0], 1), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                    .handle = dev,
                                    .arg0 = (uint32_t)res },
                 NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[2], NULL), VKMT_ST_INVALID_PARAMETER);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.resources, 1);
    CHECK_EQ(s.allocations, 2);
    teardown();
}

static void paging_queue_fence_counts_reclaims(void)
{
    uint32_t dev, pq, sync, h[1];
    struct vkmt_cqe c;
    uint64_t fence = 0;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE,
                                    .handle = dev,
                                    .arg0 = (uint32_t)-1 },
                 &c),
             VKMT_ST_SUCCESS);
    pq = (uint32_t)c.value0;
    sync = (uint32_t)c.value1;
    CHECK(pq && sync && pq != sync);
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev, .arg0 = 2 },
            NULL),
        VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK_EQ(reclaim_ex(pq, h, 1, NULL, VKMT_SQE_F_PAGING_QUEUE, &fence), VKMT_ST_SUCCESS);
        CHECK_EQ(fence, i);
    }
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_FENCE, .handle = sync }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 3);
    /* A device handle is not a paging queue, nor the other way round. */
    CHECK_EQ(reclaim_ex(dev, h, 1, NULL, VKMT_SQE_F_PAGING_QUEUE, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim_ex(pq, h, 1, NULL, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev }, NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_FENCE, .handle = sync }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    teardown();
}

static void query_memory_reports_budget_and_usage(void)
{
    uint32_t dev, h[2];
    struct vkmt_cqe c;
    struct drv other;

    setup(MIB, 64 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 3 * PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = VKMT_SEGMENT_LOCAL }, &c),
        VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 64 * PAGE);
    CHECK_EQ(c.value1, 6 * PAGE);
    other = claim();
    CHECK_EQ(run_on(&other, (struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value1, 0); /* usage is per queue, as per process on Windows */
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = VKMT_SEGMENT_NON_LOCAL },
            &c),
        VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 0);
    teardown();
}

/* ---- hostile input ---- */

/* tests/vkmt_bad_cmds.h, shared with the qtest, plus a trim without the
 * feature (the qtest's driver negotiates it). */
static void malformed_commands_get_precise_statuses(void)
{
    struct vkmt_bad_cmd cases[VKMT_BAD_CMDS_MAX + 1];
    struct vkmt_bad_env env;
    struct vkmt_stats before, after;
    struct vkmt_cqe c;
    struct drv other;
    unsigned n;

    setup_full(4, MIB, 0, VKMT_F_RESOURCES); /* no GUEST_TRIM */
    env.dev = new_device();
    CHECK_EQ(create(env.dev, 1, PAGE, &env.alloc), VKMT_ST_SUCCESS);
    CHECK_EQ(create(env.dev, 1, PAGE, &env.stale), VKMT_ST_SUCCESS);
    CHECK_EQ(destroy_allocs(env.dev, &env.stale, 1), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = env.dev }, &c),
             VKMT_ST_SUCCESS);
    env.pq = (uint32_t)c.value0;
    other = claim();
    env.theirs = new_device_on(&other);
    n = vkmt_bad_cmds(&env, cases);
    cases[n++] = (struct vkmt_bad_cmd){ "trim not negotiated",
                                        { .opcode = VKMT_OP_TRIM, .arg64 = 1 },
                                        VKMT_ST_NOT_SUPPORTED };
    vkmt_core_get_stats(F.core, &before);
    memcpy(staging(0), &env.alloc, 4);
    memset(staging(0) + 64, 0, 16); /* a desc of size 0 at offset 64 */
    for (unsigned i = 0; i < n; i++) {
        uint32_t st = run(cases[i].sqe, NULL);

        if (st != cases[i].status) {
            harness_fail(__FILE__, __LINE__, "%s: status 0x%x, want 0x%x", cases[i].what, st,
                         cases[i].status);
        }
    }
    vkmt_core_get_stats(F.core, &after);
    CHECK_EQ(after.command_errors - before.command_errors, n);
    CHECK_EQ(after.offers, before.offers);
    CHECK_EQ(after.allocations, before.allocations);
    /* The queue still works after all that. */
    CHECK_EQ(offer(env.dev, &env.alloc, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    teardown();
}

const struct test core_command_tests[] = {
    TEST(batches_are_all_or_nothing),
    TEST(a_bad_element_in_any_position_spoils_the_batch),
    TEST(a_resource_reports_its_worst_member),
    TEST(framing_refuses_otherwise_valid_commands),
    TEST(batch_sizes),
    TEST(resources_group_their_allocations),
    TEST(paging_queue_fence_counts_reclaims),
    TEST(query_memory_reports_budget_and_usage),
    TEST(malformed_commands_get_precise_statuses),
};
const unsigned core_command_ntests = sizeof(core_command_tests) / sizeof(core_command_tests[0]);
