/* SPDX-License-Identifier: MIT */
/*
 * test_core: residency (residency.c, protocol 1.2). Pressure discards
 * offered content first, then demotes resident unlocked allocations to the
 * non-local segment in their documented order, then fails; demoted content
 * comes back byte for byte through reclaim, lock and MAKE_RESIDENT; the
 * residency commands are all or nothing; snapshots carry it all. The
 * non-local segment is a buffer of the test's, so demoted content is
 * checked where it lies without promoting it.
 */
#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

#define NL_PAGES 16u

static uint8_t *nl; /* the engine's non-local segment */

static void setup_nl(uint64_t aperture, uint64_t budget, uint32_t nl_pages, uint32_t features)
{
    struct vkmt_core_config cfg = { .num_queues = 2,
                                    .budget = budget,
                                    .features = VKMT_F_KNOWN,
                                    .nonlocal_size = (uint64_t)nl_pages * PAGE };

    nl = calloc(nl_pages ? nl_pages : 1, PAGE);
    CHECK(nl != NULL);
    cfg.nonlocal = nl_pages ? nl : NULL;
    setup_config(&cfg, aperture, &fake_ops, features);
}

static void teardown_nl(void)
{
    teardown();
    free(nl);
}

/* A command on queue 0 whose payload is @n words at @words. */
static uint32_t cmd(uint8_t op, uint32_t handle, const uint32_t *words, uint32_t n, uint32_t count,
                    uint32_t arg0, uint32_t arg1, uint32_t result_words, struct vkmt_cqe *c)
{
    uint32_t roff = (n * 4 + 63) & ~63u;

    if (n) {
        memcpy(staging(0), words, n * 4);
    }
    return run((struct vkmt_sqe){ .opcode = op,
                                  .handle = handle,
                                  .count = count,
                                  .payload_len = n * 4,
                                  .result_off = result_words ? roff : 0,
                                  .result_len = result_words * 4,
                                  .arg0 = arg0,
                                  .arg1 = arg1 },
               c);
}

static uint32_t results[64];

static uint32_t query(uint8_t op, uint32_t dev, const uint32_t *h, uint32_t n)
{
    uint32_t roff = (n * 4 + 63) & ~63u;
    uint32_t st = cmd(op, dev, h, n, n, 0, 0, n, NULL);

    memcpy(results, staging(0) + roff, n * 4);
    return st;
}

static uint32_t residency(uint32_t dev, uint32_t a)
{
    CHECK_EQ(query(VKMT_OP_QUERY_RESIDENCY, dev, &a, 1), VKMT_ST_SUCCESS);
    return results[0];
}

static uint32_t paging_queue(uint32_t dev)
{
    struct vkmt_cqe c;

    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev }, &c),
             VKMT_ST_SUCCESS);
    return (uint32_t)c.value0;
}

static uint32_t make_resident(uint32_t pq, const uint32_t *h, uint32_t n, uint32_t flags,
                              struct vkmt_cqe *c)
{
    return cmd(VKMT_OP_MAKE_RESIDENT, pq, h, n, n, flags, 0, 0, c);
}

static uint32_t evict(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t flags,
                      struct vkmt_cqe *c)
{
    return cmd(VKMT_OP_EVICT, dev, h, n, n, flags, 0, 0, c);
}

static uint32_t set_prio(uint32_t dev, uint32_t a, uint32_t prio)
{
    uint32_t pair[2] = { a, prio };

    return cmd(VKMT_OP_SET_PRIORITY, dev, pair, 2, 1, 0, 0, 0, NULL);
}

/* Whether the non-local segment holds @len bytes of @seed's pattern anywhere
 * page-aligned (demotion places ranges by next-fit). */
static bool nl_holds(size_t len, uint8_t seed)
{
    for (uint32_t p = 0; p < NL_PAGES; p++) {
        size_t i = 0;

        while (i < len && (size_t)p * PAGE + i < (size_t)NL_PAGES * PAGE &&
               nl[(size_t)p * PAGE + i] == pattern_byte(seed, i)) {
            i++;
        }
        if (i == len) {
            return true;
        }
    }
    return false;
}

static void residency_opcodes_need_the_feature(void)
{
    static const uint8_t ops[] = { VKMT_OP_MAKE_RESIDENT,   VKMT_OP_EVICT,
                                   VKMT_OP_SET_PRIORITY,    VKMT_OP_GET_PRIORITY,
                                   VKMT_OP_QUERY_RESIDENCY, VKMT_OP_CHANGE_RESERVATION };
    struct vkmt_cqe c;

    setup_nl(MIB, 0, NL_PAGES, VKMT_F_KNOWN & ~VKMT_F_RESIDENCY);
    for (unsigned i = 0; i < sizeof(ops); i++) {
        CHECK_EQ(run((struct vkmt_sqe){ .opcode = ops[i] }, NULL), VKMT_ST_NOT_SUPPORTED);
    }
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg1 = 1 }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    /* A 1.1 driver sees no system-memory segment, as before. */
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = VKMT_SEGMENT_NON_LOCAL },
            &c),
        VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0 + c.value1, 0);
    teardown_nl();
}

/* A 1.1 driver never sees a demotion: pressure fails as it always did. */
static void without_the_feature_nothing_is_demoted(void)
{
    struct vkmt_stats s;
    uint32_t dev, h[3];

    setup_nl(MIB, 2 * PAGE, NL_PAGES, VKMT_F_KNOWN & ~VKMT_F_RESIDENCY);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, &h[2]), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    vkmt_core_set_budget(F.core, PAGE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.demotions, 0);
    CHECK_EQ(s.committed_bytes, 2 * PAGE);
    teardown_nl();
}

static void pressure_discards_offers_then_demotes_then_fails(void)
{
    struct vkmt_stats s;
    uint32_t dev, h[4], r, big;

    setup_nl(MIB, 4 * PAGE, 2, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], PAGE, 1);
    fill(dev, h[1], PAGE, 2);
    CHECK_EQ(offer(dev, &h[3], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    /* One page: the offer goes, nothing resident moves. */
    CHECK_EQ(create(dev, 1, PAGE, &r), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 1);
    CHECK_EQ(s.demotions, 0);
    /* Two more pages: nothing offered is left, so two demotions. */
    CHECK_EQ(create(dev, 2, PAGE, NULL), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.demotions, 2);
    CHECK_EQ(s.demoted_bytes, 2 * PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK(nl_holds(PAGE, 1));
    CHECK(nl_holds(PAGE, 2));
    /* The non-local segment is full: the next creation fails. */
    CHECK_EQ(create(dev, 1, PAGE, &big), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 4 * PAGE);
    teardown_nl();
}

static void demotion_order_is_held_last_then_priority_then_table_order(void)
{
    uint32_t dev, pq, h[5];

    setup_nl(MIB, 8 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    pq = paging_queue(dev);
    CHECK_EQ(create(dev, 5, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(set_prio(dev, h[0], VKMT_ALLOC_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(set_prio(dev, h[1], VKMT_ALLOC_PRIO_MINIMUM), VKMT_ST_SUCCESS);
    CHECK_EQ(set_prio(dev, h[4], VKMT_ALLOC_PRIO_MINIMUM), VKMT_ST_SUCCESS);
    CHECK_EQ(make_resident(pq, &h[4], 1, 0, NULL), VKMT_ST_SUCCESS);
    /* 5 pages into 4: h[1] (minimum, not held). */
    vkmt_core_set_budget(F.core, 4 * PAGE);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(residency(dev, h[4]), VKMT_RESIDENCY_LOCAL);
    /* Then the NORMAL ones in table order: h[2], then h[3]. */
    vkmt_core_set_budget(F.core, 3 * PAGE);
    CHECK_EQ(residency(dev, h[2]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(residency(dev, h[3]), VKMT_RESIDENCY_LOCAL);
    vkmt_core_set_budget(F.core, 2 * PAGE);
    CHECK_EQ(residency(dev, h[3]), VKMT_RESIDENCY_NON_LOCAL);
    /* HIGH before the one MAKE_RESIDENT holds, minimum as it is. */
    vkmt_core_set_budget(F.core, PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(residency(dev, h[4]), VKMT_RESIDENCY_LOCAL);
    vkmt_core_set_budget(F.core, PAGE / 2);
    CHECK_EQ(residency(dev, h[4]), VKMT_RESIDENCY_NON_LOCAL);
    teardown_nl();
}

static void locked_allocations_are_never_demoted(void)
{
    uint32_t dev, h[2];

    setup_nl(MIB, 2 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_NON_LOCAL);
    vkmt_core_set_budget(F.core, PAGE / 2);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_SUCCESS);
    teardown_nl();
}

static void reclaim_and_lock_bring_demoted_content_back(void)
{
    struct vkmt_stats s;
    uint32_t dev, h[2], r;

    setup_nl(MIB, 4 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 2 * PAGE - 100, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], 2 * PAGE - 100, 5);
    fill(dev, h[1], 2 * PAGE - 100, 6);
    vkmt_core_set_budget(F.core, 2 * PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(reclaim(dev, &h[0], 1, &r), VKMT_ST_SUCCESS);
    CHECK_EQ(r, VKMT_RECLAIM_OK);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(content(dev, h[0], 2 * PAGE - 100, 5), 1);
    /* A lock pages h[1] in, and h[0] goes out to make room. */
    CHECK_EQ(content(dev, h[1], 2 * PAGE - 100, 6), 1);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.promotions, 2);
    CHECK_EQ(s.demotions, 3);
    teardown_nl();
}

static void make_resident_counts_and_evict_undoes(void)
{
    struct vkmt_cqe c;
    uint32_t dev, pq, h[2];

    setup_nl(MIB, 4 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    pq = paging_queue(dev);
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], PAGE, 9);
    CHECK_EQ(make_resident(pq, h, 1, 0, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(make_resident(pq, h, 1, 0, &c), VKMT_ST_SUCCESS);
    /* Two MAKE_RESIDENTs need two EVICTs; the second one demotes. */
    CHECK_EQ(evict(dev, h, 1, 0, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 0);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    CHECK_EQ(evict(dev, h, 1, 0, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK(nl_holds(PAGE, 9));
    /* A count already at 0 fails the batch, and changes nothing. */
    CHECK_EQ(evict(dev, h, 1, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(make_resident(pq, h, 2, 0, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    CHECK_EQ(content(dev, h[0], PAGE, 9), 1);
    /* EvictOnlyIfNecessary keeps it where it is. */
    CHECK_EQ(evict(dev, h, 2, VKMT_EVICT_F_ONLY_IF_NECESSARY, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_LOCAL);
    teardown_nl();
}

static void residency_batches_are_all_or_nothing(void)
{
    struct vkmt_cqe c;
    uint32_t dev, pq, h[3], bad[3];

    setup_nl(MIB, 4 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    pq = paging_queue(dev);
    CHECK_EQ(create(dev, 3, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(make_resident(pq, h, 3, 0, NULL), VKMT_ST_SUCCESS);
    /* A repeated handle, an unknown one, reserved flags, MustSucceed alone. */
    memcpy(bad, h, sizeof(bad));
    bad[2] = h[0];
    CHECK_EQ(evict(dev, bad, 3, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(make_resident(pq, bad, 3, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    bad[2] = 0x12345;
    CHECK_EQ(evict(dev, bad, 3, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(evict(dev, h, 3, 0x4, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(make_resident(pq, h, 3, VKMT_RESIDENT_F_MUST_SUCCEED, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(make_resident(dev, h, 3, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    /* Each count is still 1: one EVICT each succeeds, a second fails. */
    CHECK_EQ(evict(dev, h, 3, VKMT_EVICT_F_ONLY_IF_NECESSARY, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(evict(dev, h, 1, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    /* An offered element fails MAKE_RESIDENT whole. */
    CHECK_EQ(offer(dev, &h[2], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(make_resident(pq, h, 3, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(evict(dev, h, 1, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    teardown_nl();
}

/*
 * A device of four one-page allocations with h[2] and h[3] locked, whose
 * budget of two pages demoted h[0] and h[1]; returns its paging queue.
 */
static uint32_t two_demoted_two_locked(uint32_t *dev, uint32_t h[4])
{
    uint32_t pq;

    setup_nl(MIB, 4 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    *dev = new_device();
    pq = paging_queue(*dev);
    CHECK_EQ(create(*dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(*dev, h[2], NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(*dev, h[3], NULL), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 2 * PAGE);
    return pq;
}

static void make_resident_that_cannot_fit_reports_bytes_to_trim(void)
{
    struct vkmt_cqe c = { 0 };
    struct vkmt_stats s;
    uint32_t dev, pq, h[4];

    pq = two_demoted_two_locked(&dev, h);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_NON_LOCAL);
    /* Both locked ones stay: nothing can make room for h[0] and h[1]. */
    CHECK_EQ(make_resident(pq, h, 2, 0, &c), VKMT_ST_NO_MEMORY);
    CHECK_EQ(c.value1, 2 * PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(evict(dev, h, 1, 0, NULL), VKMT_ST_INVALID_PARAMETER); /* no count taken */
    /* CantTrimFurther may go past the budget, up to the aperture. */
    CHECK_EQ(make_resident(pq, h, 2, VKMT_RESIDENT_F_CANT_TRIM_FURTHER, &c), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 4 * PAGE);
    CHECK_EQ(evict(dev, h, 1, VKMT_EVICT_F_ONLY_IF_NECESSARY, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 2 * PAGE); /* the queue is two pages over */
    teardown_nl();
}

/*
 * CantTrimFurther goes past the budget only when room cannot be made, and
 * then the command discards offered content down to the budget before it
 * completes: over the budget only while nothing offered is left (section 9).
 */
static void cant_trim_further_past_the_budget_discards_offers_first(void)
{
    struct vkmt_stats s;
    uint32_t dev, pq, h[4], o[2];

    pq = two_demoted_two_locked(&dev, h);
    vkmt_core_set_budget(F.core, 4 * PAGE);
    CHECK_EQ(create(dev, 2, PAGE, o), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, o[1], NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, o, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    /* Room for one page at most (the offer), two needed: past the budget. */
    CHECK_EQ(make_resident(pq, h, 2, VKMT_RESIDENT_F_CANT_TRIM_FURTHER, NULL), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.offered_bytes, 0);
    CHECK_EQ(s.discards, 1);
    CHECK_EQ(s.committed_bytes, 5 * PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_LOCAL);
    teardown_nl();
}

static void priorities_and_residency_by_allocation_and_by_resource(void)
{
    struct vkmt_cqe c;
    uint32_t dev, h[2], members[2];
    uint64_t res;

    setup_nl(MIB, 8 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(query(VKMT_OP_GET_PRIORITY, dev, h, 2), VKMT_ST_SUCCESS);
    CHECK_EQ(results[0], VKMT_ALLOC_PRIO_NORMAL);
    CHECK_EQ(set_prio(dev, h[1], 0x78000001u), VKMT_ST_SUCCESS);
    CHECK_EQ(query(VKMT_OP_GET_PRIORITY, dev, h, 2), VKMT_ST_SUCCESS);
    CHECK_EQ(results[1], 0x78000001u);
    CHECK_EQ(create_on(&F.d, dev, 2, PAGE, members, VKMT_SQE_F_CREATE_RESOURCE, &res),
             VKMT_ST_SUCCESS);
    CHECK_EQ(
        cmd(VKMT_OP_SET_PRIORITY, dev, NULL, 0, 0, (uint32_t)res, VKMT_ALLOC_PRIO_LOW, 0, NULL),
        VKMT_ST_SUCCESS);
    CHECK_EQ(query(VKMT_OP_GET_PRIORITY, dev, members, 2), VKMT_ST_SUCCESS);
    CHECK_EQ(results[0] + 0ull + results[1], 2ull * VKMT_ALLOC_PRIO_LOW);
    CHECK_EQ(cmd(VKMT_OP_GET_PRIORITY, dev, NULL, 0, 0, (uint32_t)res, 0, 0, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, VKMT_ALLOC_PRIO_LOW);
    /* A resource is as resident as its least resident member. */
    CHECK_EQ(offer(dev, &members[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(cmd(VKMT_OP_QUERY_RESIDENCY, dev, NULL, 0, 0, (uint32_t)res, 0, 0, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, VKMT_RESIDENCY_NONE);
    /* A resource with a list too, or arg1 without a resource, is refused. */
    CHECK_EQ(cmd(VKMT_OP_QUERY_RESIDENCY, dev, h, 1, 1, (uint32_t)res, 0, 1, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(cmd(VKMT_OP_SET_PRIORITY, dev, (uint32_t[]){ h[0], 1 }, 2, 1, 0, 5, 0, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(query(VKMT_OP_QUERY_RESIDENCY, dev, (uint32_t[]){ h[0], 0x999 }, 2),
             VKMT_ST_INVALID_PARAMETER);
    teardown_nl();
}

static void memory_query_reports_both_segments_and_the_reservation(void)
{
    struct vkmt_cqe c;
    uint32_t dev, h[3];

    setup_nl(MIB, 4 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, h), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 2 * PAGE);
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = VKMT_SEGMENT_NON_LOCAL },
            &c),
        VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, NL_PAGES * PAGE);
    CHECK_EQ(c.value1, PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg1 = 1 }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 0);
    CHECK_EQ(c.value1, PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CHANGE_RESERVATION, .arg64 = PAGE }, NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_CHANGE_RESERVATION, .arg64 = PAGE + 1 }, NULL),
        VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CHANGE_RESERVATION, .arg0 = 2 }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg1 = 1 }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg1 = 2 }, &c),
             VKMT_ST_INVALID_PARAMETER);
    teardown_nl();
}

static void offer_of_a_demoted_allocation_discards_it(void)
{
    struct vkmt_stats s;
    uint32_t dev, h[2], r[2];

    setup_nl(MIB, 2 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, PAGE);
    CHECK_EQ(offer_ex(dev, h, 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.demoted_bytes, 0);
    CHECK_EQ(s.decommits, 1);
    CHECK_EQ(reclaim(dev, h, 1, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    /* Destroying a demoted allocation frees its non-local pages. */
    vkmt_core_set_budget(F.core, PAGE / 2);
    CHECK_EQ(residency(dev, h[1]), VKMT_RESIDENCY_NON_LOCAL);
    CHECK_EQ(destroy_allocs(dev, &h[1], 1), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.demoted_bytes, 0);
    teardown_nl();
}

/*
 * No content lost: patterns in allocations of several sizes, cycled
 * through demotion and promotion by budget changes, EVICT and
 * MAKE_RESIDENT, reclaims and locks; every byte compared each round.
 */
static void no_content_lost_through_demotion_cycles(void)
{
    enum { N = 6 };
    static const uint64_t sizes[N] = { PAGE, 3 * PAGE - 7, 100, 2 * PAGE, PAGE + 1, 4 * PAGE };
    uint32_t dev, pq, h[N];
    struct vkmt_stats s;

    /* Room for every byte twice over: next-fit leaves holes. */
    setup_nl(MIB, 16 * PAGE, 32, VKMT_F_KNOWN);
    dev = new_device();
    pq = paging_queue(dev);
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ(create(dev, 1, sizes[i], &h[i]), VKMT_ST_SUCCESS);
        fill(dev, h[i], sizes[i], (uint8_t)(40 + i));
        CHECK_EQ(set_prio(dev, h[i], VKMT_ALLOC_PRIO_LOW + i * 0x100u), VKMT_ST_SUCCESS);
    }
    for (unsigned round = 0; round < 8; round++) {
        uint32_t r;

        vkmt_core_set_budget(F.core, (round % 4 + 2) * 3 * PAGE);
        CHECK_EQ(make_resident(pq, &h[round % N], 1, VKMT_RESIDENT_F_CANT_TRIM_FURTHER, NULL),
                 VKMT_ST_SUCCESS);
        CHECK_EQ(evict(dev, &h[round % N], 1, 0, NULL), VKMT_ST_SUCCESS);
        CHECK_EQ(reclaim(dev, &h[(round + 1) % N], 1, &r), VKMT_ST_SUCCESS);
        CHECK_EQ(r, VKMT_RECLAIM_OK);
        vkmt_core_set_budget(F.core, 16 * PAGE);
        for (unsigned i = 0; i < N; i++) {
            CHECK_EQ(content(dev, h[i], sizes[i], (uint8_t)(40 + i)), 1);
        }
    }
    vkmt_core_get_stats(F.core, &s);
    CHECK(s.demotions >= 8);
    CHECK(s.promotions >= 8);
    teardown_nl();
}

static void snapshot_carries_demoted_state(void)
{
    struct vkmt_core_config cfg = { .num_queues = 2,
                                    .features = VKMT_F_KNOWN,
                                    .nonlocal_size = NL_PAGES * PAGE };
    struct vkmt_backend *be;
    struct vkmt_core *twin;
    uint8_t *ctrl, *nl2, *b, *b2;
    uint32_t dev, pq, h[3];
    size_t len;
    char why[160];

    setup_nl(MIB, 3 * PAGE, NL_PAGES, VKMT_F_KNOWN);
    dev = new_device();
    pq = paging_queue(dev);
    CHECK_EQ(create(dev, 3, PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], PAGE, 77);
    CHECK_EQ(set_prio(dev, h[1], VKMT_ALLOC_PRIO_MAXIMUM), VKMT_ST_SUCCESS);
    CHECK_EQ(make_resident(pq, &h[2], 1, 0, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CHANGE_RESERVATION, .arg64 = PAGE }, NULL),
             VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 2 * PAGE);
    CHECK_EQ(residency(dev, h[0]), VKMT_RESIDENCY_NON_LOCAL);
    len = vkmt_core_snapshot_save(F.core, NULL, 0);
    b = malloc(len);
    b2 = malloc(len);
    CHECK(b && b2);
    vkmt_core_snapshot_save(F.core, b, len);

    /* The destination: RAM copied first (control, aperture, non-local). */
    ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(2));
    nl2 = malloc(NL_PAGES * PAGE);
    CHECK(ctrl && nl2);
    memcpy(ctrl, F.ctrl, vkmt_core_ctrl_size(2));
    memcpy(nl2, nl, NL_PAGES * PAGE);
    cfg.nonlocal = nl2;
    CHECK_EQ(vkmt_backend_mem_create(F.be->size, -1, NULL, &be), 0);
    memcpy(be->base, F.be->base, F.be->size);
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &twin), 0);
    CHECK_EQ(vkmt_core_snapshot_load(twin, b, len, why, sizeof(why)), 0);
    CHECK_EQ(vkmt_core_snapshot_save(twin, b2, len), len);
    CHECK(memcmp(b, b2, len) == 0);
    vkmt_core_destroy(twin);
    vkmt_backend_destroy(be);
    free(ctrl);
    free(nl2);
    free(b);
    free(b2);
    teardown_nl();
}

/* Making room counts only what it may discard: a reclaim whose own offers
 * would have to go fails without discarding anyone else's. */
static void a_reclaim_that_cannot_fit_discards_no_other_offer(void)
{
    uint32_t dev, a, b, x, y, r;

    setup_nl(MIB, 4 * PAGE, 0, VKMT_F_KNOWN);
    dev = new_device();
    CHECK_EQ(create(dev, 1, 2 * PAGE, &a), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, &b), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, &x), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &a, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &x, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(2 * PAGE), 2 * PAGE); /* a, the oldest offer */
    CHECK_EQ(create(dev, 1, 2 * PAGE, &y), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &b, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    /* a needs 2 pages: only b (1) may go, x is the batch's own. */
    CHECK_EQ(reclaim(dev, (uint32_t[]){ a, x }, 2, NULL), VKMT_ST_NO_MEMORY);
    CHECK_EQ(reclaim(dev, &b, 1, &r), VKMT_ST_SUCCESS);
    CHECK_EQ(r, VKMT_RECLAIM_OK);
    teardown_nl();
}

const struct test core_residency_tests[] = {
    TEST(a_reclaim_that_cannot_fit_discards_no_other_offer),
    TEST(residency_opcodes_need_the_feature),
    TEST(without_the_feature_nothing_is_demoted),
    TEST(pressure_discards_offers_then_demotes_then_fails),
    TEST(demotion_order_is_held_last_then_priority_then_table_order),
    TEST(locked_allocations_are_never_demoted),
    TEST(reclaim_and_lock_bring_demoted_content_back),
    TEST(make_resident_counts_and_evict_undoes),
    TEST(residency_batches_are_all_or_nothing),
    TEST(make_resident_that_cannot_fit_reports_bytes_to_trim),
    TEST(cant_trim_further_past_the_budget_discards_offers_first),
    TEST(priorities_and_residency_by_allocation_and_by_resource),
    TEST(memory_query_reports_both_segments_and_the_reservation),
    TEST(offer_of_a_demoted_allocation_discards_it),
    TEST(no_content_lost_through_demotion_cycles),
    TEST(snapshot_carries_demoted_state),
};
const unsigned core_residency_ntests =
    sizeof(core_residency_tests) / sizeof(core_residency_tests[0]);
