/* SPDX-License-Identifier: MIT */
/*
 * The input format of the vkmt-fuzz target (vkmt_fuzz.c), shared with the
 * seed generator (vkmt_fuzz_seeds.c) that encodes real workloads in it.
 *
 * An input is a sequence of operations separated by VF_SEPARATOR, as in
 * QEMU's generic-fuzz (an inserted or deleted byte then spoils one operation,
 * not every one after it). An operation is one byte whose value modulo
 * VF_OP_COUNT picks it, then its record (little-endian, no padding; sizes
 * below): a record cut short reads as if padded with zeros, and bytes past
 * it are ignored, except by the operations that write data (VF_OP_CTRL_WRITE
 * and VF_OP_APERTURE take the rest as the bytes to write).
 *
 * The target acts as a guest driver would, but a careless
 * one: it keeps per-queue ring state (tail, completion head and phase, next
 * command id), harvests the handles that successful completions return into
 * a pool of up to VF_POOL_MAX, and lets structured commands (VF_OP_CMD) name
 * handles from that pool, so mutations reach deep object states without
 * having to guess 32-bit handles. Raw operations (VF_OP_SQE_RAW, register,
 * control-memory, config-space and MSI-X writes) reach everything else.
 *
 * Queue selector byte (VF_OP_CMD, VF_OP_SQE_RAW, VF_OP_DOORBELL, ...):
 * bits 0-5 pick the n-th queue this input claimed (modulo their number), or
 * with VF_Q_RAW the queue index itself (modulo 64: indices past the device's
 * queues are fine). VF_Q_DEFER on a command leaves the doorbell unrung, so
 * that a later command or VF_OP_DOORBELL submits a batch; on VF_OP_DOORBELL
 * it returns at once: no main-loop turn (interrupt bottom halves stay
 * pending) and, with doorbell=iothread, no wait for the iothread (what
 * follows races with it).
 *
 * Pool selector byte: 0 takes the record's literal value; 1..0x7f the
 * ((sel - 1) mod n)-th handle harvested, oldest first; 0x80..0xff the same
 * counted from the newest. An empty pool yields the literal. Harvest order:
 * CREATE_DEVICE value0; CREATE_PAGING_QUEUE value0 then value1;
 * CREATE_ALLOCATIONS value0 when non-zero (the resource), then up to
 * VF_HARVEST_MAX of the allocation handles written to its result area.
 */
#ifndef VKMT_FUZZ_H
#define VKMT_FUZZ_H

#include <stdint.h>

enum vkmt_fuzz_op {
    VF_OP_BRING_UP, /* u8 features: status handshake, driver_features = features
                     */
    VF_OP_CLAIM,   /* (none): read queue_claim; a queue it returns starts afresh
                    */
    VF_OP_RELEASE, /* u8 queue selector: write queue_release */
    VF_OP_REAP,    /* u8 queue selector, i8 delta: queue_reap of sh_claim_seq +
                      delta */
    VF_OP_CMD,     /* struct vf_cmd: one well-formed-by-construction command */
    VF_OP_SQE_RAW, /* u8 queue selector, 64 bytes: a raw SQE (cid replaced) */
    VF_OP_DOORBELL,   /* u8 queue selector, u8 how (VF_DB_*), u32 value */
    VF_OP_REG_WRITE,  /* u16 offset (4-aligned, in BAR 0), u32 value */
    VF_OP_REG_READ,   /* u16 offset */
    VF_OP_CTRL_WRITE, /* u32 offset (in BAR 2), data: raw control memory (rings,
                         staging) */
    VF_OP_CFG_WRITE,  /* u8 size (1, 2, 4), u8 offset, u32 value: PCI config
                       * space (not  the command register or BARs: writes there
                       * are dropped) */
    VF_OP_CFG_READ,   /* u8 size, u8 offset */
    VF_OP_MSIX,       /* u8 how (VF_MSIX_*), u16 offset, u32 value */
    VF_OP_HOST, /* u8 what (VF_HOST_*), u64 value: the host side (QMP, reset) */
    VF_OP_APERTURE, /* u32 offset (in BAR 4), data: allocation content */
    VF_OP_AIM,  /* u8 vector, u8 target (VF_AIM_*), u16 offset, u32 data: MSI-X
                   entry */
    VF_OP_PLUG, /* u8 how (VF_PLUG_*): hot-unplug, re-plug, bus reset */
    VF_OP_COUNT
};

/* Record sizes, the opcode byte not included. */
#define VF_LEN_BRING_UP 1
#define VF_LEN_CLAIM 0
#define VF_LEN_RELEASE 1
#define VF_LEN_REAP 2
#define VF_LEN_CMD 32
#define VF_LEN_SQE_RAW 65
#define VF_LEN_DOORBELL 6
#define VF_LEN_REG_WRITE 6
#define VF_LEN_REG_READ 2
#define VF_LEN_CTRL_WRITE                                                      \
    4 /* + data, at most VF_DATA_MAX bytes (none: 4 zero bytes) */
#define VF_LEN_CFG_WRITE 6
#define VF_LEN_CFG_READ 2
#define VF_LEN_MSIX 7
#define VF_LEN_HOST 9
#define VF_LEN_APERTURE 4 /* + data, as VF_OP_CTRL_WRITE */
#define VF_LEN_AIM 8
#define VF_LEN_PLUG 1
#define VF_DATA_MAX 4096

#define VF_SEPARATOR "VKMT"
#define VF_SEPARATOR_LEN 4

#define VF_Q_RAW 0x80u
#define VF_Q_DEFER 0x40u
#define VF_Q_INDEX 0x3fu

/*
 * struct vf_cmd.mode: payload kind in bits 0-1, then modifiers. The payload
 * and the result area go in the command's staging slot: staging is cut in 16
 * parts, picked by the SQ index modulo 16, when both fit in one (so that the
 * commands of a batch do not overwrite each other's); else at staging 0.
 */
/* payload_off = payload_len = 0 */
#define VF_PAY_NONE 0u
/* count u32 handles from the pool (below) */
#define VF_PAY_HANDLES 1u
/* count alloc descs, size pval (VF_VARY: x1, x2, x3) */
#define VF_PAY_DESCS 2u
/* payload_off = pval, payload_len = count * 4 (VF_VARY: * 16) */
#define VF_PAY_RAW 3u
#define VF_PAY_MASK 3u
/* result area after the payload: count * 4 bytes (QUERY_STATS: 128,
 * QUERY_QUEUE_STATS: count * 64) */
#define VF_RESULTS 0x04u
#define VF_VARY 0x08u
/* VF_PAY_DESCS: every descriptor's flags and dims are arg64's low and high
 * words (2D textures: format, width, height), and the SQE's arg64 is 0. */
#define VF_SHAPE 0x10u

/*
 * VF_PAY_HANDLES: element i is pool[(start + i * step) mod n], start = pval
 * bits 0-7, step = bits 8-15 (step 0 repeats one handle: a duplicate). An
 * empty pool gives pval itself. For SET_PRIORITY an element is the pair
 * {handle, arg1 + i * 0x08000000} and the SQE's arg1 is 0 (the payload form).
 */

/* One command; fields not named by the mode are copied into the SQE as they
 * are. */
struct vf_cmd {
    uint8_t q;      /* queue selector */
    uint8_t opcode; /* VKMT_OP_*, any byte */
    uint8_t flags;  /* SQE flags (low byte) */
    uint8_t hsel;   /* pool selector for the SQE's handle (literal: hval) */
    uint8_t asel;   /* pool selector for arg0 (literal: aval) */
    uint8_t mode;   /* VF_PAY_* | VF_RESULTS | VF_VARY */
    uint16_t count; /* SQE count */
    uint32_t hval;  /* literal handle */
    uint32_t aval;  /* literal arg0 */
    uint32_t arg1;  /* SQE arg1 */
    uint32_t pval;  /* payload parameter (see VF_PAY_*) */
    uint64_t arg64; /* SQE arg64 */
};
_Static_assert(sizeof(struct vf_cmd) == VF_LEN_CMD,
               "vf_cmd is a packed record");

/* VF_OP_DOORBELL how (modulo VF_DB_COUNT). */
enum {
    VF_DB_TAIL,   /* sh_sq_tail = tail, ring with tail: what a driver does */
    VF_DB_RAW,    /* ring with value */
    VF_DB_SHARED, /* sh_sq_tail = value, ring with tail (deferred modes read the
                     header) */
    VF_DB_NUDGE,  /* ring with tail + (int8_t)value */
    VF_DB_COUNT
};

/* VF_OP_MSIX how (modulo VF_MSIX_COUNT); offsets are within the table or PBA.
 */
enum {
    VF_MSIX_ENABLE, /* set MSI-X enable (value bit 0: also set function mask) */
    VF_MSIX_DISABLE,
    VF_MSIX_TABLE, /* write value to the vector table at offset */
    VF_MSIX_READ,  /* read the PBA at offset */
    VF_MSIX_COUNT
};

/* VF_OP_HOST what (modulo VF_HOST_COUNT). */
enum {
    VF_HOST_TRIM,    /* qom-set trim value (0: everything offered) */
    VF_HOST_BUDGET,  /* qom-set budget value (0: half the aperture) */
    VF_HOST_REMOVED, /* qom-set removed (value bit 0) */
    VF_HOST_STATS,   /* qom-get of every readable property; restart
                        longest-step-ns */
    VF_HOST_RESET, /* a machine-style reset of the device (config space too) */
    VF_HOST_FLUSH, /* run the main loop (bottom halves of the deferred doorbell
                      modes) */
    VF_HOST_TRIM_NOTIFY, /* qom-set trim-notify value: TRIM_TO_BUDGET events */
    VF_HOST_TRIM_PERIOD, /* qom-set trim-period-ms value mod 65536 (0: off) */
    VF_HOST_CLOCK, /* the virtual clock steps 1 + value mod 2^28 ns (timers)
                    */
    VF_HOST_FAULT, /* x-fault-{commit,discard,stall} (value bits 0-7 mod 3) =
                      every:N, N = value bits 8-15 (0: off) */
    VF_HOST_QUEUE_BUDGET, /* qom-set queue-budget "Q:B", Q = value bits 0-7,
                             B = value bits 8-39 pages (0: none) */
    VF_HOST_COUNT
};

/*
 * VF_OP_AIM target (modulo VF_AIM_COUNT): where the message of the vector
 * (modulo the device's vectors) goes. The op enables MSI-X, unmasks the
 * vector and writes its address (the target's base + offset, 4-aligned) and
 * data. In the port targets MMCONFIG is on at VF_MMCONFIG, so messages can
 * write the root port's config space (Bridge Control, Slot Control) or the
 * device's own; elsewhere those addresses hit nothing.
 */
enum {
    VF_AIM_PORT,     /* the root port's config space (VF_PORT_BDF) */
    VF_AIM_PORT_EXP, /* the same, offset counted from its PCI Express capability
                      */
    VF_AIM_SELF,     /* the device's own config space (VF_SELF_BDF) */
    VF_AIM_LAPIC,    /* 0xfee00000: an ordinary MSI */
    VF_AIM_COUNT
};
#define VF_MMCONFIG 0xb0000000u /* q35's PCIEXBAR default */
#define VF_PORT_BDF 0x0010u     /* 00:02.0 */
#define VF_SELF_BDF 0x0100u     /* 01:00.0, behind the root port */

/* VF_OP_PLUG how (modulo VF_PLUG_COUNT); only the port targets can unplug. */
enum {
    VF_PLUG_DEL, /* QMP device_del: the root port presses its attention button
                  */
    VF_PLUG_POWER_OFF, /* the guest turns the slot's power and indicator off:
                          unplug */
    VF_PLUG_ADD, /* QMP device_add when unplugged, slot power on, BARs mapped */
    VF_PLUG_BUS_RESET, /* the guest pulses Secondary Bus Reset in Bridge Control
                        */
    VF_PLUG_COUNT
};

#define VF_POOL_MAX 256 /* handles kept per input */
#define VF_HARVEST_MAX                                                         \
    64 /* allocation handles harvested per CREATE_ALLOCATIONS */

#endif /* VKMT_FUZZ_H */
