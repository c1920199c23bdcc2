/* SPDX-License-Identifier: MIT */
/*
 * test_core: the engine's life around the commands: a backend failure that
 * needs a reset, teardown and reaping freeing every object a queue owns, the
 * statistics block a guest queries, and configurations refused at creation.
 */
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static void backend_failure_needs_a_reset(void)
{
    struct vkmt_backend_ops broken;
    const struct vkmt_backend_ops *real;
    uint32_t dev, h[1];

    setup(MIB, 0);
    real = F.be->ops;
    broken = *real;
    broken.discard = failing_discard;
    dev = new_device();
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    F.be->ops = &broken;
    CHECK_EQ(destroy_allocs(dev, h, 1), VKMT_ST_SUCCESS);
    F.be->ops = real;
    CHECK(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL),
             VKMT_ST_DEVICE_REMOVED);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    wr(VKMT_REG(status), 0);
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    teardown();
}

static void teardown_frees_every_owned_object(void)
{
    uint32_t dev[3], h[4];
    uint64_t res;
    struct vkmt_stats s;
    struct vkmt_cqe c;

    setup(4 * MIB, 0);
    for (int i = 0; i < 3; i++) {
        dev[i] = new_device();
        CHECK_EQ(create(dev[i], 4, PAGE, h), VKMT_ST_SUCCESS);
        CHECK_EQ(create_on(&F.d, dev[i], 3, PAGE, NULL, VKMT_SQE_F_CREATE_RESOURCE, &res),
                 VKMT_ST_SUCCESS);
        CHECK_EQ(
            run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev[i] }, &c),
            VKMT_ST_SUCCESS);
        CHECK_EQ(offer(dev[i], h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    }
    /* The middle device goes alone; the others stay whole. */
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev[1] }, NULL),
             VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.devices, 2);
    CHECK_EQ(s.allocations, 14);
    CHECK_EQ(s.resources, 2);
    CHECK_EQ(s.committed_bytes, 14 * PAGE);
    CHECK_EQ(s.offered_bytes, 4 * PAGE);
    CHECK_EQ(trim(UINT64_MAX), 4 * PAGE); /* the offer lists hold no freed slots */
    wr(VKMT_REG(queue_release), 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.devices + s.allocations + s.resources + s.committed_bytes, 0);
    teardown();
}

static void reap_releases_only_the_claim_it_names(void)
{
    uint32_t seq;
    struct vkmt_stats s;

    setup(MIB, 0);
    CHECK_EQ(create(new_device(), 2, PAGE, NULL), VKMT_ST_SUCCESS);
    seq = hdr(0)->sh_claim_seq;
    wr(VKMT_REG(queue_reap), VKMT_REAP(0, seq + 1)); /* a stale claim: ignored */
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ACTIVE);
    wr(VKMT_REG(queue_reap), VKMT_REAP(3, seq)); /* never claimed: ignored */
    CHECK_EQ(F.guest_errors, 0);
    wr(VKMT_REG(queue_reap), VKMT_REAP(0, seq));
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_FREE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations, 0);
    teardown();
}

static void query_stats_fills_one_block(void)
{
    struct vkmt_wire_stats w;
    uint32_t dev;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_STATS,
                                    .result_off = 64,
                                    .result_len = sizeof(w) },
                 NULL),
             VKMT_ST_SUCCESS);
    memcpy(&w, staging(0) + 64, sizeof(w));
    CHECK_EQ(w.allocations, 3);
    CHECK_EQ(w.committed_bytes, 3 * PAGE);
    CHECK_EQ(w.queues_claimed, 1);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_STATS, .result_len = 64 }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_STATS,
                                    .result_off = VKMT_STAGING_SIZE - 64,
                                    .result_len = sizeof(w) },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    teardown();
}

static void bad_configurations_are_refused(void)
{
    struct vkmt_backend *be;
    struct vkmt_core *core;
    uint8_t ctrl[64];
    struct vkmt_core_config cfg = { .num_queues = 0 };

    CHECK_EQ(vkmt_backend_mem_create(MIB, -1, NULL, &be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &core), -22);
    cfg.num_queues = VKMT_MAX_QUEUES + 1;
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &core), -22);
    cfg.num_queues = 1;
    cfg.features = 0x80000000u;
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &core), -22);
    vkmt_backend_destroy(be);
    CHECK_EQ(vkmt_backend_mem_create(MIB + 1, -1, NULL, &be), -22);
    CHECK_EQ(vkmt_backend_mem_create(0, -1, NULL, &be), -22);
}

const struct test core_lifecycle_tests[] = {
    TEST(backend_failure_needs_a_reset),         TEST(teardown_frees_every_owned_object),
    TEST(reap_releases_only_the_claim_it_names), TEST(query_stats_fills_one_block),
    TEST(bad_configurations_are_refused),
};
const unsigned core_lifecycle_ntests =
    sizeof(core_lifecycle_tests) / sizeof(core_lifecycle_tests[0]);
