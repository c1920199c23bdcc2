/* SPDX-License-Identifier: MIT */
/*
 * The handle maps behind lib.h. Devices and paging queues are few per
 * process, so plain arrays with linear search are the fastest structure
 * here; allocation handles are never stored on this side at all.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "usermem.h"

/* Handle spaces of the library's own handles; the low 28 bits count up. */
#define HANDLE_ADAPTER 0x40000000u
#define HANDLE_DEVICE 0x50000000u
#define HANDLE_PAGING_QUEUE 0x60000000u
#define HANDLE_SYNC 0x70000000u
#define HANDLE_COUNTER 0x0fffffffu

struct open_rec {
    D3DKMT_HANDLE h;
    struct adapter *a;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    struct open_rec *opens;
    uint32_t nopens;
    struct dev_rec *devs;
    uint32_t ndevs;
    struct pq_rec *pqs;
    uint32_t npqs;
    uint32_t counter;
} g;

/* Handles are not reused until the 28-bit counter wraps. */
static D3DKMT_HANDLE new_handle(uint32_t space)
{
    g.counter = (g.counter + 1) & HANDLE_COUNTER;
    if (g.counter == 0) {
        g.counter = 1;
    }
    return space | g.counter;
}

void lib_lock(void)
{
    pthread_mutex_lock(&lock);
}

/*
 * Forwarding transports: the caller's handle array that the thunk's next
 * lib_run hands the driver as its payload, instead of a probed copy. Set by
 * lib_stage_handles under the lock and dropped when the thunk ends, so a
 * thunk that stops after staging leaves nothing for the next one.
 */
static const void *pending_payload;
static void *pending_results;

void lib_unlock(void)
{
    pending_payload = NULL;
    pending_results = NULL;
    pthread_mutex_unlock(&lock);
}

/* Append one element to a growable array; false when out of memory. */
static int push(void **arr, uint32_t *n, size_t size, const void *elem)
{
    void *grown = realloc(*arr, (*n + 1) * size);

    if (!grown) {
        return 0;
    }
    memcpy((char *)grown + *n * size, elem, size);
    *arr = grown;
    (*n)++;
    return 1;
}

static void drop(void *arr, uint32_t *n, size_t size, uint32_t i)
{
    memmove((char *)arr + i * size, (char *)arr + (i + 1) * size, (*n - i - 1) * size);
    (*n)--;
}

LUID lib_luid(uint64_t id)
{
    LUID l = { .LowPart = (ULONG)id, .HighPart = (LONG)(id >> 32) };

    return l;
}

/*
 * Reuse this process's live adapter for @index; a removed one is left to its
 * remaining handles and a fresh one (a new queue) is opened instead.
 */
static struct adapter *find_live(uint32_t index)
{
    for (uint32_t i = 0; i < g.nopens; i++) {
        struct adapter *a = g.opens[i].a;

        if (a->index == index && !qc_dead(&a->qc)) {
            return a;
        }
    }
    return NULL;
}

int32_t lib_open_adapter(uint32_t index, D3DKMT_HANDLE *out)
{
    const struct vkmt_transport_ops *ops = vkmt_transport_get();
    struct adapter *a;
    struct open_rec rec;
    int32_t st;

    if (!ops || index >= ops->count()) {
        return STATUS_INVALID_PARAMETER;
    }
    a = find_live(index);
    if (!a) {
        a = calloc(1, sizeof(*a));
        if (!a) {
            return STATUS_NO_MEMORY;
        }
        a->index = index;
        if (ops->open(index, &a->t) < 0) {
            free(a);
            return STATUS_UNSUCCESSFUL; /* the transport could not map it */
        }
        st = qc_open(&a->qc, a->t);
        if (st != STATUS_SUCCESS) {
            a->t->ops->close(a->t);
            free(a);
            return st;
        }
    }
    rec.h = new_handle(HANDLE_ADAPTER);
    rec.a = a;
    if (!push((void **)&g.opens, &g.nopens, sizeof(rec), &rec)) {
        if (!a->opens) {
            qc_close(&a->qc);
            a->t->ops->close(a->t);
            free(a);
        }
        return STATUS_NO_MEMORY;
    }
    a->opens++;
    *out = rec.h;
    return STATUS_SUCCESS;
}

struct adapter *lib_adapter(D3DKMT_HANDLE h)
{
    for (uint32_t i = 0; i < g.nopens; i++) {
        if (g.opens[i].h == h) {
            return g.opens[i].a;
        }
    }
    return NULL;
}

int32_t lib_close_adapter(D3DKMT_HANDLE h)
{
    struct adapter *a = NULL;
    bool removed;

    for (uint32_t i = 0; i < g.nopens; i++) {
        if (g.opens[i].h == h) {
            a = g.opens[i].a;
            drop(g.opens, &g.nopens, sizeof(*g.opens), i);
            break;
        }
    }
    if (!a) {
        return STATUS_INVALID_PARAMETER;
    }
    removed = qc_dead(&a->qc);
    if (--a->opens) {
        return removed ? STATUS_DEVICE_REMOVED : STATUS_SUCCESS;
    }
    lib_notify_forget(a);
    /* Releasing the queue destroys every object created through it. */
    for (uint32_t i = g.ndevs; i-- > 0;) {
        if (g.devs[i].a == a) {
            drop(g.devs, &g.ndevs, sizeof(*g.devs), i);
        }
    }
    for (uint32_t i = g.npqs; i-- > 0;) {
        if (g.pqs[i].a == a) {
            free(g.pqs[i].fence);
            drop(g.pqs, &g.npqs, sizeof(*g.pqs), i);
        }
    }
    lib_forget_all_maps(a);
    qc_close(&a->qc);
    a->t->ops->close(a->t);
    free(a);
    return removed ? STATUS_DEVICE_REMOVED : STATUS_SUCCESS;
}

int32_t lib_add_device(struct dev_rec *rec)
{
    rec->h = new_handle(HANDLE_DEVICE);
    return push((void **)&g.devs, &g.ndevs, sizeof(*rec), rec) ? STATUS_SUCCESS : STATUS_NO_MEMORY;
}

struct dev_rec *lib_device(D3DKMT_HANDLE h)
{
    for (uint32_t i = 0; i < g.ndevs; i++) {
        if (g.devs[i].h == h) {
            return &g.devs[i];
        }
    }
    return NULL;
}

struct dev_rec *lib_device_usable(D3DKMT_HANDLE h, NTSTATUS *st)
{
    struct dev_rec *d = lib_device(h);

    if (!d) {
        *st = STATUS_INVALID_PARAMETER;
        return NULL;
    }
    if (qc_dead(&d->a->qc)) {
        *st = STATUS_DEVICE_REMOVED;
        return NULL;
    }
    return d;
}

void lib_remove_device(D3DKMT_HANDLE h)
{
    for (uint32_t i = 0; i < g.ndevs; i++) {
        if (g.devs[i].h == h) {
            drop(g.devs, &g.ndevs, sizeof(*g.devs), i);
            break;
        }
    }
    /* The device took its paging queues with it. */
    for (uint32_t i = g.npqs; i-- > 0;) {
        if (g.pqs[i].dev == h) {
            free(g.pqs[i].fence);
            drop(g.pqs, &g.npqs, sizeof(*g.pqs), i);
        }
    }
}

int32_t lib_add_paging_queue(struct pq_rec *rec)
{
    rec->h = new_handle(HANDLE_PAGING_QUEUE);
    rec->sync = new_handle(HANDLE_SYNC);
    return push((void **)&g.pqs, &g.npqs, sizeof(*rec), rec) ? STATUS_SUCCESS : STATUS_NO_MEMORY;
}

struct pq_rec *lib_paging_queue(D3DKMT_HANDLE h)
{
    for (uint32_t i = 0; i < g.npqs; i++) {
        if (g.pqs[i].h == h) {
            return &g.pqs[i];
        }
    }
    return NULL;
}

struct pq_rec *lib_sync_object(D3DKMT_HANDLE sync, D3DKMT_HANDLE dev)
{
    for (uint32_t i = 0; i < g.npqs; i++) {
        if (g.pqs[i].sync == sync && g.pqs[i].dev == dev) {
            return &g.pqs[i];
        }
    }
    return NULL;
}

void lib_remove_paging_queue(D3DKMT_HANDLE h)
{
    for (uint32_t i = 0; i < g.npqs; i++) {
        if (g.pqs[i].h == h) {
            free(g.pqs[i].fence);
            drop(g.pqs, &g.npqs, sizeof(*g.pqs), i);
            return;
        }
    }
}

int32_t lib_run(struct adapter *a, struct vkmt_sqe *sqe, struct qresult *res)
{
    struct qresult ignored;

    a->qc.payload_user = pending_payload;
    a->qc.results_user = pending_results;
    pending_payload = NULL;
    pending_results = NULL;
    return qc_run(&a->qc, sqe, res ? res : &ignored);
}

bool lib_stage_results(struct adapter *a, void *out, size_t len)
{
    if (a->t->ops->submit) {
        pending_results = out; /* the driver checks it before the command runs */
        return true;
    }
    return um_probe_out(out, len);
}

int32_t lib_stage_handles(struct adapter *a, uint32_t count, const D3DKMT_HANDLE *resources,
                          const D3DKMT_HANDLE *handles, struct vkmt_sqe *sqe)
{
    const D3DKMT_HANDLE *list = resources ? resources : handles;

    if (count == 0 || count > VKMT_MAX_BATCH || !resources == !handles) {
        return STATUS_INVALID_PARAMETER;
    }
    if (a->t->ops->submit) {
        pending_payload = list; /* the driver reads it: EFAULT when it cannot */
    } else if (!um_copy_in(a->qc.sh_staging + QC_PAYLOAD_OFF, list,
                           (size_t)count * sizeof(*list))) {
        return STATUS_INVALID_PARAMETER;
    }
    sqe->count = count;
    sqe->payload_off = QC_PAYLOAD_OFF;
    sqe->payload_len = count * (uint32_t)sizeof(*list);
    if (resources) {
        sqe->flags |= VKMT_SQE_F_RESOURCES;
    }
    return STATUS_SUCCESS;
}

void lib_stage_payload(struct adapter *a, const void *buf, uint32_t len, struct vkmt_sqe *sqe)
{
    if (a->t->ops->submit) {
        pending_payload = buf;
    } else {
        memcpy(a->qc.sh_staging + QC_PAYLOAD_OFF, buf, len);
    }
    sqe->payload_off = QC_PAYLOAD_OFF;
    sqe->payload_len = len;
}
