/* SPDX-License-Identifier: MIT */
/*
 * What vkmt-bench's sections share (bench_vm.c): the clock's cost, timing
 * helpers and the VM runner's console services, and the sections that
 * bench_kmd.c adds.
 */
#ifndef VKMT_BENCH_VM_H
#define VKMT_BENCH_VM_H

#include "bench_common.h"

#define RUNS 7

/* The median cost of one clock read, measured at start. */
extern double clock_ns;
/* Room for @n timings; exits when there is none. */
double *timings(unsigned n);
/* Nanoseconds since @t0, less the clock's own cost. */
double since(double t0);
/* One D3DKMTQueryVideoMemoryInfo (a command with no handle array): its ns,
 * less the clock's cost. Exits on a failure. */
double timed_query(void);
/* Offers @r's allocations (untimed), then reclaims them with
 * D3DKMTReclaimAllocations2: its ns, less the clock's cost. Exits on a
 * failure or an allocation that did not survive. */
double offer_reclaim2(struct bench_round *r);
/* Prints "vkmt-bench: error: " and @fmt with @arg, and exits with status 1. */
_Noreturn void fatal(const char *fmt, const char *arg);
/* One request to the VM runner (docs/VM.md); returns its one-line answer. */
const char *host(const char *request);

/* bench_kmd.c */
void section_nop(void);
void section_rtt(void);
void section_resident(void);
void section_wait(void);
void section_scale(void);

/* bench_migrate.c */
void section_migrate(void);
void section_notify(void);

#endif /* VKMT_BENCH_VM_H */
