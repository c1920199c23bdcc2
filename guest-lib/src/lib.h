/* SPDX-License-Identifier: MIT */
/*
 * libvkmt's process-wide state: the adapters this process opened, and the
 * device, paging-queue and sync-object handles it gave out. Those are the
 * library's own values mapped to (adapter, device handle): two devices may
 * hand out equal values, and Windows handles are unique per process.
 * Allocation handles pass through unchanged; the device checks them against
 * the device they are used with. One mutex serializes the thunks.
 */
#ifndef VKMT_LIB_H
#define VKMT_LIB_H

#include <stdint.h>

#include "qclient.h"
#include "vkmt.h"

/* One opened device: a transport mapping and the queue this process owns. */
/* A locked allocation's mapping over a forwarding transport (lockmap.c). */
struct lock_map {
    D3DKMT_HANDLE dev;   /* the device's handle for its device */
    D3DKMT_HANDLE alloc; /* the allocation */
    void *p;
    uint64_t len;
    uint32_t count; /* Lock2 calls not yet ended by Unlock2 */
};

struct adapter {
    struct vkmt_transport *t;
    struct qclient qc;
    uint32_t index; /* the transport's device index */
    uint32_t opens; /* adapter handles that refer to it */
    struct lock_map *maps;
    uint32_t nmaps;
    uint32_t notify_id; /* notify.c's name for it, 0 until it has registrations */
};

struct dev_rec {
    D3DKMT_HANDLE h;  /* what the caller holds */
    D3DKMT_HANDLE hw; /* what the device gave out */
    struct adapter *a;
};

struct pq_rec {
    D3DKMT_HANDLE h;
    D3DKMT_HANDLE hw;
    D3DKMT_HANDLE sync;
    D3DKMT_HANDLE sync_hw;
    D3DKMT_HANDLE dev; /* the caller's device handle */
    struct adapter *a;
    uint64_t *fence; /* FenceValueCPUVirtualAddress */
};

void lib_lock(void);
void lib_unlock(void);

/* Open adapter handles. */
int32_t lib_open_adapter(uint32_t index, D3DKMT_HANDLE *out);
int32_t lib_close_adapter(D3DKMT_HANDLE h);
struct adapter *lib_adapter(D3DKMT_HANDLE h);

/* Devices: records a device handle and sets rec->h. */
int32_t lib_add_device(struct dev_rec *rec);
struct dev_rec *lib_device(D3DKMT_HANDLE h);
/* The record of @h if its adapter still works; else NULL with *st set to
 * INVALID_PARAMETER (unknown handle) or DEVICE_REMOVED. */
struct dev_rec *lib_device_usable(D3DKMT_HANDLE h, NTSTATUS *st);
void lib_remove_device(D3DKMT_HANDLE h);

/* Paging queues with their sync objects and CPU-visible fence values; sets
 * rec->h and rec->sync. */
int32_t lib_add_paging_queue(struct pq_rec *rec);
struct pq_rec *lib_paging_queue(D3DKMT_HANDLE h);
struct pq_rec *lib_sync_object(D3DKMT_HANDLE sync, D3DKMT_HANDLE dev);
void lib_remove_paging_queue(D3DKMT_HANDLE h);

/*
 * Forwarding transports (lockmap.c): map the range a LOCK of @alloc on @d
 * just granted (once per allocation, counted), unmap it when the last
 * Unlock2 ends, forget the mappings of destroyed allocations (@allocs, or
 * all of device @dev when NULL) or of a closing adapter.
 */
int32_t lib_map_locked(struct dev_rec *d, D3DKMT_HANDLE alloc, uint64_t off, uint64_t size,
                       void **out);
void lib_unmap_locked(struct dev_rec *d, D3DKMT_HANDLE alloc);
void lib_forget_maps(struct adapter *a, D3DKMT_HANDLE dev, const D3DKMT_HANDLE *allocs, uint32_t n);
void lib_forget_all_maps(struct adapter *a);
void lib_forget_destroyed_maps(struct dev_rec *d);

/* Run one command on @a; DEVICE_REMOVED once the device was reset. */
int32_t lib_run(struct adapter *a, struct vkmt_sqe *sqe, struct qresult *res);

/*
 * The caller's result array @out (@len bytes) for the next lib_run: over a
 * forwarding transport the driver writes it directly (and refuses an
 * unwritable one before the command runs), elsewhere it is probed now and
 * the caller copies the results from the staging area. False: @out is not
 * writable.
 */
bool lib_stage_results(struct adapter *a, void *out, size_t len);

/*
 * Common checks of an offer/reclaim element list (count in 1..MAX_BATCH and
 * exactly one of @resources / @handles), then a checked copy of it into the
 * staging area. Fills the payload fields of @sqe. Returns an NTSTATUS.
 */
int32_t lib_stage_handles(struct adapter *a, uint32_t count, const D3DKMT_HANDLE *resources,
                          const D3DKMT_HANDLE *handles, struct vkmt_sqe *sqe);

/* Stage @len bytes the library built itself at @buf (alive until lib_run)
 * as the payload of @sqe. */
void lib_stage_payload(struct adapter *a, const void *buf, uint32_t len, struct vkmt_sqe *sqe);

/*
 * Define the exported thunk @name: a NULL argument is STATUS_INVALID_PARAMETER,
 * anything else is handled by @impl under the library lock.
 */
#define LIB_THUNK(name, argtype, impl)                                                             \
    VKMT_API NTSTATUS name(argtype *p)                                                             \
    {                                                                                              \
        NTSTATUS st_;                                                                              \
                                                                                                   \
        if (!p) {                                                                                  \
            return STATUS_INVALID_PARAMETER;                                                       \
        }                                                                                          \
        lib_lock();                                                                                \
        st_ = impl(p);                                                                             \
        lib_unlock();                                                                              \
        return st_;                                                                                \
    }

/* notify.c: end the trim and budget-change registrations of closing @a. */
void lib_notify_forget(struct adapter *a);

/* LUID of a transport device. */
LUID lib_luid(uint64_t id);

#endif /* VKMT_LIB_H */
