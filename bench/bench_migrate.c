/* SPDX-License-Identifier: MIT */
/*
 * vkmt-bench's migration section (bench_vm.c lists them all): a guest
 * holding 64 MiB of allocations with content, half of them offered, is
 * migrated into a file with the device's migrate-offered at keep and at
 * discard (the stream's bytes each way), then live into a second QEMU
 * (QEMU's downtime and total time), through the VM runner's services
 * (docs/VM.md). Run only where the device migrates (backend=mem).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_vm.h"

#define MIG_N 64
#define MIG_SIZE (1u << 20)

static void set_offered(const char *how)
{
    char request[256];

    snprintf(request, sizeof(request),
             "qmp {\"execute\": \"qom-set\", \"arguments\": {\"path\": "
             "\"/machine/peripheral/vk\", \"property\": \"migrate-offered\", \"value\": \"%s\"}}",
             how);
    if (!strstr(host(request), "\"return\"")) {
        fatal("qom-set migrate-offered %s failed", how);
    }
}

/* The stream's bytes of a migration into a file (the guest then goes on). */
static double stream_bytes(const char *offered)
{
    const char *r;

    set_offered(offered);
    r = host("migrate-file");
    if (strncmp(r, "error", 5) == 0) {
        fatal("migrate-file: %s", r);
    }
    return strtod(r, NULL);
}

void section_migrate(void)
{
    D3DKMT_HANDLE h[MIG_N];
    D3DDDI_RECLAIM_RESULT res[MIG_N / 2];

    for (int run = 0; run < RUNS; run++) {
        D3DKMT_OFFERALLOCATIONS o = { .hDevice = bench.dev,
                                      .NumAllocations = MIG_N / 2,
                                      .HandleList = h + MIG_N / 2,
                                      .Priority = D3DKMT_OFFER_PRIORITY_LOW };
        D3DKMT_RECLAIMALLOCATIONS2 r = { .hPagingQueue = bench.pq,
                                         .NumAllocations = MIG_N / 2,
                                         .HandleList = h + MIG_N / 2,
                                         .pResults = res };
        unsigned long long downtime = 0, total = 0;
        const char *answer;
        NTSTATUS st;

        bench_create(MIG_N, MIG_SIZE, h);
        for (unsigned i = 0; i < MIG_N; i++) {
            D3DKMT_LOCK2 l = { .hDevice = bench.dev, .hAllocation = h[i] };
            D3DKMT_UNLOCK2 u = { .hDevice = bench.dev, .hAllocation = h[i] };

            if ((st = D3DKMTLock2(&l))) {
                bench_die("D3DKMTLock2", st);
            }
            /* Content that does not compress to zero pages. */
            for (unsigned w = 0; w < MIG_SIZE / 8; w++) {
                ((unsigned long long *)l.pData)[w] = (i + 1ull) * 0x9e3779b97f4a7c15ull ^ w;
            }
            if ((st = D3DKMTUnlock2(&u))) {
                bench_die("D3DKMTUnlock2", st);
            }
        }
        if ((st = D3DKMTOfferAllocations(&o))) {
            bench_die("D3DKMTOfferAllocations", st);
        }
        bench_sample("vm.migrate.stream_keep", "B", stream_bytes("keep"));
        bench_sample("vm.migrate.stream_discard", "B", stream_bytes("discard"));
        set_offered("keep");
        if ((st = D3DKMTReclaimAllocations2(&r))) {
            bench_die("D3DKMTReclaimAllocations2", st);
        }
        answer = host("migrate-start");
        if (strcmp(answer, "started") != 0) {
            fatal("migrate-start: %s", answer);
        }
        answer = host("migrate-wait");
        if (sscanf(answer, "done downtime=%llu total=%llu", &downtime, &total) != 2) {
            fatal("migrate-wait: %s", answer);
        }
        bench_sample("vm.migrate.downtime", "ns", downtime * 1e6);
        bench_sample("vm.migrate.total", "ns", total * 1e6);
        bench_destroy(MIG_N, h);
    }
}
