/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test VM, as root: the host squeezes one guest process
 * through its queue's budget (the QOM property queue-budget, over the VM
 * runner's QMP service) while another keeps its own. Both see the
 * per-process figures (vkmt_query_queue_stats, what vkmtctl memory prints)
 * and the host sees them in queue-stats: the squeezed process loses its
 * offered content and nothing else, the other process loses nothing.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "vm_host.h"

#define SIZE (64u << 10)
#define N 4       /* the squeezed process's allocations */
#define OFFERED 2 /* its last OFFERED are offered */
#define MINE 2    /* the other process's allocations */

/* One byte over a pipe; 0 when none came. */
static char get(int fd)
{
    char b = 0;

    return read(fd, &b, 1) == 1 ? b : 0;
}

static void put(int fd, char b)
{
    if (write(fd, &b, 1) != 1) {
        _exit(3);
    }
}

/*
 * The process the host squeezes: N allocations with patterns, the last
 * OFFERED offered. Once the host has squeezed it and let go, the never
 * offered ones must hold their patterns and the offered ones come back
 * DISCARDED. Reports 'y' or 'n' to the test.
 */
static _Noreturn void squeezed(int to_test, int from_test)
{
    struct conf c;
    D3DKMT_HANDLE h[N];
    D3DDDI_RECLAIM_RESULT r[OFFERED];
    int ok;

    if (!conf_open(&c) || conf_create(&c, N, SIZE, h) != STATUS_SUCCESS) {
        _exit(2);
    }
    for (unsigned i = 0; i < N; i++) {
        conf_fill(&c, h[i], SIZE, 40 + i);
    }
    if (conf_offer(&c, h + N - OFFERED, OFFERED, D3DKMT_OFFER_PRIORITY_LOW, 0) != STATUS_SUCCESS) {
        _exit(2);
    }
    put(to_test, 'r');
    if (get(from_test) != 'g') {
        _exit(2);
    }
    ok = conf_reclaim2(&c, h + N - OFFERED, OFFERED, r) == STATUS_SUCCESS;
    for (unsigned i = 0; i < OFFERED; i++) {
        ok = ok && r[i] == D3DDDI_RECLAIM_RESULT_DISCARDED;
    }
    for (unsigned i = 0; i < N - OFFERED; i++) {
        ok = ok && conf_content(&c, h[i], SIZE, 40 + i) == 1;
    }
    put(to_test, ok ? 'y' : 'n');
    get(from_test);
    conf_close(&c);
    _exit(0);
}

/* The entry of @st (@n of them) for the calling process (@caller), or for
 * the other one; NULL when there is none. */
static const VKMT_QUEUE_STATS *find(const VKMT_QUEUE_STATS *st, UINT n, BOOL caller)
{
    for (UINT i = 0; i < n; i++) {
        if (st[i].Caller == caller) {
            return &st[i];
        }
    }
    return NULL;
}

static const char *qom(const char *verb, const char *property, const char *value)
{
    return vm_host("qmp {\"execute\":\"qom-%s\",\"arguments\":{\"path\":"
                   "\"/machine/peripheral/vk\",\"property\":\"%s\"%s%s%s}}",
                   verb, property, value ? ",\"value\":\"" : "", value ? value : "",
                   value ? "\"" : "");
}

/* Does the JSON @answer hold the member "@name": @value, however spaced? */
static int has_member(const char *answer, const char *name, unsigned value)
{
    char packed[4096], want[64];
    size_t n = 0;

    for (; *answer && n < sizeof(packed) - 1; answer++) {
        if (*answer != ' ') {
            packed[n++] = *answer;
        }
    }
    packed[n] = 0;
    snprintf(want, sizeof(want), "\"%s\":%u", name, value);
    return strstr(packed, want) != NULL;
}

static void one_process_is_squeezed_the_other_is_not(void)
{
    int to_test[2], from_test[2], wstatus = 0;
    VKMT_QUEUE_STATS st[8];
    const VKMT_QUEUE_STATS *it, *me;
    struct conf c;
    D3DKMT_HANDLE mine[MINE];
    UINT n = 0;
    char budget[64];
    pid_t pid;

    if (pipe(to_test) || pipe(from_test)) {
        CHECK(0);
        return;
    }
    pid = fork();
    if (pid == 0) {
        squeezed(to_test[1], from_test[0]);
    }
    CHECK_EQ(get(to_test[0]), 'r');
    if (!conf_open(&c)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    CHECK_ST(conf_create(&c, MINE, SIZE, mine), STATUS_SUCCESS);
    for (unsigned i = 0; i < MINE; i++) {
        conf_fill(&c, mine[i], SIZE, 60 + i);
    }

    CHECK_ST(vkmt_query_queue_stats(c.adapter, TRUE, st, 8, &n), STATUS_SUCCESS);
    CHECK_EQ(n, 2);
    it = find(st, n, FALSE);
    me = find(st, n, TRUE);
    CHECK(it && me);
    if (!it || !me) {
        goto out;
    }
    CHECK_EQ(it->CommittedBytes, N * SIZE);
    CHECK_EQ(it->OfferedBytes, OFFERED * SIZE);
    CHECK_EQ(it->BudgetBytes, 0);
    CHECK_EQ(me->CommittedBytes, MINE * SIZE);

    /* The host lets the other process keep one allocation's worth. */
    snprintf(budget, sizeof(budget), "%u:%u", it->Queue, SIZE);
    CHECK(strstr(qom("set", "queue-budget", budget), "\"return\"") != NULL);
    CHECK_ST(vkmt_query_queue_stats(c.adapter, TRUE, st, 8, &n), STATUS_SUCCESS);
    it = find(st, n, FALSE);
    me = find(st, n, TRUE);
    CHECK(it && me);
    if (!it || !me) {
        goto out;
    }
    CHECK_EQ(it->BudgetBytes, SIZE);
    CHECK_EQ(it->LocalBudgetBytes, SIZE);
    CHECK_EQ(it->OfferedBytes, 0);
    CHECK_EQ(it->DiscardedBytes, OFFERED * SIZE);
    /* Its never-offered content is kept: resident, or demoted when the
     * device has a non-local segment. */
    CHECK_EQ(it->ResidentBytes + it->DemotedBytes, (N - OFFERED) * SIZE);
    CHECK_EQ(me->CommittedBytes, MINE * SIZE);
    CHECK_EQ(me->DiscardedBytes, 0);
    CHECK_EQ(me->DemotedBytes, 0);
    CHECK(has_member(qom("get", "queue-stats", NULL), "budget", SIZE));
    for (unsigned i = 0; i < MINE; i++) {
        CHECK_EQ(conf_content(&c, mine[i], SIZE, 60 + i), 1);
    }

    snprintf(budget, sizeof(budget), "%u:0", it->Queue);
    CHECK(strstr(qom("set", "queue-budget", budget), "\"return\"") != NULL);
out:
    put(from_test[1], 'g');
    CHECK_EQ(get(to_test[0]), 'y');
    put(from_test[1], 'g');
    waitpid(pid, &wstatus, 0);
    CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
    conf_close(&c);
}

static const struct test tests[] = {
    TEST(one_process_is_squeezed_the_other_is_not),
};

int main(void)
{
    const char *transport = vkmt_transport_name();
    char suite[64];

    /* One VM run holds it over each transport. */
    snprintf(suite, sizeof(suite), "test_squeeze_%s", transport ? transport : "none");
    return harness_run(suite, tests, sizeof(tests) / sizeof(tests[0]));
}
