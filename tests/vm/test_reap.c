/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test VM: a process holding a queue and allocations is
 * killed with SIGKILL, and the next process that opens the device gets the
 * queue and the memory back (libvkmt reaps queues of owners that are gone).
 * A live owner whose sh_owner names no process here (another PID namespace,
 * or a forged tag) keeps its queue.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vkmt.h"
#include "vkmt_proto.h"
#include "vkmt_shmem.h"

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

/* A child running holder(), started and ready: it holds a queue and N
 * allocations until killed. */
static pid_t start_holder(void)
{
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
    close(fds[0]);
    close(fds[1]);
    return child;
}

static void killed_holders_queue_is_recovered(void)
{
    VKMT_DEVICE_STATS before, after;
    D3DKMT_CLOSEADAPTER ca;
    D3DKMT_HANDLE a;
    pid_t child = start_holder();

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

/* The control memory (BAR 2) of the first vkmt device, mapped; NULL if none. */
static uint8_t *map_ctrl(size_t *size)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;
    uint8_t *p = NULL;

    while (d && !p && (e = readdir(d))) {
        char path[512], id[16] = "";
        struct stat st;
        FILE *f;
        int fd;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
        f = fopen(path, "r");
        if (!f) {
            continue;
        }
        if (!fgets(id, sizeof(id), f) || strtoul(id, NULL, 16) != VKMT_PCI_DEVICE_ID) {
            fclose(f);
            continue;
        }
        fclose(f);
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d", e->d_name,
                 VKMT_BAR_CTRL);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) == 0) {
            p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            *size = (size_t)st.st_size;
            p = p == MAP_FAILED ? NULL : p;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    if (d) {
        closedir(d);
    }
    return p;
}

/* Liveness is the queue's lock, not kill(sh_owner). */
static void a_live_owner_keeps_its_queue_whatever_sh_owner_says(void)
{
    VKMT_DEVICE_STATS st = { 0 };
    D3DKMT_CLOSEADAPTER ca;
    struct vkmt_queue_hdr *h;
    size_t size = 0, forged = 0;
    uint8_t *ctrl;
    pid_t child = start_holder();

    ctrl = map_ctrl(&size);
    CHECK(ctrl != NULL);
    /* The holder's tag as a process in another PID namespace shows, or as
     * anyone can forge it: a pid that is not one here. */
    for (size_t q = 0; ctrl && (q + 1) * VKMT_QUEUE_STRIDE <= size; q++) {
        h = (struct vkmt_queue_hdr *)(ctrl + q * VKMT_QUEUE_STRIDE);
        if (vkmt_sh_load(&h->sh_state) == VKMT_QSTATE_ACTIVE &&
            vkmt_sh_load(&h->sh_owner) == (uint32_t)child) {
            vkmt_sh_store(&h->sh_owner, 0x7ffffffeu);
            forged++;
        }
    }
    CHECK_EQ(forged, 1);
    ca.hAdapter = open_adapter(); /* reaps what looks dead */
    CHECK_EQ(vkmt_query_stats(ca.hAdapter, &st), STATUS_SUCCESS);
    CHECK_EQ(st.Allocations, N);
    CHECK_EQ(st.QueuesClaimed, 2);
    CHECK_EQ(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);
    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    ca.hAdapter = open_adapter();
    CHECK_EQ(vkmt_query_stats(ca.hAdapter, &st), STATUS_SUCCESS);
    CHECK_EQ(st.Allocations, 0);
    CHECK_EQ(st.QueuesClaimed, 1);
    CHECK_EQ(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);
    if (ctrl) {
        munmap(ctrl, size);
    }
}

static const struct test tests[] = {
    TEST(killed_holders_queue_is_recovered),
    TEST(a_live_owner_keeps_its_queue_whatever_sh_owner_says),
};

int main(void)
{
    return harness_run("test_reap", tests, sizeof(tests) / sizeof(tests[0]));
}
