// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * vkmt guest kernel driver: the character device's file operations. Each
 * open file claims a device queue of its own and releases it on close, so
 * everything a process created goes when it exits, however it exits.
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vkmt.h"

#define HDR(field) offsetof(struct vkmt_queue_hdr, field)

/* Cheap test without registers: the device is there and this file's
 * generation is current. */
bool vkmt_file_alive(struct vkmt_file *vf)
{
	struct vkmt_dev *vdev = vf->vdev;

	return !READ_ONCE(vdev->removed) && READ_ONCE(vdev->gen) == vf->gen && vf->claimed &&
	       !vf->broken;
}

/* Claims a queue (section 5); the caller holds bar_sem for reading. */
static int vkmt_claim(struct vkmt_file *vf)
{
	struct vkmt_dev *vdev = vf->vdev;
	void __iomem *regs = vdev->regs;
	u32 q = readl(regs + VKMT_REG(queue_claim));

	if (q == VKMT_QUEUE_NONE)
		return -EBUSY;
	if (q >= vdev->num_queues)
		return -EIO; /* nothing we could release: the device is broken */
	vf->queue = q;
	vf->q = vdev->ctrl + (size_t)q * VKMT_QUEUE_STRIDE;
	vf->claim_seq = readl(vf->q + HDR(sh_claim_seq));
	if (readl(vf->q + HDR(sh_state)) != VKMT_QSTATE_ACTIVE) {
		writel(VKMT_REAP(q, vf->claim_seq), regs + VKMT_REG(queue_reap));
		return -EIO;
	}
	/* The claim zeroed the queue: both counters start at 0, the phase at 1. */
	vf->sq_tail = 0;
	vf->cq_head = 0;
	vf->phase = VKMT_CQE_F_PHASE;
	writel(task_tgid_nr(current), vf->q + HDR(sh_owner)); /* informative */
	vf->claimed = true;
	return 0;
}

static int vkmt_open(struct inode *inode, struct file *filp)
{
	struct vkmt_dev *vdev = vkmt_dev_get_minor(iminor(inode));
	struct vkmt_file *vf;
	int ret;

	if (!vdev)
		return -ENODEV;
	ret = -ENOMEM;
	vf = kzalloc(sizeof(*vf), GFP_KERNEL_ACCOUNT);
	if (!vf)
		goto err_put;
	/* Payloads and results pass through here on their way to staging. */
	vf->buf = kvmalloc(VKMT_STAGING_SIZE, GFP_KERNEL_ACCOUNT);
	if (!vf->buf)
		goto err_free;
	vf->vdev = vdev;
	mutex_init(&vf->cmd_lock);
	mutex_init(&vf->map_lock);
	mutex_init(&vf->ev_lock);
	INIT_LIST_HEAD(&vf->locks);
	xa_init(&vf->members);
	atomic_set(&vf->events, 0);
	/*
	 * The file's own address space: its mappings, and only its, are what
	 * an UNLOCK or DESTROY zaps with unmap_mapping_range().
	 */
	address_space_init_once(&vf->mapping);
	vf->mapping.host = inode;

	down_read(&vdev->bar_sem);
	ret = -ENODEV;
	if (!vdev->removed) {
		vf->gen = vdev->gen;
		vf->epoch = vdev->epoch;
		ret = vkmt_claim(vf);
	}
	up_read(&vdev->bar_sem);
	if (ret)
		goto err_buf;

	filp->private_data = vf;
	filp->f_mapping = &vf->mapping;
	vf->owner = get_task_pid(current, PIDTYPE_TGID);
	get_task_comm(vf->comm, current);
	mutex_lock(&vdev->files_lock);
	list_add(&vf->node, &vdev->files);
	mutex_unlock(&vdev->files_lock);
	return nonseekable_open(inode, filp);

err_buf:
	kvfree(vf->buf);
err_free:
	kfree(vf);
err_put:
	vkmt_dev_put(vdev);
	return ret;
}

/*
 * No mapping can remain (each holds a reference to the file), so only the
 * queue is left: released through queue_reap with the claim sequence seen
 * at open, which leaves alone a queue a reset gave to someone else.
 */
static int vkmt_release(struct inode *inode, struct file *filp)
{
	struct vkmt_file *vf = filp->private_data;
	struct vkmt_dev *vdev = vf->vdev;

	mutex_lock(&vdev->files_lock);
	list_del(&vf->node);
	mutex_unlock(&vdev->files_lock);

	down_read(&vdev->bar_sem);
	if (!vdev->removed && vdev->gen == vf->gen && vf->claimed)
		writel(VKMT_REAP(vf->queue, vf->claim_seq), vdev->regs + VKMT_REG(queue_reap));
	up_read(&vdev->bar_sem);

	vkmt_maps_drop_all(vf);
	xa_destroy(&vf->members);
	put_pid(vf->owner);
	kvfree(vf->buf);
	kfree(vf);
	vkmt_dev_put(vdev);
	return 0;
}

static long vkmt_ioctl_info(struct vkmt_file *vf, void __user *arg)
{
	struct vkmt_dev *vdev = vf->vdev;
	struct pci_dev *pdev = vdev->pdev;
	struct vkmt_kmd_info info = {
		.version = VKMT_KMD_VERSION,
		.features = vdev->features,
		/* The PCI transport's LUID for the same device. */
		.luid = (u64)pci_domain_nr(pdev->bus) << 32 | pdev->bus->number << 8 | pdev->devfn,
		.aperture_size = vdev->aper_size,
		.max_alloc = vdev->max_alloc,
		.queue = vf->queue,
		.max_batch = vdev->max_batch,
		.staging_size = VKMT_STAGING_SIZE,
		.max_texture_dim = vdev->max_texture_dim,
		.epoch = vf->epoch,
	};

	if (!vkmt_file_alive(vf))
		return -ENODEV;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* Whether events wait on this file's ring; the caller holds bar_sem. */
static bool vkmt_ring_pending(struct vkmt_file *vf)
{
	return (vf->vdev->features & VKMT_F_EVENTS) && vkmt_file_alive(vf) &&
	       !READ_ONCE(vf->ev_broken) &&
	       readl(vf->q + HDR(sh_ev_tail)) != READ_ONCE(vf->ev_head);
}

/*
 * Takes events from the ring into @out (@room of them) under ev_lock.
 * Every value comes from the device: the tail may run at most a ring ahead
 * of our head, entries are copied once, and an entry of a type the protocol
 * does not define, or with its reserved field set, is skipped.
 */
static int vkmt_ring_read(struct vkmt_file *vf, struct vkmt_kmd_event *out, u32 room, u32 *lost)
{
	u32 tail, n = 0, seen;

	if (!vkmt_file_alive(vf))
		return -ENODEV;
	if (vf->ev_broken)
		return -EIO;
	tail = readl(vf->q + HDR(sh_ev_tail));
	/* Pairs with the device's release store of the tail: entries after it. */
	rmb();
	if (tail - vf->ev_head > VKMT_EVQ_DEPTH) {
		dev_warn_ratelimited(
			&vf->vdev->pdev->dev,
			"queue %u: event tail %u is past head %u by more than a ring\n", vf->queue,
			tail, vf->ev_head);
		WRITE_ONCE(vf->ev_broken, true);
		return -EIO;
	}
	while (n < room && vf->ev_head != tail) {
		struct vkmt_qev e;

		memcpy_fromio(&e,
			      vf->q + VKMT_QUEUE_EVQ_OFF +
				      (vf->ev_head & (VKMT_EVQ_DEPTH - 1)) * sizeof(e),
			      sizeof(e));
		WRITE_ONCE(vf->ev_head, vf->ev_head + 1);
		if (!vkmt_qev_type_known(e.type) || e.reserved)
			continue;
		out[n].type = e.type;
		out[n].reserved = 0;
		out[n].value = e.value;
		n++;
	}
	/* Our copies are done before the device may reuse the slots. */
	mb();
	writel(vf->ev_head, vf->q + HDR(sh_ev_head));
	seen = readl(vf->q + HDR(sh_ev_lost));
	*lost = seen - vf->ev_lost_seen;
	vf->ev_lost_seen = seen;
	return n;
}

static long vkmt_ioctl_read_events(struct vkmt_file *vf, void __user *arg)
{
	struct vkmt_kmd_read_events req;
	struct vkmt_kmd_event *evs;
	u32 lost = 0;
	int n;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.count == 0 || req.count > VKMT_KMD_MAX_EVENTS || req.lost)
		return -EINVAL;
	if (!(vf->vdev->features & VKMT_F_EVENTS))
		return -EOPNOTSUPP;
	evs = kmalloc_array(req.count, sizeof(*evs), GFP_KERNEL);
	if (!evs)
		return -ENOMEM;
	down_read(&vf->vdev->bar_sem);
	mutex_lock(&vf->ev_lock);
	n = vkmt_ring_read(vf, evs, req.count, &lost);
	mutex_unlock(&vf->ev_lock);
	up_read(&vf->vdev->bar_sem);
	if (n >= 0) {
		/* User memory only after the locks: a fault may take its time. */
		req.count = n;
		req.lost = lost;
		if (copy_to_user(u64_to_user_ptr(req.events), evs, n * sizeof(*evs)) ||
		    copy_to_user(arg, &req, sizeof(req)))
			n = -EFAULT;
	}
	kfree(evs);
	return n < 0 ? n : 0;
}

static long vkmt_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct vkmt_file *vf = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VKMT_KMD_IOC_INFO:
		return vkmt_ioctl_info(vf, uarg);
	case VKMT_KMD_IOC_SUBMIT:
		return vkmt_ioctl_submit(vf, uarg);
	case VKMT_KMD_IOC_RUN:
		return vkmt_ioctl_run(vf, uarg);
	case VKMT_KMD_IOC_NOP:
		return vkmt_file_alive(vf) ? 0 : -ENODEV;
	case VKMT_KMD_IOC_EVENTS:
		/* Also after a removal: that is how the caller learns of it. */
		return put_user((u32)atomic_xchg(&vf->events, 0), (u32 __user *)uarg);
	case VKMT_KMD_IOC_READ_EVENTS:
		return vkmt_ioctl_read_events(vf, uarg);
	case VKMT_KMD_IOC_RESET:
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		return vkmt_dev_reset(vf->vdev);
	default:
		return -ENOTTY;
	}
}

static __poll_t vkmt_poll(struct file *filp, poll_table *wait)
{
	struct vkmt_file *vf = filp->private_data;
	bool ring = false;

	poll_wait(filp, &vf->vdev->event_wait, wait);
	if (atomic_read(&vf->events))
		return EPOLLIN | EPOLLRDNORM;
	/* Never sleep here: a reset or remove holding the BARs wakes us again. */
	if (down_read_trylock(&vf->vdev->bar_sem)) {
		ring = vkmt_ring_pending(vf);
		up_read(&vf->vdev->bar_sem);
	}
	return ring ? EPOLLIN | EPOLLRDNORM : 0;
}

const struct file_operations vkmt_fops = {
	.owner = THIS_MODULE,
	.open = vkmt_open,
	.release = vkmt_release,
	.unlocked_ioctl = vkmt_ioctl,
	.compat_ioctl = compat_ptr_ioctl, /* the same layout for 32-bit callers */
	.poll = vkmt_poll,
	.mmap = vkmt_mmap,
	.llseek = no_llseek,
};
