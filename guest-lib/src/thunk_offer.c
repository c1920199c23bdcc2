/* SPDX-License-Identifier: MIT */
/*
 * D3DKMTOfferAllocations, D3DKMTReclaimAllocations, D3DKMTReclaimAllocations2.
 * Checks happen in the order the Windows thunks apply them, output arrays are
 * proven writable before the command is submitted (afterwards the caller
 * could not learn which contents were lost), and the device checks again.
 */
#include "lib.h"

static NTSTATUS offer(const D3DKMT_OFFERALLOCATIONS *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_OFFER };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);

    if (!d) {
        return st;
    }
    if (p->Priority < D3DKMT_OFFER_PRIORITY_LOW || p->Priority > D3DKMT_OFFER_PRIORITY_AUTO ||
        p->Flags.Reserved) {
        return STATUS_INVALID_PARAMETER;
    }
    st = lib_stage_handles(d->a, p->NumAllocations, p->pResources, p->HandleList, &sqe);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    sqe.handle = d->hw;
    sqe.arg0 = (uint32_t)p->Priority;
    /* Translate bit by bit: the wire has its own flag word. */
    sqe.arg1 = (p->Flags.OfferImmediately ? VKMT_OFFER_F_IMMEDIATE : 0) |
               (p->Flags.AllowDecommit ? VKMT_OFFER_F_ALLOW_DECOMMIT : 0);
    return lib_run(d->a, &sqe, NULL);
}

LIB_THUNK(D3DKMTOfferAllocations, const D3DKMT_OFFERALLOCATIONS, offer)

/*
 * The part both reclaim thunks share. @out is the caller's optional result
 * array; @as_bool writes BOOL "discarded" values instead of results.
 * @recommit asks the device to give decommitted allocations fresh zeroed
 * backing (the v1 thunk cannot report NOT_COMMITTED).
 */
static NTSTATUS reclaim(struct adapter *a, struct vkmt_sqe *sqe, uint32_t count,
                        D3DKMT_HANDLE *resources, const D3DKMT_HANDLE *handles, UINT *out,
                        struct qresult *res)
{
    NTSTATUS st = lib_stage_handles(a, count, resources, handles, sqe);

    if (st != STATUS_SUCCESS) {
        return st;
    }
    if (out) {
        if (!lib_stage_results(a, out, (size_t)count * sizeof(*out))) {
            return STATUS_INVALID_PARAMETER;
        }
        sqe->flags |= VKMT_SQE_F_WRITE_RESULTS;
        sqe->result_off = qc_result_off(sqe->payload_len);
        sqe->result_len = count * (uint32_t)sizeof(*out);
    }
    st = lib_run(a, sqe, res);
    if (st == STATUS_SUCCESS && out) {
        /* Over a forwarding transport the driver wrote them into @out. */
        const uint32_t *r =
            a->t->ops->submit ? out : (const uint32_t *)(a->qc.sh_staging + sqe->result_off);

        for (uint32_t i = 0; i < count; i++) {
            /* Device values are untrusted: clamp to the three defined. */
            uint32_t v = r[i];

            out[i] = v <= VKMT_RECLAIM_NOT_COMMITTED ? v : VKMT_RECLAIM_DISCARDED;
        }
    }
    return st;
}

static NTSTATUS reclaim1(const D3DKMT_RECLAIMALLOCATIONS *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_RECLAIM, .flags = VKMT_SQE_F_RECOMMIT };
    NTSTATUS st;
    struct dev_rec *d = lib_device_usable(p->hDevice, &st);

    if (!d) {
        return st;
    }
    sqe.handle = d->hw;
    st = reclaim(d->a, &sqe, p->NumAllocations, p->pResources, p->HandleList, (UINT *)p->pDiscarded,
                 NULL);
    if (st == STATUS_SUCCESS && p->pDiscarded) {
        for (uint32_t i = 0; i < p->NumAllocations; i++) {
            p->pDiscarded[i] = p->pDiscarded[i] != D3DDDI_RECLAIM_RESULT_OK;
        }
    }
    return st;
}

LIB_THUNK(D3DKMTReclaimAllocations, const D3DKMT_RECLAIMALLOCATIONS, reclaim1)

static NTSTATUS reclaim2(D3DKMT_RECLAIMALLOCATIONS2 *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_RECLAIM, .flags = VKMT_SQE_F_PAGING_QUEUE };
    struct pq_rec *pq = lib_paging_queue(p->hPagingQueue);
    struct qresult res = { 0 };
    NTSTATUS st;

    if (!pq) {
        return STATUS_INVALID_PARAMETER;
    }
    if (qc_dead(&pq->a->qc)) {
        return STATUS_DEVICE_REMOVED;
    }
    sqe.handle = pq->hw;
    st = reclaim(pq->a, &sqe, p->NumAllocations, p->pResources, p->HandleList, (UINT *)p->pResults,
                 &res);
    if (st == STATUS_SUCCESS) {
        /* Residency is complete when the command completes: signalled. */
        p->PagingFenceValue = res.value0;
        __atomic_store_n(pq->fence, res.value0, __ATOMIC_RELEASE);
    }
    return st;
}

LIB_THUNK(D3DKMTReclaimAllocations2, D3DKMT_RECLAIMALLOCATIONS2, reclaim2)
