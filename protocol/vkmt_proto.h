/* SPDX-License-Identifier: MIT */
/*
 * The vkmt wire contract: register map, control-memory layout, submission and
 * completion entries, opcodes, flags, features and status values. Both the
 * device (hw-device/) and the guest library (guest-lib/) include this file and
 * neither re-declares any of it. PROTOCOL.md is the normative prose; this
 * header is its machine-checked half. All fields are little-endian and
 * fixed-width; every size and offset is asserted at build time.
 */
#ifndef VKMT_PROTO_H
#define VKMT_PROTO_H

#ifdef __KERNEL__
/* The guest kernel driver (guest-kmd/): the kernel's types, same widths. */
#include <linux/stddef.h>
#include <linux/types.h>
#else
#include <stddef.h>
#include <stdint.h>
#endif

#if defined(__cplusplus)
#define VKMT_STATIC_ASSERT static_assert
#else
#define VKMT_STATIC_ASSERT _Static_assert
#endif

/* PCI identity: virtio vendor, device id from QEMU's experimental range. */
#define VKMT_PCI_VENDOR_ID 0x1af4u
#define VKMT_PCI_DEVICE_ID 0x10f7u
#define VKMT_PCI_REVISION 0x01u

/* BAR numbers. */
#define VKMT_BAR_REGS 0
#define VKMT_BAR_MSIX 1
#define VKMT_BAR_CTRL 2
#define VKMT_BAR_APERTURE 4

#define VKMT_MAGIC 0x544d4b56u /* "VKMT" read as a little-endian u32 */
#define VKMT_VERSION_MAJOR 1u
#define VKMT_VERSION_MINOR 3u
#define VKMT_VERSION ((VKMT_VERSION_MAJOR << 16) | VKMT_VERSION_MINOR)

/* ---- Registers (BAR 0, 32-bit accesses only) ---- */

#define VKMT_MAX_QUEUES 64u
#define VKMT_REGS_SIZE 0x1000u

struct vkmt_regs {
    uint32_t magic;                        /* RO VKMT_MAGIC */
    uint32_t version;                      /* RO major << 16 | minor */
    uint32_t device_features;              /* RO VKMT_F_* offered by the device */
    uint32_t driver_features;              /* RW VKMT_F_* accepted by the driver */
    uint32_t status;                       /* RW VKMT_STATUS_*; writing 0 resets */
    uint32_t removal_epoch;                /* RO bumped by every reset */
    uint32_t config_generation;            /* RO bumped when a config field changes */
    uint32_t num_queues;                   /* RO queues in control memory */
    uint32_t queue_depth;                  /* RO entries per SQ and per CQ */
    uint32_t queue_stride;                 /* RO bytes of control memory per queue */
    uint32_t staging_size;                 /* RO bytes of staging per queue */
    uint32_t max_batch;                    /* RO most elements one command carries */
    uint32_t queue_claim;                  /* RO read claims a free queue */
    uint32_t queue_release;                /* WO write a queue index to release it */
    uint32_t isr_lo;                       /* RW1C interrupt status, queues 0..31 */
    uint32_t isr_hi;                       /* RW1C interrupt status, queues 32..63 */
    uint32_t aperture_size_lo;             /* RO aperture BAR bytes, low half */
    uint32_t aperture_size_hi;             /* RO aperture BAR bytes, high half */
    uint32_t budget_lo;                    /* RO committed-byte budget, low half */
    uint32_t budget_hi;                    /* RO committed-byte budget, high half */
    uint32_t queue_reap;                   /* WO release a queue if still that claim */
    uint32_t max_alloc_lo;                 /* RO largest allocation size, low half */
    uint32_t max_alloc_hi;                 /* RO largest allocation size, high half */
    uint32_t max_texture_dim;              /* RO widest and tallest 2D texture */
    uint32_t reserved0[40];                /* read as 0, writes ignored */
    uint32_t sq_doorbell[VKMT_MAX_QUEUES]; /* WO new SQ tail of queue i */
};

#define VKMT_REG(field) ((uint32_t)offsetof(struct vkmt_regs, field))
#define VKMT_REG_DOORBELL(q) (VKMT_REG(sq_doorbell) + 4u * (uint32_t)(q))

VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, magic) == 0x00, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, version) == 0x04, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, device_features) == 0x08, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, driver_features) == 0x0c, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, status) == 0x10, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, removal_epoch) == 0x14, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, config_generation) == 0x18, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, num_queues) == 0x1c, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, queue_depth) == 0x20, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, queue_stride) == 0x24, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, staging_size) == 0x28, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, max_batch) == 0x2c, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, queue_claim) == 0x30, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, queue_release) == 0x34, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, isr_lo) == 0x38, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, isr_hi) == 0x3c, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, aperture_size_lo) == 0x40, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, aperture_size_hi) == 0x44, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, budget_lo) == 0x48, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, budget_hi) == 0x4c, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, queue_reap) == 0x50, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, max_alloc_lo) == 0x54, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, max_alloc_hi) == 0x58, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, max_texture_dim) == 0x5c, "regs");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_regs, sq_doorbell) == 0x100, "regs");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_regs) == 0x200, "regs");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_regs) <= VKMT_REGS_SIZE, "regs fit BAR 0");

/*
 * queue_reap value: release queue @q only if its claim sequence still has
 * these low 24 bits, so that a process reaping a dead owner's queue cannot
 * release a queue someone claimed again in the meantime.
 */
#define VKMT_REAP(q, claim_seq) (((uint32_t)(claim_seq) << 8) | ((uint32_t)(q)&0xffu))

/* Value of queue_claim when no queue is free or the device is not ready. */
#define VKMT_QUEUE_NONE 0xffffffffu

/* Device status bits (virtio conventions). */
#define VKMT_STATUS_ACKNOWLEDGE 0x01u
#define VKMT_STATUS_DRIVER 0x02u
#define VKMT_STATUS_DRIVER_OK 0x04u
#define VKMT_STATUS_FEATURES_OK 0x08u
#define VKMT_STATUS_DEVICE_NEEDS_RESET 0x40u
#define VKMT_STATUS_FAILED 0x80u

/* Feature bits. */
#define VKMT_F_GUEST_TRIM 0x00000001u /* the TRIM opcode is honoured */
#define VKMT_F_RESOURCES 0x00000002u  /* resource handles group allocations */
#define VKMT_F_TEXTURES 0x00000004u   /* allocations may be 2D textures (VKMT_ALLOC_F_TEXTURE2D) */
#define VKMT_F_RESIDENCY 0x00000008u  /* 1.2: non-local segment, residency opcodes 0x0f..0x14 */
#define VKMT_F_EVENTS 0x00000010u     /* the device posts events on each queue's event ring (1.2) */
#define VKMT_F_QUEUE_STATS 0x00000020u /* 1.3: QUERY_QUEUE_STATS, per-queue figures */
#define VKMT_F_KNOWN                                                                               \
    (VKMT_F_GUEST_TRIM | VKMT_F_RESOURCES | VKMT_F_TEXTURES | VKMT_F_RESIDENCY | VKMT_F_EVENTS |   \
     VKMT_F_QUEUE_STATS)

/* ---- Control memory (BAR 2): one region of queue_stride bytes per queue ---- */

#define VKMT_QUEUE_DEPTH 64u
#define VKMT_QUEUE_STRIDE 0x40000u /* 256 KiB */
#define VKMT_QUEUE_HDR_OFF 0x0000u
#define VKMT_QUEUE_SQ_OFF 0x1000u
#define VKMT_QUEUE_CQ_OFF 0x2000u
#define VKMT_QUEUE_EVQ_OFF 0x2800u /* 1.2: the event ring, in the CQ page's unused half */
#define VKMT_QUEUE_STAGING_OFF 0x3000u
#define VKMT_STAGING_SIZE (VKMT_QUEUE_STRIDE - VKMT_QUEUE_STAGING_OFF)
#define VKMT_MAX_BATCH 10240u
#define VKMT_PAGE_SIZE 4096u /* aperture offsets and sizes are page-granular */

/*
 * Queue header. The sh_ prefix marks fields that live in shared memory; the
 * column says who writes each one. The other side treats it as untrusted.
 */
struct vkmt_queue_hdr {
    uint32_t sh_sq_head;   /* device: SQ entries consumed (free-running) */
    uint32_t sh_cq_head;   /* driver: CQ entries consumed (free-running) */
    uint32_t sh_state;     /* device: VKMT_QSTATE_* */
    uint32_t sh_error;     /* device: VKMT_QERR_* when state is ERROR */
    uint32_t sh_owner;     /* driver: informative owner tag (guest pid) */
    uint32_t sh_claim_seq; /* device: bumped on every claim of this queue */
    uint32_t sh_sq_tail;   /* driver: SQ tail, written before each doorbell */
    uint32_t sh_ev_tail;   /* device: events posted (free-running; 1.2, VKMT_F_EVENTS) */
    uint32_t sh_ev_head;   /* driver: events consumed (free-running) */
    uint32_t sh_ev_lost;   /* device: events dropped because the ring was full */
    uint32_t reserved[6];
};
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_sq_head) == 0, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_cq_head) == 4, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_state) == 8, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_error) == 12, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_owner) == 16, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_claim_seq) == 20, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_sq_tail) == 24, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_ev_tail) == 28, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_ev_head) == 32, "hdr");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_queue_hdr, sh_ev_lost) == 36, "hdr");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_queue_hdr) == 64, "hdr");

#define VKMT_QSTATE_FREE 0u
#define VKMT_QSTATE_ACTIVE 1u
#define VKMT_QSTATE_ERROR 2u

#define VKMT_QERR_NONE 0u
#define VKMT_QERR_DOORBELL_RANGE 1u /* tail moved back or past depth */

/* Submission queue entry: 64 bytes. */
struct vkmt_sqe {
    uint8_t opcode;        /* VKMT_OP_* */
    uint8_t reserved0;     /* must be 0 */
    uint16_t flags;        /* VKMT_SQE_F_* */
    uint32_t cid;          /* echoed in the completion */
    uint32_t handle;       /* subject object (device, paging queue, ...) */
    uint32_t count;        /* elements in the payload */
    uint32_t payload_off;  /* staging offset of the input array */
    uint32_t payload_len;  /* bytes of the input array */
    uint32_t result_off;   /* staging offset of the output array */
    uint32_t result_len;   /* bytes of the output array */
    uint32_t arg0;         /* opcode-specific */
    uint32_t arg1;         /* opcode-specific */
    uint64_t arg64;        /* opcode-specific */
    uint8_t reserved1[16]; /* must be 0 */
};
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, opcode) == 0, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, reserved0) == 1, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, flags) == 2, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, cid) == 4, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, handle) == 8, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, count) == 12, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, payload_off) == 16, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, payload_len) == 20, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, result_off) == 24, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, result_len) == 28, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, arg0) == 32, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, arg1) == 36, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, arg64) == 40, "sqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_sqe, reserved1) == 48, "sqe");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_sqe) == 64, "sqe");

/* SQE flags. */
#define VKMT_SQE_F_IRQ 0x0001u             /* interrupt when this completes */
#define VKMT_SQE_F_RESOURCES 0x0002u       /* payload holds resource handles */
#define VKMT_SQE_F_PAGING_QUEUE 0x0004u    /* RECLAIM: handle is a paging queue */
#define VKMT_SQE_F_WRITE_RESULTS 0x0008u   /* RECLAIM: write per-element results */
#define VKMT_SQE_F_RECOMMIT 0x0010u        /* RECLAIM: recommit decommitted ones */
#define VKMT_SQE_F_CREATE_RESOURCE 0x0020u /* CREATE_ALLOCATIONS: group them */

/* Completion queue entry: 32 bytes. */
struct vkmt_cqe {
    uint32_t cid;     /* the SQE's cid */
    uint32_t status;  /* NTSTATUS */
    uint64_t value0;  /* opcode-specific result */
    uint64_t value1;  /* opcode-specific result */
    uint32_t sq_head; /* SQ entries consumed after this one */
    uint32_t flags;   /* bit 0: phase; written last */
};
VKMT_STATIC_ASSERT(offsetof(struct vkmt_cqe, cid) == 0, "cqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_cqe, status) == 4, "cqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_cqe, value0) == 8, "cqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_cqe, value1) == 16, "cqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_cqe, sq_head) == 24, "cqe");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_cqe, flags) == 28, "cqe");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_cqe) == 32, "cqe");

#define VKMT_CQE_F_PHASE 0x1u

VKMT_STATIC_ASSERT(VKMT_QUEUE_DEPTH * sizeof(struct vkmt_sqe) <=
                       VKMT_QUEUE_CQ_OFF - VKMT_QUEUE_SQ_OFF,
                   "SQ fits its slot");
VKMT_STATIC_ASSERT(VKMT_QUEUE_DEPTH * sizeof(struct vkmt_cqe) <=
                       VKMT_QUEUE_STAGING_OFF - VKMT_QUEUE_CQ_OFF,
                   "CQ fits its slot");
VKMT_STATIC_ASSERT((VKMT_QUEUE_DEPTH & (VKMT_QUEUE_DEPTH - 1)) == 0, "depth is a power of two");

/*
 * Event ring entry (1.2, VKMT_F_EVENTS): 16 bytes. The device fills the entry
 * at sh_ev_tail mod VKMT_EVQ_DEPTH, then publishes it by storing sh_ev_tail + 1
 * with release ordering; the driver reads entries after an acquire load of
 * sh_ev_tail and hands the slots back with a release store of sh_ev_head.
 */
struct vkmt_qev {
    uint32_t type;     /* VKMT_QEV_* */
    uint32_t reserved; /* 0 */
    uint64_t value;    /* bytes: to trim (TRIM_TO_BUDGET) or the new budget (BUDGET_CHANGED) */
};
VKMT_STATIC_ASSERT(offsetof(struct vkmt_qev, type) == 0, "qev");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_qev, reserved) == 4, "qev");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_qev, value) == 8, "qev");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_qev) == 16, "qev");

#define VKMT_EVQ_DEPTH 64u
VKMT_STATIC_ASSERT((VKMT_EVQ_DEPTH & (VKMT_EVQ_DEPTH - 1)) == 0, "event depth is a power of two");
VKMT_STATIC_ASSERT(VKMT_QUEUE_CQ_OFF + VKMT_QUEUE_DEPTH * sizeof(struct vkmt_cqe) <=
                       VKMT_QUEUE_EVQ_OFF,
                   "event ring follows the CQ");
VKMT_STATIC_ASSERT(VKMT_QUEUE_EVQ_OFF + VKMT_EVQ_DEPTH * sizeof(struct vkmt_qev) <=
                       VKMT_QUEUE_STAGING_OFF,
                   "event ring fits before staging");

/* Event types; the trim kinds are the D3DDDI_TRIMRESIDENCYSET_FLAGS bits. */
#define VKMT_QEV_PERIODIC_TRIM 0x1u         /* trim what was not used since the last one */
#define VKMT_QEV_RESTART_PERIODIC_TRIM 0x2u /* the periodic trim's period starts afresh */
#define VKMT_QEV_TRIM_TO_BUDGET 0x4u        /* over budget: trim value bytes */
#define VKMT_QEV_BUDGET_CHANGED 0x100u      /* the budget is now value bytes */

static inline int vkmt_qev_type_known(uint32_t type)
{
    return type == VKMT_QEV_PERIODIC_TRIM || type == VKMT_QEV_RESTART_PERIODIC_TRIM ||
           type == VKMT_QEV_TRIM_TO_BUDGET || type == VKMT_QEV_BUDGET_CHANGED;
}

/* Payload element of CREATE_ALLOCATIONS: 16 bytes. */
struct vkmt_alloc_desc {
    uint64_t size;  /* bytes, > 0; a texture's exactly (section 8.1) */
    uint32_t flags; /* VKMT_ALLOC_F_* and a texture's format; unknown bits are invalid */
    uint32_t dims;  /* a texture's VKMT_ALLOC_DIMS(width, height); otherwise 0 */
};
VKMT_STATIC_ASSERT(offsetof(struct vkmt_alloc_desc, size) == 0, "desc");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_alloc_desc, flags) == 8, "desc");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_alloc_desc, dims) == 12, "desc");
VKMT_STATIC_ASSERT(sizeof(struct vkmt_alloc_desc) == 16, "desc");

/*
 * Allocation flags (1.1, with VKMT_F_TEXTURES). A 2D texture names its
 * format in bits 8..15 of flags and its width and height in dims; its rows
 * are packed, so size == bytes per pixel * width * height.
 */
#define VKMT_ALLOC_F_TEXTURE2D 0x00000001u
#define VKMT_ALLOC_FORMAT_SHIFT 8u
#define VKMT_ALLOC_FORMAT_MASK 0x0000ff00u
#define VKMT_ALLOC_F_KNOWN (VKMT_ALLOC_F_TEXTURE2D | VKMT_ALLOC_FORMAT_MASK)
#define VKMT_ALLOC_TEXTURE_FLAGS(format)                                                           \
    (VKMT_ALLOC_F_TEXTURE2D | ((uint32_t)(format) << VKMT_ALLOC_FORMAT_SHIFT))
#define VKMT_ALLOC_FORMAT(flags) (((flags)&VKMT_ALLOC_FORMAT_MASK) >> VKMT_ALLOC_FORMAT_SHIFT)
#define VKMT_ALLOC_DIMS(width, height) ((uint32_t)(width) | (uint32_t)(height) << 16)
#define VKMT_ALLOC_WIDTH(dims) ((dims)&0xffffu)
#define VKMT_ALLOC_HEIGHT(dims) ((dims) >> 16)
#define VKMT_TEXTURE_MAX_DIM 16384u /* width and height are 1..16384 */

/* Texture formats (the flags' format code); 0 is none. */
enum vkmt_format {
    VKMT_FORMAT_B8G8R8A8_UNORM = 1,
    VKMT_FORMAT_R8G8B8A8_UNORM = 2,
    VKMT_FORMAT_R8_UNORM = 3,
};
#define VKMT_FORMAT_COUNT 4u /* codes below this may be known */

/* Bytes per pixel of texture format @format, 0 for an unknown code. */
/*
 * The allocation states of section 8, in the order the device numbers them,
 * for logs and tools; VKMT_ALLOC_NONE is no allocation (not yet created, or
 * destroyed). Not a wire field: the guest learns states only from results.
 */
enum vkmt_alloc_state {
    VKMT_ALLOC_NONE,
    VKMT_ALLOC_RESIDENT,
    VKMT_ALLOC_OFFERED,
    VKMT_ALLOC_DISCARDED,
    VKMT_ALLOC_DECOMMITTED,
    VKMT_ALLOC_DEMOTED, /* 1.2: content kept in the non-local segment */
    VKMT_ALLOC_STATES
};

static inline const char *vkmt_alloc_state_name(uint32_t state)
{
    static const char *const names[VKMT_ALLOC_STATES] = { "none",      "resident",    "offered",
                                                          "discarded", "decommitted", "demoted" };

    return state < VKMT_ALLOC_STATES ? names[state] : "?";
}

static inline uint32_t vkmt_format_bpp(uint32_t format)
{
    switch (format) {
    case VKMT_FORMAT_B8G8R8A8_UNORM:
    case VKMT_FORMAT_R8G8B8A8_UNORM:
        return 4;
    case VKMT_FORMAT_R8_UNORM:
        return 1;
    }
    return 0;
}

/*
 * The size a texture descriptor with @flags (VKMT_ALLOC_F_TEXTURE2D set) and
 * @dims must carry, or 0 when the format is unknown, a dimension is 0 or
 * above VKMT_TEXTURE_MAX_DIM, or a flag bit is unknown.
 */
static inline uint64_t vkmt_texture_bytes(uint32_t flags, uint32_t dims)
{
    uint32_t w = VKMT_ALLOC_WIDTH(dims), h = VKMT_ALLOC_HEIGHT(dims);

    if ((flags & ~VKMT_ALLOC_F_KNOWN) || !(flags & VKMT_ALLOC_F_TEXTURE2D) || w == 0 || h == 0 ||
        w > VKMT_TEXTURE_MAX_DIM || h > VKMT_TEXTURE_MAX_DIM) {
        return 0;
    }
    return (uint64_t)vkmt_format_bpp(VKMT_ALLOC_FORMAT(flags)) * w * h;
}

/* The largest command payload plus its results must fit the staging area. */
VKMT_STATIC_ASSERT(VKMT_MAX_BATCH *(sizeof(struct vkmt_alloc_desc) + 4u) <= VKMT_STAGING_SIZE,
                   "largest batch fits staging");

/* ---- Opcodes ---- */
enum vkmt_opcode {
    VKMT_OP_CREATE_DEVICE = 0x01,
    VKMT_OP_DESTROY_DEVICE = 0x02,
    VKMT_OP_CREATE_PAGING_QUEUE = 0x03,
    VKMT_OP_DESTROY_PAGING_QUEUE = 0x04,
    VKMT_OP_CREATE_ALLOCATIONS = 0x05,
    VKMT_OP_DESTROY_ALLOCATIONS = 0x06,
    VKMT_OP_LOCK = 0x07,
    VKMT_OP_UNLOCK = 0x08,
    VKMT_OP_OFFER = 0x09,
    VKMT_OP_RECLAIM = 0x0a,
    VKMT_OP_QUERY_MEMORY = 0x0b,
    VKMT_OP_QUERY_FENCE = 0x0c,
    VKMT_OP_TRIM = 0x0d,
    VKMT_OP_QUERY_STATS = 0x0e,
    VKMT_OP_MAKE_RESIDENT = 0x0f, /* 1.2, VKMT_F_RESIDENCY */
    VKMT_OP_EVICT = 0x10,
    VKMT_OP_SET_PRIORITY = 0x11,
    VKMT_OP_GET_PRIORITY = 0x12,
    VKMT_OP_QUERY_RESIDENCY = 0x13,
    VKMT_OP_CHANGE_RESERVATION = 0x14,
    VKMT_OP_QUERY_QUEUE_STATS = 0x15, /* 1.3, VKMT_F_QUEUE_STATS */
    VKMT_OP_MAX = VKMT_OP_QUERY_QUEUE_STATS,
};

/* Residency (1.2): MAKE_RESIDENT and EVICT flags in arg0 (D3DDDI bit positions). */
#define VKMT_RESIDENT_F_CANT_TRIM_FURTHER 0x1u
#define VKMT_RESIDENT_F_MUST_SUCCEED 0x2u
#define VKMT_RESIDENT_F_KNOWN (VKMT_RESIDENT_F_CANT_TRIM_FURTHER | VKMT_RESIDENT_F_MUST_SUCCEED)
#define VKMT_EVICT_F_ONLY_IF_NECESSARY 0x1u
#define VKMT_EVICT_F_NOT_WRITTEN_TO 0x2u
#define VKMT_EVICT_F_KNOWN (VKMT_EVICT_F_ONLY_IF_NECESSARY | VKMT_EVICT_F_NOT_WRITTEN_TO)

/* Allocation priorities (D3DDDI_ALLOCATIONPRIORITY_*): any value is legal,
 * these name levels; a new allocation has NORMAL. */
#define VKMT_ALLOC_PRIO_MINIMUM 0x28000000u
#define VKMT_ALLOC_PRIO_LOW 0x50000000u
#define VKMT_ALLOC_PRIO_NORMAL 0x78000000u
#define VKMT_ALLOC_PRIO_HIGH 0xa0000000u
#define VKMT_ALLOC_PRIO_MAXIMUM 0xc8000000u

/* QUERY_RESIDENCY results (D3DKMT_ALLOCATIONRESIDENCYSTATUS values); a
 * resource reports the highest (least resident) of its allocations. */
#define VKMT_RESIDENCY_LOCAL 1u     /* in the aperture */
#define VKMT_RESIDENCY_NON_LOCAL 2u /* demoted: content kept in the non-local segment */
#define VKMT_RESIDENCY_NONE 3u      /* offered, discarded or decommitted */

/* MAKE_RESIDENT and EVICT take at most this many handles (D3DKMT's limit). */
#define VKMT_RESIDENCY_MAX_BATCH VKMT_MAX_BATCH

/* QUERY_MEMORY's arg1 (1.2): what value0/value1 report. */
#define VKMT_MEMQ_USAGE 0u       /* budget, current usage */
#define VKMT_MEMQ_RESERVATION 1u /* current reservation, available for reservation */

/* Offer priorities and flags on the wire (D3DKMT values and bit positions). */
#define VKMT_PRIO_LOW 1u
#define VKMT_PRIO_NORMAL 2u
#define VKMT_PRIO_HIGH 3u
#define VKMT_PRIO_AUTO 4u
#define VKMT_OFFER_F_IMMEDIATE 0x1u
#define VKMT_OFFER_F_ALLOW_DECOMMIT 0x2u
#define VKMT_OFFER_F_KNOWN (VKMT_OFFER_F_IMMEDIATE | VKMT_OFFER_F_ALLOW_DECOMMIT)

/* Per-element reclaim results (D3DDDI_RECLAIM_RESULT values). */
#define VKMT_RECLAIM_OK 0u
#define VKMT_RECLAIM_DISCARDED 1u
#define VKMT_RECLAIM_NOT_COMMITTED 2u

/* QUERY_STATS result: device-wide counters, written to the result area. */
struct vkmt_wire_stats {
    uint64_t allocations;     /* live, all queues */
    uint64_t committed_bytes; /* all queues */
    uint64_t offered_bytes;   /* offered and still holding content */
    uint64_t budget_bytes;
    uint64_t offers;
    uint64_t discards;
    uint64_t discarded_bytes;
    uint64_t reclaim_ok;
    uint64_t reclaim_discarded;
    uint64_t reclaim_not_committed;
    uint64_t trims;
    uint64_t commands;
    uint64_t command_errors;
    uint64_t queues_claimed;
    uint64_t reserved[2];
};
VKMT_STATIC_ASSERT(sizeof(struct vkmt_wire_stats) == 128, "wire stats");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_wire_stats, queues_claimed) == 104, "wire stats");

/*
 * QUERY_QUEUE_STATS result (1.3): one record per queue, count of them in
 * the result area (8-aligned). Byte counts are page-rounded, as the budget
 * counts them.
 */
struct vkmt_wire_queue_stats {
    uint32_t queue;        /* the queue's index */
    uint32_t flags;        /* VKMT_QSTATS_CALLER */
    uint64_t budget;       /* the host's budget for this queue, 0: none */
    uint64_t budget_local; /* the local budget in force: the smaller of it and the device's */
    uint64_t committed;    /* resident + offered */
    uint64_t resident;     /* resident in the local segment, not offered */
    uint64_t offered;      /* offered and still holding content */
    uint64_t demoted;      /* in the non-local segment (VKMT_F_RESIDENCY) */
    uint64_t discarded;    /* offered content discarded since the queue was claimed */
};
VKMT_STATIC_ASSERT(sizeof(struct vkmt_wire_queue_stats) == 64, "wire queue stats");
VKMT_STATIC_ASSERT(offsetof(struct vkmt_wire_queue_stats, discarded) == 56, "wire queue stats");
#define VKMT_QSTATS_ALL 1u    /* arg0: every claimed queue, not only the caller's */
#define VKMT_QSTATS_CALLER 1u /* flags: the record of the queue that asked */

/* Memory segment groups for QUERY_MEMORY. */
#define VKMT_SEGMENT_LOCAL 0u
#define VKMT_SEGMENT_NON_LOCAL 1u

/* ---- Status values carried in completions (NTSTATUS bit patterns) ---- */
#define VKMT_ST_SUCCESS 0x00000000u
#define VKMT_ST_INVALID_PARAMETER 0xc000000du
#define VKMT_ST_NO_MEMORY 0xc0000017u
#define VKMT_ST_NOT_SUPPORTED 0xc00000bbu
#define VKMT_ST_DEVICE_REMOVED 0xc00002b6u
#define VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY 0xc01e0100u

/* Whether @st is a status section 6.4 defines; any other is a broken device. */
static inline int vkmt_status_defined(uint32_t st)
{
    switch (st) {
    case VKMT_ST_SUCCESS:
    case VKMT_ST_INVALID_PARAMETER:
    case VKMT_ST_NO_MEMORY:
    case VKMT_ST_NOT_SUPPORTED:
    case VKMT_ST_DEVICE_REMOVED:
    case VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY:
        return 1;
    }
    return 0;
}

#endif /* VKMT_PROTO_H */
