/* SPDX-License-Identifier: MIT */
/*
 * test_core: what the host sees: per-priority statistics of offers, discards
 * and reclaims, and trims and budget changes reported as events.
 */
#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static uint32_t reclaim_prio[8];
static unsigned nreclaim_prio;

static void note_reclaim_prio(const struct vkmt_event *ev)
{
    if (ev->type == VKMT_EV_RECLAIM && nreclaim_prio < 8) {
        reclaim_prio[nreclaim_prio++] = ev->priority;
    }
}

static void per_priority_statistics(void)
{
    uint32_t dev, h[4], r[4];
    struct vkmt_stats s;
    const unsigned lo = vkmt_prio_index(VKMT_PRIO_LOW), no = vkmt_prio_index(VKMT_PRIO_NORMAL),
                   hi = vkmt_prio_index(VKMT_PRIO_HIGH), au = vkmt_prio_index(VKMT_PRIO_AUTO);

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, 2 * PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[2], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), 2 * PAGE); /* the LOW one */
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.offered_bytes_by_prio[lo], 0);
    CHECK_EQ(s.offered_bytes_by_prio[no], 2 * PAGE);
    CHECK_EQ(s.offered_bytes_total_by_prio[lo], 2 * PAGE);
    CHECK_EQ(s.discarded_bytes_by_prio[lo], 2 * PAGE);

    /* h[3] was never offered: its OK counts only in the total. */
    nreclaim_prio = 0;
    F.hook = note_reclaim_prio;
    CHECK_EQ(reclaim(dev, h, 4, r), VKMT_ST_SUCCESS);
    CHECK_EQ(nreclaim_prio, 4);
    CHECK_EQ(reclaim_prio[0], VKMT_PRIO_LOW);
    CHECK_EQ(reclaim_prio[1], VKMT_PRIO_NORMAL);
    CHECK_EQ(reclaim_prio[2], VKMT_PRIO_HIGH);
    CHECK_EQ(reclaim_prio[3], 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.reclaim_ok, 3);
    CHECK_EQ(s.reclaim_discarded, 1);
    CHECK_EQ(s.reclaims_by_prio[lo][VKMT_RECLAIM_DISCARDED], 1);
    CHECK_EQ(s.reclaims_by_prio[lo][VKMT_RECLAIM_OK], 0);
    CHECK_EQ(s.reclaims_by_prio[no][VKMT_RECLAIM_OK], 1);
    CHECK_EQ(s.reclaims_by_prio[hi][VKMT_RECLAIM_OK], 1);
    CHECK_EQ(s.reclaims_by_prio[au][VKMT_RECLAIM_OK], 0);
    CHECK_EQ(s.offered_bytes_by_prio[no], 0);

    /* Reclaimed means resident: no offer is in effect, no priority counts. */
    nreclaim_prio = 0;
    CHECK_EQ(reclaim(dev, h, 3, r), VKMT_ST_SUCCESS);
    CHECK_EQ(reclaim_prio[0], 0);
    CHECK_EQ(reclaim_prio[2], 0);

    /* A decommitted allocation stays lost, so every reclaim counts. */
    CHECK_EQ(offer_ex(dev, &h[3], 1, VKMT_PRIO_AUTO, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    CHECK_EQ(reclaim(dev, &h[3], 1, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(reclaim_ex(dev, &h[3], 1, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    F.hook = NULL;
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.reclaims_by_prio[au][VKMT_RECLAIM_NOT_COMMITTED], 1);
    CHECK_EQ(s.reclaims_by_prio[au][VKMT_RECLAIM_DISCARDED], 1);
    CHECK_EQ(s.offered_bytes_total_by_prio[au], 2 * PAGE);
    CHECK_EQ(s.reclaim_ok, 6);
    CHECK_EQ(s.reclaims_by_prio[lo][VKMT_RECLAIM_OK] + s.reclaims_by_prio[no][VKMT_RECLAIM_OK] +
                 s.reclaims_by_prio[hi][VKMT_RECLAIM_OK],
             2);
    teardown();
}

static struct vkmt_event host_events[4];
static unsigned nhost_events;

static void note_host_event(const struct vkmt_event *ev)
{
    if ((ev->type == VKMT_EV_TRIM || ev->type == VKMT_EV_BUDGET) && nhost_events < 4) {
        host_events[nhost_events++] = *ev;
    }
}

static void trims_and_budget_changes_are_events(void)
{
    uint32_t dev, h[2];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    nhost_events = 0;
    F.ndiscards = 0;
    F.hook = note_host_event;
    CHECK_EQ(trim(PAGE), PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM }, NULL), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 0);
    F.hook = NULL;
    CHECK_EQ(nhost_events, 3);
    /* The host's trim, then the guest's on queue 0 (0: everything). */
    CHECK_EQ(host_events[0].type, VKMT_EV_TRIM);
    CHECK_EQ(host_events[0].queue, VKMT_EV_HOST);
    CHECK_EQ(host_events[0].size, PAGE);
    CHECK_EQ(host_events[1].type, VKMT_EV_TRIM);
    CHECK_EQ(host_events[1].queue, 0);
    CHECK_EQ(host_events[1].size, UINT64_MAX);
    /* A budget event names the budget in force: 0 asked for half the aperture. */
    CHECK_EQ(host_events[2].type, VKMT_EV_BUDGET);
    CHECK_EQ(host_events[2].queue, VKMT_EV_HOST);
    CHECK_EQ(host_events[2].size, MIB / 2);
    CHECK_EQ(F.ndiscards, 2);
    teardown();
}

const struct test core_stats_tests[] = {
    TEST(per_priority_statistics),
    TEST(trims_and_budget_changes_are_events),
};
const unsigned core_stats_ntests = sizeof(core_stats_tests) / sizeof(core_stats_tests[0]);
