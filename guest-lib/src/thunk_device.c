/* SPDX-License-Identifier: MIT */
/*
 * D3DKMTCreateDevice / DestroyDevice, D3DKMTCreatePagingQueue /
 * DestroyPagingQueue, and D3DKMTWaitForSynchronizationObjectFromCpu for the
 * paging fence. The device signals a paging queue's fence before it completes
 * the reclaim that produced the value, so a wait is a fence query, repeated
 * with backoff only for values no reclaim has reached yet.
 */
#define _DEFAULT_SOURCE /* nanosleep */
#include <stdlib.h>
#include <time.h>

#include "lib.h"
#include "usermem.h"

#define WAIT_MAX_OBJECTS 64u /* as Windows' MAXIMUM_WAIT_OBJECTS */

static NTSTATUS create_device(D3DKMT_CREATEDEVICE *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct adapter *a = lib_adapter(p->hAdapter);
    struct qresult res = { 0 };
    struct dev_rec rec;
    NTSTATUS st;

    if (!a) {
        return STATUS_INVALID_PARAMETER;
    }
    st = lib_run(a, &sqe, &res);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    rec.hw = (D3DKMT_HANDLE)res.value0;
    rec.a = a;
    st = lib_add_device(&rec);
    if (st != STATUS_SUCCESS) {
        struct vkmt_sqe undo = { .opcode = VKMT_OP_DESTROY_DEVICE, .handle = rec.hw };

        lib_run(a, &undo, NULL);
        return st;
    }
    p->hDevice = rec.h;
    /* WDDM 2 devices get no command buffer or lists from the kernel. */
    p->pCommandBuffer = NULL;
    p->CommandBufferSize = 0;
    p->pAllocationList = NULL;
    p->AllocationListSize = 0;
    p->pPatchLocationList = NULL;
    p->PatchLocationListSize = 0;
    return STATUS_SUCCESS;
}

LIB_THUNK(D3DKMTCreateDevice, D3DKMT_CREATEDEVICE, create_device)

static NTSTATUS destroy_device(const D3DKMT_DESTROYDEVICE *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_DESTROY_DEVICE };
    struct dev_rec *d = lib_device(p->hDevice);
    NTSTATUS st;

    if (!d) {
        return STATUS_INVALID_PARAMETER;
    }
    sqe.handle = d->hw;
    st = lib_run(d->a, &sqe, NULL);
    /* After a removal the device already forgot it; forget it here too. */
    if (st == STATUS_SUCCESS || st == STATUS_DEVICE_REMOVED) {
        lib_forget_maps(d->a, d->hw, NULL, 0);
        lib_remove_device(p->hDevice);
    }
    return st;
}

LIB_THUNK(D3DKMTDestroyDevice, const D3DKMT_DESTROYDEVICE, destroy_device)

static NTSTATUS create_paging_queue(D3DKMT_CREATEPAGINGQUEUE *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_PAGING_QUEUE };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);
    struct qresult res = { 0 };
    struct pq_rec rec = { 0 };

    if (!d) {
        return st;
    }
    if (p->Priority < D3DDDI_PAGINGQUEUE_PRIORITY_BELOW_NORMAL ||
        p->Priority > D3DDDI_PAGINGQUEUE_PRIORITY_ABOVE_NORMAL || p->PhysicalAdapterIndex != 0) {
        return STATUS_INVALID_PARAMETER;
    }
    rec.fence = calloc(1, sizeof(*rec.fence));
    if (!rec.fence) {
        return STATUS_NO_MEMORY;
    }
    sqe.handle = d->hw;
    sqe.arg0 = (uint32_t)(int32_t)p->Priority;
    st = lib_run(d->a, &sqe, &res);
    if (st == STATUS_SUCCESS) {
        rec.hw = (D3DKMT_HANDLE)res.value0;
        rec.sync_hw = (D3DKMT_HANDLE)res.value1;
        rec.dev = p->hDevice;
        rec.a = d->a;
        st = lib_add_paging_queue(&rec);
        if (st != STATUS_SUCCESS) {
            struct vkmt_sqe undo = { .opcode = VKMT_OP_DESTROY_PAGING_QUEUE, .handle = rec.hw };

            lib_run(d->a, &undo, NULL);
        }
    }
    if (st != STATUS_SUCCESS) {
        free(rec.fence);
        return st;
    }
    p->hPagingQueue = rec.h;
    p->hSyncObject = rec.sync;
    p->FenceValueCPUVirtualAddress = rec.fence;
    return STATUS_SUCCESS;
}

LIB_THUNK(D3DKMTCreatePagingQueue, D3DKMT_CREATEPAGINGQUEUE, create_paging_queue)

static NTSTATUS destroy_paging_queue(const D3DDDI_DESTROYPAGINGQUEUE *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_DESTROY_PAGING_QUEUE };
    struct pq_rec *pq = lib_paging_queue(p->hPagingQueue);
    NTSTATUS st;

    if (!pq) {
        return STATUS_INVALID_PARAMETER;
    }
    sqe.handle = pq->hw;
    st = lib_run(pq->a, &sqe, NULL);
    if (st == STATUS_SUCCESS || st == STATUS_DEVICE_REMOVED) {
        lib_remove_paging_queue(p->hPagingQueue);
    }
    return st;
}

LIB_THUNK(D3DKMTDestroyPagingQueue, D3DDDI_DESTROYPAGINGQUEUE, destroy_paging_queue)

/*
 * One pass over the wait list: SUCCESS when the condition holds, PENDING when
 * it does not yet, or an error. Checks everything on the first pass.
 */
static NTSTATUS wait_pass(const D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU *p,
                          const D3DKMT_HANDLE *objs, const UINT64 *values)
{
    struct dev_rec *d = lib_device(p->hDevice);
    uint32_t reached = 0;

    if (!d) {
        return STATUS_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < p->ObjectCount; i++) {
        struct pq_rec *pq = lib_sync_object(objs[i], p->hDevice);
        struct vkmt_sqe sqe = { .opcode = VKMT_OP_QUERY_FENCE };
        struct qresult res = { 0 };
        NTSTATUS st;

        if (!pq) {
            return STATUS_INVALID_PARAMETER;
        }
        sqe.handle = pq->sync_hw;
        st = lib_run(pq->a, &sqe, &res);
        if (st != STATUS_SUCCESS) {
            return st;
        }
        __atomic_store_n(pq->fence, res.value0, __ATOMIC_RELEASE);
        reached += res.value0 >= values[i];
    }
    if (p->Flags.WaitAny ? reached > 0 : reached == p->ObjectCount) {
        return STATUS_SUCCESS;
    }
    return STATUS_PENDING;
}

VKMT_API NTSTATUS
D3DKMTWaitForSynchronizationObjectFromCpu(const D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU *p)
{
    D3DKMT_HANDLE objs[WAIT_MAX_OBJECTS];
    UINT64 values[WAIT_MAX_OBJECTS];
    struct timespec ts = { 0, 1000 };
    NTSTATUS st;

    if (!p || p->ObjectCount == 0 || p->ObjectCount > WAIT_MAX_OBJECTS || p->Flags.Reserved ||
        !um_copy_in(objs, p->ObjectHandleArray, p->ObjectCount * sizeof(*objs)) ||
        !um_copy_in(values, p->FenceValueArray, p->ObjectCount * sizeof(*values))) {
        return STATUS_INVALID_PARAMETER;
    }
    if (p->hAsyncEvent) {
        return STATUS_NOT_SUPPORTED; /* no event objects on this platform */
    }
    for (;;) {
        lib_lock();
        st = wait_pass(p, objs, values);
        lib_unlock();
        if (st != STATUS_PENDING) {
            return st;
        }
        /* Another thread's reclaim may still get there: back off, retry. */
        nanosleep(&ts, NULL);
        if (ts.tv_nsec < 1000000) {
            ts.tv_nsec *= 2;
        }
    }
}
