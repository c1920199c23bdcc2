/* SPDX-License-Identifier: MIT */
/*
 * Ring driver. One command is in flight per queue at a time (the thunks are
 * synchronous), so the CQ can never overflow and the staging area is reused
 * from offset 0 by every command. Over a forwarding transport (kmd) the
 * kernel driver owns the rings: the same packed command goes to it whole.
 */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "d3dkmthk.h"
#include "qclient.h"
#include "vkmt_kmd.h"
#include "vkmt_shmem.h"

#define SPIN_BEFORE_SLEEP 4096u /* completion polls before backing off */
#define SLEEP_MAX_NS 1000000L   /* backoff ceiling: 1 ms */

static uint32_t rd(struct qclient *qc, uint32_t off)
{
    return qc->t->ops->reg_read(qc->t, off);
}

static void wr(struct qclient *qc, uint32_t off, uint32_t val)
{
    qc->t->ops->reg_write(qc->t, off, val);
}

static int32_t handshake(struct qclient *qc)
{
    uint32_t status = rd(qc, VKMT_REG(status));

    if (status & (VKMT_STATUS_FAILED | VKMT_STATUS_DEVICE_NEEDS_RESET)) {
        return STATUS_DEVICE_REMOVED;
    }
    if (status & VKMT_STATUS_DRIVER_OK) {
        /* Another process brought the device up; use what it negotiated. */
        qc->features = rd(qc, VKMT_REG(driver_features));
        return STATUS_SUCCESS;
    }
    wr(qc, VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE);
    wr(qc, VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    qc->features = rd(qc, VKMT_REG(device_features)) & VKMT_F_KNOWN;
    wr(qc, VKMT_REG(driver_features), qc->features);
    wr(qc, VKMT_REG(status),
       VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_FEATURES_OK);
    if (!(rd(qc, VKMT_REG(status)) & VKMT_STATUS_FEATURES_OK)) {
        wr(qc, VKMT_REG(status), VKMT_STATUS_FAILED);
        return STATUS_DEVICE_REMOVED;
    }
    wr(qc, VKMT_REG(status),
       VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER | VKMT_STATUS_FEATURES_OK |
           VKMT_STATUS_DRIVER_OK);
    return STATUS_SUCCESS;
}

/*
 * Liveness is a lock, not a process id: a pid names another process in
 * another PID namespace, and sh_owner is writable by every process that
 * maps the device. An OFD lock on byte @q of the transport's lock file is
 * held by whoever claimed queue @q until it releases it or exits (the
 * kernel drops the lock with its last file descriptor), and no other
 * process can fake or remove it.
 */
static int queue_lock(struct vkmt_transport *t, uint32_t q, int cmd, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = q, .l_len = 1 };

    if (fcntl(t->lock_fd, cmd, &fl) < 0) {
        return -1;
    }
    return cmd == F_OFD_GETLK ? fl.l_type != F_UNLCK : 0;
}

int qc_owner_alive(struct vkmt_transport *t, uint32_t q)
{
    return t->lock_fd < 0 ? -1 : queue_lock(t, q, F_OFD_GETLK, F_WRLCK);
}

uint32_t qc_reap(struct vkmt_transport *t)
{
    uint32_t n = t->ops->reg_read(t, VKMT_REG(num_queues));
    uint32_t reaped = 0;

    for (uint32_t q = 0; q < n && (uint64_t)(q + 1) * VKMT_QUEUE_STRIDE <= t->ctrl_size; q++) {
        struct vkmt_queue_hdr *h =
            (struct vkmt_queue_hdr *)(t->ctrl + (uint64_t)q * VKMT_QUEUE_STRIDE);
        uint32_t seq = vkmt_sh_load(&h->sh_claim_seq);
        /* Pairs with qc_open's release store: a tag seen means its lock is taken. */
        uint32_t owner = vkmt_sh_load_acquire(&h->sh_owner);

        /* Owner 0: claimed a moment ago, its lock not yet taken. */
        if (vkmt_sh_load_acquire(&h->sh_state) == VKMT_QSTATE_FREE || owner == 0 ||
            qc_owner_alive(t, q) != 0) {
            continue;
        }
        t->ops->reg_write(t, VKMT_REG(queue_reap), VKMT_REAP(q, seq));
        reaped +=
            vkmt_sh_load(&h->sh_claim_seq) == seq && vkmt_sh_load(&h->sh_state) == VKMT_QSTATE_FREE;
    }
    return reaped;
}

int32_t qc_open(struct qclient *qc, struct vkmt_transport *t)
{
    uint8_t *base;
    int32_t st;

    memset(qc, 0, sizeof(*qc));
    qc->t = t;
    if (t->ops->submit) {
        /* The driver did the handshake and claimed the queue at open. */
        qc->queue = t->queue;
        qc->features = t->features;
        qc->sh_staging = t->staging;
        return STATUS_SUCCESS;
    }
    if (rd(qc, VKMT_REG(magic)) != VKMT_MAGIC ||
        rd(qc, VKMT_REG(version)) >> 16 != VKMT_VERSION_MAJOR ||
        rd(qc, VKMT_REG(queue_depth)) != VKMT_QUEUE_DEPTH ||
        rd(qc, VKMT_REG(queue_stride)) != VKMT_QUEUE_STRIDE) {
        return STATUS_DEVICE_REMOVED;
    }
    st = handshake(qc);
    if (st != STATUS_SUCCESS) {
        return st;
    }
    qc->epoch = rd(qc, VKMT_REG(removal_epoch));
    qc_reap(t);
    qc->queue = rd(qc, VKMT_REG(queue_claim));
    if (qc->queue == VKMT_QUEUE_NONE) {
        return STATUS_NO_MEMORY;
    }
    if ((uint64_t)(qc->queue + 1) * VKMT_QUEUE_STRIDE > t->ctrl_size) {
        return STATUS_DEVICE_REMOVED;
    }
    base = t->ctrl + (uint64_t)qc->queue * VKMT_QUEUE_STRIDE;
    qc->sh_hdr = (struct vkmt_queue_hdr *)(base + VKMT_QUEUE_HDR_OFF);
    qc->sh_sq = (struct vkmt_sqe *)(base + VKMT_QUEUE_SQ_OFF);
    qc->sh_cq = (struct vkmt_cqe *)(base + VKMT_QUEUE_CQ_OFF);
    qc->sh_staging = base + VKMT_QUEUE_STAGING_OFF;
    qc->claim_seq = vkmt_sh_load(&qc->sh_hdr->sh_claim_seq);
    qc->phase = VKMT_CQE_F_PHASE;
    if (t->lock_fd >= 0 && queue_lock(t, qc->queue, F_OFD_SETLK, F_WRLCK) < 0) {
        /* A live process still holds this queue's lock: the device and it
         * disagree about who owns the queue, so this process keeps out. */
        wr(qc, VKMT_REG(queue_release), qc->queue);
        qc->sh_hdr = NULL;
        return STATUS_NO_MEMORY;
    }
    /* The tag after the lock: a reaper that sees it also sees the lock. */
    vkmt_sh_store_release(&qc->sh_hdr->sh_owner, (uint32_t)getpid());
    return STATUS_SUCCESS;
}

/* The queue is not ours any more (released, or taken by a reset): let
 * whoever claims it next take its lock. */
static void drop_lock(struct qclient *qc)
{
    if (qc->sh_hdr && qc->t->lock_fd >= 0) {
        queue_lock(qc->t, qc->queue, F_OFD_SETLK, F_UNLCK);
    }
}

void qc_close(struct qclient *qc)
{
    if (qc->t->ops->submit) {
        return; /* closing the transport's file releases the queue */
    }
    /* A broken queue is still ours: releasing it frees what it holds. */
    if (!qc->removed && qc->sh_hdr) {
        wr(qc, VKMT_REG(queue_release), qc->queue);
    }
    if (!qc->removed) {
        drop_lock(qc);
    }
}

/*
 * Can we still use our queue? The shared header answers without a register
 * read: a reset or a release frees it, a re-claim by another process changes
 * its claim sequence, a queue error marks it. The removal epoch is read only
 * on the slow path (@deep), where it also catches a device that vanished
 * (all-ones).
 */
static bool usable(struct qclient *qc, bool deep)
{
    uint32_t state;

    if (qc->removed || qc->broken) {
        return false;
    }
    state = vkmt_sh_load_acquire(&qc->sh_hdr->sh_state);
    if ((state != VKMT_QSTATE_ACTIVE && state != VKMT_QSTATE_ERROR) ||
        vkmt_sh_load(&qc->sh_hdr->sh_claim_seq) != qc->claim_seq ||
        (deep && rd(qc, VKMT_REG(removal_epoch)) != qc->epoch)) {
        qc->removed = true;
        drop_lock(qc);
    } else if (state == VKMT_QSTATE_ERROR) {
        qc->broken = true;
    }
    return !(qc->removed || qc->broken);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void backoff(long *ns)
{
    struct timespec ts = { 0, *ns };

    nanosleep(&ts, NULL);
    *ns = *ns * 2 > SLEEP_MAX_NS ? SLEEP_MAX_NS : *ns * 2;
}

int32_t qc_reset(struct vkmt_transport *t)
{
    uint64_t deadline = now_ms() + QC_TIMEOUT_MS;
    long sleep_ns = 1000;

    if (t->ops->reset) {
        int err = t->ops->reset(t);

        return err == -EPERM ? STATUS_ACCESS_DENIED : err ? STATUS_DEVICE_REMOVED : STATUS_SUCCESS;
    }
    t->ops->reg_write(t, VKMT_REG(status), 0);
    /* PROTOCOL.md section 4: the teardown may go on in bounded steps. */
    while (t->ops->reg_read(t, VKMT_REG(status)) != 0) {
        if (now_ms() > deadline) {
            return STATUS_DEVICE_REMOVED;
        }
        backoff(&sleep_ns);
    }
    return STATUS_SUCCESS;
}

/*
 * qc_run over a forwarding transport. The payload is @qc->payload_user and
 * the results go to @qc->results_user when set (the caller's own arrays,
 * which the driver reads, and zero-fills before the command runs: a bad
 * pointer comes back as EFAULT before the device acts, so they need no
 * probe here), else to and from the private staging buffer.
 */
static int32_t forward(struct qclient *qc, struct vkmt_sqe *sqe, struct qresult *res)
{
    struct vkmt_kmd_cmd cmd = { 0 };
    const void *payload = qc->payload_user ? qc->payload_user : qc->sh_staging + sqe->payload_off;
    int err;

    void *results = qc->results_user ? qc->results_user : qc->sh_staging + sqe->result_off;

    qc->payload_user = NULL;
    qc->results_user = NULL;
    if (qc_dead(qc)) {
        return STATUS_DEVICE_REMOVED;
    }
    memcpy(cmd.sqe, sqe, sizeof(*sqe));
    cmd.payload = sqe->payload_len ? (uintptr_t)payload : 0;
    cmd.results = sqe->result_len ? (uintptr_t)results : 0;
    err = qc->t->ops->submit(qc->t, &cmd);
    if (err == -EFAULT || err == -EINVAL) {
        return STATUS_INVALID_PARAMETER; /* nothing was forwarded */
    }
    if (err == -ENOMEM) {
        return STATUS_NO_MEMORY;
    }
    if (err == -EPERM) {
        return STATUS_ACCESS_DENIED; /* refused by the driver, not forwarded */
    }
    if (err) {
        /* Gone, timed out, or interrupted mid-command: nothing it says counts. */
        if (err == -ENODEV) {
            qc->removed = true;
        } else {
            qc->broken = true;
        }
        return STATUS_DEVICE_REMOVED;
    }
    if (!vkmt_status_defined(cmd.status)) {
        qc->broken = true;
        return STATUS_DEVICE_REMOVED;
    }
    res->value0 = cmd.value0;
    res->value1 = cmd.value1;
    return (int32_t)cmd.status;
}

int32_t qc_run(struct qclient *qc, struct vkmt_sqe *sqe, struct qresult *res)
{
    struct vkmt_cqe *cqe;
    struct vkmt_cqe done;
    long sleep_ns = 1000;
    uint32_t spins = 0;
    uint64_t deadline = 0;

    if (qc->t->ops->submit) {
        return forward(qc, sqe, res);
    }
    if (!usable(qc, false)) {
        return STATUS_DEVICE_REMOVED;
    }
    sqe->cid = ++qc->cid;
    memcpy(&qc->sh_sq[qc->sq_tail & (VKMT_QUEUE_DEPTH - 1)], sqe, sizeof(*sqe));
    qc->sq_tail++;
    /* The entry and its payload are visible before the tail: pairs with the
     * device's acquire load of sh_sq_tail (doorbell modes that do not carry
     * the written value read the tail from there). */
    vkmt_sh_store_release(&qc->sh_hdr->sh_sq_tail, qc->sq_tail);
    wr(qc, VKMT_REG_DOORBELL(qc->queue), qc->sq_tail);

    cqe = &qc->sh_cq[qc->cq_head & (VKMT_QUEUE_DEPTH - 1)];
    /* Pairs with the device's release store of the phase flag. */
    while ((vkmt_sh_load_acquire(&cqe->flags) & VKMT_CQE_F_PHASE) != qc->phase) {
        if (++spins % SPIN_BEFORE_SLEEP == 0) {
            if (!deadline) {
                deadline = now_ms() + QC_TIMEOUT_MS;
            } else if (now_ms() > deadline) {
                qc->broken = true;
            }
            if (!usable(qc, true)) {
                return STATUS_DEVICE_REMOVED;
            }
            backoff(&sleep_ns);
        }
    }
    memcpy(&done, cqe, sizeof(done));
    if (done.cid != sqe->cid || !vkmt_status_defined(done.status)) {
        /* The device broke the protocol; trust nothing it says from now on. */
        qc->broken = true;
        return STATUS_DEVICE_REMOVED;
    }
    qc->cq_head++;
    if ((qc->cq_head & (VKMT_QUEUE_DEPTH - 1)) == 0) {
        qc->phase ^= VKMT_CQE_F_PHASE;
    }
    vkmt_sh_store_release(&qc->sh_hdr->sh_cq_head, qc->cq_head);
    res->value0 = done.value0;
    res->value1 = done.value1;
    return (int32_t)done.status;
}

int qc_read_events(struct qclient *qc, struct vkmt_qev *out, uint32_t max, uint32_t *lost)
{
    const struct vkmt_qev *ring =
        (const struct vkmt_qev *)((uint8_t *)qc->sh_hdr + VKMT_QUEUE_EVQ_OFF - VKMT_QUEUE_HDR_OFF);
    uint32_t tail, n = 0, seen;

    /* Shared memory only: the thunks own the rest of @qc meanwhile. */
    if (vkmt_sh_load_acquire(&qc->sh_hdr->sh_state) != VKMT_QSTATE_ACTIVE ||
        vkmt_sh_load(&qc->sh_hdr->sh_claim_seq) != qc->claim_seq) {
        return -ENODEV;
    }
    if (qc->ev_broken) {
        return -EIO;
    }
    /* Pairs with the device's release store: the entries before the tail. */
    tail = vkmt_sh_load_acquire(&qc->sh_hdr->sh_ev_tail);
    if (tail - qc->ev_head > VKMT_EVQ_DEPTH) {
        qc->ev_broken = true;
        return -EIO;
    }
    while (n < max && qc->ev_head != tail) {
        struct vkmt_qev e;

        memcpy(&e, &ring[qc->ev_head & (VKMT_EVQ_DEPTH - 1)], sizeof(e)); /* one fetch */
        qc->ev_head++;
        if (vkmt_qev_type_known(e.type) && e.reserved == 0) {
            out[n++] = e;
        }
    }
    /* Pairs with the device's acquire load: our copies are done with the slots. */
    vkmt_sh_store_release(&qc->sh_hdr->sh_ev_head, qc->ev_head);
    seen = vkmt_sh_load(&qc->sh_hdr->sh_ev_lost);
    *lost = seen - qc->ev_lost_seen;
    qc->ev_lost_seen = seen;
    return (int)n;
}
