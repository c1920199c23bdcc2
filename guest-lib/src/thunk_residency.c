/* SPDX-License-Identifier: MIT */
/*
 * D3DKMTMakeResident, D3DKMTEvict, D3DKMTSetAllocationPriority,
 * D3DKMTGetAllocationPriority and D3DKMTQueryAllocationResidency over the
 * residency opcodes of protocol 1.2. Checks come in the order the WSL
 * thunks apply them (count, then the object named, then flags, then the
 * arrays), arrays are read and output arrays proven writable before the
 * command is submitted, and the device checks everything again. A device
 * without VKMT_F_RESIDENCY answers STATUS_NOT_SUPPORTED.
 */
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "usermem.h"

static NTSTATUS residency_ok(const struct adapter *a)
{
    if (qc_dead(&a->qc)) {
        return STATUS_DEVICE_REMOVED;
    }
    return (a->qc.features & VKMT_F_RESIDENCY) ? STATUS_SUCCESS : STATUS_NOT_SUPPORTED;
}

static NTSTATUS make_resident(D3DDDI_MAKERESIDENT *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_MAKE_RESIDENT };
    struct qresult res = { 0 };
    struct pq_rec *pq;
    NTSTATUS st;

    if (p->NumAllocations == 0 || p->NumAllocations > VKMT_RESIDENCY_MAX_BATCH) {
        return STATUS_INVALID_PARAMETER;
    }
    if (!(pq = lib_paging_queue(p->hPagingQueue))) {
        return STATUS_INVALID_PARAMETER;
    }
    if ((st = residency_ok(pq->a)) != STATUS_SUCCESS) {
        return st;
    }
    if (p->Flags.Reserved || (p->Flags.MustSucceed && !p->Flags.CantTrimFurther)) {
        return STATUS_INVALID_PARAMETER;
    }
    /* PriorityList is documented as ignored: never read. */
    st = lib_stage_handles(pq->a, p->NumAllocations, NULL, p->AllocationList, &sqe);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    sqe.handle = pq->hw;
    sqe.arg0 = (p->Flags.CantTrimFurther ? VKMT_RESIDENT_F_CANT_TRIM_FURTHER : 0) |
               (p->Flags.MustSucceed ? VKMT_RESIDENT_F_MUST_SUCCEED : 0);
    st = lib_run(pq->a, &sqe, &res);
    if (st == STATUS_SUCCESS) {
        /* Resident when the command completes: the fence is reached. */
        p->PagingFenceValue = res.value0;
        p->NumBytesToTrim = 0;
        __atomic_store_n(pq->fence, res.value0, __ATOMIC_RELEASE);
    } else if (st == STATUS_NO_MEMORY) {
        p->NumBytesToTrim = res.value1; /* what to Evict before retrying */
    }
    return st;
}

LIB_THUNK(D3DKMTMakeResident, D3DDDI_MAKERESIDENT, make_resident)

static NTSTATUS evict(D3DKMT_EVICT *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_EVICT };
    struct qresult res = { 0 };
    struct dev_rec *d;
    NTSTATUS st;

    if (p->NumAllocations == 0 || p->NumAllocations > VKMT_RESIDENCY_MAX_BATCH) {
        return STATUS_INVALID_PARAMETER;
    }
    if (!(d = lib_device_usable(p->hDevice, &st))) {
        return st;
    }
    if ((st = residency_ok(d->a)) != STATUS_SUCCESS) {
        return st;
    }
    if (p->Flags.Reserved) {
        return STATUS_INVALID_PARAMETER;
    }
    st = lib_stage_handles(d->a, p->NumAllocations, NULL, p->AllocationList, &sqe);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    sqe.handle = d->hw;
    sqe.arg0 = (p->Flags.EvictOnlyIfNecessary ? VKMT_EVICT_F_ONLY_IF_NECESSARY : 0) |
               (p->Flags.NotWrittenTo ? VKMT_EVICT_F_NOT_WRITTEN_TO : 0);
    st = lib_run(d->a, &sqe, &res);
    if (st == STATUS_SUCCESS) {
        p->NumBytesToTrim = res.value0;
    }
    return st;
}

LIB_THUNK(D3DKMTEvict, D3DKMT_EVICT, evict)

/*
 * What Set/GetAllocationPriority and QueryAllocationResidency share: the
 * device, and exactly one addressing mode (hResource alone, or a list of
 * 1..VKMT_MAX_BATCH allocations); @values is the caller's parallel array,
 * which must be given in both modes.
 */
static struct dev_rec *per_allocation(D3DKMT_HANDLE dev, D3DKMT_HANDLE resource,
                                      const D3DKMT_HANDLE *list, UINT count, const void *values,
                                      NTSTATUS *st)
{
    struct dev_rec *d = lib_device_usable(dev, st);

    if (!d) {
        return NULL;
    }
    if ((*st = residency_ok(d->a)) != STATUS_SUCCESS) {
        return NULL;
    }
    if (resource ? count != 0 || list != NULL
                 : count == 0 || count > VKMT_MAX_BATCH || list == NULL) {
        *st = STATUS_INVALID_PARAMETER;
        return NULL;
    }
    if (!values) {
        *st = STATUS_INVALID_PARAMETER;
        return NULL;
    }
    return d;
}

static NTSTATUS set_priority(const D3DKMT_SETALLOCATIONPRIORITY *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_SET_PRIORITY };
    uint32_t *pairs = NULL;
    struct dev_rec *d;
    NTSTATUS st;

    d = per_allocation(p->hDevice, p->hResource, p->phAllocationList, p->AllocationCount,
                       p->pPriorities, &st);
    if (!d) {
        return st;
    }
    sqe.handle = d->hw;
    if (p->hResource) {
        sqe.arg0 = p->hResource;
        if (!um_copy_in(&sqe.arg1, p->pPriorities, sizeof(sqe.arg1))) {
            return STATUS_INVALID_PARAMETER;
        }
        return lib_run(d->a, &sqe, NULL);
    }
    /* The wire takes {handle, priority} pairs: built here from both arrays,
     * read into the second half of the buffer first. */
    pairs = malloc((size_t)p->AllocationCount * 16);
    if (!pairs) {
        return STATUS_NO_MEMORY;
    }
    st = STATUS_INVALID_PARAMETER;
    if (um_copy_in(pairs + 2 * p->AllocationCount, p->phAllocationList,
                   (size_t)p->AllocationCount * 4) &&
        um_copy_in(pairs + 3 * p->AllocationCount, p->pPriorities,
                   (size_t)p->AllocationCount * 4)) {
        for (uint32_t i = 0; i < p->AllocationCount; i++) {
            pairs[2 * i] = pairs[2 * p->AllocationCount + i];
            pairs[2 * i + 1] = pairs[3 * p->AllocationCount + i];
        }
        sqe.count = p->AllocationCount;
        lib_stage_payload(d->a, pairs, p->AllocationCount * 8, &sqe);
        st = lib_run(d->a, &sqe, NULL);
    }
    free(pairs);
    return st;
}

LIB_THUNK(D3DKMTSetAllocationPriority, const D3DKMT_SETALLOCATIONPRIORITY, set_priority)

/*
 * GET_PRIORITY or QUERY_RESIDENCY into @out: one value for a resource, one
 * per allocation otherwise. @clamp bounds each device value (an untrusted
 * device answers only what the caller may see), 0 for none.
 */
static NTSTATUS query_values(struct dev_rec *d, uint8_t op, D3DKMT_HANDLE resource,
                             const D3DKMT_HANDLE *list, UINT count, UINT *out, uint32_t clamp)
{
    struct vkmt_sqe sqe = { .opcode = op, .handle = d->hw };
    struct qresult res = { 0 };
    NTSTATUS st;

    if (resource) {
        uint32_t v;

        sqe.arg0 = resource;
        if (!um_probe_out(out, sizeof(*out))) {
            return STATUS_INVALID_PARAMETER;
        }
        st = lib_run(d->a, &sqe, &res);
        v = (uint32_t)res.value0;
        if (st == STATUS_SUCCESS &&
            !um_copy_out(out, &(UINT){ clamp && (v < 1 || v > clamp) ? clamp : v }, 4)) {
            st = STATUS_INVALID_PARAMETER;
        }
        return st;
    }
    st = lib_stage_handles(d->a, count, NULL, list, &sqe);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    if (!lib_stage_results(d->a, out, (size_t)count * sizeof(*out))) {
        return STATUS_INVALID_PARAMETER;
    }
    sqe.result_off = qc_result_off(sqe.payload_len);
    sqe.result_len = count * (uint32_t)sizeof(*out);
    st = lib_run(d->a, &sqe, NULL);
    if (st == STATUS_SUCCESS) {
        /* Over a forwarding transport the driver wrote them into @out. */
        const uint32_t *r =
            d->a->t->ops->submit ? out : (const uint32_t *)(d->a->qc.sh_staging + sqe.result_off);

        for (uint32_t i = 0; i < count; i++) {
            uint32_t v = r[i];

            out[i] = clamp && (v < 1 || v > clamp) ? clamp : v;
        }
    }
    return st;
}

static NTSTATUS get_priority(const D3DKMT_GETALLOCATIONPRIORITY *p)
{
    NTSTATUS st;
    struct dev_rec *d = per_allocation(p->hDevice, p->hResource, p->phAllocationList,
                                       p->AllocationCount, p->pPriorities, &st);

    return d ? query_values(d, VKMT_OP_GET_PRIORITY, p->hResource, p->phAllocationList,
                            p->AllocationCount, p->pPriorities, 0)
             : st;
}

LIB_THUNK(D3DKMTGetAllocationPriority, const D3DKMT_GETALLOCATIONPRIORITY, get_priority)

static NTSTATUS query_residency(const D3DKMT_QUERYALLOCATIONRESIDENCY *p)
{
    NTSTATUS st;
    struct dev_rec *d = per_allocation(p->hDevice, p->hResource, p->phAllocationList,
                                       p->AllocationCount, p->pResidencyStatus, &st);

    return d ? query_values(d, VKMT_OP_QUERY_RESIDENCY, p->hResource, p->phAllocationList,
                            p->AllocationCount, (UINT *)p->pResidencyStatus, VKMT_RESIDENCY_NONE)
             : st;
}

LIB_THUNK(D3DKMTQueryAllocationResidency, const D3DKMT_QUERYALLOCATIONRESIDENCY, query_residency)
