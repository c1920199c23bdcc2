/* SPDX-License-Identifier: MIT */
/*
 * Host benchmark over the loopback transport (make bench-host): the cost of
 * D3DKMTOfferAllocations, D3DKMTReclaimAllocations and
 * D3DKMTReclaimAllocations2 per call and per allocation at batch sizes 1, 64,
 * 1024 and 10240, and the engine's bookkeeping bytes per allocation with
 * 100k allocations alive. Every call is timed on its own, minus the clock's
 * own cost. By default a table of min / median / max over the calls; with
 * --raw (make bench) one sample line per figure: each call's median and the
 * bookkeeping, for bench/report.py to combine over several processes.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define PAGE 4096u
#define LIVE_ALLOCS 100000u

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

static void report(const char *op, UINT n, struct series *s, double clock)
{
    double med;
    char key[64];

    for (unsigned i = 0; i < s->n; i++) {
        s->v[i] -= clock;
    }
    med = bench_median(s->v, s->n);
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
    D3DKMT_HANDLE *h = calloc(n, sizeof(*h));
    BOOL *discarded = calloc(n, sizeof(*discarded));
    D3DDDI_RECLAIM_RESULT *results = calloc(n, sizeof(*results));
    struct series offer = { calloc(2 * reps, sizeof(double)), 0 };
    struct series reclaim = { calloc(reps, sizeof(double)), 0 };
    struct series reclaim2 = { calloc(reps, sizeof(double)), 0 };
    D3DKMT_OFFERALLOCATIONS o = { .hDevice = bench.dev,
                                  .NumAllocations = n,
                                  .Priority = D3DKMT_OFFER_PRIORITY_NORMAL };
    D3DKMT_RECLAIMALLOCATIONS r1 = { .hDevice = bench.dev, .NumAllocations = n };
    D3DKMT_RECLAIMALLOCATIONS2 r2 = { .hPagingQueue = bench.pq, .NumAllocations = n };

    bench_create(n, PAGE, h);
    o.HandleList = r1.HandleList = r2.HandleList = h;
    r1.pDiscarded = discarded;
    r2.pResults = results;
    for (unsigned i = 0; i < reps; i++) {
        double t0, t1, t2, t3, t4;
        NTSTATUS s1, s2, s3, s4;

        t0 = bench_now_ns();
        s1 = D3DKMTOfferAllocations(&o);
        t1 = bench_now_ns();
        s2 = D3DKMTReclaimAllocations(&r1);
        t2 = bench_now_ns();
        s3 = D3DKMTOfferAllocations(&o);
        t3 = bench_now_ns();
        s4 = D3DKMTReclaimAllocations2(&r2);
        t4 = bench_now_ns();
        if (s1 || s2 || s3 || s4 || discarded[n - 1] || results[0]) {
            bench_die("offer/reclaim round", s1 ? s1 : s2 ? s2 : s3 ? s3 : s4);
        }
        add(&offer, t1 - t0);
        add(&reclaim, t2 - t1);
        add(&offer, t3 - t2);
        add(&reclaim2, t4 - t3);
    }
    report("offer", n, &offer, clock);
    report("reclaim", n, &reclaim, clock);
    report("reclaim2", n, &reclaim2, clock);
    bench_destroy(n, h);
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

    raw = argc > 1 && !strcmp(argv[1], "--raw");
    if (argc > 1 + raw) {
        fprintf(stderr, "usage: bench_host [--raw]\n");
        return 2;
    }
    /* Room for 100k 4 KiB allocations, committed only on paper. */
    setenv("VKMT_LOOPBACK", "aperture=1G,budget=512M", 0);
    bench_open();
    clock = bench_clock_cost();
    if (!raw) {
        printf("libvkmt over %s, pointer checks %s, clock cost %.0f ns subtracted\n\n",
               vkmt_transport_name(), checks && !strcmp(checks, "0") ? "off" : "on", clock);
        printf("| call     |  batch | min ns     | median ns  | max ns     | ns/alloc  |\n");
        printf("|----------|-------:|-----------:|-----------:|-----------:|----------:|\n");
    }
    for (unsigned i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        bench_batch(batches[i], clock);
    }
    if (!raw) {
        printf("\ntargets: <= 500 ns per single-allocation call, <= 20 ns per allocation "
               "at 10240\n");
    }
    bench_bookkeeping();
    return 0;
}
