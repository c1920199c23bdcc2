/* SPDX-License-Identifier: MIT */
/*
 * The aperture's page bitmap. Searches skip whole 64-page words when they
 * are full (looking for a start) or empty (measuring a run).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aperture.h"

#define WORD_BITS 64u

int aperture_init(struct vkmt_aperture *ap, uint32_t npages)
{
    size_t words = ((size_t)npages + WORD_BITS - 1) / WORD_BITS;

    ap->bits = calloc(words ? words : 1, sizeof(uint64_t));
    ap->held = calloc(words ? words : 1, sizeof(uint64_t));
    if (!ap->bits || !ap->held) {
        aperture_fini(ap);
        return -ENOMEM;
    }
    ap->npages = npages;
    ap->cursor = 0;
    ap->used = 0;
    return 0;
}

void aperture_fini(struct vkmt_aperture *ap)
{
    free(ap->bits);
    free(ap->held);
    ap->bits = ap->held = NULL;
}

void aperture_clear(struct vkmt_aperture *ap)
{
    memset(ap->bits, 0, ((size_t)ap->npages + WORD_BITS - 1) / WORD_BITS * 8);
    memset(ap->held, 0, ((size_t)ap->npages + WORD_BITS - 1) / WORD_BITS * 8);
    ap->cursor = 0;
    ap->used = 0;
}

/* First page at or after @i (below @end) whose bit in @map equals @want; or @end. */
static uint32_t scan_map(const uint64_t *map, uint32_t i, uint32_t end, int want)
{
    while (i < end) {
        uint64_t w = map[i / WORD_BITS];

        if (!want) {
            w = ~w;
        }
        w >>= i % WORD_BITS;
        if (w) {
            uint32_t hit = i + (uint32_t)__builtin_ctzll(w);

            return hit < end ? hit : end;
        }
        i = (i / WORD_BITS + 1) * WORD_BITS;
    }
    return end;
}

static uint32_t scan(const struct vkmt_aperture *ap, uint32_t i, uint32_t end, int want)
{
    return scan_map(ap->bits, i, end, want);
}

static void set_map(uint64_t *map, uint32_t first, uint32_t n, int value)
{
    for (uint32_t i = first; i < first + n;) {
        uint32_t bit = i % WORD_BITS;
        uint32_t span = WORD_BITS - bit;
        uint64_t mask;

        if (span > first + n - i) {
            span = first + n - i;
        }
        mask = (span == WORD_BITS ? ~0ull : ((1ull << span) - 1)) << bit;
        if (value) {
            map[i / WORD_BITS] |= mask;
        } else {
            map[i / WORD_BITS] &= ~mask;
        }
        i += span;
    }
}

static uint32_t find_run(struct vkmt_aperture *ap, uint32_t from, uint32_t end, uint32_t n)
{
    uint32_t i = from;

    while (end - i >= n) {
        uint32_t start = scan(ap, i, end, 0);
        uint32_t stop;

        if (end - start < n) {
            return APERTURE_NONE;
        }
        stop = scan(ap, start, start + n, 1);
        if (stop == start + n) {
            return start;
        }
        i = stop + 1;
        if (i > end) {
            break;
        }
    }
    return APERTURE_NONE;
}

uint32_t aperture_alloc(struct vkmt_aperture *ap, uint32_t n)
{
    uint32_t first;

    if (n == 0 || n > ap->npages - ap->used) {
        return APERTURE_NONE;
    }
    first = find_run(ap, ap->cursor, ap->npages, n);
    if (first == APERTURE_NONE) {
        /* Wrap: the run may straddle the cursor, so search up to its end. */
        uint32_t end = ap->cursor + n - 1 < ap->npages ? ap->cursor + n - 1 : ap->npages;

        first = find_run(ap, 0, end, n);
    }
    if (first == APERTURE_NONE) {
        return APERTURE_NONE;
    }
    set_map(ap->bits, first, n, 1);
    ap->used += n;
    ap->cursor = first + n == ap->npages ? 0 : first + n;
    return first;
}

int aperture_claim(struct vkmt_aperture *ap, uint32_t first, uint32_t n)
{
    if (n == 0 || first >= ap->npages || n > ap->npages - first) {
        return -ERANGE;
    }
    if (scan(ap, first, first + n, 1) != first + n) {
        return -EBUSY;
    }
    set_map(ap->bits, first, n, 1);
    ap->used += n;
    return 0;
}

void aperture_free(struct vkmt_aperture *ap, uint32_t first, uint32_t n)
{
    set_map(ap->bits, first, n, 0);
    ap->used -= n;
}

void aperture_hold(struct vkmt_aperture *ap, uint32_t first, uint32_t n, int held)
{
    set_map(ap->held, first, n, held);
}

uint32_t aperture_next_unheld(const struct vkmt_aperture *ap, uint32_t from, uint32_t *n)
{
    uint32_t first = scan_map(ap->held, from, ap->npages, 0);

    *n = scan_map(ap->held, first, ap->npages, 1) - first;
    return first;
}
