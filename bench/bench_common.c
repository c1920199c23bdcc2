/* SPDX-License-Identifier: MIT */
/* Shared benchmark helpers (bench_common.h). */
#define _GNU_SOURCE
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_session bench;

double bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
    qsort(v, n, sizeof(v[0]), cmp_double);
    return v[n / 2];
}

double bench_clock_cost(void)
{
    double v[1001];

    for (int i = 0; i < 1001; i++) {
        double t = bench_now_ns();

        v[i] = bench_now_ns() - t;
    }
    return bench_median(v, 1001);
}

void bench_sample(const char *key, const char *unit, double value)
{
    const char *checks = getenv("VKMT_POINTER_CHECKS");

    printf("vkmt-bench: %s%s %s %.3f\n", key, checks && !strcmp(checks, "0") ? ".nochecks" : "",
           unit, value);
    fflush(stdout);
}

void bench_die(const char *what, NTSTATUS st)
{
    printf("vkmt-bench: error: %s failed: %s (0x%08x)\n", what,
           vkmt_status_name(st) ? vkmt_status_name(st) : "?", (unsigned)st);
    fflush(stdout);
    exit(1);
}

void bench_open(void)
{
    D3DKMT_ADAPTERINFO info;
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &info };
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE cq = { 0 };
    NTSTATUS st;

    if ((st = D3DKMTEnumAdapters2(&e)) != STATUS_SUCCESS || e.NumAdapters < 1) {
        bench_die("D3DKMTEnumAdapters2", st ? st : STATUS_DEVICE_REMOVED);
    }
    bench.adapter = cd.hAdapter = info.hAdapter;
    if ((st = D3DKMTCreateDevice(&cd)) != STATUS_SUCCESS) {
        bench_die("D3DKMTCreateDevice", st);
    }
    bench.dev = cq.hDevice = cd.hDevice;
    if ((st = D3DKMTCreatePagingQueue(&cq)) != STATUS_SUCCESS) {
        bench_die("D3DKMTCreatePagingQueue", st);
    }
    bench.pq = cq.hPagingQueue;
}

void bench_create(UINT n, UINT64 size, D3DKMT_HANDLE *h)
{
    D3DDDI_ALLOCATIONINFO2 *info = calloc(n, sizeof(*info));
    VKMT_ALLOCATION_DESC desc = { .Size = size };
    D3DKMT_CREATEALLOCATION ca = { .hDevice = bench.dev, .NumAllocations = n };
    NTSTATUS st;

    if (!info) {
        bench_die("calloc", STATUS_NO_MEMORY);
    }
    for (UINT i = 0; i < n; i++) {
        info[i].pPrivateDriverData = &desc;
        info[i].PrivateDriverDataSize = sizeof(desc);
    }
    ca.pAllocationInfo2 = info;
    if ((st = D3DKMTCreateAllocation2(&ca)) != STATUS_SUCCESS) {
        bench_die("D3DKMTCreateAllocation2", st);
    }
    for (UINT i = 0; i < n; i++) {
        h[i] = info[i].hAllocation;
    }
    free(info);
}

void bench_destroy(UINT n, const D3DKMT_HANDLE *h)
{
    D3DKMT_DESTROYALLOCATION2 d = { .hDevice = bench.dev,
                                    .phAllocationList = h,
                                    .AllocationCount = n };
    NTSTATUS st = D3DKMTDestroyAllocation2(&d);

    if (st != STATUS_SUCCESS) {
        bench_die("D3DKMTDestroyAllocation2", st);
    }
}

void bench_round_init(struct bench_round *r, UINT n)
{
    *r = (struct bench_round){
        .n = n,
        .h = calloc(n, sizeof(*r->h)),
        .discarded = calloc(n, sizeof(*r->discarded)),
        .results = calloc(n, sizeof(*r->results)),
        .offer = { .hDevice = bench.dev,
                   .NumAllocations = n,
                   .Priority = D3DKMT_OFFER_PRIORITY_NORMAL },
        .reclaim = { .hDevice = bench.dev, .NumAllocations = n },
        .reclaim2 = { .hPagingQueue = bench.pq, .NumAllocations = n },
    };
    if (!r->h || !r->discarded || !r->results) {
        bench_die("calloc", STATUS_NO_MEMORY);
    }
    bench_create(n, 4096, r->h);
    r->offer.HandleList = r->reclaim.HandleList = r->reclaim2.HandleList = r->h;
    r->reclaim.pDiscarded = r->discarded;
    r->reclaim2.pResults = r->results;
}

void bench_round_run(struct bench_round *r, double t[4])
{
    double t0, t1, t2, t3, t4;
    NTSTATUS s1, s2, s3, s4;

    t0 = bench_now_ns();
    s1 = D3DKMTOfferAllocations(&r->offer);
    t1 = bench_now_ns();
    s2 = D3DKMTReclaimAllocations(&r->reclaim);
    t2 = bench_now_ns();
    s3 = D3DKMTOfferAllocations(&r->offer);
    t3 = bench_now_ns();
    s4 = D3DKMTReclaimAllocations2(&r->reclaim2);
    t4 = bench_now_ns();
    if (s1 || s2 || s3 || s4 || r->discarded[r->n - 1] || r->results[0]) {
        bench_die("offer/reclaim round", s1 ? s1 : s2 ? s2 : s3 ? s3 : s4);
    }
    t[0] = t1 - t0;
    t[1] = t2 - t1;
    t[2] = t3 - t2;
    t[3] = t4 - t3;
}

void bench_round_fini(struct bench_round *r)
{
    bench_destroy(r->n, r->h);
    free(r->h);
    free(r->discarded);
    free(r->results);
}

void bench_residency_init(struct bench_residency *r, UINT n)
{
    double t[2];

    *r = (struct bench_residency){
        .n = n,
        .h = calloc(n, sizeof(*r->h)),
        .status = calloc(n, sizeof(*r->status)),
        .make = { .hPagingQueue = bench.pq },
        .evict = { .hDevice = bench.dev },
    };
    if (!r->h || !r->status) {
        bench_die("calloc", STATUS_NO_MEMORY);
    }
    bench_create(n, 4096, r->h);
    r->make.AllocationList = r->evict.AllocationList = r->h;
    /* A new allocation is resident already: one round leaves all demoted. */
    bench_residency_run(r, t);
}

void bench_residency_run(struct bench_residency *r, double t[2])
{
    double t0, t1, t2;
    NTSTATUS s1, s2;

    r->make.NumAllocations = r->evict.NumAllocations = r->n;
    t0 = bench_now_ns();
    s1 = D3DKMTMakeResident(&r->make);
    t1 = bench_now_ns();
    s2 = D3DKMTEvict(&r->evict);
    t2 = bench_now_ns();
    if (s1 || s2) {
        bench_die(s1 ? "D3DKMTMakeResident" : "D3DKMTEvict", s1 ? s1 : s2);
    }
    t[0] = t1 - t0;
    t[1] = t2 - t1;
}

void bench_residency_fini(struct bench_residency *r)
{
    D3DKMT_QUERYALLOCATIONRESIDENCY q = { .hDevice = bench.dev,
                                          .phAllocationList = r->h,
                                          .AllocationCount = r->n,
                                          .pResidencyStatus = r->status };
    NTSTATUS st = D3DKMTQueryAllocationResidency(&q);

    if (st != STATUS_SUCCESS) {
        bench_die("D3DKMTQueryAllocationResidency", st);
    }
    for (UINT i = 0; i < r->n; i++) {
        if (r->status[i] != D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY) {
            bench_die("Evict left an allocation resident (no non-local segment?)", STATUS_SUCCESS);
        }
    }
    bench_destroy(r->n, r->h);
    free(r->h);
    free(r->status);
}
