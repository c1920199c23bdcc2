/* SPDX-License-Identifier: MIT */
/*
 * The interface between the engine and whatever holds allocation content.
 * The aperture is the guest-visible window (a PCI BAR); a backend decides what
 * stands behind each allocation's range of it. The host-memory backend maps
 * the aperture straight onto a memfd; a GPU backend keeps a staging view in
 * the aperture and moves content to GPU resources on unlock and back on lock,
 * which is why per-allocation hooks carry an id and a range.
 */
#ifndef VKMT_BACKEND_H
#define VKMT_BACKEND_H

#include <stdint.h>

struct vkmt_backend;

/* A 2D texture allocation's shape. Its rows are packed from the start of the
 * range: row y starts at y * stride, stride = bytes per pixel * width. */
struct vkmt_shape {
    uint32_t format; /* VKMT_FORMAT_* */
    uint32_t width;
    uint32_t height;
    uint32_t stride; /* bytes per row */
};

struct vkmt_backend_ops {
    const char *name;
    /* Back @len bytes at @off for allocation @id, reading as zeros; @shape is
     * NULL for a byte buffer, else the texture it holds (a backend may treat
     * it as bytes). NULL hook: nothing to do. */
    int (*commit)(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                  const struct vkmt_shape *shape);
    /* Drop the content of the range and give its memory back to the host. */
    int (*discard)(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len);
    /* The same for aperture pages no allocation holds: the guest can write
     * into them through the BAR, and after this they read as zeros and
     * hold no host memory. Required: the engine scrubs every range before
     * handing it out and the free space on every trim. */
    int (*scrub)(struct vkmt_backend *b, uint64_t off, uint64_t len);
    /* The guest is about to touch / has finished with the range. NULL: nothing to do. */
    int (*lock)(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len);
    int (*unlock)(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len);
    void (*destroy)(struct vkmt_backend *b);
};

/*
 * Hooks return 0 or a negative errno; the engine turns failures into statuses.
 * A commit may fail (the GPU is out of memory): the engine then fails that
 * command and nothing else. What a backend can never hold it states in its
 * limits, which the engine checks and the guest reads in registers, so such
 * a request is refused up front as INVALID_PARAMETER.
 */
struct vkmt_backend {
    const struct vkmt_backend_ops *ops;
    uint8_t *base;            /* aperture mapping in the host process */
    uint64_t size;            /* aperture bytes, a multiple of VKMT_PAGE_SIZE */
    int fd;                   /* file behind the aperture, or -1 */
    uint64_t max_alloc;       /* largest allocation it can back, at most size */
    uint32_t max_texture_dim; /* widest and tallest texture, at most VKMT_TEXTURE_MAX_DIM */
};

/*
 * Host-memory backend. With @base NULL (and @fd -1) it creates a memfd of
 * @size bytes and maps it; otherwise it uses the caller's mapping @base and
 * its file @fd (-1 for anonymous memory), which the caller keeps owning; the
 * mapping MUST be shared (MAP_SHARED), or punching the file frees nothing the
 * mapping shows. Discard and scrub punch holes in the file (through the
 * caller's mapping, so that a mapping at any file offset punches its own
 * range), so the host really gets the pages back and the range reads as
 * zeros. Returns 0 or a negative errno.
 */
int vkmt_backend_mem_create(uint64_t size, int fd, void *base, struct vkmt_backend **out);

static inline void vkmt_backend_destroy(struct vkmt_backend *b)
{
    if (b) {
        b->ops->destroy(b);
    }
}

#endif /* VKMT_BACKEND_H */
