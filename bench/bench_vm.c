/* SPDX-License-Identifier: MIT */
/*
 * vkmt-bench: the in-VM half of make bench (docs/BENCH.md), a static guest
 * program. Each section named on the command line runs RUNS times and prints
 * one sample line per run and figure ("vkmt-bench: KEY UNIT VALUE"): the
 * median of that run's individually timed operations, less the clock's own
 * cost (MMIO reads, too short to time one by one: the median of chunks of
 * CHUNK reads). Medians keep what the host's other load does to a few
 * operations (preemption) out of the figures:
 *
 *   mmio    a bare register read on vkmt (the MMIO round trip)
 *   edu     a command on QEMU's edu device: write the argument to the
 *           factorial register (which starts the computation), poll the
 *           status register until the device is done
 *   calls   D3DKMTQueryVideoMemoryInfo (a command with no handle array),
 *           then D3DKMTOfferAllocations, D3DKMTReclaimAllocations and
 *           D3DKMTReclaimAllocations2 over 4 KiB allocations, batches of 1,
 *           64, 1024 and 10240 handles (ns per call)
 *   pair    D3DKMTReclaimAllocations2 of one allocation against the bare
 *           register read, alternating in chunks: their ratio per run
 *   create  D3DKMTCreateAllocation2 + D3DKMTDestroyAllocation2 of one 64x64
 *           32-bit allocation (16 KiB)
 *   gpu     the same size on virtio-gpu through its DRM driver: resource
 *           create + wait + GEM close (/dev/dri/card0)
 *   trim    host memory the aperture gives back when the host trims offered
 *           content: asks the VM runner for the aperture file's allocated
 *           bytes before and after a trim over QMP (docs/VM.md)
 *
 * and, in bench_kmd.c, what compares the transports (figures named by the
 * transport in use, "vm.kmd." or "vm.pci."):
 *
 *   nop     VKMT_KMD_IOC_NOP on /dev/vkmt0: one crossing into the guest
 *           kernel driver and back
 *   rtt     D3DKMTQueryVideoMemoryInfo and D3DKMTReclaimAllocations2 of one
 *           allocation over the transport in use
 *   resident D3DKMTMakeResident and D3DKMTEvict of 1 and 1024 4 KiB
 *           allocations, each call moving every one between the device's
 *           segments (it needs a non-local segment)
 *   wait    CPU time of a thread waiting ~10 ms for a completion that the
 *           device holds back (x-deaf set over QMP, cleared 10 ms later)
 *   scale   1 to 4 processes, each its own session (its own queue), 64-handle
 *           offers and reclaims for a fixed time: calls per second
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_vm.h"
#include "vkmt_internal.h"
#include "vkmt_proto.h"

#define CHUNK 25
#define TILE_BYTES (64u * 64u * 4u)

/* QEMU's edu device: PCI identity and BAR 0 registers (docs/specs/edu.rst). */
#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_REG_FACTORIAL 0x08
#define EDU_REG_STATUS 0x20
#define EDU_STATUS_COMPUTING 0x1u

/*
 * The Linux virtio-gpu DRM interface (uapi drm.h, virtgpu_drm.h): the
 * structures and ioctl numbers this benchmark uses, declared here because the
 * build machine need not have the kernel's DRM headers.
 */
struct virtgpu_resource_create {
    uint32_t target, format, bind, width, height, depth, array_size, last_level, nr_samples, flags,
        bo_handle, res_handle, size, stride;
};
struct virtgpu_wait {
    uint32_t handle, flags;
};
struct gem_close {
    uint32_t handle, pad;
};
#define DRM_IOCTL_BASE 'd'
#define DRM_COMMAND_BASE 0x40
#define IOCTL_GEM_CLOSE _IOW(DRM_IOCTL_BASE, 0x09, struct gem_close)
#define IOCTL_VIRTGPU_RESOURCE_CREATE                                                              \
    _IOWR(DRM_IOCTL_BASE, DRM_COMMAND_BASE + 0x04, struct virtgpu_resource_create)
#define IOCTL_VIRTGPU_WAIT _IOWR(DRM_IOCTL_BASE, DRM_COMMAND_BASE + 0x08, struct virtgpu_wait)
#define PIPE_TEXTURE_2D 2
#define VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM 1
#define VIRGL_BIND_RENDER_TARGET (1u << 1)

double clock_ns;

double *timings(unsigned n)
{
    double *v = calloc(n, sizeof(*v));

    if (!v) {
        bench_die("calloc", STATUS_NO_MEMORY);
    }
    return v;
}

double since(double t0)
{
    return bench_now_ns() - t0 - clock_ns;
}

double timed_query(void)
{
    D3DKMT_QUERYVIDEOMEMORYINFO q = { .hAdapter = bench.adapter };
    double t0 = bench_now_ns();
    NTSTATUS st = D3DKMTQueryVideoMemoryInfo(&q);

    if (st) {
        bench_die("D3DKMTQueryVideoMemoryInfo", st);
    }
    return since(t0);
}

double offer_reclaim2(struct bench_round *r)
{
    NTSTATUS st;
    double t0;

    if ((st = D3DKMTOfferAllocations(&r->offer))) {
        bench_die("D3DKMTOfferAllocations", st);
    }
    t0 = bench_now_ns();
    if ((st = D3DKMTReclaimAllocations2(&r->reclaim2)) || r->results[0]) {
        bench_die("D3DKMTReclaimAllocations2", st);
    }
    return since(t0);
}

_Noreturn void fatal(const char *fmt, const char *arg)
{
    printf("vkmt-bench: error: ");
    printf(fmt, arg);
    printf("\n");
    fflush(stdout);
    exit(1);
}

/* ---- mmio ---------------------------------------------------------------- */

/* The first vkmt device's registers, mapped without claiming a queue. */
static struct vkmt_transport *raw_device(void)
{
    const struct vkmt_transport_ops *ops = vkmt_transport_get();
    struct vkmt_transport *t;

    if (!ops || ops->count() == 0 || ops->open(0, &t) < 0) {
        fatal("no vkmt device (transport %s)", ops ? ops->name : "none");
    }
    return t;
}

/* Nanoseconds per bare register read, over one chunk of reads. */
static double mmio_chunk(struct vkmt_transport *t)
{
    volatile uint32_t sink = 0;
    double t0 = bench_now_ns();

    for (unsigned i = 0; i < CHUNK; i++) {
        sink += t->ops->reg_read(t, VKMT_REG(magic));
    }
    return since(t0) / CHUNK;
}

static void section_mmio(void)
{
    struct vkmt_transport *t = raw_device();
    const unsigned n = 800;
    double *v = timings(n);

    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            v[i] = mmio_chunk(t);
        }
        bench_sample("vm.mmio_read", "ns", bench_median(v, n));
    }
    free(v);
    t->ops->close(t);
}

/*
 * The single-allocation reclaim round trip over the MMIO round trip, both
 * measured in alternating chunks, so that a slow phase of the host (other
 * load, frequency) weighs on both alike. A run's value is the median of its
 * chunks' ratios: a chunk that the host preempted does not sway it.
 */
static void section_pair(void)
{
    struct vkmt_transport *t = raw_device();
    struct bench_round one;
    enum { CHUNKS = 41 };
    double ratio[CHUNKS];

    bench_round_init(&one, 1);
    for (int run = 0; run < RUNS; run++) {
        for (unsigned c = 0; c < CHUNKS; c++) {
            double mmio = mmio_chunk(t), reclaim = 0;

            for (unsigned i = 0; i < CHUNK; i++) {
                reclaim += offer_reclaim2(&one);
            }
            ratio[c] = reclaim / CHUNK / mmio;
        }
        bench_sample("vm.reclaim2_per_mmio", "x", bench_median(ratio, CHUNKS));
    }
    bench_round_fini(&one);
    t->ops->close(t);
}

/* ---- edu ----------------------------------------------------------------- */

static unsigned read_hex(const char *dir, const char *file)
{
    char path[512], buf[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if ((f = fopen(path, "r"))) {
        if (!fgets(buf, sizeof(buf), f)) {
            buf[0] = 0;
        }
        fclose(f);
    }
    return (unsigned)strtoul(buf, NULL, 16);
}

/* Maps BAR @bar of the first PCI function @vendor:@device (sysfs, root). */
static volatile uint32_t *map_pci_bar(unsigned vendor, unsigned device, int bar, size_t size)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;
    char dir[512], path[600];
    void *p = MAP_FAILED;

    while (d && (e = readdir(d))) {
        int fd;

        snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", e->d_name);
        if (e->d_name[0] == '.' || read_hex(dir, "vendor") != vendor ||
            read_hex(dir, "device") != device) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/enable", dir);
        if ((fd = open(path, O_WRONLY)) >= 0) {
            /* Already enabled answers EIO or similar: harmless. */
            if (write(fd, "1", 1) < 0) {
                errno = 0;
            }
            close(fd);
        }
        snprintf(path, sizeof(path), "%s/resource%d", dir, bar);
        if ((fd = open(path, O_RDWR | O_SYNC)) >= 0) {
            p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
        }
        break;
    }
    if (d) {
        closedir(d);
    }
    return p == MAP_FAILED ? NULL : p;
}

static void section_edu(void)
{
    volatile uint32_t *edu = map_pci_bar(EDU_VENDOR, EDU_DEVICE, 0, 4096);
    const unsigned n = 300;
    double *v = timings(n);

    if (!edu) {
        fatal("no edu device (%s)", "-device edu");
    }
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            double t0 = bench_now_ns();

            edu[EDU_REG_FACTORIAL / 4] = 5;
            while (edu[EDU_REG_STATUS / 4] & EDU_STATUS_COMPUTING) {
            }
            v[i] = since(t0);
            if (edu[EDU_REG_FACTORIAL / 4] != 120) {
                fatal("edu computed a wrong factorial%s", "");
            }
        }
        bench_sample("vm.edu_cmd", "ns", bench_median(v, n));
    }
    free(v);
}

/* ---- calls --------------------------------------------------------------- */

static void calls_batch(UINT n)
{
    unsigned reps = n >= 10240 ? 3 : n >= 1024 ? 11 : n >= 64 ? 101 : 1001;
    double *offer = timings(2 * reps), *reclaim = timings(reps), *reclaim2 = timings(reps);
    struct bench_round r;
    char key[64];

    bench_round_init(&r, n);
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < reps; i++) {
            double t[4];

            bench_round_run(&r, t);
            offer[2 * i] = t[0] - clock_ns;
            reclaim[i] = t[1] - clock_ns;
            offer[2 * i + 1] = t[2] - clock_ns;
            reclaim2[i] = t[3] - clock_ns;
        }
        snprintf(key, sizeof(key), "vm.offer.%u", n);
        bench_sample(key, "ns", bench_median(offer, 2 * reps));
        snprintf(key, sizeof(key), "vm.reclaim.%u", n);
        bench_sample(key, "ns", bench_median(reclaim, reps));
        snprintf(key, sizeof(key), "vm.reclaim2.%u", n);
        bench_sample(key, "ns", bench_median(reclaim2, reps));
    }
    bench_round_fini(&r);
    free(offer);
    free(reclaim);
    free(reclaim2);
}

static void section_calls(void)
{
    static const UINT batches[] = { 1, 64, 1024, 10240 };
    const unsigned n = 1000;
    double *v = timings(n);

    /* A command with no handle array: the bare command round trip. */
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            v[i] = timed_query();
        }
        bench_sample("vm.query", "ns", bench_median(v, n));
    }
    free(v);
    for (unsigned i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        calls_batch(batches[i]);
    }
}

/* ---- create / gpu -------------------------------------------------------- */

static void section_create(void)
{
    const unsigned n = 300;
    double *v = timings(n);

    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            double t0 = bench_now_ns();
            D3DKMT_HANDLE h;

            bench_create(1, TILE_BYTES, &h);
            bench_destroy(1, &h);
            v[i] = since(t0);
        }
        bench_sample("vm.create_destroy", "ns", bench_median(v, n));
    }
    free(v);
}

static void gpu_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
    while (ioctl(fd, req, arg) < 0) {
        if (errno != EINTR && errno != EAGAIN) {
            fatal("virtio-gpu %s failed", what);
        }
    }
}

static void section_gpu(void)
{
    const unsigned n = 100;
    double *total = timings(n), *create = timings(n), *wait = timings(n), *close_ns = timings(n);
    int fd = -1;

    /* The driver's modules were loaded just before: wait for the node. */
    for (int i = 0; i < 100 && (fd = open("/dev/dri/card0", O_RDWR)) < 0; i++) {
        usleep(50000);
    }
    if (fd < 0) {
        fatal("no %s (modprobe virtio_pci virtio-gpu, -device virtio-gpu-pci)", "/dev/dri/card0");
    }
    for (int run = 0; run < RUNS; run++) {
        for (unsigned i = 0; i < n; i++) {
            struct virtgpu_resource_create rc = { .target = PIPE_TEXTURE_2D,
                                                  .format = VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM,
                                                  .bind = VIRGL_BIND_RENDER_TARGET,
                                                  .width = 64,
                                                  .height = 64,
                                                  .depth = 1,
                                                  .array_size = 1,
                                                  .size = TILE_BYTES,
                                                  .stride = 64 * 4 };
            struct virtgpu_wait w = { 0 };
            struct gem_close c = { 0 };
            double t0, t1, t2;

            t0 = bench_now_ns();
            gpu_ioctl(fd, IOCTL_VIRTGPU_RESOURCE_CREATE, &rc, "resource create");
            t1 = bench_now_ns();
            w.handle = c.handle = rc.bo_handle;
            gpu_ioctl(fd, IOCTL_VIRTGPU_WAIT, &w, "wait");
            t2 = bench_now_ns();
            gpu_ioctl(fd, IOCTL_GEM_CLOSE, &c, "GEM close");
            close_ns[i] = since(t2);
            total[i] = since(t0);
            create[i] = t1 - t0 - clock_ns;
            wait[i] = t2 - t1 - clock_ns;
        }
        /* Each figure its own median: the parts need not add up to the whole. */
        bench_sample("vm.gpu_create_wait_close", "ns", bench_median(total, n));
        bench_sample("vm.gpu_create", "ns", bench_median(create, n));
        bench_sample("vm.gpu_wait", "ns", bench_median(wait, n));
        bench_sample("vm.gpu_close", "ns", bench_median(close_ns, n));
    }
    free(total);
    free(create);
    free(wait);
    free(close_ns);
    close(fd);
}

/* ---- trim ---------------------------------------------------------------- */

const char *host(const char *request)
{
    static char reply[4096];

    printf("vkmt-vm: %s\n", request);
    fflush(stdout);
    if (!fgets(reply, sizeof(reply), stdin)) {
        fatal("no answer from the host to '%s' (run under scripts/vm-run)", request);
    }
    reply[strcspn(reply, "\r\n")] = 0;
    return reply;
}

static void section_trim(void)
{
    enum { N = 32, SIZE = 1u << 20 };
    D3DKMT_HANDLE h[N];
    D3DDDI_RECLAIM_RESULT results[N];
    char request[256];

    for (int run = 0; run < RUNS; run++) {
        D3DKMT_OFFERALLOCATIONS o = { .hDevice = bench.dev,
                                      .NumAllocations = N,
                                      .HandleList = h,
                                      .Priority = D3DKMT_OFFER_PRIORITY_LOW };
        D3DKMT_RECLAIMALLOCATIONS2 r = {
            .hPagingQueue = bench.pq, .NumAllocations = N, .HandleList = h, .pResults = results
        };
        unsigned long long before, after;
        NTSTATUS st;

        bench_create(N, SIZE, h);
        for (unsigned i = 0; i < N; i++) {
            D3DKMT_LOCK2 l = { .hDevice = bench.dev, .hAllocation = h[i] };
            D3DKMT_UNLOCK2 u = { .hDevice = bench.dev, .hAllocation = h[i] };

            if ((st = D3DKMTLock2(&l)) || (memset(l.pData, 0x5a, SIZE), 0) ||
                (st = D3DKMTUnlock2(&u))) {
                bench_die("D3DKMTLock2/Unlock2", st);
            }
        }
        if ((st = D3DKMTOfferAllocations(&o))) {
            bench_die("D3DKMTOfferAllocations", st);
        }
        before = strtoull(host("aperture-bytes"), NULL, 10);
        snprintf(request, sizeof(request),
                 "qmp {\"execute\": \"qom-set\", \"arguments\": {\"path\": "
                 "\"/machine/peripheral/vk\", \"property\": \"trim\", \"value\": %u}}",
                 N * SIZE);
        if (!strstr(host(request), "\"return\"")) {
            fatal("the host's trim failed%s", "");
        }
        after = strtoull(host("aperture-bytes"), NULL, 10);
        if ((st = D3DKMTReclaimAllocations2(&r))) {
            bench_die("D3DKMTReclaimAllocations2", st);
        }
        bench_destroy(N, h);
        /* Share of the offered bytes the host really got back. */
        bench_sample("vm.trim_returned", "%",
                     before > after ? 100.0 * (double)(before - after) / (N * SIZE) : 0);
    }
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*run)(void);
        int session;
    } sections[] = {
        { "mmio", section_mmio, 0 },     { "edu", section_edu, 0 },
        { "calls", section_calls, 1 },   { "pair", section_pair, 1 },
        { "create", section_create, 1 }, { "gpu", section_gpu, 0 },
        { "trim", section_trim, 1 },     { "nop", section_nop, 0 },
        { "rtt", section_rtt, 1 },       { "wait", section_wait, 1 },
        { "scale", section_scale, 0 },   { "migrate", section_migrate, 1 },
        { "notify", section_notify, 1 }, { "resident", section_resident, 1 },
    };
    unsigned nsec = sizeof(sections) / sizeof(sections[0]);

    if (argc < 2) {
        fprintf(
            stderr,
            "usage: vkmt-bench "
            "mmio|edu|calls|pair|create|gpu|trim|nop|rtt|wait|scale|migrate|notify|resident...\n");
        return 2;
    }
    clock_ns = bench_clock_cost();
    for (int a = 1; a < argc; a++) {
        unsigned s = 0;

        while (s < nsec && strcmp(argv[a], sections[s].name)) {
            s++;
        }
        if (s == nsec) {
            fprintf(stderr, "vkmt-bench: unknown section '%s'\n", argv[a]);
            return 2;
        }
        if (sections[s].session && !bench.dev) {
            bench_open();
        }
        sections[s].run();
    }
    return 0;
}
