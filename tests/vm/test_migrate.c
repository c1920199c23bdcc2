/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test VM under scripts/vm-run, whose host services
 * (docs/VM.md) save, load and migrate the whole VM while this program holds
 * allocations: savevm and loadvm into a qcow2 image, live migration into a
 * second QEMU while it keeps offering, reclaiming and checking content, and
 * migration into a file with the device's migrate-offered at keep and at
 * discard. Content that was never offered must come back byte for byte; an
 * offered allocation either keeps its content or is reported DISCARDED.
 * Works over any transport (VKMT_TRANSPORT); reports as
 * test_migrate_TRANSPORT.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "vm_host.h"

#define SIZE (256u << 10)
#define N 24
#define OFFERED 8 /* the last OFFERED of N */

static int set_migrate_offered(const char *how)
{
    const char *r = vm_host("qmp {\"execute\":\"qom-set\",\"arguments\":{\"path\":"
                            "\"/machine/peripheral/vk\",\"property\":\"migrate-offered\","
                            "\"value\":\"%s\"}}",
                            how);

    return strstr(r, "\"return\"") ? 0 : -1;
}

/* N allocations with their patterns (@base + index, kept in @seed); the
 * last OFFERED offered. */
static int set_up(struct conf *c, D3DKMT_HANDLE *h, unsigned *seed, unsigned base)
{
    if (!conf_open(c)) {
        return -1;
    }
    CHECK_ST(conf_create(c, N, SIZE, h), STATUS_SUCCESS);
    for (unsigned i = 0; i < N; i++) {
        seed[i] = base + i;
        conf_fill(c, h[i], SIZE, seed[i]);
    }
    CHECK_ST(conf_offer(c, h + N - OFFERED, OFFERED, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    return harness_failures() ? -1 : 0;
}

/*
 * Each resident allocation holds the pattern of its @seed; the offered ones
 * are reclaimed: DISCARDED is allowed (and the only answer when
 * @discarded), kept content must be the pattern. Returns how many came back
 * DISCARDED.
 */
static unsigned check_all(struct conf *c, const D3DKMT_HANDLE *h, const unsigned *seed,
                          int discarded)
{
    D3DDDI_RECLAIM_RESULT r[OFFERED];
    unsigned lost = 0;

    for (unsigned i = 0; i < N - OFFERED; i++) {
        if (conf_content(c, h[i], SIZE, seed[i]) != 1) {
            harness_fail(__FILE__, __LINE__, "allocation %u lost its content", i);
        }
    }
    CHECK_ST(conf_reclaim2(c, h + N - OFFERED, OFFERED, r), STATUS_SUCCESS);
    for (unsigned i = 0; i < OFFERED; i++) {
        unsigned k = N - OFFERED + i;

        if (r[i] == D3DDDI_RECLAIM_RESULT_DISCARDED) {
            lost++;
        } else if (discarded) {
            harness_fail(__FILE__, __LINE__, "offered allocation %u kept, want DISCARDED", k);
        } else if (conf_content(c, h[k], SIZE, seed[k]) != 1) {
            harness_fail(__FILE__, __LINE__, "reclaimed allocation %u came back changed", k);
        }
    }
    return lost;
}

/*
 * savevm, then change everything; loadvm brings the VM back into its
 * savevm request, which then answers "loaded": the device must hold what it
 * held at the savevm, with the same handles.
 */
static void a_loadvm_brings_back_the_saved_device(void)
{
    struct conf c;
    D3DKMT_HANDLE h[N], extra[4];
    unsigned seed[N];
    const char *r;

    if (set_up(&c, h, seed, 100) != 0) {
        return;
    }
    r = vm_host("savevm %s", "vkmt-test");
    if (strcmp(r, "saved") == 0) {
        /* Everything the load must undo; a failure here stops the test
         * before the load, which would otherwise erase its report. */
        for (unsigned i = 0; i < N - OFFERED; i++) {
            conf_fill(&c, h[i], SIZE, 900 + i);
        }
        CHECK_ST(conf_destroy(&c, 2, h), STATUS_SUCCESS);
        CHECK_ST(conf_create(&c, 4, SIZE, extra), STATUS_SUCCESS);
        CHECK_ST(conf_reclaim2(&c, h + N - OFFERED, OFFERED, NULL), STATUS_SUCCESS);
        if (!harness_failures()) {
            r = vm_host("loadvm %s", "vkmt-test");
            harness_fail(__FILE__, __LINE__, "loadvm did not take the VM back: %s", r);
        }
        conf_close(&c);
        return;
    }
    if (strcmp(r, "loaded") != 0) {
        harness_fail(__FILE__, __LINE__, "savevm: %s", r);
        conf_close(&c);
        return;
    }
    /* migrate-offered=keep (the default): nothing offered was dropped. */
    CHECK_EQ(check_all(&c, h, seed, 0), 0);
    /* The device goes on from the loaded state. */
    CHECK_ST(conf_destroy(&c, N, h), STATUS_SUCCESS);
    CHECK_ST(conf_create(&c, 4, SIZE, extra), STATUS_SUCCESS);
    conf_close(&c);
}

/*
 * A live migration into a second QEMU while this program keeps working:
 * one group of allocations is offered and reclaimed over and over, another
 * rewritten with new patterns; after the move every never-offered byte is
 * what was last written.
 */
static void content_survives_a_live_migration(void)
{
    enum { ROUNDS = 60 };
    struct conf c;
    D3DKMT_HANDLE h[N];
    unsigned seed[N];
    const char *r;

    if (set_up(&c, h, seed, 200) != 0) {
        return;
    }
    /* Slow enough (32 MiB/s) that the rounds below overlap the copy. */
    r = vm_host("migrate-start %s", "32");
    if (strcmp(r, "started") != 0) {
        harness_fail(__FILE__, __LINE__, "migrate-start: %s", r);
        conf_close(&c);
        return;
    }
    for (unsigned round = 0; round < ROUNDS && !harness_failures(); round++) {
        unsigned w = round % (N - OFFERED);
        D3DDDI_RECLAIM_RESULT res[OFFERED];

        seed[w] = 1000 + round;
        conf_fill(&c, h[w], SIZE, seed[w]);
        CHECK_ST(conf_reclaim2(&c, h + N - OFFERED, OFFERED, res), STATUS_SUCCESS);
        for (unsigned i = 0; i < OFFERED; i++) {
            unsigned k = N - OFFERED + i;

            if (res[i] == D3DDDI_RECLAIM_RESULT_DISCARDED) {
                conf_fill(&c, h[k], SIZE, seed[k]);
            } else if (conf_content(&c, h[k], SIZE, seed[k]) != 1) {
                harness_fail(__FILE__, __LINE__, "round %u: reclaimed %u changed", round, k);
            }
        }
        CHECK_ST(conf_offer(&c, h + N - OFFERED, OFFERED, D3DKMT_OFFER_PRIORITY_LOW, 0),
                 STATUS_SUCCESS);
    }
    r = vm_host("migrate-wait");
    printf("# %s\n", r);
    CHECK(strncmp(r, "done", 4) == 0);
    check_all(&c, h, seed, 0);
    conf_close(&c);
}

/*
 * Migrations into a file, after which this VM goes on: with
 * migrate-offered=discard the offered content is dropped before RAM is sent
 * (every reclaim answers DISCARDED) and the stream is smaller than with keep.
 */
static void a_migration_with_discard_drops_offered_content(void)
{
    unsigned long long keep = 0, discard = 0;
    struct conf c;
    D3DKMT_HANDLE h[N];
    unsigned seed[N];

    if (set_up(&c, h, seed, 300) != 0) {
        return;
    }
    CHECK_EQ(set_migrate_offered("keep"), 0);
    CHECK_EQ(sscanf(vm_host("migrate-file"), "%llu", &keep), 1);
    CHECK_EQ(check_all(&c, h, seed, 0), 0);
    CHECK_ST(conf_offer(&c, h + N - OFFERED, OFFERED, D3DKMT_OFFER_PRIORITY_LOW, 0),
             STATUS_SUCCESS);
    CHECK_EQ(set_migrate_offered("discard"), 0);
    CHECK_EQ(sscanf(vm_host("migrate-file"), "%llu", &discard), 1);
    CHECK_EQ(set_migrate_offered("keep"), 0);
    CHECK_EQ(check_all(&c, h, seed, 1), OFFERED);
    printf("# stream: keep %llu bytes, discard %llu bytes\n", keep, discard);
    CHECK(discard + OFFERED * (SIZE / 2) < keep);
    conf_close(&c);
}

static const struct test tests[] = {
    TEST(a_loadvm_brings_back_the_saved_device),
    TEST(content_survives_a_live_migration),
    TEST(a_migration_with_discard_drops_offered_content),
};

int main(void)
{
    const char *transport = vkmt_transport_name();
    char suite[64];

    /* One VM run holds it over each transport. */
    snprintf(suite, sizeof(suite), "test_migrate_%s", transport ? transport : "none");
    return harness_run(suite, tests, sizeof(tests) / sizeof(tests[0]));
}
