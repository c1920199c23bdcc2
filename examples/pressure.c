/* SPDX-License-Identifier: MIT */
/*
 * Memory pressure, step by step: create allocations filled with known
 * patterns, offer most of them at mixed priorities, ask the device to
 * discard half of the offered bytes (vkmt_trim, as host pressure would),
 * reclaim everything with D3DKMTReclaimAllocations2 and print, per
 * allocation, its priority, the reclaim result and whether the content is
 * what the result promises. Exits non-zero on any mismatch.
 */
#include <stdio.h>
#include <string.h>

#include <vkmt.h>

#define N 8
#define SIZE (64 * 1024)

static const char *prio_name[] = { "-", "LOW", "NORMAL", "HIGH", "AUTO" };
static const char *result_name[] = { "OK", "DISCARDED", "NOT_COMMITTED" };

static NTSTATUS check(const char *what, NTSTATUS st)
{
    if (st != STATUS_SUCCESS) {
        fprintf(stderr, "pressure: %s: %s\n", what,
                vkmt_status_name(st) ? vkmt_status_name(st) : "unknown status");
    }
    return st;
}

/* 1: the pattern of @seed, 0: all zero, -1: anything else. */
static int inspect(D3DKMT_HANDLE dev, D3DKMT_HANDLE a, unsigned seed, int write)
{
    D3DKMT_LOCK2 lock = { .hDevice = dev, .hAllocation = a };
    D3DKMT_UNLOCK2 unlock = { .hDevice = dev, .hAllocation = a };
    unsigned char *p;
    int pattern = 1, zero = 1;

    if (check("D3DKMTLock2", D3DKMTLock2(&lock))) {
        return -1;
    }
    p = lock.pData;
    for (unsigned i = 0; i < SIZE; i++) {
        unsigned char want = (unsigned char)(seed * 37 + i);

        if (write) {
            p[i] = want;
        }
        pattern &= p[i] == want;
        zero &= p[i] == 0;
    }
    D3DKMTUnlock2(&unlock);
    return pattern ? 1 : zero ? 0 : -1;
}

int main(void)
{
    static const D3DKMT_OFFER_PRIORITY prio[N] = { D3DKMT_OFFER_PRIORITY_LOW,
                                                   D3DKMT_OFFER_PRIORITY_HIGH,
                                                   D3DKMT_OFFER_PRIORITY_NORMAL,
                                                   D3DKMT_OFFER_PRIORITY_LOW,
                                                   D3DKMT_OFFER_PRIORITY_AUTO,
                                                   D3DKMT_OFFER_PRIORITY_HIGH,
                                                   D3DKMT_OFFER_PRIORITY_NORMAL,
                                                   0 /* never offered */ };
    D3DKMT_ADAPTERINFO adapter;
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &adapter };
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    VKMT_ALLOCATION_DESC desc = { .Size = SIZE };
    D3DDDI_ALLOCATIONINFO2 info[N];
    D3DKMT_CREATEALLOCATION ca = { .NumAllocations = N, .pAllocationInfo2 = info };
    D3DKMT_HANDLE h[N];
    D3DDDI_RECLAIM_RESULT result[N];
    D3DKMT_RECLAIMALLOCATIONS2 rc = { .NumAllocations = N, .HandleList = h, .pResults = result };
    D3DKMT_CLOSEADAPTER close = { 0 };
    UINT64 freed = 0;
    int mismatches = 0;

    if (check("D3DKMTEnumAdapters2", D3DKMTEnumAdapters2(&e)) || e.NumAdapters == 0) {
        return 1;
    }
    cd.hAdapter = close.hAdapter = adapter.hAdapter;
    if (check("D3DKMTCreateDevice", D3DKMTCreateDevice(&cd))) {
        return 1;
    }
    pq.hDevice = ca.hDevice = cd.hDevice;
    if (check("D3DKMTCreatePagingQueue", D3DKMTCreatePagingQueue(&pq))) {
        return 1;
    }
    memset(info, 0, sizeof(info));
    for (int i = 0; i < N; i++) {
        info[i].pPrivateDriverData = &desc;
        info[i].PrivateDriverDataSize = sizeof(desc);
    }
    if (check("D3DKMTCreateAllocation2", D3DKMTCreateAllocation2(&ca))) {
        return 1;
    }
    for (int i = 0; i < N; i++) {
        h[i] = info[i].hAllocation;
        inspect(cd.hDevice, h[i], (unsigned)i, 1);
        if (prio[i]) {
            D3DKMT_OFFERALLOCATIONS o = {
                .hDevice = cd.hDevice, .HandleList = &h[i], .NumAllocations = 1, .Priority = prio[i]
            };

            if (check("D3DKMTOfferAllocations", D3DKMTOfferAllocations(&o))) {
                return 1;
            }
        }
    }
    /* Half of the seven offered allocations' bytes, rounded up: four go. */
    if (check("vkmt_trim", vkmt_trim(adapter.hAdapter, 7 * SIZE / 2, &freed))) {
        return 1;
    }
    rc.hPagingQueue = pq.hPagingQueue;
    if (check("D3DKMTReclaimAllocations2", D3DKMTReclaimAllocations2(&rc))) {
        return 1;
    }
    printf("trim discarded %llu KiB; reclaim fence %llu\n\n", (unsigned long long)freed / 1024,
           (unsigned long long)rc.PagingFenceValue);
    printf("| alloc | priority | result    | content |\n");
    printf("|-------|----------|-----------|---------|\n");
    for (int i = 0; i < N; i++) {
        int c = inspect(cd.hDevice, h[i], (unsigned)i, 0);
        int ok = result[i] == D3DDDI_RECLAIM_RESULT_OK ? c == 1 : c == 0;

        mismatches += !ok;
        printf("| %5d | %-8s | %-9s | %-7s |\n", i, prio_name[prio[i]],
               result[i] <= 2 ? result_name[result[i]] : "?",
               !ok      ? "WRONG"
               : c == 1 ? "intact"
                        : "zeroed");
    }
    D3DKMTCloseAdapter(&close);
    printf("\n%s\n", mismatches ? "MISMATCH" : "every result matches the content");
    return mismatches != 0;
}
