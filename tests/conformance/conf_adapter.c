/* SPDX-License-Identifier: MIT */
/* Conformance: adapters, devices, paging queues, memory queries, fences. */
#include <string.h>

#include "conf.h"

static void null_arguments_are_invalid(void)
{
    CHECK_ST(D3DKMTEnumAdapters2(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTOpenAdapterFromLuid(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTCloseAdapter(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTCreateDevice(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTDestroyDevice(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTCreatePagingQueue(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTDestroyPagingQueue(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTCreateAllocation2(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTDestroyAllocation2(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTLock2(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTUnlock2(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTOfferAllocations(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTReclaimAllocations(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTReclaimAllocations2(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTWaitForSynchronizationObjectFromCpu(NULL), STATUS_INVALID_PARAMETER);
}

static void enumerate_and_open_by_luid(void)
{
    D3DKMT_ENUMADAPTERS2 e = { 0 };
    D3DKMT_ADAPTERINFO info[8];
    D3DKMT_OPENADAPTERFROMLUID o = { 0 };
    D3DKMT_CLOSEADAPTER ca = { 0 };
    ULONG n;

    CHECK_ST(D3DKMTEnumAdapters2(&e), STATUS_SUCCESS); /* count only */
    n = e.NumAdapters;
    CHECK(n >= 1 && n <= 8);
    if (n < 1 || n > 8) {
        return;
    }
    if (n > 1) {
        e.NumAdapters = n - 1;
        e.pAdapters = info;
        CHECK_ST(D3DKMTEnumAdapters2(&e), STATUS_BUFFER_TOO_SMALL);
        CHECK_EQ(e.NumAdapters, n);
    }
    e.NumAdapters = 8;
    e.pAdapters = info;
    CHECK_ST(D3DKMTEnumAdapters2(&e), STATUS_SUCCESS);
    CHECK_EQ(e.NumAdapters, n);
    CHECK(info[0].hAdapter != 0);
    CHECK_EQ(info[0].NumOfSources, 0);
    o.AdapterLuid = info[0].AdapterLuid;
    CHECK_ST(D3DKMTOpenAdapterFromLuid(&o), STATUS_SUCCESS);
    CHECK(o.hAdapter != 0 && o.hAdapter != info[0].hAdapter);
    ca.hAdapter = o.hAdapter;
    CHECK_ST(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);
    CHECK_ST(D3DKMTCloseAdapter(&ca), STATUS_INVALID_PARAMETER); /* twice */
    o.AdapterLuid.LowPart ^= 0x5a5a5a5au;
    CHECK_ST(D3DKMTOpenAdapterFromLuid(&o), STATUS_INVALID_PARAMETER);
    e.pAdapters = conf_readonly();
    CHECK_ST(D3DKMTEnumAdapters2(&e), STATUS_INVALID_PARAMETER);
    for (ULONG i = 0; i < n; i++) {
        ca.hAdapter = info[i].hAdapter;
        CHECK_ST(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);
    }
    ca.hAdapter = 0;
    CHECK_ST(D3DKMTCloseAdapter(&ca), STATUS_INVALID_PARAMETER);
}

static void device_and_paging_queue_handles_are_checked(void)
{
    struct conf c;
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_DESTROYDEVICE dd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    D3DDDI_DESTROYPAGINGQUEUE dp = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    cd.hAdapter = c.adapter ^ 0x1000u;
    CHECK_ST(D3DKMTCreateDevice(&cd), STATUS_INVALID_PARAMETER);
    pq.hDevice = c.pq; /* a paging queue is not a device */
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_INVALID_PARAMETER);
    pq.hDevice = c.dev;
    pq.Priority = (D3DDDI_PAGINGQUEUE_PRIORITY)2;
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_INVALID_PARAMETER);
    pq.Priority = D3DDDI_PAGINGQUEUE_PRIORITY_ABOVE_NORMAL;
    pq.PhysicalAdapterIndex = 1;
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_INVALID_PARAMETER);
    pq.PhysicalAdapterIndex = 0;
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_SUCCESS);
    CHECK(pq.hPagingQueue != c.pq && pq.FenceValueCPUVirtualAddress != NULL);
    dp.hPagingQueue = pq.hPagingQueue;
    CHECK_ST(D3DKMTDestroyPagingQueue(&dp), STATUS_SUCCESS);
    CHECK_ST(D3DKMTDestroyPagingQueue(&dp), STATUS_INVALID_PARAMETER);
    dp.hPagingQueue = c.dev;
    CHECK_ST(D3DKMTDestroyPagingQueue(&dp), STATUS_INVALID_PARAMETER);
    /* A destroyed device's handle and paging queue are dead. */
    dd.hDevice = c.dev;
    CHECK_ST(D3DKMTDestroyDevice(&dd), STATUS_SUCCESS);
    CHECK_ST(D3DKMTDestroyDevice(&dd), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_create(&c, 1, 4096, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_reclaim2(&c, (D3DKMT_HANDLE[]){ 1 }, 1, NULL), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void query_video_memory_info(void)
{
    struct conf c;
    D3DKMT_QUERYVIDEOMEMORYINFO q = { 0 };
    D3DKMT_HANDLE h[2];

    if (!conf_open(&c)) {
        return;
    }
    CHECK(c.budget > 0);
    CHECK_EQ(conf_usage(&c), 0);
    CHECK_ST(conf_create(&c, 2, 10000, h), STATUS_SUCCESS);
    CHECK_EQ(conf_usage(&c), 2 * 12288); /* page granular */
    q.hAdapter = c.adapter;
    q.MemorySegmentGroup = D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_SUCCESS);
    /* The non-local segment: nothing demoted yet, whatever its size. */
    CHECK_EQ(q.CurrentUsage, 0);
    CHECK(q.Budget >= q.AvailableForReservation);
    CHECK_EQ(q.CurrentReservation, 0);
    q.MemorySegmentGroup = (D3DKMT_MEMORY_SEGMENT_GROUP)2;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_INVALID_PARAMETER);
    q.MemorySegmentGroup = D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL;
    /* The calling process by its pseudo-handle; any other names none. */
    q.hProcess = (HANDLE)(intptr_t)-1;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_SUCCESS);
    q.hProcess = (HANDLE)&q;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_INVALID_HANDLE);
    q.hProcess = NULL;
    q.PhysicalAdapterIndex = 1;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_INVALID_PARAMETER);
    q.PhysicalAdapterIndex = 0;
    q.hAdapter = c.dev;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_destroy(&c, 2, h), STATUS_SUCCESS);
    CHECK_EQ(conf_usage(&c), 0);
    conf_close(&c);
}

static void paging_fence_and_cpu_wait(void)
{
    struct conf c;
    D3DKMT_HANDLE h[1];
    D3DKMT_RECLAIMALLOCATIONS2 r = { 0 };
    D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU w = { 0 };
    UINT64 value;
    UINT64 last = 0;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, 4096, h), STATUS_SUCCESS);
    for (int i = 0; i < 3; i++) {
        r.hPagingQueue = c.pq;
        r.NumAllocations = 1;
        r.HandleList = h;
        CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_SUCCESS);
        CHECK(r.PagingFenceValue > last);
        last = r.PagingFenceValue;
        CHECK_EQ(*c.fence, last); /* the CPU-visible value is signalled */
    }
    value = last;
    w.hDevice = c.dev;
    w.ObjectCount = 1;
    w.ObjectHandleArray = &c.sync;
    w.FenceValueArray = &value;
    CHECK_ST(D3DKMTWaitForSynchronizationObjectFromCpu(&w), STATUS_SUCCESS);
    w.ObjectCount = 0;
    CHECK_ST(D3DKMTWaitForSynchronizationObjectFromCpu(&w), STATUS_INVALID_PARAMETER);
    w.ObjectCount = 1;
    w.ObjectHandleArray = &c.pq; /* not a sync object */
    CHECK_ST(D3DKMTWaitForSynchronizationObjectFromCpu(&w), STATUS_INVALID_PARAMETER);
    w.ObjectHandleArray = &c.sync;
    w.hAsyncEvent = (HANDLE)&w;
    CHECK_ST(D3DKMTWaitForSynchronizationObjectFromCpu(&w), STATUS_NOT_SUPPORTED);
    w.hAsyncEvent = NULL;
    w.FenceValueArray = conf_unreadable();
    CHECK_ST(D3DKMTWaitForSynchronizationObjectFromCpu(&w), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void closing_the_adapter_frees_its_objects(void)
{
    struct conf c, again;
    D3DKMT_HANDLE h[4];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 4, 65536, h), STATUS_SUCCESS);
    conf_close(&c);
    CHECK_ST(conf_offer(&c, h, 4, D3DKMT_OFFER_PRIORITY_LOW, 0),
             STATUS_INVALID_PARAMETER); /* the device handle died with it */
    if (!conf_open(&again)) {
        return;
    }
    CHECK_EQ(conf_usage(&again), 0);
    conf_close(&again);
}

const struct test conf_adapter_tests[] = {
    TEST(null_arguments_are_invalid),
    TEST(enumerate_and_open_by_luid),
    TEST(device_and_paging_queue_handles_are_checked),
    TEST(query_video_memory_info),
    TEST(paging_fence_and_cpu_wait),
    TEST(closing_the_adapter_frees_its_objects),
};
CONF_COUNT(conf_adapter_tests);
