/* SPDX-License-Identifier: MIT */
/*
 * test_core: injected backend faults (vkmt_core_set_backend_faults). Each
 * fault kind surfaces as its precise status and changes nothing else: every
 * test runs its scenario twice, with the fault and without the command that
 * met it, then does the same things on both devices and compares every
 * answer (handles, aperture offsets, reclaim results, content, counters and
 * host memory). Also: the text form of a rate, reproducible sequences, a
 * stall, and an unplugged device leaving no host memory behind.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

#define A2 (2 * PAGE) /* every allocation here: two pages */

/* Faults of kind @k picked every @every-th (or with @ppm millionths), the
 * other kinds off. */
static void faults(enum vkmt_fault_kind k, uint32_t every, uint32_t ppm, uint64_t seed)
{
    struct vkmt_backend_faults f = { .seed = seed, .stall_ns = 1000000 };

    f.rate[k] = (struct vkmt_fault_rate){ .every = every, .ppm = ppm };
    CHECK_EQ(vkmt_core_set_backend_faults(F.core, &f), 0);
}

static void faults_off(void)
{
    struct vkmt_backend_faults f = { 0 };

    CHECK_EQ(vkmt_core_set_backend_faults(F.core, &f), 0);
}

/* Events seen, by type, while a test installs count_events (F.hook). */
static unsigned events[VKMT_EV_STALL_DISCARD + 1];

static void count_events(const struct vkmt_event *ev)
{
    if ((unsigned)ev->type < sizeof(events) / sizeof(events[0])) {
        events[ev->type]++;
    }
}

/* What the follow-up of a scenario observed; compared between the twins. */
struct seen {
    uint32_t h[4];       /* handles of a creation after the scenario */
    uint64_t off[4 + 6]; /* their aperture offsets, then the scenario's own */
    uint32_t r[6];       /* a reclaim of the scenario's allocations */
    int content[6];      /* their content afterwards */
    struct vkmt_stats st;
    uint64_t host_bytes;
};

static uint64_t offset_of(uint32_t dev, uint32_t a)
{
    uint8_t *p = NULL;

    if (lock(dev, a, &p) != VKMT_ST_SUCCESS || !p) {
        return UINT64_MAX; /* decommitted, or offered */
    }
    CHECK_EQ(unlock(dev, a), VKMT_ST_SUCCESS);
    return (uint64_t)(p - F.be->base);
}

/*
 * The same for both twins: reclaim the @n allocations @h (with RECOMMIT),
 * look at their content (seed i + 1 for h[i]) and offsets, create four
 * more, and note where they land and what the device counts.
 */
static void follow_up(uint32_t dev, const uint32_t *h, uint32_t n, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    CHECK_EQ(reclaim_ex(dev, h, n, s->r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < n; i++) {
        s->content[i] = content(dev, h[i], A2, (uint8_t)(i + 1));
        s->off[4 + i] = offset_of(dev, h[i]);
    }
    vkmt_core_set_budget(F.core, 0);
    CHECK_EQ(create(dev, 4, A2, s->h), VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < 4; i++) {
        s->off[i] = offset_of(dev, s->h[i]);
    }
    vkmt_core_get_stats(F.core, &s->st);
    s->host_bytes = memfd_bytes();
}

/* The twins agree on everything the device keeps; counters of commands,
 * errors, trims and faults differ by design. */
static void same(const struct seen *a, const struct seen *b)
{
    CHECK_EQ(memcmp(a->h, b->h, sizeof(a->h)), 0);
    CHECK_EQ(memcmp(a->off, b->off, sizeof(a->off)), 0);
    CHECK_EQ(memcmp(a->r, b->r, sizeof(a->r)), 0);
    CHECK_EQ(memcmp(a->content, b->content, sizeof(a->content)), 0);
    CHECK_EQ(a->st.allocations, b->st.allocations);
    CHECK_EQ(a->st.resources, b->st.resources);
    CHECK_EQ(a->st.committed_bytes, b->st.committed_bytes);
    CHECK_EQ(a->st.offered_bytes, b->st.offered_bytes);
    CHECK_EQ(a->st.offers, b->st.offers);
    CHECK_EQ(a->st.discards, b->st.discards);
    CHECK_EQ(a->st.discarded_bytes, b->st.discarded_bytes);
    CHECK_EQ(a->st.decommits, b->st.decommits);
    CHECK_EQ(a->st.reclaim_ok, b->st.reclaim_ok);
    CHECK_EQ(a->st.reclaim_discarded, b->st.reclaim_discarded);
    CHECK_EQ(a->st.reclaim_not_committed, b->st.reclaim_not_committed);
    CHECK_EQ(a->host_bytes, b->host_bytes);
}

/* Runs @scenario with its fault and without it and compares what the twins
 * saw; the faulted twin's in *@with. */
static void twins(void (*scenario)(int inject, struct seen *s), struct seen *with)
{
    struct seen without;

    scenario(1, with);
    scenario(0, &without);
    same(with, &without);
}

/* @n allocations of A2 on a fresh 1 MiB device with a budget of @budget
 * pages, h[i] filled with seed i + 1. */
static uint32_t populate(uint32_t *h, uint32_t n, uint32_t budget)
{
    uint32_t dev;

    setup(MIB, (uint64_t)budget * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, n, A2, h), VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < n; i++) {
        fill(dev, h[i], A2, (uint8_t)(i + 1));
    }
    return dev;
}

/* ---- commits ---- */

/* The second commit of a three-allocation resource fails: NO_MEMORY, and
 * no handle, range, byte or resource of it stays. */
static void create_twin(int inject, struct seen *s)
{
    uint32_t h[2], dev = populate(h, 2, 64);
    struct vkmt_stats st;

    if (inject) {
        memset(events, 0, sizeof(events));
        F.hook = count_events;
        faults(VKMT_FAULT_COMMIT, 2, 0, 0);
        CHECK_EQ(create_on(&F.d, dev, 3, A2, NULL, VKMT_SQE_F_CREATE_RESOURCE, NULL),
                 VKMT_ST_NO_MEMORY);
        vkmt_core_get_stats(F.core, &st);
        CHECK_EQ(st.faults_commit, 1);
        CHECK_EQ(events[VKMT_EV_FAULT_COMMIT], 1);
        CHECK_EQ(events[VKMT_EV_CREATE], 0);
        F.hook = NULL;
        CHECK_EQ(st.allocations, 2);
        CHECK_EQ(st.resources, 0);
        CHECK_EQ(st.committed_bytes, 2 * A2);
        CHECK(!(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET));
        faults_off();
    }
    follow_up(dev, h, 2, s);
    teardown();
}

static void an_injected_commit_fault_fails_the_create_and_changes_nothing(void)
{
    struct seen with;

    twins(create_twin, &with);
}

/* h[0] and h[2] discarded, h[1] decommitted, h[3] offered; a recommitting
 * reclaim of all four whose second commit (h[1]'s, in a new range) fails. */
static void recommit_twin(int inject, struct seen *s)
{
    uint32_t h[4], r[4], dev = populate(h, 4, 64);

    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer_ex(dev, &h[1], 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[2], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 3 * A2);
    CHECK_EQ(offer(dev, &h[3], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    if (inject) {
        faults(VKMT_FAULT_COMMIT, 2, 0, 0);
        CHECK_EQ(reclaim_ex(dev, h, 4, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_NO_MEMORY);
        faults_off();
        CHECK(!(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET));
    }
    follow_up(dev, h, 4, s);
    teardown();
}

static void an_injected_recommit_fault_fails_the_reclaim_and_changes_nothing(void)
{
    struct seen with;

    twins(recommit_twin, &with);
    CHECK_EQ(with.r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(with.r[1], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(with.r[3], VKMT_RECLAIM_OK);
    CHECK_EQ(with.content[3], 1);
}

/* ---- discards ---- */

/* Three offers; the trim's second discard fails: the trim stops there with
 * what it freed, the failed one keeps its content and its place. */
static void a_failed_discard_keeps_the_offer_and_its_content(void)
{
    uint32_t h[3], r[3], dev = populate(h, 3, 64);
    struct vkmt_stats st;
    struct vkmt_cqe c;

    CHECK_EQ(offer(dev, h, 3, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    memset(events, 0, sizeof(events));
    F.hook = count_events;
    faults(VKMT_FAULT_DISCARD, 2, 0, 0);
    CHECK_EQ(trim(UINT64_MAX), A2);
    CHECK_EQ(events[VKMT_EV_FAULT_DISCARD], 1);
    CHECK_EQ(events[VKMT_EV_DISCARD], 1);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.discards, 1);
    CHECK_EQ(st.faults_discard, 1);
    CHECK_EQ(st.offered_bytes, 2 * A2);
    CHECK_EQ(st.committed_bytes, 2 * A2);
    /* A guest TRIM the same: its second discard (h[2]) fails, SUCCESS with
     * what it freed (h[1], the oldest left). */
    faults(VKMT_FAULT_DISCARD, 2, 0, 0);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM }, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, A2);
    faults_off();
    CHECK_EQ(reclaim(dev, h, 3, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[2], VKMT_RECLAIM_OK);
    CHECK_EQ(content(dev, h[2], A2, 3), 1);
    teardown();
}

/*
 * Budget 16 pages, 12 committed, h[0..2] offered; a creation of 8 pages
 * must discard two of them and the second discard fails:
 * GRAPHICS_NO_VIDEO_MEMORY. What it leaves is h[0] discarded, which the
 * twin gets with a trim.
 */
static void create_room_twin(int inject, struct seen *s)
{
    uint32_t h[6], dev = populate(h, 6, 16);

    CHECK_EQ(offer(dev, h, 3, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    if (inject) {
        faults(VKMT_FAULT_DISCARD, 2, 0, 0);
        CHECK_EQ(create(dev, 4, A2, NULL), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
        faults_off();
    } else {
        CHECK_EQ(trim(A2), A2);
    }
    follow_up(dev, h, 6, s);
    teardown();
}

static void a_create_whose_discard_fails_changes_nothing_it_may_not(void)
{
    struct seen with;

    twins(create_room_twin, &with);
    CHECK_EQ(with.r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(with.r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(with.content[1], 1);
}

/*
 * Budget 10 pages: h[0] decommitted, h[1] and h[2] offered, 10 pages
 * committed. A recommitting reclaim of h[0] must discard h[1], which fails:
 * NO_MEMORY, h[0]'s new range given back, h[1] offered with its content.
 */
static void reclaim_room_twin(int inject, struct seen *s)
{
    uint32_t h[5], r[1], extra[1], dev = populate(h, 5, 10);

    CHECK_EQ(offer_ex(dev, h, 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), A2);
    CHECK_EQ(create(dev, 1, A2, extra), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    if (inject) {
        faults(VKMT_FAULT_DISCARD, 1, 0, 0);
        CHECK_EQ(reclaim_ex(dev, h, 1, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_NO_MEMORY);
        faults_off();
    }
    CHECK_EQ(destroy_allocs(dev, extra, 1), VKMT_ST_SUCCESS);
    follow_up(dev, h, 5, s);
    teardown();
}

static void a_reclaim_whose_discard_fails_changes_nothing(void)
{
    struct seen with;

    twins(reclaim_room_twin, &with);
    CHECK_EQ(with.r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(with.content[1], 1);
}

/*
 * A lowered budget needing three discards, every second of which fails:
 * enforcement stops at each failure and is not retried in the background
 * (no endless continuation); each later request tries once more.
 */
static void a_budget_whose_discards_fail_waits_for_the_next_request(void)
{
    uint32_t h[4], dev = populate(h, 4, 64);
    struct vkmt_stats st;

    CHECK_EQ(offer(dev, h, 4, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    faults(VKMT_FAULT_DISCARD, 2, 0, 0);
    vkmt_core_set_budget(F.core, A2);
    CHECK(!vkmt_core_continue(F.core));
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.committed_bytes, 3 * A2);
    CHECK_EQ(st.discards, 1);
    CHECK_EQ(st.faults_discard, 1);
    /* A command: the continuation discards again, up to the next failure. */
    CHECK(new_device() != 0);
    CHECK(!vkmt_core_continue(F.core));
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.discards, 2);
    CHECK_EQ(st.faults_discard, 2);
    CHECK(new_device() != 0);
    CHECK(!vkmt_core_continue(F.core));
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.committed_bytes, A2);
    CHECK_EQ(st.discards, 3);
    teardown();
}

/* ---- sequences, stalls, settings ---- */

/* Which of 64 one-page creations fail with commit faults at rate 0.5. */
static uint64_t failure_mask(uint64_t seed)
{
    uint64_t mask = 0;
    uint32_t dev, h;

    setup(MIB, 0);
    dev = new_device();
    faults(VKMT_FAULT_COMMIT, 0, VKMT_FAULT_PPM / 2, seed);
    for (unsigned i = 0; i < 64; i++) {
        uint32_t st = create(dev, 1, PAGE, &h);

        if (st == VKMT_ST_NO_MEMORY) {
            mask |= 1ull << i;
        } else {
            CHECK_EQ(st, VKMT_ST_SUCCESS);
            CHECK_EQ(destroy_allocs(dev, &h, 1), VKMT_ST_SUCCESS);
        }
    }
    teardown();
    return mask;
}

static void the_same_seed_fails_the_same_operations(void)
{
    uint64_t a = failure_mask(42);

    CHECK(a != 0 && a != UINT64_MAX);
    CHECK_EQ(failure_mask(42), a);
    CHECK(failure_mask(43) != a);
}

/* Every commit and discard stalls 3 ms; nothing else changes. */
static void stalls_delay_commits_and_discards(void)
{
    struct vkmt_backend_faults f = { .stall_ns = 3000000 };
    struct timespec t0, t1;
    struct vkmt_stats st;
    uint32_t h[2], r[2], dev;
    double took;

    setup(MIB, 0);
    memset(events, 0, sizeof(events));
    F.hook = count_events;
    dev = new_device();
    f.rate[VKMT_FAULT_STALL].every = 1;
    CHECK_EQ(vkmt_core_set_backend_faults(F.core, &f), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(took >= 0.006);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), PAGE);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.stalls, 3);
    CHECK_EQ(st.stall_ns, 9000000);
    CHECK_EQ(events[VKMT_EV_STALL_COMMIT], 2);
    CHECK_EQ(events[VKMT_EV_STALL_DISCARD], 1);
    CHECK_EQ(st.faults_commit + st.faults_discard, 0);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    teardown();
}

static void settings_out_of_range_are_refused(void)
{
    struct vkmt_backend_faults f = { .seed = 7 };

    setup(MIB, 0);
    f.rate[VKMT_FAULT_COMMIT].ppm = VKMT_FAULT_PPM + 1;
    CHECK_EQ(vkmt_core_set_backend_faults(F.core, &f), -22);
    f.rate[VKMT_FAULT_COMMIT].ppm = 0;
    f.stall_ns = VKMT_FAULT_STALL_MAX_NS + 1ull;
    CHECK_EQ(vkmt_core_set_backend_faults(F.core, &f), -22);
    /* Nothing was put in force. */
    CHECK_EQ(create(new_device(), 1, PAGE, NULL), VKMT_ST_SUCCESS);
    teardown();
}

static void rates_parse_and_format(void)
{
    static const struct {
        const char *text, *back;
        uint32_t every, ppm;
    } good[] = {
        { "off", "off", 0, 0 },
        { "every:1", "every:1", 1, 0 },
        { "every:4294967295", "every:4294967295", UINT32_MAX, 0 },
        { "rate:0", "off", 0, 0 },
        { "rate:1", "rate:1", 0, VKMT_FAULT_PPM },
        { "rate:1.000000", "rate:1", 0, VKMT_FAULT_PPM },
        { "rate:0.25", "rate:0.25", 0, 250000 },
        { "rate:0.000001", "rate:0.000001", 0, 1 },
    };
    static const char *const bad[] = {
        "",         "on",       "every:",    "every:0",   "every:4294967296", "every:3x",
        "rate:",    "rate:.5",  "rate:1.1",  "rate:2",    "rate:0.0000001",   "rate:-0.5",
        "rate:0,5", "every: 3", "rate:0.5 ", "sometimes",
    };
    struct vkmt_fault_rate r;
    char buf[32];

    for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_EQ(vkmt_fault_rate_parse(good[i].text, &r), 0);
        CHECK_EQ(r.every, good[i].every);
        CHECK_EQ(r.ppm, good[i].ppm);
        vkmt_fault_rate_format(&r, buf, sizeof(buf));
        CHECK_EQ(strcmp(buf, good[i].back), 0);
    }
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(vkmt_fault_rate_parse(bad[i], &r), -22);
    }
}

/* Destroying the engine (an unplug) leaves no host memory in a backend
 * that outlives it, stray writes included. */
static void an_unplugged_device_leaves_no_host_memory(void)
{
    struct vkmt_core_config cfg = { .num_queues = 2, .features = VKMT_F_KNOWN };
    int fd = memfd_create("vkmt-test", MFD_CLOEXEC);
    uint8_t *base;
    struct stat st;

    memset(&F, 0, sizeof(F));
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, MIB), 0);
    base = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(base != MAP_FAILED);
    F.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(2));
    CHECK_EQ(vkmt_backend_mem_create(MIB, fd, base, &F.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, F.be, F.ctrl, &fake_ops, NULL, &F.core), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    {
        uint32_t h[3], dev = new_device();

        CHECK_EQ(create(dev, 3, A2, h), VKMT_ST_SUCCESS);
        fill(dev, h[0], A2, 1);
        CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    }
    memset(base + MIB / 2, 0xcd, MIB / 4); /* stray */
    vkmt_core_destroy(F.core);
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ(st.st_blocks, 0);
    vkmt_backend_destroy(F.be);
    free(F.ctrl);
    munmap(base, MIB);
    close(fd);
}

const struct test core_fault_tests[] = {
    TEST(rates_parse_and_format),
    TEST(settings_out_of_range_are_refused),
    TEST(an_injected_commit_fault_fails_the_create_and_changes_nothing),
    TEST(an_injected_recommit_fault_fails_the_reclaim_and_changes_nothing),
    TEST(a_failed_discard_keeps_the_offer_and_its_content),
    TEST(a_create_whose_discard_fails_changes_nothing_it_may_not),
    TEST(a_reclaim_whose_discard_fails_changes_nothing),
    TEST(a_budget_whose_discards_fail_waits_for_the_next_request),
    TEST(the_same_seed_fails_the_same_operations),
    TEST(stalls_delay_commits_and_discards),
    TEST(an_unplugged_device_leaves_no_host_memory),
};
const unsigned core_fault_ntests = sizeof(core_fault_tests) / sizeof(core_fault_tests[0]);
