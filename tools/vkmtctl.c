/* SPDX-License-Identifier: MIT */
/*
 * vkmtctl: look at and drive a vkmt device by hand or from scripts.
 *
 *   vkmtctl info              identity, features, status, sizes, budget
 *   vkmtctl stats             device-wide counters
 *   vkmtctl queues            every queue: state, owner process, alive or not
 *                             (over the kernel driver: queue, pid, process name)
 *   vkmtctl memory            per process (queue): the host's budget for it, the
 *                             budget in force, committed, resident, offered,
 *                             demoted and discarded bytes; every process's with
 *                             CAP_SYS_ADMIN over the kernel driver, else this
 *                             process's own
 *   vkmtctl reap              release the queues of processes that are gone
 *   vkmtctl hold N SIZE       create N allocations of SIZE bytes, print
 *                             "holding", and wait until killed (for tests)
 *   vkmtctl latency [N]       time N command round trips (QueryVideoMemoryInfo)
 *                             and N bare register reads; CPU used while waiting
 *   vkmtctl script            read commands from stdin, one per line, in one
 *                             process: create N SIZE | fill I SEED |
 *                             check I SEED | offer I PRIO | reclaim I |
 *                             trim BYTES | stats | memory | list
 *
 * Exit status 0 on success, 1 on a failed call, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vkmt.h"
#include "vkmt_internal.h"
#include "vkmt_shmem.h"

static int usage(void)
{
    fprintf(stderr, "usage: vkmtctl info|stats|queues|memory|reap|hold N SIZE|latency [N]|script\n"
                    "(VKMT_TRANSPORT picks the transport: kmd when /dev/vkmt0 exists, else pci)\n");
    return 2;
}

static int fail(const char *what, NTSTATUS st)
{
    fprintf(stderr, "vkmtctl: %s: %s\n", what,
            vkmt_status_name(st) ? vkmt_status_name(st) : "unknown status");
    return 1;
}

/* Map the first device without claiming a queue (info, queues, reap). */
static struct vkmt_transport *raw_open(void)
{
    const struct vkmt_transport_ops *ops = vkmt_transport_get();
    struct vkmt_transport *t;

    if (!ops || ops->count() == 0 || ops->open(0, &t) < 0) {
        fprintf(stderr, "vkmtctl: no vkmt device (transport %s)\n", ops ? ops->name : "none");
        return NULL;
    }
    return t;
}

static int cmd_info(void)
{
    struct vkmt_transport *t = raw_open();
    uint32_t (*rd)(struct vkmt_transport *, uint32_t);

    if (!t) {
        return 1;
    }
    rd = t->ops->reg_read;
    printf("transport       %s\n", t->ops->name);
    if (t->ops->submit) {
        /* The driver owns the registers; it reports what this file got. */
        printf("features        0x%x (negotiated by the driver)\n", t->features);
        printf("queue           %u (this process's)\n", t->queue);
        printf("aperture        %llu bytes\n", (unsigned long long)t->aperture_size);
        printf("luid            0x%llx\n", (unsigned long long)t->luid);
        t->ops->close(t);
        return 0;
    }
    printf("magic           0x%08x\n", rd(t, VKMT_REG(magic)));
    printf("version         %u.%u\n", rd(t, VKMT_REG(version)) >> 16,
           rd(t, VKMT_REG(version)) & 0xffff);
    printf("features        device 0x%x driver 0x%x\n", rd(t, VKMT_REG(device_features)),
           rd(t, VKMT_REG(driver_features)));
    printf("status          0x%x\n", rd(t, VKMT_REG(status)));
    printf("removal epoch   %u\n", rd(t, VKMT_REG(removal_epoch)));
    printf("queues          %u x depth %u, staging %u bytes\n", rd(t, VKMT_REG(num_queues)),
           rd(t, VKMT_REG(queue_depth)), rd(t, VKMT_REG(staging_size)));
    printf("aperture        %llu bytes\n", (unsigned long long)rd(t, VKMT_REG(aperture_size_lo)) |
                                               (unsigned long long)rd(t, VKMT_REG(aperture_size_hi))
                                                   << 32);
    printf("budget          %llu bytes\n", (unsigned long long)rd(t, VKMT_REG(budget_lo)) |
                                               (unsigned long long)rd(t, VKMT_REG(budget_hi))
                                                   << 32);
    t->ops->close(t);
    return 0;
}

/* Queue tables and reaping are the driver's over kmd: it releases a
 * file's queue when the file closes, whatever killed its process. */
static int driver_owns_queues(struct vkmt_transport *t)
{
    fprintf(stderr, "vkmtctl: the %s transport's driver owns the queues\n", t->ops->name);
    t->ops->close(t);
    return 1;
}

/*
 * Over the kernel driver: its list of which process holds which queue
 * (docs/KMD.md), the names the host's queue-budget takes.
 */
static int driver_queues(struct vkmt_transport *t)
{
    static const char path[] = "/sys/class/vkmt/vkmt0/queues";
    FILE *f = fopen(path, "r");
    char line[128];
    unsigned q;
    int pid, at;

    t->ops->close(t);
    if (!f) {
        fprintf(stderr, "vkmtctl: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("queue    pid  process\n");
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%u %d %n", &q, &pid, &at) == 2) {
            line[strcspn(line, "\n")] = 0;
            printf("%5u %6d  %s\n", q, pid, line + at);
        }
    }
    fclose(f);
    return 0;
}

static int cmd_queues(void)
{
    struct vkmt_transport *t = raw_open();
    uint32_t n;

    if (!t) {
        return 1;
    }
    if (t->ops->submit) {
        return driver_queues(t);
    }
    n = t->ops->reg_read(t, VKMT_REG(num_queues));
    printf("queue state  owner  claim  alive\n");
    for (uint32_t q = 0; q < n && (uint64_t)(q + 1) * VKMT_QUEUE_STRIDE <= t->ctrl_size; q++) {
        const struct vkmt_queue_hdr *h =
            (const struct vkmt_queue_hdr *)(t->ctrl + (uint64_t)q * VKMT_QUEUE_STRIDE);
        uint32_t state = vkmt_sh_load(&h->sh_state), owner = vkmt_sh_load(&h->sh_owner);
        static const char *const names[] = { "free", "active", "error" };

        printf("%5u %-6s %6u %6u  %s\n", q, state <= 2 ? names[state] : "?", owner,
               vkmt_sh_load(&h->sh_claim_seq),
               state == VKMT_QSTATE_FREE                ? "-"
               : owner == 0 || qc_owner_alive(t, q) < 0 ? "?"
               : qc_owner_alive(t, q)                   ? "yes"
                                                        : "no");
    }
    t->ops->close(t);
    return 0;
}

static int cmd_reap(void)
{
    struct vkmt_transport *t = raw_open();
    uint32_t n;

    if (!t) {
        return 1;
    }
    if (t->ops->submit) {
        return driver_owns_queues(t);
    }
    n = qc_reap(t);
    printf("reaped %u queue%s\n", n, n == 1 ? "" : "s");
    t->ops->close(t);
    return 0;
}

/* A session: one adapter, device and paging queue for this process. */
/* What this session knows of each allocation it made. */
static struct {
    D3DKMT_HANDLE adapter, dev, pq;
    D3DKMT_HANDLE h[1024];
    UINT64 size[1024];
    unsigned state[1024]; /* VKMT_ALLOC_*, as the last call reported it */
    unsigned prio[1024];  /* of the last offer */
    unsigned n;
} S;

/* One process's figures on one line, its queue first: the host's
 * queue-budget and queue-stats properties name the process by it. */
static void print_queue_stats(const VKMT_QUEUE_STATS *q)
{
    printf("queue %u%s budget %llu local %llu committed %llu resident %llu offered %llu "
           "demoted %llu discarded %llu\n",
           q->Queue, q->Caller ? " (this process)" : "", (unsigned long long)q->BudgetBytes,
           (unsigned long long)q->LocalBudgetBytes, (unsigned long long)q->CommittedBytes,
           (unsigned long long)q->ResidentBytes, (unsigned long long)q->OfferedBytes,
           (unsigned long long)q->DemotedBytes, (unsigned long long)q->DiscardedBytes);
}

static NTSTATUS open_session(void)
{
    D3DKMT_ADAPTERINFO info;
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &info };
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    NTSTATUS st = D3DKMTEnumAdapters2(&e);

    if (st || e.NumAdapters == 0) {
        return st ? st : STATUS_DEVICE_REMOVED;
    }
    S.adapter = cd.hAdapter = info.hAdapter;
    if ((st = D3DKMTCreateDevice(&cd))) {
        return st;
    }
    S.dev = pq.hDevice = cd.hDevice;
    st = D3DKMTCreatePagingQueue(&pq);
    S.pq = pq.hPagingQueue;
    return st;
}

static NTSTATUS create(unsigned n, UINT64 size)
{
    D3DDDI_ALLOCATIONINFO2 info[64];
    VKMT_ALLOCATION_DESC desc = { .Size = size };
    D3DKMT_CREATEALLOCATION ca = { .hDevice = S.dev,
                                   .NumAllocations = n,
                                   .pAllocationInfo2 = info };
    NTSTATUS st;

    if (n == 0 || n > 64 || S.n + n > 1024) {
        return STATUS_INVALID_PARAMETER;
    }
    memset(info, 0, sizeof(info));
    for (unsigned i = 0; i < n; i++) {
        info[i].pPrivateDriverData = &desc;
        info[i].PrivateDriverDataSize = sizeof(desc);
    }
    if ((st = D3DKMTCreateAllocation2(&ca)) == STATUS_SUCCESS) {
        for (unsigned i = 0; i < n; i++) {
            S.size[S.n] = size;
            S.state[S.n] = VKMT_ALLOC_RESIDENT;
            S.h[S.n++] = info[i].hAllocation;
        }
    }
    return st;
}

static int cmd_hold(int argc, char **argv)
{
    NTSTATUS st;

    if (argc != 4) {
        return usage();
    }
    if ((st = open_session()) ||
        (st = create((unsigned)atoi(argv[2]), strtoull(argv[3], NULL, 0)))) {
        return fail("hold", st);
    }
    printf("holding %u allocations, pid %d\n", S.n, (int)getpid());
    fflush(stdout);
    for (;;) {
        pause();
    }
}

/* Fill (@write) or compare allocation @i with the pattern of @seed. */
static NTSTATUS pattern(unsigned i, unsigned seed, int write, int *match)
{
    D3DKMT_LOCK2 l = { .hDevice = S.dev, .hAllocation = S.h[i] };
    D3DKMT_UNLOCK2 u = { .hDevice = S.dev, .hAllocation = S.h[i] };
    NTSTATUS st = D3DKMTLock2(&l);
    unsigned char *p = l.pData;

    if (st) {
        return st;
    }
    *match = 1;
    for (UINT64 b = 0; b < S.size[i]; b++) {
        unsigned char want = (unsigned char)(seed * 31 + b * 7);

        if (write) {
            p[b] = want;
        }
        *match &= p[b] == want;
    }
    return D3DKMTUnlock2(&u);
}

static int script_line(char *line)
{
    char cmd[16] = "";
    unsigned long long a = 0, b = 0;
    int match = 0;
    int n = sscanf(line, "%15s %llu %llu", cmd, &a, &b);
    NTSTATUS st = STATUS_SUCCESS;

    if (n < 1 || cmd[0] == '#') {
        return 0;
    }
    if (!strcmp(cmd, "create") && n == 3) {
        st = create((unsigned)a, b);
        printf("created %u\n", S.n);
    } else if ((!strcmp(cmd, "fill") || !strcmp(cmd, "check")) && n == 3 && a < S.n) {
        st = pattern((unsigned)a, (unsigned)b, cmd[0] == 'f', &match);
        if (cmd[0] == 'c' && st == STATUS_SUCCESS) {
            printf("check %llu %s\n", a, match ? "intact" : "changed");
        }
    } else if (!strcmp(cmd, "offer") && n == 3 && a < S.n) {
        D3DKMT_OFFERALLOCATIONS o = { .hDevice = S.dev,
                                      .HandleList = &S.h[a],
                                      .NumAllocations = 1,
                                      .Priority = (D3DKMT_OFFER_PRIORITY)b };

        st = D3DKMTOfferAllocations(&o);
        if (st == STATUS_SUCCESS) {
            S.state[a] = VKMT_ALLOC_OFFERED;
            S.prio[a] = (unsigned)b;
        }
    } else if (!strcmp(cmd, "reclaim") && n == 2 && a < S.n) {
        D3DDDI_RECLAIM_RESULT r;
        D3DKMT_RECLAIMALLOCATIONS2 rc = {
            .hPagingQueue = S.pq, .NumAllocations = 1, .HandleList = &S.h[a], .pResults = &r
        };
        static const char *const names[] = { "OK", "DISCARDED", "NOT_COMMITTED" };

        st = D3DKMTReclaimAllocations2(&rc);
        if (st == STATUS_SUCCESS) {
            printf("reclaim %llu %s\n", a, r <= 2 ? names[r] : "?");
            S.state[a] = r == D3DDDI_RECLAIM_RESULT_NOT_COMMITTED ? VKMT_ALLOC_DECOMMITTED
                                                                  : VKMT_ALLOC_RESIDENT;
        }
    } else if (!strcmp(cmd, "trim") && n == 2) {
        UINT64 freed = 0;

        st = vkmt_trim(S.adapter, a, &freed);
        printf("trimmed %llu\n", (unsigned long long)freed);
    } else if (!strcmp(cmd, "list") && n == 1) {
        static const char *const prio_names[] = { "-", "low", "normal", "high", "auto" };

        printf("index handle     bytes      state (as last reported) priority\n");
        for (unsigned i = 0; i < S.n; i++) {
            printf("%5u 0x%08x %10llu %-24s %s\n", i, S.h[i], (unsigned long long)S.size[i],
                   vkmt_alloc_state_name(S.state[i]), S.prio[i] <= 4 ? prio_names[S.prio[i]] : "?");
        }
    } else if (!strcmp(cmd, "memory") && n == 1) {
        VKMT_QUEUE_STATS q;

        if ((st = vkmt_query_queue_stats(S.adapter, FALSE, &q, 1, NULL)) == STATUS_SUCCESS) {
            print_queue_stats(&q);
        }
    } else if (!strcmp(cmd, "stats") && n == 1) {
        VKMT_DEVICE_STATS s;

        if ((st = vkmt_query_stats(S.adapter, &s)) == STATUS_SUCCESS) {
            printf("allocations %llu committed %llu offered %llu discards %llu\n",
                   (unsigned long long)s.Allocations, (unsigned long long)s.CommittedBytes,
                   (unsigned long long)s.OfferedBytes, (unsigned long long)s.Discards);
        }
    } else {
        fprintf(stderr, "vkmtctl: cannot read '%s'\n", line);
        return 2;
    }
    fflush(stdout);
    return st ? fail(cmd, st) : 0;
}

static int cmd_script(void)
{
    char line[256];
    NTSTATUS st = open_session();

    if (st) {
        return fail("open", st);
    }
    while (fgets(line, sizeof(line), stdin)) {
        int rc;

        line[strcspn(line, "\n")] = 0;
        if ((rc = script_line(line))) {
            return rc;
        }
    }
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

/* Round-trip cost of a command against a bare register read, and how much
 * CPU the waiting burns (100%: the caller spins the whole time). */
static int cmd_latency(int argc, char **argv)
{
    unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 20000;
    D3DKMT_QUERYVIDEOMEMORYINFO q = { 0 };
    struct vkmt_transport *t;
    double t0, c0, wall, cpu;
    volatile uint32_t sink = 0;
    NTSTATUS st = open_session();

    if (st) {
        return fail("open", st);
    }
    q.hAdapter = S.adapter;
    t0 = now_ns();
    c0 = cpu_ns();
    for (unsigned i = 0; i < n; i++) {
        if ((st = D3DKMTQueryVideoMemoryInfo(&q))) {
            return fail("D3DKMTQueryVideoMemoryInfo", st);
        }
    }
    wall = now_ns() - t0;
    cpu = cpu_ns() - c0;
    printf("command round trip   %.0f ns (QueryVideoMemoryInfo, %u calls, CPU %.0f%% of wall)\n",
           wall / n, n, 100.0 * cpu / wall);
    if (!(t = raw_open())) {
        return 1;
    }
    if (t->ops->submit) {
        t->ops->close(t); /* no register to read: the driver owns them */
        return 0;
    }
    t0 = now_ns();
    for (unsigned i = 0; i < n; i++) {
        sink += t->ops->reg_read(t, VKMT_REG(magic));
    }
    wall = now_ns() - t0;
    printf("register read        %.0f ns (bare MMIO round trip)\n", wall / n);
    t->ops->close(t);
    return 0;
}

static int cmd_memory(void)
{
    VKMT_QUEUE_STATS q[VKMT_MAX_QUEUES];
    UINT count = 0;
    NTSTATUS st = open_session();

    if (st) {
        return fail("open", st);
    }
    st = vkmt_query_queue_stats(S.adapter, TRUE, q, VKMT_MAX_QUEUES, &count);
    if (st == STATUS_ACCESS_DENIED) {
        fprintf(stderr, "vkmtctl: other processes' figures need CAP_SYS_ADMIN; this one's:\n");
        count = 1;
        st = vkmt_query_queue_stats(S.adapter, FALSE, q, 1, NULL);
    }
    if (st) {
        return fail("memory", st);
    }
    for (UINT i = 0; i < count && i < VKMT_MAX_QUEUES; i++) {
        print_queue_stats(&q[i]);
    }
    return 0;
}

static int cmd_stats(void)
{
    VKMT_DEVICE_STATS s;
    NTSTATUS st = open_session();

    if (st || (st = vkmt_query_stats(S.adapter, &s))) {
        return fail("stats", st);
    }
    printf("allocations          %llu\n", (unsigned long long)s.Allocations);
    printf("committed bytes      %llu\n", (unsigned long long)s.CommittedBytes);
    printf("offered bytes        %llu\n", (unsigned long long)s.OfferedBytes);
    printf("budget bytes         %llu\n", (unsigned long long)s.BudgetBytes);
    printf("offers               %llu\n", (unsigned long long)s.Offers);
    printf("discards             %llu (%llu bytes)\n", (unsigned long long)s.Discards,
           (unsigned long long)s.DiscardedBytes);
    printf("reclaims             ok %llu, discarded %llu, not committed %llu\n",
           (unsigned long long)s.ReclaimOk, (unsigned long long)s.ReclaimDiscarded,
           (unsigned long long)s.ReclaimNotCommitted);
    printf("trims                %llu\n", (unsigned long long)s.Trims);
    printf("commands             %llu (%llu failed)\n", (unsigned long long)s.Commands,
           (unsigned long long)s.CommandErrors);
    printf("queues claimed       %llu (this one included)\n", (unsigned long long)s.QueuesClaimed);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    if (!strcmp(argv[1], "info")) {
        return cmd_info();
    }
    if (!strcmp(argv[1], "stats")) {
        return cmd_stats();
    }
    if (!strcmp(argv[1], "queues")) {
        return cmd_queues();
    }
    if (!strcmp(argv[1], "memory")) {
        return cmd_memory();
    }
    if (!strcmp(argv[1], "reap")) {
        return cmd_reap();
    }
    if (!strcmp(argv[1], "hold")) {
        return cmd_hold(argc, argv);
    }
    if (!strcmp(argv[1], "latency")) {
        return cmd_latency(argc, argv);
    }
    if (!strcmp(argv[1], "script")) {
        return cmd_script();
    }
    return usage();
}
