// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * vkmt guest kernel driver: PCI probe and remove, device bring-up and reset,
 * interrupts, the watch on the configuration registers, and the character
 * device (/dev/vkmtN) through which user space reaches it.
 *
 * The driver trusts the device no more than the device trusts the guest:
 * every register it uses is bounds-checked against the protocol's constants
 * and the BARs' real sizes before anything is mapped or indexed with it.
 */
#include <linux/cdev.h>
#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/version.h>

#include "vkmt.h"

static dev_t vkmt_devt;
static struct cdev vkmt_cdev;
static struct class *vkmt_class;
static DEFINE_MUTEX(vkmt_devs_lock);
static struct vkmt_dev *vkmt_devs[VKMT_MAX_DEVS];

static u32 rd(struct vkmt_dev *vdev, u32 off)
{
	return readl(vdev->regs + off);
}

static void wr(struct vkmt_dev *vdev, u32 off, u32 val)
{
	writel(val, vdev->regs + off);
}

/* A 64-bit register pair, read consistently (PROTOCOL.md section 3). */
static u64 rd64(struct vkmt_dev *vdev, u32 lo, u32 hi)
{
	u32 gen, tries = 0;
	u64 v;

	do {
		gen = rd(vdev, VKMT_REG(config_generation));
		v = (u64)rd(vdev, hi) << 32 | rd(vdev, lo);
	} while (gen != rd(vdev, VKMT_REG(config_generation)) && ++tries < 16);
	return v;
}

static void vkmt_dev_release(struct kref *ref)
{
	kfree(container_of(ref, struct vkmt_dev, ref));
}

void vkmt_dev_put(struct vkmt_dev *vdev)
{
	kref_put(&vdev->ref, vkmt_dev_release);
}

/* The device behind minor @minor with a reference taken, or NULL. */
struct vkmt_dev *vkmt_dev_get_minor(int minor)
{
	struct vkmt_dev *vdev = NULL;

	mutex_lock(&vkmt_devs_lock);
	if (minor >= 0 && minor < VKMT_MAX_DEVS && vkmt_devs[minor]) {
		vdev = vkmt_devs[minor];
		kref_get(&vdev->ref);
	}
	mutex_unlock(&vkmt_devs_lock);
	return vdev;
}

/* Writes 0 to status and waits until the teardown is done (section 4). */
static int vkmt_hw_reset(struct vkmt_dev *vdev)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(VKMT_CMD_TIMEOUT_MS);

	wr(vdev, VKMT_REG(status), 0);
	while (rd(vdev, VKMT_REG(status)) != 0) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(100, 1000);
	}
	return 0;
}

/*
 * Reset and bring-up (section 4). The driver always starts from a reset:
 * once it owns the BARs, nobody else can reach what an earlier user-space
 * driver left on the device.
 */
static int vkmt_bring_up(struct vkmt_dev *vdev)
{
	const u32 base = VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER;
	u32 status;
	int ret;

	ret = vkmt_hw_reset(vdev);
	if (ret)
		return ret;
	wr(vdev, VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE);
	wr(vdev, VKMT_REG(status), base);
	vdev->features = rd(vdev, VKMT_REG(device_features)) & VKMT_F_KNOWN;
	wr(vdev, VKMT_REG(driver_features), vdev->features);
	wr(vdev, VKMT_REG(status), base | VKMT_STATUS_FEATURES_OK);
	if (!(rd(vdev, VKMT_REG(status)) & VKMT_STATUS_FEATURES_OK)) {
		wr(vdev, VKMT_REG(status), VKMT_STATUS_FAILED);
		return -ENODEV;
	}
	wr(vdev, VKMT_REG(status), base | VKMT_STATUS_FEATURES_OK | VKMT_STATUS_DRIVER_OK);
	status = rd(vdev, VKMT_REG(status));
	if (!(status & VKMT_STATUS_DRIVER_OK) ||
	    (status & (VKMT_STATUS_DEVICE_NEEDS_RESET | VKMT_STATUS_FAILED)))
		return -ENODEV;
	vdev->epoch = rd(vdev, VKMT_REG(removal_epoch));
	vdev->config_gen = rd(vdev, VKMT_REG(config_generation));
	return 0;
}

/* Checks every register the driver relies on; maps BAR 2 as far as needed. */
static int vkmt_check_layout(struct vkmt_dev *vdev)
{
	struct pci_dev *pdev = vdev->pdev;
	resource_size_t ctrl_len = pci_resource_len(pdev, VKMT_BAR_CTRL);
	resource_size_t aper_len = pci_resource_len(pdev, VKMT_BAR_APERTURE);
	u64 v;

	if (rd(vdev, VKMT_REG(magic)) != VKMT_MAGIC ||
	    rd(vdev, VKMT_REG(version)) >> 16 != VKMT_VERSION_MAJOR) {
		dev_err(&pdev->dev, "not a vkmt %u.x device\n", VKMT_VERSION_MAJOR);
		return -ENODEV;
	}
	vdev->num_queues = rd(vdev, VKMT_REG(num_queues));
	if (vdev->num_queues < 1 || vdev->num_queues > VKMT_MAX_QUEUES ||
	    rd(vdev, VKMT_REG(queue_depth)) != VKMT_QUEUE_DEPTH ||
	    rd(vdev, VKMT_REG(queue_stride)) != VKMT_QUEUE_STRIDE ||
	    rd(vdev, VKMT_REG(staging_size)) != VKMT_STAGING_SIZE ||
	    (u64)vdev->num_queues * VKMT_QUEUE_STRIDE > ctrl_len) {
		dev_err(&pdev->dev, "queue layout registers out of range\n");
		return -ENODEV;
	}
	vdev->max_batch = rd(vdev, VKMT_REG(max_batch));
	if (vdev->max_batch < 1 || vdev->max_batch > VKMT_MAX_BATCH)
		vdev->max_batch = VKMT_MAX_BATCH;

	v = rd64(vdev, VKMT_REG(aperture_size_lo), VKMT_REG(aperture_size_hi));
	if (!v || !IS_ALIGNED(v, PAGE_SIZE) || v > aper_len ||
	    !IS_ALIGNED(pci_resource_start(pdev, VKMT_BAR_APERTURE), PAGE_SIZE)) {
		dev_err(&pdev->dev, "aperture size %llu does not fit BAR 4 (%llu)\n", v,
			(u64)aper_len);
		return -ENODEV;
	}
	vdev->aper_size = v;
	vdev->aper_phys = pci_resource_start(pdev, VKMT_BAR_APERTURE);
	/* Older devices read 0 in the limit registers (section 3). */
	v = rd64(vdev, VKMT_REG(max_alloc_lo), VKMT_REG(max_alloc_hi));
	vdev->max_alloc = v && v <= vdev->aper_size ? v : vdev->aper_size;
	v = rd(vdev, VKMT_REG(max_texture_dim));
	vdev->max_texture_dim = v && v <= VKMT_TEXTURE_MAX_DIM ? v : VKMT_TEXTURE_MAX_DIM;

	vdev->ctrl = pci_iomap_range(pdev, VKMT_BAR_CTRL, 0,
				     (unsigned long)vdev->num_queues * VKMT_QUEUE_STRIDE);
	return vdev->ctrl ? 0 : -ENOMEM;
}

/*
 * One handler for every vector: the interrupt status says which queues
 * completed. Waiters re-check their completion entry, so a lost or spurious
 * interrupt costs time, never correctness.
 */
static irqreturn_t vkmt_irq(int irq, void *data)
{
	struct vkmt_dev *vdev = data;
	u32 lo = rd(vdev, VKMT_REG(isr_lo));
	u32 hi = rd(vdev, VKMT_REG(isr_hi));
	unsigned long bits;
	unsigned int q;

	if ((!lo && !hi) || (lo == ~0u && hi == ~0u)) /* not ours, or gone */
		return IRQ_NONE;
	wr(vdev, VKMT_REG(isr_lo), lo);
	wr(vdev, VKMT_REG(isr_hi), hi);
	/* A queue's bit also stands for device events: poll() looks at the rings. */
	if (vdev->features & VKMT_F_EVENTS)
		wake_up_interruptible(&vdev->event_wait);
	bits = lo;
	for_each_set_bit(q, &bits, 32)
		if (q < vdev->num_queues)
			wake_up(&vdev->qwait[q]);
	bits = hi;
	for_each_set_bit(q, &bits, 32)
		if (q + 32 < vdev->num_queues)
			wake_up(&vdev->qwait[q + 32]);
	return IRQ_HANDLED;
}

static void vkmt_irq_setup(struct vkmt_dev *vdev)
{
	struct pci_dev *pdev = vdev->pdev;
	int i, ret;

	/* MSI-X, one vector per queue where the device has them; else INTx. */
	vdev->nvec =
		pci_alloc_irq_vectors(pdev, 1, vdev->num_queues, PCI_IRQ_MSIX | PCI_IRQ_LEGACY);
	if (vdev->nvec < 0) {
		dev_warn(&pdev->dev, "no interrupt (%d): completions are polled\n", vdev->nvec);
		vdev->nvec = 0;
		return;
	}
	for (i = 0; i < vdev->nvec; i++) {
		ret = request_irq(pci_irq_vector(pdev, i), vkmt_irq,
				  pdev->msix_enabled ? 0 : IRQF_SHARED, VKMT_DRV_NAME, vdev);
		if (ret) {
			dev_warn(&pdev->dev, "request_irq: %d: completions are polled\n", ret);
			while (--i >= 0)
				free_irq(pci_irq_vector(pdev, i), vdev);
			pci_free_irq_vectors(pdev);
			vdev->nvec = 0;
			return;
		}
	}
	vdev->irq_ok = true;
}

static void vkmt_irq_teardown(struct vkmt_dev *vdev)
{
	int i;

	for (i = 0; i < vdev->nvec; i++)
		free_irq(pci_irq_vector(vdev->pdev, i), vdev);
	if (vdev->nvec)
		pci_free_irq_vectors(vdev->pdev);
	vdev->nvec = 0;
	vdev->irq_ok = false;
}

static void vkmt_notify(struct vkmt_dev *vdev, u32 events)
{
	struct vkmt_file *vf;

	mutex_lock(&vdev->files_lock);
	list_for_each_entry(vf, &vdev->files, node)
		atomic_or(events, &vf->events);
	mutex_unlock(&vdev->files_lock);
	wake_up_interruptible(&vdev->event_wait);
}

/*
 * Ends every open file's use of the device: their generation is over (every
 * later call is -ENODEV), waiters wake, their mappings go. The caller holds
 * bar_sem for writing (no command is using the BARs) and has bumped gen.
 */
static void vkmt_end_files(struct vkmt_dev *vdev, bool release_queues)
{
	struct vkmt_file *vf;

	mutex_lock(&vdev->files_lock);
	list_for_each_entry(vf, &vdev->files, node) {
		vkmt_maps_drop_all(vf);
		if (release_queues && vf->claimed)
			wr(vdev, VKMT_REG(queue_reap), VKMT_REAP(vf->queue, vf->claim_seq));
		vf->claimed = false;
		atomic_or(VKMT_KMD_EV_REMOVED, &vf->events);
	}
	mutex_unlock(&vdev->files_lock);
	wake_up_interruptible(&vdev->event_wait);
}

static void vkmt_wake_all(struct vkmt_dev *vdev)
{
	unsigned int q;

	for (q = 0; q < VKMT_MAX_QUEUES; q++)
		wake_up_all(&vdev->qwait[q]);
	wake_up_interruptible_all(&vdev->event_wait);
}

/*
 * A reset, asked for (VKMT_KMD_IOC_RESET) or seen (the removal epoch moved):
 * every file's queue is gone; the device is brought up again for new opens.
 */
int vkmt_dev_reset(struct vkmt_dev *vdev)
{
	int ret;

	/* First end the generation, so that waiting commands let go of bar_sem. */
	WRITE_ONCE(vdev->gen, vdev->gen + 1);
	vkmt_wake_all(vdev);
	down_write(&vdev->bar_sem);
	if (vdev->removed) {
		up_write(&vdev->bar_sem);
		return -ENODEV;
	}
	vkmt_end_files(vdev, false);
	ret = vkmt_bring_up(vdev);
	if (ret)
		dev_err(&vdev->pdev->dev, "bring-up after reset failed: %d\n", ret);
	up_write(&vdev->bar_sem);
	return ret;
}

/* Registers that change without an interrupt: looked at once a second. */
static void vkmt_watch(struct work_struct *work)
{
	struct vkmt_dev *vdev = container_of(to_delayed_work(work), struct vkmt_dev, watch);
	u32 epoch, gen;
	bool reset, changed;

	down_read(&vdev->bar_sem);
	if (vdev->removed) {
		up_read(&vdev->bar_sem);
		return;
	}
	epoch = rd(vdev, VKMT_REG(removal_epoch));
	gen = rd(vdev, VKMT_REG(config_generation));
	reset = epoch != vdev->epoch;
	changed = gen != READ_ONCE(vdev->config_gen);
	if (changed)
		WRITE_ONCE(vdev->config_gen, gen);
	up_read(&vdev->bar_sem);

	if (changed)
		vkmt_notify(vdev, VKMT_KMD_EV_BUDGET);
	else if (!vdev->irq_ok && (vdev->features & VKMT_F_EVENTS))
		/* No interrupt: pollers look at their event rings this often. */
		wake_up_interruptible(&vdev->event_wait);
	if (reset) {
		dev_info(&vdev->pdev->dev, "device was reset (epoch %u -> %u)\n", vdev->epoch,
			 epoch);
		vkmt_dev_reset(vdev);
	}
	if (!READ_ONCE(vdev->removed))
		schedule_delayed_work(&vdev->watch, msecs_to_jiffies(VKMT_WATCH_MS));
}

/*
 * Device nodes are 0666 here so that an unprivileged user of the test VM
 * can open them (every file gets its own queue, so users are isolated from
 * each other). A distribution would rather leave the kernel's 0600 and set
 * the group with a udev rule, as for DRM render nodes:
 *   KERNEL=="vkmt[0-9]*", GROUP="render", MODE="0660"
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
static char *vkmt_devnode(const struct device *dev, umode_t *mode)
#else
static char *vkmt_devnode(struct device *dev, umode_t *mode)
#endif
{
	if (mode)
		*mode = 0666;
	return NULL;
}

/*
 * /sys/class/vkmt/vkmtN/queues: which process holds which queue, one
 * "QUEUE PID COMM" line per open file, so that the host's per-queue budget
 * (the device's queue-budget property) can be aimed at a guest process. The
 * PID is as the reader sees it.
 */
static ssize_t queues_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct vkmt_dev *vdev = dev_get_drvdata(dev);
	struct vkmt_file *vf;
	int len = 0;

	mutex_lock(&vdev->files_lock);
	list_for_each_entry(vf, &vdev->files, node)
		if (READ_ONCE(vf->claimed))
			len += sysfs_emit_at(buf, len, "%u %d %s\n", vf->queue, pid_vnr(vf->owner),
					     vf->comm);
	mutex_unlock(&vdev->files_lock);
	return len;
}
static DEVICE_ATTR_RO(queues);

static struct attribute *vkmt_attrs[] = { &dev_attr_queues.attr, NULL };
ATTRIBUTE_GROUPS(vkmt);

static int vkmt_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vkmt_dev *vdev;
	int minor, ret;
	unsigned int q;

	vdev = kzalloc(sizeof(*vdev), GFP_KERNEL);
	if (!vdev)
		return -ENOMEM;
	kref_init(&vdev->ref);
	init_rwsem(&vdev->bar_sem);
	mutex_init(&vdev->files_lock);
	INIT_LIST_HEAD(&vdev->files);
	for (q = 0; q < VKMT_MAX_QUEUES; q++)
		init_waitqueue_head(&vdev->qwait[q]);
	init_waitqueue_head(&vdev->event_wait);
	INIT_DELAYED_WORK(&vdev->watch, vkmt_watch);
	vdev->pdev = pdev;

	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto err_free;
	/* Exclusive: user space cannot map the BARs through sysfs while bound. */
	ret = pci_request_regions_exclusive(pdev, VKMT_DRV_NAME);
	if (ret)
		goto err_disable;
	ret = -ENODEV;
	if (pci_resource_len(pdev, VKMT_BAR_REGS) < VKMT_REGS_SIZE ||
	    !(pci_resource_flags(pdev, VKMT_BAR_REGS) & IORESOURCE_MEM) ||
	    !(pci_resource_flags(pdev, VKMT_BAR_CTRL) & IORESOURCE_MEM) ||
	    !(pci_resource_flags(pdev, VKMT_BAR_APERTURE) & IORESOURCE_MEM))
		goto err_regions;
	vdev->regs = pci_iomap_range(pdev, VKMT_BAR_REGS, 0, VKMT_REGS_SIZE);
	if (!vdev->regs)
		goto err_regions;
	ret = vkmt_check_layout(vdev);
	if (ret)
		goto err_unmap;
	ret = vkmt_bring_up(vdev);
	if (ret) {
		dev_err(&pdev->dev, "bring-up failed: %d\n", ret);
		goto err_unmap;
	}
	/* The aperture is RAM behind a BAR: write-combining where PAT allows. */
	vdev->aper_wc = !arch_io_reserve_memtype_wc(vdev->aper_phys, vdev->aper_size);
	pci_set_master(pdev);
	vkmt_irq_setup(vdev);

	mutex_lock(&vkmt_devs_lock);
	for (minor = 0; minor < VKMT_MAX_DEVS && vkmt_devs[minor]; minor++)
		;
	if (minor < VKMT_MAX_DEVS)
		vkmt_devs[minor] = vdev;
	mutex_unlock(&vkmt_devs_lock);
	ret = -ENOSPC;
	if (minor == VKMT_MAX_DEVS)
		goto err_irq;
	vdev->minor = minor;
	pci_set_drvdata(pdev, vdev);
	vdev->node =
		device_create_with_groups(vkmt_class, &pdev->dev, MKDEV(MAJOR(vkmt_devt), minor),
					  vdev, vkmt_groups, "vkmt%d", minor);
	if (IS_ERR(vdev->node)) {
		ret = PTR_ERR(vdev->node);
		goto err_minor;
	}
	schedule_delayed_work(&vdev->watch, msecs_to_jiffies(VKMT_WATCH_MS));
	dev_info(&pdev->dev, "vkmt%d: %u queues, aperture %llu MiB, features 0x%x, %s\n", minor,
		 vdev->num_queues, vdev->aper_size >> 20, vdev->features,
		 vdev->irq_ok ? (pdev->msix_enabled ? "MSI-X" : "INTx") : "polled");
	return 0;

err_minor:
	mutex_lock(&vkmt_devs_lock);
	vkmt_devs[minor] = NULL;
	mutex_unlock(&vkmt_devs_lock);
err_irq:
	vkmt_irq_teardown(vdev);
	if (vdev->aper_wc)
		arch_io_free_memtype_wc(vdev->aper_phys, vdev->aper_size);
	vkmt_hw_reset(vdev);
err_unmap:
	if (vdev->ctrl)
		pci_iounmap(pdev, vdev->ctrl);
	pci_iounmap(pdev, vdev->regs);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_free:
	vkmt_dev_put(vdev);
	return ret;
}

/*
 * Open files may outlive the device: they keep the structure (a reference)
 * but lose their queue and mappings here, and get -ENODEV from then on.
 */
static void vkmt_remove(struct pci_dev *pdev)
{
	struct vkmt_dev *vdev = pci_get_drvdata(pdev);

	mutex_lock(&vkmt_devs_lock);
	vkmt_devs[vdev->minor] = NULL;
	mutex_unlock(&vkmt_devs_lock);
	device_destroy(vkmt_class, MKDEV(MAJOR(vkmt_devt), vdev->minor));

	WRITE_ONCE(vdev->removed, true);
	WRITE_ONCE(vdev->gen, vdev->gen + 1);
	vkmt_wake_all(vdev);
	cancel_delayed_work_sync(&vdev->watch);

	down_write(&vdev->bar_sem);
	vkmt_end_files(vdev, true);
	vkmt_irq_teardown(vdev);
	if (vdev->aper_wc)
		arch_io_free_memtype_wc(vdev->aper_phys, vdev->aper_size);
	pci_iounmap(pdev, vdev->ctrl);
	pci_iounmap(pdev, vdev->regs);
	vdev->regs = NULL;
	vdev->ctrl = NULL;
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	up_write(&vdev->bar_sem);
	pci_set_drvdata(pdev, NULL);
	vkmt_dev_put(vdev);
}

static const struct pci_device_id vkmt_ids[] = {
	{ PCI_DEVICE(VKMT_PCI_VENDOR_ID, VKMT_PCI_DEVICE_ID) }, {}
};
MODULE_DEVICE_TABLE(pci, vkmt_ids);

static struct pci_driver vkmt_pci_driver = {
	.name = VKMT_DRV_NAME,
	.id_table = vkmt_ids,
	.probe = vkmt_probe,
	.remove = vkmt_remove,
};

static int __init vkmt_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&vkmt_devt, 0, VKMT_MAX_DEVS, VKMT_DRV_NAME);
	if (ret)
		return ret;
	/* One cdev for every minor: it lives as long as the module does. */
	cdev_init(&vkmt_cdev, &vkmt_fops);
	vkmt_cdev.owner = THIS_MODULE;
	ret = cdev_add(&vkmt_cdev, vkmt_devt, VKMT_MAX_DEVS);
	if (ret)
		goto err_region;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	vkmt_class = class_create(VKMT_DRV_NAME);
#else
	vkmt_class = class_create(THIS_MODULE, VKMT_DRV_NAME);
#endif
	if (IS_ERR(vkmt_class)) {
		ret = PTR_ERR(vkmt_class);
		goto err_cdev;
	}
	vkmt_class->devnode = vkmt_devnode;
	ret = pci_register_driver(&vkmt_pci_driver);
	if (ret)
		goto err_class;
	return 0;

err_class:
	class_destroy(vkmt_class);
err_cdev:
	cdev_del(&vkmt_cdev);
err_region:
	unregister_chrdev_region(vkmt_devt, VKMT_MAX_DEVS);
	return ret;
}

static void __exit vkmt_exit(void)
{
	pci_unregister_driver(&vkmt_pci_driver);
	class_destroy(vkmt_class);
	cdev_del(&vkmt_cdev);
	unregister_chrdev_region(vkmt_devt, VKMT_MAX_DEVS);
}

module_init(vkmt_init);
module_exit(vkmt_exit);

unsigned int vkmt_cmd_timeout_ms = 30000;
module_param_named(cmd_timeout_ms, vkmt_cmd_timeout_ms, uint, 0644);
MODULE_PARM_DESC(cmd_timeout_ms, "how long a command may take before its file is given up, in ms");

MODULE_DESCRIPTION("vkmt paravirtual GPU memory device");
MODULE_LICENSE("Dual MIT/GPL");
