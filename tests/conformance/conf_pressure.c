/* SPDX-License-Identifier: MIT */
/*
 * Conformance: memory pressure. Eviction order (LOW, then NORMAL and AUTO,
 * then HIGH; oldest offer first), pressure from the budget on creation and
 * on reclaim, trims, and the content guarantees around all of them. Sizes
 * are derived from the budget the device reports, so any budget works.
 */
#include <string.h>

#include "conf.h"

#define PAGE 4096u

static void eviction_follows_priority_then_age(void)
{
    struct conf c;
    D3DKMT_HANDLE h[7];
    const D3DKMT_OFFER_PRIORITY prio[7] = {
        D3DKMT_OFFER_PRIORITY_HIGH,  D3DKMT_OFFER_PRIORITY_NORMAL, D3DKMT_OFFER_PRIORITY_LOW,
        D3DKMT_OFFER_PRIORITY_AUTO,  D3DKMT_OFFER_PRIORITY_LOW,    D3DKMT_OFFER_PRIORITY_HIGH,
        D3DKMT_OFFER_PRIORITY_NORMAL
    };
    /* Which allocation each successive one-page trim must take. */
    const int expect[7] = { 2, 4, 1, 3, 6, 0, 5 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 7, PAGE, h), STATUS_SUCCESS);
    for (int i = 0; i < 7; i++) {
        CHECK_ST(conf_offer(&c, &h[i], 1, prio[i], 0), STATUS_SUCCESS);
    }
    for (int step = 0; step < 7; step++) {
        D3DDDI_RECLAIM_RESULT r;
        UINT64 freed = 0;

        CHECK_ST(vkmt_trim(c.adapter, PAGE, &freed), STATUS_SUCCESS);
        CHECK_EQ(freed, PAGE);
        /* Exactly the expected one is gone; the rest still hold content.
         * Probing with reclaim would change the order, so look only at it. */
        CHECK_ST(conf_reclaim2(&c, &h[expect[step]], 1, &r), STATUS_SUCCESS);
        CHECK_EQ(r, D3DDDI_RECLAIM_RESULT_DISCARDED);
    }
    conf_close(&c);
}

static void creation_under_pressure_discards_offered_content(void)
{
    struct conf c;
    D3DKMT_HANDLE h[8], more[3];
    D3DDDI_RECLAIM_RESULT r[8];
    UINT64 unit;

    if (!conf_open(&c)) {
        return;
    }
    unit = c.budget / 8 / PAGE * PAGE;
    CHECK_ST(conf_create(&c, 8, unit, h), STATUS_SUCCESS);
    for (int i = 0; i < 8; i++) {
        conf_fill(&c, h[i], unit, 60 + (unsigned)i);
    }
    /* Locked allocations are never demoted: nothing can make room. */
    for (int i = 0; i < 8; i++) {
        CHECK_ST(conf_lock(&c, h[i], NULL), STATUS_SUCCESS);
    }
    CHECK_ST(conf_create(&c, 1, PAGE, NULL), STATUS_GRAPHICS_NO_VIDEO_MEMORY);
    for (int i = 0; i < 8; i++) {
        CHECK_ST(conf_unlock(&c, h[i]), STATUS_SUCCESS);
    }
    CHECK_ST(conf_offer(&c, &h[0], 2, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[2], 2, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[6], 1, D3DKMT_OFFER_PRIORITY_AUTO, 0), STATUS_SUCCESS);
    /* Room for three: LOW first (h[2], h[3]), then AUTO (h[6]). */
    CHECK_ST(conf_create(&c, 3, unit, more), STATUS_SUCCESS);
    /* With every resident allocation locked (none can be demoted), no room. */
    for (int i = 0; i < 6; i++) {
        CHECK_ST(conf_lock(&c, i < 3 ? more[i] : h[(int[]){ 4, 5, 7 }[i - 3]], NULL),
                 STATUS_SUCCESS);
    }
    CHECK_ST(conf_reclaim2(&c, h, 8, NULL), STATUS_NO_MEMORY);
    for (int i = 0; i < 6; i++) {
        CHECK_ST(conf_unlock(&c, i < 3 ? more[i] : h[(int[]){ 4, 5, 7 }[i - 3]]), STATUS_SUCCESS);
    }
    CHECK_ST(conf_destroy(&c, 3, more), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 8, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[2], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[3], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[4], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[5], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[6], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[7], D3DDDI_RECLAIM_RESULT_OK);
    /* Every page of every allocation: zeros where discarded, else its own
     * pattern (h[4], h[5] and h[7] were never offered). */
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(conf_content(&c, h[i], unit, 60 + (unsigned)i),
                 r[i] == D3DDDI_RECLAIM_RESULT_DISCARDED ? 0 : 1);
    }
    CHECK_EQ(conf_usage(&c), 8 * unit);
    conf_close(&c);
}

static void a_reclaim_that_cannot_fit_changes_nothing(void)
{
    struct conf c;
    D3DKMT_HANDLE h[4], big[1];
    D3DDDI_RECLAIM_RESULT r[4];
    UINT64 unit;

    if (!conf_open(&c)) {
        return;
    }
    unit = c.budget / 4 / PAGE * PAGE;
    CHECK_ST(conf_create(&c, 4, unit, h), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++) {
        conf_fill(&c, h[i], unit, (unsigned)i);
    }
    CHECK_ST(conf_offer(&c, h, 4, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 2 * unit, NULL), STATUS_SUCCESS); /* h[0], h[1] */
    CHECK_ST(conf_create(&c, 1, 3 * unit, big), STATUS_SUCCESS);    /* evicts h[2] */
    /* h[0] and h[1] need 2 units; only h[3] (1 unit) could still be evicted,
     * and big, locked, cannot be demoted. */
    CHECK_ST(conf_lock(&c, big[0], NULL), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 2, r), STATUS_NO_MEMORY);
    CHECK_ST(conf_reclaim1(&c, h, 2, NULL), STATUS_NO_MEMORY);
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_INVALID_PARAMETER); /* still offered */
    CHECK_EQ(conf_usage(&c), 4 * unit);
    CHECK_ST(conf_unlock(&c, big[0]), STATUS_SUCCESS);
    CHECK_ST(conf_destroy(&c, 1, big), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 4, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[2], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[3], D3DDDI_RECLAIM_RESULT_OK); /* the failed reclaims left it be */
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(conf_content(&c, h[i], unit, (unsigned)i), i == 3 ? 1 : 0);
    }
    conf_close(&c);
}

static void trim_reports_bytes_and_lowers_usage(void)
{
    struct conf c;
    D3DKMT_HANDLE h[4];
    UINT64 freed = 1;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 4, 3 * PAGE, h), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 0, &freed), STATUS_SUCCESS);
    CHECK_EQ(freed, 0); /* nothing offered: nothing to take */
    CHECK_ST(conf_offer(&c, h, 3, D3DKMT_OFFER_PRIORITY_NORMAL, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 1, &freed), STATUS_SUCCESS);
    CHECK_EQ(freed, 3 * PAGE); /* whole allocations */
    CHECK_EQ(conf_usage(&c), 9 * PAGE);
    CHECK_ST(vkmt_trim(c.adapter, 0, &freed), STATUS_SUCCESS);
    CHECK_EQ(freed, 6 * PAGE);
    CHECK_EQ(conf_usage(&c), 3 * PAGE);
    CHECK_ST(vkmt_trim(c.dev, 0, &freed), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

/* The eviction class PROTOCOL.md section 9 gives a priority: LOW first,
 * NORMAL and AUTO together, HIGH last. */
static int evict_class(int prio)
{
    return prio == D3DKMT_OFFER_PRIORITY_LOW ? 0 : prio == D3DKMT_OFFER_PRIORITY_HIGH ? 2 : 1;
}

/*
 * Six rounds of offers at mixed priorities, a trim and a reclaim of all.
 * What must be discarded comes from a model of the eviction order written
 * here, not from the device: each round the trim takes whole allocations,
 * class by class and oldest offer first, until it has its bytes. The device's
 * reclaim results, the bytes the trim reports, the usage and every page of
 * content must all agree with the model.
 */
static void content_guarantees_under_repeated_pressure(void)
{
    enum { N = 32, SIZE = 2 * PAGE };
    struct conf c;
    D3DKMT_HANDLE h[N];
    unsigned seed[N];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, N, SIZE, h), STATUS_SUCCESS);
    for (int i = 0; i < N; i++) {
        seed[i] = (unsigned)i;
        conf_fill(&c, h[i], SIZE, seed[i]);
    }
    for (int round = 0; round < 6; round++) {
        int prio[N] = { 0 }, lost[N] = { 0 };
        UINT64 want = (UINT64)(round + 1) * 4 * PAGE, freed = 0, model = 0, before;

        for (int i = 0; i < N; i++) {
            if ((i + round) % 3 != 0) { /* every third one is never offered */
                prio[i] = 1 + (i + round) % 4;
                CHECK_ST(conf_offer(&c, &h[i], 1, (D3DKMT_OFFER_PRIORITY)prio[i], 0),
                         STATUS_SUCCESS);
            }
        }
        /* The model: offers were made in index order, one at a time. */
        for (int cls = 0; cls < 3 && model < want; cls++) {
            for (int i = 0; i < N && model < want; i++) {
                if (prio[i] && evict_class(prio[i]) == cls) {
                    lost[i] = 1;
                    model += SIZE;
                }
            }
        }
        before = conf_usage(&c);
        CHECK_ST(vkmt_trim(c.adapter, want, &freed), STATUS_SUCCESS);
        CHECK_EQ(freed, model);
        CHECK_EQ(before - conf_usage(&c), model);
        for (int i = 0; i < N; i++) {
            D3DDDI_RECLAIM_RESULT r = (D3DDDI_RECLAIM_RESULT)9;

            CHECK_ST(conf_reclaim2(&c, &h[i], 1, &r), STATUS_SUCCESS);
            CHECK_EQ(r, lost[i] ? D3DDDI_RECLAIM_RESULT_DISCARDED : D3DDDI_RECLAIM_RESULT_OK);
            CHECK_EQ(conf_content(&c, h[i], SIZE, seed[i]), lost[i] ? 0 : 1);
            if (lost[i]) { /* new content for the next rounds to keep */
                seed[i] += N;
                conf_fill(&c, h[i], SIZE, seed[i]);
            }
        }
        CHECK_EQ(conf_usage(&c), before);
    }
    conf_close(&c);
}

const struct test conf_pressure_tests[] = {
    TEST(eviction_follows_priority_then_age),
    TEST(creation_under_pressure_discards_offered_content),
    TEST(a_reclaim_that_cannot_fit_changes_nothing),
    TEST(trim_reports_bytes_and_lowers_usage),
    TEST(content_guarantees_under_repeated_pressure),
};
CONF_COUNT(conf_pressure_tests);
