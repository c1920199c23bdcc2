// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * vkmt guest kernel driver: which aperture ranges a file may map, and the
 * mappings themselves.
 *
 * Every command passes through the driver, so it knows what each file has
 * LOCKed: a LOCK's completion gives the allocation's aperture offset and
 * size, and the file may map inside that range until the UNLOCK that ends
 * its last LOCK, or a DESTROY that may reach the allocation (of it, of its
 * resource, of its device). Before forwarding those, the driver suspends
 * the record and zaps the file's mappings of the range, so a pointer used
 * while the command runs faults instead of reaching memory the device may
 * hand out again; once it completed, a record the command ended is dropped,
 * and one whose command the device refused stands again (a refused batch
 * changes nothing, its mappings included: they fill again on the next touch).
 *
 * Mappings are filled on fault, under map_lock, only while a record covers
 * the page: the record check and the page table entry cannot race with the
 * zap. For resources the driver remembers which allocations a resource was
 * created with (the CREATE_ALLOCATIONS results), so destroying one zaps its
 * members' mappings and no others.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/version.h>

#include "vkmt.h"

/* The record of allocation @alloc of device @device, or NULL. */
static struct vkmt_lockrec *find(struct vkmt_file *vf, u32 device, u32 alloc)
{
	struct vkmt_lockrec *r;

	list_for_each_entry(r, &vf->locks, node)
		if (r->alloc == alloc && r->device == device)
			return r;
	return NULL;
}

static void drop(struct vkmt_file *vf, struct vkmt_lockrec *r)
{
	list_del(&r->node);
	vf->nlocks--;
	unmap_mapping_range(&vf->mapping, r->offset, PAGE_ALIGN(r->size), 1);
	kfree(r);
}

static void suspend(struct vkmt_file *vf, struct vkmt_lockrec *r)
{
	r->suspended = true;
	unmap_mapping_range(&vf->mapping, r->offset, PAGE_ALIGN(r->size), 1);
}

/* The commands that may end a file's LOCK records. */
static bool ends_locks(u8 opcode)
{
	return opcode == VKMT_OP_UNLOCK || opcode == VKMT_OP_DESTROY_DEVICE ||
	       opcode == VKMT_OP_DESTROY_ALLOCATIONS;
}

static bool member_of(struct vkmt_file *vf, u32 alloc, u32 resource)
{
	void *v = xa_load(&vf->members, alloc);

	/* Membership lost to an allocation failure counts as a match. */
	return vf->members_lost || (xa_is_value(v) && xa_to_value(v) == resource);
}

void vkmt_maps_drop_all(struct vkmt_file *vf)
{
	struct vkmt_lockrec *r, *tmp;

	mutex_lock(&vf->map_lock);
	list_for_each_entry_safe(r, tmp, &vf->locks, node)
		drop(vf, r);
	mutex_unlock(&vf->map_lock);
}

/* Before @sqe is forwarded: suspend what it may invalidate. */
int vkmt_maps_before(struct vkmt_file *vf, const struct vkmt_sqe *sqe, const void *payload)
{
	struct vkmt_lockrec *r, *tmp;
	const u32 *handles = payload;
	u32 i, n;

	/* Most commands take no mapping away: not even the lock for those. */
	if (!ends_locks(sqe->opcode))
		return 0;
	mutex_lock(&vf->map_lock);
	switch (sqe->opcode) {
	case VKMT_OP_UNLOCK:
		r = find(vf, sqe->handle, sqe->arg0);
		if (r && r->count == 1)
			suspend(vf, r);
		break;
	case VKMT_OP_DESTROY_DEVICE:
		list_for_each_entry_safe(r, tmp, &vf->locks, node)
			if (r->device == sqe->handle)
				suspend(vf, r);
		break;
	case VKMT_OP_DESTROY_ALLOCATIONS:
		if (sqe->arg0) {
			list_for_each_entry_safe(r, tmp, &vf->locks, node)
				if (r->device == sqe->handle && member_of(vf, r->alloc, sqe->arg0))
					suspend(vf, r);
			break;
		}
		n = min_t(u32, sqe->count, sqe->payload_len / sizeof(u32));
		for (i = 0; i < n && vf->nlocks; i++) {
			r = find(vf, sqe->handle, handles[i]);
			if (r)
				suspend(vf, r);
		}
		break;
	}
	mutex_unlock(&vf->map_lock);
	return 0;
}

/* A LOCK's range: page aligned, inside the aperture. */
static bool range_ok(struct vkmt_dev *vdev, u64 offset, u64 size)
{
	return size && size <= vdev->aper_size && IS_ALIGNED(offset, PAGE_SIZE) &&
	       offset <= vdev->aper_size - PAGE_ALIGN(size);
}

static int record_lock(struct vkmt_file *vf, const struct vkmt_sqe *sqe, const struct vkmt_cqe *cqe)
{
	struct vkmt_lockrec *r;

	if (!range_ok(vf->vdev, cqe->value0, cqe->value1)) {
		dev_warn(&vf->vdev->pdev->dev, "queue %u: LOCK gave range %llx+%llx\n", vf->queue,
			 cqe->value0, cqe->value1);
		vf->broken = true;
		return -ENODEV;
	}
	r = find(vf, sqe->handle, sqe->arg0);
	if (r) {
		if (r->offset != cqe->value0 || r->size != cqe->value1) {
			vf->broken = true; /* a locked allocation cannot move */
			return -ENODEV;
		}
		r->count++;
		return 0;
	}
	if (vf->nlocks >= VKMT_MAX_LOCKRECS)
		return 0; /* locked, but not mappable through this file */
	r = kmalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return 0;
	r->device = sqe->handle;
	r->alloc = sqe->arg0;
	r->offset = cqe->value0;
	r->size = cqe->value1;
	r->count = 1;
	r->suspended = false;
	r->id = ++vf->next_lock_id;
	list_add(&r->node, &vf->locks);
	vf->nlocks++;
	return 0;
}

static void record_members(struct vkmt_file *vf, const struct vkmt_sqe *sqe,
			   const struct vkmt_cqe *cqe, const u32 *handles)
{
	u32 i, n = min_t(u32, sqe->count, sqe->result_len / sizeof(u32));

	if (!cqe->value0 || cqe->value0 > U32_MAX)
		return;
	for (i = 0; i < n; i++)
		if (xa_err(xa_store(&vf->members, handles[i], xa_mk_value(cqe->value0),
				    GFP_KERNEL_ACCOUNT)))
			vf->members_lost = true;
}

static void forget_members(struct vkmt_file *vf, u32 resource)
{
	unsigned long alloc;
	void *v;

	xa_for_each(&vf->members, alloc, v)
		if (xa_to_value(v) == resource)
			xa_erase(&vf->members, alloc);
}

/* After @sqe completed with @cqe: record what it made mappable. */
int vkmt_maps_after(struct vkmt_file *vf, const struct vkmt_sqe *sqe, const struct vkmt_cqe *cqe,
		    const void *results)
{
	bool ok = cqe->status == VKMT_ST_SUCCESS;
	struct vkmt_lockrec *r, *tmp;
	int ret = 0;

	if (!ends_locks(sqe->opcode) &&
	    !(ok && (sqe->opcode == VKMT_OP_LOCK || sqe->opcode == VKMT_OP_CREATE_ALLOCATIONS)))
		return 0;
	mutex_lock(&vf->map_lock);
	/* What the command was to end: gone if it did, standing again if refused. */
	list_for_each_entry_safe(r, tmp, &vf->locks, node) {
		if (!r->suspended)
			continue;
		if (ok)
			drop(vf, r);
		else
			r->suspended = false;
	}
	if (!ok) {
		mutex_unlock(&vf->map_lock);
		return 0;
	}
	switch (sqe->opcode) {
	case VKMT_OP_LOCK:
		ret = record_lock(vf, sqe, cqe);
		break;
	case VKMT_OP_UNLOCK:
		r = find(vf, sqe->handle, sqe->arg0);
		if (r && r->count > 1)
			r->count--;
		break;
	case VKMT_OP_CREATE_ALLOCATIONS:
		if (sqe->flags & VKMT_SQE_F_CREATE_RESOURCE)
			record_members(vf, sqe, cqe, results);
		break;
	case VKMT_OP_DESTROY_ALLOCATIONS:
		if (sqe->arg0)
			forget_members(vf, sqe->arg0);
		break;
	}
	mutex_unlock(&vf->map_lock);
	return ret;
}

static bool covers(const struct vkmt_lockrec *r, u64 off, u64 len)
{
	return off >= r->offset && len <= PAGE_ALIGN(r->size) &&
	       off - r->offset <= PAGE_ALIGN(r->size) - len;
}

/*
 * The record a mapping was made under: a mapping stays tied to the LOCK it
 * was made for, so once that record is gone it faults even where a later
 * LOCK of another allocation covers the same aperture bytes.
 */
static struct vkmt_lockrec *find_id(struct vkmt_file *vf, unsigned long id)
{
	struct vkmt_lockrec *r;

	list_for_each_entry(r, &vf->locks, node)
		if (r->id == id)
			return r;
	return NULL;
}

static vm_fault_t vkmt_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct vkmt_file *vf = vma->vm_file->private_data;
	u64 off = (u64)vmf->pgoff << PAGE_SHIFT;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct vkmt_lockrec *r;

	mutex_lock(&vf->map_lock);
	r = find_id(vf, (unsigned long)vma->vm_private_data);
	if (r && !r->suspended && covers(r, off, PAGE_SIZE))
		ret = vmf_insert_pfn(vma, vmf->address, PHYS_PFN(vf->vdev->aper_phys + off));
	mutex_unlock(&vf->map_lock);
	return ret;
}

static const struct vm_operations_struct vkmt_vm_ops = {
	.fault = vkmt_fault,
};

/*
 * mmap(offset = aperture offset): only shared mappings (-EINVAL otherwise),
 * only inside one range this file LOCKed (-EACCES otherwise).
 */
int vkmt_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct vkmt_file *vf = filp->private_data;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	struct vkmt_lockrec *r;
	unsigned long id = 0;

	if (!vkmt_file_alive(vf))
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	mutex_lock(&vf->map_lock);
	list_for_each_entry(r, &vf->locks, node)
		if (!r->suspended && covers(r, off, len))
			id = r->id;
	mutex_unlock(&vf->map_lock);
	if (!id)
		return -EACCES;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
#endif
	vma->vm_page_prot = vf->vdev->aper_wc ? pgprot_writecombine(vma->vm_page_prot)
					      : pgprot_noncached(vma->vm_page_prot);
	vma->vm_ops = &vkmt_vm_ops;
	vma->vm_private_data = (void *)id;
	return 0;
}
