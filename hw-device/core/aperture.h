/* SPDX-License-Identifier: MIT */
/*
 * Page-granular range allocator for the aperture: one bit per page and a
 * next-fit cursor, so the per-allocation cost is a fraction of a byte and the
 * common create/destroy patterns find space without rescanning the start.
 * A second bitmap marks the pages whose content an allocation holds
 * (committed), so that everything else can be scrubbed: the aperture is
 * guest-writable RAM, and stray writes land in free and discarded pages.
 */
#ifndef VKMT_APERTURE_H
#define VKMT_APERTURE_H

#include <stdint.h>

struct vkmt_aperture {
    uint64_t *bits; /* 1 = page in use */
    uint64_t *held; /* 1 = page holds an allocation's committed content */
    uint32_t npages;
    uint32_t cursor;
    uint32_t used;
};

#define APERTURE_NONE UINT32_MAX

/* Returns 0 or -ENOMEM. */
int aperture_init(struct vkmt_aperture *ap, uint32_t npages);
void aperture_fini(struct vkmt_aperture *ap);
void aperture_clear(struct vkmt_aperture *ap);
/* First page of a free run of @n pages, or APERTURE_NONE. */
uint32_t aperture_alloc(struct vkmt_aperture *ap, uint32_t n);
void aperture_free(struct vkmt_aperture *ap, uint32_t first, uint32_t n);
/* Take the @n pages at @first, which must lie inside the aperture and be
 * free (a snapshot being restored names its ranges). Returns 0, or -ERANGE
 * outside the aperture, -EBUSY when a page is in use. */
int aperture_claim(struct vkmt_aperture *ap, uint32_t first, uint32_t n);
/* Mark @n pages at @first as holding committed content (@held) or not. */
void aperture_hold(struct vkmt_aperture *ap, uint32_t first, uint32_t n, int held);
/* First page at or after @from that holds no committed content, with the
 * length of its run in *@n; npages (and *@n 0) when there is none. */
uint32_t aperture_next_unheld(const struct vkmt_aperture *ap, uint32_t from, uint32_t *n);

#endif /* VKMT_APERTURE_H */
