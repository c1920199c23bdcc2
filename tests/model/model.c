/* SPDX-License-Identifier: MIT */
/*
 * The reference model of model.h: the allocation state machine of
 * PROTOCOL.md sections 8 to 10 as a program sees it, with the eviction order
 * of section 9 for exact predictions and UNKNOWN for what the device may
 * decide on its own; and residency (section 12): demotion, its counts and
 * priorities, with the choice of what to demote checked against the policy
 * once the driver has learned it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define RES_OK D3DDDI_RECLAIM_RESULT_OK
#define RES_DISCARDED D3DDDI_RECLAIM_RESULT_DISCARDED
#define RES_NOT_COMMITTED D3DDDI_RECLAIM_RESULT_NOT_COMMITTED
#define OFFER_FLAGS_KNOWN 0x3u /* OfferImmediately, AllowDecommit */

static bool fail(struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct model *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->err, sizeof(m->err), fmt, ap);
    va_end(ap);
    return false;
}

static const char *st_name(NTSTATUS st)
{
    const char *n = vkmt_status_name(st);

    return n ? n : "an unknown status";
}

/* @got must be @want; true when it is. */
static bool want_st(struct model *m, const char *call, NTSTATUS got, NTSTATUS want)
{
    if (got == want) {
        return true;
    }
    return fail(m, "%s returned %s (0x%08x), the model expects %s", call, st_name(got),
                (unsigned)got, st_name(want));
}

void model_init(struct model *m, UINT64 budget, bool lenient, bool residency, UINT64 nonlocal)
{
    memset(m, 0, sizeof(*m));
    m->budget = budget;
    m->lenient = lenient;
    m->residency = residency;
    m->nonlocal = residency ? nonlocal : 0;
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        m->a[i].res = -1;
    }
}

static void free_alloc(struct model_alloc *a)
{
    free(a->shadow);
    memset(a, 0, sizeof(*a));
    a->res = -1;
}

void model_free(struct model *m)
{
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        free_alloc(&m->a[i]);
    }
    free(m->seen.v);
    m->seen = (struct handle_set){ 0 };
}

/* Adds @h to the handles ever seen; false when it was there already. */
static bool seen_add(struct handle_set *s, uint32_t h)
{
    if (s->n * 2 >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint32_t *v = calloc(cap, sizeof(*v));

        if (!v) {
            abort(); /* a test program without memory cannot go on */
        }
        for (size_t i = 0; i < s->cap; i++) {
            for (size_t j = s->v[i] % cap; s->v[i]; j = (j + 1) % cap) {
                if (!v[j]) {
                    v[j] = s->v[i];
                    break;
                }
            }
        }
        free(s->v);
        s->v = v;
        s->cap = cap;
    }
    for (size_t j = h % s->cap;; j = (j + 1) % s->cap) {
        if (s->v[j] == h) {
            return false;
        }
        if (!s->v[j]) {
            s->v[j] = h;
            s->n++;
            return true;
        }
    }
}

bool model_exact(const struct model *m)
{
    if (m->lenient) {
        return false;
    }
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (m->a[i].st == MS_UNKNOWN) {
            return false;
        }
    }
    return true;
}

int model_alloc_of(const struct model *m, D3DKMT_HANDLE h)
{
    for (int i = 0; h && i < MODEL_MAX_ALLOCS; i++) {
        if (m->a[i].st != MS_FREE && m->a[i].h == h) {
            return i;
        }
    }
    return -1;
}

int model_res_of(const struct model *m, D3DKMT_HANDLE h)
{
    for (int i = 0; h && i < MODEL_MAX_RES; i++) {
        if (m->res[i].live && m->res[i].h == h) {
            return i;
        }
    }
    return -1;
}

static int dev_of(const struct model *m, D3DKMT_HANDLE h)
{
    for (int i = 0; h && i < MODEL_MAX_DEVS; i++) {
        if (m->dev[i].live && m->dev[i].h == h) {
            return i;
        }
    }
    return -1;
}

static int dev_of_pq(const struct model *m, D3DKMT_HANDLE pq)
{
    for (int i = 0; pq && i < MODEL_MAX_DEVS; i++) {
        if (m->dev[i].live && m->dev[i].pq == pq) {
            return i;
        }
    }
    return -1;
}

static UINT64 bytes_in(const struct model *m, enum model_state st)
{
    UINT64 sum = 0;

    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (m->a[i].st == st) {
            sum += m->a[i].bytes;
        }
    }
    return sum;
}

UINT64 model_resident_bytes(const struct model *m)
{
    return bytes_in(m, MS_RESIDENT);
}

/* Committed bytes; exact mode only (UNKNOWN content is not counted). */
static UINT64 committed(const struct model *m)
{
    return bytes_in(m, MS_RESIDENT) + bytes_in(m, MS_OFFERED);
}

static unsigned evict_class(UINT prio)
{
    return prio == D3DKMT_OFFER_PRIORITY_LOW ? 0 : prio == D3DKMT_OFFER_PRIORITY_HIGH ? 2 : 1;
}

/* Content lost: the range reads zeros once recommitted. */
static void lose(struct model_alloc *a)
{
    a->st = a->decommit ? MS_DECOMMITTED : MS_DISCARDED;
    memset(a->shadow, 0, a->size);
}

static bool offered(const struct model_alloc *a)
{
    return a->st == MS_OFFERED || a->st == MS_UNKNOWN;
}

/* Every offered allocation outside @batch, kept or not, is gone. */
static void lose_offered(struct model *m, const bool *batch)
{
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (offered(&m->a[i]) && !(batch && batch[i])) {
            lose(&m->a[i]);
        }
    }
}

/* What pressure may demote: RESIDENT and unlocked, outside the command's
 * own @batch, on a device with a non-local segment. */
static bool demotable(const struct model *m, int i, const bool *batch)
{
    return m->nonlocal && m->a[i].st == MS_RESIDENT && !m->a[i].locks && !(batch && batch[i]);
}

static UINT64 demotable_bytes(const struct model *m, const bool *batch)
{
    UINT64 sum = 0;

    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        sum += demotable(m, i, batch) ? m->a[i].bytes : 0;
    }
    return sum;
}

/*
 * Whether a command whose @batch brings @back bytes into the committed set
 * can fit: RESIDENT content stays, offered content outside the batch can be
 * discarded and demotable content demoted (the segment is large enough for
 * all of it, MODEL_NONLOCAL_MIN).
 */
static bool fits(const struct model *m, UINT64 back, const bool *batch)
{
    return model_resident_bytes(m) + back <= m->budget + demotable_bytes(m, batch);
}

/*
 * Demotion of @need bytes: which allocations go is the device's choice
 * within the policy (model_query_residency learns it, settle() checks it),
 * so every candidate waits for the driver to ask.
 */
static void demote(struct model *m, UINT64 need, const bool *batch)
{
    m->demote_need = need;
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (demotable(m, i, batch)) {
            m->a[i].pend = MP_CANDIDATE;
            m->pending++;
        }
    }
}

/* The demotion order of PROTOCOL.md section 12, but for the table slot:
 * allocations no MakeResident holds first, then the lowest priority. */
static uint64_t demote_key(const struct model_alloc *a)
{
    return (uint64_t)(a->rcount != 0) << 32 | a->rprio;
}

/*
 * The device's choice of a demotion, every candidate known: it took
 * candidates in key order (ties in an order the model cannot see), stopped
 * once @demote_need bytes were freed, and took them all if that was not
 * enough.
 */
static bool settle(struct model *m)
{
    UINT64 chosen = 0, last = 0;
    uint64_t top = 0;
    bool kept = false;

    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (m->a[i].pend == MP_CHOSEN) {
            chosen += m->a[i].bytes;
            top = demote_key(&m->a[i]) > top ? demote_key(&m->a[i]) : top;
        }
    }
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        const struct model_alloc *a = &m->a[i];

        if (a->pend == MP_CHOSEN && demote_key(a) == top && a->bytes > last) {
            last = a->bytes;
        }
        if (a->pend == MP_KEPT && chosen && demote_key(a) < top) {
            return fail(m,
                        "allocation 0x%x (count %u, priority 0x%x) stayed resident while one "
                        "demoted before it in the order had count %s, priority 0x%x",
                        a->h, a->rcount, a->rprio, top >> 32 ? "> 0" : "0", (UINT)top);
        }
        kept |= a->pend == MP_KEPT;
    }
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        m->a[i].pend = MP_NONE;
    }
    if (kept && chosen < m->demote_need) {
        return fail(m, "%llu bytes demoted, short of the %llu needed, with candidates left",
                    (unsigned long long)chosen, (unsigned long long)m->demote_need);
    }
    if (chosen && chosen - last >= m->demote_need) {
        return fail(m, "%llu bytes demoted, past the %llu needed", (unsigned long long)chosen,
                    (unsigned long long)m->demote_need);
    }
    return true;
}

bool model_pending(const struct model *m)
{
    return m->pending != 0;
}

/*
 * Exact mode: discard OFFERED allocations (not @pinned) in eviction order
 * (LOW, NORMAL and AUTO, HIGH; oldest offer first) until @want bytes are
 * freed or none is left. Returns the bytes freed.
 */
static UINT64 evict(struct model *m, UINT64 want, const bool *pinned)
{
    UINT64 freed = 0;

    for (unsigned c = 0; c < 3 && freed < want; c++) {
        while (freed < want) {
            int pick = -1;

            for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
                const struct model_alloc *a = &m->a[i];

                if (a->st == MS_OFFERED && evict_class(a->prio) == c && !(pinned && pinned[i]) &&
                    (pick < 0 || a->offered_at < m->a[pick].offered_at)) {
                    pick = i;
                }
            }
            if (pick < 0) {
                break;
            }
            freed += m->a[pick].bytes;
            lose(&m->a[pick]);
        }
    }
    return freed;
}

/*
 * Room for @need more committed bytes of a command whose @batch brings @back
 * (@need included) into the committed set, as the device makes it before
 * it commits them: offered content outside the batch is discarded in
 * eviction order; if all of it is not enough (the RESIDENT bytes alone
 * exceed the budget), resident content outside the batch is demoted too.
 * Outside exact mode only the second case is predictable.
 */
static void room(struct model *m, UINT64 need, UINT64 back, const bool *batch)
{
    UINT64 res = model_resident_bytes(m), c = committed(m);

    if (res + back > m->budget) {
        lose_offered(m, batch);
        demote(m, res + back - m->budget, batch);
    } else if (model_exact(m) && c + need > m->budget) {
        evict(m, c + need - m->budget, batch);
    }
}

/* After an offer: a budget the device is over is enforced by discarding
 * offered content (never by demoting: only pressure from a command or a new
 * budget demotes). */
static void enforce_budget(struct model *m)
{
    if (model_exact(m)) {
        UINT64 c = committed(m);

        if (c > m->budget) {
            evict(m, c - m->budget, NULL);
        }
    } else if (model_resident_bytes(m) >= m->budget) {
        lose_offered(m, NULL);
    }
}

bool model_create_device(struct model *m, int d, NTSTATUS st, D3DKMT_HANDLE h, D3DKMT_HANDLE pq)
{
    if (!want_st(m, "CreateDevice + CreatePagingQueue", st, STATUS_SUCCESS)) {
        return false;
    }
    if (!h || !pq || dev_of(m, h) >= 0 || dev_of_pq(m, pq) >= 0) {
        return fail(m, "CreateDevice gave device 0x%x, paging queue 0x%x: zero or in use", h, pq);
    }
    m->dev[d] = (struct model_dev){ .live = true, .h = h, .pq = pq };
    return true;
}

bool model_destroy_device(struct model *m, D3DKMT_HANDLE h, NTSTATUS st)
{
    int d = dev_of(m, h);

    if (!want_st(m, "DestroyDevice", st, d < 0 ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS)) {
        return false;
    }
    if (d < 0) {
        return true;
    }
    /* Everything the device owned goes with it. */
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (m->a[i].st != MS_FREE && m->a[i].dev == d) {
            free_alloc(&m->a[i]);
        }
    }
    for (int r = 0; r < MODEL_MAX_RES; r++) {
        if (m->res[r].live && m->res[r].dev == d) {
            m->res[r].live = false;
        }
    }
    m->dev[d].live = false;
    return true;
}

static bool batch_size_ok(unsigned n)
{
    return n >= 1 && n <= 10240;
}

bool model_create(struct model *m, D3DKMT_HANDLE dev, unsigned n, const UINT64 *sizes,
                  bool resource, bool ballast, NTSTATUS st, const D3DKMT_HANDLE *out,
                  D3DKMT_HANDLE res)
{
    int d = dev_of(m, dev);
    UINT64 need = 0;
    NTSTATUS want = STATUS_SUCCESS;
    int r = -1;

    for (unsigned i = 0; i < n; i++) {
        if (sizes[i] == 0 || sizes[i] > MODEL_SIZE_MAX) {
            want = STATUS_INVALID_PARAMETER;
        }
        need += (sizes[i] + MODEL_PAGE - 1) / MODEL_PAGE * MODEL_PAGE;
    }
    if (d < 0 || !batch_size_ok(n)) {
        want = STATUS_INVALID_PARAMETER;
    } else if (want == STATUS_SUCCESS && !fits(m, need, NULL)) {
        /* Even discarding every offered allocation and demoting every
         * resident one would not make room. */
        want = STATUS_GRAPHICS_NO_VIDEO_MEMORY;
    }
    if (!want_st(m, "CreateAllocation2", st, want)) {
        return false;
    }
    if (st != STATUS_SUCCESS) {
        return true;
    }
    room(m, need, need, NULL);
    if (resource) {
        for (r = 0; r < MODEL_MAX_RES && m->res[r].live; r++) {
        }
        if (r == MODEL_MAX_RES || n > MODEL_MAX_MEMBERS) {
            return fail(m, "the driver made a resource the model has no room for");
        }
        if (!res || !seen_add(&m->seen, res)) {
            return fail(m, "CreateAllocation2 returned resource handle 0x%x: zero or seen before",
                        res);
        }
        m->res[r] = (struct model_res){ .live = true, .h = res, .dev = d, .n = n };
    } else if (res) {
        return fail(m, "CreateAllocation2 without CreateResource returned resource 0x%x", res);
    }
    for (unsigned i = 0, slot = 0; i < n; i++, slot++) {
        struct model_alloc *a;

        while (slot < MODEL_MAX_ALLOCS && m->a[slot].st != MS_FREE) {
            slot++;
        }
        if (slot == MODEL_MAX_ALLOCS) {
            return fail(m, "the driver made more allocations than the model holds");
        }
        if (!out[i] || !seen_add(&m->seen, out[i])) {
            return fail(m,
                        "CreateAllocation2 returned handle 0x%x for allocation %u: zero or "
                        "seen before",
                        out[i], i);
        }
        a = &m->a[slot];
        *a = (struct model_alloc){ .st = MS_RESIDENT,
                                   .h = out[i],
                                   .dev = d,
                                   .res = r,
                                   .size = sizes[i],
                                   .bytes = (sizes[i] + MODEL_PAGE - 1) / MODEL_PAGE * MODEL_PAGE,
                                   .rprio = D3DDDI_ALLOCATIONPRIORITY_NORMAL,
                                   .ballast = ballast,
                                   /* new allocations read zeros */
                                   .shadow = ballast ? NULL : calloc(1, sizes[i]) };
        if (!ballast && !a->shadow) {
            abort();
        }
        if (r >= 0) {
            m->res[r].member[i] = (int)slot;
        }
    }
    return true;
}

bool model_destroy(struct model *m, D3DKMT_HANDLE dev, unsigned n, const D3DKMT_HANDLE *h,
                   D3DKMT_HANDLE res, NTSTATUS st)
{
    int d = dev_of(m, dev), r = -1;
    bool ok = d >= 0;
    int idx[MODEL_MAX_ALLOCS];

    if (ok && res) {
        r = model_res_of(m, res);
        ok = !n && !h && r >= 0 && m->res[r].dev == d;
    } else if (ok) {
        ok = batch_size_ok(n) && n <= MODEL_MAX_ALLOCS && h;
        for (unsigned i = 0; ok && i < n; i++) {
            idx[i] = model_alloc_of(m, h[i]);
            /* A resource's members go only with the resource. */
            ok = idx[i] >= 0 && m->a[idx[i]].dev == d && m->a[idx[i]].res < 0;
            for (unsigned j = 0; ok && j < i; j++) {
                ok = idx[j] != idx[i];
            }
        }
    }
    if (!want_st(m, "DestroyAllocation2", st, ok ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER)) {
        return false;
    }
    if (!ok) {
        return true;
    }
    if (r >= 0) {
        for (unsigned i = 0; i < m->res[r].n; i++) {
            free_alloc(&m->a[m->res[r].member[i]]);
        }
        m->res[r].live = false;
    } else {
        for (unsigned i = 0; i < n; i++) {
            free_alloc(&m->a[idx[i]]);
        }
    }
    return true;
}

/* The live allocation @h of device @dev, or -1. */
static int alloc_of_dev(const struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE h)
{
    int d = dev_of(m, dev), i = model_alloc_of(m, h);

    return d >= 0 && i >= 0 && m->a[i].dev == d ? i : -1;
}

bool model_lock(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE h, NTSTATUS st)
{
    int i = alloc_of_dev(m, dev, h);
    NTSTATUS want = i >= 0 && m->a[i].st == MS_RESIDENT ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;

    /* A demoted allocation is paged in first, making room as a creation. */
    if (i >= 0 && m->a[i].st == MS_DEMOTED) {
        want = fits(m, m->a[i].bytes, NULL) ? STATUS_SUCCESS : STATUS_NO_MEMORY;
    }
    if (!want_st(m, "Lock2", st, want)) {
        return false;
    }
    if (st == STATUS_SUCCESS) {
        if (m->a[i].st == MS_DEMOTED) {
            room(m, m->a[i].bytes, m->a[i].bytes, NULL);
            m->a[i].st = MS_RESIDENT;
        }
        m->a[i].locks++;
    }
    return true;
}

bool model_unlock(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE h, NTSTATUS st)
{
    int i = alloc_of_dev(m, dev, h);
    bool ok = i >= 0 && m->a[i].locks > 0;

    if (!want_st(m, "Unlock2", st, ok ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER)) {
        return false;
    }
    if (ok) {
        m->a[i].locks--;
    }
    return true;
}

/*
 * Resolve an offer's or a reclaim's elements into allocation slots:
 * @slot[] gets the allocations, @end[e] where element e's members end.
 * False when an element is unknown, of another device, or listed twice.
 */
static bool resolve(const struct model *m, int d, unsigned n, const D3DKMT_HANDLE *h,
                    bool resources, int *slot, unsigned *end, unsigned *total)
{
    unsigned t = 0;

    if (d < 0 || !batch_size_ok(n) || n > MODEL_MAX_ALLOCS || !h) {
        return false;
    }
    for (unsigned e = 0; e < n; e++) {
        for (unsigned j = 0; j < e; j++) {
            if (h[j] == h[e]) {
                return false;
            }
        }
        if (resources) {
            int r = model_res_of(m, h[e]);

            if (r < 0 || m->res[r].dev != d) {
                return false;
            }
            for (unsigned k = 0; k < m->res[r].n; k++) {
                slot[t++] = m->res[r].member[k];
            }
        } else {
            int i = model_alloc_of(m, h[e]);

            if (i < 0 || m->a[i].dev != d) {
                return false;
            }
            slot[t++] = i;
        }
        end[e] = t;
    }
    *total = t;
    return true;
}

bool model_offer(struct model *m, D3DKMT_HANDLE dev, unsigned n, const D3DKMT_HANDLE *h,
                 bool resources, UINT prio, UINT flags, NTSTATUS st)
{
    int slot[MODEL_MAX_ALLOCS];
    unsigned end[MODEL_MAX_ALLOCS], total = 0;
    bool ok = prio >= D3DKMT_OFFER_PRIORITY_LOW && prio <= D3DKMT_OFFER_PRIORITY_AUTO &&
              !(flags & ~OFFER_FLAGS_KNOWN) &&
              resolve(m, dev_of(m, dev), n, h, resources, slot, end, &total);
    bool exact = model_exact(m);

    /* Only what is resident (or demoted) and not locked can be offered. */
    for (unsigned i = 0; ok && i < total; i++) {
        ok = (m->a[slot[i]].st == MS_RESIDENT || m->a[slot[i]].st == MS_DEMOTED) &&
             !m->a[slot[i]].locks;
    }
    if (!want_st(m, "OfferAllocations", st, ok ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER)) {
        return false;
    }
    for (unsigned i = 0; ok && i < total; i++) {
        struct model_alloc *a = &m->a[slot[i]];

        a->prio = prio;
        a->decommit = flags & 0x2u;
        a->offered_at = ++m->clock;
        /* Demoted content is out of the local segment already: it goes now. */
        if (a->st == MS_DEMOTED) {
            lose(a);
        } else {
            a->st = exact ? MS_OFFERED : MS_UNKNOWN;
        }
    }
    if (ok) {
        enforce_budget(m);
    }
    return true;
}

/* The worse of two reclaim results: NOT_COMMITTED > DISCARDED > OK. */
static UINT worse(UINT a, UINT b)
{
    return a > b ? a : b;
}

/* What an allocation in state @a may come back as: a bit per result. */
static unsigned outcomes(const struct model_alloc *a, bool recommit)
{
    switch (a->st) {
    case MS_DISCARDED:
        return 1u << RES_DISCARDED;
    case MS_DECOMMITTED:
        return 1u << (recommit ? RES_DISCARDED : RES_NOT_COMMITTED);
    case MS_UNKNOWN:
        return 1u << RES_OK | 1u << RES_DISCARDED |
               (a->decommit && !recommit ? 1u << RES_NOT_COMMITTED : 0);
    default:
        return 1u << RES_OK;
    }
}

bool model_reclaim(struct model *m, bool v2, D3DKMT_HANDLE dev_or_pq, unsigned n,
                   const D3DKMT_HANDLE *h, bool resources, const UINT *results, NTSTATUS st,
                   UINT64 fence)
{
    const char *call = v2 ? "ReclaimAllocations2" : "ReclaimAllocations";
    int d = v2 ? dev_of_pq(m, dev_or_pq) : dev_of(m, dev_or_pq);
    int slot[MODEL_MAX_ALLOCS];
    unsigned end[MODEL_MAX_ALLOCS], total = 0;
    UINT got[MODEL_MAX_ALLOCS];
    bool batch[MODEL_MAX_ALLOCS] = { false };
    /* Bytes that come back committed, and whether any need recommitting
     * (or, demoted, paging in). */
    UINT64 back_lo = 0, back_hi = 0, back = 0, need = 0, resident = model_resident_bytes(m);
    UINT64 spare;
    bool need_surely = false, need_maybe = false;
    bool may_fail, must_fail;

    if (!resolve(m, d, n, h, resources, slot, end, &total)) {
        return want_st(m, call, st, STATUS_INVALID_PARAMETER);
    }
    for (unsigned i = 0; i < total; i++) {
        batch[slot[i]] = true;
    }
    for (unsigned i = 0; i < total; i++) {
        const struct model_alloc *a = &m->a[slot[i]];
        unsigned can = outcomes(a, !v2);

        if (a->st == MS_RESIDENT) {
            continue;
        }
        if (a->st == MS_DEMOTED || (can & (1u << RES_DISCARDED))) {
            need_maybe = true;
            need_surely |= a->st == MS_DEMOTED || can == 1u << RES_DISCARDED;
        }
        back_hi += a->bytes;
        back_lo += can & (1u << RES_NOT_COMMITTED) ? 0 : a->bytes;
    }
    /* A recommit that cannot fit the budget, even after every other offered
     * allocation is discarded and every other resident one demoted, fails
     * and changes nothing. */
    spare = m->budget + demotable_bytes(m, batch);
    must_fail = need_surely && resident + back_lo > spare;
    may_fail = need_maybe && resident + back_hi > spare;
    if (st == STATUS_NO_MEMORY && may_fail) {
        return true;
    }
    if (!want_st(m, call, st, must_fail ? STATUS_NO_MEMORY : STATUS_SUCCESS)) {
        return false;
    }
    if (v2 && fence != m->dev[d].fence + 1) {
        return fail(m, "%s: paging fence value %llu, the model expects %llu", call,
                    (unsigned long long)fence, (unsigned long long)m->dev[d].fence + 1);
    }
    if (v2) {
        m->dev[d].fence = fence;
    }
    /* Each allocation's result: the device's where the model allows a
     * choice (per element, so only allocation elements), else the model's. */
    for (unsigned e = 0, i = 0; e < n; e++) {
        for (; i < end[e]; i++) {
            unsigned can = outcomes(&m->a[slot[i]], !v2);

            if (can & (can - 1)) {
                if (!results || resources) {
                    return fail(m,
                                "%s of an UNKNOWN allocation without per-allocation results: "
                                "the driver must not ask this",
                                call);
                }
                got[i] = v2 ? results[e] : results[e] ? RES_DISCARDED : RES_OK;
                if (got[i] > RES_NOT_COMMITTED || !(can & (1u << got[i]))) {
                    return fail(m,
                                "%s element %u (0x%x): result %u, which its offer does not "
                                "allow",
                                call, e, h[e], results[e]);
                }
            } else {
                got[i] = (UINT)__builtin_ctz(can);
            }
        }
    }
    for (unsigned e = 0, i = 0; results && e < n; e++) {
        UINT w = RES_OK;

        for (; i < end[e]; i++) {
            w = worse(w, got[i]);
        }
        if ((v2 ? results[e] : (UINT) !!results[e]) != (v2 ? w : (UINT)(w != RES_OK))) {
            return fail(m, "%s element %u (0x%x): result %u, the model expects %u", call, e, h[e],
                        results[e], v2 ? w : (UINT)(w != RES_OK));
        }
    }
    for (unsigned i = 0; i < total; i++) {
        const struct model_alloc *a = &m->a[slot[i]];

        need += got[i] == RES_DISCARDED || a->st == MS_DEMOTED ? a->bytes : 0;
        back += a->st != MS_RESIDENT && got[i] != RES_NOT_COMMITTED ? a->bytes : 0;
    }
    if (need && resident + back > spare) {
        return fail(m,
                    "%s succeeded, but the results it gave need %llu bytes recommitted, "
                    "which cannot fit the budget",
                    call, (unsigned long long)need);
    }
    /* Room is made only for what needs recommitting, and never from the
     * batch's own allocations. */
    if (need) {
        room(m, need, back, batch);
    }
    for (unsigned i = 0; i < total; i++) {
        struct model_alloc *a = &m->a[slot[i]];

        if (got[i] == RES_NOT_COMMITTED) {
            a->st = MS_DECOMMITTED;
            continue;
        }
        if (got[i] == RES_DISCARDED) {
            memset(a->shadow, 0, a->size);
        }
        a->st = MS_RESIDENT;
    }
    return true;
}

bool model_trim(struct model *m, UINT64 bytes, NTSTATUS st, UINT64 freed)
{
    UINT64 want = bytes ? bytes : UINT64_MAX;

    if (!want_st(m, "vkmt_trim", st, STATUS_SUCCESS)) {
        return false;
    }
    if (model_exact(m)) {
        UINT64 expect = evict(m, want, NULL);

        if (freed != expect) {
            return fail(m, "vkmt_trim(%llu) discarded %llu bytes, the model expects %llu",
                        (unsigned long long)bytes, (unsigned long long)freed,
                        (unsigned long long)expect);
        }
        return true;
    }
    if (freed > bytes_in(m, MS_UNKNOWN)) {
        return fail(m, "vkmt_trim(%llu) discarded %llu bytes, more than the %llu offered",
                    (unsigned long long)bytes, (unsigned long long)freed,
                    (unsigned long long)bytes_in(m, MS_UNKNOWN));
    }
    /* Short of its target, a trim has discarded everything offered. */
    if (freed < want) {
        for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
            if (m->a[i].st == MS_UNKNOWN) {
                lose(&m->a[i]);
            }
        }
    }
    return true;
}

void model_forget(struct model *m)
{
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (m->a[i].st == MS_OFFERED) {
            m->a[i].st = MS_UNKNOWN;
        }
    }
}

/* What the budget counts now, as a range: UNKNOWN content may be gone. */
static void committed_range(const struct model *m, UINT64 *lo, UINT64 *hi)
{
    *lo = committed(m);
    *hi = *lo + bytes_in(m, MS_UNKNOWN);
}

/* What a queue may reserve in group @g: half the budget or the segment. */
static UINT64 available(const struct model *m, UINT g)
{
    return m->residency ? (g ? m->nonlocal : m->budget) / 2 / MODEL_PAGE * MODEL_PAGE : 0;
}

bool model_query(struct model *m, UINT group, NTSTATUS st, const D3DKMT_QUERYVIDEOMEMORYINFO *q)
{
    UINT64 lo = 0, hi = 0, want_budget = 0, rsv;

    if (group > D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL) {
        return want_st(m, "QueryVideoMemoryInfo", st, STATUS_INVALID_PARAMETER);
    }
    if (!want_st(m, "QueryVideoMemoryInfo", st, STATUS_SUCCESS)) {
        return false;
    }
    if (group == D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL) {
        want_budget = m->budget;
        committed_range(m, &lo, &hi);
    } else {
        /* The segment, and what is demoted into it (a device without one
         * reports zeros). */
        want_budget = m->nonlocal;
        lo = hi = bytes_in(m, MS_DEMOTED);
    }
    if (q->Budget != want_budget || q->CurrentUsage < lo || q->CurrentUsage > hi) {
        return fail(m,
                    "QueryVideoMemoryInfo(group %u): budget %llu, usage %llu; the model "
                    "expects budget %llu, usage %llu..%llu",
                    group, (unsigned long long)q->Budget, (unsigned long long)q->CurrentUsage,
                    (unsigned long long)want_budget, (unsigned long long)lo,
                    (unsigned long long)hi);
    }
    rsv = m->residency ? m->reservation[group] : 0;
    if (q->CurrentReservation != rsv || q->AvailableForReservation != available(m, group)) {
        return fail(m,
                    "QueryVideoMemoryInfo(group %u): reservation %llu, available %llu; the "
                    "model expects %llu, %llu",
                    group, (unsigned long long)q->CurrentReservation,
                    (unsigned long long)q->AvailableForReservation, (unsigned long long)rsv,
                    (unsigned long long)available(m, group));
    }
    return true;
}

bool model_reserve(struct model *m, UINT group, UINT64 bytes, NTSTATUS st)
{
    NTSTATUS want = STATUS_SUCCESS;

    if (group > D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL) {
        want = STATUS_INVALID_PARAMETER;
    } else if (!m->residency) {
        want = STATUS_NOT_SUPPORTED;
    } else if (bytes > available(m, group)) {
        want = STATUS_INVALID_PARAMETER;
    }
    if (!want_st(m, "ChangeVideoMemoryReservation", st, want)) {
        return false;
    }
    if (st == STATUS_SUCCESS) {
        m->reservation[group] = bytes;
    }
    return true;
}

void model_set_budget(struct model *m, UINT64 budget)
{
    UINT64 res = model_resident_bytes(m), c = committed(m);

    /* Discards first, then, if the resident content alone is over the new
     * budget, demotion: as far as it can go (locked content stays). */
    m->budget = budget;
    if (res > budget) {
        lose_offered(m, NULL);
        demote(m, res - budget, NULL);
    } else if (model_exact(m) && c > budget) {
        evict(m, c - budget, NULL);
    }
}

/* How far the device is over its budget now: a range outside exact mode. */
static void over_budget(const struct model *m, UINT64 need, UINT64 *lo, UINT64 *hi)
{
    committed_range(m, lo, hi);
    *lo = *lo + need > m->budget ? *lo + need - m->budget : 0;
    *hi = *hi + need > m->budget ? *hi + need - m->budget : 0;
}

/* CantTrimFurther, MustSucceed */
#define RESIDENT_FLAGS_KNOWN 0x3u
/* EvictOnlyIfNecessary, NotWrittenTo */
#define EVICT_FLAGS_KNOWN 0x3u
#define EVICT_ONLY_IF_NECESSARY 0x1u

bool model_make_resident(struct model *m, D3DKMT_HANDLE via, unsigned n, const D3DKMT_HANDLE *h,
                         UINT flags, NTSTATUS st, UINT64 fence, UINT64 trim)
{
    int d = dev_of_pq(m, via);
    int slot[MODEL_MAX_ALLOCS];
    unsigned end[MODEL_MAX_ALLOCS], total = 0;
    bool batch[MODEL_MAX_ALLOCS] = { false };
    bool over_ok = flags & 0x1u; /* CantTrimFurther: the aperture is far off */
    UINT64 need = 0, lo, hi;
    NTSTATUS want = STATUS_SUCCESS;

    if (!batch_size_ok(n) || d < 0) {
        want = STATUS_INVALID_PARAMETER;
    } else if (!m->residency) {
        want = STATUS_NOT_SUPPORTED;
    } else if ((flags & ~RESIDENT_FLAGS_KNOWN) || (flags & 0x2u && !over_ok) ||
               !resolve(m, d, n, h, false, slot, end, &total)) {
        want = STATUS_INVALID_PARAMETER;
    }
    for (unsigned i = 0; want == STATUS_SUCCESS && i < total; i++) {
        const struct model_alloc *a = &m->a[slot[i]];

        if (a->st != MS_RESIDENT && a->st != MS_DEMOTED) {
            want = STATUS_INVALID_PARAMETER;
        }
        need += a->st == MS_DEMOTED ? a->bytes : 0;
        batch[slot[i]] = true;
    }
    if (want == STATUS_SUCCESS && need && !over_ok && !fits(m, need, batch)) {
        want = STATUS_NO_MEMORY;
    }
    if (!want_st(m, "MakeResident", st, want)) {
        return false;
    }
    if (st == STATUS_NO_MEMORY) {
        over_budget(m, need, &lo, &hi);
        if (trim < lo || trim > hi) {
            return fail(m, "MakeResident: NumBytesToTrim %llu, the model expects %llu..%llu",
                        (unsigned long long)trim, (unsigned long long)lo, (unsigned long long)hi);
        }
        return true;
    }
    if (st != STATUS_SUCCESS) {
        return true;
    }
    if (fence != m->dev[d].fence || trim) {
        return fail(m, "MakeResident: fence %llu, NumBytesToTrim %llu; the model expects %llu, 0",
                    (unsigned long long)fence, (unsigned long long)trim,
                    (unsigned long long)m->dev[d].fence);
    }
    /* Room as for any command; CantTrimFurther goes past the budget only
     * when it cannot be made. */
    if (need && fits(m, need, batch)) {
        room(m, need, need, batch);
    }
    for (unsigned i = 0; i < total; i++) {
        m->a[slot[i]].st = MS_RESIDENT;
        m->a[slot[i]].rcount++;
    }
    /* Over the budget by CantTrimFurther: offered content goes at once. */
    enforce_budget(m);
    return true;
}

bool model_evict(struct model *m, D3DKMT_HANDLE dev, unsigned n, const D3DKMT_HANDLE *h, UINT flags,
                 NTSTATUS st, UINT64 trim)
{
    int d = dev_of(m, dev);
    int slot[MODEL_MAX_ALLOCS];
    unsigned end[MODEL_MAX_ALLOCS], total = 0;
    NTSTATUS want = STATUS_SUCCESS;
    UINT64 lo, hi;

    if (!batch_size_ok(n) || d < 0) {
        want = STATUS_INVALID_PARAMETER;
    } else if (!m->residency) {
        want = STATUS_NOT_SUPPORTED;
    } else if ((flags & ~EVICT_FLAGS_KNOWN) || !resolve(m, d, n, h, false, slot, end, &total)) {
        want = STATUS_INVALID_PARAMETER;
    }
    /* Each one must be held by a MakeResident. */
    for (unsigned i = 0; want == STATUS_SUCCESS && i < total; i++) {
        if (!m->a[slot[i]].rcount) {
            want = STATUS_INVALID_PARAMETER;
        }
    }
    if (!want_st(m, "Evict", st, want)) {
        return false;
    }
    if (st != STATUS_SUCCESS) {
        return true;
    }
    for (unsigned i = 0; i < total; i++) {
        struct model_alloc *a = &m->a[slot[i]];

        /* Released, it goes to the non-local segment now unless the caller
         * expects to use it again soon. */
        if (--a->rcount == 0 && !(flags & EVICT_ONLY_IF_NECESSARY) && demotable(m, slot[i], NULL)) {
            a->st = MS_DEMOTED;
        }
    }
    over_budget(m, 0, &lo, &hi);
    if (trim < lo || trim > hi) {
        return fail(m, "Evict: NumBytesToTrim %llu, the model expects %llu..%llu",
                    (unsigned long long)trim, (unsigned long long)lo, (unsigned long long)hi);
    }
    return true;
}

/*
 * The allocations a priority or residency call names: resource @res (with
 * no list) or the list @h of @n allocations, all of device @dev. Returns
 * the status the call must have before it looks at states.
 */
static NTSTATUS targets(const struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                        const D3DKMT_HANDLE *h, int *slot, unsigned *total)
{
    int d = dev_of(m, dev);
    unsigned end[MODEL_MAX_ALLOCS];

    if (d < 0) {
        return STATUS_INVALID_PARAMETER;
    }
    if (!m->residency) {
        return STATUS_NOT_SUPPORTED;
    }
    if (res) {
        int r = model_res_of(m, res);

        if (n || h || r < 0 || m->res[r].dev != d) {
            return STATUS_INVALID_PARAMETER;
        }
        for (unsigned k = 0; k < m->res[r].n; k++) {
            slot[k] = m->res[r].member[k];
        }
        *total = m->res[r].n;
        return STATUS_SUCCESS;
    }
    return resolve(m, d, n, h, false, slot, end, total) ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
}

bool model_set_priority(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                        const D3DKMT_HANDLE *h, const UINT *v, NTSTATUS st)
{
    int slot[MODEL_MAX_ALLOCS];
    unsigned total = 0;

    if (!want_st(m, "SetAllocationPriority", st, targets(m, dev, res, n, h, slot, &total))) {
        return false;
    }
    for (unsigned i = 0; st == STATUS_SUCCESS && i < total; i++) {
        m->a[slot[i]].rprio = res ? v[0] : v[i];
    }
    return true;
}

bool model_get_priority(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                        const D3DKMT_HANDLE *h, const UINT *v, NTSTATUS st)
{
    int slot[MODEL_MAX_ALLOCS];
    unsigned total = 0;
    UINT low = UINT32_MAX;

    if (!want_st(m, "GetAllocationPriority", st, targets(m, dev, res, n, h, slot, &total))) {
        return false;
    }
    if (st != STATUS_SUCCESS) {
        return true;
    }
    for (unsigned i = 0; i < total; i++) {
        UINT p = m->a[slot[i]].rprio;

        if (!res && v[i] != p) {
            return fail(m, "GetAllocationPriority element %u (0x%x): 0x%x, the model expects 0x%x",
                        i, h[i], v[i], p);
        }
        low = p < low ? p : low;
    }
    if (res && v[0] != low) {
        return fail(m, "GetAllocationPriority of resource 0x%x: 0x%x, the model expects 0x%x", res,
                    v[0], low);
    }
    return true;
}

static UINT residency_of(const struct model_alloc *a)
{
    return a->st == MS_RESIDENT  ? D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY
           : a->st == MS_DEMOTED ? D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY
                                 : D3DKMT_ALLOCATIONRESIDENCYSTATUS_NOTRESIDENT;
}

bool model_query_residency(struct model *m, D3DKMT_HANDLE dev, D3DKMT_HANDLE res, unsigned n,
                           const D3DKMT_HANDLE *h, const UINT *v, NTSTATUS st)
{
    int slot[MODEL_MAX_ALLOCS];
    unsigned total = 0;
    UINT least = 0;

    if (!want_st(m, "QueryAllocationResidency", st, targets(m, dev, res, n, h, slot, &total))) {
        return false;
    }
    for (unsigned i = 0; st == STATUS_SUCCESS && i < total; i++) {
        struct model_alloc *a = &m->a[slot[i]];

        if (a->pend == MP_CANDIDATE && res) {
            return fail(m, "QueryAllocationResidency of a resource before a demotion is "
                           "learned: the driver must not ask this");
        }
        /* A candidate of a pending demotion: the device says what it chose. */
        if (a->pend == MP_CANDIDATE &&
            (v[i] == D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY ||
             v[i] == D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY)) {
            a->pend =
                v[i] == D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY ? MP_KEPT : MP_CHOSEN;
            a->st = a->pend == MP_CHOSEN ? MS_DEMOTED : MS_RESIDENT;
            if (--m->pending == 0 && !settle(m)) {
                return false;
            }
        }
        if (!res && v[i] != residency_of(a)) {
            return fail(m, "QueryAllocationResidency element %u (0x%x): %u, the model expects %u",
                        i, h[i], v[i], residency_of(a));
        }
        least = residency_of(a) > least ? residency_of(a) : least;
    }
    if (st == STATUS_SUCCESS && res && v[0] != least) {
        return fail(m, "QueryAllocationResidency of resource 0x%x: %u, the model expects %u", res,
                    v[0], least);
    }
    return true;
}

bool model_stats(struct model *m, NTSTATUS st, const VKMT_DEVICE_STATS *s)
{
    UINT64 lo, hi, live = 0;

    if (!want_st(m, "vkmt_query_stats", st, STATUS_SUCCESS)) {
        return false;
    }
    committed_range(m, &lo, &hi);
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        live += m->a[i].st != MS_FREE;
    }
    if (s->Allocations != live || s->CommittedBytes < lo || s->CommittedBytes > hi ||
        s->OfferedBytes < bytes_in(m, MS_OFFERED) ||
        s->OfferedBytes > bytes_in(m, MS_OFFERED) + bytes_in(m, MS_UNKNOWN) ||
        s->BudgetBytes != m->budget) {
        return fail(m,
                    "stats: %llu allocations, %llu committed, %llu offered, budget %llu; the "
                    "model expects %llu, %llu..%llu, %llu..%llu, %llu",
                    (unsigned long long)s->Allocations, (unsigned long long)s->CommittedBytes,
                    (unsigned long long)s->OfferedBytes, (unsigned long long)s->BudgetBytes,
                    (unsigned long long)live, (unsigned long long)lo, (unsigned long long)hi,
                    (unsigned long long)bytes_in(m, MS_OFFERED),
                    (unsigned long long)(bytes_in(m, MS_OFFERED) + bytes_in(m, MS_UNKNOWN)),
                    (unsigned long long)m->budget);
    }
    return true;
}

bool model_content(struct model *m, int i, const unsigned char *p)
{
    const struct model_alloc *a = &m->a[i];
    size_t off;

    if (!memcmp(p, a->shadow, a->size)) {
        return true;
    }
    for (off = 0; p[off] == a->shadow[off]; off++) {
    }
    return fail(m, "allocation 0x%x (%llu bytes): byte %zu is 0x%02x, the model expects 0x%02x",
                a->h, (unsigned long long)a->size, off, p[off], a->shadow[off]);
}
