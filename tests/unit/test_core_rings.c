/* SPDX-License-Identifier: MIT */
/*
 * test_core: hostile use of the rings: doorbells out of range, a full
 * completion queue, kicks that take the tail from shared memory, and a guest
 * that rewrites the ring and payload while the device works on its private
 * copy.
 */
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"
#include "vkmt_shmem.h"

static void doorbell_out_of_range_stops_only_that_queue(void)
{
    struct drv other;
    uint32_t dev;

    setup(MIB, 0);
    other = claim();
    wr(VKMT_REG_DOORBELL(0), VKMT_QUEUE_DEPTH + 1);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ERROR);
    CHECK_EQ(hdr(0)->sh_error, VKMT_QERR_DOORBELL_RANGE);
    CHECK_EQ(F.irqs, 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 1);
    wr(VKMT_REG(isr_lo), 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 0);
    wr(VKMT_REG_DOORBELL(0), 1); /* ignored in the error state */
    CHECK_EQ(hdr(0)->sh_sq_head, 0);
    dev = new_device_on(&other);
    CHECK(dev != 0);
    wr(VKMT_REG_DOORBELL(3), 1);     /* a queue nobody claimed */
    wr(VKMT_REG_DOORBELL(63), 1);    /* beyond num_queues */
    wr(VKMT_REG_DOORBELL(0) + 2, 1); /* unaligned */
    CHECK_EQ(F.guest_errors, 5);
    /* Releasing the broken queue makes it usable again. */
    wr(VKMT_REG(queue_release), 0);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    CHECK(new_device() != 0);
    teardown();
}

static void full_completion_queue_stalls_until_consumed(void)
{
    struct vkmt_cqe c;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };

    setup(MIB, 0);
    for (unsigned i = 0; i < VKMT_QUEUE_DEPTH; i++) {
        post(&F.d, &sqe);
    }
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK_EQ(hdr(0)->sh_sq_head, VKMT_QUEUE_DEPTH);
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK_EQ(hdr(0)->sh_sq_head, VKMT_QUEUE_DEPTH); /* CQ full: waits */
    CHECK(reap(&F.d, &c));
    CHECK_EQ(c.cid, 1);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK_EQ(hdr(0)->sh_sq_head, VKMT_QUEUE_DEPTH + 1);
    for (unsigned i = 2; i <= VKMT_QUEUE_DEPTH + 1; i++) {
        CHECK(reap(&F.d, &c));
        CHECK_EQ(c.cid, i);
        CHECK_EQ(c.status, VKMT_ST_SUCCESS);
    }
    CHECK(!reap(&F.d, &c));
    /* A lying CQ head only stalls this queue. */
    vkmt_sh_store(&hdr(0)->sh_cq_head, F.d.cq_head + 1000);
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK(!reap(&F.d, &c));
    teardown();
}

static void kick_takes_the_tail_from_shared_memory(void)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct vkmt_cqe c;

    setup(MIB, 0);
    post(&F.d, &sqe);
    post(&F.d, &sqe);
    vkmt_sh_store_release(&hdr(0)->sh_sq_tail, F.d.sq_tail);
    vkmt_core_kick(F.core, 0);
    CHECK(reap(&F.d, &c));
    CHECK(reap(&F.d, &c));
    CHECK_EQ(c.cid, 2);
    CHECK_EQ(hdr(0)->sh_sq_head, 2);
    vkmt_core_kick(F.core, 2); /* not claimed */
    CHECK_EQ(F.guest_errors, 1);
    vkmt_sh_store(&hdr(0)->sh_sq_tail, 0x80000000u); /* far past the head */
    vkmt_core_kick(F.core, 0);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ERROR);
    teardown();
}

static uint32_t scribble_q;

static void scribble(const struct vkmt_event *ev)
{
    /* The guest rewrites the ring and the payload while the device works. */
    if (ev->type == VKMT_EV_OFFER) {
        memset(qbase(scribble_q) + VKMT_QUEUE_SQ_OFF, 0xa5, 64 * 64);
        memset(staging(scribble_q), 0x5a, 4096);
    }
}

static void device_acts_on_its_private_copy(void)
{
    uint32_t dev, h[8], r[8];
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 8, PAGE, h), VKMT_ST_SUCCESS);
    scribble_q = 0;
    F.hook = scribble;
    CHECK_EQ(offer(dev, h, 8, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    F.hook = NULL;
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.offers, 8);
    CHECK_EQ(s.offered_bytes_by_prio[vkmt_prio_index(VKMT_PRIO_HIGH)], 8 * PAGE);
    CHECK_EQ(reclaim(dev, h, 8, r), VKMT_ST_SUCCESS);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(r[i], VKMT_RECLAIM_OK);
    }
    teardown();
}

const struct test core_ring_tests[] = {
    TEST(doorbell_out_of_range_stops_only_that_queue),
    TEST(full_completion_queue_stalls_until_consumed),
    TEST(kick_takes_the_tail_from_shared_memory),
    TEST(device_acts_on_its_private_copy),
};
const unsigned core_ring_ntests = sizeof(core_ring_tests) / sizeof(core_ring_tests[0]);
