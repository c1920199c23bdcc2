/* SPDX-License-Identifier: MIT */
/* The helpers of conf.h, shared by the conformance suite and test_virgl. */
#define _DEFAULT_SOURCE /* mmap flags */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "conf.h"

const char *conf_status(NTSTATUS st)
{
    const char *name = vkmt_status_name(st);

    return name ? name : "unknown status";
}

int conf_open(struct conf *c)
{
    D3DKMT_ADAPTERINFO info[4];
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 4, .pAdapters = info };
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    D3DKMT_QUERYVIDEOMEMORYINFO q = { 0 };

    memset(c, 0, sizeof(*c));
    if (D3DKMTEnumAdapters2(&e) != STATUS_SUCCESS || e.NumAdapters < 1) {
        harness_fail(__FILE__, __LINE__, "no adapter (transport %s)",
                     vkmt_transport_name() ? vkmt_transport_name() : "none");
        return 0;
    }
    for (ULONG i = 1; i < e.NumAdapters; i++) {
        D3DKMT_CLOSEADAPTER ca = { .hAdapter = info[i].hAdapter };

        D3DKMTCloseAdapter(&ca);
    }
    c->adapter = info[0].hAdapter;
    cd.hAdapter = c->adapter;
    CHECK_ST(D3DKMTCreateDevice(&cd), STATUS_SUCCESS);
    c->dev = cd.hDevice;
    pq.hDevice = c->dev;
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_SUCCESS);
    c->pq = pq.hPagingQueue;
    c->sync = pq.hSyncObject;
    c->fence = pq.FenceValueCPUVirtualAddress;
    q.hAdapter = c->adapter;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_SUCCESS);
    c->budget = q.Budget;
    return c->dev && c->pq;
}

void conf_close(struct conf *c)
{
    D3DKMT_CLOSEADAPTER ca = { .hAdapter = c->adapter };

    /* Closing the adapter releases the queue and everything made through it. */
    D3DKMTCloseAdapter(&ca);
}

static NTSTATUS create(struct conf *c, UINT n, UINT64 size, D3DKMT_HANDLE *h, D3DKMT_HANDLE *res)
{
    D3DDDI_ALLOCATIONINFO2 *info = calloc(n ? n : 1, sizeof(*info));
    VKMT_ALLOCATION_DESC *desc = calloc(n ? n : 1, sizeof(*desc));
    D3DKMT_CREATEALLOCATION ca = { 0 };
    NTSTATUS st;

    for (UINT i = 0; i < n; i++) {
        desc[i].Size = size;
        info[i].pPrivateDriverData = &desc[i];
        info[i].PrivateDriverDataSize = sizeof(desc[i]);
    }
    ca.hDevice = c->dev;
    ca.NumAllocations = n;
    ca.pAllocationInfo2 = info;
    ca.Flags.CreateResource = res != NULL;
    st = D3DKMTCreateAllocation2(&ca);
    for (UINT i = 0; st == STATUS_SUCCESS && h && i < n; i++) {
        h[i] = info[i].hAllocation;
    }
    if (res) {
        *res = ca.hResource;
    }
    free(info);
    free(desc);
    return st;
}

NTSTATUS conf_create(struct conf *c, UINT n, UINT64 size, D3DKMT_HANDLE *h)
{
    return create(c, n, size, h, NULL);
}

NTSTATUS conf_create_resource(struct conf *c, UINT n, UINT64 size, D3DKMT_HANDLE *h,
                              D3DKMT_HANDLE *res)
{
    return create(c, n, size, h, res);
}

NTSTATUS conf_destroy(struct conf *c, UINT n, const D3DKMT_HANDLE *h)
{
    D3DKMT_DESTROYALLOCATION2 d = { .hDevice = c->dev,
                                    .phAllocationList = h,
                                    .AllocationCount = n };

    return D3DKMTDestroyAllocation2(&d);
}

NTSTATUS conf_offer(struct conf *c, const D3DKMT_HANDLE *h, UINT n, D3DKMT_OFFER_PRIORITY prio,
                    UINT flags)
{
    D3DKMT_OFFERALLOCATIONS o = {
        .hDevice = c->dev, .HandleList = h, .NumAllocations = n, .Priority = prio
    };

    o.Flags.Value = flags;
    return D3DKMTOfferAllocations(&o);
}

NTSTATUS conf_reclaim2(struct conf *c, const D3DKMT_HANDLE *h, UINT n, D3DDDI_RECLAIM_RESULT *r)
{
    D3DKMT_RECLAIMALLOCATIONS2 rc = {
        .hPagingQueue = c->pq, .NumAllocations = n, .HandleList = h, .pResults = r
    };

    return D3DKMTReclaimAllocations2(&rc);
}

NTSTATUS conf_reclaim1(struct conf *c, const D3DKMT_HANDLE *h, UINT n, BOOL *d)
{
    D3DKMT_RECLAIMALLOCATIONS rc = {
        .hDevice = c->dev, .HandleList = h, .pDiscarded = d, .NumAllocations = n
    };

    return D3DKMTReclaimAllocations(&rc);
}

NTSTATUS conf_lock(struct conf *c, D3DKMT_HANDLE h, unsigned char **p)
{
    D3DKMT_LOCK2 l = { .hDevice = c->dev, .hAllocation = h };
    NTSTATUS st = D3DKMTLock2(&l);

    if (p) {
        *p = l.pData;
    }
    return st;
}

NTSTATUS conf_unlock(struct conf *c, D3DKMT_HANDLE h)
{
    D3DKMT_UNLOCK2 u = { .hDevice = c->dev, .hAllocation = h };

    return D3DKMTUnlock2(&u);
}

/*
 * The content pattern: every page has a key hashed from the seed and the
 * page's index, and every 8-byte word is its page's key mixed with the
 * word's index. No two pages of one allocation and no two allocations
 * (different seeds) hold the same bytes, so content moved between pages or
 * allocations is caught as surely as content lost, at one multiply a word.
 */
static uint64_t page_key(unsigned seed, size_t page)
{
    uint64_t x = ((uint64_t)seed << 40 ^ page) + 0x9e3779b97f4a7c15ull;

    x = (x ^ x >> 30) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ x >> 27) * 0x94d049bb133111ebull;
    return x ^ x >> 31;
}

#define WORDS_PER_PAGE (4096 / 8)

static uint64_t pattern_word(uint64_t key, size_t word)
{
    return key ^ (word + 1) * 0x9e3779b97f4a7c15ull;
}

void conf_fill(struct conf *c, D3DKMT_HANDLE h, size_t len, unsigned seed)
{
    unsigned char *p = NULL;
    uint64_t key = 0;

    CHECK_ST(conf_lock(c, h, &p), STATUS_SUCCESS);
    for (size_t w = 0; p && w * 8 < len; w++) {
        uint64_t v;

        if (w % WORDS_PER_PAGE == 0) {
            key = page_key(seed, w / WORDS_PER_PAGE);
        }
        v = pattern_word(key, w);
        memcpy(p + w * 8, &v, len - w * 8 < 8 ? len - w * 8 : 8);
    }
    CHECK_ST(conf_unlock(c, h), STATUS_SUCCESS);
}

int conf_content(struct conf *c, D3DKMT_HANDLE h, size_t len, unsigned seed)
{
    unsigned char *p = NULL;
    int pattern = 1, zero = 1;
    uint64_t key = 0;

    CHECK_ST(conf_lock(c, h, &p), STATUS_SUCCESS);
    for (size_t w = 0; p && w * 8 < len && (pattern || zero); w++) {
        size_t n = len - w * 8 < 8 ? len - w * 8 : 8;
        uint64_t want, got = 0;

        if (w % WORDS_PER_PAGE == 0) {
            key = page_key(seed, w / WORDS_PER_PAGE);
        }
        want = pattern_word(key, w);
        memcpy(&got, p + w * 8, n);
        pattern &= memcmp(&got, &want, n) == 0;
        zero &= got == 0;
    }
    CHECK_ST(conf_unlock(c, h), STATUS_SUCCESS);
    return p ? (pattern ? 1 : zero ? 0 : -1) : -2;
}

UINT64 conf_usage(struct conf *c)
{
    D3DKMT_QUERYVIDEOMEMORYINFO q = { .hAdapter = c->adapter };

    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_SUCCESS);
    return q.CurrentUsage;
}

void *conf_unreadable(void)
{
    void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

void *conf_readonly(void)
{
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}
