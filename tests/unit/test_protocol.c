/* SPDX-License-Identifier: MIT */
/*
 * The wire contract against itself and against the Windows surface: layouts
 * that must not overlap and wire values that must equal the Windows ones they
 * carry (statuses, priorities, results), as static assertions, so neither
 * side ever needs a table; then at run time what depends on code: where the
 * guest library puts results, the offer flag bit-fields, texture sizes.
 */
#include <string.h>

#include "d3dkmthk.h"
#include "harness.h"
#include "qclient.h"
#include "vkmt_proto.h"

/*
 * What is fixed at compile time is checked at compile time: a wrong layout or
 * wire value fails the build instead of counting as a test.
 */
#define SA VKMT_STATIC_ASSERT

/* Registers fit, and doorbells are linear. */
SA(VKMT_REG_DOORBELL(0) == 0x100 && VKMT_REG_DOORBELL(1) == 0x104, "doorbells at 0x100");
SA(VKMT_REG_DOORBELL(VKMT_MAX_QUEUES - 1) + 4 == sizeof(struct vkmt_regs), "last doorbell");
SA(sizeof(struct vkmt_regs) <= VKMT_REGS_SIZE, "registers fit their BAR");
SA(VKMT_REG(budget_hi) < VKMT_REG(sq_doorbell), "config registers before the doorbells");

/* A queue's regions do not overlap. */
SA(sizeof(struct vkmt_queue_hdr) <= VKMT_QUEUE_SQ_OFF, "header before the SQ");
SA(VKMT_QUEUE_SQ_OFF + VKMT_QUEUE_DEPTH * sizeof(struct vkmt_sqe) <= VKMT_QUEUE_CQ_OFF, "SQ, CQ");
SA(VKMT_QUEUE_CQ_OFF + VKMT_QUEUE_DEPTH * sizeof(struct vkmt_cqe) <= VKMT_QUEUE_STAGING_OFF,
   "CQ, staging");
SA(VKMT_QUEUE_STAGING_OFF + VKMT_STAGING_SIZE == VKMT_QUEUE_STRIDE, "staging ends the queue");
SA(VKMT_QUEUE_STRIDE % 4096 == 0, "queues are page-aligned");

/* Wire statuses are the NTSTATUS values they carry. */
SA(VKMT_ST_SUCCESS == (uint32_t)STATUS_SUCCESS, "SUCCESS");
SA(VKMT_ST_INVALID_PARAMETER == (uint32_t)STATUS_INVALID_PARAMETER, "INVALID_PARAMETER");
SA(VKMT_ST_NO_MEMORY == (uint32_t)STATUS_NO_MEMORY, "NO_MEMORY");
SA(VKMT_ST_NOT_SUPPORTED == (uint32_t)STATUS_NOT_SUPPORTED, "NOT_SUPPORTED");
SA(VKMT_ST_DEVICE_REMOVED == (uint32_t)STATUS_DEVICE_REMOVED, "DEVICE_REMOVED");
SA(VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY == (uint32_t)STATUS_GRAPHICS_NO_VIDEO_MEMORY,
   "NO_VIDEO_MEMORY");
SA(!NT_SUCCESS((NTSTATUS)VKMT_ST_DEVICE_REMOVED), "errors are negative NTSTATUS values");

/* Priorities, results and segment groups are the Windows values. */
SA(VKMT_PRIO_LOW == D3DKMT_OFFER_PRIORITY_LOW && VKMT_PRIO_NORMAL == D3DKMT_OFFER_PRIORITY_NORMAL &&
       VKMT_PRIO_HIGH == D3DKMT_OFFER_PRIORITY_HIGH && VKMT_PRIO_AUTO == D3DKMT_OFFER_PRIORITY_AUTO,
   "offer priorities");
SA(VKMT_RECLAIM_OK == D3DDDI_RECLAIM_RESULT_OK &&
       VKMT_RECLAIM_DISCARDED == D3DDDI_RECLAIM_RESULT_DISCARDED &&
       VKMT_RECLAIM_NOT_COMMITTED == D3DDDI_RECLAIM_RESULT_NOT_COMMITTED,
   "reclaim results");
SA(VKMT_SEGMENT_LOCAL == D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL &&
       VKMT_SEGMENT_NON_LOCAL == D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL,
   "segment groups");

/* Code written for Windows finds BOOL's values where windef.h puts them. */
SA(TRUE == 1 && FALSE == 0 && sizeof(BOOL) == 4, "TRUE and FALSE");

/* Opcodes are dense, feature bits contiguous. */
SA(VKMT_OP_CREATE_DEVICE == 1 && VKMT_OP_MAX == VKMT_OP_QUERY_QUEUE_STATS &&
       VKMT_OP_QUERY_QUEUE_STATS == 0x15,
   "opcodes 1..0x15");
SA((VKMT_F_KNOWN & (VKMT_F_KNOWN + 1)) == 0, "known features are the low bits");

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

static const struct test tests[] = {
    TEST(staging_holds_the_largest_commands),
    TEST(offer_flag_bits_are_the_kernel_thunk_ones),
    TEST(texture_sizes_are_packed_rows),
};

int main(void)
{
    return harness_run("test_protocol", tests, sizeof(tests) / sizeof(tests[0]));
}
