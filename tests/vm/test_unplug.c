/* SPDX-License-Identifier: MIT */
/*
 * Runs inside a test VM whose device can be hot-unplugged (scripts/vm-run
 * --hotplug): a process holding a queue, allocations with content and a
 * command in flight (the device is made deaf, so the command waits) and a
 * locked allocation's mapping sees the host unplug the device over QMP. The
 * waiting call and every later one return STATUS_DEVICE_REMOVED, the host
 * holds no aperture memory any more, over the kernel driver the mapping is
 * gone (a touch faults instead of reaching memory), and a device plugged
 * again in its place works from scratch. Over the
 * transport libvkmt picks (VKMT_TRANSPORT): the suite reports as
 * test_unplug_pci or test_unplug_kmd.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vkmt.h"
#include "vm_host.h"

#define N 4
#define SIZE (256u << 10)
#define WAIT_TRIES 300 /* of 100 ms */

/* A QMP command: 1 when it answered "return". */
static int qmp(const char *json)
{
    return strstr(vm_host("qmp %s", json), "\"return\"") != NULL;
}

static int device_present(void)
{
    return qmp("{\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/vk\","
               "\"property\":\"type\"}}");
}

static unsigned long long aperture_bytes(void)
{
    return strtoull(vm_host("aperture-bytes"), NULL, 10);
}

struct session {
    D3DKMT_HANDLE adapter, dev, h[N];
};

/* An adapter, a device and N allocations filled with @fill; 0 on failure. */
static int open_session(struct session *s, unsigned char fill)
{
    D3DKMT_ADAPTERINFO info = { 0 };
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 1, .pAdapters = &info };
    D3DKMT_CREATEDEVICE cd = { 0 };
    VKMT_ALLOCATION_DESC desc = { .Size = SIZE };
    D3DDDI_ALLOCATIONINFO2 ai[N];
    D3DKMT_CREATEALLOCATION ca = { .NumAllocations = N, .pAllocationInfo2 = ai };

    memset(s, 0, sizeof(*s));
    memset(ai, 0, sizeof(ai));
    if (D3DKMTEnumAdapters2(&e) != STATUS_SUCCESS || e.NumAdapters < 1) {
        return 0;
    }
    s->adapter = info.hAdapter;
    cd.hAdapter = s->adapter;
    if (D3DKMTCreateDevice(&cd) != STATUS_SUCCESS) {
        return 0;
    }
    s->dev = cd.hDevice;
    for (int i = 0; i < N; i++) {
        ai[i].pPrivateDriverData = &desc;
        ai[i].PrivateDriverDataSize = sizeof(desc);
    }
    ca.hDevice = s->dev;
    CHECK_EQ(D3DKMTCreateAllocation2(&ca), STATUS_SUCCESS);
    for (int i = 0; i < N; i++) {
        D3DKMT_LOCK2 lk = { .hDevice = s->dev, .hAllocation = ai[i].hAllocation };
        D3DKMT_UNLOCK2 ul = { .hDevice = s->dev, .hAllocation = ai[i].hAllocation };

        s->h[i] = ai[i].hAllocation;
        CHECK_EQ(D3DKMTLock2(&lk), STATUS_SUCCESS);
        CHECK(lk.pData != NULL);
        if (lk.pData) {
            for (size_t j = 0; j < SIZE; j++) {
                /* A new device's allocations read zero before the fill. */
                CHECK_EQ(((unsigned char *)lk.pData)[j], 0);
                if (((unsigned char *)lk.pData)[j]) {
                    break;
                }
            }
            memset(lk.pData, fill, SIZE);
        }
        CHECK_EQ(D3DKMTUnlock2(&ul), STATUS_SUCCESS);
    }
    return 1;
}

static NTSTATUS offer(struct session *s, UINT n)
{
    D3DKMT_OFFERALLOCATIONS o = { .hDevice = s->dev,
                                  .HandleList = s->h,
                                  .NumAllocations = n,
                                  .Priority = D3DKMT_OFFER_PRIORITY_LOW };

    return D3DKMTOfferAllocations(&o);
}

/* The command left in flight: an offer the deaf device never answers (of
 * every allocation but the first, which stays locked). */
static void *in_flight(void *arg)
{
    struct session *s = arg;
    D3DKMT_OFFERALLOCATIONS o = { .hDevice = s->dev,
                                  .HandleList = s->h + 1,
                                  .NumAllocations = N - 1,
                                  .Priority = D3DKMT_OFFER_PRIORITY_LOW };

    return (void *)(uintptr_t)D3DKMTOfferAllocations(&o);
}

/* The signal that ended a child reading @p, or 0 when the read worked. */
static int touch(const volatile unsigned char *p)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        _exit(p[0] == 0x5a ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* Waits up to WAIT_TRIES tenths of a second for device_present() == @want. */
static int wait_present(int want)
{
    for (int i = 0; i < WAIT_TRIES; i++) {
        if (device_present() == want) {
            return 1;
        }
        usleep(100000);
    }
    return 0;
}

/* The device's non-local segment size (a property the VM runner may have
 * set), so that the device plugged again is the one the VM started with
 * (a later migration needs the same device on both sides). */
static unsigned long long nonlocal_size(void)
{
    const char *v =
        vm_host("qmp {\"execute\":\"qom-get\",\"arguments\":{\"path\":\"/machine/peripheral/vk\","
                "\"property\":\"nonlocal-size\"}}");

    v = strstr(v, "\"return\":");
    return v ? strtoull(v + 9, NULL, 10) : 0;
}

/* Plugs the device the VM had again: on the root port vm-run --hotplug
 * made, on the aperture file the host measures, with @nonlocal bytes of
 * non-local segment. */
static int plug_again(unsigned long long nonlocal)
{
    char json[256];

    snprintf(json, sizeof(json),
             "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"vkmt\",\"id\":\"vk\","
             "\"memdev\":\"ap\",\"bus\":\"rp\",\"nonlocal-size\":%llu}}",
             nonlocal);
    return qmp(json);
}

static void unplug_with_a_command_in_flight_then_plug_again(void)
{
    struct session s, again;
    D3DKMT_CLOSEADAPTER ca;
    pthread_t t;
    void *st;
    int ok = 0;

    D3DKMT_LOCK2 live;
    unsigned long long nonlocal = nonlocal_size();

    CHECK(open_session(&s, 0x5a));
    CHECK(aperture_bytes() >= (unsigned long long)N * SIZE);
    /* A mapping that stays live across the removal. */
    live = (D3DKMT_LOCK2){ .hDevice = s.dev, .hAllocation = s.h[0] };
    CHECK_EQ(D3DKMTLock2(&live), STATUS_SUCCESS);
    CHECK(live.pData && touch(live.pData) == 0);
    CHECK(qmp("{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral/vk\","
              "\"property\":\"x-deaf\",\"value\":true}}"));
    CHECK_EQ(pthread_create(&t, NULL, in_flight, &s), 0);
    usleep(200000); /* it rang and waits */
    CHECK(qmp("{\"execute\":\"device_del\",\"arguments\":{\"id\":\"vk\"}}"));
    CHECK(wait_present(0));
    CHECK_EQ(pthread_join(t, &st), 0);
    CHECK_EQ((NTSTATUS)(uintptr_t)st, STATUS_DEVICE_REMOVED);
    /* Every later call of the process, too. */
    CHECK_EQ(offer(&s, 1), STATUS_DEVICE_REMOVED);
    {
        D3DKMT_LOCK2 lk = { .hDevice = s.dev, .hAllocation = s.h[0] };

        CHECK_EQ(D3DKMTLock2(&lk), STATUS_DEVICE_REMOVED);
    }
    CHECK_EQ(aperture_bytes(), 0);
    if (live.pData && !strcmp(vkmt_transport_name(), "kmd")) {
        int sig = touch(live.pData);

        /* The driver took the mapping away when the device went. */
        CHECK(sig == SIGBUS || sig == SIGSEGV);
    }
    ca.hAdapter = s.adapter;
    D3DKMTCloseAdapter(&ca);

    CHECK(plug_again(nonlocal));
    for (int i = 0; i < WAIT_TRIES && !ok; i++) {
        ok = open_session(&again, 0xa5);
        if (!ok) {
            usleep(100000);
        }
    }
    CHECK(ok);
    if (ok) {
        CHECK_EQ(offer(&again, N), STATUS_SUCCESS);
        ca.hAdapter = again.adapter;
        CHECK_EQ(D3DKMTCloseAdapter(&ca), STATUS_SUCCESS);
    }
}

static const struct test tests[] = {
    TEST(unplug_with_a_command_in_flight_then_plug_again),
};

int main(void)
{
    const char *t = vkmt_transport_name();
    char suite[64];

    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(suite, sizeof(suite), "test_unplug_%s", t ? t : "none");
    return harness_run(suite, tests, sizeof(tests) / sizeof(tests[0]));
}
