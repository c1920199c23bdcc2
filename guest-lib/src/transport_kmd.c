/* SPDX-License-Identifier: MIT */
/*
 * The kmd transport: a vkmt device behind the guest kernel driver
 * (guest-kmd/, docs/KMD.md), reached through /dev/vkmtN. The driver owns the
 * rings, so this transport maps no BAR: the queue client hands each packed
 * command to the driver (submit), which copies its payload from this
 * process's memory, waits for the interrupt and copies the results back.
 * Opening the node gives this process its own queue; closing it releases the
 * queue and everything created through it, even when the process dies.
 * Aperture bytes are mapped one locked allocation at a time (map).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "transport.h"
#include "vkmt_kmd.h"
#include "vkmt_proto.h"

#define MAX_DEVICES 16

struct kmd_dev {
    struct vkmt_transport t;
    int fd;
    bool no_run; /* a driver without VKMT_KMD_IOC_RUN: SUBMIT instead */
};

static void node(uint32_t index, char *path, size_t len)
{
    snprintf(path, len, "%s%u", VKMT_KMD_NODE_PREFIX, index);
}

/* Nodes are numbered from 0 without gaps while their devices are bound. */
static uint32_t kmd_count(void)
{
    char path[64];
    uint32_t n = 0;

    for (; n < MAX_DEVICES; n++) {
        node(n, path, sizeof(path));
        if (access(path, F_OK) != 0) {
            break;
        }
    }
    return n;
}

static void kmd_close(struct vkmt_transport *t)
{
    struct kmd_dev *d = (struct kmd_dev *)t;

    if (d->fd >= 0) {
        close(d->fd); /* the driver releases the queue and its objects */
    }
    free(t->staging);
    free(d);
}

/* No registers: the driver does the handshake and owns the queue. */
static uint32_t kmd_reg_read(struct vkmt_transport *t, uint32_t off)
{
    (void)t;
    (void)off;
    return 0;
}

static void kmd_reg_write(struct vkmt_transport *t, uint32_t off, uint32_t val)
{
    (void)t;
    (void)off;
    (void)val;
}

static int kmd_submit(struct vkmt_transport *t, struct vkmt_kmd_cmd *cmd)
{
    struct kmd_dev *d = (struct kmd_dev *)t;
    struct vkmt_kmd_submit s = { .cmds = (uintptr_t)cmd, .count = 1 };

    if (!d->no_run) {
        if (ioctl(d->fd, VKMT_KMD_IOC_RUN, cmd) == 0) {
            return 0;
        }
        if (errno != ENOTTY) {
            return -errno;
        }
        d->no_run = true;
    }
    return ioctl(d->fd, VKMT_KMD_IOC_SUBMIT, &s) < 0 ? -errno : 0;
}

static void *kmd_map(struct vkmt_transport *t, uint64_t off, uint64_t len)
{
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, ((struct kmd_dev *)t)->fd,
                   (off_t)off);

    return p == MAP_FAILED ? NULL : p;
}

static void kmd_unmap(struct vkmt_transport *t, void *p, uint64_t len)
{
    (void)t;
    munmap(p, (size_t)len);
}

static int kmd_reset(struct vkmt_transport *t)
{
    return ioctl(((struct kmd_dev *)t)->fd, VKMT_KMD_IOC_RESET) < 0 ? -errno : 0;
}

static int kmd_event_fd(struct vkmt_transport *t)
{
    return ((struct kmd_dev *)t)->fd;
}

static int kmd_read_events(struct vkmt_transport *t, struct vkmt_qev *out, uint32_t max,
                           uint32_t *lost)
{
    struct kmd_dev *d = (struct kmd_dev *)t;
    struct vkmt_kmd_event ev[VKMT_KMD_MAX_EVENTS];
    struct vkmt_kmd_read_events req = { .events = (uintptr_t)ev };
    uint32_t flags = 0;

    /* The sticky bits keep the file readable: take them, and see a removal. */
    if (ioctl(d->fd, VKMT_KMD_IOC_EVENTS, &flags) < 0) {
        return -errno;
    }
    if (flags & VKMT_KMD_EV_REMOVED) {
        return -ENODEV;
    }
    req.count = max < VKMT_KMD_MAX_EVENTS ? max : VKMT_KMD_MAX_EVENTS;
    if (ioctl(d->fd, VKMT_KMD_IOC_READ_EVENTS, &req) < 0) {
        return errno == ENOTTY || errno == EOPNOTSUPP ? -ENOTSUP : -errno;
    }
    /* The driver checked the ring; its own answer is bounded all the same. */
    if (req.count > max) {
        return -EPROTO;
    }
    for (uint32_t i = 0; i < req.count; i++) {
        out[i] = (struct vkmt_qev){ .type = ev[i].type, .value = ev[i].value };
    }
    *lost = req.lost;
    return (int)req.count;
}

static int kmd_open(uint32_t index, struct vkmt_transport **out);

const struct vkmt_transport_ops vkmt_kmd_transport = {
    .name = "kmd",
    .count = kmd_count,
    .open = kmd_open,
    .close = kmd_close,
    .reg_read = kmd_reg_read,
    .reg_write = kmd_reg_write,
    .submit = kmd_submit,
    .map = kmd_map,
    .unmap = kmd_unmap,
    .reset = kmd_reset,
    .event_fd = kmd_event_fd,
    .read_events = kmd_read_events,
};

static int kmd_open(uint32_t index, struct vkmt_transport **out)
{
    struct vkmt_kmd_info info = { 0 };
    struct kmd_dev *d;
    char path[64];

    d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->t.ops = &vkmt_kmd_transport;
    d->t.lock_fd = -1;
    node(index, path, sizeof(path));
    d->fd = open(path, O_RDWR | O_CLOEXEC);
    if (d->fd < 0) {
        int err = -errno;

        free(d);
        return err;
    }
    if (ioctl(d->fd, VKMT_KMD_IOC_INFO, &info) < 0 || info.version != VKMT_KMD_VERSION ||
        info.staging_size < VKMT_STAGING_SIZE || !(d->t.staging = malloc(VKMT_STAGING_SIZE))) {
        kmd_close(&d->t);
        return -ENODEV;
    }
    d->t.luid = info.luid;
    d->t.aperture_size = info.aperture_size;
    d->t.queue = info.queue;
    d->t.features = info.features;
    *out = &d->t;
    return 0;
}
