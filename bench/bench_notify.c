/* SPDX-License-Identifier: MIT */
/*
 * vkmt-bench's notification section (bench_vm.c lists them all): the time
 * from a host trim request (QMP qom-set trim-notify, sent through the VM
 * runner's console service, docs/VM.md) to the guest's trim callback
 * (D3DKMTRegisterTrimNotification), over the transport VKMT_TRANSPORT
 * picks. The clock starts as the request leaves the guest, so the figure
 * includes the console's way to QEMU as well as the device's event, its
 * interrupt (kmd) or the library's look at the ring (pci) and the thread
 * switch to the callback.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_vm.h"

static atomic_uint calls;
static double called_ns;

static VOID on_trim(D3DKMT_TRIMNOTIFICATION *n)
{
    if (n->Flags.TrimToBudget) {
        called_ns = bench_now_ns();
        atomic_fetch_add(&calls, 1);
    }
}

void section_notify(void)
{
    D3DKMT_ADAPTERINFO info;
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &info };
    D3DKMT_REGISTERTRIMNOTIFICATION reg = { .hDevice = bench.dev, .Callback = on_trim };
    D3DKMT_UNREGISTERTRIMNOTIFICATION unreg = { 0 };
    D3DKMT_HANDLE h;
    NTSTATUS st;

    if ((st = D3DKMTEnumAdapters2(&e))) {
        bench_die("D3DKMTEnumAdapters2", st);
    }
    reg.AdapterLuid = info.AdapterLuid;
    if ((st = D3DKMTRegisterTrimNotification(&reg))) {
        bench_die("D3DKMTRegisterTrimNotification", st);
    }
    bench_create(1, 4096, &h); /* something to ask for */
    for (unsigned run = 0; run < RUNS; run++) {
        double t0 = bench_now_ns();

        if (!strstr(host("qmp {\"execute\": \"qom-set\", \"arguments\": {\"path\": "
                         "\"/machine/peripheral/vk\", \"property\": \"trim-notify\", "
                         "\"value\": 4096}}"),
                    "\"return\"")) {
            fatal("qom-set trim-notify %s failed", "4096");
        }
        for (int ms = 0; atomic_load(&calls) <= run; ms++) {
            if (ms == 30000) {
                fatal("no trim callback within %s", "30 s");
            }
            nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
        }
        bench_sample("vm.notify.trim_callback", "ns", called_ns - t0);
    }
    unreg.Handle = reg.Handle;
    if ((st = D3DKMTUnregisterTrimNotification(&unreg))) {
        bench_die("D3DKMTUnregisterTrimNotification", st);
    }
    bench_destroy(1, &h);
}
