/* SPDX-License-Identifier: MIT */
/*
 * The input format of the device-engine fuzzer (fuzz_core.c; fz_decode.c
 * decodes it), shared with the recorder that turns conformance-suite runs
 * into seeds (record.c). An input is a header of FZ_HDR_LEN bytes that
 * configures a small device, then a sequence of operations: one opcode byte
 * (taken modulo FZ_OP_COUNT) and its operands. Every byte string decodes, an
 * operand past the end reading as 0, so a mutation never makes an input
 * invalid, only a different guest. The opcode values are part of the format:
 * the committed corpus and vkmt.dict depend on them, so new operations go at
 * the end.
 */
#ifndef VKMT_FUZZ_INPUT_H
#define VKMT_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "vkmt_proto.h"

/* libFuzzer's entry point; replay_main.c drives it without libFuzzer. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- Header ---- */

#define FZ_HDR_CONFIG 0  /* FZ_CFG_* bits */
#define FZ_HDR_PAGES 1   /* aperture pages: FZ_PAGES_MIN + byte % FZ_PAGES_SPAN */
#define FZ_HDR_BUDGET 2  /* 0: the default budget; else byte * FZ_BYTE_UNIT bytes */
#define FZ_HDR_OBJECTS 3 /* with FZ_CFG_OBJ_LIMIT: max_objects = 4 + byte % 124 */
#define FZ_HDR_FAULT                                                                               \
    4 /* FZ_FAULT_NONLOCAL, and n = the rest: 0 none, else the n-th                                \
       * backend call fails */
#define FZ_HDR_LEN 5

#define FZ_CFG_TWO_QUEUES 0x01u /* two queues (foreign handles, claims); else one */
#define FZ_CFG_DEFERRED 0x02u   /* doorbells only notify; the harness processes */
#define FZ_CFG_MEMFD 0x04u      /* discards punch holes in a memfd (the real backend) */
/* Two bits: GUEST_TRIM, RESOURCES offered. TEXTURES, RESIDENCY and EVENTS
 * are always offered; the bring-up takes TEXTURES and the header's bits, as
 * a 1.1 driver, and a later FZ_OP_HANDSHAKE may take the 1.2 features. */
#define FZ_CFG_FEATURES_SHIFT 3u
#define FZ_CFG_FEATURES_MASK 0x3u
#define FZ_CFG_OBJ_LIMIT 0x20u  /* a small handle table (FZ_HDR_OBJECTS) */
#define FZ_CFG_NO_BRINGUP 0x40u /* no automatic handshake and claims before the ops */
#define FZ_CFG_NO_RESET 0x80u   /* end with vkmt_core_destroy on a live device */

/* The non-local mode: a backend with no commit or lock hooks, so that the
 * engine builds a non-local segment of a quarter of the aperture (at least
 * FZ_NL_PAGES_MIN pages) and demotes into it; the model places ranges. */
#define FZ_FAULT_NONLOCAL 0x80u
#define FZ_NL_PAGES_MIN 2u

#define FZ_PAGES_MIN 8u
#define FZ_PAGES_SPAN 121u /* so at most 128 pages (512 KiB) */
#define FZ_PAGES_MAX (FZ_PAGES_MIN + FZ_PAGES_SPAN - 1u)
#define FZ_BYTE_UNIT 2048u /* budgets and trims: half pages, to hit rounding */

#define FZ_MAX_QUEUES 2u
#define FZ_MAX_ELEMS 32u /* elements of a structured command */

/* ---- Operations ---- */

enum fz_op {
    /* Registers and rings. q operands are taken modulo the queue count where
     * the harness must touch that queue's memory, raw where only the engine
     * looks at them. */
    FZ_OP_HANDSHAKE = 0, /* f: the spec's bring-up sequence, taking f & 3 (below 0x80),
                          * f & VKMT_F_KNOWN (a 1.2 driver, 0x80..0xbf) or f itself */
    FZ_OP_CLAIM = 1,     /* -: read queue_claim */
    FZ_OP_RELEASE = 2,   /* q: write queue_release (raw value) */
    FZ_OP_REAP = 3,      /* q, d: queue_reap naming claim_seq + (int8)d */
    FZ_OP_REG_WRITE = 4, /* o, v[4]: write v at fz_reg_off(o) */
    FZ_OP_REG_READ = 5,  /* o: read fz_reg_off(o) */
    FZ_OP_STATUS = 6,    /* v: write v to status (0 resets) */
    FZ_OP_DOORBELL = 7,  /* q, d: doorbell register with the driver's tail + (int8)d */
    FZ_OP_KICK = 8,      /* q, d: sh_sq_tail = tail + (int8)d (0x80: unchanged), kick */
    FZ_OP_PROCESS = 9,   /* q: vkmt_core_process(q & 3) */
    FZ_OP_CQ_HEAD = 10,  /* q, d: sh_cq_head = the driver's head + (int8)d */
    /* Host controls. */
    FZ_OP_TRIM = 11,   /* b: vkmt_core_trim(0xff: all; else b * FZ_BYTE_UNIT) */
    FZ_OP_BUDGET = 12, /* b: vkmt_core_set_budget(b * FZ_BYTE_UNIT) */
    FZ_OP_RESET = 13,  /* -: vkmt_core_reset */
    FZ_OP_REMOVE = 14, /* b: vkmt_core_set_removed(b & 1) */
    /* The guest's memory. */
    FZ_OP_FILL = 15,     /* s: write a new pattern into the s-th locked allocation */
    FZ_OP_SCRIBBLE = 16, /* n, seed: rewrite shared memory in the next n events;
                          * n == 0: rewrite queue (seed & 1) now */
    /* Commands: q, mod [, c when FZ_MOD_CORRUPT], then the operands shown. */
    FZ_OP_CREATE_DEVICE = 17,    /* - */
    FZ_OP_DESTROY_DEVICE = 18,   /* dev */
    FZ_OP_CREATE_PQ = 19,        /* dev, prio (p % 5 - 2; >= 0xf0: p << 24) */
    FZ_OP_DESTROY_PQ = 20,       /* pq */
    FZ_OP_CREATE_ALLOCS = 21,    /* dev, flags (1: CREATE_RESOURCE), n, size[n] */
    FZ_OP_DESTROY_ALLOCS = 22,   /* dev, n, alloc[n] */
    FZ_OP_DESTROY_RESOURCE = 23, /* dev, res */
    FZ_OP_LOCK = 24,             /* dev, alloc */
    FZ_OP_UNLOCK = 25,           /* dev, alloc */
    FZ_OP_OFFER = 26,            /* dev, flags (1: RESOURCES), prio, oflags, n, elem[n] */
    FZ_OP_RECLAIM = 27,          /* flags (FZ_RF_*), dev|pq, n, elem[n] */
    FZ_OP_QUERY_MEMORY = 28,     /* seg */
    FZ_OP_QUERY_FENCE = 29,      /* sync */
    FZ_OP_TRIM_CMD = 30,         /* b: arg64 = b * FZ_BYTE_UNIT (0: everything) */
    FZ_OP_QUERY_STATS = 31,      /* shape (< 0xf0: a valid result area) */
    FZ_OP_RAW_SQE = 32,          /* 64 bytes, written as they are */
    FZ_OP_BULK = 33, /* q, mod, what, n: 1 + n % 64 CREATE_DEVICE (what & 1: CREATE_PAGING_QUEUE
                      * on the newest device) entries behind one doorbell */
    FZ_OP_RESIDENCY = 34,  /* kind, dev|pq, flags, n, elem[n] (and a priority each):
                            * kind % 5: MAKE_RESIDENT, EVICT, SET_PRIORITY, GET_PRIORITY,
                            * QUERY_RESIDENCY; kind & 0x80: by resource */
    FZ_OP_RESERVE = 35,    /* g, b: CHANGE_RESERVATION of group g % 3, b * FZ_BYTE_UNIT bytes */
    FZ_OP_EVENTS = 36,     /* q, d: the guest reads queue q's event ring to sh_ev_tail, then
                            * stores sh_ev_head = that tail + (int8)d (0x80: leaves it) */
    FZ_OP_HOST_EVENT = 37, /* k, b: k % 3: vkmt_core_trim_notify(b * FZ_BYTE_UNIT, 0xff: all),
                            * vkmt_core_periodic_trim(false), vkmt_core_periodic_trim(true) */
    FZ_OP_COUNT
};

/* The mod byte of a command. */
#define FZ_MOD_IRQ 0x01u     /* VKMT_SQE_F_IRQ */
#define FZ_MOD_BATCH 0x02u   /* post without a doorbell (a later one covers it) */
#define FZ_MOD_KICK 0x04u    /* ring through sh_sq_tail and vkmt_core_kick */
#define FZ_MOD_PENDING 0x08u /* deferred mode: ring but do not process yet */
#define FZ_MOD_CORRUPT 0x30u /* both bits: a byte c follows; break field c % 14 */

/* RECLAIM flags operand. */
#define FZ_RF_RESOURCES 0x01u
#define FZ_RF_PAGING_QUEUE 0x02u
#define FZ_RF_WRITE_RESULTS 0x04u
#define FZ_RF_RECOMMIT 0x08u

/*
 * Handle selector bytes (one per handle operand):
 *   0x00..0xbf  the (s % n)-th live object of the expected kind on the
 *               command's queue (of the command's device, for allocations
 *               and resources), oldest first
 *   0xc0..0xef  any handle of that kind ever returned (stale or foreign)
 *   0xf0..0xf7  a live handle of another kind (type confusion)
 *   0xf8..0xfb  a live handle of that kind on another queue
 *   0xfc..0xfd  the newest dead handle of that kind
 *   0xfe        0
 *   0xff        a literal: the next four bytes, little-endian
 */
#define FZ_SEL_ANY 0xc0u
#define FZ_SEL_OTHER_KIND 0xf0u
#define FZ_SEL_FOREIGN 0xf8u
#define FZ_SEL_STALE 0xfcu
#define FZ_SEL_ZERO 0xfeu
#define FZ_SEL_LITERAL 0xffu

/* Register offset operand: all of BAR 0's defined range, some unaligned
 * doorbell offsets and some offsets past the register file. */
static inline uint32_t fz_reg_off(uint8_t o)
{
    if (o < 0x80u) {
        return (uint32_t)o * 4u;
    }
    if (o >= 0xf0u) {
        return VKMT_REG(sq_doorbell) + (o & 0x0fu);
    }
    return 0x200u + (uint32_t)(o - 0x80u) * 4u;
}

/*
 * Allocation descriptor operand. Below 0x80: 1..16 pages less (b >> 4) * 511
 * bytes (sizes that are not page multiples); 0x80..0xef: 1..112 whole pages;
 * above: the sizes that sit on a boundary, 2D textures (valid with
 * VKMT_F_TEXTURES) and malformed descriptors.
 */
#define FZ_SIZE_ZERO 0xffu         /* size 0: invalid */
#define FZ_SIZE_OVER 0xfeu         /* aperture + 1: invalid */
#define FZ_SIZE_APERTURE 0xfdu     /* the whole aperture */
#define FZ_SIZE_BUDGET 0xfcu       /* the budget */
#define FZ_SIZE_HALF_BUDGET 0xfbu  /* budget / 2 + one page */
#define FZ_SIZE_BAD_FLAGS 0xfau    /* one page, unknown descriptor flag */
#define FZ_SIZE_BAD_RESERVED 0xf9u /* one page, dims set on a buffer */
#define FZ_SIZE_TEX 0xf8u          /* 32 x 32 B8G8R8A8: exactly one page */
#define FZ_SIZE_TEX_R8 0xf7u       /* 100 x 30 R8: not a page multiple */
#define FZ_SIZE_TEX_BAD_SIZE 0xf6u /* 32 x 32 B8G8R8A8 with one byte more */
#define FZ_SIZE_TEX_BAD_FMT 0xf5u  /* an unknown format code */
#define FZ_SIZE_TEX_ZERO_DIM 0xf4u /* width 0 */
#define FZ_SIZE_TEX_BIG_DIM 0xf3u  /* width VKMT_TEXTURE_MAX_DIM + 1 */
#define FZ_SIZE_TEX_NO_FLAG 0xf2u  /* a format and dims without VKMT_ALLOC_F_TEXTURE2D */

static inline uint64_t fz_size(uint8_t b, uint64_t aperture, uint64_t budget)
{
    switch (b) {
    case FZ_SIZE_ZERO:
        return 0;
    case FZ_SIZE_OVER:
        return aperture + 1u;
    case FZ_SIZE_APERTURE:
        return aperture;
    case FZ_SIZE_BUDGET:
        return budget ? budget : 1u;
    case FZ_SIZE_HALF_BUDGET:
        return budget / 2u + VKMT_PAGE_SIZE;
    default:
        break;
    }
    if (b < 0x80u) {
        return (uint64_t)(1u + (b & 0x0fu)) * VKMT_PAGE_SIZE - (uint64_t)(b >> 4) * 511u;
    }
    if (b < 0xf0u) {
        return (uint64_t)(1u + (b - 0x80u)) * VKMT_PAGE_SIZE;
    }
    switch (b) {
    case FZ_SIZE_TEX_R8:
        return 100u * 30u;
    case FZ_SIZE_TEX_BAD_SIZE:
        return VKMT_PAGE_SIZE + 1u;
    case FZ_SIZE_TEX_BIG_DIM:
        return VKMT_TEXTURE_MAX_DIM + 1u;
    default:
        return VKMT_PAGE_SIZE;
    }
}

/* The whole descriptor operand @b stands for. */
static inline struct vkmt_alloc_desc fz_desc(uint8_t b, uint64_t aperture, uint64_t budget)
{
    /* flags, dims of the operands 0xf2..0xfa */
    static const uint32_t shape[9][2] = {
        { VKMT_ALLOC_FORMAT_MASK & VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM),
          VKMT_ALLOC_DIMS(32, 32) },
        { VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_R8_UNORM),
          VKMT_ALLOC_DIMS(VKMT_TEXTURE_MAX_DIM + 1u, 1) },
        { VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM), VKMT_ALLOC_DIMS(0, 32) },
        { VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_COUNT), VKMT_ALLOC_DIMS(32, 32) },
        { VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM), VKMT_ALLOC_DIMS(32, 32) },
        { VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_R8_UNORM), VKMT_ALLOC_DIMS(100, 30) },
        { VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM), VKMT_ALLOC_DIMS(32, 32) },
        { 0, 1 },           /* FZ_SIZE_BAD_RESERVED */
        { 0x80000000u, 0 }, /* FZ_SIZE_BAD_FLAGS */
    };
    struct vkmt_alloc_desc d = { .size = fz_size(b, aperture, budget) };

    if (b >= FZ_SIZE_TEX_NO_FLAG && b <= FZ_SIZE_BAD_FLAGS) {
        d.flags = shape[b - FZ_SIZE_TEX_NO_FLAG][0];
        d.dims = shape[b - FZ_SIZE_TEX_NO_FLAG][1];
    }
    return d;
}

#endif /* VKMT_FUZZ_INPUT_H */
