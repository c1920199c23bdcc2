/* SPDX-License-Identifier: MIT */
/*
 * D3DKMTCreateAllocation2, D3DKMTDestroyAllocation2, D3DKMTLock2 and
 * D3DKMTUnlock2. Sizes come from the driver-private VKMT_ALLOCATION_DESC of
 * each allocation; a lock hands out a pointer straight into the aperture.
 */
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "usermem.h"

/* D3DKMT_CREATEALLOCATIONFLAGS.CreateResource; no other flag is supported. */
#define CREATE_RESOURCE_BIT 0x1u

/* The public encoding is the wire's, so descriptors pass through unchanged. */
_Static_assert(VKMT_ALLOC_TEXTURE(VKMT_TEXFMT_R8G8B8A8_UNORM) ==
                       VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_R8G8B8A8_UNORM) &&
                   VKMT_ALLOC_TEXTURE(VKMT_TEXFMT_B8G8R8A8_UNORM) ==
                       VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM) &&
                   VKMT_ALLOC_TEXTURE(VKMT_TEXFMT_R8_UNORM) ==
                       VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_R8_UNORM) &&
                   VKMT_TEXTURE_DIMS(3, 5) == VKMT_ALLOC_DIMS(3, 5) &&
                   VKMT_TEXTURE_DIM_MAX == VKMT_TEXTURE_MAX_DIM &&
                   VKMT_TEXFMT_BPP(VKMT_TEXFMT_B8G8R8A8_UNORM) == 4 &&
                   VKMT_TEXFMT_BPP(VKMT_TEXFMT_R8G8B8A8_UNORM) == 4 &&
                   VKMT_TEXFMT_BPP(VKMT_TEXFMT_R8_UNORM) == 1,
               "vkmt.h texture encoding is the protocol's");

/*
 * Copy each private descriptor once and check the copy as the device will
 * (PROTOCOL.md 8.1), so a bad one fails here without a round trip.
 */
static NTSTATUS fetch_descs(const D3DDDI_ALLOCATIONINFO2 *info, uint32_t n, uint32_t features,
                            struct vkmt_alloc_desc *out)
{
    for (uint32_t i = 0; i < n; i++) {
        VKMT_ALLOCATION_DESC d;

        if (info[i].pSystemMem || info[i].Flags.Value ||
            info[i].PrivateDriverDataSize != sizeof(d) ||
            !um_copy_in(&d, info[i].pPrivateDriverData, sizeof(d)) || d.Size == 0) {
            return STATUS_INVALID_PARAMETER;
        }
        if (d.Flags || d.Dims) {
            if (!(features & VKMT_F_TEXTURES) || vkmt_texture_bytes(d.Flags, d.Dims) != d.Size) {
                return STATUS_INVALID_PARAMETER;
            }
        }
        out[i].size = d.Size;
        out[i].flags = d.Flags;
        out[i].dims = d.Dims;
    }
    return STATUS_SUCCESS;
}

static NTSTATUS create(D3DKMT_CREATEALLOCATION *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_ALLOCATIONS };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);
    uint32_t n = p->NumAllocations;
    D3DDDI_ALLOCATIONINFO2 *info;
    struct qresult res = { 0 };
    uint32_t flags;

    if (!d) {
        return st;
    }
    memcpy(&flags, &p->Flags, sizeof(flags));
    if (n == 0 || n > VKMT_MAX_BATCH || !p->pAllocationInfo2 || p->hResource ||
        (flags & ~CREATE_RESOURCE_BIT)) {
        return STATUS_INVALID_PARAMETER;
    }
    info = malloc((size_t)n * sizeof(*info));
    if (!info) {
        return STATUS_NO_MEMORY;
    }
    /* Read the array, then write it back unchanged: it must be writable
     * before the device creates anything, or the handles would be lost. */
    if (!um_copy_in(info, p->pAllocationInfo2, (size_t)n * sizeof(*info)) ||
        !um_copy_out(p->pAllocationInfo2, info, (size_t)n * sizeof(*info))) {
        free(info);
        return STATUS_INVALID_PARAMETER;
    }
    st = fetch_descs(info, n, d->a->qc.features, (struct vkmt_alloc_desc *)d->a->qc.sh_staging);
    if (st != STATUS_SUCCESS) {
        free(info);
        return st;
    }
    sqe.handle = d->hw;
    sqe.count = n;
    sqe.payload_off = QC_PAYLOAD_OFF;
    sqe.payload_len = n * (uint32_t)sizeof(struct vkmt_alloc_desc);
    sqe.result_off = qc_result_off(sqe.payload_len);
    sqe.result_len = n * (uint32_t)sizeof(uint32_t);
    if (flags & CREATE_RESOURCE_BIT) {
        sqe.flags = VKMT_SQE_F_CREATE_RESOURCE;
    }
    st = lib_run(d->a, &sqe, &res);
    if (st == STATUS_SUCCESS) {
        const uint32_t *h = (const uint32_t *)(d->a->qc.sh_staging + sqe.result_off);

        for (uint32_t i = 0; i < n; i++) {
            info[i].hAllocation = h[i];
            info[i].GpuVirtualAddress = 0;
        }
        um_copy_out(p->pAllocationInfo2, info, (size_t)n * sizeof(*info));
        p->hResource = (D3DKMT_HANDLE)res.value0;
        p->hGlobalShare = 0;
    }
    free(info);
    return st;
}

LIB_THUNK(D3DKMTCreateAllocation2, D3DKMT_CREATEALLOCATION, create)

static NTSTATUS destroy(const D3DKMT_DESTROYALLOCATION2 *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_DESTROY_ALLOCATIONS };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);

    if (!d) {
        return st;
    }
    sqe.handle = d->hw;
    if (p->hResource) {
        /* A resource goes with all of its allocations; no list with it. */
        if (p->AllocationCount || p->phAllocationList) {
            return STATUS_INVALID_PARAMETER;
        }
        sqe.arg0 = p->hResource;
    } else {
        st = lib_stage_handles(d->a, p->AllocationCount, NULL, p->phAllocationList, &sqe);
        if (st != STATUS_SUCCESS) {
            return st;
        }
    }
    st = lib_run(d->a, &sqe, NULL);
    /* The driver took the mappings away; the library's records go too. */
    if (st == STATUS_SUCCESS && d->a->nmaps) {
        if (p->hResource) {
            lib_forget_destroyed_maps(d);
        } else {
            lib_forget_maps(d->a, d->hw, p->phAllocationList, p->AllocationCount);
        }
    }
    return st;
}

LIB_THUNK(D3DKMTDestroyAllocation2, const D3DKMT_DESTROYALLOCATION2, destroy)

static NTSTATUS lock2(D3DKMT_LOCK2 *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_LOCK };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);
    struct qresult res = { 0 };

    if (!d) {
        return st;
    }
    if (p->Flags.Value) {
        return STATUS_INVALID_PARAMETER;
    }
    sqe.handle = d->hw;
    sqe.arg0 = p->hAllocation;
    st = lib_run(d->a, &sqe, &res);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    /* The device's offset is untrusted: it must lie inside the aperture. */
    if (res.value0 > d->a->t->aperture_size || res.value1 > d->a->t->aperture_size - res.value0) {
        return STATUS_DEVICE_REMOVED;
    }
    if (d->a->t->ops->map) {
        return lib_map_locked(d, p->hAllocation, res.value0, res.value1, &p->pData);
    }
    p->pData = d->a->t->aperture + res.value0;
    return STATUS_SUCCESS;
}

LIB_THUNK(D3DKMTLock2, D3DKMT_LOCK2, lock2)

static NTSTATUS unlock2(const D3DKMT_UNLOCK2 *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_UNLOCK };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);

    if (!d) {
        return st;
    }
    sqe.handle = d->hw;
    sqe.arg0 = p->hAllocation;
    st = lib_run(d->a, &sqe, NULL);
    if (st == STATUS_SUCCESS && d->a->t->ops->unmap) {
        lib_unmap_locked(d, p->hAllocation);
    }
    return st;
}

LIB_THUNK(D3DKMTUnlock2, const D3DKMT_UNLOCK2, unlock2)
