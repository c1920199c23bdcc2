/* SPDX-License-Identifier: MIT */
/*
 * vkmt-bench's sections that compare the transports (bench_vm.c lists them
 * all): the guest kernel driver's floor (nop), a command's round trip over
 * the transport in use (rtt), residency changes (resident), the CPU a
 * waiting caller burns (wait) and throughput with several processes
 * (scale). Figures are named by the transport (VKMT_TRANSPORT, or the
 * default: kmd once /dev/vkmt0 exists), so one boot can measure the PCI
 * transport, load the driver (kmd-load) and measure the kmd transport side
 * by side.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_vm.h"
#include "vkmt_kmd.h"

#define WAIT_MS 10     /* how long the device holds a completion back */
#define SCALE_PROCS 4  /* processes in the largest scale step */
#define SCALE_BATCH 64 /* handles per offer and reclaim */
#define SCALE_NS 500e6 /* each process's measuring time per step */

/* "vm.<transport>.<what>", the transport libvkmt uses. */
static const char *key(const char *what)
{
    static char k[96];
    const char *t = vkmt_transport_name();

    snprintf(k, sizeof(k), "vm.%s.%s", t ? t : "none", what);
    return k;
}

/* ---- nop ----------------------------------------------------------------- */

void section_nop(void)
{
    const unsigned n = 1000;
    double *v = timings(n);
    int fd = open(VKMT_KMD_NODE_PREFIX "0", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        fatal("no %s (kmd-load first)", VKMT_KMD_NODE_PREFIX "0");
    }
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            double t0 = bench_now_ns();

            if (ioctl(fd, VKMT_KMD_IOC_NOP) < 0) {
                fatal("VKMT_KMD_IOC_NOP failed%s", "");
            }
            v[i] = since(t0);
        }
        bench_sample("vm.kmd.nop", "ns", bench_median(v, n));
    }
    free(v);
    close(fd);
}

/* ---- rtt ----------------------------------------------------------------- */

void section_rtt(void)
{
    struct bench_round one;
    const unsigned n = 1001;
    double *v = timings(n);

    bench_round_init(&one, 1);
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            v[i] = timed_query();
        }
        bench_sample(key("query"), "ns", bench_median(v, n));
        for (unsigned i = 0; i < n; i++) {
            v[i] = offer_reclaim2(&one);
        }
        bench_sample(key("reclaim2.1"), "ns", bench_median(v, n));
    }
    bench_round_fini(&one);
    free(v);
}

/* ---- resident ------------------------------------------------------------ */

/*
 * MakeResident and Evict of @n 4 KiB allocations, each call moving every
 * one between the segments (bench_residency_run). Few rounds at 1024: each
 * such call copies 4 MiB into memory faulted in anew (~5 ms).
 */
static void resident_batch(UINT n)
{
    unsigned reps = n >= 1024 ? 11 : 201;
    double *make = timings(reps), *evict = timings(reps);
    struct bench_residency r;
    char what[32];

    bench_residency_init(&r, n);
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < reps; i++) {
            double t[2];

            bench_residency_run(&r, t);
            make[i] = t[0] - clock_ns;
            evict[i] = t[1] - clock_ns;
        }
        snprintf(what, sizeof(what), "resident.%u", n);
        bench_sample(key(what), "ns", bench_median(make, reps));
        snprintf(what, sizeof(what), "evict.%u", n);
        bench_sample(key(what), "ns", bench_median(evict, reps));
    }
    bench_residency_fini(&r);
    free(make);
    free(evict);
}

void section_resident(void)
{
    resident_batch(1);
    resident_batch(1024);
}

/* ---- wait ---------------------------------------------------------------- */

struct waiter {
    sem_t go;
    double wall, cpu; /* ns */
    NTSTATUS st;
};

static double thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One command, its wall and CPU time: the thread does nothing else. */
static void *waiter(void *arg)
{
    struct waiter *w = arg;
    D3DKMT_QUERYVIDEOMEMORYINFO q = { .hAdapter = bench.adapter };
    double t0, c0;

    while (sem_wait(&w->go)) {
    }
    c0 = thread_cpu_ns();
    t0 = bench_now_ns();
    w->st = D3DKMTQueryVideoMemoryInfo(&q);
    w->wall = bench_now_ns() - t0;
    w->cpu = thread_cpu_ns() - c0;
    return NULL;
}

/* Sets the device's x-deaf test property (docs/DEVICE.md) over QMP. */
static void set_deaf(int on)
{
    char request[256];

    snprintf(request, sizeof(request),
             "qmp {\"execute\": \"qom-set\", \"arguments\": {\"path\": "
             "\"/machine/peripheral/vk\", \"property\": \"x-deaf\", \"value\": %s}}",
             on ? "true" : "false");
    if (!strstr(host(request), "\"return\"")) {
        fatal("qom-set x-deaf %s failed", on ? "true" : "false");
    }
}

/*
 * A completion that takes ~10 ms without work for anybody: the device is
 * made deaf (doorbells noted, not processed), a thread submits a command,
 * this one sleeps 10 ms and makes the device hear again, which runs the
 * noted command and raises its interrupt. The waiting thread's CPU time
 * over its wall time is what the transport's wait costs (kmd: a 5 us spin,
 * then asleep until the interrupt; pci: polls, then growing sleeps).
 */
void section_wait(void)
{
    const struct timespec hold = { 0, WAIT_MS * 1000000L };

    for (int run = 0; run < RUNS; run++) {
        struct waiter w = { .st = STATUS_SUCCESS };
        pthread_t th;

        set_deaf(1);
        if (sem_init(&w.go, 0, 0) || pthread_create(&th, NULL, waiter, &w)) {
            fatal("cannot start the waiting thread%s", "");
        }
        sem_post(&w.go);
        nanosleep(&hold, NULL);
        set_deaf(0);
        pthread_join(th, NULL);
        sem_destroy(&w.go);
        if (w.st) {
            bench_die("D3DKMTQueryVideoMemoryInfo (waiting)", w.st);
        }
        bench_sample(key("wait_cpu"), "%", 100.0 * w.cpu / w.wall);
        bench_sample(key("wait_wall"), "ns", w.wall);
    }
}

/* ---- scale --------------------------------------------------------------- */

/* One process of a scale step: its own session, so its own queue. */
static _Noreturn void scale_child(int ready, int go, int result)
{
    struct bench_round r;
    double t[4], t0, rate, calls = 0;
    char c;

    bench_open();
    bench_round_init(&r, SCALE_BATCH);
    if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1) {
        _exit(1);
    }
    t0 = bench_now_ns();
    do {
        bench_round_run(&r, t); /* offer, reclaim, offer, reclaim2 */
        calls += 4;
    } while (bench_now_ns() - t0 < SCALE_NS);
    rate = calls * 1e9 / (bench_now_ns() - t0);
    if (write(result, &rate, sizeof(rate)) != sizeof(rate)) {
        _exit(1);
    }
    bench_round_fini(&r);
    _exit(0);
}

/* Reads all @len bytes (a pipe returns what is there); 0 on EOF or error. */
static int read_all(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);

        if (n <= 0) {
            return 0;
        }
        got += (size_t)n;
    }
    return 1;
}

/* @procs processes, started together; their calls per second, summed. */
static double scale_step(int procs)
{
    int ready[2], go[2], result[2];
    double sum = 0;
    char c[SCALE_PROCS];
    int failed = 0;

    if (pipe(ready) || pipe(go) || pipe(result)) {
        fatal("pipe failed%s", "");
    }
    fflush(stdout);
    for (int i = 0; i < procs; i++) {
        pid_t pid = fork();

        if (pid < 0) {
            fatal("fork failed%s", "");
        }
        if (pid == 0) {
            scale_child(ready[1], go[0], result[1]);
        }
    }
    close(ready[1]);
    close(result[1]);
    /* Sessions and allocations first, so that only the loops overlap. */
    if (!read_all(ready[0], c, procs) || write(go[1], c, procs) != procs) {
        failed = 1;
    }
    for (int i = 0; i < procs && !failed; i++) {
        double rate;

        if (!read_all(result[0], &rate, sizeof(rate))) {
            failed = 1;
        }
        sum += rate;
    }
    for (int i = 0; i < procs; i++) {
        int status;

        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
            failed = 1;
        }
    }
    close(ready[0]);
    close(go[0]);
    close(go[1]);
    close(result[0]);
    if (failed) {
        fatal("a scale process failed%s", "");
    }
    return sum;
}

void section_scale(void)
{
    char what[16];

    if (bench.dev) {
        /* The children would share this process's queue. */
        fatal("scale must come before any section that opens a session%s", "");
    }
    for (int run = 0; run < RUNS; run++) {
        for (int procs = 1; procs <= SCALE_PROCS; procs++) {
            double rate = scale_step(procs);

            snprintf(what, sizeof(what), "scale.%d", procs);
            bench_sample(key(what), "calls/s", rate);
        }
    }
}
