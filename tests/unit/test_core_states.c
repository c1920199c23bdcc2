/* SPDX-License-Identifier: MIT */
/*
 * test_core: the allocation state machine (offer, reclaim, discard, decommit,
 * recommit), the eviction order, budget pressure and trims.
 */
#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static void offered_content_survives_byte_for_byte(void)
{
    uint32_t dev, h[3], r[3] = { 9, 9, 9 };

    setup(16 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 3, 3 * PAGE + 5, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 3; i++) {
        fill(dev, h[i], 3 * PAGE + 5, (uint8_t)(i * 40));
    }
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(reclaim(dev, h, 3, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_OK);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(r[2], VKMT_RECLAIM_OK); /* never offered: reclaim is a no-op */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(content(dev, h[i], 3 * PAGE + 5, (uint8_t)(i * 40)), 1);
    }
    teardown();
}

static void discarded_content_reads_zero(void)
{
    uint32_t dev, h[2], r[2];
    struct vkmt_stats s;

    setup(16 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 2 * PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], 2 * PAGE, 3);
    fill(dev, h[1], 2 * PAGE, 4);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER); /* discarded */
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(content(dev, h[0], 2 * PAGE, 3), 0);
    CHECK_EQ(content(dev, h[1], 2 * PAGE, 4), 1); /* never offered: untouched */
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 1);
    CHECK_EQ(s.discarded_bytes, 2 * PAGE);
    CHECK_EQ(s.reclaim_discarded, 1);
    CHECK_EQ(s.reclaim_ok, 1);
    CHECK_EQ(s.offers, 1);
    CHECK_EQ(s.discarded_bytes_by_prio[vkmt_prio_index(VKMT_PRIO_LOW)], 2 * PAGE);
    teardown();
}

static void trim_returns_memory_to_the_host(void)
{
    enum { N = 8 };
    uint32_t dev, h[N];
    uint64_t before, after;

    setup(64 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, N, MIB, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < N; i++) {
        fill(dev, h[i], MIB, (uint8_t)i);
    }
    before = memfd_bytes();
    CHECK_EQ(before, N * MIB);
    CHECK_EQ(offer(dev, h, 5, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(5 * MIB), 5 * MIB);
    after = memfd_bytes();
    /* The file's allocated blocks, not a counter, show what the host got back. */
    CHECK_EQ(before - after, 5 * MIB);
    for (int i = 5; i < N; i++) {
        CHECK_EQ(content(dev, h[i], MIB, (uint8_t)i), 1);
    }
    teardown();
}

static void eviction_order_by_priority_then_age(void)
{
    uint32_t dev, h[6];
    /* Offered in this order: */
    const uint32_t prio[6] = { VKMT_PRIO_HIGH, VKMT_PRIO_NORMAL, VKMT_PRIO_LOW,
                               VKMT_PRIO_AUTO, VKMT_PRIO_LOW,    VKMT_PRIO_HIGH };
    /* Expected discard order: LOW oldest first, NORMAL/AUTO, then HIGH. */
    const int order[6] = { 2, 4, 1, 3, 0, 5 };

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 6, PAGE, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(offer(dev, &h[i], 1, prio[i]), VKMT_ST_SUCCESS);
    }
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(trim(1), PAGE);
    }
    CHECK_EQ(trim(1), 0);
    CHECK_EQ(F.ndiscards, 6);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(F.discard_order[i], h[order[i]]);
    }
    teardown();
}

static void reoffer_after_reclaim_moves_to_the_back(void)
{
    uint32_t dev, h[2];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(reclaim(dev, &h[0], 1, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(1), PAGE);
    CHECK_EQ(F.discard_order[0], h[1]);
    teardown();
}

/* A creation the aperture cannot place fails before it makes room: the
 * offers it would have discarded keep their content. */
static void an_unplaceable_creation_discards_nothing(void)
{
    uint32_t dev, h[256];
    struct vkmt_stats s;

    setup(MIB, MIB);
    dev = new_device();
    for (int i = 0; i < 256; i += 64) {
        CHECK_EQ(create(dev, 64, PAGE, h + i), VKMT_ST_SUCCESS);
        CHECK_EQ(offer(dev, h + i, 64, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    }
    /* The budget would fit it once two offers are discarded; the aperture,
     * whose every page an allocation holds, cannot. */
    CHECK_EQ(create(dev, 1, 2 * PAGE, NULL), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 0);
    CHECK_EQ(s.offered_bytes, MIB);
    teardown();
}

static void budget_pressure_on_create(void)
{
    uint32_t dev, h[8], more[2], r[8];
    struct vkmt_stats s;

    setup(MIB, 8 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 8, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, more), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h + 2, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 2, PAGE, more), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 8 * PAGE);
    CHECK_EQ(s.discards, 2);
    /* More than all offered content can free: refused, nothing discarded. */
    CHECK_EQ(create(dev, 3, PAGE, NULL), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 2);
    CHECK_EQ(reclaim(dev, h, 4, r), VKMT_ST_NO_MEMORY);         /* 2 to recommit, 0 free */
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER); /* still offered */
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_OK);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    teardown();
}

static void reclaim_evicts_others_but_never_its_own_batch(void)
{
    uint32_t dev, h[4], r[2];

    setup(MIB, 3 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 3, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(1), PAGE); /* h[0] discarded */
    CHECK_EQ(create(dev, 1, PAGE, &h[3]), VKMT_ST_SUCCESS);
    /* Recommitting h[0] needs one page: h[2] (not in the batch) goes. */
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], h[1] }, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(reclaim(dev, &h[2], 1, r), VKMT_ST_NO_MEMORY);
    teardown();
}

static void lowering_the_budget_discards_offered(void)
{
    uint32_t dev, h[4];
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(rd(VKMT_REG(config_generation)), 0);
    vkmt_core_set_budget(F.core, 3 * PAGE);
    CHECK_EQ(rd(VKMT_REG(config_generation)), 1);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 3 * PAGE);
    CHECK_EQ(s.budget_bytes, 3 * PAGE);
    CHECK_EQ(rd(VKMT_REG(budget_lo)), 3 * PAGE);
    CHECK_EQ(F.discard_order[0], h[0]);
    teardown();
}

/* PROTOCOL.md 10: NO_MEMORY is for a recommit; a reclaim that needs no
 * memory succeeds even when the host lowered the budget below what is held. */
static void reclaim_needing_no_memory_succeeds_over_budget(void)
{
    uint32_t dev, h[2], res[2];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 4 * PAGE, h), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, PAGE);
    CHECK_EQ(reclaim(dev, h, 2, res), VKMT_ST_SUCCESS);
    CHECK_EQ(res[0], VKMT_RECLAIM_OK);
    CHECK_EQ(res[1], VKMT_RECLAIM_OK);
    teardown();
}

/* An offer makes room at once when the host lowered the budget while every
 * allocation was in use (nothing could be discarded then). */
static void an_offer_enforces_a_lowered_budget(void)
{
    uint32_t dev, h[4];
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 2 * PAGE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 4 * PAGE); /* nothing was offered */
    CHECK_EQ(s.discards, 0);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 1);
    CHECK_EQ(s.committed_bytes, 3 * PAGE);
    CHECK_EQ(offer(dev, h + 1, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 2); /* only down to the budget: h[2] keeps its content */
    CHECK_EQ(s.committed_bytes, 2 * PAGE);
    CHECK_EQ(F.discard_order[0], h[0]);
    CHECK_EQ(F.discard_order[1], h[1]);
    teardown();
}

/* Discards forced by pressure (a creation, a lowered budget) give memory
 * back at once, not at the next trim's scrub of unowned pages. */
static void pressure_returns_memory_without_a_trim(void)
{
    uint32_t dev, h[4], more[2];

    setup(MIB, 4 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 4; i++) {
        fill(dev, h[i], PAGE, (uint8_t)(i + 1));
    }
    CHECK_EQ(memfd_bytes(), 4 * PAGE);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 2, PAGE, more), VKMT_ST_SUCCESS); /* discards h[0], h[1] */
    CHECK_EQ(memfd_bytes(), 2 * PAGE);
    CHECK_EQ(offer_ex(dev, &h[2], 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 3 * PAGE); /* decommits h[2] */
    CHECK_EQ(memfd_bytes(), PAGE);
    CHECK_EQ(content(dev, h[3], PAGE, 4), 1);
    teardown();
}

static void decommit_and_recommit(void)
{
    enum { N = 16 };
    uint32_t dev, h[N], r[2];
    struct vkmt_stats s;
    uint64_t before;

    /* A full aperture, every page written: whatever range a recommit gets
     * held content before, so reading zeros there cannot be luck. */
    setup(N * PAGE, N * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, N, PAGE, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < N; i++) {
        fill(dev, h[i], PAGE, (uint8_t)(i + 1));
    }
    before = memfd_bytes();
    CHECK_EQ(before, N * PAGE);
    CHECK_EQ(offer_ex(dev, h, 2, VKMT_PRIO_NORMAL, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    /* The backing file's blocks, not a counter, show the pages went back. */
    CHECK_EQ(before - memfd_bytes(), 2 * PAGE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.decommits, 2);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(r[1], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(reclaim(dev, h, 1, r), VKMT_ST_SUCCESS); /* still gone */
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    /* The v1 thunk's flag: fresh zeroed backing, reported as discarded. */
    CHECK_EQ(reclaim_ex(dev, h, 1, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(content(dev, h[0], PAGE, 1), 0);
    for (int i = 2; i < N; i++) {
        CHECK_EQ(content(dev, h[i], PAGE, (uint8_t)(i + 1)), 1);
    }
    /* Without AllowDecommit a trim only discards. */
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), PAGE);
    CHECK_EQ(reclaim(dev, h, 1, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    teardown();
}

const struct test core_state_tests[] = {
    TEST(offered_content_survives_byte_for_byte),
    TEST(discarded_content_reads_zero),
    TEST(trim_returns_memory_to_the_host),
    TEST(eviction_order_by_priority_then_age),
    TEST(reoffer_after_reclaim_moves_to_the_back),
    TEST(budget_pressure_on_create),
    TEST(an_unplaceable_creation_discards_nothing),
    TEST(reclaim_evicts_others_but_never_its_own_batch),
    TEST(lowering_the_budget_discards_offered),
    TEST(reclaim_needing_no_memory_succeeds_over_budget),
    TEST(an_offer_enforces_a_lowered_budget),
    TEST(pressure_returns_memory_without_a_trim),
    TEST(decommit_and_recommit),
};
const unsigned core_state_ntests = sizeof(core_state_tests) / sizeof(core_state_tests[0]);
