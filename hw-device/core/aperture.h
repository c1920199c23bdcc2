/* SPDX-License-Identifier: MIT */
/*
 * Page-granular range allocator for the aperture: one bit per page and a
 * next-fit cursor, so the per-allocation cost is a fraction of a byte and the
 * common create/destroy patterns find space without rescanning the start.
 */
#ifndef VKMT_APERTURE_H
#define VKMT_APERTURE_H

#include <stdint.h>

struct vkmt_aperture {
    uint64_t *bits; /* 1 = page in use */
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

#endif /* VKMT_APERTURE_H */
