/* SPDX-License-Identifier: MIT */
/* Conformance: creating, locking and destroying allocations and resources. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "conf.h"

/* One CreateAllocation2 call with a single allocation described by @desc. */
static NTSTATUS create_one(struct conf *c, const void *data, UINT size, D3DKMT_HANDLE *h)
{
    D3DDDI_ALLOCATIONINFO2 info;
    D3DKMT_CREATEALLOCATION ca = { 0 };
    NTSTATUS st;

    memset(&info, 0, sizeof(info));
    info.pPrivateDriverData = (void *)data;
    info.PrivateDriverDataSize = size;
    ca.hDevice = c->dev;
    ca.NumAllocations = 1;
    ca.pAllocationInfo2 = &info;
    st = D3DKMTCreateAllocation2(&ca);
    if (h) {
        *h = info.hAllocation;
    }
    return st;
}

static void create_validates_the_private_data(void)
{
    struct conf c;
    VKMT_ALLOCATION_DESC d = { .Size = 4096 };
    D3DKMT_HANDLE h;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(create_one(&c, &d, sizeof(d), &h), STATUS_SUCCESS);
    CHECK(h != 0);
    CHECK_ST(create_one(&c, &d, sizeof(d) - 1, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(create_one(&c, &d, sizeof(d) + 4, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(create_one(&c, NULL, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(create_one(&c, conf_unreadable(), sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d.Size = 0;
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d.Size = 4096;
    d.Dims = 1;
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d.Dims = 0;
    d.Flags = 0x80000000u;
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d.Flags = 0;
    d.Size = ~0ull; /* larger than any aperture */
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    CHECK_EQ(conf_usage(&c), 4096); /* only the first one exists */
    conf_close(&c);
}

static void create_validates_the_call(void)
{
    struct conf c;
    VKMT_ALLOCATION_DESC d = { .Size = 4096 };
    D3DDDI_ALLOCATIONINFO2 info;
    D3DKMT_CREATEALLOCATION ca = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    memset(&info, 0, sizeof(info));
    info.pPrivateDriverData = &d;
    info.PrivateDriverDataSize = sizeof(d);
    ca.hDevice = c.dev;
    ca.pAllocationInfo2 = &info;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER); /* 0 */
    ca.NumAllocations = 10241;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    ca.NumAllocations = 1;
    ca.pAllocationInfo2 = NULL;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    ca.pAllocationInfo2 = conf_readonly(); /* handles could not be returned */
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    ca.pAllocationInfo2 = &info;
    ca.Flags.CreateShared = 1;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    ca.Flags.CreateShared = 0;
    info.pSystemMem = &d; /* user memory backing is not supported */
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    info.pSystemMem = NULL;
    ca.hDevice = c.pq;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    ca.hDevice = c.dev;
    CHECK_EQ(conf_usage(&c), 0);
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_SUCCESS);
    CHECK(info.hAllocation != 0);
    conf_close(&c);
}

static void creation_beyond_the_budget_fails(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, c.budget, h), STATUS_SUCCESS);
    /* Locked, it cannot be demoted to the non-local segment either. */
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_SUCCESS);
    CHECK_ST(conf_create(&c, 1, 4096, NULL), STATUS_GRAPHICS_NO_VIDEO_MEMORY);
    CHECK_ST(conf_unlock(&c, h[0]), STATUS_SUCCESS);
    CHECK_ST(conf_destroy(&c, 1, h), STATUS_SUCCESS);
    /* A batch that does not fit as a whole creates nothing. */
    CHECK_ST(conf_create(&c, 2, c.budget / 2 + 4096, NULL), STATUS_GRAPHICS_NO_VIDEO_MEMORY);
    CHECK_EQ(conf_usage(&c), 0);
    conf_close(&c);
}

static void locks_give_separate_persistent_memory(void)
{
    struct conf c;
    D3DKMT_HANDLE h[3];
    unsigned char *p[3];
    D3DKMT_LOCK2 l = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 3, 5000, h), STATUS_SUCCESS);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(conf_lock(&c, h[i], &p[i]), STATUS_SUCCESS);
        CHECK_EQ(conf_content(&c, h[i], 5000, 0), 0); /* new memory is zeroed */
    }
    /* Ranges never overlap. */
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            CHECK(i == j || p[i] + 5000 <= p[j] || p[j] + 5000 <= p[i]);
        }
        CHECK_ST(conf_unlock(&c, h[i]), STATUS_SUCCESS);
    }
    for (int i = 0; i < 3; i++) {
        conf_fill(&c, h[i], 5000, (unsigned)i + 1);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(conf_content(&c, h[i], 5000, (unsigned)i + 1), 1);
    }
    CHECK_ST(conf_unlock(&c, h[0]), STATUS_INVALID_PARAMETER); /* not locked */
    l.hDevice = c.dev;
    l.hAllocation = h[0];
    l.Flags.Value = 1;
    CHECK_ST(D3DKMTLock2(&l), STATUS_INVALID_PARAMETER);
    l.Flags.Value = 0;
    l.hAllocation = c.dev;
    CHECK_ST(D3DKMTLock2(&l), STATUS_INVALID_PARAMETER);
    l.hAllocation = 0;
    CHECK_ST(D3DKMTLock2(&l), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void destroy_is_all_or_nothing(void)
{
    struct conf c;
    D3DKMT_HANDLE h[3];
    D3DKMT_DESTROYALLOCATION2 d = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 3, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_destroy(&c, 2, (D3DKMT_HANDLE[]){ h[0], 0xdead }), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_destroy(&c, 2, (D3DKMT_HANDLE[]){ h[0], h[0] }), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_destroy(&c, 0, h), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_destroy(&c, 1, conf_unreadable()), STATUS_INVALID_PARAMETER);
    CHECK_EQ(conf_usage(&c), 3 * 4096);
    CHECK_ST(conf_destroy(&c, 3, h), STATUS_SUCCESS);
    CHECK_EQ(conf_usage(&c), 0);
    CHECK_ST(conf_lock(&c, h[1], NULL), STATUS_INVALID_PARAMETER);
    d.hDevice = c.dev;
    d.hResource = 0x1234;
    CHECK_ST(D3DKMTDestroyAllocation2(&d), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void resources_offer_and_reclaim_as_a_unit(void)
{
    struct conf c;
    D3DKMT_HANDLE h[3], res, other[1];
    D3DKMT_OFFERALLOCATIONS o = { 0 };
    D3DKMT_RECLAIMALLOCATIONS2 r = { 0 };
    D3DKMT_DESTROYALLOCATION2 d = { 0 };
    D3DDDI_RECLAIM_RESULT result[1];
    UINT64 freed = 0;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create_resource(&c, 3, 4096, h, &res), STATUS_SUCCESS);
    CHECK(res != 0);
    CHECK_ST(conf_create(&c, 1, 4096, other), STATUS_SUCCESS);
    conf_fill(&c, h[2], 4096, 9);
    o.hDevice = c.dev;
    o.pResources = &res;
    o.NumAllocations = 1;
    o.Priority = D3DKMT_OFFER_PRIORITY_LOW;
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, h[2], NULL), STATUS_INVALID_PARAMETER); /* offered */
    CHECK_ST(vkmt_trim(c.adapter, 4096, &freed), STATUS_SUCCESS);
    CHECK_EQ(freed, 4096);
    r.hPagingQueue = c.pq;
    r.pResources = &res;
    r.NumAllocations = 1;
    r.pResults = result;
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_SUCCESS);
    CHECK_EQ(result[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(conf_content(&c, h[2], 4096, 9), 1); /* that member survived */
    /* A plain allocation is not a resource, and the other way round. */
    o.pResources = other;
    CHECK_ST(D3DKMTOfferAllocations(&o), STATUS_INVALID_PARAMETER);
    CHECK_ST(conf_offer(&c, &res, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_INVALID_PARAMETER);
    d.hDevice = c.dev;
    d.hResource = res;
    d.phAllocationList = h;
    d.AllocationCount = 1;
    CHECK_ST(D3DKMTDestroyAllocation2(&d), STATUS_INVALID_PARAMETER);
    d.phAllocationList = NULL;
    d.AllocationCount = 0;
    CHECK_ST(D3DKMTDestroyAllocation2(&d), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_INVALID_PARAMETER);
    CHECK_EQ(conf_usage(&c), 4096);
    conf_close(&c);
}

/* Is the page holding @p mapped in this process? */
static int page_mapped(const void *p)
{
    void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);

    return msync(page, 4096, MS_ASYNC) == 0 || errno != ENOMEM;
}

/*
 * Destroying a resource while one of its members is locked: the member's
 * mapping goes with it (over kmd each locked allocation is its own mapping;
 * elsewhere the aperture stays mapped as a whole), and a locked allocation
 * outside the resource keeps its mapping and its content.
 */
static void destroying_a_resource_unmaps_its_locked_members(void)
{
    struct conf c;
    D3DKMT_HANDLE h[2], res, other[1];
    D3DKMT_DESTROYALLOCATION2 d = { 0 };
    unsigned char *member, *kept;
    int per_lock = vkmt_transport_name() && !strcmp(vkmt_transport_name(), "kmd");

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create_resource(&c, 2, 4096, h, &res), STATUS_SUCCESS);
    CHECK_ST(conf_create(&c, 1, 4096, other), STATUS_SUCCESS);
    conf_fill(&c, other[0], 4096, 21);
    CHECK_ST(conf_lock(&c, h[0], &member), STATUS_SUCCESS);
    CHECK_ST(conf_lock(&c, other[0], &kept), STATUS_SUCCESS);
    d.hDevice = c.dev;
    d.hResource = res;
    CHECK_ST(D3DKMTDestroyAllocation2(&d), STATUS_SUCCESS);
    CHECK_EQ(page_mapped(member), !per_lock);
    CHECK_EQ(page_mapped(kept), 1);
    kept[0] ^= 0xff; /* still writable */
    kept[0] ^= 0xff;
    CHECK_ST(conf_unlock(&c, other[0]), STATUS_SUCCESS);
    CHECK_EQ(conf_content(&c, other[0], 4096, 21), 1);
    conf_close(&c);
}

/* A resource's result is the worst of its members' (NOT_COMMITTED >
 * DISCARDED > OK), whichever members were lost. */
static void a_resource_reports_its_worst_member(void)
{
    struct conf c;
    D3DKMT_HANDLE h[3], res;
    D3DKMT_RECLAIMALLOCATIONS2 r = { 0 };
    D3DDDI_RECLAIM_RESULT result[1];

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create_resource(&c, 3, 4096, h, &res), STATUS_SUCCESS);
    r.hPagingQueue = c.pq;
    r.pResources = &res;
    r.NumAllocations = 1;
    r.pResults = result;
    /* Members offered one by one; the last is the only LOW one, so the trim
     * takes it alone. */
    CHECK_ST(conf_offer(&c, &h[2], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 2, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 4096, NULL), STATUS_SUCCESS);
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_SUCCESS);
    CHECK_EQ(result[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    /* The middle one decommitted, the last one discarded. */
    CHECK_ST(conf_offer(&c, &h[1], 1, D3DKMT_OFFER_PRIORITY_LOW, 2 /* AllowDecommit */),
             STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[2], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[0], 1, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, 2 * 4096, NULL), STATUS_SUCCESS);
    CHECK_ST(D3DKMTReclaimAllocations2(&r), STATUS_SUCCESS);
    CHECK_EQ(result[0], D3DDDI_RECLAIM_RESULT_NOT_COMMITTED);
    conf_close(&c);
}

/* Descriptors for 2D textures (vkmt.h): rows packed at bytes-per-pixel * width.
 * The good shapes below are ones the core fuzzer's seed recorder can encode. */
static VKMT_ALLOCATION_DESC texture(UINT format, UINT w, UINT h)
{
    VKMT_ALLOCATION_DESC d = { .Size = VKMT_TEXTURE_SIZE(format, w, h),
                               .Flags = VKMT_ALLOC_TEXTURE(format),
                               .Dims = VKMT_TEXTURE_DIMS(w, h) };

    return d;
}

static void texture_allocations_lock_offer_and_reclaim(void)
{
    struct conf c;
    VKMT_ALLOCATION_DESC d[2] = { texture(VKMT_TEXFMT_R8_UNORM, 100, 30), { .Size = 3 * 4096 } };
    D3DDDI_ALLOCATIONINFO2 info[2];
    D3DKMT_CREATEALLOCATION ca = { 0 };
    D3DDDI_RECLAIM_RESULT r[2];
    D3DKMT_HANDLE h[2];
    const size_t bytes = 100 * 30;

    if (!conf_open(&c)) {
        return;
    }
    CHECK(vkmt_textures_supported(c.adapter));
    /* A texture and a buffer in one call. */
    memset(info, 0, sizeof(info));
    for (int i = 0; i < 2; i++) {
        info[i].pPrivateDriverData = &d[i];
        info[i].PrivateDriverDataSize = sizeof(d[i]);
    }
    ca.hDevice = c.dev;
    ca.NumAllocations = 2;
    ca.pAllocationInfo2 = info;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_SUCCESS);
    h[0] = info[0].hAllocation;
    h[1] = info[1].hAllocation;
    CHECK_EQ(conf_usage(&c), 4096 + 3 * 4096);     /* 3000 bytes take a page */
    CHECK_EQ(conf_content(&c, h[0], bytes, 0), 0); /* new textures read as zeros */
    conf_fill(&c, h[0], bytes, 21);
    conf_fill(&c, h[1], 3 * 4096, 22);
    CHECK_EQ(conf_content(&c, h[0], bytes, 21), 1);
    CHECK_ST(conf_offer(&c, h, 2, D3DKMT_OFFER_PRIORITY_NORMAL, 0), STATUS_SUCCESS);
    CHECK_ST(conf_reclaim2(&c, h, 2, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(conf_content(&c, h[0], bytes, 21), 1);
    CHECK_EQ(conf_content(&c, h[1], 3 * 4096, 22), 1);
    CHECK_ST(conf_destroy(&c, 2, h), STATUS_SUCCESS);
    CHECK_EQ(conf_usage(&c), 0);
    conf_close(&c);
}

static void texture_shapes_are_checked(void)
{
    struct conf c;
    VKMT_ALLOCATION_DESC d, good = texture(VKMT_TEXFMT_B8G8R8A8_UNORM, 32, 32);
    D3DDDI_ALLOCATIONINFO2 info[2];
    D3DKMT_CREATEALLOCATION ca = { 0 };
    D3DKMT_HANDLE h;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(create_one(&c, &good, sizeof(good), &h), STATUS_SUCCESS);
    d = good;
    d.Size++; /* the size must be exactly the packed rows */
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d.Size = 2 * 4096;
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d = texture(9, 33, 17); /* no such format */
    d.Size = 33 * 17;
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d = texture(VKMT_TEXFMT_R8_UNORM, 0, 17);
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d = texture(VKMT_TEXFMT_R8_UNORM, 33, 0);
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d = texture(VKMT_TEXFMT_R8_UNORM, VKMT_TEXTURE_DIM_MAX + 1, 1);
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    d = good;
    d.Flags &= ~1u; /* a format without the texture flag */
    CHECK_ST(create_one(&c, &d, sizeof(d), NULL), STATUS_INVALID_PARAMETER);
    /* A good texture beside a bad one: neither is created. */
    d = good;
    d.Size--;
    memset(info, 0, sizeof(info));
    info[0].pPrivateDriverData = &good;
    info[1].pPrivateDriverData = &d;
    info[0].PrivateDriverDataSize = info[1].PrivateDriverDataSize = sizeof(d);
    ca.hDevice = c.dev;
    ca.NumAllocations = 2;
    ca.pAllocationInfo2 = info;
    CHECK_ST(D3DKMTCreateAllocation2(&ca), STATUS_INVALID_PARAMETER);
    CHECK_EQ(conf_usage(&c), 4096); /* only the first one exists */
    conf_close(&c);
}

const struct test conf_alloc_tests[] = {
    TEST(create_validates_the_private_data),
    TEST(create_validates_the_call),
    TEST(creation_beyond_the_budget_fails),
    TEST(locks_give_separate_persistent_memory),
    TEST(destroy_is_all_or_nothing),
    TEST(resources_offer_and_reclaim_as_a_unit),
    TEST(a_resource_reports_its_worst_member),
    TEST(texture_allocations_lock_offer_and_reclaim),
    TEST(destroying_a_resource_unmaps_its_locked_members),
    TEST(texture_shapes_are_checked),
};
CONF_COUNT(conf_alloc_tests);
