/* SPDX-License-Identifier: MIT */
/*
 * Trim and budget-change notifications: D3DKMTRegisterTrimNotification,
 * D3DKMTUnregisterTrimNotification and their budget-change twins. The
 * device posts events on each queue's event ring (PROTOCOL.md 5.4); one
 * library thread per process, started by the first registration, takes
 * them and runs the callbacks, as Windows runs them on a thread of its own.
 *
 * How the thread waits: over kmd it sleeps in poll() on the driver's file,
 * which the device's interrupt makes readable. Over pci and loopback no
 * interrupt reaches user space (a sysfs BAR mapping has none), so it reads
 * the rings in shared memory, sleeping between looks from BACKOFF_MIN_MS
 * after an event up to BACKOFF_MAX_MS when idle: a callback runs at most
 * that late, and an idle process wakes ~60 times a second, only while it
 * has registrations.
 *
 * Callbacks run one at a time, in the order the device posted the events,
 * each event to every registration of its kind on the adapter (oldest
 * registration first), with no library lock held: a callback may call any
 * thunk, Unregister and Offer included. Unregistering waits until a
 * callback of that registration running on the thread has returned, except
 * when called from inside a callback (waiting there would never end): the
 * running callback finishes and none follows. A registration gets the
 * events posted after it; it lasts until it is unregistered or its adapter
 * is closed. Lock order: the library lock, then nt.lock.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib.h"
#include "usermem.h"

#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 16
#define MAX_WATCHED 64u /* adapters with registrations at once */
#define EVENTS_PER_LOOK 16u

enum kind { KIND_TRIM, KIND_BUDGET };

struct reg {
    uintptr_t id; /* the Handle the caller holds, never reused */
    enum kind kind;
    uint32_t adapter; /* struct adapter's notify_id */
    PFND3DKMT_TRIMNOTIFICATIONCALLBACK trim;
    PFND3DKMT_BUDGETCHANGENOTIFICATIONCALLBACK budget;
    void *ctx;
};

/* An adapter the thread looks at: it has registrations. */
struct watched {
    struct adapter *a;
    uint32_t id;
    bool dead; /* removed, or its events broke the rules: no more looks */
};

struct event {
    uint32_t adapter;
    struct vkmt_qev ev;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cv; /* a callback returned */
    struct reg *regs;
    uint32_t nregs, cap;
    struct watched w[MAX_WATCHED];
    uint32_t nw;
    uintptr_t next_id;
    uint32_t next_adapter;
    bool started;
    int wake[2];       /* pipe: the watched set changed */
    uintptr_t running; /* the registration whose callback runs, 0: none */
    pthread_t runner;
} nt = { .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .wake = { -1, -1 } };

static void wake_thread(void)
{
    char c = 0;

    /* Full pipe: a wake-up is already pending. */
    (void)!write(nt.wake[1], &c, 1);
}

static struct watched *watched(uint32_t id)
{
    for (uint32_t i = 0; i < nt.nw; i++) {
        if (nt.w[i].id == id) {
            return &nt.w[i];
        }
    }
    return NULL;
}

/* Events of @w, without blocking: their count, or < 0 once it is dead. */
static int read_events(struct watched *w, struct vkmt_qev *out, uint32_t max)
{
    struct vkmt_transport *t = w->a->t;
    uint32_t lost = 0;

    /* Events a full ring lost are not redelivered: the ring holds 64, far
     * more than a process that runs its callbacks falls behind by. */
    return t->ops->read_events ? t->ops->read_events(t, out, max, &lost)
                               : qc_read_events(&w->a->qc, out, max, &lost);
}

/* Runs every callback of @e's kind on its adapter; nt.lock held, dropped
 * around each callback. Registrations may come and go meanwhile. */
static void dispatch(const struct event *e)
{
    enum kind kind = e->ev.type == VKMT_QEV_BUDGET_CHANGED ? KIND_BUDGET : KIND_TRIM;
    uintptr_t after = 0;

    for (;;) {
        struct reg r = { 0 };

        for (uint32_t i = 0; i < nt.nregs; i++) {
            const struct reg *c = &nt.regs[i];

            if (c->id > after && c->adapter == e->adapter && c->kind == kind &&
                (!r.id || c->id < r.id)) {
                r = *c;
            }
        }
        if (!r.id) {
            return;
        }
        after = r.id;
        nt.running = r.id;
        nt.runner = pthread_self();
        pthread_mutex_unlock(&nt.lock);
        if (kind == KIND_BUDGET) {
            D3DKMT_BUDGETCHANGENOTIFICATION n = { .Context = r.ctx, .Budget = e->ev.value };

            r.budget(&n);
        } else {
            /* The event types are the D3DDDI_TRIMRESIDENCYSET_FLAGS bits. */
            D3DKMT_TRIMNOTIFICATION n = { .Context = r.ctx };

            n.Flags.Value = e->ev.type;
            n.NumBytesToTrim = e->ev.type == VKMT_QEV_TRIM_TO_BUDGET ? e->ev.value : 0;
            r.trim(&n);
        }
        pthread_mutex_lock(&nt.lock);
        nt.running = 0;
        pthread_cond_broadcast(&nt.cv);
    }
}

static void *notify_thread(void *arg)
{
    struct pollfd pfd[1 + MAX_WATCHED];
    uint32_t pfd_id[1 + MAX_WATCHED];
    struct event evs[MAX_WATCHED * EVENTS_PER_LOOK];
    int backoff = BACKOFF_MIN_MS;

    (void)arg;
    for (;;) {
        uint32_t nfds = 1, nev = 0;
        bool rings = false;
        char drain[64];

        pthread_mutex_lock(&nt.lock);
        pfd[0] = (struct pollfd){ .fd = nt.wake[0], .events = POLLIN };
        for (uint32_t i = 0; i < nt.nw; i++) {
            const struct vkmt_transport *t = nt.w[i].a->t;

            if (nt.w[i].dead) {
                continue;
            }
            if (t->ops->event_fd) {
                pfd_id[nfds] = nt.w[i].id;
                pfd[nfds++] =
                    (struct pollfd){ .fd = t->ops->event_fd(nt.w[i].a->t), .events = POLLIN };
            } else {
                rings = true;
            }
        }
        pthread_mutex_unlock(&nt.lock);

        /* A closed adapter's file stays open for the call; the pipe ends it. */
        poll(pfd, nfds, rings ? backoff : -1);
        if (pfd[0].revents & POLLIN) {
            while (read(nt.wake[0], drain, sizeof(drain)) == (ssize_t)sizeof(drain)) {
            }
        }

        pthread_mutex_lock(&nt.lock);
        for (uint32_t i = 0; i < nt.nw; i++) {
            struct watched *w = &nt.w[i];
            struct vkmt_qev got[EVENTS_PER_LOOK];
            bool ready = !w->a->t->ops->event_fd;
            int n;

            for (uint32_t f = 1; f < nfds && !ready; f++) {
                ready = pfd_id[f] == w->id && (pfd[f].revents & (POLLIN | POLLERR | POLLHUP));
            }
            if (w->dead || !ready) {
                continue;
            }
            n = read_events(w, got, EVENTS_PER_LOOK);
            w->dead = n < 0;
            for (int k = 0; k < n; k++) {
                evs[nev++] = (struct event){ .adapter = w->id, .ev = got[k] };
            }
        }
        for (uint32_t k = 0; k < nev; k++) {
            dispatch(&evs[k]);
        }
        pthread_mutex_unlock(&nt.lock);
        backoff = nev                            ? BACKOFF_MIN_MS
                  : backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                 : backoff * 2;
    }
    return NULL;
}

/* nt.lock held. Returns an NTSTATUS. */
static NTSTATUS start_thread(void)
{
    pthread_attr_t attr;
    pthread_t th;
    int err;

    if (nt.started) {
        return STATUS_SUCCESS;
    }
    if (pipe2(nt.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        return STATUS_NO_MEMORY;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&th, &attr, notify_thread, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        close(nt.wake[0]);
        close(nt.wake[1]);
        nt.wake[0] = nt.wake[1] = -1;
        return STATUS_NO_MEMORY;
    }
    nt.started = true;
    return STATUS_SUCCESS;
}

/* Watch @a (nt.lock held); events already waiting predate every
 * registration and are dropped. */
static NTSTATUS watch(struct adapter *a)
{
    struct watched *w;
    struct vkmt_qev stale[EVENTS_PER_LOOK];

    if (!a->notify_id) {
        a->notify_id = ++nt.next_adapter;
    }
    if (watched(a->notify_id)) {
        return STATUS_SUCCESS;
    }
    if (nt.nw == MAX_WATCHED) {
        return STATUS_NO_MEMORY;
    }
    w = &nt.w[nt.nw++];
    *w = (struct watched){ .a = a, .id = a->notify_id };
    while (read_events(w, stale, EVENTS_PER_LOOK) > 0) {
    }
    wake_thread();
    return STATUS_SUCCESS;
}

/* Stop watching adapter @id when it has no registration left (nt.lock held). */
static void unwatch_if_unused(uint32_t id)
{
    struct watched *w = watched(id);

    for (uint32_t i = 0; i < nt.nregs; i++) {
        if (nt.regs[i].adapter == id) {
            return;
        }
    }
    if (w) {
        *w = nt.w[--nt.nw];
        wake_thread();
    }
}

/*
 * A registration of @kind for device @hDevice (whose adapter must have the
 * LUID @luid when given), handle out through @handle_out. Validation order:
 * the callback, the device, the adapter's LUID, the Handle's memory, then
 * the device's support for events.
 */
static NTSTATUS add(enum kind kind, D3DKMT_HANDLE hDevice, const LUID *luid, void *cb, void *ctx,
                    void **handle_out)
{
    struct reg r = { .kind = kind, .ctx = ctx };
    struct dev_rec *d;
    NTSTATUS st;
    void *h;

    if (!cb) {
        return STATUS_INVALID_PARAMETER;
    }
    lib_lock();
    d = lib_device_usable(hDevice, &st);
    if (!d) {
        goto out;
    }
    if (luid) {
        LUID mine = lib_luid(d->a->t->luid);

        if (mine.LowPart != luid->LowPart || mine.HighPart != luid->HighPart) {
            st = STATUS_INVALID_PARAMETER;
            goto out;
        }
    }
    if (!um_probe_out(handle_out, sizeof(*handle_out))) {
        st = STATUS_INVALID_PARAMETER;
        goto out;
    }
    if (!(d->a->qc.features & VKMT_F_EVENTS)) {
        st = STATUS_NOT_SUPPORTED; /* a 1.1 device, or a driver without events */
        goto out;
    }
    pthread_mutex_lock(&nt.lock);
    if (nt.nregs == nt.cap) {
        uint32_t cap = nt.cap ? 2 * nt.cap : 8;
        struct reg *p = realloc(nt.regs, cap * sizeof(*p));

        if (!p) {
            st = STATUS_NO_MEMORY;
            goto unlock;
        }
        nt.regs = p;
        nt.cap = cap;
    }
    st = start_thread();
    if (st == STATUS_SUCCESS) {
        st = watch(d->a);
    }
    if (st == STATUS_SUCCESS) {
        if (kind == KIND_TRIM) {
            r.trim = (PFND3DKMT_TRIMNOTIFICATIONCALLBACK)cb;
        } else {
            r.budget = (PFND3DKMT_BUDGETCHANGENOTIFICATIONCALLBACK)cb;
        }
        r.id = ++nt.next_id;
        r.adapter = d->a->notify_id;
        nt.regs[nt.nregs++] = r;
        h = (void *)r.id;
        um_copy_out(handle_out, &h, sizeof(h)); /* probed above */
    }
unlock:
    pthread_mutex_unlock(&nt.lock);
out:
    lib_unlock();
    return st;
}

/* nt.lock held: remove registration @i and wait out its running callback. */
static void remove_at(uint32_t i)
{
    struct reg r = nt.regs[i];

    nt.regs[i] = nt.regs[--nt.nregs];
    while (nt.running == r.id && !pthread_equal(nt.runner, pthread_self())) {
        pthread_cond_wait(&nt.cv, &nt.lock);
    }
    unwatch_if_unused(r.adapter);
}

/*
 * Remove registration @handle of @kind, or with @handle NULL every trim
 * registration of callback @cb. INVALID_PARAMETER when none matched.
 */
static NTSTATUS del(enum kind kind, void *handle, void *cb)
{
    NTSTATUS st = STATUS_INVALID_PARAMETER;

    if (!handle && !cb) {
        return st;
    }
    pthread_mutex_lock(&nt.lock);
    /* Look afresh after each removal: its wait lets the set change. */
    for (;;) {
        uint32_t i = 0;

        while (i < nt.nregs &&
               !(handle ? nt.regs[i].id == (uintptr_t)handle && nt.regs[i].kind == kind
                        : nt.regs[i].kind == KIND_TRIM && (void *)nt.regs[i].trim == cb)) {
            i++;
        }
        if (i == nt.nregs) {
            break;
        }
        remove_at(i);
        st = STATUS_SUCCESS;
        if (handle) {
            break;
        }
    }
    pthread_mutex_unlock(&nt.lock);
    return st;
}

void lib_notify_forget(struct adapter *a)
{
    if (!a->notify_id) {
        return;
    }
    pthread_mutex_lock(&nt.lock);
    for (uint32_t i = nt.nregs; i-- > 0;) {
        if (nt.regs[i].adapter == a->notify_id) {
            nt.regs[i] = nt.regs[--nt.nregs];
        }
    }
    unwatch_if_unused(a->notify_id);
    pthread_mutex_unlock(&nt.lock);
}

VKMT_API NTSTATUS D3DKMTRegisterTrimNotification(D3DKMT_REGISTERTRIMNOTIFICATION *p)
{
    D3DKMT_REGISTERTRIMNOTIFICATION in;

    if (!p || !um_copy_in(&in, p, sizeof(in))) {
        return STATUS_INVALID_PARAMETER;
    }
    return add(KIND_TRIM, in.hDevice, &in.AdapterLuid, (void *)in.Callback, in.Context, &p->Handle);
}

VKMT_API NTSTATUS D3DKMTUnregisterTrimNotification(D3DKMT_UNREGISTERTRIMNOTIFICATION *p)
{
    D3DKMT_UNREGISTERTRIMNOTIFICATION in;

    if (!p || !um_copy_in(&in, p, sizeof(in))) {
        return STATUS_INVALID_PARAMETER;
    }
    return del(KIND_TRIM, in.Handle, (void *)in.Callback);
}

VKMT_API NTSTATUS D3DKMTRegisterBudgetChangeNotification(D3DKMT_REGISTERBUDGETCHANGENOTIFICATION *p)
{
    D3DKMT_REGISTERBUDGETCHANGENOTIFICATION in;

    if (!p || !um_copy_in(&in, p, sizeof(in))) {
        return STATUS_INVALID_PARAMETER;
    }
    return add(KIND_BUDGET, in.hDevice, NULL, (void *)in.Callback, in.Context, &p->Handle);
}

VKMT_API NTSTATUS
D3DKMTUnregisterBudgetChangeNotification(D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION *p)
{
    D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION in;

    if (!p || !um_copy_in(&in, p, sizeof(in)) || !in.Handle) {
        return STATUS_INVALID_PARAMETER;
    }
    return del(KIND_BUDGET, in.Handle, NULL);
}
