/* SPDX-License-Identifier: MIT */
/*
 * The conformance suite: it drives only the public D3DKMT surface of libvkmt
 * (d3dkmthk.h and vkmt.h), so the same binary checks any transport and any
 * backend. These helpers open one adapter, device and paging queue per test
 * and wrap the calls tests make over and over.
 */
#ifndef VKMT_CONF_H
#define VKMT_CONF_H

#include <stddef.h>

#include "harness.h"
#include "vkmt.h"

#define CHECK_ST(expr, want)                                                                       \
    do {                                                                                           \
        NTSTATUS got_ = (expr);                                                                    \
        if (got_ != (want)) {                                                                      \
            harness_fail(__FILE__, __LINE__, "%s: %s (0x%08x), want %s", #expr, conf_status(got_), \
                         (unsigned)got_, conf_status(want));                                       \
        }                                                                                          \
    } while (0)

struct conf {
    D3DKMT_HANDLE adapter;
    D3DKMT_HANDLE dev;
    D3DKMT_HANDLE pq;
    D3DKMT_HANDLE sync;
    const volatile UINT64 *fence;
    UINT64 budget;
};

const char *conf_status(NTSTATUS st);

/* Open the first adapter, a device and a paging queue; false on failure. */
int conf_open(struct conf *c);
void conf_close(struct conf *c);

/* Create @n allocations of @size bytes; handles into @h (may be NULL). */
NTSTATUS conf_create(struct conf *c, UINT n, UINT64 size, D3DKMT_HANDLE *h);
/* The same, grouped into a new resource returned in *@res. */
NTSTATUS conf_create_resource(struct conf *c, UINT n, UINT64 size, D3DKMT_HANDLE *h,
                              D3DKMT_HANDLE *res);
NTSTATUS conf_destroy(struct conf *c, UINT n, const D3DKMT_HANDLE *h);

NTSTATUS conf_offer(struct conf *c, const D3DKMT_HANDLE *h, UINT n, D3DKMT_OFFER_PRIORITY prio,
                    UINT flags);
/* ReclaimAllocations2 on the paging queue; results into @r if non-NULL. */
NTSTATUS conf_reclaim2(struct conf *c, const D3DKMT_HANDLE *h, UINT n, D3DDDI_RECLAIM_RESULT *r);
/* ReclaimAllocations (v1); BOOL discarded flags into @d if non-NULL. */
NTSTATUS conf_reclaim1(struct conf *c, const D3DKMT_HANDLE *h, UINT n, BOOL *d);

NTSTATUS conf_lock(struct conf *c, D3DKMT_HANDLE h, unsigned char **p);
NTSTATUS conf_unlock(struct conf *c, D3DKMT_HANDLE h);
/* Write the pattern of @seed over the first @len bytes (it differs per page
 * and per seed) / compare with it: 1 pattern, 0 all zeros, -1 anything else. */
void conf_fill(struct conf *c, D3DKMT_HANDLE h, size_t len, unsigned seed);
int conf_content(struct conf *c, D3DKMT_HANDLE h, size_t len, unsigned seed);

UINT64 conf_usage(struct conf *c);

/* A page nobody can read, and one nobody can write. */
void *conf_unreadable(void);
void *conf_readonly(void);

#define CONF_TABLE(name)                                                                           \
    extern const struct test name[];                                                               \
    extern const unsigned name##_count

CONF_TABLE(conf_adapter_tests);
CONF_TABLE(conf_alloc_tests);
CONF_TABLE(conf_offer_tests);
CONF_TABLE(conf_reclaim_tests);
CONF_TABLE(conf_pressure_tests);
CONF_TABLE(conf_notify_tests);
CONF_TABLE(conf_removal_tests);
CONF_TABLE(conf_residency_tests);
CONF_TABLE(conf_quota_tests);

#define CONF_COUNT(table) const unsigned table##_count = sizeof(table) / sizeof(table[0])

#endif /* VKMT_CONF_H */
