/* SPDX-License-Identifier: MIT */
/*
 * Conformance: per-process figures and budgets (protocol 1.3,
 * vkmt_query_queue_stats). A process sees its own committed, offered and
 * discarded bytes under its queue's number; a budget the host sets for
 * that queue is what QueryVideoMemoryInfo reports, and takes the process's
 * own offered content; every process's figures are refused to an
 * unprivileged process over the kernel driver. The host is played through
 * the loopback library's vkmt_loopback_host, or inside the test VM through
 * the console's qmp service (docs/VM.md).
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define PAGE 4096u

/* Gives queue @q a budget of @bytes as the host would (queue-budget); 0 or -1. */
static int host_queue_budget(UINT q, UINT64 bytes)
{
    const char *t = vkmt_transport_name();
    char prop[32], reply[4096];

    if (t && !strcmp(t, "loopback")) {
        void *so = dlopen("libvkmt-loopback.so.1", RTLD_NOW | RTLD_NOLOAD);
        int (*host)(const char *, uint64_t) =
            so ? (int (*)(const char *, uint64_t))dlsym(so, "vkmt_loopback_host") : NULL;

        snprintf(prop, sizeof(prop), "queue-budget:%u", q);
        return host && host(prop, bytes) == 0 ? 0 : -1;
    }
    printf("vkmt-vm: qmp {\"execute\":\"qom-set\",\"arguments\":{\"path\":"
           "\"/machine/peripheral/vk\",\"property\":\"queue-budget\",\"value\":\"%u:%" PRIu64
           "\"}}\n",
           q, (uint64_t)bytes);
    fflush(stdout);
    return fgets(reply, sizeof(reply), stdin) && strstr(reply, "\"return\"") ? 0 : -1;
}

static VKMT_QUEUE_STATS mine(struct conf *c)
{
    VKMT_QUEUE_STATS q;

    memset(&q, 0, sizeof(q));
    CHECK_ST(vkmt_query_queue_stats(c->adapter, FALSE, &q, 1, NULL), STATUS_SUCCESS);
    return q;
}

static UINT64 local_budget(struct conf *c)
{
    D3DKMT_QUERYVIDEOMEMORYINFO info = { .hAdapter = c->adapter };

    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&info), STATUS_SUCCESS);
    return info.Budget;
}

static void a_process_sees_its_own_figures(void)
{
    struct conf c;
    D3DKMT_HANDLE h[3];
    VKMT_QUEUE_STATS q;
    UINT count = 0;

    if (!conf_open(&c)) {
        return;
    }
    q = mine(&c);
    CHECK(q.Caller);
    CHECK_EQ(q.CommittedBytes, 0);
    CHECK_ST(conf_create(&c, 3, 3 * PAGE - 100, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[2], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    q = mine(&c);
    CHECK_EQ(q.CommittedBytes, 9 * PAGE);
    CHECK_EQ(q.OfferedBytes, 3 * PAGE);
    CHECK_EQ(q.ResidentBytes, 6 * PAGE);
    CHECK_EQ(q.CommittedBytes, conf_usage(&c));
    CHECK_EQ(q.BudgetBytes, 0);
    CHECK_EQ(q.LocalBudgetBytes, local_budget(&c));
    CHECK_EQ(q.DiscardedBytes, 0);
    /* Asking for one's own with room for more still gives one. */
    CHECK_ST(vkmt_query_queue_stats(c.adapter, FALSE, &q, 4, &count), STATUS_SUCCESS);
    CHECK_EQ(count, 1);
    CHECK(q.Caller);
    CHECK_ST(vkmt_query_queue_stats(c.adapter, FALSE, NULL, 1, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(vkmt_query_queue_stats(c.adapter, FALSE, &q, 0, NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(vkmt_query_queue_stats(0, FALSE, &q, 1, NULL), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

static void every_process_needs_privilege_over_the_driver(void)
{
    const char *t = vkmt_transport_name();
    VKMT_QUEUE_STATS q[64];
    UINT count = 0, callers = 0;
    struct conf c;
    NTSTATUS st;

    if (!conf_open(&c)) {
        return;
    }
    st = vkmt_query_queue_stats(c.adapter, TRUE, q, 64, &count);
    if (t && !strcmp(t, "kmd") && geteuid() != 0) {
        CHECK_ST(st, STATUS_ACCESS_DENIED);
        conf_close(&c);
        return;
    }
    CHECK_ST(st, STATUS_SUCCESS);
    CHECK(count >= 1 && count <= 64);
    for (UINT i = 0; i < count && i < 64; i++) {
        callers += q[i].Caller;
        CHECK(i == 0 || q[i].Queue > q[i - 1].Queue);
    }
    CHECK_EQ(callers, 1);
    conf_close(&c);
}

static void a_host_budget_squeezes_this_process_only(void)
{
    struct conf c;
    D3DKMT_HANDLE h[4];
    D3DDDI_RECLAIM_RESULT r[2];
    VKMT_QUEUE_STATS q;
    UINT64 device_budget;

    if (!conf_open(&c)) {
        return;
    }
    device_budget = local_budget(&c);
    CHECK_ST(conf_create(&c, 4, PAGE, h), STATUS_SUCCESS);
    conf_fill(&c, h[0], PAGE, 5);
    CHECK_ST(conf_offer(&c, &h[2], 2, D3DKMT_OFFER_PRIORITY_HIGH, 0), STATUS_SUCCESS);
    q = mine(&c);
    /* Two pages: the offered two go, the resident two stay. */
    CHECK_EQ(host_queue_budget(q.Queue, 2 * PAGE), 0);
    q = mine(&c);
    CHECK_EQ(q.BudgetBytes, 2 * PAGE);
    CHECK_EQ(q.LocalBudgetBytes, 2 * PAGE);
    CHECK_EQ(q.CommittedBytes, 2 * PAGE);
    CHECK_EQ(q.DiscardedBytes, 2 * PAGE);
    CHECK_EQ(q.OfferedBytes, 0);
    CHECK_EQ(local_budget(&c), 2 * PAGE);
    CHECK_EQ(conf_content(&c, h[0], PAGE, 5), 1);
    /* Lifted, the device's budget is back; the offers were lost. */
    CHECK_EQ(host_queue_budget(q.Queue, 0), 0);
    CHECK_EQ(local_budget(&c), device_budget);
    CHECK_ST(conf_reclaim2(&c, &h[2], 2, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_DISCARDED);
    conf_close(&c);
}

const struct test conf_quota_tests[] = {
    TEST(a_process_sees_its_own_figures),
    TEST(every_process_needs_privilege_over_the_driver),
    TEST(a_host_budget_squeezes_this_process_only),
};
CONF_COUNT(conf_quota_tests);
