/* SPDX-License-Identifier: MIT */
/*
 * Adapters: D3DKMTEnumAdapters2, D3DKMTOpenAdapterFromLuid,
 * D3DKMTCloseAdapter and D3DKMTQueryVideoMemoryInfo, plus the adapter-level
 * extras of vkmt.h (trim, reset). Opening an adapter claims this process's
 * queue on the device; closing the last handle releases it, and with it
 * everything the process created there.
 */
#include <string.h>

#include "lib.h"
#include "usermem.h"

/* Windows declares the argument const but fills it in. */
static NTSTATUS enum_adapters(const D3DKMT_ENUMADAPTERS2 *arg)
{
    D3DKMT_ENUMADAPTERS2 *p = (D3DKMT_ENUMADAPTERS2 *)arg;
    const struct vkmt_transport_ops *ops = vkmt_transport_get();
    uint32_t n = ops ? ops->count() : 0;
    D3DKMT_ADAPTERINFO info;

    if (!p->pAdapters) {
        p->NumAdapters = n;
        return STATUS_SUCCESS;
    }
    if (p->NumAdapters < n) {
        p->NumAdapters = n;
        return STATUS_BUFFER_TOO_SMALL;
    }
    if (!um_probe_out(p->pAdapters, (size_t)n * sizeof(*p->pAdapters))) {
        return STATUS_INVALID_PARAMETER;
    }
    for (uint32_t i = 0; i < n; i++) {
        NTSTATUS st = lib_open_adapter(i, &info.hAdapter);

        if (st != STATUS_SUCCESS) {
            /* All or nothing: close what this call opened. */
            while (i--) {
                lib_close_adapter(p->pAdapters[i].hAdapter);
            }
            return st;
        }
        info.AdapterLuid = lib_luid(lib_adapter(info.hAdapter)->t->luid);
        info.NumOfSources = 0; /* no display outputs */
        info.bPrecisePresentRegionsPreferred = 0;
        p->pAdapters[i] = info;
    }
    p->NumAdapters = n;
    return STATUS_SUCCESS;
}

LIB_THUNK(D3DKMTEnumAdapters2, const D3DKMT_ENUMADAPTERS2, enum_adapters)

/* Const in Windows' prototype too, though hAdapter is an output. */
static NTSTATUS open_from_luid(const D3DKMT_OPENADAPTERFROMLUID *p)
{
    const struct vkmt_transport_ops *ops = vkmt_transport_get();
    uint32_t n = ops ? ops->count() : 0;

    for (uint32_t i = 0; i < n; i++) {
        struct vkmt_transport *t;
        LUID luid;

        /* The LUID is a property of the device: ask the transport. */
        if (ops->open(i, &t) < 0) {
            continue;
        }
        luid = lib_luid(t->luid);
        ops->close(t);
        if (luid.LowPart == p->AdapterLuid.LowPart && luid.HighPart == p->AdapterLuid.HighPart) {
            return lib_open_adapter(i, &((D3DKMT_OPENADAPTERFROMLUID *)p)->hAdapter);
        }
    }
    return STATUS_INVALID_PARAMETER;
}

LIB_THUNK(D3DKMTOpenAdapterFromLuid, const D3DKMT_OPENADAPTERFROMLUID, open_from_luid)

static NTSTATUS close_adapter(const D3DKMT_CLOSEADAPTER *p)
{
    return lib_close_adapter(p->hAdapter);
}

LIB_THUNK(D3DKMTCloseAdapter, const D3DKMT_CLOSEADAPTER, close_adapter)

/*
 * The adapter and segment a memory query or reservation names, checked in
 * Wine's order: the adapter, the group and physical adapter index, then
 * the process. Only the calling process can be named (NULL, or the
 * current-process pseudo-handle -1): a guest has no handles to others, so
 * any other value is STATUS_INVALID_HANDLE, as Windows answers a handle
 * that names no process.
 */
static struct adapter *segment_args(HANDLE process, D3DKMT_HANDLE adapter,
                                    D3DKMT_MEMORY_SEGMENT_GROUP group, UINT index, NTSTATUS *st)
{
    struct adapter *a = lib_adapter(adapter);

    *st = STATUS_INVALID_PARAMETER;
    if (!a) {
        return NULL;
    }
    if (qc_dead(&a->qc)) {
        *st = STATUS_DEVICE_REMOVED;
        return NULL;
    }
    /* One physical adapter and two segment groups. */
    if (index || (group != D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL &&
                  group != D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL)) {
        return NULL;
    }
    if (process && process != (HANDLE)(intptr_t)-1) {
        *st = STATUS_INVALID_HANDLE;
        return NULL;
    }
    return a;
}

static NTSTATUS query_memory(D3DKMT_QUERYVIDEOMEMORYINFO *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_QUERY_MEMORY };
    struct qresult use = { 0 }, rsv = { 0 };
    NTSTATUS st;
    struct adapter *a =
        segment_args(p->hProcess, p->hAdapter, p->MemorySegmentGroup, p->PhysicalAdapterIndex, &st);

    if (!a) {
        return st;
    }
    sqe.arg0 = (uint32_t)p->MemorySegmentGroup;
    st = lib_run(a, &sqe, &use);
    /* A 1.1 device has no reservations: nothing reserved, none available. */
    if (st == STATUS_SUCCESS && (a->qc.features & VKMT_F_RESIDENCY)) {
        sqe = (struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY,
                                 .arg0 = (uint32_t)p->MemorySegmentGroup,
                                 .arg1 = VKMT_MEMQ_RESERVATION };
        st = lib_run(a, &sqe, &rsv);
    }
    if (st == STATUS_SUCCESS) {
        p->Budget = use.value0;
        p->CurrentUsage = use.value1;
        p->CurrentReservation = rsv.value0;
        p->AvailableForReservation = rsv.value1;
    }
    return st;
}

LIB_THUNK(D3DKMTQueryVideoMemoryInfo, D3DKMT_QUERYVIDEOMEMORYINFO, query_memory)

static NTSTATUS change_reservation(const D3DKMT_CHANGEVIDEOMEMORYRESERVATION *p)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CHANGE_RESERVATION };
    NTSTATUS st;
    struct adapter *a =
        segment_args(p->hProcess, p->hAdapter, p->MemorySegmentGroup, p->PhysicalAdapterIndex, &st);

    if (!a) {
        return st;
    }
    if (!(a->qc.features & VKMT_F_RESIDENCY)) {
        return STATUS_NOT_SUPPORTED;
    }
    sqe.arg0 = (uint32_t)p->MemorySegmentGroup;
    sqe.arg64 = p->Reservation; /* the device refuses more than is available */
    return lib_run(a, &sqe, NULL);
}

LIB_THUNK(D3DKMTChangeVideoMemoryReservation, const D3DKMT_CHANGEVIDEOMEMORYRESERVATION,
          change_reservation)

VKMT_API NTSTATUS vkmt_trim(D3DKMT_HANDLE hAdapter, UINT64 bytes, UINT64 *discarded)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_TRIM, .arg64 = bytes };
    struct qresult res = { 0 };
    struct adapter *a;
    NTSTATUS st;

    lib_lock();
    a = lib_adapter(hAdapter);
    st = !a                                      ? STATUS_INVALID_PARAMETER
         : !(a->qc.features & VKMT_F_GUEST_TRIM) ? STATUS_NOT_SUPPORTED
                                                 : lib_run(a, &sqe, &res);
    lib_unlock();
    if (st == STATUS_SUCCESS && discarded) {
        *discarded = res.value0;
    }
    return st;
}

VKMT_API NTSTATUS vkmt_reset_adapter(D3DKMT_HANDLE hAdapter)
{
    struct adapter *a;
    NTSTATUS st = STATUS_SUCCESS;

    lib_lock();
    a = lib_adapter(hAdapter);
    if (!a) {
        st = STATUS_INVALID_PARAMETER;
    } else if (qc_dead(&a->qc)) {
        st = STATUS_DEVICE_REMOVED;
    } else {
        st = qc_reset(a->t);
    }
    lib_unlock();
    return st;
}

VKMT_API NTSTATUS vkmt_query_stats(D3DKMT_HANDLE hAdapter, VKMT_DEVICE_STATS *out)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_QUERY_STATS,
                            .result_len = sizeof(struct vkmt_wire_stats) };
    struct vkmt_wire_stats w;
    struct adapter *a;
    NTSTATUS st;

    if (!out) {
        return STATUS_INVALID_PARAMETER;
    }
    lib_lock();
    a = lib_adapter(hAdapter);
    st = !a ? STATUS_INVALID_PARAMETER : lib_run(a, &sqe, NULL);
    if (st == STATUS_SUCCESS) {
        memcpy(&w, a->qc.sh_staging, sizeof(w));
    }
    lib_unlock();
    if (st == STATUS_SUCCESS) {
        *out = (VKMT_DEVICE_STATS){
            .Allocations = w.allocations,
            .CommittedBytes = w.committed_bytes,
            .OfferedBytes = w.offered_bytes,
            .BudgetBytes = w.budget_bytes,
            .Offers = w.offers,
            .Discards = w.discards,
            .DiscardedBytes = w.discarded_bytes,
            .ReclaimOk = w.reclaim_ok,
            .ReclaimDiscarded = w.reclaim_discarded,
            .ReclaimNotCommitted = w.reclaim_not_committed,
            .Trims = w.trims,
            .Commands = w.commands,
            .CommandErrors = w.command_errors,
            .QueuesClaimed = w.queues_claimed,
        };
    }
    return st;
}

VKMT_API NTSTATUS vkmt_query_queue_stats(D3DKMT_HANDLE hAdapter, BOOL all, VKMT_QUEUE_STATS *out,
                                         UINT capacity, UINT *count)
{
    struct vkmt_wire_queue_stats w[VKMT_MAX_QUEUES];
    uint32_t n = all ? (capacity < VKMT_MAX_QUEUES ? capacity : VKMT_MAX_QUEUES) : 1;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_QUERY_QUEUE_STATS,
                            .count = n,
                            .arg0 = all ? VKMT_QSTATS_ALL : 0,
                            .result_len = n * (uint32_t)sizeof(w[0]) };
    struct qresult res = { 0 };
    struct adapter *a;
    NTSTATUS st;

    if (!out || capacity == 0) {
        return STATUS_INVALID_PARAMETER;
    }
    lib_lock();
    a = lib_adapter(hAdapter);
    st = !a                                       ? STATUS_INVALID_PARAMETER
         : !(a->qc.features & VKMT_F_QUEUE_STATS) ? STATUS_NOT_SUPPORTED
                                                  : lib_run(a, &sqe, &res);
    if (st == STATUS_SUCCESS) {
        memcpy(w, a->qc.sh_staging, n * sizeof(w[0]));
    }
    lib_unlock();
    if (st != STATUS_SUCCESS) {
        return st;
    }
    /* The device's counts, bounded by what was asked for. */
    n = res.value0 < n ? (uint32_t)res.value0 : n;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = (VKMT_QUEUE_STATS){
            .Queue = w[i].queue,
            .Caller = (w[i].flags & VKMT_QSTATS_CALLER) != 0,
            .BudgetBytes = w[i].budget,
            .LocalBudgetBytes = w[i].budget_local,
            .CommittedBytes = w[i].committed,
            .ResidentBytes = w[i].resident,
            .OfferedBytes = w[i].offered,
            .DemotedBytes = w[i].demoted,
            .DiscardedBytes = w[i].discarded,
        };
    }
    if (count) {
        *count = res.value1 < UINT32_MAX ? (UINT)res.value1 : UINT32_MAX;
    }
    return STATUS_SUCCESS;
}

VKMT_API BOOL vkmt_textures_supported(D3DKMT_HANDLE hAdapter)
{
    struct adapter *a;
    BOOL yes;

    lib_lock();
    a = lib_adapter(hAdapter);
    yes = a && (a->qc.features & VKMT_F_TEXTURES);
    lib_unlock();
    return yes;
}
