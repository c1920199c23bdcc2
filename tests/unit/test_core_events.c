/* SPDX-License-Identifier: MIT */
/*
 * test_core: the event rings (VKMT_F_EVENTS): what the host's trims, budget
 * changes and periodic ticks post to which queue, the interrupt each raises,
 * wrap-around, a full ring losing the newest events, a lying consumer head,
 * and gating by the negotiated feature.
 */
#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"
#include "vkmt_shmem.h"

/* Queues 0 and 1, queue 0 with 4 one-page allocations; returns queue 1. */
static struct drv two_queues_queue_0_holding_4_pages(void)
{
    struct drv other;
    uint32_t dev;

    setup(MIB, 0);
    other = claim();
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, NULL), VKMT_ST_SUCCESS);
    F.irqs = 0;
    return other;
}

static void trim_notify_asks_each_queue_for_what_it_holds(void)
{
    struct drv other = two_queues_queue_0_holding_4_pages();
    struct vkmt_qev e;

    /* Queue 0 holds 4 pages: asked for 2; the other holds nothing: no event. */
    CHECK_EQ(vkmt_core_trim_notify(F.core, 2 * PAGE), 1);
    CHECK_EQ(F.irqs, 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 1u << 0);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(e.value, 2 * PAGE);
    CHECK_EQ(e.reserved, 0);
    CHECK(!next_event(0, &e));
    CHECK(!next_event(other.q, &e));
    /* Asking for more than it holds asks for what it holds. */
    CHECK_EQ(vkmt_core_trim_notify(F.core, UINT64_MAX), 1);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.value, 4 * PAGE);
    teardown();
}

static void budget_change_posts_the_budget_then_the_excess(void)
{
    struct drv other = two_queues_queue_0_holding_4_pages();
    struct vkmt_qev e;

    /* Resident content stays: queue 0 is now a page over. */
    vkmt_core_set_budget(F.core, 3 * PAGE);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_BUDGET_CHANGED);
    CHECK_EQ(e.value, 3 * PAGE);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(e.value, PAGE);
    CHECK(!next_event(0, &e));
    CHECK(next_event(other.q, &e));
    CHECK_EQ(e.type, VKMT_QEV_BUDGET_CHANGED);
    CHECK(!next_event(other.q, &e));
    CHECK_EQ(F.irqs, 3);
    /* A request for less than the excess asks for the excess. */
    CHECK_EQ(vkmt_core_trim_notify(F.core, 1), 1);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(e.value, PAGE);
    /* A host trim that frees nothing leaves queue 0 over: asked again. */
    trim(0);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(e.value, PAGE);
    CHECK(!next_event(other.q, &e));
    teardown();
}

static void periodic_trim_and_its_restart_reach_every_queue(void)
{
    struct drv other;
    struct vkmt_qev e;

    setup(MIB, 0);
    other = claim();
    CHECK_EQ(vkmt_core_periodic_trim(F.core, true), 2);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 2);
    for (uint32_t q = 0; q <= other.q; q++) {
        CHECK(next_event(q, &e));
        CHECK_EQ(e.type, VKMT_QEV_RESTART_PERIODIC_TRIM);
        CHECK_EQ(e.value, 0);
        CHECK(next_event(q, &e));
        CHECK_EQ(e.type, VKMT_QEV_PERIODIC_TRIM);
    }
    teardown();
}

static void events_wrap_around_the_ring(void)
{
    struct vkmt_qev e;
    struct vkmt_stats s;

    setup(MIB, 0);
    for (uint32_t i = 0; i < 3 * VKMT_EVQ_DEPTH + 5; i++) {
        CHECK_EQ(vkmt_core_periodic_trim(F.core, i % 2), 1);
        CHECK(next_event(0, &e));
        CHECK_EQ(e.type, i % 2 ? VKMT_QEV_RESTART_PERIODIC_TRIM : VKMT_QEV_PERIODIC_TRIM);
    }
    CHECK_EQ(hdr(0)->sh_ev_tail, 3 * VKMT_EVQ_DEPTH + 5);
    CHECK_EQ(hdr(0)->sh_ev_lost, 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.events, 3 * VKMT_EVQ_DEPTH + 5);
    teardown();
}

static void full_ring_loses_the_newest_and_counts_it(void)
{
    struct vkmt_qev e;
    struct vkmt_stats s;

    setup(MIB, 0);
    for (uint32_t i = 0; i < VKMT_EVQ_DEPTH; i++) {
        CHECK_EQ(vkmt_core_trim_notify(F.core, 0), 0); /* holds nothing */
        CHECK_EQ(vkmt_core_periodic_trim(F.core, i == 0), 1);
    }
    F.irqs = 0;
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 0);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 0);
    CHECK_EQ(F.irqs, 0);
    CHECK_EQ(hdr(0)->sh_ev_lost, 2);
    CHECK_EQ(hdr(0)->sh_ev_tail, VKMT_EVQ_DEPTH);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.events_lost, 2);
    /* The oldest is intact; one slot freed takes one event again. */
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_RESTART_PERIODIC_TRIM);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 1);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 0);
    CHECK_EQ(hdr(0)->sh_ev_lost, 3);
    teardown();
}

static void lying_event_head_costs_only_that_queue(void)
{
    struct drv other;
    struct vkmt_qev e;

    setup(MIB, 0);
    other = claim();
    /* A head ahead of the tail reads as a full ring, not as room. */
    vkmt_sh_store(&hdr(0)->sh_ev_head, 5);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 1);
    CHECK_EQ(hdr(0)->sh_ev_tail, 0);
    CHECK_EQ(hdr(0)->sh_ev_lost, 1);
    CHECK(next_event(other.q, &e));
    /* Nothing else of queue 0 broke. */
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ACTIVE);
    CHECK(new_device() != 0);
    teardown();
}

static void no_events_without_the_feature(void)
{
    uint32_t dev, h[2];

    setup_full(4, MIB, 0, VKMT_F_KNOWN & ~VKMT_F_EVENTS);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    F.irqs = 0;
    CHECK_EQ(vkmt_core_trim_notify(F.core, PAGE), 0);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, true), 0);
    vkmt_core_set_budget(F.core, PAGE);
    CHECK_EQ(F.irqs, 0);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 0);
    CHECK_EQ(hdr(0)->sh_ev_tail, 0);
    CHECK_EQ(hdr(0)->sh_ev_lost, 0);
    teardown();
}

static void device_offers_events_only_when_configured(void)
{
    struct vkmt_core_config cfg = { .num_queues = 2, .features = VKMT_F_RESOURCES };

    setup_config(&cfg, MIB, &fake_ops, VKMT_F_RESOURCES);
    CHECK_EQ(rd(VKMT_REG(device_features)) & VKMT_F_EVENTS, 0);
    CHECK_EQ(rd(VKMT_REG(version)), 1u << 16 | 3u);
    teardown();
    setup(MIB, 0);
    CHECK(rd(VKMT_REG(device_features)) & VKMT_F_EVENTS);
    teardown();
}

static void release_and_claim_start_the_ring_afresh(void)
{
    struct vkmt_qev e;

    setup(MIB, 0);
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 1);
    wr(VKMT_REG(queue_release), 0);
    /* A released queue takes no events. */
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 0);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    CHECK_EQ(hdr(0)->sh_ev_tail, 0);
    CHECK(!next_event(0, &e));
    CHECK_EQ(vkmt_core_periodic_trim(F.core, false), 1);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_PERIODIC_TRIM);
    teardown();
}

const struct test core_event_tests[] = {
    TEST(trim_notify_asks_each_queue_for_what_it_holds),
    TEST(budget_change_posts_the_budget_then_the_excess),
    TEST(periodic_trim_and_its_restart_reach_every_queue),
    TEST(events_wrap_around_the_ring),
    TEST(full_ring_loses_the_newest_and_counts_it),
    TEST(lying_event_head_costs_only_that_queue),
    TEST(no_events_without_the_feature),
    TEST(device_offers_events_only_when_configured),
    TEST(release_and_claim_start_the_ring_afresh),
};
const unsigned core_event_ntests = sizeof(core_event_tests) / sizeof(core_event_tests[0]);
