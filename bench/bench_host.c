/* SPDX-License-Identifier: MIT */
/*
 * Host benchmark over the loopback transport (make bench-host): the cost of
 * D3DKMTOfferAllocations, D3DKMTReclaimAllocations and
 * D3DKMTReclaimAllocations2 per call and per allocation at batch sizes 1, 64,
 * 1024 and 10240, D3DKMTMakeResident and D3DKMTEvict per allocation at batch
 * sizes 1 and 1024 (each call moves every allocation between the local and
 * the non-local segment), and the engine's bookkeeping bytes per allocation with
 * 100k allocations alive. Every call is timed on its own, minus the clock's
 * own cost. By default a table of min / median / max over the calls; with
 * --raw (make bench) one sample line per figure: each call's median and the
 * bookkeeping, for bench/report.py to combine over several processes.
 *
 * --backend: instead, what the content backend VKMT_LOOPBACK_BACKEND names
 * (mem or virgl) costs: Lock2 and Unlock2 of a 4 MiB allocation (virgl:
 * transfers from and to its GPU resource), a 4 KiB offer + reclaim with
 * nothing evicted, and a trim discarding one 4 KiB allocation (virgl: its
 * resource is destroyed) followed by the reclaim that recreates it.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define PAGE 4096u
#define LIVE_ALLOCS 100000u
#define BIG (4u << 20)

static const UINT batches[] = { 1, 64, 1024, 10240 };
static int raw;

struct series {
    double *v;
    unsigned n;
};

static void add(struct series *s, double ns)
{
    s->v[s->n++] = ns;
}

/* Takes the clock's cost off every call of @s and sorts it; returns the median. */
static double settle(struct series *s, double clock)
{
    for (unsigned i = 0; i < s->n; i++) {
        s->v[i] -= clock;
    }
    return bench_median(s->v, s->n);
}

static void report(const char *op, UINT n, struct series *s, double clock)
{
    double med = settle(s, clock);
    char key[64];

    if (raw) {
        snprintf(key, sizeof(key), "loopback.%s.%u", op, n);
        bench_sample(key, "ns", med);
        return;
    }
    printf("| %-8s | %6u | %10.0f | %10.0f | %10.0f | %9.1f |\n", op, n, s->v[0], med,
           s->v[s->n - 1], med / n);
}

static void bench_batch(UINT n, double clock)
{
    unsigned reps = n >= 1024 ? 60 : n >= 64 ? 2000 : 20000;
    struct series offer = { calloc(2 * reps, sizeof(double)), 0 };
    struct series reclaim = { calloc(reps, sizeof(double)), 0 };
    struct series reclaim2 = { calloc(reps, sizeof(double)), 0 };
    struct bench_round r;

    bench_round_init(&r, n);
    for (unsigned i = 0; i < reps; i++) {
        double t[4];

        bench_round_run(&r, t);
        add(&offer, t[0]);
        add(&reclaim, t[1]);
        add(&offer, t[2]);
        add(&reclaim2, t[3]);
    }
    report("offer", n, &offer, clock);
    report("reclaim", n, &reclaim, clock);
    report("reclaim2", n, &reclaim2, clock);
    bench_round_fini(&r);
    free(offer.v);
    free(reclaim.v);
    free(reclaim2.v);
}

/* MakeResident promotes and Evict demotes @n allocations, alternately:
 * series 0 times MakeResident, series 1 Evict. */
static void bench_residency(UINT n, double clock)
{
    unsigned reps = n >= 1024 ? 60 : 20000;
    struct series s[2] = { { calloc(reps, sizeof(double)), 0 },
                           { calloc(reps, sizeof(double)), 0 } };
    struct bench_residency r;
    double t[2];

    bench_residency_init(&r, n);
    while (s[0].n < reps) {
        bench_residency_run(&r, t);
        add(&s[0], t[0]);
        add(&s[1], t[1]);
    }
    bench_residency_fini(&r);
    report("resident", n, &s[0], clock);
    report("evict", n, &s[1], clock);
    free(s[0].v);
    free(s[1].v);
}

/* One --backend figure: the median of @s in ns. */
static void report_backend(const char *backend, const char *what, struct series *s, double clock)
{
    double med = settle(s, clock);
    char key[64];

    if (raw) {
        snprintf(key, sizeof(key), "backend.%s.%s", backend, what);
        bench_sample(key, "ns", med);
        return;
    }
    printf("| %-16s | %10.0f | %10.0f | %10.0f |\n", what, s->v[0], med, s->v[s->n - 1]);
}

static void check(const char *what, NTSTATUS st)
{
    if (st != STATUS_SUCCESS) {
        bench_die(what, st);
    }
}

static void bench_backend(const char *backend, double clock)
{
    enum { BIG_REPS = 40, SMALL_REPS = 400 };
    struct series lock = { calloc(BIG_REPS, sizeof(double)), 0 };
    struct series unlock = { calloc(BIG_REPS, sizeof(double)), 0 };
    struct series pair = { calloc(SMALL_REPS, sizeof(double)), 0 };
    struct series trim = { calloc(SMALL_REPS, sizeof(double)), 0 };
    struct series recreate = { calloc(SMALL_REPS, sizeof(double)), 0 };
    D3DKMT_HANDLE big, small;
    D3DKMT_LOCK2 l = { .hDevice = bench.dev };
    D3DKMT_UNLOCK2 u = { .hDevice = bench.dev };
    D3DDDI_RECLAIM_RESULT result;
    D3DKMT_OFFERALLOCATIONS o = { .hDevice = bench.dev,
                                  .HandleList = &small,
                                  .NumAllocations = 1,
                                  .Priority = D3DKMT_OFFER_PRIORITY_LOW };
    D3DKMT_RECLAIMALLOCATIONS2 r = {
        .hPagingQueue = bench.pq, .NumAllocations = 1, .HandleList = &small, .pResults = &result
    };

    bench_create(1, BIG, &big);
    bench_create(1, PAGE, &small);
    l.hAllocation = u.hAllocation = big;
    /* The first unlock makes the GPU copy the newer one: from then on every
     * lock transfers it back and every unlock transfers it out. */
    check("D3DKMTLock2", D3DKMTLock2(&l));
    check("D3DKMTUnlock2", D3DKMTUnlock2(&u));
    for (unsigned i = 0; i < BIG_REPS; i++) {
        double t0 = bench_now_ns(), t1, t2;

        check("D3DKMTLock2", D3DKMTLock2(&l));
        t1 = bench_now_ns();
        check("D3DKMTUnlock2", D3DKMTUnlock2(&u));
        t2 = bench_now_ns();
        add(&lock, t1 - t0);
        add(&unlock, t2 - t1);
    }
    for (unsigned i = 0; i < SMALL_REPS; i++) {
        double t0, t1, t2, t3, t4;
        UINT64 freed = 0;

        t0 = bench_now_ns();
        check("D3DKMTOfferAllocations", D3DKMTOfferAllocations(&o));
        check("D3DKMTReclaimAllocations2", D3DKMTReclaimAllocations2(&r));
        t1 = bench_now_ns();
        check("D3DKMTOfferAllocations", D3DKMTOfferAllocations(&o));
        t2 = bench_now_ns();
        check("vkmt_trim", vkmt_trim(bench.adapter, PAGE, &freed));
        t3 = bench_now_ns();
        check("D3DKMTReclaimAllocations2", D3DKMTReclaimAllocations2(&r));
        t4 = bench_now_ns();
        if (freed != PAGE || result != D3DDDI_RECLAIM_RESULT_DISCARDED) {
            bench_die("trim + reclaim (nothing discarded)", STATUS_SUCCESS);
        }
        add(&pair, t1 - t0);
        add(&trim, t3 - t2);
        add(&recreate, t4 - t3);
    }
    if (!raw) {
        printf("libvkmt over %s, backend %s, clock cost %.0f ns subtracted\n\n",
               vkmt_transport_name(), backend, clock);
        printf("| figure           | min ns     | median ns  | max ns     |\n");
        printf("|------------------|-----------:|-----------:|-----------:|\n");
    }
    report_backend(backend, "lock.4m", &lock, clock);
    report_backend(backend, "unlock.4m", &unlock, clock);
    report_backend(backend, "offer_reclaim.4k", &pair, clock);
    report_backend(backend, "trim.4k", &trim, clock);
    report_backend(backend, "recreate.4k", &recreate, clock);
    bench_destroy(1, &big);
    bench_destroy(1, &small);
    free(lock.v);
    free(unlock.v);
    free(pair.v);
    free(trim.v);
    free(recreate.v);
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

        bench_create(n, PAGE, h + done);
        done += n;
    }
    after = mallinfo2();
    per = (double)(after.uordblks + after.hblkhd - before.uordblks - before.hblkhd) / LIVE_ALLOCS;
    if (raw) {
        bench_sample("loopback.bookkeeping", "B", per);
    } else {
        printf("\nbookkeeping: %.1f host bytes per allocation with %u allocations alive "
               "(heap growth, target <= 96)\n",
               per, LIVE_ALLOCS);
    }
    for (UINT done = 0; done < LIVE_ALLOCS; done += 10240) {
        bench_destroy(LIVE_ALLOCS - done < 10240 ? LIVE_ALLOCS - done : 10240, h + done);
    }
    free(h);
}

int main(int argc, char **argv)
{
    double clock;
    const char *checks = getenv("VKMT_POINTER_CHECKS");
    const char *backend = getenv("VKMT_LOOPBACK_BACKEND");
    int backend_figures = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--raw")) {
            raw = 1;
        } else if (!strcmp(argv[i], "--backend")) {
            backend_figures = 1;
        } else {
            fprintf(stderr, "usage: bench_host [--raw] [--backend]\n");
            return 2;
        }
    }
    /* Room for 100k 4 KiB allocations, committed only on paper. */
    setenv("VKMT_LOOPBACK", "aperture=1G,budget=512M", 0);
    bench_open();
    clock = bench_clock_cost();
    if (backend_figures) {
        bench_backend(backend && *backend ? backend : "mem", clock);
        return 0;
    }
    if (!raw) {
        printf("libvkmt over %s, pointer checks %s, clock cost %.0f ns subtracted\n\n",
               vkmt_transport_name(), checks && !strcmp(checks, "0") ? "off" : "on", clock);
        printf("| call     |  batch | min ns     | median ns  | max ns     | ns/alloc  |\n");
        printf("|----------|-------:|-----------:|-----------:|-----------:|----------:|\n");
    }
    for (unsigned i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        bench_batch(batches[i], clock);
    }
    bench_residency(1, clock);
    bench_residency(1024, clock);
    if (!raw) {
        printf("\ntargets: <= 500 ns per single-allocation call, <= 20 ns per allocation "
               "at 10240\n");
    }
    bench_bookkeeping();
    return 0;
}
