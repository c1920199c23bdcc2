/* SPDX-License-Identifier: MIT */
/*
 * Malformed commands and the exact status each must get (PROTOCOL.md 6),
 * one table for the engine's unit test (tests/unit/test_core_commands.c)
 * and the QEMU qtest (tests/qtest/vkmt-test.c, which reaches this file
 * through a link the QEMU overlay makes). Each side builds the objects the
 * cases name, runs every case on one queue, and checks that none changed
 * anything. Side-specific cases stay with their test.
 */
#ifndef VKMT_BAD_CMDS_H
#define VKMT_BAD_CMDS_H

#include <stdint.h>
#include <string.h>

#include "vkmt_proto.h"

struct vkmt_bad_cmd {
    const char *what;
    struct vkmt_sqe sqe;
    uint32_t status;
};

/*
 * What the cases name, made by the test first. When a case runs, staging
 * offset 0 holds alloc's handle and offsets 64..79 are zero (an allocation
 * descriptor of size 0).
 */
struct vkmt_bad_env {
    uint32_t dev;    /* a device of the queue the cases run on */
    uint32_t alloc;  /* a resident, unlocked allocation of dev */
    uint32_t stale;  /* an allocation of dev, destroyed */
    uint32_t theirs; /* a device of another queue */
    uint32_t pq;     /* a paging queue of dev */
};

#define VKMT_BAD_CMDS_MAX 64

/* Fills @out (VKMT_BAD_CMDS_MAX entries) with the cases for @e; their number. */
static inline unsigned vkmt_bad_cmds(const struct vkmt_bad_env *e, struct vkmt_bad_cmd *out)
{
    const uint32_t IP = VKMT_ST_INVALID_PARAMETER;
    const struct vkmt_bad_cmd cases[] = {
        /* Framing: opcode, reserved fields, flags, counts, buffers. */
        { "opcode 0", { .opcode = 0 }, VKMT_ST_NOT_SUPPORTED },
        { "opcode 0x42", { .opcode = 0x42 }, VKMT_ST_NOT_SUPPORTED },
        { "opcode 0xff", { .opcode = 0xff }, VKMT_ST_NOT_SUPPORTED },
        { "opcode past the last", { .opcode = VKMT_OP_MAX + 1 }, VKMT_ST_NOT_SUPPORTED },
        { "reserved0", { .opcode = VKMT_OP_CREATE_DEVICE, .reserved0 = 1 }, IP },
        { "reserved1 head", { .opcode = VKMT_OP_CREATE_DEVICE, .reserved1 = { [3] = 9 } }, IP },
        { "reserved1 tail", { .opcode = VKMT_OP_CREATE_DEVICE, .reserved1 = { [15] = 1 } }, IP },
        { "unused handle", { .opcode = VKMT_OP_CREATE_DEVICE, .handle = 1 }, IP },
        { "unused arg64",
          { .opcode = VKMT_OP_LOCK, .handle = e->dev, .arg0 = e->alloc, .arg64 = 1 },
          IP },
        { "unknown flag", { .opcode = VKMT_OP_CREATE_DEVICE, .flags = 0x4000 }, IP },
        { "unknown offer flag",
          { .opcode = VKMT_OP_OFFER,
            .flags = 0x8000,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "flag of another opcode",
          { .opcode = VKMT_OP_OFFER,
            .flags = VKMT_SQE_F_RECOMMIT,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "count 0",
          { .opcode = VKMT_OP_OFFER, .handle = e->dev, .count = 0, .payload_len = 0, .arg0 = 1 },
          IP },
        { "count 10241",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 10241,
            .payload_len = 40964,
            .arg0 = 1 },
          IP },
        { "count 0xffffffff",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 0xffffffff,
            .payload_len = 0xfffffffc,
            .arg0 = 1 },
          IP },
        { "payload length short",
          { .opcode = VKMT_OP_OFFER, .handle = e->dev, .count = 2, .payload_len = 4, .arg0 = 1 },
          IP },
        { "payload at the end of staging",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_off = VKMT_STAGING_SIZE,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "payload across the end of staging",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_off = VKMT_STAGING_SIZE - 2,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "payload offset wraps",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_off = 0xfffffffc,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "payload offset wraps, two elements",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 2,
            .payload_off = 0xfffffffc,
            .payload_len = 8,
            .arg0 = 1 },
          IP },
        { "payload misaligned by 1",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_off = 1,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "payload misaligned by 2",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_off = 2,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "results at the end of staging",
          { .opcode = VKMT_OP_RECLAIM,
            .flags = VKMT_SQE_F_WRITE_RESULTS,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .result_off = VKMT_STAGING_SIZE,
            .result_len = 4 },
          IP },
        { "results across the end of staging",
          { .opcode = VKMT_OP_RECLAIM,
            .flags = VKMT_SQE_F_WRITE_RESULTS,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .result_off = VKMT_STAGING_SIZE - 2,
            .result_len = 4 },
          IP },
        { "results short",
          { .opcode = VKMT_OP_RECLAIM,
            .flags = VKMT_SQE_F_WRITE_RESULTS,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .result_off = 64,
            .result_len = 2 },
          IP },
        { "result area without the flag",
          { .opcode = VKMT_OP_RECLAIM,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .result_off = 64,
            .result_len = 4 },
          IP },
        /* Arguments of one opcode. */
        { "offer priority 0",
          { .opcode = VKMT_OP_OFFER, .handle = e->dev, .count = 1, .payload_len = 4, .arg0 = 0 },
          IP },
        { "offer priority 5",
          { .opcode = VKMT_OP_OFFER, .handle = e->dev, .count = 1, .payload_len = 4, .arg0 = 5 },
          IP },
        { "offer reserved flag 4",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .arg0 = 1,
            .arg1 = 4 },
          IP },
        { "offer reserved flag 0x10",
          { .opcode = VKMT_OP_OFFER,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .arg0 = 1,
            .arg1 = 0x10 },
          IP },
        { "create size 0",
          { .opcode = VKMT_OP_CREATE_ALLOCATIONS,
            .handle = e->dev,
            .count = 1,
            .payload_off = 64,
            .payload_len = 16,
            .result_off = 128,
            .result_len = 4 },
          IP },
        { "create result count",
          { .opcode = VKMT_OP_CREATE_ALLOCATIONS,
            .handle = e->dev,
            .count = 1,
            .payload_len = 16,
            .result_off = 128,
            .result_len = 8 },
          IP },
        { "destroy resource with a list",
          { .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
            .handle = e->dev,
            .count = 1,
            .payload_len = 4,
            .arg0 = e->alloc },
          IP },
        { "paging queue priority 7",
          { .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = e->dev, .arg0 = 7 },
          IP },
        { "segment group 2", { .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = 2 }, IP },
        { "segment group 9", { .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = 9 }, IP },
        { "unlock not locked",
          { .opcode = VKMT_OP_UNLOCK, .handle = e->dev, .arg0 = e->alloc },
          IP },
        /* Handles: forged, stale, of another type or another queue. */
        { "forged device",
          { .opcode = VKMT_OP_OFFER,
            .handle = 0xdeadbeef,
            .count = 1,
            .payload_len = 4,
            .arg0 = 1 },
          IP },
        { "another queue's device",
          { .opcode = VKMT_OP_OFFER, .handle = e->theirs, .count = 1, .payload_len = 4, .arg0 = 1 },
          IP },
        { "offer on a paging queue",
          { .opcode = VKMT_OP_OFFER, .handle = e->pq, .count = 1, .payload_len = 4, .arg0 = 1 },
          IP },
        { "stale allocation", { .opcode = VKMT_OP_LOCK, .handle = e->dev, .arg0 = e->stale }, IP },
        { "allocation as device",
          { .opcode = VKMT_OP_LOCK, .handle = e->alloc, .arg0 = e->alloc },
          IP },
        { "fence of a device", { .opcode = VKMT_OP_QUERY_FENCE, .handle = e->dev }, IP },
    };
    unsigned n = sizeof(cases) / sizeof(cases[0]);

    _Static_assert(sizeof(cases) / sizeof(cases[0]) <= VKMT_BAD_CMDS_MAX, "VKMT_BAD_CMDS_MAX");
    memcpy(out, cases, sizeof(cases));
    return n;
}

#endif
