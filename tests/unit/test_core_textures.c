/* SPDX-License-Identifier: MIT */
/*
 * test_core: texture allocations (VKMT_F_TEXTURES): descriptor validation,
 * the feature gate, and the shape the backend learns at every commit.
 */
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

#define TEX(fmt, w, h) VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_##fmt), VKMT_ALLOC_DIMS(w, h)

/* CREATE_ALLOCATIONS of the @n descriptors @d on @dev; handles into @h. */
static uint32_t create_descs(uint32_t dev, const struct vkmt_alloc_desc *d, uint32_t n, uint32_t *h)
{
    uint32_t roff = n * (uint32_t)sizeof(*d);
    uint32_t st;

    memcpy(staging(F.d.q), d, roff);
    st = run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                .handle = dev,
                                .count = n,
                                .payload_len = roff,
                                .result_off = roff,
                                .result_len = n * 4 },
             NULL);
    if (st == VKMT_ST_SUCCESS && h) {
        memcpy(h, staging(F.d.q) + roff, n * 4);
    }
    return st;
}

static uint64_t queue_committed(void)
{
    struct vkmt_cqe c;

    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY }, &c), VKMT_ST_SUCCESS);
    return c.value1;
}

static void texture_descriptors_are_validated(void)
{
    static const struct vkmt_alloc_desc good[] = {
        { 4 * 64 * 32, TEX(B8G8R8A8_UNORM, 64, 32) },
        { 4 * 7 * 3, TEX(R8G8B8A8_UNORM, 7, 3) },
        { 100 * 30, TEX(R8_UNORM, 100, 30) },
        { VKMT_TEXTURE_MAX_DIM, TEX(R8_UNORM, VKMT_TEXTURE_MAX_DIM, 1) },
        { VKMT_TEXTURE_MAX_DIM, TEX(R8_UNORM, 1, VKMT_TEXTURE_MAX_DIM) },
    };
    static const struct {
        const char *what;
        struct vkmt_alloc_desc d;
    } bad[] = {
        { "size one byte short", { 4 * 64 * 32 - 1, TEX(B8G8R8A8_UNORM, 64, 32) } },
        { "size one byte over", { 4 * 64 * 32 + 1, TEX(B8G8R8A8_UNORM, 64, 32) } },
        { "size page-rounded", { PAGE, TEX(R8_UNORM, 100, 30) } },
        { "format 0", { 64 * 32, VKMT_ALLOC_F_TEXTURE2D, VKMT_ALLOC_DIMS(64, 32) } },
        { "unknown format",
          { 64 * 32, VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_COUNT), VKMT_ALLOC_DIMS(64, 32) } },
        { "format 255", { 64 * 32, VKMT_ALLOC_TEXTURE_FLAGS(255), VKMT_ALLOC_DIMS(64, 32) } },
        { "width 0", { 4 * 32, TEX(B8G8R8A8_UNORM, 0, 32) } },
        { "height 0", { 4 * 64, TEX(B8G8R8A8_UNORM, 64, 0) } },
        { "width over the maximum", { VKMT_TEXTURE_MAX_DIM + 1, TEX(R8_UNORM, 16385, 1) } },
        { "height over the maximum", { VKMT_TEXTURE_MAX_DIM + 1, TEX(R8_UNORM, 1, 16385) } },
        { "a format without the flag",
          { 4 * 64 * 32, VKMT_FORMAT_B8G8R8A8_UNORM << 8, VKMT_ALLOC_DIMS(64, 32) } },
        { "an unknown flag beside it", { 4 * 64 * 32, TEX(B8G8R8A8_UNORM, 64, 32) | 0x2u } },
        { "dims on a buffer", { PAGE, 0, VKMT_ALLOC_DIMS(64, 16) } },
    };
    struct vkmt_alloc_desc batch[3];
    struct vkmt_stats st;
    struct vkmt_cqe c;
    uint32_t dev, h[5];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create_descs(dev, good, 5, h), VKMT_ST_SUCCESS);
    CHECK_EQ(queue_committed(), 2 * PAGE + PAGE + PAGE + 4 * PAGE + 4 * PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = h[2] }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value1, 100 * 30); /* the size as created: the packed rows */
    CHECK_EQ(unlock(dev, h[2]), VKMT_ST_SUCCESS);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned errors = F.guest_errors;

        /* Last in a batch of good ones: nothing of the batch is created. */
        batch[0] = good[0];
        batch[1] = good[2];
        batch[2] = bad[i].d;
        if (create_descs(dev, batch, 3, NULL) != VKMT_ST_INVALID_PARAMETER) {
            harness_fail(__FILE__, __LINE__, "accepted: %s", bad[i].what);
        }
        CHECK_EQ(F.guest_errors, errors + 1);
    }
    CHECK_EQ(queue_committed(), 12 * PAGE);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.allocations, 5);
    teardown();
}

static void textures_need_the_feature(void)
{
    static const struct vkmt_alloc_desc tex = { 4 * 64 * 32, TEX(B8G8R8A8_UNORM, 64, 32) };
    uint32_t dev, h[1];

    setup_full(2, MIB, 0, VKMT_F_GUEST_TRIM | VKMT_F_RESOURCES);
    dev = new_device();
    CHECK_EQ(create_descs(dev, &tex, 1, h), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, tex.size, h), VKMT_ST_SUCCESS); /* the same bytes as a buffer */
    teardown();
}

static struct vkmt_shape commits[8];
static bool commit_textured[8];
static unsigned ncommits;

static int note_commit(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                       const struct vkmt_shape *shape)
{
    (void)b;
    (void)id;
    (void)off;
    (void)len;
    if (ncommits < 8) {
        commit_textured[ncommits] = shape != NULL;
        commits[ncommits++] = shape ? *shape : (struct vkmt_shape){ 0 };
    }
    return 0;
}

/* The backend learns the shape at create and again at every recommit. */
static void texture_shape_reaches_the_backend(void)
{
    static const struct vkmt_alloc_desc d[] = {
        { 4 * 640 * 480, TEX(R8G8B8A8_UNORM, 640, 480) },
        { 3 * PAGE, 0, 0 },
    };
    struct vkmt_backend_ops noting;
    const struct vkmt_backend_ops *real;
    uint32_t dev, h[2], r[2];

    setup(8 * MIB, 0);
    real = F.be->ops;
    noting = *real;
    noting.commit = note_commit;
    F.be->ops = &noting;
    ncommits = 0;
    dev = new_device();
    CHECK_EQ(create_descs(dev, d, 2, h), VKMT_ST_SUCCESS);
    CHECK_EQ(ncommits, 2);
    CHECK(commit_textured[0] && !commit_textured[1]);
    CHECK_EQ(commits[0].format, VKMT_FORMAT_R8G8B8A8_UNORM);
    CHECK_EQ(commits[0].width, 640);
    CHECK_EQ(commits[0].height, 480);
    CHECK_EQ(commits[0].stride, 4 * 640);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(8 * MIB), 300 * PAGE + 3 * PAGE);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(ncommits, 4);
    CHECK(commit_textured[2] && !commit_textured[3]);
    CHECK_EQ(memcmp(&commits[2], &commits[0], sizeof(commits[0])), 0);
    F.be->ops = real;
    teardown();
}

const struct test core_texture_tests[] = {
    TEST(texture_descriptors_are_validated),
    TEST(textures_need_the_feature),
    TEST(texture_shape_reaches_the_backend),
};
const unsigned core_texture_ntests = sizeof(core_texture_tests) / sizeof(core_texture_tests[0]);
