/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * vkmt guest kernel driver: what its files share (docs/KMD.md).
 *
 * One struct vkmt_dev per bound PCI device, one struct vkmt_file per open
 * file. Files keep their device alive with a reference, so remove() can run
 * while files are open: it marks the device removed, wakes every waiter and
 * then, under the write side of @bar_sem, stops using the BARs; files that
 * come later get -ENODEV.
 */
#ifndef VKMT_DRV_H
#define VKMT_DRV_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/pid.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "uapi/vkmt_kmd.h"
#include "vkmt_proto.h"

#define VKMT_DRV_NAME "vkmt"
#define VKMT_MAX_DEVS 16

/*
 * How long a command may take before the file is given up (-ETIMEDOUT), in
 * ms: the module parameter cmd_timeout_ms (30000; root may change it at run
 * time through /sys/module/vkmt/parameters, as the tests of a device that
 * never answers do).
 */
extern unsigned int vkmt_cmd_timeout_ms;
#define VKMT_CMD_TIMEOUT_MS READ_ONCE(vkmt_cmd_timeout_ms)
/* How long the busy-wait for a completion lasts before the driver sleeps:
 * long enough to catch a device that answers from another thread. */
#define VKMT_SPIN_NS 30000
/* Looks at the completion between two CPU relax hints in that spin. */
#define VKMT_SPIN_BURST 1024
/* Commands in a row caught by the spin after which the driver stops asking
 * the device for completion interrupts (until one misses the spin). */
#define VKMT_QUICK_RUN 8
/* How often the device's configuration and reset registers are looked at. */
#define VKMT_WATCH_MS 1000

struct vkmt_dev {
	struct pci_dev *pdev;
	struct kref ref;
	int minor;
	struct device *node; /* /dev/vkmtN */

	/*
	 * Read side: the BARs are in use (a command, an open, a mapping);
	 * write side: remove() or a reset takes them away.
	 */
	struct rw_semaphore bar_sem;
	bool removed; /* remove() ran: never usable again */
	u32 gen;      /* driver generation: bumped by every reset seen */

	/* Memory BARs (probe checks): readl/writel, not the port-or-memory ioread32. */
	void __iomem *regs; /* BAR 0 */
	void __iomem *ctrl; /* BAR 2, num_queues * VKMT_QUEUE_STRIDE bytes */
	phys_addr_t aper_phys;
	u64 aper_size; /* from the registers, checked against BAR 4 */
	bool aper_wc;  /* write-combining memtype reserved */

	u32 features;
	u32 num_queues;
	u32 max_batch;
	u32 max_texture_dim;
	u64 max_alloc;
	u32 epoch;	/* removal_epoch after the last bring-up */
	u32 config_gen; /* config_generation last seen */

	int nvec;
	bool irq_ok;
	/* Completions of queue q wake qwait[q] (the interrupt handler). */
	wait_queue_head_t qwait[VKMT_MAX_QUEUES];
	wait_queue_head_t event_wait; /* poll() */
	struct delayed_work watch;

	struct mutex files_lock; /* @files */
	struct list_head files;
};

/* What one file's LOCK made mappable: an allocation's aperture range. */
struct vkmt_lockrec {
	struct list_head node;
	u32 device; /* the device handle the LOCK named */
	u32 alloc;  /* the allocation handle */
	u64 offset; /* aperture bytes [offset, offset + size), page aligned */
	u64 size;
	u32 count;	  /* LOCKs not yet matched by an UNLOCK */
	bool suspended;	  /* a command that may end it is in flight: no mapping */
	unsigned long id; /* the file's serial number of this record, never 0 */
};

struct vkmt_file {
	struct vkmt_dev *vdev;
	struct list_head node; /* in vdev->files */
	struct pid *owner;     /* the process that opened it (sysfs "queues") */
	char comm[TASK_COMM_LEN];
	u32 gen;	 /* vdev->gen at open */
	u32 epoch;	 /* the device's removal_epoch at open */
	bool claimed;	 /* the queue is ours (released on close) */
	bool broken;	 /* timeout or protocol violation: -ENODEV */
	atomic_t events; /* VKMT_KMD_EV_* not yet read */

	/* The queue's event ring (VKMT_F_EVENTS): one reader at a time. */
	struct mutex ev_lock;
	u32 ev_head;	  /* events consumed; written back to sh_ev_head */
	u32 ev_lost_seen; /* sh_ev_lost at the last read */
	bool ev_broken;	  /* the device broke the ring's rules: -EIO */

	/* One command at a time: the queue state, the bounce buffer. */
	struct mutex cmd_lock;
	u32 queue;
	u32 claim_seq;
	u32 sq_tail;
	u32 cq_head;
	u32 phase;
	u32 cid;
	u32 quick;    /* commands in a row that the spin caught */
	bool pending; /* a command whose wait was interrupted */
	struct vkmt_sqe pending_sqe;
	void __iomem *q; /* this queue's control memory */
	void *buf;	 /* staging_size bytes: payloads and results */

	/*
	 * mmap rights. map_lock is taken in the fault handler under the
	 * mm's lock, so it is never held while user memory is copied.
	 */
	struct mutex map_lock;
	struct list_head locks; /* struct vkmt_lockrec */
	unsigned int nlocks;
	unsigned long next_lock_id;
	struct xarray members;	      /* allocation handle -> its resource */
	bool members_lost;	      /* an xa_store failed: match every resource */
	struct address_space mapping; /* this file's mappings only */
};

#define VKMT_MAX_LOCKRECS 65536u

/* vkmt_drv.c */
void vkmt_dev_put(struct vkmt_dev *vdev);
struct vkmt_dev *vkmt_dev_get_minor(int minor);
int vkmt_dev_reset(struct vkmt_dev *vdev);

/* vkmt_file.c */
bool vkmt_file_alive(struct vkmt_file *vf);
extern const struct file_operations vkmt_fops;

/* vkmt_submit.c */
long vkmt_ioctl_submit(struct vkmt_file *vf, void __user *arg);
long vkmt_ioctl_run(struct vkmt_file *vf, void __user *arg);
int vkmt_drain(struct vkmt_file *vf);

/* vkmt_maps.c */
int vkmt_maps_before(struct vkmt_file *vf, const struct vkmt_sqe *sqe, const void *payload);
int vkmt_maps_after(struct vkmt_file *vf, const struct vkmt_sqe *sqe, const struct vkmt_cqe *cqe,
		    const void *results);
void vkmt_maps_drop_all(struct vkmt_file *vf);
int vkmt_mmap(struct file *filp, struct vm_area_struct *vma);

#endif /* VKMT_DRV_H */
