/* SPDX-License-Identifier: MIT */
/*
 * The wire contract against itself and against the Windows surface: layouts
 * that must not overlap, staging that must hold the largest command, and
 * wire values that must equal the Windows ones they carry (statuses,
 * priorities, results, flag bits), so neither side ever needs a table.
 */
#include <string.h>

#include "d3dkmthk.h"
#include "harness.h"
#include "qclient.h"
#include "vkmt_proto.h"

static void registers_fit_and_doorbells_are_linear(void)
{
    CHECK_EQ(VKMT_REG_DOORBELL(0), 0x100);
    CHECK_EQ(VKMT_REG_DOORBELL(1), 0x104);
    CHECK_EQ(VKMT_REG_DOORBELL(VKMT_MAX_QUEUES - 1) + 4, sizeof(struct vkmt_regs));
    CHECK(sizeof(struct vkmt_regs) <= VKMT_REGS_SIZE);
    CHECK(VKMT_REG(budget_hi) < VKMT_REG(sq_doorbell));
}

static void queue_regions_do_not_overlap(void)
{
    CHECK(sizeof(struct vkmt_queue_hdr) <= VKMT_QUEUE_SQ_OFF);
    CHECK(VKMT_QUEUE_SQ_OFF + VKMT_QUEUE_DEPTH * sizeof(struct vkmt_sqe) <= VKMT_QUEUE_CQ_OFF);
    CHECK(VKMT_QUEUE_CQ_OFF + VKMT_QUEUE_DEPTH * sizeof(struct vkmt_cqe) <= VKMT_QUEUE_STAGING_OFF);
    CHECK_EQ(VKMT_QUEUE_STAGING_OFF + VKMT_STAGING_SIZE, VKMT_QUEUE_STRIDE);
    CHECK_EQ(VKMT_QUEUE_STRIDE % 4096, 0);
}

static void staging_holds_the_largest_commands(void)
{
    uint32_t create_payload = VKMT_MAX_BATCH * sizeof(struct vkmt_alloc_desc);
    uint32_t handles = VKMT_MAX_BATCH * 4;

    /* Where the guest library puts the results of each. */
    CHECK(qc_result_off(create_payload) + VKMT_MAX_BATCH * 4 <= VKMT_STAGING_SIZE);
    CHECK(qc_result_off(handles) + VKMT_MAX_BATCH * 4 <= VKMT_STAGING_SIZE);
    for (uint32_t len = 0; len <= 256; len += 4) {
        CHECK(qc_result_off(len) >= len);
        CHECK_EQ(qc_result_off(len) % 64, 0);
    }
}

static void wire_statuses_are_ntstatus_values(void)
{
    CHECK_EQ(VKMT_ST_SUCCESS, (uint32_t)STATUS_SUCCESS);
    CHECK_EQ(VKMT_ST_INVALID_PARAMETER, (uint32_t)STATUS_INVALID_PARAMETER);
    CHECK_EQ(VKMT_ST_NO_MEMORY, (uint32_t)STATUS_NO_MEMORY);
    CHECK_EQ(VKMT_ST_NOT_SUPPORTED, (uint32_t)STATUS_NOT_SUPPORTED);
    CHECK_EQ(VKMT_ST_DEVICE_REMOVED, (uint32_t)STATUS_DEVICE_REMOVED);
    CHECK_EQ(VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY, (uint32_t)STATUS_GRAPHICS_NO_VIDEO_MEMORY);
    CHECK(!NT_SUCCESS((NTSTATUS)VKMT_ST_DEVICE_REMOVED));
}

static void wire_priorities_and_results_match_windows(void)
{
    CHECK_EQ(VKMT_PRIO_LOW, D3DKMT_OFFER_PRIORITY_LOW);
    CHECK_EQ(VKMT_PRIO_NORMAL, D3DKMT_OFFER_PRIORITY_NORMAL);
    CHECK_EQ(VKMT_PRIO_HIGH, D3DKMT_OFFER_PRIORITY_HIGH);
    CHECK_EQ(VKMT_PRIO_AUTO, D3DKMT_OFFER_PRIORITY_AUTO);
    CHECK_EQ(VKMT_RECLAIM_OK, D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(VKMT_RECLAIM_DISCARDED, D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(VKMT_RECLAIM_NOT_COMMITTED, D3DDDI_RECLAIM_RESULT_NOT_COMMITTED);
    CHECK_EQ(VKMT_SEGMENT_LOCAL, D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL);
    CHECK_EQ(VKMT_SEGMENT_NON_LOCAL, D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL);
}

static void offer_flag_bits_are_the_kernel_thunk_ones(void)
{
    D3DKMT_OFFER_FLAGS f;

    memset(&f, 0, sizeof(f));
    f.OfferImmediately = 1;
    CHECK_EQ(f.Value, VKMT_OFFER_F_IMMEDIATE);
    memset(&f, 0, sizeof(f));
    f.AllowDecommit = 1;
    CHECK_EQ(f.Value, VKMT_OFFER_F_ALLOW_DECOMMIT);
    memset(&f, 0, sizeof(f));
    f.Reserved = 1;
    CHECK(f.Value & ~VKMT_OFFER_F_KNOWN);
}

/* PROTOCOL.md 8.1: the size a texture descriptor must carry, 0 for no valid shape. */
static void texture_sizes_are_packed_rows(void)
{
    uint32_t bgra = VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM);
    uint32_t r8 = VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_R8_UNORM);

    CHECK_EQ(bgra, 0x101);
    CHECK_EQ(VKMT_ALLOC_DIMS(640, 480), 0x01e00280);
    CHECK_EQ(vkmt_texture_bytes(bgra, VKMT_ALLOC_DIMS(640, 480)), 4 * 640 * 480);
    CHECK_EQ(vkmt_texture_bytes(r8, VKMT_ALLOC_DIMS(33, 17)), 33 * 17);
    CHECK_EQ(vkmt_texture_bytes(VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_R8G8B8A8_UNORM),
                                VKMT_ALLOC_DIMS(16384, 16384)),
             4ull << 28);
    CHECK_EQ(vkmt_texture_bytes(r8, VKMT_ALLOC_DIMS(16385, 1)), 0);
    CHECK_EQ(vkmt_texture_bytes(r8, VKMT_ALLOC_DIMS(0, 1)), 0);
    CHECK_EQ(vkmt_texture_bytes(r8, VKMT_ALLOC_DIMS(1, 0)), 0);
    CHECK_EQ(vkmt_texture_bytes(VKMT_ALLOC_TEXTURE_FLAGS(0), VKMT_ALLOC_DIMS(1, 1)), 0);
    CHECK_EQ(vkmt_texture_bytes(VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_COUNT), VKMT_ALLOC_DIMS(1, 1)),
             0);
    CHECK_EQ(vkmt_texture_bytes(r8 & ~VKMT_ALLOC_F_TEXTURE2D, VKMT_ALLOC_DIMS(1, 1)), 0);
    CHECK_EQ(vkmt_texture_bytes(r8 | 0x10000u, VKMT_ALLOC_DIMS(1, 1)), 0);
}

static void opcodes_are_dense(void)
{
    CHECK_EQ(VKMT_OP_CREATE_DEVICE, 1);
    CHECK_EQ(VKMT_OP_MAX, VKMT_OP_QUERY_STATS);
    CHECK_EQ(VKMT_OP_QUERY_STATS, 14);
    CHECK_EQ(VKMT_F_KNOWN & (VKMT_F_KNOWN + 1), 0); /* low contiguous bits */
}

static const struct test tests[] = {
    TEST(registers_fit_and_doorbells_are_linear),
    TEST(queue_regions_do_not_overlap),
    TEST(staging_holds_the_largest_commands),
    TEST(wire_statuses_are_ntstatus_values),
    TEST(wire_priorities_and_results_match_windows),
    TEST(offer_flag_bits_are_the_kernel_thunk_ones),
    TEST(texture_sizes_are_packed_rows),
    TEST(opcodes_are_dense),
};

int main(void)
{
    return harness_run("test_protocol", tests, sizeof(tests) / sizeof(tests[0]));
}
