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
    TEST(opcodes_are_dense),
};

int main(void)
{
    return harness_run("test_protocol", tests, sizeof(tests) / sizeof(tests[0]));
}
