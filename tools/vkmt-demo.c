/* SPDX-License-Identifier: MIT */
/*
 * The demo `make demo` runs inside the test VM: allocations filled with known
 * patterns, offered at mixed priorities, a trim applied by the host through
 * QMP, everything reclaimed, and a table per allocation (priority, result,
 * content check) plus the host memory held by the aperture before and after
 * the trim; with the device's backend=virgl also the GPU resources behind
 * the allocations at each step. Host actions go through the VM runner's console services
 * (docs/VM.md): a line "vkmt-vm: qmp JSON" or "vkmt-vm: aperture-bytes" is
 * answered with one line on stdin. With --guest-trim the device is asked
 * directly instead (no runner needed; no host memory figures).
 *
 * With --residency (make demo SCENARIO=residency) the application reacts to
 * the host instead: it registers a trim callback, the host asks for memory
 * back over QMP (trim-notify), the callback offers allocations until it has
 * offered what was asked, the host then trims, and the demo prints the host
 * memory the aperture gave back and what the reclaim found.
 * Exits 1 on any mismatch.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkmt.h"

#define N 8
#define SIZE (4u << 20)

static const char *const prio_name[] = { "-", "LOW", "NORMAL", "HIGH", "AUTO" };
static const char *const result_name[] = { "OK", "DISCARDED", "NOT_COMMITTED" };

static int check(const char *what, NTSTATUS st)
{
    if (st != STATUS_SUCCESS) {
        printf("vkmt-demo: %s failed: %s\n", what,
               vkmt_status_name(st) ? vkmt_status_name(st) : "unknown status");
        exit(1);
    }
    return 0;
}

/* Ask the VM runner on the host; returns its one-line answer. */
static const char *host(const char *request)
{
    static char reply[4096];

    printf("vkmt-vm: %s\n", request);
    fflush(stdout);
    if (!fgets(reply, sizeof(reply), stdin)) {
        printf("vkmt-demo: no answer from the host to '%s'\n", request);
        exit(1);
    }
    reply[strcspn(reply, "\r\n")] = 0;
    return reply;
}

static unsigned long long host_aperture_bytes(void)
{
    return strtoull(host("aperture-bytes"), NULL, 10);
}

/*
 * The GPU resources behind the allocations, from the device's "virgl"
 * property (backend=virgl only; docs/VIRGL.md), with the GL renderer in
 * @renderer. -1: the device keeps content in host memory.
 */
static long long host_gpu_resources(char *renderer, size_t len)
{
    const char *r = host("qmp {\"execute\": \"qom-get\", \"arguments\": {\"path\": "
                         "\"/machine/peripheral/vk\", \"property\": \"virgl\"}}");
    const char *n = strstr(r, "\"resources\":");
    const char *name = strstr(r, "\"renderer\":\"");

    if (!strstr(r, "\"return\"") || !n || !name) {
        return -1;
    }
    name += strlen("\"renderer\":\"");
    snprintf(renderer, len, "%.*s", (int)strcspn(name, "\""), name);
    return strtoll(n + strlen("\"resources\":"), NULL, 10);
}

/* 1: the pattern of @seed, 0: zeros, -1: anything else. */
static int content(D3DKMT_HANDLE dev, D3DKMT_HANDLE a, unsigned seed, int write)
{
    D3DKMT_LOCK2 l = { .hDevice = dev, .hAllocation = a };
    D3DKMT_UNLOCK2 u = { .hDevice = dev, .hAllocation = a };
    unsigned char *p;
    int pattern = 1, zero = 1;

    check("D3DKMTLock2", D3DKMTLock2(&l));
    p = l.pData;
    for (unsigned i = 0; i < SIZE; i++) {
        unsigned char want = (unsigned char)(seed * 37 + i + (i >> 12));

        if (write) {
            p[i] = want;
        }
        pattern &= p[i] == want;
        zero &= p[i] == 0;
    }
    check("D3DKMTUnlock2", D3DKMTUnlock2(&u));
    return pattern ? 1 : zero ? 0 : -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The residency scenario's application state, shared with its callback. */
static struct {
    D3DKMT_HANDLE dev;
    D3DKMT_HANDLE h[N];
    int offered[N];
    UINT64 asked, given;
    uint64_t called_ns;
    atomic_int done;
} app;

/* Runs on libvkmt's thread: give back what the host asks, cheapest first. */
static VOID on_trim(D3DKMT_TRIMNOTIFICATION *n)
{
    if (n->Flags.TrimToBudget) {
        app.called_ns = now_ns();
        app.asked = n->NumBytesToTrim;
        for (int i = 0; i < N && app.given < app.asked; i++) {
            D3DKMT_OFFERALLOCATIONS o = { .hDevice = app.dev,
                                          .HandleList = &app.h[i],
                                          .NumAllocations = 1,
                                          .Priority = D3DKMT_OFFER_PRIORITY_LOW };

            check("D3DKMTOfferAllocations", D3DKMTOfferAllocations(&o));
            app.offered[i] = 1;
            app.given += SIZE;
        }
        atomic_store(&app.done, 1);
    }
}

static const char *qom_set(const char *prop, unsigned long long value)
{
    char request[256];

    snprintf(request, sizeof(request),
             "qmp {\"execute\": \"qom-set\", \"arguments\": {\"path\": "
             "\"/machine/peripheral/vk\", \"property\": \"%s\", \"value\": %llu}}",
             prop, value);
    return host(request);
}

/* What both scenarios start from: the first adapter, a device and its
 * paging queue, and N allocations of SIZE filled with their patterns. */
struct session {
    D3DKMT_ADAPTERINFO adapter;
    D3DKMT_HANDLE dev, pq;
};

/* Fills @s and @h; false, after saying so, when there is no adapter. */
static bool start(struct session *s, D3DKMT_HANDLE h[N])
{
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &s->adapter };
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    VKMT_ALLOCATION_DESC desc = { .Size = SIZE };
    D3DDDI_ALLOCATIONINFO2 info[N];
    D3DKMT_CREATEALLOCATION ca = { .NumAllocations = N, .pAllocationInfo2 = info };

    check("D3DKMTEnumAdapters2", D3DKMTEnumAdapters2(&e));
    if (e.NumAdapters == 0) {
        printf("vkmt-demo: no vkmt adapter (transport %s)\n",
               vkmt_transport_name() ? vkmt_transport_name() : "none");
        return false;
    }
    cd.hAdapter = s->adapter.hAdapter;
    check("D3DKMTCreateDevice", D3DKMTCreateDevice(&cd));
    s->dev = pq.hDevice = ca.hDevice = cd.hDevice;
    check("D3DKMTCreatePagingQueue", D3DKMTCreatePagingQueue(&pq));
    s->pq = pq.hPagingQueue;
    memset(info, 0, sizeof(info));
    for (int i = 0; i < N; i++) {
        info[i].pPrivateDriverData = &desc;
        info[i].PrivateDriverDataSize = sizeof(desc);
    }
    check("D3DKMTCreateAllocation2", D3DKMTCreateAllocation2(&ca));
    for (int i = 0; i < N; i++) {
        h[i] = info[i].hAllocation;
        content(s->dev, h[i], (unsigned)i, 1);
    }
    return true;
}

static int residency(void)
{
    const unsigned long long ask = 3ull * SIZE + SIZE / 2; /* 3.5 allocations: 4 go */
    struct session ses;
    D3DKMT_RECLAIMALLOCATIONS2 rc = { .NumAllocations = N, .HandleList = app.h };
    D3DKMT_REGISTERTRIMNOTIFICATION reg = { 0 };
    D3DKMT_UNREGISTERTRIMNOTIFICATION unreg = { 0 };
    D3DDDI_RECLAIM_RESULT result[N];
    unsigned long long before, after;
    uint64_t sent_ns;
    int mismatches = 0;

    if (!start(&ses, app.h)) {
        return 1;
    }
    app.dev = ses.dev;
    reg.AdapterLuid = ses.adapter.AdapterLuid;
    reg.hDevice = ses.dev;
    reg.Callback = on_trim;
    check("D3DKMTRegisterTrimNotification", D3DKMTRegisterTrimNotification(&reg));
    printf("vkmt-demo: %d resident allocations of %u MiB, a trim callback registered "
           "(transport %s)\n",
           N, SIZE >> 20, vkmt_transport_name());

    before = host_aperture_bytes();
    sent_ns = now_ns();
    if (!strstr(qom_set("trim-notify", ask), "\"return\"")) {
        printf("vkmt-demo: the host's trim request failed\n");
        return 1;
    }
    for (int ms = 0; ms < 30000 && !atomic_load(&app.done); ms++) {
        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
    }
    if (!atomic_load(&app.done)) {
        printf("vkmt-demo: MISMATCH: no trim callback within 30 s\n");
        return 1;
    }
    printf("host asked for %llu KiB (QMP trim-notify); the callback ran %.1f ms after the "
           "request left the guest and offered %llu MiB\n",
           (unsigned long long)app.asked >> 10, (double)(app.called_ns - sent_ns) / 1e6,
           (unsigned long long)app.given >> 20);
    if (app.asked != ask) {
        printf("vkmt-demo: MISMATCH: asked for %llu bytes, not %llu\n",
               (unsigned long long)app.asked, ask);
        mismatches++;
    }
    /* The host takes what was offered. */
    if (!strstr(qom_set("trim", app.given), "\"return\"")) {
        printf("vkmt-demo: the host's trim failed\n");
        return 1;
    }
    after = host_aperture_bytes();
    unreg.Handle = reg.Handle;
    check("D3DKMTUnregisterTrimNotification", D3DKMTUnregisterTrimNotification(&unreg));

    rc.hPagingQueue = ses.pq;
    rc.pResults = result;
    check("D3DKMTReclaimAllocations2", D3DKMTReclaimAllocations2(&rc));
    printf("\n| alloc | offered by the callback | result        | content |\n");
    printf("|-------|-------------------------|---------------|---------|\n");
    for (int i = 0; i < N; i++) {
        int c = content(ses.dev, app.h[i], (unsigned)i, 0);
        D3DDDI_RECLAIM_RESULT want =
            app.offered[i] ? D3DDDI_RECLAIM_RESULT_DISCARDED : D3DDDI_RECLAIM_RESULT_OK;
        int ok = result[i] == want && c == (want == D3DDDI_RECLAIM_RESULT_OK);

        mismatches += !ok;
        printf("| %5d | %-23s | %-13s | %-7s |\n", i, app.offered[i] ? "yes" : "no",
               (unsigned)result[i] <= 2 ? result_name[result[i]] : "?",
               !ok      ? "WRONG"
               : c == 1 ? "intact"
                        : "zeroed");
    }
    printf("\nhost memory held by the aperture: %llu MiB before, %llu MiB after "
           "(given back %llu MiB)\n",
           before >> 20, after >> 20, before > after ? (before - after) >> 20 : 0);
    if (before < after || before - after < app.given) {
        printf("vkmt-demo: MISMATCH: the host got back less than the callback offered\n");
        mismatches++;
    }
    printf("%s\n", mismatches ? "vkmt-demo: MISMATCH" : "vkmt-demo: every result matches");
    return mismatches ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const D3DKMT_OFFER_PRIORITY prio[N] = {
        D3DKMT_OFFER_PRIORITY_LOW,    D3DKMT_OFFER_PRIORITY_HIGH,
        D3DKMT_OFFER_PRIORITY_NORMAL, D3DKMT_OFFER_PRIORITY_LOW,
        D3DKMT_OFFER_PRIORITY_AUTO,   D3DKMT_OFFER_PRIORITY_HIGH,
        D3DKMT_OFFER_PRIORITY_NORMAL, 0 /* never offered */
    };
    int guest_trim = argc > 1 && !strcmp(argv[1], "--guest-trim");
    struct session ses;
    D3DKMT_HANDLE h[N];
    D3DDDI_RECLAIM_RESULT result[N];
    D3DKMT_RECLAIMALLOCATIONS2 rc = { .NumAllocations = N, .HandleList = h, .pResults = result };
    unsigned long long before = 0, after = 0, trimmed = 0;
    const unsigned long long want = 4ull * SIZE; /* LOW, LOW, NORMAL, AUTO go */
    long long gpu_before = -1, gpu_after = -1, gpu_reclaimed = -1;
    char request[256], renderer[128] = "";
    int mismatches = 0;

    if (argc > 1 && !strcmp(argv[1], "--residency")) {
        return residency();
    }
    if (!start(&ses, h)) {
        return 1;
    }
    printf("vkmt-demo: %d allocations of %u MiB, filled with patterns\n", N, SIZE >> 20);
    for (int i = 0; i < N; i++) {
        if (prio[i]) {
            D3DKMT_OFFERALLOCATIONS o = {
                .hDevice = ses.dev, .HandleList = &h[i], .NumAllocations = 1, .Priority = prio[i]
            };

            check("D3DKMTOfferAllocations", D3DKMTOfferAllocations(&o));
        }
    }
    if (guest_trim) {
        UINT64 freed = 0;

        check("vkmt_trim", vkmt_trim(ses.adapter.hAdapter, want, &freed));
        trimmed = freed;
    } else {
        before = host_aperture_bytes();
        gpu_before = host_gpu_resources(renderer, sizeof(renderer));
        snprintf(request, sizeof(request),
                 "qmp {\"execute\": \"qom-set\", \"arguments\": {\"path\": "
                 "\"/machine/peripheral/vk\", \"property\": \"trim\", \"value\": %llu}}",
                 want);
        if (!strstr(host(request), "\"return\"")) {
            printf("vkmt-demo: the host's trim failed\n");
            return 1;
        }
        after = host_aperture_bytes();
        trimmed = want;
    }
    rc.hPagingQueue = ses.pq;
    if (gpu_before >= 0) {
        gpu_after = host_gpu_resources(renderer, sizeof(renderer));
    }
    check("D3DKMTReclaimAllocations2", D3DKMTReclaimAllocations2(&rc));
    if (gpu_before >= 0) {
        gpu_reclaimed = host_gpu_resources(renderer, sizeof(renderer));
    }

    printf("\n| alloc | priority | result        | content |\n");
    printf("|-------|----------|---------------|---------|\n");
    for (int i = 0; i < N; i++) {
        int c = content(ses.dev, h[i], (unsigned)i, 0);
        int ok = result[i] == D3DDDI_RECLAIM_RESULT_OK ? c == 1 : c == 0;

        mismatches += !ok;
        printf("| %5d | %-8s | %-13s | %-7s |\n", i, prio_name[prio[i]],
               (unsigned)result[i] <= 2 ? result_name[result[i]] : "?",
               !ok      ? "WRONG"
               : c == 1 ? "intact"
                        : "zeroed");
    }
    printf("\ntrim: %llu MiB of offered content\n", trimmed >> 20);
    if (!guest_trim) {
        printf("host memory held by the aperture: %llu MiB before, %llu MiB after "
               "(dropped %llu MiB)\n",
               before >> 20, after >> 20, (before - after) >> 20);
        if (before < after || before - after < trimmed) {
            printf("vkmt-demo: MISMATCH: the host got back less than was trimmed\n");
            mismatches++;
        }
    }
    if (gpu_before >= 0) {
        /* Each discarded allocation's resource goes; reclaim recreates it. */
        printf("GPU resources (virgl, %s): %lld before the trim, %lld after, "
               "%lld after the reclaim\n",
               renderer, gpu_before, gpu_after, gpu_reclaimed);
        if (gpu_before != N || gpu_after != N - (long long)(want / SIZE) || gpu_reclaimed != N) {
            printf("vkmt-demo: MISMATCH: expected %d, %lld and %d GPU resources\n", N,
                   N - (long long)(want / SIZE), N);
            mismatches++;
        }
    }
    printf("%s\n", mismatches ? "vkmt-demo: MISMATCH" : "vkmt-demo: every result matches");
    return mismatches ? 1 : 0;
}
