/* SPDX-License-Identifier: MIT */
/*
 * What the host benchmark (bench_host.c) and the in-VM one (bench_vm.c)
 * share: the clock, one device session, allocation create/destroy, and the
 * sample lines that scripts/bench.sh collects ("vkmt-bench: KEY UNIT VALUE",
 * one per run; bench/report.py turns them into min/median/max).
 */
#ifndef VKMT_BENCH_COMMON_H
#define VKMT_BENCH_COMMON_H

#include "vkmt.h"

/* The session every benchmark call goes through. */
struct bench_session {
    D3DKMT_HANDLE adapter, dev, pq;
};
extern struct bench_session bench;

/* CLOCK_MONOTONIC in ns. */
double bench_now_ns(void);
/* Median cost of reading the clock, to subtract from timed calls. */
double bench_clock_cost(void);
/* Sorts @v in place and returns its median. */
double bench_median(double *v, unsigned n);
/* Prints and flushes one sample line; with VKMT_POINTER_CHECKS=0 the key
 * gets ".nochecks" appended (libvkmt skips its kernel-checked copies). */
void bench_sample(const char *key, const char *unit, double value);
/* Prints the failure and exits with status 1. */
_Noreturn void bench_die(const char *what, NTSTATUS st);

/* Opens the first adapter, a device and a paging queue into bench. */
void bench_open(void);
/* Creates @n allocations of @size bytes into @h. */
void bench_create(UINT n, UINT64 size, D3DKMT_HANDLE *h);
/* Destroys the @n allocations in @h. */
void bench_destroy(UINT n, const D3DKMT_HANDLE *h);

/* @n 4 KiB allocations and the offer and reclaim arguments that name them. */
struct bench_round {
    UINT n;
    D3DKMT_HANDLE *h;
    BOOL *discarded;
    D3DDDI_RECLAIM_RESULT *results;
    D3DKMT_OFFERALLOCATIONS offer;
    D3DKMT_RECLAIMALLOCATIONS reclaim;
    D3DKMT_RECLAIMALLOCATIONS2 reclaim2;
};
void bench_round_init(struct bench_round *r, UINT n);
/* Offer, reclaim, offer, reclaim2 of all @r's allocations, each timed: @t
 * gets the four durations in ns (clock cost included). Exits on a failure
 * or an allocation that did not survive. */
void bench_round_run(struct bench_round *r, double t[4]);
/* Destroys the allocations and frees @r's arrays. */
void bench_round_fini(struct bench_round *r);

/*
 * @n 4 KiB allocations that MakeResident and Evict move between the
 * segments (the device needs a non-local segment): after init every one is
 * demoted, each run's MakeResident promotes them all and its Evict (count
 * back to 0) demotes them all again, so both calls copy every allocation.
 */
struct bench_residency {
    UINT n;
    D3DKMT_HANDLE *h;
    D3DKMT_ALLOCATIONRESIDENCYSTATUS *status;
    D3DDDI_MAKERESIDENT make;
    D3DKMT_EVICT evict;
};
void bench_residency_init(struct bench_residency *r, UINT n);
/* MakeResident then Evict of all @r's allocations: @t gets both durations
 * in ns (clock cost included). Exits on a failure. */
void bench_residency_run(struct bench_residency *r, double t[2]);
/* Exits unless every allocation of @r is demoted now (each run moved them),
 * then destroys them and frees @r's arrays. */
void bench_residency_fini(struct bench_residency *r);

#endif /* VKMT_BENCH_COMMON_H */
