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
static unsigned discards;
static unsigned resets;
static unsigned trims;

static void count_more(void *opaque)
{
    (void)opaque;
    more_calls++;
}

static void count_events(const struct vkmt_event *ev)
{
    destroys += ev->type == VKMT_EV_DESTROY;
    discards += ev->type == VKMT_EV_DISCARD;
    resets += ev->type == VKMT_EV_RESET;
    trims += ev->type == VKMT_EV_TRIM;
}

static struct vkmt_core_ops bounded_ops;

/* setup() with four queues, a 16 MiB aperture and a work bound of @bound. */
static void setup_bounded(uint32_t bound)
{
    struct vkmt_core_config cfg = { .num_queues = 4,
                                    .features = VKMT_F_KNOWN,
                                    .work_bound = bound };

    bounded_ops = fake_ops;
    bounded_ops.more_work = count_more;
    setup_config(&cfg, 16 * MIB, &bounded_ops, VKMT_F_KNOWN);
    F.hook = count_events;
    more_calls = destroys = discards = resets = trims = 0;
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

/* Objects destroyed and offers discarded: what costs VKMT_WORK_PER_OBJECT. */
static unsigned object_work(void)
{
    return destroys + discards;
}

/*
 * Calls vkmt_core_continue() until no work is left, checking that no call
 * destroys or discards more than @per_step objects; returns the calls made.
 */
static unsigned continue_in_steps(unsigned per_step)
{
    unsigned steps = 0;
    bool more;

    do {
        unsigned before = object_work();

        more = vkmt_core_continue(F.core);
        CHECK(object_work() - before <= per_step);
        steps++;
    } while (more && steps < 1000);
    CHECK(!more);
    return steps;
}

/* @n one-page allocations of @dev, 100 per command, handles into @h. */
static void create_pages(uint32_t dev, uint32_t n, uint32_t *h)
{
    for (uint32_t done = 0; done < n; done += 100) {
        CHECK_EQ(create(dev, n - done < 100 ? n - done : 100, PAGE, h + done), VKMT_ST_SUCCESS);
    }
}

/* setup_bounded() at 64 objects a step, then 1000 one-page allocations of
 * a new device, handles into @h; returns the device. */
static uint32_t setup_with_pages(uint32_t *h)
{
    uint32_t dev;

    setup_bounded(64 * VKMT_WORK_PER_OBJECT);
    dev = new_device();
    create_pages(dev, 1000, h);
    return dev;
}

/* Posts @sqe on queue 0 and rings once: the step the guest's doorbell runs. */
static void ring_one(struct vkmt_sqe sqe)
{
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(F.d.q), F.d.sq_tail);
}

/* The command rung last completes only after steps: none after the doorbell. */
static void check_not_done_yet(unsigned per_step)
{
    struct vkmt_cqe c;

    CHECK(object_work() <= per_step);
    CHECK(!reap(&F.d, &c));
    CHECK_EQ(sq_head(0), F.d.sq_tail - 1);
    CHECK_EQ(more_calls, 1);
}

static uint32_t reap_status(struct vkmt_cqe *c)
{
    if (!reap(&F.d, c)) {
        harness_fail(__FILE__, __LINE__, "no completion");
        return 0xdeadbeef;
    }
    CHECK_EQ(c->cid, F.d.cid);
    return c->status;
}

/* DESTROY_DEVICE costs what the device owns: it goes over several steps. */
static void a_device_is_destroyed_in_steps(void)
{
    static uint32_t h[1000];
    struct vkmt_stats st;
    struct vkmt_cqe c;
    uint32_t dev;

    dev = setup_with_pages(h);
    ring_one((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev });
    check_not_done_yet(64);
    CHECK(continue_in_steps(64) >= 1000 / 64 - 1);
    CHECK_EQ(reap_status(&c), VKMT_ST_SUCCESS);
    CHECK_EQ(destroys, 1000);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.allocations, 0);
    CHECK_EQ(st.devices, 0);
    CHECK_EQ(st.commands, 12); /* counted once, not once a step */
    teardown();
}

/* A guest TRIM discards in steps, then reports every byte it freed. */
static void a_guest_trim_discards_in_steps(void)
{
    static uint32_t h[1000];
    struct vkmt_stats st;
    struct vkmt_cqe c;
    uint32_t dev;

    dev = setup_with_pages(h);
    CHECK_EQ(offer(dev, h, 1000, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    /* Stray stores in every other page past the allocations: 1548 runs the
     * scrub gives back one backend call each, over several steps. */
    for (size_t page = 1000; page < 16 * MIB / PAGE; page += 2) {
        memset(F.be->base + page * PAGE, 0xcd, PAGE);
    }
    more_calls = 0;
    ring_one((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM });
    check_not_done_yet(64);
    continue_in_steps(64);
    CHECK_EQ(reap_status(&c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 1000 * PAGE);
    CHECK_EQ(discards, 1000);
    CHECK_EQ(trims, 1); /* one trim, however many steps */
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.trims, 1);
    CHECK_EQ(st.trimmed_bytes, 1000 * PAGE);
    CHECK_EQ(st.committed_bytes, 0);
    CHECK_EQ(memfd_bytes(), 0);
    teardown();
}

/* A creation that needs room evicts in steps and then succeeds. */
static void pressure_on_create_evicts_in_steps(void)
{
    static uint32_t h[1000];
    struct vkmt_cqe c;
    uint32_t dev;

    dev = setup_with_pages(h);
    vkmt_core_set_budget(F.core, 1000 * PAGE);
    CHECK_EQ(offer(dev, h, 1000, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    more_calls = 0;
    *(struct vkmt_alloc_desc *)staging(0) = (struct vkmt_alloc_desc){ .size = 1000 * PAGE };
    ring_one((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                .handle = dev,
                                .count = 1,
                                .payload_len = sizeof(struct vkmt_alloc_desc),
                                .result_off = 1024,
                                .result_len = 4 });
    check_not_done_yet(64);
    continue_in_steps(64);
    CHECK_EQ(reap_status(&c), VKMT_ST_SUCCESS);
    CHECK_EQ(discards, 1000);
    teardown();
}

/* A reclaim that must recommit evicts others in steps, never its own batch. */
static void pressure_on_reclaim_evicts_in_steps(void)
{
    static uint32_t a[500], b[500], res[500];
    struct vkmt_cqe c;
    uint32_t dev;

    setup_bounded(64 * VKMT_WORK_PER_OBJECT);
    vkmt_core_set_budget(F.core, 1000 * PAGE);
    dev = new_device();
    create_pages(dev, 500, a);
    create_pages(dev, 500, b);
    CHECK_EQ(offer(dev, b, 500, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, a, 500, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(500 * PAGE), 500 * PAGE); /* b, the older offer */
    vkmt_core_set_budget(F.core, 500 * PAGE);
    more_calls = discards = 0;
    memcpy(staging(0), b, sizeof(b));
    ring_one((struct vkmt_sqe){ .opcode = VKMT_OP_RECLAIM,
                                .flags = VKMT_SQE_F_WRITE_RESULTS,
                                .handle = dev,
                                .count = 500,
                                .payload_len = sizeof(b),
                                .result_off = 4096,
                                .result_len = sizeof(res) });
    check_not_done_yet(64);
    continue_in_steps(64);
    CHECK_EQ(reap_status(&c), VKMT_ST_SUCCESS);
    CHECK_EQ(discards, 500); /* all of a */
    memcpy(res, staging(0) + 4096, sizeof(res));
    for (int i = 0; i < 500; i++) {
        CHECK_EQ(res[i], VKMT_RECLAIM_DISCARDED);
    }
    teardown();
}

/* An offer under a lowered budget completes; the excess goes in later steps. */
static void an_offer_over_a_lowered_budget_enforces_in_steps(void)
{
    static uint32_t h[1000];
    struct vkmt_stats st;
    uint32_t dev;

    dev = setup_with_pages(h);
    vkmt_core_set_budget(F.core, PAGE); /* nothing offered: nothing to discard */
    more_calls = 0;
    CHECK_EQ(offer(dev, h, 1000, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK(discards <= 64);
    CHECK_EQ(more_calls, 1);
    continue_in_steps(64);
    CHECK_EQ(discards, 999);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.committed_bytes, PAGE);
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
    TEST(a_device_is_destroyed_in_steps),
    TEST(a_guest_trim_discards_in_steps),
    TEST(pressure_on_create_evicts_in_steps),
    TEST(pressure_on_reclaim_evicts_in_steps),
    TEST(an_offer_over_a_lowered_budget_enforces_in_steps),
};
const unsigned core_bounded_ntests = sizeof(core_bounded_tests) / sizeof(core_bounded_tests[0]);
