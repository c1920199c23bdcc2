/* SPDX-License-Identifier: MIT */
/*
 * The reference model of what a program sees through the D3DKMT calls:
 * devices with their paging queues, allocations and resources, locks,
 * offers with priorities, reclaims, trims, the budget and the byte content
 * the program wrote. It is written from PROTOCOL.md and LIBVKMT.md alone and
 * shares no code with the engine, so that the two can disagree.
 *
 * Every call is checked after it ran: the driver (modeltest.c) makes the
 * call, then hands the model the inputs and what came back; the model says
 * whether that is an answer the device may give and moves to the state the
 * answer implies. Where the device may choose (an offered allocation may be
 * discarded at any time, by a host trim or a snapshot), the model keeps the
 * allocation UNKNOWN and accepts either outcome, then holds the device to
 * the one it reported. Without such events the model is exact: it predicts
 * every discard from the eviction order of PROTOCOL.md section 9.
 *
 * Residency (protocol 1.2): under pressure that discarding cannot relieve,
 * the device demotes resident, unlocked allocations to the non-local
 * segment. Whether a command demotes, and how many bytes, follows from the
 * model's state; which allocations is the device's choice (its tie-break is
 * a table slot a program cannot see), so a command that demotes leaves its
 * candidates pending until the driver asks QueryAllocationResidency about
 * them, and the model then checks that the choice is one the policy of
 * PROTOCOL.md section 12 allows.
 */
#ifndef VKMT_MODEL_H
#define VKMT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkmt.h"

#define MODEL_MAX_ALLOCS 48
#define MODEL_MAX_DEVS 3
#define MODEL_MAX_RES 12
#define MODEL_MAX_MEMBERS 4
#define MODEL_PAGE 4096u
/* Sizes above it are refused: no aperture is that large. */
#define MODEL_SIZE_MAX ((UINT64)1 << 48)

enum model_state {
    MS_FREE,        /* slot unused */
    MS_RESIDENT,    /* content valid, may be locked */
    MS_OFFERED,     /* offered, content kept (exact mode knows it) */
    MS_UNKNOWN,     /* offered; may have been discarded (or decommitted) */
    MS_DISCARDED,   /* content lost, aperture range kept */
    MS_DECOMMITTED, /* content and range lost */
    MS_DEMOTED,     /* content kept in the non-local segment */
};

/* An allocation's part in a demotion the driver has not learned yet. */
enum model_pend {
    MP_NONE,
    MP_CANDIDATE, /* may have been demoted: not asked about yet */
    MP_KEPT,      /* a candidate still resident */
    MP_CHOSEN,    /* a candidate the device demoted */
};

struct model_alloc {
    enum model_state st;
    D3DKMT_HANDLE h;
    int dev; /* index into devs[] */
    int res; /* index into res[], or -1 */
    uint64_t size;
    uint64_t bytes; /* page-rounded: what the budget counts */
    uint32_t locks;
    UINT prio;     /* of the last offer */
    bool decommit; /* the last offer allowed decommit */
    uint64_t offered_at;
    uint32_t rcount; /* MakeResident calls not yet undone by Evict */
    UINT rprio;      /* residency priority */
    enum model_pend pend;
    bool ballast;          /* locked, never offered: narrows the budget to the model's scale */
    unsigned char *shadow; /* what the content must be (size bytes) */
};

struct model_dev {
    bool live;
    D3DKMT_HANDLE h, pq;
    UINT64 fence; /* ReclaimAllocations2 calls that succeeded on pq */
};

struct model_res {
    bool live;
    D3DKMT_HANDLE h;
    int dev;
    unsigned n;
    int member[MODEL_MAX_MEMBERS];
};

/* Every allocation and resource handle the device ever returned. */
struct handle_set {
    uint32_t *v;
    size_t cap, n;
};

struct model {
    struct model_alloc a[MODEL_MAX_ALLOCS];
    struct model_dev dev[MODEL_MAX_DEVS];
    struct model_res res[MODEL_MAX_RES];
    struct handle_set seen;
    UINT64 budget;
    uint64_t clock;        /* offer order */
    bool residency;        /* the device has VKMT_F_RESIDENCY */
    UINT64 nonlocal;       /* the non-local segment's size: 0, or room for every demotion */
    UINT64 reservation[2]; /* per segment group */
    UINT64 demote_need;    /* bytes the pending demotion had to free */
    unsigned pending;      /* MP_CANDIDATE allocations left to learn */
    /* Every offer is UNKNOWN from the start (a host that trims at will). */
    bool lenient;
    char err[512];
};

/* The non-local segment the model needs, when there is one: every
 * allocation it can hold demoted, with room for a free run of the largest
 * size in the gaps between them, so that no demotion is passed over. */
#define MODEL_NONLOCAL_MIN (2ull * (MODEL_MAX_ALLOCS + 1) * 16 * MODEL_PAGE)

void model_init(struct model *m, UINT64 budget, bool lenient, bool residency, UINT64 nonlocal);
void model_free(struct model *m);

/* No UNKNOWN allocation and not lenient: every discard is predicted. */
bool model_exact(const struct model *m);

/* Slot of the live allocation/resource with handle @h, or -1. */
int model_alloc_of(const struct model *m, D3DKMT_HANDLE h);
int model_res_of(const struct model *m, D3DKMT_HANDLE h);

/* Bytes of RESIDENT allocations (the budget also counts OFFERED ones). */
UINT64 model_resident_bytes(const struct model *m);

/*
 * The checks. Each takes what the program passed and what came back, and
 * returns true when the answer is one the device may give, updating the
 * model to match; false with m->err set otherwise (the model is then
 * unchanged or partly changed: a run stops at its first mismatch).
 */
bool model_create_device(struct model *m, int d, NTSTATUS st, D3DKMT_HANDLE h, D3DKMT_HANDLE pq);
bool model_destroy_device(struct model *m, D3DKMT_HANDLE h, NTSTATUS st);
bool model_create(struct model *m, D3DKMT_HANDLE dev, unsigned n, const UINT64 *sizes,
                  bool resource, bool ballast, NTSTATUS st, const D3DKMT_HANDLE *out,
                  D3DKMT_HANDLE res);
bool model_destroy(struct model *m, D3DKMT_HANDLE dev, unsigned n, const D3DKMT_HANDLE *h,
                   D3DKMT_HANDLE res, NTSTATUS st);
bool model_lock(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE h, NTSTATUS st);
bool model_unlock(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE h, NTSTATUS st);
bool model_offer(struct model *m, D3DKMT_HANDLE dev, unsigned n, const D3DKMT_HANDLE *h,
                 bool resources, UINT prio, UINT flags, NTSTATUS st);
/*
 * @v2: ReclaimAllocations2 through @dev_or_pq (a paging queue), else the v1
 * call through a device (which recommits decommitted allocations). @results
 * is what came back in pResults (v2) or pDiscarded (v1, BOOLs), or NULL if
 * none was asked for; @fence the PagingFenceValue (v2).
 */
bool model_reclaim(struct model *m, bool v2, D3DKMT_HANDLE dev_or_pq, unsigned n,
                   const D3DKMT_HANDLE *h, bool resources, const UINT *results, NTSTATUS st,
                   UINT64 fence);
/* vkmt_trim(@bytes) answered @st and *discarded = @freed. */
bool model_trim(struct model *m, UINT64 bytes, NTSTATUS st, UINT64 freed);
/* Something the model does not see may have discarded offered content (a
 * host trim, a snapshot restored with migrate-offered=discard). */
void model_forget(struct model *m);
/* The host set the budget to @budget (and the device applied it). */
void model_set_budget(struct model *m, UINT64 budget);
/* QueryVideoMemoryInfo for @group answered @st and @q's outputs. */
bool model_query(struct model *m, UINT group, NTSTATUS st, const D3DKMT_QUERYVIDEOMEMORYINFO *q);
/* ChangeVideoMemoryReservation of @bytes in @group answered @st. */
bool model_reserve(struct model *m, UINT group, UINT64 bytes, NTSTATUS st);

/* The residency thunks. @via is the paging queue (MakeResident) or the
 * device; @flags the call's flag word; @trim its NumBytesToTrim. */
bool model_make_resident(struct model *m, D3DKMT_HANDLE via, unsigned n, const D3DKMT_HANDLE *h,
                         UINT flags, NTSTATUS st, UINT64 fence, UINT64 trim);
bool model_evict(struct model *m, D3DKMT_HANDLE dev, unsigned n, const D3DKMT_HANDLE *h, UINT flags,
                 NTSTATUS st, UINT64 trim);
/*
 * Set/GetAllocationPriority and QueryAllocationResidency, through resource
 * @res (one value) or the @n allocations @h (one value each, @v).
 * QueryAllocationResidency also tells the model which candidates of a
 * pending demotion the device chose; once every one is known it checks the
 * choice (model_pending).
 */
bool model_set_priority(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                        const D3DKMT_HANDLE *h, const UINT *v, NTSTATUS st);
bool model_get_priority(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                        const D3DKMT_HANDLE *h, const UINT *v, NTSTATUS st);
bool model_query_residency(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                           const D3DKMT_HANDLE *h, const UINT *v, NTSTATUS st);
/* A command demoted allocations the driver must ask about before the next
 * call (QueryAllocationResidency of every allocation, device by device). */
bool model_pending(const struct model *m);
bool model_stats(struct model *m, NTSTATUS st, const VKMT_DEVICE_STATS *s);

/*
 * The content of RESIDENT allocation @i as read through a lock: true when
 * it is what the model expects. An allocation that came back from an
 * UNKNOWN offer with its content kept must match byte for byte; one that
 * came back discarded reads zeros until written.
 */
bool model_content(struct model *m, int i, const unsigned char *p);

#endif /* VKMT_MODEL_H */
