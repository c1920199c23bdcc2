/* SPDX-License-Identifier: MIT */
/*
 * test_core: the host memory bound and backend failures. The aperture is
 * guest-writable RAM, so the device hands out only zeroed ranges and a trim
 * scrubs every page no allocation holds (measured in the memfd's st_blocks);
 * a backend that cannot commit fails that one command and leaves the device
 * healthy and its state as it was; what a backend can never hold is refused
 * up front, within limits the guest reads in registers.
 */
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static int all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return 0;
        }
    }
    return 1;
}

/* Stray writes: 1 MiB aperture, 512 KiB budget, the guest writes all
 * of it; a trim gives back everything no allocation holds. */
static void stray_writes_are_scrubbed_by_the_next_trim(void)
{
    uint32_t dev, h[2];
    uint8_t *res = NULL;

    setup(MIB, MIB / 2);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 4 * PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], 4 * PAGE, 9);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[0], &res), VKMT_ST_SUCCESS);
    /* Stray stores everywhere but the resident allocation. */
    for (size_t off = 0; off < MIB; off += PAGE) {
        if (F.be->base + off < res || F.be->base + off >= res + 4 * PAGE) {
            memset(F.be->base + off, 0xcd, PAGE);
        }
    }
    CHECK_EQ(memfd_bytes(), MIB);
    CHECK_EQ(trim(UINT64_MAX), 4 * PAGE); /* the offered one */
    /* Only the resident allocation holds memory, with its content intact. */
    CHECK_EQ(memfd_bytes(), 4 * PAGE);
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_SUCCESS);
    CHECK_EQ(content(dev, h[0], 4 * PAGE, 9), 1);
    /* A trim with nothing offered still scrubs. */
    memset(F.be->base + MIB - PAGE, 0xcd, PAGE);
    CHECK_EQ(memfd_bytes(), 5 * PAGE);
    CHECK_EQ(trim(UINT64_MAX), 0);
    CHECK_EQ(memfd_bytes(), 4 * PAGE);
    teardown();
}

/* A reset (a reboot) leaves no host memory held, stray writes included. */
static void a_reset_scrubs_the_whole_aperture(void)
{
    uint32_t dev, h[2];

    setup(MIB, MIB / 2);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 4 * PAGE, h), VKMT_ST_SUCCESS);
    memset(F.be->base, 0xcd, MIB);
    CHECK_EQ(memfd_bytes(), MIB);
    wr(VKMT_REG(status), 0);
    CHECK_EQ(memfd_bytes(), 0);
    CHECK(all_bytes(F.be->base, MIB, 0));
    teardown();
}

/* A trim never scrubs what an allocation holds: offered content that the
 * trim leaves, and resident content, stay byte-identical. */
static void a_partial_trim_keeps_held_content(void)
{
    uint32_t dev, h[3], r[3];

    setup(MIB, MIB / 2);
    dev = new_device();
    CHECK_EQ(create(dev, 3, 2 * PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], 2 * PAGE, 1);
    fill(dev, h[1], 2 * PAGE, 2);
    fill(dev, h[2], 2 * PAGE, 3);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), 2 * PAGE); /* the LOW one only */
    CHECK_EQ(memfd_bytes(), 4 * PAGE);
    CHECK_EQ(reclaim(dev, h, 3, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    for (uint32_t i = 1; i < 3; i++) { /* every byte, not a sample */
        CHECK_EQ(content(dev, h[i], 2 * PAGE, (uint8_t)(i + 1)), 1);
    }
    teardown();
}

/* PROTOCOL.md 8: a new allocation reads zero, even where the guest wrote
 * into free aperture space before. */
static void a_new_allocation_reads_zero_after_stray_writes(void)
{
    uint32_t dev, h[2];
    uint8_t *p = NULL;

    setup(MIB, MIB / 2);
    memset(F.be->base, 0xcd, MIB);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 3 * PAGE, h), VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < 2; i++) {
        CHECK_EQ(lock(dev, h[i], &p), VKMT_ST_SUCCESS);
        CHECK(p && all_bytes(p, 3 * PAGE, 0));
        CHECK_EQ(unlock(dev, h[i]), VKMT_ST_SUCCESS);
    }
    teardown();
}

/* A DISCARDED allocation keeps its range, which the guest can still write
 * through the BAR; its recommit reads zero all the same, in place or (after
 * a decommit) in a new range. */
static void a_recommitted_range_reads_zero_after_writes_into_its_discard(void)
{
    uint32_t dev, h[2], r[2];
    uint8_t *p[2] = { NULL, NULL };

    setup(MIB, MIB / 2);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 2 * PAGE, h), VKMT_ST_SUCCESS);
    for (uint32_t i = 0; i < 2; i++) {
        CHECK_EQ(lock(dev, h[i], &p[i]), VKMT_ST_SUCCESS);
        CHECK_EQ(unlock(dev, h[i]), VKMT_ST_SUCCESS);
    }
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer_ex(dev, &h[1], 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 4 * PAGE);
    /* Stale stores into the discarded range, and everywhere else. */
    memset(F.be->base, 0xcd, MIB);
    CHECK_EQ(reclaim_ex(dev, h, 2, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_DISCARDED);
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t *q = NULL;

        CHECK_EQ(lock(dev, h[i], &q), VKMT_ST_SUCCESS);
        CHECK(q && all_bytes(q, 2 * PAGE, 0));
        CHECK_EQ(unlock(dev, h[i]), VKMT_ST_SUCCESS);
    }
    teardown();
}

/* ---- backend failures (finding 7) ---- */

static unsigned commit_calls, fail_commit_at;

static int failing_commit(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                          const struct vkmt_shape *shape)
{
    (void)b;
    (void)id;
    (void)off;
    (void)len;
    (void)shape;
    return ++commit_calls == fail_commit_at ? -12 /* -ENOMEM */ : 0;
}

/* A 1 MiB device whose backend commits go through failing_commit(), with
 * the ops in *@ops; returns the real ops, to put back before teardown(). */
static const struct vkmt_backend_ops *setup_failing_commit(struct vkmt_backend_ops *ops)
{
    const struct vkmt_backend_ops *real;

    setup(MIB, MIB / 2);
    real = F.be->ops;
    *ops = *real;
    ops->commit = failing_commit;
    F.be->ops = ops;
    return real;
}

/* Handles of three allocations created on a fresh device, after a create
 * whose @fail-th commit failed (0: no such create). */
static void handles_after_failed_create(unsigned fail, uint32_t out[3])
{
    struct vkmt_backend_ops ops;
    const struct vkmt_backend_ops *real;
    struct vkmt_stats before, after;
    uint32_t dev;

    real = setup_failing_commit(&ops);
    dev = new_device();
    if (fail) {
        commit_calls = 0;
        fail_commit_at = fail;
        vkmt_core_get_stats(F.core, &before);
        CHECK_EQ(create_on(&F.d, dev, 3, PAGE, NULL, VKMT_SQE_F_CREATE_RESOURCE, NULL),
                 VKMT_ST_NO_MEMORY);
        vkmt_core_get_stats(F.core, &after);
        CHECK_EQ(after.allocations, before.allocations);
        CHECK_EQ(after.resources, before.resources);
        CHECK_EQ(after.committed_bytes, before.committed_bytes);
        CHECK(!(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET));
    }
    fail_commit_at = 0;
    CHECK_EQ(create(dev, 3, PAGE, out), VKMT_ST_SUCCESS);
    F.be->ops = real;
    teardown();
}

/* A commit the backend cannot do fails that command (NO_MEMORY), undoes the
 * batch's earlier commits and new handles, and keeps the device healthy. */
static void a_failed_commit_fails_only_that_create(void)
{
    uint32_t ref[3], got[3];

    handles_after_failed_create(0, ref);
    for (unsigned fail = 1; fail <= 3; fail++) {
        handles_after_failed_create(fail, got);
        CHECK_EQ(memcmp(got, ref, sizeof(ref)), 0);
    }
}

static void a_failed_recommit_fails_only_that_reclaim(void)
{
    struct vkmt_backend_ops ops;
    const struct vkmt_backend_ops *real;
    struct vkmt_stats before, after;
    uint32_t dev, h[4], r[4];
    struct drv other;

    real = setup_failing_commit(&ops);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer_ex(dev, &h[2], 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 3 * PAGE);
    CHECK_EQ(offer(dev, &h[3], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    /* h[0], h[1] DISCARDED, h[2] DECOMMITTED, h[3] OFFERED; the third
     * recommit (of h[2]) fails. */
    commit_calls = 0;
    fail_commit_at = 3;
    vkmt_core_get_stats(F.core, &before);
    CHECK_EQ(reclaim_ex(dev, h, 4, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_NO_MEMORY);
    vkmt_core_get_stats(F.core, &after);
    CHECK_EQ(after.committed_bytes, before.committed_bytes);
    CHECK_EQ(after.offered_bytes, before.offered_bytes);
    CHECK(!(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET));
    /* Another queue is unaffected. */
    other = claim();
    CHECK_EQ(other.q, 1);
    if (other.q == 1) {
        new_device_on(&other);
    }
    /* Nothing changed: h[3] is still offered (a trim takes it), and the
     * others come back as they were lost. */
    fail_commit_at = 0;
    CHECK_EQ(trim(UINT64_MAX), PAGE);
    CHECK_EQ(reclaim(dev, h, 4, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[2], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(r[3], VKMT_RECLAIM_DISCARDED);
    F.be->ops = real;
    teardown();
}

/* What a backend can never hold is INVALID_PARAMETER up front, within
 * limits the guest reads in max_alloc and max_texture_dim. */
static void backend_limits_are_advertised_and_enforced(void)
{
    struct vkmt_alloc_desc *d;
    uint32_t dev;

    setup(MIB, MIB / 2);
    CHECK_EQ(rd(VKMT_REG(max_alloc_lo)), MIB);
    CHECK_EQ(rd(VKMT_REG(max_alloc_hi)), 0);
    CHECK_EQ(rd(VKMT_REG(max_texture_dim)), VKMT_TEXTURE_MAX_DIM);
    F.be->max_alloc = 2 * PAGE;
    F.be->max_texture_dim = 64;
    CHECK_EQ(rd(VKMT_REG(max_alloc_lo)), 2 * PAGE);
    CHECK_EQ(rd(VKMT_REG(max_texture_dim)), 64);
    dev = new_device();
    CHECK_EQ(create(dev, 1, 2 * PAGE + 1, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, 2 * PAGE, NULL), VKMT_ST_SUCCESS);
    d = (struct vkmt_alloc_desc *)staging(0);
    for (uint32_t w = 64; w <= 65; w++) {
        d[0] = (struct vkmt_alloc_desc){
            .size = w,
            .flags = VKMT_ALLOC_F_TEXTURE2D | VKMT_FORMAT_R8_UNORM << 8,
            .dims = w | 1u << 16,
        };
        CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                        .handle = dev,
                                        .count = 1,
                                        .payload_len = sizeof(*d),
                                        .result_off = 64,
                                        .result_len = 4 },
                     NULL),
                 w == 64 ? VKMT_ST_SUCCESS : VKMT_ST_INVALID_PARAMETER);
    }
    CHECK(!(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET));
    teardown();
}

const struct test core_hostmem_tests[] = {
    TEST(stray_writes_are_scrubbed_by_the_next_trim),
    TEST(a_reset_scrubs_the_whole_aperture),
    TEST(a_partial_trim_keeps_held_content),
    TEST(a_new_allocation_reads_zero_after_stray_writes),
    TEST(a_recommitted_range_reads_zero_after_writes_into_its_discard),
    TEST(a_failed_commit_fails_only_that_create),
    TEST(a_failed_recommit_fails_only_that_reclaim),
    TEST(backend_limits_are_advertised_and_enforced),
};
const unsigned core_hostmem_ntests = sizeof(core_hostmem_tests) / sizeof(core_hostmem_tests[0]);
