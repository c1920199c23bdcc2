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
    conf_fill(&c, h[7], PAGE, 77);
    conf_fill(&c, h[6], PAGE, 66);
    CHECK_ST(conf_create(&c, 1, PAGE, NULL), STATUS_GRAPHICS_NO_VIDEO_MEMORY);
    CHECK_ST(conf_offer(&c, &h[0], 2, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[2], 2, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[6], 1, D3DKMT_OFFER_PRIORITY_AUTO, 0), STATUS_SUCCESS);
    /* Room for three: LOW first (h[2], h[3]), then AUTO (h[6]). */
    CHECK_ST(conf_create(&c, 3, unit, more), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 8, NULL), STATUS_NO_MEMORY); /* no room left */
    CHECK_ST(conf_destroy(&c, 3, more), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 8, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[2], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[3], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[4], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[6], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(conf_content(&c, h[6], PAGE, 66), 0);
    CHECK_EQ(conf_content(&c, h[7], PAGE, 77), 1); /* never offered */
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
    conf_fill(&c, h[3], PAGE, 3);
    CHECK_ST(conf_offer(&c, h, 4, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 2 * unit, NULL), STATUS_SUCCESS); /* h[0], h[1] */
    CHECK_ST(conf_create(&c, 1, 3 * unit, big), STATUS_SUCCESS);    /* evicts h[2] */
    /* h[0] and h[1] need 2 units; only h[3] (1 unit) could still be evicted. */
    CHECK_ST(conf_reclaim2(&c, h, 2, r), STATUS_NO_MEMORY);
    CHECK_ST(conf_reclaim1(&c, h, 2, NULL), STATUS_NO_MEMORY);
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_INVALID_PARAMETER); /* still offered */
    CHECK_EQ(conf_usage(&c), 4 * unit);
    CHECK_ST(conf_destroy(&c, 1, big), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 4, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[2], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[3], D3DDDI_RECLAIM_RESULT_OK); /* the failed reclaims left it be */
    CHECK_EQ(conf_content(&c, h[3], PAGE, 3), 1);
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

static void content_guarantees_under_repeated_pressure(void)
{
    enum { N = 32 };
    struct conf c;
    D3DKMT_HANDLE h[N];
    D3DDDI_RECLAIM_RESULT r[N];
    int state[N]; /* 1: pattern expected, 0: zeros expected */

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, N, 2 * PAGE, h), STATUS_SUCCESS);
    for (int i = 0; i < N; i++) {
        conf_fill(&c, h[i], 2 * PAGE, (unsigned)i);
        state[i] = 1;
    }
    for (int round = 0; round < 6; round++) {
        int offered[N] = { 0 };

        for (int i = 0; i < N; i++) {
            if ((i + round) % 3 != 0) { /* every third one is never offered */
                offered[i] = 1;
                CHECK_ST(conf_offer(&c, &h[i], 1, (D3DKMT_OFFER_PRIORITY)(1 + (i + round) % 4), 0),
                         STATUS_SUCCESS);
            }
        }
        CHECK_ST(vkmt_trim(c.adapter, (UINT64)(round + 1) * 4 * PAGE, NULL), STATUS_SUCCESS);
        for (int i = 0; i < N; i++) {
            if (!offered[i]) {
                continue;
            }
            CHECK_ST(conf_reclaim2(&c, &h[i], 1, &r[i]), STATUS_SUCCESS);
            if (r[i] == D3DDDI_RECLAIM_RESULT_DISCARDED) {
                state[i] = 0;
            }
        }
        for (int i = 0; i < N; i++) {
            CHECK_EQ(conf_content(&c, h[i], 2 * PAGE, (unsigned)i), state[i]);
        }
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
