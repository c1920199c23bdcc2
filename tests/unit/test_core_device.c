/* SPDX-License-Identifier: MIT */
/*
 * test_core: the device as a whole: reset, removal, completion interrupts,
 * and what its configuration allows (negotiated features, the object limit).
 */
#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static void reset_tears_down_and_bumps_the_epoch(void)
{
    uint32_t dev, h[2];
    uint32_t epoch;
    struct vkmt_stats s;

    setup(16 * MIB, 0);
    epoch = rd(VKMT_REG(removal_epoch));
    dev = new_device();
    CHECK_EQ(create(dev, 2, MIB, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], MIB, 1);
    wr(VKMT_REG(status), 0);
    CHECK_EQ(rd(VKMT_REG(removal_epoch)), epoch + 1);
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_FREE);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations, 0);
    CHECK_EQ(s.committed_bytes, 0);
    CHECK_EQ(memfd_bytes(), 0);
    /* A fresh bring-up works and old handles are gone. */
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    teardown();
}

static void removed_device_answers_device_removed(void)
{
    setup(MIB, 0);
    vkmt_core_set_removed(F.core, true);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL),
             VKMT_ST_DEVICE_REMOVED);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = 0x77 }, NULL), VKMT_ST_DEVICE_REMOVED);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    vkmt_core_set_removed(F.core, false);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL), VKMT_ST_SUCCESS);
    teardown();
}

static void completion_interrupts(void)
{
    struct drv other;

    setup(MIB, 0);
    other = claim();
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(F.irqs, 0);
    CHECK_EQ(run_on(&other,
                    (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE, .flags = VKMT_SQE_F_IRQ },
                    NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(F.irqs, 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 1u << other.q);
    wr(VKMT_REG(isr_lo), 1u << other.q);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 0);
    teardown();
}

static void guest_trim_needs_the_feature(void)
{
    uint32_t dev, h[2];
    struct vkmt_cqe c;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM, .arg64 = 1 }, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM }, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, PAGE); /* 0 means everything that is left */
    teardown();
}

static void object_limit_is_enforced(void)
{
    struct vkmt_core_config cfg = { .num_queues = 1, .max_objects = 5, .features = VKMT_F_KNOWN };
    uint32_t dev, h[4];

    memset(&F, 0, sizeof(F));
    F.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(1));
    CHECK_EQ(vkmt_backend_mem_create(MIB, -1, NULL, &F.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, F.be, F.ctrl, &fake_ops, NULL, &F.core), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    dev = new_device();
    CHECK_EQ(create(dev, 5, PAGE, NULL), VKMT_ST_NO_MEMORY);
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL), VKMT_ST_NO_MEMORY);
    teardown();
}

static void resources_need_the_feature(void)
{
    uint32_t dev, h[1];

    setup_full(2, MIB, 0, VKMT_F_GUEST_TRIM);
    dev = new_device();
    /* A flag of a feature not negotiated breaks the field rule (PROTOCOL.md 6.1). */
    CHECK_EQ(create_on(&F.d, dev, 1, PAGE, h, VKMT_SQE_F_CREATE_RESOURCE, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer_ex(dev, h, 1, VKMT_PRIO_LOW, 0, VKMT_SQE_F_RESOURCES),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    teardown();
}

/* Faults on purpose: poisoned completions still run their commands; a deaf
 * device completes nothing until it hears again, then runs what waited. */
static void faults_poison_completions_and_deafen(void)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct vkmt_stats s;
    struct vkmt_cqe c;

    setup(16 * MIB, 0);
    vkmt_core_set_faults(F.core, 1, false);
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK(reap(&F.d, &c));
    CHECK(c.cid != F.d.cid);
    CHECK_EQ(c.status, 0xc0dedbadu);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.devices, 1);   /* the command ran */
    CHECK(new_device() != 0); /* one only: the next completes as it should */
    vkmt_core_set_faults(F.core, 0, true);
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK(!reap(&F.d, &c));
    vkmt_core_set_faults(F.core, 0, false);
    CHECK(reap(&F.d, &c));
    CHECK_EQ(c.cid, F.d.cid);
    CHECK_EQ(c.status, VKMT_ST_SUCCESS);
    teardown();
}

const struct test core_device_tests[] = {
    TEST(faults_poison_completions_and_deafen),
    TEST(reset_tears_down_and_bumps_the_epoch),
    TEST(removed_device_answers_device_removed),
    TEST(completion_interrupts),
    TEST(guest_trim_needs_the_feature),
    TEST(object_limit_is_enforced),
    TEST(resources_need_the_feature),
};
const unsigned core_device_ntests = sizeof(core_device_tests) / sizeof(core_device_tests[0]);
