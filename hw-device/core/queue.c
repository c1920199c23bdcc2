/* SPDX-License-Identifier: MIT */
/*
 * Ring processing. Each submission entry is copied out of shared memory once
 * and only the private copy is validated and acted on; payloads are copied
 * the same way before any handler looks at them. Every command produces
 * exactly one completion, whose phase flag is stored last with release
 * ordering so the guest never sees a half-written entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "vkmt_shmem.h"

/* Which SQE fields an opcode reads; all others must be zero. */
#define USE_HANDLE 0x01u
#define USE_COUNT 0x02u
#define USE_PAYLOAD 0x04u
#define USE_RESULT 0x08u
#define USE_ARG0 0x10u
#define USE_ARG1 0x20u
#define USE_ARG64 0x40u

struct op_desc {
    uint32_t (*run)(struct cmd *c);
    uint16_t fields;
    uint16_t flags; /* VKMT_SQE_F_* accepted besides IRQ */
};

static const struct op_desc op_table[VKMT_OP_MAX + 1] = {
    [VKMT_OP_CREATE_DEVICE] = { cmd_create_device, 0, 0 },
    [VKMT_OP_DESTROY_DEVICE] = { cmd_destroy_device, USE_HANDLE, 0 },
    [VKMT_OP_CREATE_PAGING_QUEUE] = { cmd_create_paging_queue, USE_HANDLE | USE_ARG0, 0 },
    [VKMT_OP_DESTROY_PAGING_QUEUE] = { cmd_destroy_paging_queue, USE_HANDLE, 0 },
    [VKMT_OP_CREATE_ALLOCATIONS] = { cmd_create_allocations,
                                     USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_RESULT,
                                     VKMT_SQE_F_CREATE_RESOURCE },
    [VKMT_OP_DESTROY_ALLOCATIONS] = { cmd_destroy_allocations,
                                      USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_ARG0, 0 },
    [VKMT_OP_LOCK] = { cmd_lock, USE_HANDLE | USE_ARG0, 0 },
    [VKMT_OP_UNLOCK] = { cmd_unlock, USE_HANDLE | USE_ARG0, 0 },
    [VKMT_OP_OFFER] = { cmd_offer, USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_ARG0 | USE_ARG1,
                        VKMT_SQE_F_RESOURCES },
    [VKMT_OP_RECLAIM] = { cmd_reclaim, USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_RESULT,
                          VKMT_SQE_F_RESOURCES | VKMT_SQE_F_PAGING_QUEUE |
                              VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT },
    [VKMT_OP_QUERY_MEMORY] = { cmd_query_memory, USE_ARG0 | USE_ARG1, 0 },
    [VKMT_OP_QUERY_FENCE] = { cmd_query_fence, USE_HANDLE, 0 },
    [VKMT_OP_TRIM] = { cmd_trim, USE_ARG64, 0 },
    [VKMT_OP_QUERY_STATS] = { cmd_query_stats, USE_RESULT, 0 },
    [VKMT_OP_MAKE_RESIDENT] = { cmd_make_resident, USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_ARG0,
                                0 },
    [VKMT_OP_EVICT] = { cmd_evict, USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_ARG0, 0 },
    [VKMT_OP_SET_PRIORITY] = { cmd_set_priority,
                               USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_ARG0 | USE_ARG1, 0 },
    [VKMT_OP_GET_PRIORITY] = { cmd_get_priority,
                               USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_RESULT | USE_ARG0, 0 },
    [VKMT_OP_QUERY_RESIDENCY] = { cmd_query_residency,
                                  USE_HANDLE | USE_COUNT | USE_PAYLOAD | USE_RESULT | USE_ARG0, 0 },
    [VKMT_OP_CHANGE_RESERVATION] = { cmd_change_reservation, USE_ARG0 | USE_ARG64, 0 },
    [VKMT_OP_QUERY_QUEUE_STATS] = { cmd_query_queue_stats, USE_COUNT | USE_RESULT | USE_ARG0, 0 },
};

static const uint8_t zero16[16];

/* Bounds of [off, off + len) inside the staging area, alignment included. */
static bool staging_range_ok(uint32_t off, uint32_t len)
{
    return off % 4 == 0 && off <= VKMT_STAGING_SIZE && len <= VKMT_STAGING_SIZE - off;
}

const void *cmd_payload(struct cmd *c, uint32_t elem_size)
{
    const struct vkmt_sqe *s = &c->sqe;

    if (s->count == 0 || s->count > VKMT_MAX_BATCH) {
        core_guest_error(c->core, "opcode %u: count %u outside 1..%u", s->opcode, s->count,
                         VKMT_MAX_BATCH);
        return NULL;
    }
    if (s->payload_len != s->count * elem_size ||
        !staging_range_ok(s->payload_off, s->payload_len)) {
        core_guest_error(c->core, "opcode %u: payload [0x%x +%u] bad for %u elements", s->opcode,
                         s->payload_off, s->payload_len, s->count);
        return NULL;
    }
    /* The one fetch of the payload; handlers see only this copy. */
    memcpy(c->core->scratch,
           core_queue_base(c->core, c->queue) + VKMT_QUEUE_STAGING_OFF + s->payload_off,
           s->payload_len);
    return c->core->scratch;
}

uint32_t *cmd_results(struct cmd *c, uint32_t elem_size)
{
    const struct vkmt_sqe *s = &c->sqe;

    if (s->result_len != s->count * elem_size || !staging_range_ok(s->result_off, s->result_len)) {
        core_guest_error(c->core, "opcode %u: result area [0x%x +%u] bad for %u elements",
                         s->opcode, s->result_off, s->result_len, s->count);
        return NULL;
    }
    c->result_bytes = s->result_len;
    return c->core->results;
}

/* Field-level checks shared by every opcode, on the private copy. */
static uint32_t check_sqe(struct cmd *c, const struct op_desc **out)
{
    const struct vkmt_sqe *s = &c->sqe;
    const struct op_desc *d;
    uint16_t f;

    if (s->opcode == 0 || s->opcode > VKMT_OP_MAX) {
        core_guest_error(c->core, "unknown opcode 0x%x", s->opcode);
        return VKMT_ST_NOT_SUPPORTED;
    }
    d = &op_table[s->opcode];
    f = d->fields;
    if (s->reserved0 || memcmp(s->reserved1, zero16, sizeof(zero16)) ||
        (s->flags & ~(d->flags | VKMT_SQE_F_IRQ)) || (!(f & USE_HANDLE) && s->handle) ||
        (!(f & USE_COUNT) && s->count) ||
        (!(f & USE_PAYLOAD) && (s->payload_off || s->payload_len)) ||
        (!(f & USE_RESULT) && (s->result_off || s->result_len)) || (!(f & USE_ARG0) && s->arg0) ||
        (!(f & USE_ARG1) && s->arg1) || (!(f & USE_ARG64) && s->arg64)) {
        core_guest_error(c->core, "opcode %u: reserved field, unused field or flag 0x%x set",
                         s->opcode, s->flags);
        return VKMT_ST_INVALID_PARAMETER;
    }
    if ((s->flags & (VKMT_SQE_F_RESOURCES | VKMT_SQE_F_CREATE_RESOURCE)) &&
        !(c->core->driver_features & VKMT_F_RESOURCES)) {
        /* A flag outside what was negotiated breaks the field rule (PROTOCOL.md
         * 6.1); NOT_SUPPORTED is kept for unknown opcodes. */
        core_guest_error(c->core, "opcode %u: resources without the RESOURCES feature", s->opcode);
        return VKMT_ST_INVALID_PARAMETER;
    }
    *out = d;
    return VKMT_ST_SUCCESS;
}

int core_buf_reserve(void **buf, uint32_t *cap, uint32_t need, uint32_t limit)
{
    uint32_t c = *cap ? *cap : 4096u;
    void *p;

    if (need <= *cap) {
        return 0;
    }
    while (c < need) {
        c *= 2;
    }
    c = c < limit ? c : limit;
    p = malloc(c);
    if (!p) {
        return -ENOMEM;
    }
    free(*buf);
    *buf = p;
    *cap = c;
    return 0;
}

/* QUERY_STATS writes its block through the results buffer. */
_Static_assert(sizeof(struct vkmt_wire_stats) <= VKMT_MAX_BATCH * sizeof(uint32_t),
               "a stats block fits the results buffer");
_Static_assert(VKMT_MAX_QUEUES * sizeof(struct vkmt_wire_queue_stats) <=
                   VKMT_MAX_BATCH * sizeof(uint32_t),
               "a record per queue fits the results buffer");

/*
 * Working memory for @c, sized from its (not yet validated) lengths, each
 * capped at what a valid command can use: small commands never make the
 * device hold a staging area's worth of memory.
 */
static int cmd_buffers(struct cmd *c)
{
    const uint32_t results_max = VKMT_MAX_BATCH * sizeof(uint32_t);
    const struct vkmt_sqe *s = &c->sqe;
    uint32_t pay = s->payload_len < VKMT_STAGING_SIZE ? s->payload_len : VKMT_STAGING_SIZE;
    uint32_t res = s->count < VKMT_MAX_BATCH ? s->count * (uint32_t)sizeof(uint32_t) : results_max;

    if (s->result_len > res) {
        res = s->result_len < results_max ? s->result_len : results_max;
    }
    if (core_buf_reserve((void **)&c->core->scratch, &c->core->scratch_cap, pay,
                         VKMT_STAGING_SIZE) < 0 ||
        core_buf_reserve((void **)&c->core->results, &c->core->results_cap, res, results_max) < 0) {
        return -ENOMEM;
    }
    return 0;
}

static uint32_t execute(struct cmd *c)
{
    const struct op_desc *d = NULL;
    struct vkmt_core *core = c->core;
    uint32_t status;

    if (core->removed || core->failed || !(core->status & VKMT_STATUS_DRIVER_OK)) {
        return VKMT_ST_DEVICE_REMOVED;
    }
    /* A discard that failed for an earlier request may work for this one. */
    core->evict_stuck = false;
    status = check_sqe(c, &d);
    if (status != VKMT_ST_SUCCESS) {
        return status;
    }
    if (cmd_buffers(c) < 0) {
        return VKMT_ST_NO_MEMORY; /* the host, not the guest, is out of memory */
    }
    return d->run(c);
}

static void complete(struct vkmt_core *core, uint32_t q, const struct cmd *c, uint32_t status)
{
    struct vkmt_queue *vq = &core->queues[q];
    uint8_t *base = core_queue_base(core, q);
    struct vkmt_cqe *cqe =
        (struct vkmt_cqe *)(base + VKMT_QUEUE_CQ_OFF) + (vq->cq_tail & (VKMT_QUEUE_DEPTH - 1));

    if (status == VKMT_ST_SUCCESS && c->result_bytes) {
        memcpy(base + VKMT_QUEUE_STAGING_OFF + c->sqe.result_off, core->results, c->result_bytes);
    }
    cqe->cid = c->sqe.cid;
    cqe->status = status;
    if (core->poison) {
        core->poison--;
        cqe->cid = ~c->sqe.cid;
        cqe->status = 0xc0dedbadu; /* no NTSTATUS the protocol defines */
    }
    cqe->value0 = c->value0;
    cqe->value1 = c->value1;
    cqe->sq_head = vq->sq_head;
    /* Pairs with the guest's acquire load of flags: the fields above first. */
    vkmt_sh_store_release(&cqe->flags, vq->phase);
    vq->cq_tail++;
    if ((vq->cq_tail & (VKMT_QUEUE_DEPTH - 1)) == 0) {
        vq->phase ^= VKMT_CQE_F_PHASE;
    }
}

/*
 * Runs @q's submissions while the work bound lasts (at least one command
 * when any is left of it); a queue stopped by the bound goes on the backlog
 * that vkmt_core_continue() resumes.
 */
uint32_t core_process(struct vkmt_core *core, uint32_t q)
{
    struct vkmt_queue *vq;
    struct vkmt_queue_hdr *hdr;
    uint8_t *base;
    uint32_t done = 0, cost;
    bool irq = false;

    if (q >= core->cfg.num_queues) {
        return 0;
    }
    if (core->deaf) {
        return 0; /* vkmt_core_set_faults runs it once the device hears again */
    }
    vq = &core->queues[q];
    base = core_queue_base(core, q);
    hdr = (struct vkmt_queue_hdr *)base;
    while (vq->state == VKMT_QSTATE_ACTIVE && vq->sq_head != vq->sq_tail) {
        struct cmd c = { .core = core, .queue = q };
        uint32_t status;

        /*
         * A full CQ stops the queue until the guest consumes completions and
         * rings again. The guest's head is untrusted; a nonsense value only
         * stalls this queue.
         */
        if (vq->cq_tail - vkmt_sh_load_acquire(&hdr->sh_cq_head) >= VKMT_QUEUE_DEPTH) {
            break;
        }
        if (!core->work_left) {
            core->backlog |= 1ull << q;
            break;
        }
        memcpy(&c.sqe,
               base + VKMT_QUEUE_SQ_OFF + (vq->sq_head & (VKMT_QUEUE_DEPTH - 1)) * sizeof(c.sqe),
               sizeof(c.sqe));
        vq->sq_head++;
        status = execute(&c);
        if (status == CMD_RETRY) {
            /* Not done and not completed: the same entry runs next step. */
            vq->sq_head--;
            vq->resumed = true;
            core->backlog |= 1ull << q;
            break;
        }
        vq->resumed = false;
        vq->trim_freed = 0;
        core->stats.commands++;
        if (status != VKMT_ST_SUCCESS) {
            core->stats.command_errors++;
        }
        if (core->ops->event) {
            struct vkmt_event ev = { .type = VKMT_EV_COMMAND,
                                     .queue = q,
                                     .handle = c.sqe.handle,
                                     .opcode = c.sqe.opcode,
                                     .status = status };

            core->ops->event(core->opaque, &ev);
        }
        complete(core, q, &c, status);
        irq |= (c.sqe.flags & VKMT_SQE_F_IRQ) != 0;
        done++;
        /* The batch size bounds what a command costs, valid or not. */
        cost = 1 + (c.sqe.count < VKMT_MAX_BATCH ? c.sqe.count : VKMT_MAX_BATCH);
        core->work_left -= cost < core->work_left ? cost : core->work_left;
    }
    if (vq->state != VKMT_QSTATE_ACTIVE || vq->sq_head == vq->sq_tail) {
        core->backlog &= ~(1ull << q);
    }
    vkmt_sh_store_release(&hdr->sh_sq_head, vq->sq_head);
    if (irq) {
        core->isr[q / 32] |= 1u << (q % 32);
        if (core->ops->raise_irq) {
            core->ops->raise_irq(core->opaque, q);
        }
    }
    return done;
}

uint32_t vkmt_core_process(struct vkmt_core *core, uint32_t q)
{
    uint32_t done;

    core_work_begin(core);
    done = core_process(core, q);
    core_work_end(core);
    return done;
}
