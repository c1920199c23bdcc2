/* SPDX-License-Identifier: MIT */
/*
 * The queue client: the driver half of the ring protocol, shared by every
 * transport. It brings the device up (status and feature handshake), claims
 * one queue for this process, and runs one command at a time through it:
 * fill the submission entry, ring the doorbell, wait for the completion with
 * the expected phase. Device removal is noticed here.
 */
#ifndef VKMT_QCLIENT_H
#define VKMT_QCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"
#include "vkmt_proto.h"

struct qclient {
    struct vkmt_transport *t;
    uint32_t queue;
    uint32_t claim_seq;
    uint32_t epoch;
    uint32_t features; /* negotiated */
    bool removed;      /* reset or re-claimed: the queue is not ours any more */
    bool broken;       /* still ours but unusable (queue error, protocol error) */
    uint32_t sq_tail;  /* private producer index */
    uint32_t cq_head;  /* private consumer index */
    uint32_t phase;    /* phase value of the next valid completion */
    uint32_t cid;
    /* Shared memory, named apart from the private copies above. */
    struct vkmt_queue_hdr *sh_hdr;
    struct vkmt_sqe *sh_sq;
    struct vkmt_cqe *sh_cq;
    uint8_t *sh_staging;
    /* Forwarding transports: the caller's own payload and result arrays for
     * the next command, in place of the staging copies (qc_run clears them;
     * the driver reads the one and zero-fills, then fills, the other). */
    const void *payload_user;
    void *results_user;
    /* The event ring (mapped transports, VKMT_F_EVENTS): private copies. */
    uint32_t ev_head;
    uint32_t ev_lost_seen;
    bool ev_broken; /* the device broke the ring's rules: no more events */
};

/* How long a command may take before the device counts as gone: generous,
 * since an emulated guest under load can be slow. */
#define QC_TIMEOUT_MS 30000

/* Completion values handed back to the thunks. */
struct qresult {
    uint64_t value0;
    uint64_t value1;
};

/*
 * Bring the device behind @t up if needed and claim a queue. Returns an
 * NTSTATUS: SUCCESS, DEVICE_REMOVED (not a vkmt device, or it refused),
 * NO_MEMORY (no free queue).
 */
int32_t qc_open(struct qclient *qc, struct vkmt_transport *t);
/*
 * Release the queues whose owner process is gone (killed before it could
 * release them), so their allocations do not stay forever. Uses queue_reap,
 * which cannot release a queue claimed again in the meantime. Returns how
 * many were released. qc_open calls it before claiming.
 */
uint32_t qc_reap(struct vkmt_transport *t);
/* Whether the owner of claimed queue @q still holds it: 1 yes, 0 no (it is
 * gone), -1 cannot tell (the transport has no lock file). */
int qc_owner_alive(struct vkmt_transport *t, uint32_t q);

/* Reset the device (status = 0) and wait until status reads 0 again. Returns
 * STATUS_SUCCESS, or STATUS_DEVICE_REMOVED if that took over QC_TIMEOUT_MS. */
int32_t qc_reset(struct vkmt_transport *t);

/* Release the queue (the device frees everything created through it), unless
 * a reset or another claim already took it away. */
void qc_close(struct qclient *qc);

/*
 * Run @sqe (cid is filled in) and wait for its completion. The payload must
 * already be in the staging area. Returns the completion's NTSTATUS, or
 * DEVICE_REMOVED once the device was reset or removed, broke the protocol
 * (a foreign cid or an undefined status), or did not answer within
 * QC_TIMEOUT_MS; the latter are sticky too.
 */
int32_t qc_run(struct qclient *qc, struct vkmt_sqe *sqe, struct qresult *res);

/*
 * Take up to @max device events from the queue's event ring (mapped
 * transports, with VKMT_F_EVENTS), oldest first, without blocking. Every
 * value read is checked: a tail more than a ring ahead breaks the ring for
 * good, and entries of a type the protocol does not define, or with the
 * reserved field set, are skipped. Returns the count, or -EIO once the ring
 * is broken (or -ENODEV once the queue is gone); *@lost gets the events the
 * device dropped since the last call. Not thread-safe: one reader.
 */
int qc_read_events(struct qclient *qc, struct vkmt_qev *out, uint32_t max, uint32_t *lost);

/* True once every command answers DEVICE_REMOVED (removed or broken). */
static inline bool qc_dead(const struct qclient *qc)
{
    return qc->removed || qc->broken;
}

/* Where a command's input array and output array go in the staging area. */
#define QC_PAYLOAD_OFF 0u
static inline uint32_t qc_result_off(uint32_t payload_len)
{
    return (payload_len + 63u) & ~63u;
}

#endif /* VKMT_QCLIENT_H */
