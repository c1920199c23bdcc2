/* SPDX-License-Identifier: MIT */
/*
 * Conformance: D3DKMTOfferAllocations validation, and the choices this
 * project made where Windows leaves the behaviour open (see PROTOCOL.md).
 */
#include "conf.h"

static void offer_checks_count_and_lists(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];
    D3DKMT_OFFERALLOCATIONS o = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 4096, h), STATUS_SUCCESS);
    o.hDevice = c.dev;
    o.Priority = D3DKMT_OFFER_PRIORITY_LOW;
    o.HandleList = h;
    o.NumAllocations = 0;
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    o.NumAllocations = 10241;
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    o.NumAllocations = 2;
    o.HandleList = NULL; /* neither list */
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    o.HandleList = h;
    o.pResources = h; /* both lists */
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    o.pResources = NULL;
    o.HandleList = conf_unreadable();
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    o.HandleList = (const D3DKMT_HANDLE *)(uintptr_t)16;
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    o.HandleList = h;
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_SUCCESS); /* nothing offered */
    CHECK_ST(conf_unlock(&c, h[0]), STATUS_SUCCESS);
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_SUCCESS);
    conf_close(&c);
}

static void offer_checks_device_priority_and_flags(void)
{
    struct conf c;
    D3DKMT_HANDLE h[1];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, (D3DKMT_OFFER_PRIORITY)0, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, h, 1, (D3DKMT_OFFER_PRIORITY)5, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, h, 1, (D3DKMT_OFFER_PRIORITY)-1, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0x4), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0x80000000u),
             STATUS_INVALID_PARAMETER);
    {
        struct conf wrong = c;

        wrong.dev = c.pq; /* the caller's paging queue is not a device */
        CHECK_ST(conf_offer(&wrong, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
        wrong.dev = c.adapter;
        CHECK_ST(conf_offer(&wrong, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
        wrong.dev = 0;
        CHECK_ST(conf_offer(&wrong, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    }
    /* Both defined flags, and every priority, are accepted. */
    for (int p = D3DKMT_OFFER_PRIORITY_LOW; p <= D3DKMT_OFFER_PRIORITY_AUTO; p++) {
        CHECK_ST(conf_offer(&c, h, 1, (D3DKMT_OFFER_PRIORITY)p, 0x3), STATUS_SUCCESS);
        CHECK_ST(conf_reclaim2(&c, h, 1, NULL), STATUS_SUCCESS);
    }
    conf_close(&c);
}

static void offer_of_an_offered_allocation_is_refused(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    /* ...and so is any batch containing it: h[1] stays usable. */
    CHECK_ST(conf_offer(&c, h, 2, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_lock(&c, h[1], NULL), STATUS_SUCCESS);
    CHECK_ST(conf_unlock(&c, h[1]), STATUS_SUCCESS);
    /* The refused re-offer did not lower the priority: a HIGH offer outlives
     * a later LOW one under pressure. */
    CHECK_ST(conf_offer(&c, &h[1], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 4096, NULL), STATUS_SUCCESS);
    {
        D3DDDI_RECLAIM_RESULT r[2];

        CHECK_ST(conf_reclaim2(&c, h, 2, r), STATUS_SUCCESS);
        CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_OK);
        CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_DISCARDED);
    }
    conf_close(&c);
}

static void duplicates_and_strangers_spoil_the_batch(void)
{
    struct conf c, other;
    D3DKMT_HANDLE h[3], theirs[1];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 3, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, (D3DKMT_HANDLE[]){ h[0], h[1], h[0] }, 3, D3DKMT_OFFER_PRIORITY_LOW, 0),
             STATUS_INVALID_PARAMETER);
    CHECK_ST(
        conf_offer(&c, (D3DKMT_HANDLE[]){ h[0], h[1], h[2] + 1 }, 3, D3DKMT_OFFER_PRIORITY_LOW, 0),
        STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, (D3DKMT_HANDLE[]){ h[0], c.dev }, 2, D3DKMT_OFFER_PRIORITY_LOW, 0),
             STATUS_INVALID_PARAMETER);
    /* An allocation of another device is not this device's. */
    other = c;
    {
        D3DKMT_CREATEDEVICE cd = { .hAdapter = c.adapter };

        CHECK_ST(D3DKMTCreateDevice(&cd), STATUS_SUCCESS);
        other.dev = cd.hDevice;
    }
    CHECK_ST(conf_create(&other, 1, 4096, theirs), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, (D3DKMT_HANDLE[]){ h[0], theirs[0] }, 2, D3DKMT_OFFER_PRIORITY_LOW, 0),
             STATUS_INVALID_PARAMETER);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(conf_lock(&c, h[i], NULL), STATUS_SUCCESS); /* none offered */
        CHECK_ST(conf_unlock(&c, h[i]), STATUS_SUCCESS);
    }
    conf_close(&c);
}

/* The last element of a batch is checked like the others: an offered, then
 * a locked, allocation at the end refuses the whole batch. */
static void a_bad_last_element_spoils_the_batch(void)
{
    struct conf c;
    D3DKMT_HANDLE h[3];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 3, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[2], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 3, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_reclaim2(&c, &h[2], 1, NULL), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, h[2], NULL), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 3, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_unlock(&c, h[2]), STATUS_SUCCESS);
    for (int i = 0; i < 2; i++) { /* neither refused batch offered them */
        CHECK_ST(conf_lock(&c, h[i], NULL), STATUS_SUCCESS);
        CHECK_ST(conf_unlock(&c, h[i]), STATUS_SUCCESS);
    }
    conf_close(&c);
}

static void locked_allocations_cannot_be_offered(void)
{
    struct conf c;
    D3DKMT_HANDLE h[1];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_unlock(&c, h[0]), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_INVALID_PARAMETER); /* offered */
    conf_close(&c);
}

const struct test conf_offer_tests[] = {
    TEST(offer_checks_count_and_lists),
    TEST(offer_checks_device_priority_and_flags),
    TEST(offer_of_an_offered_allocation_is_refused),
    TEST(duplicates_and_strangers_spoil_the_batch),
    TEST(a_bad_last_element_spoils_the_batch),
    TEST(locked_allocations_cannot_be_offered),
};
CONF_COUNT(conf_offer_tests);
