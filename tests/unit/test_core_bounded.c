/* SPDX-License-Identifier: MIT */
/*
 * test_core: bounded work (vkmt_core_config.work_bound). A doorbell runs
 * commands until the bound is spent and leaves the rest to
 * vkmt_core_continue(); a reset and a queue release tear objects down in
 * bounded steps (VKMT_WORK_PER_OBJECT units an object) while the device
 * answers "not ready"; ops->more_work is asked for exactly when work is
 * left. An unbounded engine (work_bound 0) behaves as before: the other
 * test_core files run on one.
 */
#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"
#include "vkmt_shmem.h"

static unsigned more_calls;
static unsigned destroys;
static unsigned resets;

static void count_more(void *opaque)
{
    (void)opaque;
    more_calls++;
}

static void count_events(const struct vkmt_event *ev)
{
    destroys += ev->type == VKMT_EV_DESTROY;
    resets += ev->type == VKMT_EV_RESET;
}

static struct vkmt_core_ops bounded_ops;

/* setup() with four queues, a 16 MiB aperture and a work bound of @bound. */
static void setup_bounded(uint32_t bound)
{
    struct vkmt_core_config cfg = { .num_queues = 4,
                                    .features = VKMT_F_KNOWN,
                                    .work_bound = bound };

    memset(&F, 0, sizeof(F));
    F.queues = 4;
    F.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(4));
    CHECK(F.ctrl != NULL);
    CHECK_EQ(vkmt_backend_mem_create(16 * MIB, -1, NULL, &F.be), 0);
    bounded_ops = fake_ops;
    bounded_ops.more_work = count_more;
    CHECK_EQ(vkmt_core_create(&cfg, F.be, F.ctrl, &bounded_ops, NULL, &F.core), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    F.hook = count_events;
    more_calls = destroys = resets = 0;
}

static uint32_t sq_head(uint32_t q)
{
    return vkmt_sh_load_acquire(&hdr(q)->sh_sq_head);
}

/* @n CREATE_DEVICE commands on queue 0, then one doorbell. */
static void post_devices(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        post(&F.d, &(struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE });
    }
    wr(VKMT_REG_DOORBELL(F.d.q), F.d.sq_tail);
}

/* @n one-page allocations on a new device of queue 0, 16 per command. */
static void populate(uint32_t n)
{
    uint32_t dev = new_device();

    for (uint32_t done = 0; done < n; done += 16) {
        CHECK_EQ(create(dev, n - done < 16 ? n - done : 16, PAGE, NULL), VKMT_ST_SUCCESS);
    }
}

static void a_doorbell_stops_at_the_bound_and_continue_resumes(void)
{
    setup_bounded(8);
    post_devices(20);
    CHECK_EQ(sq_head(0), 8);
    CHECK_EQ(more_calls, 1);
    CHECK(vkmt_core_continue(F.core));
    CHECK_EQ(sq_head(0), 16);
    CHECK_EQ(more_calls, 2);
    CHECK(!vkmt_core_continue(F.core));
    CHECK_EQ(sq_head(0), 20);
    CHECK_EQ(more_calls, 2); /* nothing left: not asked again */
    for (int i = 0; i < 20; i++) {
        struct vkmt_cqe c;

        CHECK(reap(&F.d, &c));
        CHECK_EQ(c.status, VKMT_ST_SUCCESS);
    }
    teardown();
}

/* A command costs 1 + its elements; the first command of a call always runs. */
static void a_batch_costs_its_elements(void)
{
    struct vkmt_alloc_desc *desc;
    uint32_t dev;

    setup_bounded(16);
    desc = (struct vkmt_alloc_desc *)staging(0);
    dev = new_device();
    for (int i = 0; i < 16; i++) {
        desc[i] = (struct vkmt_alloc_desc){ .size = PAGE };
    }
    post(&F.d, &(struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                   .handle = dev,
                                   .count = 16,
                                   .payload_len = 16 * sizeof(*desc),
                                   .result_off = 1024,
                                   .result_len = 16 * 4 });
    post_devices(1);
    CHECK_EQ(sq_head(0), 2); /* new_device's command and the batch of 17 units */
    CHECK(!vkmt_core_continue(F.core));
    CHECK_EQ(sq_head(0), 3);
    teardown();
}

static void a_reset_tears_down_in_steps(void)
{
    struct vkmt_stats st;
    uint32_t epoch, steps = 0;

    setup_bounded(64 * VKMT_WORK_PER_OBJECT);
    populate(1000);
    epoch = rd(VKMT_REG(removal_epoch));
    wr(VKMT_REG(status), 0);
    CHECK(destroys <= 64);
    CHECK_EQ(more_calls, 1);
    /* At once: a new epoch, the queue FREE, and a device that is not ready. */
    CHECK_EQ(rd(VKMT_REG(removal_epoch)), epoch + 1);
    CHECK_EQ(vkmt_sh_load(&hdr(0)->sh_state), VKMT_QSTATE_FREE);
    CHECK_EQ(rd(VKMT_REG(status)), VKMT_STATUS_DEVICE_NEEDS_RESET);
    handshake(VKMT_F_KNOWN); /* ignored until the reset is done */
    CHECK_EQ(rd(VKMT_REG(status)), VKMT_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    wr(VKMT_REG(status), 0); /* a second reset while one runs changes nothing */
    CHECK_EQ(rd(VKMT_REG(removal_epoch)), epoch + 1);
    CHECK_EQ(resets, 0);
    while (vkmt_core_continue(F.core)) {
        unsigned before = destroys;

        steps++;
        CHECK(steps < 100);
        CHECK(destroys - before <= 64);
        if (steps >= 100) {
            break;
        }
    }
    CHECK(steps >= 1000 / 64 - 1);
    CHECK_EQ(destroys, 1000);
    CHECK_EQ(resets, 1);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.allocations, 0);
    CHECK_EQ(st.devices, 0);
    CHECK_EQ(st.committed_bytes, 0);
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    handshake(VKMT_F_KNOWN);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 0);
    teardown();
}

static void a_released_queue_drains_before_it_is_claimed_again(void)
{
    struct vkmt_stats st;

    setup_bounded(64 * VKMT_WORK_PER_OBJECT);
    populate(500);
    wr(VKMT_REG(queue_release), 0);
    CHECK_EQ(vkmt_sh_load(&hdr(0)->sh_state), VKMT_QSTATE_FREE);
    CHECK(destroys <= 64);
    /* Still draining: the next claim skips it. */
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 1);
    wr(VKMT_REG(queue_release), 0); /* not claimed any more */
    CHECK_EQ(F.guest_errors, 1);
    while (vkmt_core_continue(F.core)) {
    }
    CHECK_EQ(destroys, 500);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.allocations, 0);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 0);
    teardown();
}

/* A queue on the backlog that is released or reset leaves the backlog. */
static void release_drops_the_backlog(void)
{
    setup_bounded(4);
    post_devices(10);
    CHECK_EQ(sq_head(0), 4);
    wr(VKMT_REG(queue_release), 0);
    while (vkmt_core_continue(F.core)) { /* the four devices go, one a step */
    }
    CHECK_EQ(sq_head(0), 4);
    teardown();
}

/* A backend error during the teardown is cleared with the rest, at its end. */
static void a_reset_clears_a_failure_met_on_the_way(void)
{
    struct vkmt_backend_ops broken;
    const struct vkmt_backend_ops *real;

    setup_bounded(64 * VKMT_WORK_PER_OBJECT);
    populate(300);
    real = F.be->ops;
    broken = *real;
    broken.discard = failing_discard;
    F.be->ops = &broken;
    wr(VKMT_REG(status), 0); /* the first step's destroys fail */
    F.be->ops = real;
    CHECK_EQ(rd(VKMT_REG(status)), VKMT_STATUS_DEVICE_NEEDS_RESET);
    while (vkmt_core_continue(F.core)) {
    }
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    teardown();
}

/* Without a bound every call finishes its work and never asks for more. */
static void unbounded_finishes_at_once(void)
{
    setup_bounded(0);
    populate(300);
    post_devices(40);
    CHECK_EQ(sq_head(0), F.d.sq_tail);
    wr(VKMT_REG(status), 0);
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    CHECK_EQ(destroys, 300);
    CHECK_EQ(more_calls, 0);
    CHECK(!vkmt_core_continue(F.core));
    teardown();
}

const struct test core_bounded_tests[] = {
    TEST(a_doorbell_stops_at_the_bound_and_continue_resumes),
    TEST(a_batch_costs_its_elements),
    TEST(a_reset_tears_down_in_steps),
    TEST(a_released_queue_drains_before_it_is_claimed_again),
    TEST(release_drops_the_backlog),
    TEST(a_reset_clears_a_failure_met_on_the_way),
    TEST(unbounded_finishes_at_once),
};
const unsigned core_bounded_ntests = sizeof(core_bounded_tests) / sizeof(core_bounded_tests[0]);
