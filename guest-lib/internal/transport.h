/* SPDX-License-Identifier: MIT */
/*
 * How libvkmt reaches a device. A transport only maps the BARs and moves
 * register values; the queue client above it (qclient.c) is shared by all of
 * them, so rings and commands behave the same over every transport.
 */
#ifndef VKMT_TRANSPORT_H
#define VKMT_TRANSPORT_H

#include <stdint.h>

struct vkmt_transport;
struct vkmt_kmd_cmd; /* vkmt_kmd.h */
struct vkmt_qev;     /* vkmt_proto.h */

struct vkmt_transport_ops {
    const char *name;
    /* Number of devices this transport can reach now. */
    uint32_t (*count)(void);
    /* Map device @index. Returns 0 and sets *out, or a negative errno. */
    int (*open)(uint32_t index, struct vkmt_transport **out);
    void (*close)(struct vkmt_transport *t);
    uint32_t (*reg_read)(struct vkmt_transport *t, uint32_t off);
    void (*reg_write)(struct vkmt_transport *t, uint32_t off, uint32_t val);
    /*
     * Forwarding transports only (kmd); NULL for those that map the rings.
     * The kernel driver owns the queue: submit runs one packed command and
     * fills in its outcome (0, or a negative errno: -EFAULT for memory the
     * caller cannot access, -ENODEV once the device is gone); map gives
     * access to @len aperture bytes at @off that a LOCK just granted (NULL
     * when refused), unmap takes it back; reset resets the device (-EPERM
     * without the privilege).
     */
    int (*submit)(struct vkmt_transport *t, struct vkmt_kmd_cmd *cmd);
    void *(*map)(struct vkmt_transport *t, uint64_t off, uint64_t len);
    void (*unmap)(struct vkmt_transport *t, void *p, uint64_t len);
    int (*reset)(struct vkmt_transport *t);
    /*
     * Device events (VKMT_F_EVENTS) where the driver owns the rings (kmd);
     * NULL where the library reads the event ring itself. event_fd: a file
     * that polls readable (POLLIN) while events wait. read_events takes up
     * to @max of them without blocking: their count (0: none), -ENODEV once
     * the device is gone, -ENOTSUP when the driver has no events, another
     * negative errno for a driver that broke the rules; *@lost is set to
     * the events the device dropped since the last call.
     */
    int (*event_fd)(struct vkmt_transport *t);
    int (*read_events)(struct vkmt_transport *t, struct vkmt_qev *out, uint32_t max,
                       uint32_t *lost);
};

struct vkmt_transport {
    const struct vkmt_transport_ops *ops;
    uint8_t *ctrl; /* control memory (BAR 2) */
    uint64_t ctrl_size;
    uint8_t *aperture; /* allocation content (BAR 4) */
    uint64_t aperture_size;
    uint64_t luid; /* stable id of this device: LowPart | HighPart << 32 */
    /*
     * A file every process that uses this device opens (its own open file
     * description per transport): the owner of queue q holds an OFD write
     * lock on byte q of it while it holds the queue, which is how others
     * tell a live owner from a dead one (PROTOCOL.md 5, Reap). -1 when the
     * device's queues are never shared with another process (loopback).
     */
    int lock_fd;
    /* Forwarding transports: the queue the driver gave this process, the
     * features it negotiated, and a private buffer laid out as a staging
     * area, from which the driver copies payloads and into which it copies
     * results. */
    uint32_t queue;
    uint32_t features;
    uint8_t *staging;
};

/* The built-in transports for real devices: through the guest kernel driver
 * (transport_kmd.c), and from user space through sysfs (transport_pci.c). */
extern const struct vkmt_transport_ops vkmt_kmd_transport;
extern const struct vkmt_transport_ops vkmt_pci_transport;

/* Symbol the loopback library exports its ops under. */
#define VKMT_LOOPBACK_SYMBOL "vkmt_loopback_transport"
#define VKMT_LOOPBACK_SONAME "libvkmt-loopback.so.1"

/*
 * The loopback library's host controls, for tests and tools that play the
 * host's part (QMP's qom-set on a real device): @prop "trim",
 * "trim-notify", "budget" as in docs/DEVICE.md, or "periodic-trim" (@value
 * 1: a restart, 0: a tick). 0, -ENODEV with no device open, -EINVAL.
 */
int vkmt_loopback_host(const char *prop, uint64_t value);

/*
 * The transport chosen by VKMT_TRANSPORT for this process, loaded on first
 * use; NULL when none is available (the reason goes to stderr once).
 */
const struct vkmt_transport_ops *vkmt_transport_get(void);

#endif /* VKMT_TRANSPORT_H */
