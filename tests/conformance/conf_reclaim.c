/* SPDX-License-Identifier: MIT */
/*
 * Conformance: D3DKMTReclaimAllocations and D3DKMTReclaimAllocations2:
 * validation, every per-allocation result, both output forms, and batches
 * of 1, 2, 64 and 10240 handles.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"

static void reclaim_checks_its_arguments(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];
    D3DKMT_RECLAIMALLOCATIONS2 r = { 0 };
    D3DKMT_RECLAIMALLOCATIONS r1 = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 4096, h), STATUS_SUCCESS);
    r.hPagingQueue = c.pq;
    r.HandleList = h;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER); /* 0 */
    r.NumAllocations = 10241;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER);
    r.NumAllocations = 2;
    r.pResources = h;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER); /* both */
    r.pResources = NULL;
    r.HandleList = NULL;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER); /* none */
    r.HandleList = conf_unreadable();
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER);
    r.HandleList = h;
    r.hPagingQueue = c.dev; /* a device is not a paging queue */
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER);
    r.hPagingQueue = c.sync;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_INVALID_PARAMETER);
    r.hPagingQueue = c.pq;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_SUCCESS); /* NULL results */
    r1.hDevice = c.pq;
    r1.HandleList = h;
    r1.NumAllocations = 2;
    CHECK_ST(D3DKMTReclaimAllocations(&r1), STATUS_INVALID_PARAMETER);
    r1.hDevice = c.dev;
    CHECK_ST(D3DKMTReclaimAllocations(&r1), STATUS_SUCCESS); /* NULL pDiscarded */
    r1.NumAllocations = 0;
    CHECK_ST(D3DKMTReclaimAllocations(&r1), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void unwritable_results_stop_the_call_before_the_device(void)
{
    struct conf c;
    D3DKMT_HANDLE h[1];
    D3DDDI_RECLAIM_RESULT r[1];
    BOOL d[1];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 0, NULL), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 1, conf_readonly()), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_reclaim1(&c, h, 1, conf_readonly()), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_reclaim1(&c, h, 1, (BOOL *)conf_unreadable()), STATUS_INVALID_PARAMETER);
    /* Had any of those acted, this would say OK: the loss is still reported. */
    CHECK_ST(conf_reclaim2(&c, h, 1, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_ST(conf_reclaim1(&c, h, 1, d), STATUS_SUCCESS);
    CHECK_EQ(d[0], 0);
    conf_close(&c);
}

static void every_reclaim_result(void)
{
    struct conf c;
    D3DKMT_HANDLE h[4];
    D3DDDI_RECLAIM_RESULT r[4];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 4, 8192, h), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++) {
        conf_fill(&c, h[i], 8192, (unsigned)i);
    }
    /* h[0] offered and kept, h[1] discarded, h[2] decommitted, h[3] never offered. */
    CHECK_ST(conf_offer(&c, &h[0], 1, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[1], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[2], 1, D3DKMT_OFFER_PRIORITY_LOW, 0x2), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 2 * 8192, NULL), STATUS_SUCCESS);
    memset(r, 0x7f, sizeof(r));
    CHECK_ST(conf_reclaim2(&c, h, 4, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[2], D3DDDI_RECLAIM_RESULT_NOT_COMMITTED);
    CHECK_EQ(r[3], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(conf_content(&c, h[0], 8192, 0), 1);
    CHECK_EQ(conf_content(&c, h[1], 8192, 1), 0);
    CHECK_EQ(conf_content(&c, h[3], 8192, 3), 1);
    /* Not committed: unusable until destroyed, and reported again as such. */
    CHECK_ST(conf_lock(&c, h[2], NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, &h[2], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_reclaim2(&c, &h[2], 1, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_NOT_COMMITTED);
    CHECK_ST(conf_destroy(&c, 1, &h[2]), STATUS_SUCCESS);
    conf_close(&c);
}

static void not_committed_needs_allow_decommit(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];
    D3DDDI_RECLAIM_RESULT r[2];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 2, D3DKMT_OFFER_PRIORITY_NORMAL, 0x1), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 0, NULL), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 2, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_DISCARDED);
    conf_close(&c);
}

static void v1_reclaim_gives_decommitted_allocations_new_memory(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];
    BOOL d[2] = { 7, 7 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 4096, h), STATUS_SUCCESS);
    conf_fill(&c, h[0], 4096, 5);
    conf_fill(&c, h[1], 4096, 6);
    CHECK_ST(conf_offer(&c, &h[0], 1, D3DKMT_OFFER_PRIORITY_LOW, 0x2), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[1], 1, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 4096, NULL), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim1(&c, h, 2, d), STATUS_SUCCESS);
    CHECK_EQ(d[0], 1); /* BOOL TRUE: content lost, allocation usable */
    CHECK_EQ(d[1], 0);
    CHECK_EQ(conf_content(&c, h[0], 4096, 5), 0);
    CHECK_EQ(conf_content(&c, h[1], 4096, 6), 1);
    conf_close(&c);
}

static void reclaim_of_a_resident_allocation_is_ok(void)
{
    struct conf c;
    D3DKMT_HANDLE h[1];
    D3DDDI_RECLAIM_RESULT r[1] = { D3DDDI_RECLAIM_RESULT_NOT_COMMITTED };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, 4096, h), STATUS_SUCCESS);
    conf_fill(&c, h[0], 4096, 2);
    CHECK_ST(conf_reclaim2(&c, h, 1, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(conf_content(&c, h[0], 4096, 2), 1);
    /* Duplicates are refused in reclaims too. */
    CHECK_ST(conf_reclaim2(&c, (D3DKMT_HANDLE[]){ h[0], h[0] }, 2, NULL), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void reclaim_through_another_devices_paging_queue(void)
{
    struct conf c, other;
    D3DKMT_HANDLE h[1];
    D3DKMT_CREATEDEVICE cd;
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    cd = (D3DKMT_CREATEDEVICE){ .hAdapter = c.adapter };
    CHECK_ST(D3DKMTCreateDevice(&cd), STATUS_SUCCESS);
    pq.hDevice = cd.hDevice;
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_SUCCESS);
    other = c;
    other.pq = pq.hPagingQueue;
    CHECK_ST(conf_create(&c, 1, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&other, h, 1, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_reclaim2(&c, h, 1, NULL), STATUS_SUCCESS);
    conf_close(&c);
}

/* Allocation @i of a batch of @n has its content checked: 64 of them spread
 * over any batch (all of a small one), so the cost stays flat at 10240. */
static int sampled(UINT i, UINT n)
{
    UINT step = n > 64 ? n / 64 : 1;

    return i % step == 0 || i == n - 1 || i == n / 2 || i + 1 == n / 2;
}

static void batch(UINT n)
{
    struct conf c;
    D3DKMT_HANDLE *h = calloc(n, sizeof(*h));
    D3DDDI_RECLAIM_RESULT *r = calloc(n + 1, sizeof(*r));
    BOOL *d = calloc(n + 1, sizeof(*d));
    UINT64 freed = 0;
    int ok = 1;

    if (!h || !r || !d || !conf_open(&c)) {
        free(h);
        free(r);
        free(d);
        return;
    }
    CHECK_ST(conf_create(&c, n, 4096, h), STATUS_SUCCESS);
    for (UINT i = 0; i < n; i++) {
        if (sampled(i, n)) {
            conf_fill(&c, h[i], 4096, i + 1);
        }
    }
    CHECK_ST(conf_offer(&c, h, n, D3DKMT_OFFER_PRIORITY_NORMAL, 0), STATUS_SUCCESS);
    /* The oldest offers go first: exactly the first half. */
    if (n / 2) { /* a trim of 0 bytes would mean "everything" */
        CHECK_ST(vkmt_trim(c.adapter, (UINT64)(n / 2) * 4096, &freed), STATUS_SUCCESS);
        CHECK_EQ(freed, (UINT64)(n / 2) * 4096);
    }
    r[n] = (D3DDDI_RECLAIM_RESULT)0x55; /* guard after the array */
    CHECK_ST(conf_reclaim2(&c, h, n, r), STATUS_SUCCESS);
    for (UINT i = 0; i < n; i++) {
        ok &= r[i] == (i < n / 2 ? D3DDDI_RECLAIM_RESULT_DISCARDED : D3DDDI_RECLAIM_RESULT_OK);
    }
    CHECK(ok);
    CHECK_EQ(r[n], 0x55);
    /* Discarded ones read zeros, the rest their own pattern. */
    ok = 1;
    for (UINT i = 0; i < n; i++) {
        if (sampled(i, n)) {
            ok &= conf_content(&c, h[i], 4096, i + 1) == (i < n / 2 ? 0 : 1);
        }
    }
    CHECK(ok);
    /* Again through the v1 thunk and a BOOL array. */
    CHECK_ST(conf_offer(&c, h, n, D3DKMT_OFFER_PRIORITY_NORMAL, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, (UINT64)(n - n / 2) * 4096, NULL), STATUS_SUCCESS);
    d[n] = 0x55;
    CHECK_ST(conf_reclaim1(&c, h, n, d), STATUS_SUCCESS);
    ok = 1;
    for (UINT i = 0; i < n; i++) {
        ok &= d[i] == (i < n - n / 2);
    }
    CHECK(ok);
    CHECK_EQ(d[n], 0x55);
    CHECK_ST(conf_destroy(&c, n, h), STATUS_SUCCESS);
    CHECK_EQ(conf_usage(&c), 0);
    conf_close(&c);
    free(h);
    free(r);
    free(d);
}

static void batch_of_1(void)
{
    batch(1);
}

static void batch_of_2(void)
{
    batch(2);
}

static void batch_of_64(void)
{
    batch(64);
}

static void batch_of_10240(void)
{
    batch(10240);
}

const struct test conf_reclaim_tests[] = {
    TEST(reclaim_checks_its_arguments),
    TEST(unwritable_results_stop_the_call_before_the_device),
    TEST(every_reclaim_result),
    TEST(not_committed_needs_allow_decommit),
    TEST(v1_reclaim_gives_decommitted_allocations_new_memory),
    TEST(reclaim_of_a_resident_allocation_is_ok),
    TEST(reclaim_through_another_devices_paging_queue),
    TEST(batch_of_1),
    TEST(batch_of_2),
    TEST(batch_of_64),
    TEST(batch_of_10240),
};
CONF_COUNT(conf_reclaim_tests);
