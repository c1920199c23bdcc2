// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * vkmt guest kernel driver: forwarding commands through a file's queue
 * (PROTOCOL.md section 5.2). One command is in flight per queue at a time
 * (cmd_lock), so the rings never fill and staging is reused from offset 0:
 * the payload at 0, the results after it, 64-byte aligned.
 *
 * Everything read back from control memory is untrusted: a completion is
 * used only when its phase, cid and status are what the protocol allows,
 * and each wait ends after VKMT_CMD_TIMEOUT_MS.
 */
#include <linux/capability.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vkmt.h"

#define HDR(field) offsetof(struct vkmt_queue_hdr, field)

/*
 * Is the queue still this file's? A reset frees it (sh_state), a later
 * claim by someone else changes sh_claim_seq, ERROR means the device gave
 * up on it (section 4).
 */
static int vkmt_queue_check(struct vkmt_file *vf)
{
	u32 state, seq;

	if (!vkmt_file_alive(vf))
		return -ENODEV;
	state = readl(vf->q + HDR(sh_state));
	seq = readl(vf->q + HDR(sh_claim_seq));
	if (seq != vf->claim_seq || state == VKMT_QSTATE_FREE) {
		vf->claimed = false; /* not ours to release any more */
		return -ENODEV;
	}
	if (state != VKMT_QSTATE_ACTIVE) {
		vf->broken = true;
		return -ENODEV;
	}
	return 0;
}

static void __iomem *vkmt_cqe_slot(struct vkmt_file *vf)
{
	return vf->q + VKMT_QUEUE_CQ_OFF +
	       (vf->cq_head & (VKMT_QUEUE_DEPTH - 1)) * sizeof(struct vkmt_cqe);
}

static bool vkmt_cqe_ready(struct vkmt_file *vf)
{
	return (readl(vkmt_cqe_slot(vf) + offsetof(struct vkmt_cqe, flags)) & VKMT_CQE_F_PHASE) ==
	       vf->phase;
}

/*
 * Looks VKMT_SPIN_BURST times between two cpu_relax(): under QEMU's TCG a
 * PAUSE ends the translated block and takes QEMU's big lock again, which
 * starves a device model that needs that lock to complete the command.
 */
static bool vkmt_cqe_ready_burst(struct vkmt_file *vf)
{
	unsigned int i;

	for (i = 0; i < VKMT_SPIN_BURST; i++)
		if (vkmt_cqe_ready(vf))
			return true;
	return false;
}

static bool vkmt_gone(struct vkmt_file *vf)
{
	return READ_ONCE(vf->vdev->removed) || READ_ONCE(vf->vdev->gen) != vf->gen;
}

/*
 * Waits for the completion of the command in flight: a short spin (the
 * device often completes inside the doorbell write), then sleeps. A command
 * that asked for an interrupt (@irq) sleeps until the queue's interrupt,
 * in slices so that a lost interrupt costs a slice, not the timeout; one
 * that did not polls from sleeps that grow from 10 us to 1 ms. Only a fatal
 * signal cuts the wait short: a D3DKMT call is not interrupted by the
 * program's own signal handlers, as on Windows, and a dying process's file
 * is released anyway. Counts, in vf->quick, the commands in a row that the
 * spin caught.
 */
static int vkmt_wait(struct vkmt_file *vf, bool irq)
{
	struct vkmt_dev *vdev = vf->vdev;
	unsigned long deadline;
	unsigned int poll_us = 10;
	long ret = 0;
	u64 spin_end;

	/* The clock is read only when the first look finds nothing. */
	if (!vkmt_cqe_ready(vf)) {
		spin_end = ktime_get_ns() + VKMT_SPIN_NS;
		while (!vkmt_cqe_ready_burst(vf)) {
			if (ktime_get_ns() > spin_end)
				goto sleep;
			cpu_relax();
		}
	}
	if (vf->quick < VKMT_QUICK_RUN)
		vf->quick++;
	return 0;
sleep:
	vf->quick = 0;
	deadline = jiffies + msecs_to_jiffies(VKMT_CMD_TIMEOUT_MS);
	for (;;) {
		if (irq) {
			ret = wait_event_killable_timeout(vdev->qwait[vf->queue],
							  vkmt_cqe_ready(vf) || vkmt_gone(vf),
							  vdev->irq_ok ? HZ / 10 : 1);
		} else {
			usleep_range(poll_us, poll_us * 2);
			poll_us = min(poll_us * 2, 1000u);
			if (fatal_signal_pending(current))
				ret = -ERESTARTSYS;
		}
		if (vkmt_cqe_ready(vf))
			return 0;
		/* Never -ERESTARTSYS: a restarted SUBMIT would run commands twice. */
		if (ret < 0)
			return -EINTR;
		if (vkmt_queue_check(vf))
			return -ENODEV;
		if (time_after(jiffies, deadline)) {
			if (readl(vdev->regs + VKMT_REG(removal_epoch)) != vdev->epoch) {
				vf->claimed = false;
				return -ENODEV;
			}
			dev_warn(&vdev->pdev->dev, "queue %u: no completion in %u ms\n", vf->queue,
				 VKMT_CMD_TIMEOUT_MS);
			vf->broken = true;
			return -ETIMEDOUT;
		}
	}
}

/*
 * Copies to and from control memory in 64-bit accesses: memcpy_toio and
 * memcpy_fromio use string instructions, which cost one emulation step per
 * element under TCG. @len is rounded up to whole words; control memory and
 * the bounce buffer both have room for that.
 */
static void vkmt_to_ctrl(void __iomem *dst, const void *src, size_t len)
{
	const u64 *s = src;
	size_t i;

	for (i = 0; i < DIV_ROUND_UP(len, 8); i++)
		writeq(s[i], dst + 8 * i);
}

static void vkmt_from_ctrl(void *dst, const void __iomem *src, size_t len)
{
	u64 *d = dst;
	size_t i;

	for (i = 0; i < DIV_ROUND_UP(len, 8); i++)
		d[i] = readq(src + 8 * i);
}

/* Writes @sqe into the SQ and rings the doorbell (section 5.2). */
static void vkmt_post(struct vkmt_file *vf, const struct vkmt_sqe *sqe)
{
	void __iomem *slot =
		vf->q + VKMT_QUEUE_SQ_OFF + (vf->sq_tail & (VKMT_QUEUE_DEPTH - 1)) * sizeof(*sqe);

	vkmt_to_ctrl(slot, sqe, sizeof(*sqe));
	vf->sq_tail++;
	/* Entry and payload before the tail the device may read instead. */
	wmb();
	writel(vf->sq_tail, vf->q + HDR(sh_sq_tail));
	writel(vf->sq_tail, vf->vdev->regs + VKMT_REG_DOORBELL(vf->queue));
}

/*
 * Takes the completion of @sqe (posted), checks it, consumes the CQ entry
 * and reads the results into vf->buf at sqe->result_off on success. A
 * completion that breaks the protocol ends the file (-ENODEV).
 */
static int vkmt_complete(struct vkmt_file *vf, const struct vkmt_sqe *sqe, struct vkmt_cqe *cqe)
{
	int ret = vkmt_wait(vf, sqe->flags & VKMT_SQE_F_IRQ);

	if (ret == -EINTR) {
		/* Still in flight: the next call takes its completion first. */
		vf->pending = true;
		vf->pending_sqe = *sqe;
		return ret;
	}
	vf->pending = false;
	if (ret)
		return ret;
	rmb(); /* the entry after its phase flag */
	vkmt_from_ctrl(cqe, vkmt_cqe_slot(vf), sizeof(*cqe));
	if (cqe->cid != sqe->cid || !vkmt_status_defined(cqe->status)) {
		dev_warn(&vf->vdev->pdev->dev,
			 "queue %u: bad completion (cid %u/%u, status 0x%x)\n", vf->queue, cqe->cid,
			 sqe->cid, cqe->status);
		vf->broken = true;
		return -ENODEV;
	}
	vf->cq_head++;
	if (!(vf->cq_head & (VKMT_QUEUE_DEPTH - 1)))
		vf->phase ^= VKMT_CQE_F_PHASE;
	writel(vf->cq_head, vf->q + HDR(sh_cq_head));
	if (cqe->status == VKMT_ST_SUCCESS && sqe->result_len)
		vkmt_from_ctrl(vf->buf + sqe->result_off,
			       vf->q + VKMT_QUEUE_STAGING_OFF + sqe->result_off, sqe->result_len);
	return vkmt_maps_after(vf, sqe, cqe, vf->buf + sqe->result_off);
}

/* Takes the completion of a command whose wait a signal interrupted. */
int vkmt_drain(struct vkmt_file *vf)
{
	struct vkmt_cqe cqe;

	if (!vf->pending)
		return 0;
	return vkmt_complete(vf, &vf->pending_sqe, &cqe);
}

/* The checks that need no device: lengths, pointers, reserved fields. */
static int vkmt_cmd_check(const struct vkmt_kmd_cmd *c)
{
	const struct vkmt_sqe *sqe = (const struct vkmt_sqe *)c->sqe;
	u64 plen = sqe->payload_len, rlen = sqe->result_len;

	if (c->reserved)
		return -EINVAL;
	if (ALIGN(plen, 64) + rlen > VKMT_STAGING_SIZE)
		return -EINVAL;
	if (!plen != !c->payload || !rlen != !c->results)
		return -EINVAL;
	/* Other processes' figures are the administrator's to see; a process
	 * may always ask for its own (PROTOCOL.md 13). */
	if (sqe->opcode == VKMT_OP_QUERY_QUEUE_STATS && (sqe->arg0 & VKMT_QSTATS_ALL) &&
	    !capable(CAP_SYS_ADMIN))
		return -EPERM;
	return 0;
}

/* Runs one checked command; @cqe gets its completion. */
static int vkmt_run(struct vkmt_file *vf, const struct vkmt_kmd_cmd *c, struct vkmt_cqe *cqe)
{
	struct vkmt_sqe sqe;
	int ret;

	memcpy(&sqe, c->sqe, sizeof(sqe));
	if (sqe.payload_len &&
	    copy_from_user(vf->buf, u64_to_user_ptr(c->payload), sqe.payload_len))
		return -EFAULT;
	/* Results the caller could not take are refused before the device acts;
	 * zero-filling is how writability is checked. */
	if (sqe.result_len && clear_user(u64_to_user_ptr(c->results), sqe.result_len))
		return -EFAULT;
	sqe.payload_off = 0;
	sqe.result_off = sqe.result_len ? ALIGN(sqe.payload_len, 64) : 0;
	sqe.cid = ++vf->cid;
	/*
	 * An interrupt costs the guest a few microseconds even when the spin
	 * sees the completion first: ask for one unless the last commands all
	 * completed within the spin (a device that completes inside the
	 * doorbell write); a command that then misses the spin polls.
	 */
	if (vf->quick < VKMT_QUICK_RUN)
		sqe.flags |= VKMT_SQE_F_IRQ;

	ret = vkmt_queue_check(vf);
	if (ret)
		return ret;
	/* Mappings that the command may invalidate go before it runs. */
	ret = vkmt_maps_before(vf, &sqe, vf->buf);
	if (ret)
		return ret;
	if (sqe.payload_len)
		vkmt_to_ctrl(vf->q + VKMT_QUEUE_STAGING_OFF, vf->buf, sqe.payload_len);
	vkmt_post(vf, &sqe);
	return vkmt_complete(vf, &sqe, cqe);
}

/*
 * Runs @count checked commands in order and writes each one's outcome into
 * @cmds and into the caller's copy at @ucmds (the same array).
 */
static int vkmt_run_all(struct vkmt_file *vf, struct vkmt_kmd_cmd *cmds, u32 count,
			struct vkmt_kmd_cmd __user *ucmds)
{
	struct vkmt_dev *vdev = vf->vdev;
	const struct vkmt_sqe *sqe;
	struct vkmt_kmd_cmd *c;
	struct vkmt_cqe cqe;
	u32 i;
	int ret;

	for (i = 0; i < count; i++) {
		ret = vkmt_cmd_check(&cmds[i]);
		if (ret)
			return ret;
	}
	if (mutex_lock_interruptible(&vf->cmd_lock))
		return -EINTR;
	down_read(&vdev->bar_sem);
	ret = vkmt_file_alive(vf) ? vkmt_drain(vf) : -ENODEV;
	for (i = 0; i < count && !ret; i++) {
		c = &cmds[i];
		ret = vkmt_run(vf, c, &cqe);
		if (ret)
			break;
		c->status = cqe.status;
		c->value0 = cqe.value0;
		c->value1 = cqe.value1;
		sqe = (const struct vkmt_sqe *)c->sqe;
		/* vkmt_run() read them to where it placed them in staging. */
		if (cqe.status == VKMT_ST_SUCCESS && sqe->result_len &&
		    copy_to_user(u64_to_user_ptr(c->results), vf->buf + ALIGN(sqe->payload_len, 64),
				 sqe->result_len))
			ret = -EFAULT;
		if (copy_to_user(&ucmds[i].status, &c->status,
				 sizeof(*c) - offsetof(struct vkmt_kmd_cmd, status)))
			ret = -EFAULT;
	}
	up_read(&vdev->bar_sem);
	mutex_unlock(&vf->cmd_lock);
	return ret;
}

long vkmt_ioctl_submit(struct vkmt_file *vf, void __user *arg)
{
	struct vkmt_kmd_submit s;
	struct vkmt_kmd_cmd *cmds;
	long ret;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (s.flags || s.count < 1 || s.count > VKMT_KMD_MAX_CMDS)
		return -EINVAL;
	/* Copied once, checked, then used: the caller cannot change them under us. */
	cmds = memdup_user(u64_to_user_ptr(s.cmds), s.count * sizeof(*cmds));
	if (IS_ERR(cmds))
		return PTR_ERR(cmds);
	ret = vkmt_run_all(vf, cmds, s.count, u64_to_user_ptr(s.cmds));
	kfree(cmds);
	return ret;
}

/* One command, the ioctl's argument itself: one copy in, none allocated. */
long vkmt_ioctl_run(struct vkmt_file *vf, void __user *arg)
{
	struct vkmt_kmd_cmd cmd;

	if (copy_from_user(&cmd, arg, sizeof(cmd)))
		return -EFAULT;
	return vkmt_run_all(vf, &cmd, 1, arg);
}
