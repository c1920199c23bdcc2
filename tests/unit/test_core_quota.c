/* SPDX-License-Identifier: MIT */
/*
 * test_core: per-queue budgets and statistics (vkmt_core_set_queue_budget,
 * QUERY_QUEUE_STATS). A queue squeezed below the device's budget loses its
 * own offered content, then has its own resident content demoted, then
 * fails, while another queue's allocations stay byte for byte as they
 * were; it gets its budget and its excess as events, QUERY_MEMORY reports
 * the smaller budget, and a released queue's budget does not pass to the
 * next process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

#define NL_PAGES 16u

static uint8_t *nl;

/* Two queues over a 1 MiB aperture (budget 512 KiB) and @nl_pages of
 * non-local segment; returns queue 1, queue 0 being F.d. */
static struct drv two_queues(uint32_t nl_pages)
{
    struct vkmt_core_config cfg = { .num_queues = 2,
                                    .features = VKMT_F_KNOWN,
                                    .nonlocal_size = (uint64_t)nl_pages * PAGE };

    nl = calloc(NL_PAGES, PAGE);
    CHECK(nl != NULL);
    cfg.nonlocal = nl_pages ? nl : NULL;
    setup_config(&cfg, MIB, &fake_ops, VKMT_F_KNOWN);
    return claim();
}

static void done(void)
{
    teardown();
    free(nl);
}

/* Make queue @d the one the fixture's helpers drive, and back. */
static void use(struct drv *d)
{
    struct drv t = F.d;

    F.d = *d;
    *d = t;
}

static struct vkmt_queue_stats qstats(uint32_t q)
{
    struct vkmt_queue_stats s;

    vkmt_core_get_queue_stats(F.core, q, &s);
    return s;
}

/*
 * The bystander: queue 1 with two one-page allocations filled with
 * patterns 21 and 22, the second offered. Returns its device; @snap gets
 * the pages' bytes as they are in the aperture.
 */
static uint32_t bystander(struct drv *other, uint32_t h[2], uint8_t *snap)
{
    uint32_t dev;
    uint8_t *p;

    use(other);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], PAGE, 21);
    fill(dev, h[1], PAGE, 22);
    CHECK_EQ(lock(dev, h[0], &p), VKMT_ST_SUCCESS);
    memcpy(snap, p, PAGE);
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[1], &p), VKMT_ST_SUCCESS);
    memcpy(snap + PAGE, p, PAGE);
    CHECK_EQ(unlock(dev, h[1]), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    use(other);
    return dev;
}

/* The bystander's pages still hold what they held, the offered one too
 * (read where it lies: an offered allocation cannot be locked). */
static void bystander_untouched(struct drv *other, uint32_t dev, const uint32_t h[2],
                                const uint8_t *snap)
{
    struct vkmt_queue_stats s = qstats(other->q);
    uint8_t *p;

    CHECK_EQ(s.offered, PAGE);
    CHECK_EQ(s.committed, 2 * PAGE);
    CHECK_EQ(s.discarded, 0);
    CHECK_EQ(s.demoted, 0);
    use(other);
    CHECK_EQ(lock(dev, h[0], &p), VKMT_ST_SUCCESS);
    CHECK(memcmp(p, snap, PAGE) == 0);
    CHECK(memcmp(p + PAGE, snap + PAGE, PAGE) == 0); /* next-fit: h[1] follows h[0] */
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_SUCCESS);
    use(other);
}

static void a_squeezed_queue_loses_its_offers_then_demotes_only_its_own(void)
{
    struct drv other = two_queues(NL_PAGES);
    uint32_t a[4], b[2], dev, bdev;
    uint8_t snap[2 * PAGE];
    struct vkmt_queue_stats s;
    struct vkmt_qev e;

    bdev = bystander(&other, b, snap);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, a), VKMT_ST_SUCCESS);
    fill(dev, a[0], PAGE, 1);
    fill(dev, a[1], PAGE, 2);
    CHECK_EQ(offer(dev, &a[2], 2, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    s = qstats(0);
    CHECK_EQ(s.committed, 4 * PAGE);
    CHECK_EQ(s.resident, 2 * PAGE);
    CHECK_EQ(s.offered, 2 * PAGE);

    /* One page left: its two offers go (HIGH, yet before the bystander's
     * LOW one), then one resident page is demoted. */
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, PAGE), 0);
    s = qstats(0);
    CHECK_EQ(s.budget, PAGE);
    CHECK_EQ(s.budget_local, PAGE);
    CHECK_EQ(s.committed, PAGE);
    CHECK_EQ(s.offered, 0);
    CHECK_EQ(s.discarded, 2 * PAGE);
    CHECK_EQ(s.demoted, PAGE);
    bystander_untouched(&other, bdev, b, snap);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_BUDGET_CHANGED);
    CHECK_EQ(e.value, PAGE);
    CHECK(!next_event(0, &e)); /* it fits now: no trim request */
    CHECK(!next_event(other.q, &e));

    /* Demoted content comes back whole, once the budget allows. */
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, 0), 0);
    CHECK_EQ(content(dev, a[0], PAGE, 1), 1);
    CHECK_EQ(content(dev, a[1], PAGE, 2), 1);
    CHECK_EQ(qstats(0).budget_local, MIB / 2);
    done();
}

static void creation_beyond_a_queue_budget_fails_and_touches_no_other_queue(void)
{
    struct drv other = two_queues(0); /* no non-local segment: nothing to demote */
    uint32_t a[2], b[2], dev, bdev, more;
    uint8_t snap[2 * PAGE];
    struct vkmt_cqe c;

    bdev = bystander(&other, b, snap);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, a), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &a[1], 1, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, 2 * PAGE), 0);
    /* Its own offer makes room for one more page... */
    CHECK_EQ(create(dev, 1, PAGE, &more), VKMT_ST_SUCCESS);
    CHECK_EQ(qstats(0).discarded, PAGE);
    CHECK_EQ(qstats(0).committed, 2 * PAGE);
    /* ...and then nothing does, though the device has room to spare. */
    CHECK_EQ(create(dev, 1, PAGE, NULL), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    /* A reclaim that must recommit fails the same way, changing nothing. */
    CHECK_EQ(reclaim(dev, &a[1], 1, NULL), VKMT_ST_NO_MEMORY);
    CHECK_EQ(qstats(0).committed, 2 * PAGE);
    bystander_untouched(&other, bdev, b, snap);
    /* QUERY_MEMORY reports the smaller budget to this queue only. */
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY }, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 2 * PAGE);
    CHECK_EQ(c.value1, 2 * PAGE);
    CHECK_EQ(run_on(&other, (struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, MIB / 2);
    /* A budget above the device's changes nothing. */
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, MIB), 0);
    CHECK_EQ(qstats(0).budget_local, MIB / 2);
    CHECK_EQ(create(dev, 1, PAGE, NULL), VKMT_ST_SUCCESS);
    done();
}

static void locked_content_over_a_queue_budget_is_asked_back(void)
{
    struct drv other = two_queues(NL_PAGES);
    uint32_t a[2], dev;
    uint8_t *p;
    struct vkmt_qev e;

    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, a), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, a[0], &p), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, a[1], &p), VKMT_ST_SUCCESS);
    /* Locked content is never demoted: the queue stays a page over and is
     * told so. */
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, PAGE), 0);
    CHECK_EQ(qstats(0).committed, 2 * PAGE);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_BUDGET_CHANGED);
    CHECK_EQ(e.value, PAGE);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(e.value, PAGE);
    CHECK(!next_event(other.q, &e));
    /* What it then offers goes at once. */
    CHECK_EQ(unlock(dev, a[1]), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &a[1], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(qstats(0).committed, PAGE);
    CHECK_EQ(qstats(0).discarded, PAGE);
    /* The device's own budget change reports the smaller budget too. */
    vkmt_core_set_budget(F.core, 4 * PAGE);
    CHECK(next_event(0, &e));
    CHECK_EQ(e.type, VKMT_QEV_BUDGET_CHANGED);
    CHECK_EQ(e.value, PAGE);
    CHECK(next_event(other.q, &e));
    CHECK_EQ(e.value, 4 * PAGE);
    done();
}

static void make_resident_beyond_a_queue_budget_fails(void)
{
    struct drv other = two_queues(NL_PAGES);
    uint32_t a[2], dev, pq;
    struct vkmt_cqe c;

    (void)other;
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, a), VKMT_ST_SUCCESS);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, PAGE), 0);
    CHECK_EQ(qstats(0).demoted, PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev }, &c),
             VKMT_ST_SUCCESS);
    pq = (uint32_t)c.value0;
    /* Both at once cannot fit one page: the resident one is in the batch. */
    memcpy(staging(0), a, sizeof(a));
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_MAKE_RESIDENT,
                                    .handle = pq,
                                    .count = 2,
                                    .payload_len = sizeof(a) },
                 &c),
             VKMT_ST_NO_MEMORY);
    CHECK_EQ(c.value1, PAGE);
    CHECK_EQ(qstats(0).demoted, PAGE);
    done();
}

static void a_queue_budget_belongs_to_its_claim(void)
{
    struct drv other = two_queues(0);
    uint32_t q = other.q;

    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 2, PAGE), -EINVAL);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, q, MIB + PAGE), -EINVAL);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, q, 3 * PAGE), 0);
    CHECK_EQ(qstats(q).budget, 3 * PAGE);
    wr(VKMT_REG(queue_release), q);
    CHECK(!qstats(q).claimed);
    CHECK_EQ(qstats(q).budget, 0);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, q, PAGE), -ENOENT);
    other = claim();
    CHECK_EQ(other.q, q);
    CHECK_EQ(qstats(q).budget, 0);
    CHECK_EQ(qstats(q).budget_local, MIB / 2);
    done();
}

/* QUERY_QUEUE_STATS of queue @d into @out (@n records, on success); its status. */
static uint32_t query_queues(struct drv *d, uint32_t all, uint32_t n,
                             struct vkmt_wire_queue_stats *out, struct vkmt_cqe *c)
{
    uint32_t st = run_on(d,
                         (struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_QUEUE_STATS,
                                            .count = n,
                                            .arg0 = all,
                                            .result_off = 64,
                                            .result_len = n * (uint32_t)sizeof(*out) },
                         c);

    if (st == VKMT_ST_SUCCESS) {
        memcpy(out, staging(d->q) + 64, n * sizeof(*out));
    }
    return st;
}

static void query_queue_stats_reports_the_caller_or_every_queue(void)
{
    struct drv other = two_queues(0);
    struct vkmt_wire_queue_stats w[3];
    uint32_t a[3], dev;
    struct vkmt_cqe c;

    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, a), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &a[2], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(vkmt_core_set_queue_budget(F.core, 0, 2 * PAGE), 0);
    CHECK_EQ(query_queues(&F.d, 0, 1, w, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 1);
    CHECK_EQ(c.value1, 1);
    CHECK_EQ(w[0].queue, 0);
    CHECK_EQ(w[0].flags, VKMT_QSTATS_CALLER);
    CHECK_EQ(w[0].budget, 2 * PAGE);
    CHECK_EQ(w[0].budget_local, 2 * PAGE);
    CHECK_EQ(w[0].committed, 2 * PAGE);
    CHECK_EQ(w[0].resident, 2 * PAGE);
    CHECK_EQ(w[0].offered, 0);
    CHECK_EQ(w[0].discarded, PAGE);
    CHECK_EQ(w[0].demoted, 0);
    /* Every claimed queue, from queue 1: itself flagged, the rest zeroed. */
    memset(staging(other.q) + 64, 0xee, sizeof(w));
    CHECK_EQ(query_queues(&other, VKMT_QSTATS_ALL, 3, w, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 2);
    CHECK_EQ(c.value1, 2);
    CHECK_EQ(w[0].queue, 0);
    CHECK_EQ(w[0].flags, 0);
    CHECK_EQ(w[0].committed, 2 * PAGE);
    CHECK_EQ(w[1].queue, other.q);
    CHECK_EQ(w[1].flags, VKMT_QSTATS_CALLER);
    CHECK_EQ(w[1].budget_local, MIB / 2);
    CHECK_EQ(w[2].queue | w[2].committed | w[2].budget_local, 0);
    /* One record cannot hold both: the count says there were two. */
    CHECK_EQ(query_queues(&other, VKMT_QSTATS_ALL, 1, w, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 1);
    CHECK_EQ(c.value1, 2);
    /* Malformed: more than one record for the caller, unknown flags, a
     * misaligned or mis-sized area, too many records. */
    CHECK_EQ(query_queues(&F.d, 0, 2, w, &c), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(query_queues(&F.d, 2, 1, w, &c), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(query_queues(&F.d, VKMT_QSTATS_ALL, VKMT_MAX_QUEUES + 1, w, &c),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_QUEUE_STATS,
                                    .count = 1,
                                    .result_off = 68,
                                    .result_len = sizeof(w[0]) },
                 &c),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_QUEUE_STATS,
                                    .count = 1,
                                    .result_off = 64,
                                    .result_len = sizeof(w[0]) - 8 },
                 &c),
             VKMT_ST_INVALID_PARAMETER);
    done();
}

static void query_queue_stats_needs_its_feature(void)
{
    struct vkmt_wire_queue_stats w;
    struct vkmt_cqe c;

    setup_full(2, MIB, 0, VKMT_F_KNOWN & ~VKMT_F_QUEUE_STATS);
    CHECK_EQ(query_queues(&F.d, 0, 1, &w, &c), VKMT_ST_NOT_SUPPORTED);
    teardown();
}

const struct test core_quota_tests[] = {
    TEST(a_squeezed_queue_loses_its_offers_then_demotes_only_its_own),
    TEST(creation_beyond_a_queue_budget_fails_and_touches_no_other_queue),
    TEST(locked_content_over_a_queue_budget_is_asked_back),
    TEST(make_resident_beyond_a_queue_budget_fails),
    TEST(a_queue_budget_belongs_to_its_claim),
    TEST(query_queue_stats_reports_the_caller_or_every_queue),
    TEST(query_queue_stats_needs_its_feature),
};
const unsigned core_quota_ntests = sizeof(core_quota_tests) / sizeof(core_quota_tests[0]);
