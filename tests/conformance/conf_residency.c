/* SPDX-License-Identifier: MIT */
/*
 * Conformance: residency. MakeResident, Evict, Set/GetAllocationPriority,
 * QueryAllocationResidency and ChangeVideoMemoryReservation: validation in
 * the order the thunks apply it, bad handles and pointers, counting, and
 * demotion to the non-local segment with every byte kept. Sizes follow the
 * budget the device reports; the demotion tests need a non-local segment
 * at least as large as the budget and say so when there is none.
 */
#include <stdint.h>

#include "conf.h"

#define PAGE 4096u
#define SMALL (16u * PAGE)

static NTSTATUS make_resident(struct conf *c, const D3DKMT_HANDLE *h, UINT n, UINT flags,
                              D3DDDI_MAKERESIDENT *out)
{
    D3DDDI_MAKERESIDENT m = { .hPagingQueue = c->pq, .NumAllocations = n, .AllocationList = h };
    NTSTATUS st;

    m.Flags.Value = flags;
    st = D3DKMTMakeResident(&m);
    if (out) {
        *out = m;
    }
    return st;
}

static NTSTATUS evict(struct conf *c, const D3DKMT_HANDLE *h, UINT n, UINT flags, UINT64 *trim)
{
    D3DKMT_EVICT e = { .hDevice = c->dev, .NumAllocations = n, .AllocationList = h };
    NTSTATUS st;

    e.Flags.Value = flags;
    st = D3DKMTEvict(&e);
    if (trim) {
        *trim = e.NumBytesToTrim;
    }
    return st;
}

static NTSTATUS set_prio(struct conf *c, D3DKMT_HANDLE h, UINT prio)
{
    D3DKMT_SETALLOCATIONPRIORITY s = {
        .hDevice = c->dev, .phAllocationList = &h, .AllocationCount = 1, .pPriorities = &prio
    };

    return D3DKMTSetAllocationPriority(&s);
}

static D3DKMT_ALLOCATIONRESIDENCYSTATUS residency(struct conf *c, D3DKMT_HANDLE h)
{
    D3DKMT_ALLOCATIONRESIDENCYSTATUS r = 0;
    D3DKMT_QUERYALLOCATIONRESIDENCY q = {
        .hDevice = c->dev, .phAllocationList = &h, .AllocationCount = 1, .pResidencyStatus = &r
    };

    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_SUCCESS);
    return r;
}

static D3DKMT_QUERYVIDEOMEMORYINFO memory(struct conf *c, D3DKMT_MEMORY_SEGMENT_GROUP g)
{
    D3DKMT_QUERYVIDEOMEMORYINFO q = { .hAdapter = c->adapter, .MemorySegmentGroup = g };

    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_SUCCESS);
    return q;
}

/* Whether demotion can be tested: a non-local segment of the budget's size. */
static int have_nonlocal(struct conf *c)
{
    if (memory(c, D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL).Budget < c->budget) {
        harness_skip("no non-local segment as large as the budget");
        return 0;
    }
    return 1;
}

/*
 * Fills the budget: one filler of MAXIMUM priority and @n SMALL allocations
 * of LOW priority in @h, each filled with its own pattern. Returns the filler.
 */
static D3DKMT_HANDLE fill_budget(struct conf *c, D3DKMT_HANDLE *h, UINT n)
{
    D3DKMT_HANDLE filler = 0;

    CHECK_ST(conf_create(c, 1, c->budget - (UINT64)n * SMALL, &filler), STATUS_SUCCESS);
    CHECK_ST(set_prio(c, filler, D3DDDI_ALLOCATIONPRIORITY_MAXIMUM), STATUS_SUCCESS);
    CHECK_ST(conf_create(c, n, SMALL, h), STATUS_SUCCESS);
    for (UINT i = 0; i < n; i++) {
        CHECK_ST(set_prio(c, h[i], D3DDDI_ALLOCATIONPRIORITY_LOW), STATUS_SUCCESS);
        conf_fill(c, h[i], SMALL, 90 + i);
    }
    return filler;
}

static UINT count_status(struct conf *c, const D3DKMT_HANDLE *h, UINT n,
                         D3DKMT_ALLOCATIONRESIDENCYSTATUS want)
{
    UINT k = 0;

    for (UINT i = 0; i < n; i++) {
        k += residency(c, h[i]) == want;
    }
    return k;
}

static void make_resident_checks_in_order(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];
    D3DDDI_MAKERESIDENT m;
    void *bad = conf_unreadable();

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, PAGE, h), STATUS_SUCCESS);
    CHECK_ST(D3DKMTMakeResident(NULL), STATUS_INVALID_PARAMETER);
    /* The count first, before the queue is looked at. */
    m = (D3DDDI_MAKERESIDENT){ .hPagingQueue = 0, .NumAllocations = 0, .AllocationList = h };
    CHECK_ST(D3DKMTMakeResident(&m), STATUS_INVALID_PARAMETER);
    m.NumAllocations = 10241;
    m.hPagingQueue = c.pq;
    CHECK_ST(D3DKMTMakeResident(&m), STATUS_INVALID_PARAMETER);
    m.NumAllocations = 2;
    m.hPagingQueue = c.dev; /* a device is not a paging queue */
    CHECK_ST(D3DKMTMakeResident(&m), STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, h, 2, 0x4, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, h, 2, 0x2, NULL), STATUS_INVALID_PARAMETER); /* MustSucceed alone */
    CHECK_ST(make_resident(&c, NULL, 2, 0, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, bad, 2, 0, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, (D3DKMT_HANDLE[]){ h[0], 0x7777 }, 2, 0, NULL),
             STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, (D3DKMT_HANDLE[]){ h[0], h[0] }, 2, 0, NULL),
             STATUS_INVALID_PARAMETER);
    /* None of those took a count: one Evict each would fail. */
    CHECK_ST(evict(&c, h, 1, 0, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, h, 2, 0x3, &m), STATUS_SUCCESS);
    CHECK_EQ(m.NumBytesToTrim, 0);
    CHECK_EQ(m.PagingFenceValue, *c.fence); /* resident already: the fence is reached */
    CHECK_EQ(residency(&c, h[0]), D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY);
    conf_close(&c);
}

static void evict_undoes_make_resident_one_by_one(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];
    D3DKMT_EVICT e = { 0 };
    UINT64 trim = 1;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, PAGE, h), STATUS_SUCCESS);
    CHECK_ST(D3DKMTEvict(NULL), STATUS_INVALID_PARAMETER);
    e = (D3DKMT_EVICT){ .hDevice = c.dev, .NumAllocations = 0, .AllocationList = h };
    CHECK_ST(D3DKMTEvict(&e), STATUS_INVALID_PARAMETER);
    e = (D3DKMT_EVICT){ .hDevice = c.pq, .NumAllocations = 1, .AllocationList = h };
    CHECK_ST(D3DKMTEvict(&e), STATUS_INVALID_PARAMETER);
    CHECK_ST(evict(&c, NULL, 1, 0, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(evict(&c, conf_unreadable(), 1, 0, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(make_resident(&c, h, 2, 0, NULL), STATUS_SUCCESS);
    CHECK_ST(make_resident(&c, h, 1, 0, NULL), STATUS_SUCCESS);
    CHECK_ST(evict(&c, h, 2, 0x4, NULL), STATUS_INVALID_PARAMETER);
    /* h[0] twice, h[1] once: the second Evict of both fails whole. */
    CHECK_ST(evict(&c, h, 2, 1, &trim), STATUS_SUCCESS);
    CHECK_EQ(trim, 0);
    CHECK_ST(evict(&c, h, 2, 1, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(evict(&c, h, 1, 1, NULL), STATUS_SUCCESS);
    CHECK_ST(evict(&c, h, 1, 1, NULL), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void priorities_by_allocation_and_by_resource(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2], m[2], res;
    UINT prio[2] = { 0x78000001u, D3DDDI_ALLOCATIONPRIORITY_HIGH }, got[2] = { 0 }, one = 0;
    D3DKMT_SETALLOCATIONPRIORITY s;
    D3DKMT_GETALLOCATIONPRIORITY g;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, PAGE, h), STATUS_SUCCESS);
    CHECK_ST(conf_create_resource(&c, 2, PAGE, m, &res), STATUS_SUCCESS);
    g = (D3DKMT_GETALLOCATIONPRIORITY){
        .hDevice = c.dev, .phAllocationList = h, .AllocationCount = 2, .pPriorities = got
    };
    CHECK_ST(D3DKMTGetAllocationPriority(&g), STATUS_SUCCESS);
    CHECK_EQ(got[0], D3DDDI_ALLOCATIONPRIORITY_NORMAL);
    s = (D3DKMT_SETALLOCATIONPRIORITY){
        .hDevice = c.dev, .phAllocationList = h, .AllocationCount = 2, .pPriorities = prio
    };
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_SUCCESS);
    CHECK_ST(D3DKMTGetAllocationPriority(&g), STATUS_SUCCESS);
    CHECK_EQ(got[0], prio[0]);
    CHECK_EQ(got[1], prio[1]);
    /* A resource: one priority for all its allocations, one answer back. */
    s = (D3DKMT_SETALLOCATIONPRIORITY){ .hDevice = c.dev, .hResource = res, .pPriorities = prio };
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_SUCCESS);
    g = (D3DKMT_GETALLOCATIONPRIORITY){ .hDevice = c.dev, .hResource = res, .pPriorities = &one };
    CHECK_ST(D3DKMTGetAllocationPriority(&g), STATUS_SUCCESS);
    CHECK_EQ(one, prio[0]);
    /* Exactly one addressing mode; the arrays must be there and usable. */
    s.phAllocationList = h;
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_INVALID_PARAMETER);
    s = (D3DKMT_SETALLOCATIONPRIORITY){ .hDevice = c.dev, .pPriorities = prio };
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_INVALID_PARAMETER);
    s = (D3DKMT_SETALLOCATIONPRIORITY){
        .hDevice = c.dev, .phAllocationList = h, .AllocationCount = 2, .pPriorities = NULL
    };
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_INVALID_PARAMETER);
    s.pPriorities = conf_unreadable();
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_INVALID_PARAMETER);
    s = (D3DKMT_SETALLOCATIONPRIORITY){
        .hDevice = c.pq, .phAllocationList = h, .AllocationCount = 2, .pPriorities = prio
    };
    CHECK_ST(D3DKMTSetAllocationPriority(&s), STATUS_INVALID_PARAMETER);
    g = (D3DKMT_GETALLOCATIONPRIORITY){ .hDevice = c.dev,
                                        .phAllocationList = h,
                                        .AllocationCount = 2,
                                        .pPriorities = conf_readonly() };
    CHECK_ST(D3DKMTGetAllocationPriority(&g), STATUS_INVALID_PARAMETER);
    g.pPriorities = got;
    g.phAllocationList = (D3DKMT_HANDLE[]){ h[0], 0x7777 };
    CHECK_ST(D3DKMTGetAllocationPriority(&g), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void residency_of_allocations_and_resources(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2], m[2], res;
    D3DKMT_ALLOCATIONRESIDENCYSTATUS st[2] = { 0 }, one = 0;
    D3DKMT_QUERYALLOCATIONRESIDENCY q;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, PAGE, h), STATUS_SUCCESS);
    CHECK_ST(conf_create_resource(&c, 2, PAGE, m, &res), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[1], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    q = (D3DKMT_QUERYALLOCATIONRESIDENCY){
        .hDevice = c.dev, .phAllocationList = h, .AllocationCount = 2, .pResidencyStatus = st
    };
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_SUCCESS);
    CHECK_EQ(st[0], D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY);
    CHECK_EQ(st[1], D3DKMT_ALLOCATIONRESIDENCYSTATUS_NOTRESIDENT); /* offered */
    /* A resource is as resident as its least resident allocation. */
    q = (D3DKMT_QUERYALLOCATIONRESIDENCY){ .hDevice = c.dev,
                                           .hResource = res,
                                           .pResidencyStatus = &one };
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_SUCCESS);
    CHECK_EQ(one, D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY);
    CHECK_ST(conf_offer(&c, &m[1], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_SUCCESS);
    CHECK_EQ(one, D3DKMT_ALLOCATIONRESIDENCYSTATUS_NOTRESIDENT);
    CHECK_ST(D3DKMTQueryAllocationResidency(NULL), STATUS_INVALID_PARAMETER);
    q.AllocationCount = 1; /* both modes */
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_INVALID_PARAMETER);
    q = (D3DKMT_QUERYALLOCATIONRESIDENCY){
        .hDevice = c.dev, .phAllocationList = h, .AllocationCount = 2, .pResidencyStatus = NULL
    };
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_INVALID_PARAMETER);
    q.pResidencyStatus = conf_readonly();
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_INVALID_PARAMETER);
    q.pResidencyStatus = st;
    q.phAllocationList = conf_unreadable();
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_INVALID_PARAMETER);
    q.phAllocationList = h;
    q.hDevice = 0x7777;
    CHECK_ST(D3DKMTQueryAllocationResidency(&q), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void reservation_stays_within_what_is_available(void)
{
    struct conf c;
    D3DKMT_QUERYVIDEOMEMORYINFO q;
    D3DKMT_CHANGEVIDEOMEMORYRESERVATION r = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    q = memory(&c, D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL);
    CHECK_EQ(q.CurrentReservation, 0);
    CHECK(q.AvailableForReservation > 0 && q.AvailableForReservation <= q.Budget);
    r.hAdapter = c.adapter;
    r.Reservation = q.AvailableForReservation;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_SUCCESS);
    CHECK_EQ(memory(&c, D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL).CurrentReservation,
             q.AvailableForReservation);
    r.Reservation = q.AvailableForReservation + 1;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_INVALID_PARAMETER);
    r.Reservation = 0;
    r.MemorySegmentGroup = (D3DKMT_MEMORY_SEGMENT_GROUP)2;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_INVALID_PARAMETER);
    r.MemorySegmentGroup = D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL;
    r.PhysicalAdapterIndex = 1;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_INVALID_PARAMETER);
    r.PhysicalAdapterIndex = 0;
    r.hProcess = (HANDLE)&r;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_INVALID_HANDLE);
    r.hProcess = NULL;
    r.hAdapter = c.dev;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_INVALID_PARAMETER);
    r.hAdapter = c.adapter;
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(&r), STATUS_SUCCESS);
    CHECK_EQ(memory(&c, D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL).CurrentReservation, 0);
    CHECK_ST(D3DKMTChangeVideoMemoryReservation(NULL), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void pressure_demotes_low_priority_content_intact(void)
{
    struct conf c;
    D3DKMT_HANDLE h[4], more[2], filler;

    if (!conf_open(&c)) {
        return;
    }
    if (!have_nonlocal(&c)) {
        conf_close(&c);
        return;
    }
    filler = fill_budget(&c, h, 4);
    CHECK_ST(conf_create(&c, 2, SMALL, more), STATUS_SUCCESS);
    CHECK_EQ(count_status(&c, h, 4, D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY), 2);
    CHECK_EQ(residency(&c, filler), D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY);
    CHECK_EQ(memory(&c, D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL).CurrentUsage, 2 * SMALL);
    CHECK_EQ(conf_usage(&c), c.budget);
    /* A lock pages a demoted allocation back in; so does a reclaim. */
    for (UINT i = 0; i < 4; i++) {
        CHECK_EQ(conf_content(&c, h[i], SMALL, 90 + i), 1);
    }
    CHECK_EQ(count_status(&c, h, 4, D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY), 2);
    conf_close(&c);
}

static void make_resident_that_cannot_fit_says_how_much_to_trim(void)
{
    struct conf c;
    D3DKMT_HANDLE h[4], more[2], demoted[2], filler;
    D3DDDI_MAKERESIDENT m;
    UINT nd = 0;

    if (!conf_open(&c)) {
        return;
    }
    if (!have_nonlocal(&c)) {
        conf_close(&c);
        return;
    }
    filler = fill_budget(&c, h, 4);
    CHECK_ST(conf_create(&c, 2, SMALL, more), STATUS_SUCCESS);
    for (UINT i = 0; i < 4; i++) {
        if (residency(&c, h[i]) == D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY) {
            demoted[nd++ % 2] = h[i];
        }
    }
    CHECK_EQ(nd, 2);
    /* Everything resident stays where it is while locked. */
    CHECK_ST(conf_lock(&c, filler, NULL), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, more[0], NULL), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, more[1], NULL), STATUS_SUCCESS);
    for (UINT i = 0; i < 4; i++) {
        if (h[i] != demoted[0] && h[i] != demoted[1]) {
            CHECK_ST(conf_lock(&c, h[i], NULL), STATUS_SUCCESS);
        }
    }
    CHECK_ST(make_resident(&c, demoted, 2, 0, &m), STATUS_NO_MEMORY);
    CHECK_EQ(m.NumBytesToTrim, 2 * SMALL);
    CHECK_EQ(count_status(&c, demoted, 2, D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY),
             2);
    CHECK_ST(evict(&c, demoted, 1, 0, NULL), STATUS_INVALID_PARAMETER); /* no count taken */
    conf_close(&c);
}

/*
 * No content lost: patterns in LOW allocations cycled between the segments
 * by Evict (which demotes at count 0), MakeResident, reclaim and creation
 * pressure, every byte of every allocation compared after each round.
 */
static void no_content_lost_through_demotion_and_promotion(void)
{
    enum { N = 6 };
    struct conf c;
    D3DKMT_HANDLE h[N], extra;

    if (!conf_open(&c)) {
        return;
    }
    if (!have_nonlocal(&c)) {
        conf_close(&c);
        return;
    }
    fill_budget(&c, h, N);
    for (UINT round = 0; round < 6; round++) {
        D3DKMT_HANDLE a = h[round % N], b = h[(round + 3) % N];
        D3DDDI_RECLAIM_RESULT r;

        CHECK_ST(make_resident(&c, &a, 1, 1, NULL), STATUS_SUCCESS);
        CHECK_ST(evict(&c, &a, 1, 0, NULL), STATUS_SUCCESS);
        CHECK_EQ(residency(&c, a), D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY);
        CHECK_ST(conf_create(&c, 1, SMALL, &extra), STATUS_SUCCESS); /* demotes one */
        CHECK_ST(conf_reclaim2(&c, &b, 1, &r), STATUS_SUCCESS);
        CHECK_EQ(r, D3DDDI_RECLAIM_RESULT_OK);
        CHECK_ST(conf_destroy(&c, 1, &extra), STATUS_SUCCESS);
        for (UINT i = 0; i < N; i++) {
            CHECK_EQ(conf_content(&c, h[i], SMALL, 90 + i), 1);
        }
    }
    conf_close(&c);
}

const struct test conf_residency_tests[] = {
    TEST(make_resident_checks_in_order),
    TEST(evict_undoes_make_resident_one_by_one),
    TEST(priorities_by_allocation_and_by_resource),
    TEST(residency_of_allocations_and_resources),
    TEST(reservation_stays_within_what_is_available),
    TEST(pressure_demotes_low_priority_content_intact),
    TEST(make_resident_that_cannot_fit_says_how_much_to_trim),
    TEST(no_content_lost_through_demotion_and_promotion),
};
CONF_COUNT(conf_residency_tests);
