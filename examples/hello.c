/* SPDX-License-Identifier: MIT */
/*
 * The smallest libvkmt program: open the first adapter, create one
 * allocation, write to it through D3DKMTLock2, offer it, reclaim it and see
 * that the content survived. Build: cc hello.c $(pkg-config --cflags --libs vkmt)
 * Run on the host: VKMT_TRANSPORT=loopback ./hello
 */
#include <stdio.h>
#include <string.h>

#include <vkmt.h>

static int fail(const char *what, NTSTATUS st)
{
    fprintf(stderr, "hello: %s: %s\n", what,
            vkmt_status_name(st) ? vkmt_status_name(st) : "unknown status");
    return 1;
}

int main(void)
{
    D3DKMT_ADAPTERINFO adapter;
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &adapter };
    D3DKMT_CREATEDEVICE cd = { 0 };
    VKMT_ALLOCATION_DESC desc = { .Size = 4096 };
    D3DDDI_ALLOCATIONINFO2 info = { .pPrivateDriverData = &desc,
                                    .PrivateDriverDataSize = sizeof(desc) };
    D3DKMT_CREATEALLOCATION ca = { .NumAllocations = 1, .pAllocationInfo2 = &info };
    D3DKMT_LOCK2 lock = { 0 };
    D3DKMT_UNLOCK2 unlock = { 0 };
    D3DKMT_OFFERALLOCATIONS offer = { .NumAllocations = 1,
                                      .Priority = D3DKMT_OFFER_PRIORITY_NORMAL };
    BOOL discarded = 1;
    D3DKMT_RECLAIMALLOCATIONS reclaim = { .NumAllocations = 1, .pDiscarded = &discarded };
    D3DKMT_CLOSEADAPTER close = { 0 };
    NTSTATUS st;
    int bad;

    if ((st = D3DKMTEnumAdapters2(&e)) || e.NumAdapters == 0) {
        return fail("no vkmt adapter", st ? st : STATUS_UNSUCCESSFUL);
    }
    cd.hAdapter = close.hAdapter = adapter.hAdapter;
    if ((st = D3DKMTCreateDevice(&cd))) {
        return fail("D3DKMTCreateDevice", st);
    }
    ca.hDevice = lock.hDevice = unlock.hDevice = cd.hDevice;
    offer.hDevice = reclaim.hDevice = cd.hDevice;
    if ((st = D3DKMTCreateAllocation2(&ca))) {
        return fail("D3DKMTCreateAllocation2", st);
    }
    lock.hAllocation = unlock.hAllocation = info.hAllocation;
    if ((st = D3DKMTLock2(&lock))) {
        return fail("D3DKMTLock2", st);
    }
    strcpy(lock.pData, "hello from the aperture");
    D3DKMTUnlock2(&unlock);

    offer.HandleList = reclaim.HandleList = &info.hAllocation;
    if ((st = D3DKMTOfferAllocations(&offer))) {
        return fail("D3DKMTOfferAllocations", st);
    }
    if ((st = D3DKMTReclaimAllocations(&reclaim))) {
        return fail("D3DKMTReclaimAllocations", st);
    }
    if ((st = D3DKMTLock2(&lock))) {
        return fail("D3DKMTLock2", st);
    }
    printf("transport %s: reclaimed, discarded=%d, content \"%s\"\n", vkmt_transport_name(),
           discarded, (char *)lock.pData);
    bad = discarded || strcmp(lock.pData, "hello from the aperture") != 0;
    D3DKMTUnlock2(&unlock);
    /* Closing the adapter frees everything made through it. */
    D3DKMTCloseAdapter(&close);
    return bad;
}
