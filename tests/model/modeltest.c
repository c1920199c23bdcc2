/* SPDX-License-Identifier: MIT */
/*
 * modeltest: seeded random sequences of D3DKMT calls, each answer checked
 * against the reference model (model.h), over whatever transport libvkmt
 * picks (loopback in make check, pci and kmd in the test VM).
 *
 *   modeltest                      the fixed seeds of make check, as a suite
 *   modeltest --seed S [--steps N] [--lenient] [--blind-trims] [--host-trims]
 *             [--host-budget] [--budget BYTES] [--pause-at K [--pause-cmd CMD]]
 *             [--trace]
 *
 * A resident, locked allocation (the ballast) narrows the device's budget
 * to --budget bytes (default 256K) so that allocations of a few pages put
 * it under pressure whatever budget it was given. The host lowers and
 * restores the device's budget now and then (over loopback through the
 * loopback library's host controls; in the test VM, with --host-budget,
 * through the console's QMP service), which discards and demotes; the
 * budget the run found is set again when it ends. --pause-at K stops after
 * step K: every resident allocation is checked, "modeltest: pause at step K"
 * is printed, CMD runs (or, without --pause-cmd, the program waits for
 * SIGUSR1), then offered content counts as possibly discarded (a snapshot
 * restored or a migration may drop it) and the run goes on. A mismatch
 * prints the seed, the step and the command line that replays the run up
 * to it with every call traced; over loopback a seed always makes the same
 * calls.
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */
#include <dlfcn.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "model.h"

struct config {
    uint64_t seed;
    unsigned steps;
    UINT64 budget; /* the budget the model's allocations see */
    bool lenient;
    bool blind_trims; /* trims the model is not told the result of */
    bool host_trims;  /* ... made by the host (test VM console service) */
    bool host_budget; /* budget changes through the test VM console service */
    unsigned pause_at;
    const char *pause_cmd;
    bool trace;
};

static struct config cfg;

/* The run in progress. */
static struct {
    struct model m;
    uint64_t rng;
    unsigned step;
    D3DKMT_HANDLE adapter;
    UINT64 budget0;          /* the device's budget when the run began */
    bool budget_set;         /* the run changed it */
    bool learning;           /* asking what a demotion chose */
    D3DKMT_HANDLE stale[32]; /* handles of destroyed objects */
    unsigned nstale;
    char desc[512]; /* the call being made, for the trace and a failure */
    bool failed;
} run;

static uint64_t rnd(void)
{
    /* splitmix64: one seed, one sequence. */
    uint64_t z = (run.rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ z >> 27) * 0x94d049bb133111ebull;
    return z ^ z >> 31;
}

static unsigned below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static bool chance(unsigned percent)
{
    return below(100) < percent;
}

static void describe(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void describe(const char *fmt, ...)
{
    va_list ap;
    size_t len = strlen(run.desc);

    va_start(ap, fmt);
    vsnprintf(run.desc + len, sizeof(run.desc) - len, fmt, ap);
    va_end(ap);
}

static void describe_handles(const D3DKMT_HANDLE *h, unsigned n)
{
    describe(" [");
    for (unsigned i = 0; i < n; i++) {
        describe("%s0x%x", i ? " " : "", h[i]);
    }
    describe("]");
}

/* The options that make a replay take the same path. */
static void replay_flags(char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s --budget %llu", cfg.lenient ? " --lenient" : "",
             cfg.blind_trims ? " --blind-trims" : "", cfg.host_trims ? " --host-trims" : "",
             cfg.host_budget ? " --host-budget" : "", (unsigned long long)cfg.budget);
    if (cfg.pause_at) {
        size_t n = strlen(buf);

        snprintf(buf + n, len - n, " --pause-at %u%s%s%s", cfg.pause_at,
                 cfg.pause_cmd ? " --pause-cmd '" : "", cfg.pause_cmd ? cfg.pause_cmd : "",
                 cfg.pause_cmd ? "'" : "");
    }
}

static bool learn(void);

/* Records the model's verdict on the call just made; false ends the run.
 * A call that demoted is followed by the questions that learn what. */
static bool verdict(bool ok)
{
    char flags[256];

    if (ok && !run.failed && !run.learning && model_pending(&run.m)) {
        run.learning = true;
        ok = learn();
        run.learning = false;
    }
    if (ok || run.failed) {
        return ok;
    }
    run.failed = true;
    replay_flags(flags, sizeof(flags));
    harness_fail(__FILE__, __LINE__,
                 "seed %" PRIu64 " step %u: %s\n#     %s\n#     replay: modeltest --seed %" PRIu64
                 " --steps %u%s --trace",
                 cfg.seed, run.step, run.desc, run.m.err, cfg.seed, run.step, flags);
    return false;
}

static void forget_handle(D3DKMT_HANDLE h)
{
    run.stale[run.nstale++ % (sizeof(run.stale) / sizeof(run.stale[0]))] = h;
}

/* A handle no live allocation or resource has: destroyed, or never made. */
static D3DKMT_HANDLE bad_handle(void)
{
    unsigned have = run.nstale < 32 ? run.nstale : 32;
    D3DKMT_HANDLE h = have && chance(70) ? run.stale[below(have)] : (D3DKMT_HANDLE)rnd();

    return model_alloc_of(&run.m, h) >= 0 || model_res_of(&run.m, h) >= 0 ? 0 : h;
}

/* ---- picking what to call on ---- */

static int live_dev(void)
{
    int live[MODEL_MAX_DEVS], n = 0;

    for (int d = 0; d < MODEL_MAX_DEVS; d++) {
        if (run.m.dev[d].live) {
            live[n++] = d;
        }
    }
    return n ? live[below((unsigned)n)] : -1;
}

/* A random allocation of device @d (any if -1) whose state is in @states
 * (a bit per enum model_state), not the ballast, and locked if @locked;
 * -1 if none. */
static int pick(int d, unsigned states, bool locked)
{
    int cand[MODEL_MAX_ALLOCS], n = 0;

    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        const struct model_alloc *a = &run.m.a[i];

        if (a->st != MS_FREE && !a->ballast && (d < 0 || a->dev == d) && (states >> a->st & 1) &&
            (!locked || a->locks)) {
            cand[n++] = i;
        }
    }
    return n ? cand[below((unsigned)n)] : -1;
}

#define S(x) (1u << (x))
#define ANY_STATE                                                                                  \
    (S(MS_RESIDENT) | S(MS_OFFERED) | S(MS_UNKNOWN) | S(MS_DISCARDED) | S(MS_DECOMMITTED) |        \
     S(MS_DEMOTED))
#define NOT_RESIDENT (ANY_STATE & ~S(MS_RESIDENT))

/* Up to @max distinct allocation handles of device @d, mostly in @states;
 * returns how many. */
static unsigned pick_batch(int d, unsigned states, unsigned max, D3DKMT_HANDLE *h)
{
    unsigned n = 0, want = 1 + below(max);

    for (unsigned tries = 0; n < want && tries < 4 * max; tries++) {
        int i = pick(d, chance(95) ? states : ANY_STATE, false);
        bool dup = false;

        if (i < 0) {
            continue;
        }
        for (unsigned j = 0; j < n; j++) {
            dup |= h[j] == run.m.a[i].h;
        }
        if (!dup) {
            h[n++] = run.m.a[i].h;
        }
    }
    return n;
}

static unsigned pick_resources(int d, unsigned max, D3DKMT_HANDLE *h)
{
    unsigned n = 0;

    for (int r = 0; r < MODEL_MAX_RES && n < max; r++) {
        if (run.m.res[r].live && run.m.res[r].dev == d && chance(60)) {
            h[n++] = run.m.res[r].h;
        }
    }
    return n;
}

/* Now and then a bad element: a repeat, an allocation of another device,
 * or a destroyed or made-up handle. */
static unsigned spoil(int d, D3DKMT_HANDLE *h, unsigned n, unsigned max)
{
    unsigned kind = below(3);
    int other = pick(-1, ANY_STATE, false);

    if (!chance(8) || n == 0) {
        return n;
    }
    if (kind == 0 && n < max) {
        h[n] = h[below(n)];
        return n + 1;
    }
    h[below(n)] =
        kind == 1 && other >= 0 && run.m.a[other].dev != d ? run.m.a[other].h : bad_handle();
    return n;
}

/* ---- the calls ---- */

static D3DKMT_HANDLE dev_handle(int d)
{
    return run.m.dev[d].h;
}

static bool op_create_device(int d)
{
    D3DKMT_CREATEDEVICE cd = { .hAdapter = run.adapter };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    NTSTATUS st = D3DKMTCreateDevice(&cd);

    if (st == STATUS_SUCCESS) {
        pq.hDevice = cd.hDevice;
        st = D3DKMTCreatePagingQueue(&pq);
    }
    describe("create device %d -> 0x%x, paging queue 0x%x: %s", d, cd.hDevice, pq.hPagingQueue,
             vkmt_status_name(st));
    return verdict(model_create_device(&run.m, d, st, cd.hDevice, pq.hPagingQueue));
}

static bool op_destroy_device(int d)
{
    D3DKMT_DESTROYDEVICE dd = { .hDevice = dev_handle(d) };
    NTSTATUS st;

    /* Its allocations' handles become stale with it. */
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if (run.m.a[i].st != MS_FREE && run.m.a[i].dev == d) {
            forget_handle(run.m.a[i].h);
        }
    }
    st = D3DKMTDestroyDevice(&dd);
    describe("destroy device 0x%x: %s", dd.hDevice, vkmt_status_name(st));
    return verdict(model_destroy_device(&run.m, dd.hDevice, st));
}

static NTSTATUS create(D3DKMT_HANDLE dev, unsigned n, const UINT64 *sizes, bool resource,
                       D3DKMT_HANDLE *out, D3DKMT_HANDLE *res)
{
    D3DDDI_ALLOCATIONINFO2 info[MODEL_MAX_MEMBERS] = { { 0 } };
    VKMT_ALLOCATION_DESC desc[MODEL_MAX_MEMBERS] = { { 0 } };
    D3DKMT_CREATEALLOCATION ca = { .hDevice = dev, .NumAllocations = n, .pAllocationInfo2 = info };
    NTSTATUS st;

    for (unsigned i = 0; i < n; i++) {
        desc[i].Size = sizes[i];
        info[i].pPrivateDriverData = &desc[i];
        info[i].PrivateDriverDataSize = sizeof(desc[i]);
    }
    ca.Flags.CreateResource = resource;
    st = D3DKMTCreateAllocation2(&ca);
    for (unsigned i = 0; i < n; i++) {
        out[i] = st == STATUS_SUCCESS ? info[i].hAllocation : 0;
    }
    *res = st == STATUS_SUCCESS ? ca.hResource : 0;
    return st;
}

static unsigned free_slots(void)
{
    unsigned n = 0;

    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        n += run.m.a[i].st == MS_FREE;
    }
    return n;
}

static bool free_resource_slot(void)
{
    for (int r = 0; r < MODEL_MAX_RES; r++) {
        if (!run.m.res[r].live) {
            return true;
        }
    }
    return false;
}

static bool op_create(int d)
{
    UINT64 sizes[MODEL_MAX_MEMBERS];
    D3DKMT_HANDLE out[MODEL_MAX_MEMBERS], res, dev = dev_handle(d);
    unsigned n = 1 + below(3);
    bool resource = n > 1 && chance(30) && free_resource_slot();
    NTSTATUS st;

    if (n > free_slots()) {
        return true;
    }
    for (unsigned i = 0; i < n; i++) {
        /* 1 to 16 pages, ending anywhere in the last, often at its end
         * (where a copy one byte short shows). */
        sizes[i] = (UINT64)(1 + below(16)) * MODEL_PAGE - (chance(25) ? 0 : below(MODEL_PAGE));
    }
    if (chance(3)) {
        sizes[below(n)] = chance(50) ? 0 : (UINT64)1 << 50;
    }
    if (chance(2)) {
        dev = (D3DKMT_HANDLE)rnd();
    }
    st = create(dev, n, sizes, resource, out, &res);
    describe("create on 0x%x, %u allocations%s (", dev, n, resource ? " as a resource" : "");
    for (unsigned i = 0; i < n; i++) {
        describe("%s%llu", i ? " " : "", (unsigned long long)sizes[i]);
    }
    describe(" bytes): %s", vkmt_status_name(st));
    if (st == STATUS_SUCCESS) {
        describe(" ->");
        describe_handles(out, n);
        if (resource) {
            describe(" resource 0x%x", res);
        }
    }
    return verdict(model_create(&run.m, dev, n, sizes, resource, false, st, out, res));
}

static bool op_destroy(int d)
{
    D3DKMT_DESTROYALLOCATION2 da = { .hDevice = dev_handle(d) };
    D3DKMT_HANDLE h[4];
    unsigned n = 0;
    NTSTATUS st;

    if (chance(30) && pick_resources(d, 1, &da.hResource)) {
        int r = model_res_of(&run.m, da.hResource);

        for (unsigned i = 0; i < run.m.res[r].n; i++) {
            forget_handle(run.m.a[run.m.res[r].member[i]].h);
        }
        forget_handle(da.hResource);
    } else {
        n = spoil(d, h, pick_batch(d, ANY_STATE, 3, h), 4);
        if (!n) {
            return true;
        }
        da.phAllocationList = h;
        da.AllocationCount = n;
    }
    st = D3DKMTDestroyAllocation2(&da);
    describe("destroy on 0x%x", da.hDevice);
    if (da.hResource) {
        describe(" resource 0x%x", da.hResource);
    } else {
        describe_handles(h, n);
    }
    describe(": %s", vkmt_status_name(st));
    if (st == STATUS_SUCCESS) {
        for (unsigned i = 0; i < n; i++) {
            forget_handle(h[i]);
        }
    }
    return verdict(model_destroy(&run.m, da.hDevice, n, n ? h : NULL, da.hResource, st));
}

static NTSTATUS lock(D3DKMT_HANDLE dev, D3DKMT_HANDLE h, unsigned char **p)
{
    D3DKMT_LOCK2 l = { .hDevice = dev, .hAllocation = h };
    NTSTATUS st = D3DKMTLock2(&l);

    *p = l.pData;
    return st;
}

static NTSTATUS unlock(D3DKMT_HANDLE dev, D3DKMT_HANDLE h)
{
    D3DKMT_UNLOCK2 u = { .hDevice = dev, .hAllocation = h };

    return D3DKMTUnlock2(&u);
}

/*
 * Lock resident allocation @i, write random bytes over a random range (or
 * only compare, @write false: every byte with the model), unlock. Content
 * is reached only between Lock2 and Unlock2, as over the kernel driver it
 * is mapped only then.
 */
static bool access_content(int i, bool write)
{
    struct model_alloc *a = &run.m.a[i];
    D3DKMT_HANDLE dev = dev_handle(a->dev), h = a->h;
    unsigned char *p = NULL;
    NTSTATUS st = lock(dev, h, &p);
    bool ok;

    describe("%s 0x%x: lock %s", write ? "write" : "check", h, vkmt_status_name(st));
    if (!verdict(model_lock(&run.m, dev, h, st))) {
        return false;
    }
    if (st != STATUS_SUCCESS) {
        return true;
    }
    if (write) {
        size_t off = rnd() % a->size,
               len = chance(25) ? a->size - off : 1 + rnd() % (a->size - off);

        for (size_t k = 0; k < len; k += 8) {
            uint64_t v = rnd();

            memcpy(a->shadow + off + k, &v, len - k < 8 ? len - k : 8);
        }
        memcpy(p + off, a->shadow + off, len);
        describe(", %zu bytes at %zu", len, off);
        ok = true;
    } else {
        ok = verdict(model_content(&run.m, i, p));
    }
    st = unlock(dev, h);
    describe(", unlock %s", vkmt_status_name(st));
    return verdict(model_unlock(&run.m, dev, h, st)) && ok;
}

static bool op_access(bool write)
{
    int i = pick(-1, S(MS_RESIDENT) | S(MS_DEMOTED), false);

    return i < 0 || access_content(i, write);
}

/* Every resident allocation against the model, byte for byte; with
 * @page_in, demoted ones too, paged in by the lock where there is room. */
static bool sweep(bool page_in)
{
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        if ((run.m.a[i].st == MS_RESIDENT || (page_in && run.m.a[i].st == MS_DEMOTED)) &&
            !run.m.a[i].ballast) {
            run.desc[0] = '\0';
            if (!access_content(i, false)) {
                return false;
            }
        }
    }
    return true;
}

static bool op_lock(bool lock_it, int d)
{
    int i =
        lock_it
            ? pick(-1, chance(80) ? S(MS_RESIDENT) | S(MS_DEMOTED) : NOT_RESIDENT & ~S(MS_DEMOTED),
                   false)
            : -1;
    D3DKMT_HANDLE dev, h;
    unsigned char *p;
    NTSTATUS st;

    if (!lock_it) {
        /* Mostly an allocation that is locked. */
        i = chance(90) ? pick(-1, ANY_STATE, true) : -1;
        i = i < 0 ? pick(-1, ANY_STATE, false) : i;
    }
    if (i < 0) {
        return true;
    }
    /* Sometimes through another device, which must not reach it. */
    dev = chance(5) ? dev_handle(d) : dev_handle(run.m.a[i].dev);
    h = chance(4) ? bad_handle() : run.m.a[i].h;
    st = lock_it ? lock(dev, h, &p) : unlock(dev, h);
    describe("%s 0x%x on 0x%x: %s", lock_it ? "lock" : "unlock", h, dev, vkmt_status_name(st));
    return verdict(lock_it ? model_lock(&run.m, dev, h, st) : model_unlock(&run.m, dev, h, st));
}

static bool op_offer(int d)
{
    D3DKMT_OFFERALLOCATIONS o = { .hDevice = dev_handle(d) };
    D3DKMT_HANDLE h[4];
    bool resources = chance(15);
    unsigned n =
        resources ? pick_resources(d, 2, h) : pick_batch(d, S(MS_RESIDENT) | S(MS_DEMOTED), 3, h);
    NTSTATUS st;

    n = spoil(d, h, n, 4);
    if (!n) {
        return true;
    }
    o.Priority = chance(3) ? (chance(50) ? 0 : 5) : (D3DKMT_OFFER_PRIORITY)(1 + below(4));
    o.Flags.Value = chance(3) ? 4u : below(4);
    o.NumAllocations = n;
    if (resources) {
        o.pResources = h;
    } else {
        o.HandleList = h;
    }
    st = D3DKMTOfferAllocations(&o);
    describe("offer on 0x%x%s", o.hDevice, resources ? " resources" : "");
    describe_handles(h, n);
    describe(" priority %d flags 0x%x: %s", o.Priority, o.Flags.Value, vkmt_status_name(st));
    return verdict(
        model_offer(&run.m, o.hDevice, n, h, resources, (UINT)o.Priority, o.Flags.Value, st));
}

static bool op_reclaim(int d, bool v2)
{
    D3DKMT_HANDLE h[4];
    UINT results[4] = { 0 };
    /* Per-element results say what became of UNKNOWN content; without
     * them the model could not follow, so only the exact model goes
     * without, and through resources. */
    bool exact = model_exact(&run.m), resources = exact && chance(15);
    bool with_results = !exact || chance(75);
    unsigned n = resources ? pick_resources(d, 2, h) : pick_batch(d, NOT_RESIDENT, 3, h);
    D3DKMT_HANDLE via = v2 ? run.m.dev[d].pq : dev_handle(d);
    UINT64 fence = 0;
    NTSTATUS st;

    n = spoil(d, h, n, 4);
    if (!n) {
        return true;
    }
    if (chance(2)) {
        via = bad_handle();
    }
    if (v2) {
        D3DKMT_RECLAIMALLOCATIONS2 r = { .hPagingQueue = via,
                                         .NumAllocations = n,
                                         .pResults = with_results ? (D3DDDI_RECLAIM_RESULT *)results
                                                                  : NULL };

        *(resources ? &r.pResources : (D3DKMT_HANDLE **)&r.HandleList) = h;
        st = D3DKMTReclaimAllocations2(&r);
        fence = r.PagingFenceValue;
    } else {
        D3DKMT_RECLAIMALLOCATIONS r = { .hDevice = via,
                                        .NumAllocations = n,
                                        .pDiscarded = with_results ? (BOOL *)results : NULL };

        *(resources ? &r.pResources : (D3DKMT_HANDLE **)&r.HandleList) = h;
        st = D3DKMTReclaimAllocations(&r);
    }
    describe("reclaim%s via 0x%x%s", v2 ? "2" : "", via, resources ? " resources" : "");
    describe_handles(h, n);
    describe(": %s", vkmt_status_name(st));
    if (with_results && st == STATUS_SUCCESS) {
        describe(", results");
        describe_handles(results, n);
    }
    return verdict(
        model_reclaim(&run.m, v2, via, n, h, resources, with_results ? results : NULL, st, fence));
}

/* The loopback library's host controls, when this process runs the device. */
static int (*loopback_host(void))(const char *, uint64_t)
{
    const char *t = vkmt_transport_name();
    void *so = t && !strcmp(t, "loopback") ? dlopen("libvkmt-loopback.so.1", RTLD_NOW | RTLD_NOLOAD)
                                           : NULL;

    return so ? (int (*)(const char *, uint64_t))dlsym(so, "vkmt_loopback_host") : NULL;
}

/*
 * Sets device property @prop ("trim", "budget") to @value as the host
 * does: over loopback through its host controls, else through the test
 * VM's console (docs/VM.md) as QMP's qom-set. Returns false when the host
 * did not take it.
 */
static bool host_set(const char *prop, UINT64 value)
{
    int (*host)(const char *, uint64_t) = loopback_host();
    char reply[4096];

    if (host) {
        return host(prop, value) == 0;
    }
    printf("vkmt-vm: qmp {\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral/"
           "vk\",\"property\":\"%s\",\"value\":%llu}}\n",
           prop, (unsigned long long)value);
    fflush(stdout);
    return fgets(reply, sizeof(reply), stdin) && strstr(reply, "\"return\"");
}

static bool op_trim(bool blind)
{
    UINT64 bytes = chance(20) ? 0 : (UINT64)(1 + below(32)) * MODEL_PAGE, freed = 0;
    NTSTATUS st;

    if (blind && cfg.host_trims) {
        describe("host trim %llu", (unsigned long long)bytes);
        model_forget(&run.m);
        if (!host_set("trim", bytes)) {
            snprintf(run.m.err, sizeof(run.m.err), "the host did not trim (QMP error)");
            return verdict(false);
        }
        return verdict(true);
    }
    st = vkmt_trim(run.adapter, bytes, &freed);
    describe("%strim %llu: %s, %llu discarded", blind ? "blind " : "", (unsigned long long)bytes,
             vkmt_status_name(st), (unsigned long long)freed);
    if (blind) {
        /* The model is not told: whatever was offered may be gone. */
        model_forget(&run.m);
        return verdict(true);
    }
    return verdict(model_trim(&run.m, bytes, st, freed));
}

static bool op_query(void)
{
    D3DKMT_QUERYVIDEOMEMORYINFO q = { .hAdapter = run.adapter };
    NTSTATUS st;

    q.MemorySegmentGroup = chance(60)   ? D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL
                           : chance(85) ? D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL
                                        : (D3DKMT_MEMORY_SEGMENT_GROUP)(2 + below(8));
    st = D3DKMTQueryVideoMemoryInfo(&q);
    describe("query group %u: %s, budget %llu usage %llu reservation %llu available %llu",
             (unsigned)q.MemorySegmentGroup, vkmt_status_name(st), (unsigned long long)q.Budget,
             (unsigned long long)q.CurrentUsage, (unsigned long long)q.CurrentReservation,
             (unsigned long long)q.AvailableForReservation);
    return verdict(model_query(&run.m, (UINT)q.MemorySegmentGroup, st, &q));
}

static bool op_reserve(void)
{
    D3DKMT_CHANGEVIDEOMEMORYRESERVATION r = { .hAdapter = run.adapter };
    UINT g = chance(95) ? below(2) : 2 + below(8);
    /* What the model says is available, and sometimes more. */
    UINT64 avail = g ? run.m.nonlocal : run.m.budget;
    NTSTATUS st;

    avail = run.m.residency ? avail / 2 / MODEL_PAGE : 0;
    r.MemorySegmentGroup = (D3DKMT_MEMORY_SEGMENT_GROUP)g;
    r.Reservation = (chance(85) ? rnd() % (avail + 1) : avail + 1 + below(4)) * MODEL_PAGE;
    st = D3DKMTChangeVideoMemoryReservation(&r);
    describe("reserve %llu in group %u: %s", (unsigned long long)r.Reservation, g,
             vkmt_status_name(st));
    return verdict(model_reserve(&run.m, g, r.Reservation, st));
}

/* The host lowers the budget (as far as below the ballast, so that even
 * the run's resident content does not fit) or gives the first one back. */
static bool op_budget(void)
{
    UINT64 cut = (UINT64)below((unsigned)(cfg.budget / MODEL_PAGE) + 16) * MODEL_PAGE;
    UINT64 b = chance(40) || cut >= run.budget0 ? run.budget0 : run.budget0 - cut;

    if (!cfg.host_budget && !loopback_host()) {
        return true;
    }
    describe("host budget %llu", (unsigned long long)b);
    if (!host_set("budget", b)) {
        snprintf(run.m.err, sizeof(run.m.err), "the host did not set the budget");
        return verdict(false);
    }
    run.budget_set = true;
    model_set_budget(&run.m, b);
    return verdict(true);
}

/* ---- residency ---- */

/*
 * After a command that demoted: QueryAllocationResidency of every
 * allocation, device by device, tells the model which ones the device
 * chose (model_query_residency checks the choice).
 */
static bool learn(void)
{
    for (int d = 0; d < MODEL_MAX_DEVS && model_pending(&run.m); d++) {
        D3DKMT_HANDLE h[MODEL_MAX_ALLOCS];
        UINT v[MODEL_MAX_ALLOCS] = { 0 };
        D3DKMT_QUERYALLOCATIONRESIDENCY q = { .hDevice = dev_handle(d),
                                              .phAllocationList = h,
                                              .pResidencyStatus =
                                                  (D3DKMT_ALLOCATIONRESIDENCYSTATUS *)v };
        bool asked = false;
        NTSTATUS st;

        for (int i = 0; run.m.dev[d].live && i < MODEL_MAX_ALLOCS; i++) {
            if (run.m.a[i].st != MS_FREE && run.m.a[i].dev == d) {
                h[q.AllocationCount++] = run.m.a[i].h;
                asked |= run.m.a[i].pend == MP_CANDIDATE;
            }
        }
        if (!asked) {
            continue;
        }
        st = D3DKMTQueryAllocationResidency(&q);
        describe("; residency on 0x%x: %s", q.hDevice, vkmt_status_name(st));
        describe_handles(v, q.AllocationCount);
        if (!verdict(model_query_residency(&run.m, q.hDevice, 0, q.AllocationCount, h, v, st))) {
            return false;
        }
    }
    return true;
}

/* Up to 3 allocations of device @d that a MakeResident holds. */
static unsigned pick_held(int d, D3DKMT_HANDLE *h)
{
    unsigned n = 0;

    for (int i = 0; i < MODEL_MAX_ALLOCS && n < 3; i++) {
        const struct model_alloc *a = &run.m.a[i];

        if (a->st != MS_FREE && !a->ballast && a->dev == d && a->rcount && chance(50)) {
            h[n++] = a->h;
        }
    }
    return n;
}

static bool op_make_resident(int d)
{
    D3DKMT_HANDLE h[4];
    unsigned n = spoil(d, h, pick_batch(d, S(MS_RESIDENT) | S(MS_DEMOTED), 3, h), 4);
    D3DDDI_MAKERESIDENT mr = { .hPagingQueue = run.m.dev[d].pq, .AllocationList = h };
    NTSTATUS st;

    if (!n) {
        return true;
    }
    mr.NumAllocations = n;
    if (chance(2)) {
        mr.hPagingQueue = bad_handle();
    }
    /* Mostly none; CantTrimFurther (with MustSucceed), which may go over
     * the budget; now and then MustSucceed alone or an unknown bit. */
    mr.Flags.Value = chance(88) ? 0 : chance(60) ? 1 + 2 * below(2) : chance(50) ? 2 : 4;
    st = D3DKMTMakeResident(&mr);
    describe("make resident via 0x%x", mr.hPagingQueue);
    describe_handles(h, n);
    describe(" flags 0x%x: %s, fence %llu, trim %llu", mr.Flags.Value, vkmt_status_name(st),
             (unsigned long long)mr.PagingFenceValue, (unsigned long long)mr.NumBytesToTrim);
    return verdict(model_make_resident(&run.m, mr.hPagingQueue, n, h, mr.Flags.Value, st,
                                       mr.PagingFenceValue, mr.NumBytesToTrim));
}

static bool op_evict(int d)
{
    D3DKMT_HANDLE h[4];
    unsigned n = chance(85) ? pick_held(d, h) : 0;
    D3DKMT_EVICT e = { .hDevice = dev_handle(d), .AllocationList = h };
    NTSTATUS st;

    /* Mostly what MakeResident holds; else anything, which the count refuses. */
    n = spoil(d, h, n ? n : pick_batch(d, ANY_STATE, 3, h), 4);
    if (!n) {
        return true;
    }
    e.NumAllocations = n;
    e.Flags.Value = chance(3) ? 4 : below(4);
    st = D3DKMTEvict(&e);
    describe("evict on 0x%x", e.hDevice);
    describe_handles(h, n);
    describe(" flags 0x%x: %s, trim %llu", e.Flags.Value, vkmt_status_name(st),
             (unsigned long long)e.NumBytesToTrim);
    return verdict(model_evict(&run.m, e.hDevice, n, h, e.Flags.Value, st, e.NumBytesToTrim));
}

enum per_alloc { SET_PRIORITY, GET_PRIORITY, QUERY_RESIDENCY };

/* Set/GetAllocationPriority or QueryAllocationResidency, through a
 * resource or a list of allocations (sometimes both: refused). */
static bool op_per_alloc(int d, enum per_alloc what)
{
    static const UINT named[] = {
        D3DDDI_ALLOCATIONPRIORITY_MINIMUM, D3DDDI_ALLOCATIONPRIORITY_LOW,
        D3DDDI_ALLOCATIONPRIORITY_NORMAL,  D3DDDI_ALLOCATIONPRIORITY_HIGH,
        D3DDDI_ALLOCATIONPRIORITY_MAXIMUM,
    };
    D3DKMT_HANDLE dev = chance(3) ? bad_handle() : dev_handle(d), res = 0, h[4];
    D3DKMT_GETALLOCATIONPRIORITY get;
    UINT v[4] = { 0 };
    unsigned n = 0;
    NTSTATUS st;

    if (!(chance(20) && pick_resources(d, 1, &res)) || chance(3)) {
        n = spoil(d, h, pick_batch(d, ANY_STATE, 3, h), 4);
        if (!n) {
            return true;
        }
    }
    for (unsigned i = 0; i < 4; i++) {
        v[i] = chance(70) ? named[below(5)] : (UINT)rnd();
    }
    /* One shape for all three: the device, then a resource or a list. */
    get = (D3DKMT_GETALLOCATIONPRIORITY){
        .hDevice = dev, .hResource = res, .phAllocationList = n ? h : NULL, .AllocationCount = n
    };
    if (what == SET_PRIORITY) {
        D3DKMT_SETALLOCATIONPRIORITY set = { get.hDevice, get.hResource, get.phAllocationList,
                                             get.AllocationCount, v };

        st = D3DKMTSetAllocationPriority(&set);
    } else if (what == GET_PRIORITY) {
        get.pPriorities = v;
        st = D3DKMTGetAllocationPriority(&get);
    } else {
        D3DKMT_QUERYALLOCATIONRESIDENCY q = { get.hDevice, get.hResource, get.phAllocationList,
                                              get.AllocationCount,
                                              (D3DKMT_ALLOCATIONRESIDENCYSTATUS *)v };

        st = D3DKMTQueryAllocationResidency(&q);
    }
    describe("%s on 0x%x",
             what == SET_PRIORITY   ? "set priority"
             : what == GET_PRIORITY ? "get priority"
                                    : "query residency",
             dev);
    if (res) {
        describe(" resource 0x%x", res);
    }
    if (n) {
        describe_handles(h, n);
    }
    describe(": %s, values", vkmt_status_name(st));
    describe_handles(v, n ? n : 1);
    if (what == SET_PRIORITY) {
        return verdict(model_set_priority(&run.m, dev, res, n, n ? h : NULL, v, st));
    }
    if (what == GET_PRIORITY) {
        return verdict(model_get_priority(&run.m, dev, res, n, n ? h : NULL, v, st));
    }
    return verdict(model_query_residency(&run.m, dev, res, n, n ? h : NULL, v, st));
}

static bool op_stats(void)
{
    VKMT_DEVICE_STATS s = { 0 };
    NTSTATUS st = vkmt_query_stats(run.adapter, &s);

    describe("stats: %s", vkmt_status_name(st));
    return verdict(model_stats(&run.m, st, &s));
}

/* Device 0 holds the ballast and stays; the others come and go. */
static bool op_device(void)
{
    int d = 1 + (int)below(MODEL_MAX_DEVS - 1);

    return run.m.dev[d].live ? op_destroy_device(d) : op_create_device(d);
}

/* A call that never returns (a device that stopped answering) ends the
 * run with its seed and step rather than at the suite's timeout. */
#define STALL_S 30

static void stalled(int sig)
{
    char msg[160];
    int n =
        snprintf(msg, sizeof(msg),
                 "# seed %" PRIu64 " step %u: no answer in %d s; replay: modeltest --seed %" PRIu64
                 " --steps %u --trace\n",
                 cfg.seed, run.step, STALL_S, cfg.seed, run.step);

    (void)sig;
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, msg, (size_t)n);

        (void)w; /* exiting either way */
    }
    _exit(3);
}

static bool step(void)
{
    static const struct {
        unsigned weight;
        int op;
    } ops[] = { { 12, 0 }, { 7, 1 },  { 12, 2 }, { 8, 3 },  { 3, 4 },  { 5, 5 },  { 16, 6 },
                { 14, 7 }, { 4, 8 },  { 4, 9 },  { 3, 10 }, { 4, 11 }, { 2, 12 }, { 3, 13 },
                { 5, 14 }, { 4, 15 }, { 3, 16 }, { 1, 17 }, { 2, 18 }, { 1, 19 }, { 2, 20 } };
    unsigned total = 0, r;
    int d = live_dev();

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        total += ops[i].weight;
    }
    r = below(total);
    for (size_t i = 0;; i++) {
        if (r < ops[i].weight) {
            r = (unsigned)ops[i].op;
            break;
        }
        r -= ops[i].weight;
    }
    run.desc[0] = '\0';
    switch (r) {
    case 0:
        return op_create(d);
    case 1:
        return op_destroy(d);
    case 2:
    case 3:
        return op_access(r == 2);
    case 4:
    case 5:
        return op_lock(r == 4, d);
    case 6:
        return op_offer(d);
    case 7:
    case 8:
        return op_reclaim(d, r == 7);
    case 9:
        return op_trim(false);
    case 10:
        return !(cfg.blind_trims || cfg.host_trims) || op_trim(true);
    case 11:
        return op_query();
    case 12:
        return op_stats();
    case 13:
        return op_device();
    case 14:
        return op_make_resident(d);
    case 15:
        return op_evict(d);
    case 16:
    case 17:
    case 18:
        return op_per_alloc(d, (enum per_alloc)(r - 16));
    case 19:
        return op_reserve();
    default:
        return op_budget();
    }
}

/* ---- one run ---- */

static bool open_adapter(void)
{
    D3DKMT_ADAPTERINFO info[4];
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 4, .pAdapters = info };

    if (D3DKMTEnumAdapters2(&e) != STATUS_SUCCESS || e.NumAdapters < 1) {
        harness_fail(__FILE__, __LINE__, "no adapter (transport %s)",
                     vkmt_transport_name() ? vkmt_transport_name() : "none");
        return false;
    }
    for (ULONG i = 1; i < e.NumAdapters; i++) {
        D3DKMT_CLOSEADAPTER ca = { .hAdapter = info[i].hAdapter };

        D3DKMTCloseAdapter(&ca);
    }
    run.adapter = info[0].hAdapter;
    return true;
}

/*
 * The ballast: resident allocations on device 0 that leave cfg.budget of
 * the device's budget to the run. A backend that holds less per allocation
 * than asked gets it in halves.
 */
static bool make_ballast(void)
{
    UINT64 left = run.m.budget > cfg.budget ? run.m.budget - cfg.budget : 0;
    UINT64 chunk = left;

    while (left) {
        D3DKMT_HANDLE h, res;
        unsigned char *p;
        NTSTATUS st;

        chunk = chunk < left ? chunk : left;
        st = create(dev_handle(0), 1, &chunk, false, &h, &res);
        if (st == STATUS_INVALID_PARAMETER && chunk > 64 * MODEL_PAGE) {
            chunk = chunk / 2 / MODEL_PAGE * MODEL_PAGE;
            continue;
        }
        describe("ballast of %llu bytes: %s", (unsigned long long)chunk, vkmt_status_name(st));
        if (!verdict(model_create(&run.m, dev_handle(0), 1, &chunk, false, true, st, &h, res))) {
            return false;
        }
        /* Locked for the run, so that demotion never takes it. */
        st = lock(dev_handle(0), h, &p);
        describe(", lock %s", vkmt_status_name(st));
        if (!verdict(model_lock(&run.m, dev_handle(0), h, st))) {
            return false;
        }
        left -= chunk;
    }
    return true;
}

/*
 * Before a pause: about half the resident allocations nothing holds go to
 * the non-local segment (MakeResident, then Evict to count 0), so that the
 * pause carries demoted content whatever the run did before.
 */
static bool demote_some(void)
{
    for (int i = 0; run.m.residency && i < MODEL_MAX_ALLOCS; i++) {
        const struct model_alloc *a = &run.m.a[i];
        D3DKMT_HANDLE h = a->h;
        D3DDDI_MAKERESIDENT mr = { .hPagingQueue = run.m.dev[a->dev].pq,
                                   .NumAllocations = 1,
                                   .AllocationList = &h };
        D3DKMT_EVICT e = { .hDevice = dev_handle(a->dev),
                           .NumAllocations = 1,
                           .AllocationList = &h };
        NTSTATUS st;

        if (a->st != MS_RESIDENT || a->locks || a->rcount || a->ballast || chance(50)) {
            continue;
        }
        run.desc[0] = '\0';
        st = D3DKMTMakeResident(&mr);
        describe("make resident 0x%x: %s", h, vkmt_status_name(st));
        if (!verdict(model_make_resident(&run.m, mr.hPagingQueue, 1, &h, 0, st, mr.PagingFenceValue,
                                         mr.NumBytesToTrim))) {
            return false;
        }
        st = D3DKMTEvict(&e);
        describe(", evict: %s", vkmt_status_name(st));
        if (!verdict(model_evict(&run.m, e.hDevice, 1, &h, 0, st, e.NumBytesToTrim))) {
            return false;
        }
    }
    return true;
}

static bool pause_here(void)
{
    unsigned demoted = 0;
    sigset_t set;
    int sig;

    /* Demoted content stays where it is, to cross the pause there. */
    if (!demote_some() || !sweep(false)) {
        return false;
    }
    /* How much the pause carries in the non-local segment. */
    for (int i = 0; i < MODEL_MAX_ALLOCS; i++) {
        demoted += run.m.a[i].st == MS_DEMOTED;
    }
    printf("modeltest: pause at step %u, %u allocations demoted\n", run.step, demoted);
    fflush(stdout);
    if (cfg.pause_cmd) {
        int rc = system(cfg.pause_cmd);

        if (rc != 0) {
            harness_fail(__FILE__, __LINE__, "seed %" PRIu64 ": --pause-cmd '%s' failed (%d)",
                         cfg.seed, cfg.pause_cmd, rc);
            return false;
        }
    } else {
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigwait(&set, &sig);
    }
    printf("modeltest: resumed\n");
    /* A snapshot restored or a migration may have dropped offered content
     * (migrate-offered=discard); nothing else may have changed. */
    model_forget(&run.m);
    return sweep(true);
}

/* One run after the adapter is open: false at the first mismatch. */
static bool run_steps(void)
{
    alarm(STALL_S);
    if (!op_create_device(0) || !make_ballast()) {
        return false;
    }
    for (run.step = 1; run.step <= cfg.steps; run.step++) {
        bool ok;

        alarm(STALL_S);
        ok = step();
        if (cfg.trace && run.desc[0]) {
            printf("# step %u: %s\n", run.step, run.desc);
        }
        if (!ok) {
            return false;
        }
        if (run.step == cfg.pause_at) {
            alarm(0); /* a pause takes as long as it takes */
            if (!pause_here()) {
                return false;
            }
        }
    }
    alarm(STALL_S);
    return sweep(true);
}

static void run_one(void)
{
    D3DKMT_QUERYVIDEOMEMORYINFO q = { 0 }, nl = { 0 };
    D3DKMT_CLOSEADAPTER ca;

    memset(&run, 0, sizeof(run));
    run.rng = cfg.seed;
    if (!open_adapter()) {
        return;
    }
    q.hAdapter = nl.hAdapter = run.adapter;
    nl.MemorySegmentGroup = D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL;
    if (D3DKMTQueryVideoMemoryInfo(&q) != STATUS_SUCCESS ||
        D3DKMTQueryVideoMemoryInfo(&nl) != STATUS_SUCCESS) {
        harness_fail(__FILE__, __LINE__, "QueryVideoMemoryInfo failed");
    } else if (nl.Budget && nl.Budget < MODEL_NONLOCAL_MIN) {
        /* Smaller, a demotion could find no free run for an allocation
         * and pass it over, a choice the model does not follow. */
        harness_fail(__FILE__, __LINE__,
                     "a non-local segment of %llu bytes: the model needs none or %llu",
                     (unsigned long long)nl.Budget, (unsigned long long)MODEL_NONLOCAL_MIN);
    } else {
        /* A 1.2 device offers reservations; a 1.1 one has no residency. */
        model_init(&run.m, q.Budget, cfg.lenient, q.AvailableForReservation != 0, nl.Budget);
        run.budget0 = q.Budget;
        run_steps();
        alarm(0);
        /* Later runs and suites find the budget as this one did. */
        if (run.budget_set && !host_set("budget", run.budget0)) {
            harness_fail(__FILE__, __LINE__, "the host did not set the budget back");
        }
        model_free(&run.m);
    }
    /* Closing the adapter releases everything the run made. */
    ca.hAdapter = run.adapter;
    D3DKMTCloseAdapter(&ca);
}

/* ---- the fixed seeds of make check ---- */

/* About 0.2 s a seed over loopback, 0.4 s with the sanitizers (demotion
 * copies content in and out of the non-local segment). */
#define SUITE_STEPS 10000

static void with(uint64_t seed, UINT64 budget, bool lenient, bool blind, unsigned pause_at)
{
    cfg = (struct config){ .seed = seed,
                           .steps = SUITE_STEPS,
                           .budget = budget,
                           .lenient = lenient,
                           .blind_trims = blind,
                           .pause_at = pause_at,
                           .pause_cmd = pause_at ? "true" : NULL };
    run_one();
}

static void seed_1_matches_the_exact_model(void)
{
    with(1, 256 * 1024, false, false, 0);
}

static void seed_2_matches_the_exact_model_under_less_pressure(void)
{
    with(2, 1024 * 1024, false, false, 0);
}

static void seed_3_matches_with_trims_the_model_does_not_see(void)
{
    with(3, 256 * 1024, false, true, 0);
}

static void seed_4_matches_the_lenient_model(void)
{
    with(4, 256 * 1024, true, false, 0);
}

static void seed_5_matches_across_a_pause_that_may_drop_offers(void)
{
    with(5, 256 * 1024, false, false, SUITE_STEPS / 2);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: modeltest [--seed S [--steps N] [--budget BYTES] [--lenient] "
            "[--blind-trims] [--host-trims] [--host-budget] [--pause-at K [--pause-cmd CMD]] "
            "[--trace]]\n");
    return 2;
}

/* The suite name: the kernel driver's runs report apart, as the
 * conformance suite's do, so that one test VM run holds both. */
static const char *suite_name(void)
{
    const char *t = vkmt_transport_name();

    return t && !strcmp(t, "kmd") ? "modeltest_kmd" : "modeltest";
}

int main(int argc, char **argv)
{
    static const struct test suite[] = {
        TEST(seed_1_matches_the_exact_model),
        TEST(seed_2_matches_the_exact_model_under_less_pressure),
        TEST(seed_3_matches_with_trims_the_model_does_not_see),
        TEST(seed_4_matches_the_lenient_model),
        TEST(seed_5_matches_across_a_pause_that_may_drop_offers),
    };
    static struct test one[] = { { "seed", run_one } };
    bool have_seed = false;
    sigset_t set;

    cfg = (struct config){ .steps = 1000, .budget = 256 * 1024 };
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(argv[i], "--seed") && v) {
            cfg.seed = strtoull(v, NULL, 0);
            have_seed = true;
            i++;
        } else if (!strcmp(argv[i], "--steps") && v) {
            cfg.steps = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(argv[i], "--budget") && v) {
            cfg.budget = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(argv[i], "--pause-at") && v) {
            cfg.pause_at = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(argv[i], "--pause-cmd") && v) {
            cfg.pause_cmd = v;
            i++;
        } else if (!strcmp(argv[i], "--lenient")) {
            cfg.lenient = true;
        } else if (!strcmp(argv[i], "--blind-trims")) {
            cfg.blind_trims = true;
        } else if (!strcmp(argv[i], "--host-trims")) {
            cfg.host_trims = true;
        } else if (!strcmp(argv[i], "--host-budget")) {
            cfg.host_budget = true;
        } else if (!strcmp(argv[i], "--trace")) {
            cfg.trace = true;
        } else {
            return usage();
        }
    }
    signal(SIGALRM, stalled);
    /* A line a call printed survives the call crashing the program. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* SIGUSR1 ends a pause; blocked from the start so that one sent early
     * is kept until the pause takes it. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("# transport: %s\n", vkmt_transport_name() ? vkmt_transport_name() : "none");
    if (have_seed) {
        return harness_run(suite_name(), one, 1);
    }
    return harness_run(suite_name(), suite, sizeof(suite) / sizeof(suite[0]));
}
