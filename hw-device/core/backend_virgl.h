/* SPDX-License-Identifier: MIT */
/*
 * The virglrenderer backend: each committed allocation is backed by a GL
 * buffer resource that virglrenderer creates on a surfaceless EGL display,
 * while the aperture stays the guest's staging view of it (docs/VIRGL.md).
 * Kept apart from vkmt_backend.h so that only builds which link
 * virglrenderer and libepoxy see it.
 */
#ifndef VKMT_BACKEND_VIRGL_H
#define VKMT_BACKEND_VIRGL_H

#include <stddef.h>
#include <stdint.h>

#include "vkmt_backend.h"

/*
 * Create the backend and start its render thread, which owns every
 * virglrenderer call. The staging aperture is given as to
 * vkmt_backend_mem_create(): @base NULL (and @fd -1) for a fresh @size-byte
 * memfd, else the caller's mapping @base and its file @fd (-1: anonymous),
 * which the caller keeps owning (QEMU's aperture RAM block). Returns 0 and
 * sets *out, or a negative errno with a one-line reason in @err (@errlen
 * bytes, may be 0): -EBUSY when another virgl backend or another
 * virglrenderer user (virtio-gpu-gl) lives in this process (its state is
 * process-global), -ENODEV when EGL or virglrenderer cannot initialise,
 * -EINVAL for a bad size, -ENOMEM.
 */
int vkmt_backend_virgl_create(uint64_t size, int fd, void *base, struct vkmt_backend **out,
                              char *err, size_t errlen);

struct vkmt_virgl_info {
    uint64_t resources;      /* live GPU resources */
    uint64_t resource_bytes; /* bytes they hold */
    uint64_t textures;       /* of the live resources, 2D textures */
    uint64_t creates;        /* resources created, cumulative */
    uint64_t destroys;       /* resources unreferenced, cumulative */
    uint64_t writes;         /* staging -> resource transfers (unlock) */
    uint64_t reads;          /* resource -> staging transfers (lock) */
    uint64_t gl_memory;      /* bytes the GL driver reports for buffers, 0: it does not say */
    char renderer[64];       /* GL_RENDERER of the context, e.g. "llvmpipe (...)" */
};

/* Counters and the GL renderer of a virgl backend @b. Returns 0 or -EINVAL
 * when @b is another kind of backend. */
int vkmt_backend_virgl_info(struct vkmt_backend *b, struct vkmt_virgl_info *out);

/*
 * The budget to create a device over backend @b with, given the configured
 * @budget: @budget when set (non-zero) or when @b is not a virgl backend,
 * else what the GL driver reports (gl_memory above), else 0 (the engine's
 * default: half the aperture).
 */
uint64_t vkmt_backend_virgl_budget(struct vkmt_backend *b, uint64_t budget);

/* The virglrenderer resource handle behind allocation @id, 0 for none. */
uint32_t vkmt_backend_virgl_handle(struct vkmt_backend *b, uint32_t id);

/* Whether virglrenderer itself still knows resource @handle: lets tests see
 * that a discard really released the GPU object. */
int vkmt_backend_virgl_handle_alive(struct vkmt_backend *b, uint32_t handle);

/*
 * Exported by libvkmt-loopback for tests and benchmarks, which find it with
 * dlsym: vkmt_backend_virgl_info() of the loopback device while one is open.
 * Returns -ENODEV when none is, -EINVAL when it uses another backend.
 */
#define VKMT_LOOPBACK_VIRGL_INFO_SYMBOL "vkmt_loopback_virgl_info"
int vkmt_loopback_virgl_info(struct vkmt_virgl_info *out);

#endif /* VKMT_BACKEND_VIRGL_H */
