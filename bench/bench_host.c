/* SPDX-License-Identifier: MIT */
/*
 * Host benchmark over the loopback transport (make bench-host): the cost of
 * D3DKMTOfferAllocations, D3DKMTReclaimAllocations and
 * D3DKMTReclaimAllocations2 per call and per allocation at batch sizes 1, 64,
 * 1024 and 10240, and the engine's bookkeeping bytes per allocation with
 * 100k allocations alive. Every call is timed on its own; the figures are
 * min / median / max over the repetitions, minus the clock's own cost.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkmt.h"

#define PAGE 4096u
#define LIVE_ALLOCS 100000u

static const UINT batches[] = { 1, 64, 1024, 10240 };

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

struct series {
    double *v;
    unsigned n;
};

static void add(struct series *s, double ns)
{
    s->v[s->n++] = ns;
}

static void die(const char *what, NTSTATUS st)
{
    fprintf(stderr, "bench_host: %s failed: %s (0x%08x)\n", what,
            vkmt_status_name(st) ? vkmt_status_name(st) : "?", (unsigned)st);
    exit(1);
}

static D3DKMT_HANDLE adapter, dev, pq;

static void open_device(void)
{
    D3DKMT_ADAPTERINFO info;
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &info };
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE cq = { 0 };
    NTSTATUS st;

    if ((st = D3DKMTEnumAdapters2(&e)) != STATUS_SUCCESS || e.NumAdapters < 1) {
        die("D3DKMTEnumAdapters2", st);
    }
    adapter = info.hAdapter;
    cd.hAdapter = adapter;
    if ((st = D3DKMTCreateDevice(&cd)) != STATUS_SUCCESS) {
        die("D3DKMTCreateDevice", st);
    }
    dev = cd.hDevice;
    cq.hDevice = dev;
    if ((st = D3DKMTCreatePagingQueue(&cq)) != STATUS_SUCCESS) {
        die("D3DKMTCreatePagingQueue", st);
    }
    pq = cq.hPagingQueue;
}

static void create(UINT n, D3DKMT_HANDLE *h)
{
    D3DDDI_ALLOCATIONINFO2 *info = calloc(n, sizeof(*info));
    VKMT_ALLOCATION_DESC desc = { .Size = PAGE };
    D3DKMT_CREATEALLOCATION ca = { 0 };
    NTSTATUS st;

    for (UINT i = 0; i < n; i++) {
        info[i].pPrivateDriverData = &desc;
        info[i].PrivateDriverDataSize = sizeof(desc);
    }
    ca.hDevice = dev;
    ca.NumAllocations = n;
    ca.pAllocationInfo2 = info;
    if ((st = D3DKMTCreateAllocation2(&ca)) != STATUS_SUCCESS) {
        die("D3DKMTCreateAllocation2", st);
    }
    for (UINT i = 0; i < n; i++) {
        h[i] = info[i].hAllocation;
    }
    free(info);
}

static void destroy(UINT n, const D3DKMT_HANDLE *h)
{
    D3DKMT_DESTROYALLOCATION2 d = { .hDevice = dev, .phAllocationList = h, .AllocationCount = n };
    NTSTATUS st = D3DKMTDestroyAllocation2(&d);

    if (st != STATUS_SUCCESS) {
        die("D3DKMTDestroyAllocation2", st);
    }
}

static double clock_cost(void)
{
    double v[1001];

    for (int i = 0; i < 1001; i++) {
        double t = now_ns();

        v[i] = now_ns() - t;
    }
    qsort(v, 1001, sizeof(v[0]), cmp);
    return v[500];
}

static void report(const char *op, UINT n, struct series *s, double clock)
{
    double med;

    qsort(s->v, s->n, sizeof(double), cmp);
    for (unsigned i = 0; i < s->n; i++) {
        s->v[i] -= clock;
    }
    med = s->v[s->n / 2];
    printf("| %-8s | %6u | %10.0f | %10.0f | %10.0f | %9.1f |\n", op, n, s->v[0], med,
           s->v[s->n - 1], med / n);
}

static void bench_batch(UINT n, double clock)
{
    unsigned reps = n >= 1024 ? 60 : n >= 64 ? 2000 : 20000;
    D3DKMT_HANDLE *h = calloc(n, sizeof(*h));
    BOOL *discarded = calloc(n, sizeof(*discarded));
    D3DDDI_RECLAIM_RESULT *results = calloc(n, sizeof(*results));
    struct series offer = { calloc(2 * reps, sizeof(double)), 0 };
    struct series reclaim = { calloc(reps, sizeof(double)), 0 };
    struct series reclaim2 = { calloc(reps, sizeof(double)), 0 };
    D3DKMT_OFFERALLOCATIONS o = { .hDevice = dev,
                                  .NumAllocations = n,
                                  .Priority = D3DKMT_OFFER_PRIORITY_NORMAL };
    D3DKMT_RECLAIMALLOCATIONS r1 = { .hDevice = dev, .NumAllocations = n };
    D3DKMT_RECLAIMALLOCATIONS2 r2 = { .hPagingQueue = pq, .NumAllocations = n };

    create(n, h);
    o.HandleList = r1.HandleList = r2.HandleList = h;
    r1.pDiscarded = discarded;
    r2.pResults = results;
    for (unsigned i = 0; i < reps; i++) {
        double t0, t1, t2, t3, t4;
        NTSTATUS s1, s2, s3, s4;

        t0 = now_ns();
        s1 = D3DKMTOfferAllocations(&o);
        t1 = now_ns();
        s2 = D3DKMTReclaimAllocations(&r1);
        t2 = now_ns();
        s3 = D3DKMTOfferAllocations(&o);
        t3 = now_ns();
        s4 = D3DKMTReclaimAllocations2(&r2);
        t4 = now_ns();
        if (s1 || s2 || s3 || s4 || discarded[n - 1] || results[0]) {
            die("offer/reclaim round", s1 ? s1 : s2 ? s2 : s3 ? s3 : s4);
        }
        add(&offer, t1 - t0);
        add(&reclaim, t2 - t1);
        add(&offer, t3 - t2);
        add(&reclaim2, t4 - t3);
    }
    report("offer", n, &offer, clock);
    report("reclaim", n, &reclaim, clock);
    report("reclaim2", n, &reclaim2, clock);
    destroy(n, h);
    free(offer.v);
    free(reclaim.v);
    free(reclaim2.v);
    free(h);
    free(discarded);
    free(results);
}

/* Heap growth per live allocation, device engine and library together. */
static void bench_bookkeeping(void)
{
    D3DKMT_HANDLE *h = calloc(LIVE_ALLOCS, sizeof(*h));
    struct mallinfo2 before, after;
    double per;

    before = mallinfo2();
    for (UINT done = 0; done < LIVE_ALLOCS;) {
        UINT n = LIVE_ALLOCS - done < 10240 ? LIVE_ALLOCS - done : 10240;

        create(n, h + done);
        done += n;
    }
    after = mallinfo2();
    per = (double)(after.uordblks + after.hblkhd - before.uordblks - before.hblkhd) / LIVE_ALLOCS;
    printf("\nbookkeeping: %.1f host bytes per allocation with %u allocations alive "
           "(heap growth, target <= 96)\n",
           per, LIVE_ALLOCS);
    for (UINT done = 0; done < LIVE_ALLOCS; done += 10240) {
        destroy(LIVE_ALLOCS - done < 10240 ? LIVE_ALLOCS - done : 10240, h + done);
    }
    free(h);
}

int main(void)
{
    double clock;
    const char *checks = getenv("VKMT_POINTER_CHECKS");

    /* Room for 100k 4 KiB allocations, committed only on paper. */
    setenv("VKMT_LOOPBACK", "aperture=1G,budget=512M", 0);
    open_device();
    clock = clock_cost();
    printf("libvkmt over %s, pointer checks %s, clock cost %.0f ns subtracted\n\n",
           vkmt_transport_name(), checks && !strcmp(checks, "0") ? "off" : "on", clock);
    printf("| call     |  batch | min ns     | median ns  | max ns     | ns/alloc  |\n");
    printf("|----------|-------:|-----------:|-----------:|-----------:|----------:|\n");
    for (unsigned i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        bench_batch(batches[i], clock);
    }
    printf("\ntargets: <= 500 ns per single-allocation call, <= 20 ns per allocation "
           "at 10240\n");
    bench_bookkeeping();
    return 0;
}
