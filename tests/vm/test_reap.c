/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test VM: a process holding a queue and allocations is
 * killed with SIGKILL, and the next process that opens the device gets the
 * queue and the memory back (libvkmt reaps queues of owners that are gone).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vkmt.h"

#define N 16

static D3DKMT_HANDLE open_adapter(void)
{
    D3DKMT_ADAPTERINFO info = { 0 };
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &info };

    CHECK_EQ(D3DKMTEnumAdapters2(&e), STATUS_SUCCESS);
    return info.hAdapter;
}

static void holder(int fd)
{
    D3DKMT_CREATEDEVICE cd = { .hAdapter = open_adapter() };
    VKMT_ALLOCATION_DESC desc = { .Size = 1 << 20 };
    D3DDDI_ALLOCATIONINFO2 info[N];
    D3DKMT_CREATEALLOCATION ca = { .NumAllocations = N, .pAllocationInfo2 = info };

    memset(info, 0, sizeof(info));
    for (int i = 0; i < N; i++) {
        info[i].pPrivateDriverData = &desc;
        info[i].PrivateDriverDataSize = sizeof(desc);
    }
    if (D3DKMTCreateDevice(&cd) != STATUS_SUCCESS) {
        _exit(1);
    }
    ca.hDevice = cd.hDevice;
    if (D3DKMTCreateAllocation2(&ca) != STATUS_SUCCESS || write(fd, "r", 1) != 1) {
        _exit(1);
    }
    for (;;) {
        pause();
    }
}

static void killed_holders_queue_is_recovered(void)
{
    VKMT_DEVICE_STATS before, after;
    D3DKMT_CLOSEADAPTER ca;
    D3DKMT_HANDLE a;
    int fds[2];
    char c = 0;
    pid_t child;

    CHECK_EQ(pipe(fds), 0);
    child = fork();
    if (child == 0) {
        holder(fds[1]);
    }
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(c, 'r');
    a = open_adapter();
    CHECK_EQ(vkmt_query_stats(a, &before), STATUS_SUCCESS);
    CHECK_EQ(before.Allocations, N);
    CHECK_EQ(before.QueuesClaimed, 2);
    ca.hAdapter = a;
    CHECK_EQ(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);

    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);

    /* Opening again reaps the dead owner's queue. */
    a = open_adapter();
    CHECK_EQ(vkmt_query_stats(a, &after), STATUS_SUCCESS);
    CHECK_EQ(after.Allocations, 0);
    CHECK_EQ(after.CommittedBytes, 0);
    CHECK_EQ(after.QueuesClaimed, 1);
    ca.hAdapter = a;
    CHECK_EQ(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);
}

static const struct test tests[] = {
    TEST(killed_holders_queue_is_recovered),
};

int main(void)
{
    return harness_run("test_reap", tests, sizeof(tests) / sizeof(tests[0]));
}
