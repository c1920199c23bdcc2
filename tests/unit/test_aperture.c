/* SPDX-License-Identifier: MIT */
/* Unit tests of the aperture's page allocator (linked into test_core). */
#include <stdlib.h>

#include "aperture.h"
#include "harness.h"
#include "test_core.h"

static void aperture_fills_and_refuses(void)
{
    struct vkmt_aperture ap;

    CHECK_EQ(aperture_init(&ap, 130), 0);
    for (uint32_t i = 0; i < 130; i++) {
        CHECK_EQ(aperture_alloc(&ap, 1), i);
    }
    CHECK_EQ(aperture_alloc(&ap, 1), APERTURE_NONE);
    aperture_free(&ap, 64, 1);
    CHECK_EQ(aperture_alloc(&ap, 2), APERTURE_NONE);
    CHECK_EQ(aperture_alloc(&ap, 1), 64);
    aperture_fini(&ap);
}

static void aperture_runs_cross_words(void)
{
    struct vkmt_aperture ap;

    CHECK_EQ(aperture_init(&ap, 256), 0);
    CHECK_EQ(aperture_alloc(&ap, 60), 0);
    CHECK_EQ(aperture_alloc(&ap, 100), 60); /* spans words 0..2 */
    CHECK_EQ(aperture_alloc(&ap, 96), 160);
    CHECK_EQ(ap.used, 256);
    aperture_free(&ap, 60, 100);
    CHECK_EQ(aperture_alloc(&ap, 101), APERTURE_NONE);
    CHECK_EQ(aperture_alloc(&ap, 100), 60);
    aperture_fini(&ap);
}

static void aperture_wraps_to_earlier_holes(void)
{
    struct vkmt_aperture ap;

    CHECK_EQ(aperture_init(&ap, 64), 0);
    CHECK_EQ(aperture_alloc(&ap, 8), 0);
    CHECK_EQ(aperture_alloc(&ap, 8), 8);
    CHECK_EQ(aperture_alloc(&ap, 40), 16);
    aperture_free(&ap, 0, 8);
    /* 8 free pages at the end and 8 at the start: the cursor is at 56. */
    CHECK_EQ(aperture_alloc(&ap, 8), 56);
    CHECK_EQ(aperture_alloc(&ap, 8), 0);
    CHECK_EQ(aperture_alloc(&ap, 1), APERTURE_NONE);
    aperture_free(&ap, 8, 48);
    /* The cursor (8) sits at the start of the freed middle run. */
    CHECK_EQ(aperture_alloc(&ap, 48), 8);
    aperture_fini(&ap);
}

static void aperture_fragmented_search(void)
{
    struct vkmt_aperture ap;
    uint32_t first;

    CHECK_EQ(aperture_init(&ap, 1024), 0);
    for (uint32_t i = 0; i < 1024; i++) {
        CHECK_EQ(aperture_alloc(&ap, 1), i);
    }
    /* Free every other page, then one run of 3 in the middle. */
    for (uint32_t i = 0; i < 1024; i += 2) {
        aperture_free(&ap, i, 1);
    }
    aperture_free(&ap, 501, 1);
    CHECK_EQ(aperture_alloc(&ap, 3), 500);
    first = aperture_alloc(&ap, 2);
    CHECK_EQ(first, APERTURE_NONE);
    aperture_clear(&ap);
    CHECK_EQ(ap.used, 0);
    CHECK_EQ(aperture_alloc(&ap, 1024), 0);
    aperture_fini(&ap);
}

const struct test aperture_tests[] = {
    TEST(aperture_fills_and_refuses),
    TEST(aperture_runs_cross_words),
    TEST(aperture_wraps_to_earlier_holes),
    TEST(aperture_fragmented_search),
};
const unsigned aperture_ntests = sizeof(aperture_tests) / sizeof(aperture_tests[0]);
