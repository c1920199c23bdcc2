/* SPDX-License-Identifier: MIT */
/*
 * Host-memory backend: the aperture is a shared file mapping (a memfd unless
 * the host supplies its own memory). Allocation content lives directly in the
 * aperture, so lock and unlock need no work; discard and scrub return pages
 * to the host by punching holes, and the engine scrubs every range before it
 * hands it out, which is what makes new and recommitted ranges read as zero.
 */
#ifndef _GNU_SOURCE /* QEMU defines it for every file */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vkmt_backend.h"
#include "vkmt_proto.h"

struct backend_mem {
    struct vkmt_backend b;
    bool owned; /* fd and mapping were created here */
};

static int mem_scrub(struct vkmt_backend *b, uint64_t off, uint64_t len)
{
    struct backend_mem *m = (struct backend_mem *)b;

    if (off > b->size || len > b->size - off) {
        return -ERANGE;
    }
    if (m->owned) {
        /* Freeing the file's blocks is what lowers the host's memory use. */
        return fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                         (off_t)len) == 0
                   ? 0
                   : -errno;
    }
    /*
     * The caller's mapping may start anywhere in its file (QEMU's
     * memory-backend-file offset=): punching through the mapping frees the
     * file range the kernel maps there, whatever that offset is, and never
     * touches file bytes outside the mapping.
     */
    if (madvise(b->base + off, len, MADV_REMOVE) == 0) {
        return 0;
    }
    if (b->fd >= 0) {
        return -errno; /* a file the kernel cannot punch: its pages stay */
    }
    /* Private anonymous memory: dropping the pages is the closest we get. */
    return madvise(b->base + off, len, MADV_DONTNEED) == 0 ? 0 : -errno;
}

static int mem_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)id;
    return mem_scrub(b, off, len);
}

static void mem_destroy(struct vkmt_backend *b)
{
    struct backend_mem *m = (struct backend_mem *)b;

    if (m->owned) {
        munmap(b->base, b->size);
        close(b->fd);
    }
    free(m);
}

static const struct vkmt_backend_ops mem_ops = {
    .name = "memory",
    .discard = mem_discard,
    .scrub = mem_scrub,
    .destroy = mem_destroy,
};

int vkmt_backend_mem_create(uint64_t size, int fd, void *base, struct vkmt_backend **out)
{
    struct backend_mem *m;

    if (size == 0 || size % VKMT_PAGE_SIZE || (!base && fd >= 0)) {
        return -EINVAL;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    m->b.ops = &mem_ops;
    m->b.size = size;
    m->b.max_alloc = size;
    m->b.max_texture_dim = VKMT_TEXTURE_MAX_DIM;
    if (base) {
        m->b.fd = fd;
        m->b.base = base;
        *out = &m->b;
        return 0;
    }
    m->owned = true;
    m->b.fd = memfd_create("vkmt-aperture", MFD_CLOEXEC);
    if (m->b.fd < 0 || ftruncate(m->b.fd, (off_t)size) < 0) {
        int err = -errno;

        if (m->b.fd >= 0) {
            close(m->b.fd);
        }
        free(m);
        return err;
    }
    m->b.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->b.fd, 0);
    if (m->b.base == MAP_FAILED) {
        int err = -errno;

        close(m->b.fd);
        free(m);
        return err;
    }
    *out = &m->b;
    return 0;
}
