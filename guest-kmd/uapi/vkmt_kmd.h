/* SPDX-License-Identifier: MIT */
/*
 * The vkmt guest kernel driver's user-space interface (docs/KMD.md). One
 * character device per vkmt PCI device, /dev/vkmtN. Opening it gives the
 * open file its own device queue; closing it (or the process's death)
 * releases the queue and everything created through it. Commands are the
 * protocol's submission entries (vkmt_proto.h), packed by libvkmt as for the
 * PCI transport; the driver copies each one's payload from user memory into
 * its queue's staging area, rings the doorbell, waits for the completion
 * (a bounded spin, then the interrupt) and copies the results back.
 *
 * Versioned: VKMT_KMD_IOC_INFO reports VKMT_KMD_VERSION, and a library that
 * finds another major version uses another transport. Every structure has
 * the same layout on 32-bit and 64-bit user space (fixed-width fields,
 * 8-byte aligned, pointers carried as __u64), checked at build time below.
 */
#ifndef VKMT_KMD_H
#define VKMT_KMD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VKMT_KMD_VERSION 1u
/* Device nodes are /dev/vkmt0, /dev/vkmt1, ...: this prefix, then the index. */
#define VKMT_KMD_NODE_PREFIX "/dev/vkmt"

/* VKMT_KMD_IOC_INFO: what this file's queue is and what the device offers. */
struct vkmt_kmd_info {
	__u32 version;	       /* VKMT_KMD_VERSION */
	__u32 features;	       /* VKMT_F_* negotiated with the device */
	__u64 luid;	       /* stable id of the device (its PCI address) */
	__u64 aperture_size;   /* bytes; mmap offsets are aperture offsets */
	__u64 max_alloc;       /* the device's max_alloc register */
	__u32 queue;	       /* the device queue this file owns */
	__u32 max_batch;       /* most elements one command carries */
	__u32 staging_size;    /* most payload + result bytes one command moves */
	__u32 max_texture_dim; /* the device's max_texture_dim register */
	__u32 epoch;	       /* the device's removal epoch when the file opened */
	__u32 reserved;	       /* 0 */
};

/*
 * One command. @sqe is the protocol's submission entry; its payload_off and
 * result_off are ignored on the way in (the driver places the payload and
 * the results in its staging area itself), its cid is the driver's, and the
 * driver decides about VKMT_SQE_F_IRQ (the caller need not set it). @payload
 * points at sqe.payload_len bytes and @results at sqe.result_len bytes of the
 * caller's memory (0 when the length is 0). On return @status, @value0 and
 * @value1 are the completion's; results are copied back only on success,
 * and the results buffer is zero-filled before the command runs (which is
 * how the driver finds an unwritable one before the device acts).
 */
struct vkmt_kmd_cmd {
	__u8 sqe[64];	/* struct vkmt_sqe */
	__u64 payload;	/* user pointer */
	__u64 results;	/* user pointer */
	__u32 status;	/* out: NTSTATUS */
	__u32 reserved; /* 0 */
	__u64 value0;	/* out */
	__u64 value1;	/* out */
};

/*
 * VKMT_KMD_IOC_SUBMIT: run @count commands (1..VKMT_KMD_MAX_CMDS) from the
 * array at @cmds, in order; each one's outcome is written into its entry.
 * The ioctl returns 0 once every command completed (whatever its status);
 * -EFAULT for memory the caller cannot read or write (libvkmt reports it as
 * STATUS_INVALID_PARAMETER), -EINVAL for a malformed request, -ENODEV once
 * the device was reset or removed (every later call too: STATUS_DEVICE_REMOVED),
 * -EINTR when a fatal signal interrupted the wait (the command may have run),
 * -ETIMEDOUT when the device did not answer in time (the file is then
 * unusable: -ENODEV from then on).
 */
struct vkmt_kmd_submit {
	__u64 cmds; /* user pointer to struct vkmt_kmd_cmd[count] */
	__u32 count;
	__u32 flags; /* 0 */
};
#define VKMT_KMD_MAX_CMDS 64u

/*
 * VKMT_KMD_IOC_EVENTS: the device events seen since the last call (poll()
 * reports POLLIN while there are any), VKMT_KMD_EV_* bits, cleared by the
 * read.
 */
#define VKMT_KMD_EV_BUDGET 0x1u	 /* the budget or another config field changed */
#define VKMT_KMD_EV_REMOVED 0x2u /* reset or removed: every later call fails */

/*
 * VKMT_KMD_IOC_READ_EVENTS: take up to @count (1..VKMT_KMD_MAX_EVENTS)
 * device events (protocol 1.2, VKMT_F_EVENTS in the info's features) from
 * this file's queue, oldest first, into the array at @events; poll() reports
 * POLLIN while any wait. On return @count is how many were written (0: none
 * waiting) and @lost how many the device dropped on a full ring since the
 * last call. An event taken is consumed even when writing it to @events
 * fails (-EFAULT). -EOPNOTSUPP without VKMT_F_EVENTS, -EINVAL for a count
 * out of range or a reserved field not 0, -ENODEV once the device is gone,
 * -EIO once the device broke the event ring's rules (every later call too).
 * A driver before this call answers -ENOTTY.
 */
struct vkmt_kmd_event {
	__u32 type;	/* VKMT_QEV_* (vkmt_proto.h), only the types it defines */
	__u32 reserved; /* 0 */
	__u64 value;	/* bytes to trim, or the new budget */
};

struct vkmt_kmd_read_events {
	__u64 events; /* user pointer to struct vkmt_kmd_event[count] */
	__u32 count;  /* in: room; out: events written */
	__u32 lost;   /* out: events the device dropped since the last call */
};
#define VKMT_KMD_MAX_EVENTS 64u

#define VKMT_KMD_IOC_MAGIC 'V'
#define VKMT_KMD_IOC_INFO _IOR(VKMT_KMD_IOC_MAGIC, 0x00, struct vkmt_kmd_info)
#define VKMT_KMD_IOC_SUBMIT _IOW(VKMT_KMD_IOC_MAGIC, 0x01, struct vkmt_kmd_submit)
/* Does nothing: the floor of one kernel crossing, for benchmarks. */
#define VKMT_KMD_IOC_NOP _IO(VKMT_KMD_IOC_MAGIC, 0x02)
#define VKMT_KMD_IOC_EVENTS _IOR(VKMT_KMD_IOC_MAGIC, 0x03, __u32)
/* Resets the device (every file's queue goes); needs CAP_SYS_ADMIN. */
#define VKMT_KMD_IOC_RESET _IO(VKMT_KMD_IOC_MAGIC, 0x04)
/*
 * VKMT_KMD_IOC_RUN: one command, passed as the argument itself, with
 * VKMT_KMD_IOC_SUBMIT's semantics for a count of 1: the cheaper call for
 * the common case. Drivers before it answer -ENOTTY; SUBMIT then does the
 * same.
 */
#define VKMT_KMD_IOC_RUN _IOWR(VKMT_KMD_IOC_MAGIC, 0x05, struct vkmt_kmd_cmd)
#define VKMT_KMD_IOC_READ_EVENTS _IOWR(VKMT_KMD_IOC_MAGIC, 0x06, struct vkmt_kmd_read_events)

/*
 * mmap(fd, len, ..., offset): maps aperture bytes [offset, offset + len), page
 * aligned, only while they lie within one allocation this file has LOCKed
 * through the driver (the LOCK's completion gave its offset and size). The
 * UNLOCK that ends the file's last LOCK of it, and any DESTROY that may
 * reach it (of the allocation, its resource or its device), remove the
 * mapping before the driver forwards them, so a stale pointer faults
 * instead of reaching memory that is reused. Only MAP_SHARED (else -EINVAL);
 * a range outside the file's LOCKed allocations is -EACCES.
 */

_Static_assert(sizeof(struct vkmt_kmd_info) == 56, "vkmt_kmd_info layout");
_Static_assert(sizeof(struct vkmt_kmd_cmd) == 104, "vkmt_kmd_cmd layout");
_Static_assert(sizeof(struct vkmt_kmd_submit) == 16, "vkmt_kmd_submit layout");
_Static_assert(sizeof(struct vkmt_kmd_event) == 16, "vkmt_kmd_event layout");
_Static_assert(sizeof(struct vkmt_kmd_read_events) == 16, "vkmt_kmd_read_events layout");

#endif /* VKMT_KMD_H */
