/* SPDX-License-Identifier: MIT */
/*
 * test_core: the registers, the status handshake, and claiming, releasing
 * and re-claiming queues (a release frees all the queue owned).
 */
#include <stdlib.h>
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static void identity_registers(void)
{
    setup(16 * MIB, 8 * MIB);
    CHECK_EQ(rd(VKMT_REG(magic)), VKMT_MAGIC);
    CHECK_EQ(rd(VKMT_REG(version)), VKMT_VERSION);
    CHECK_EQ(rd(VKMT_REG(device_features)), VKMT_F_KNOWN);
    CHECK_EQ(rd(VKMT_REG(num_queues)), 4);
    CHECK_EQ(rd(VKMT_REG(queue_depth)), VKMT_QUEUE_DEPTH);
    CHECK_EQ(rd(VKMT_REG(queue_stride)), VKMT_QUEUE_STRIDE);
    CHECK_EQ(rd(VKMT_REG(staging_size)), VKMT_STAGING_SIZE);
    CHECK_EQ(rd(VKMT_REG(max_batch)), 10240);
    CHECK_EQ(rd(VKMT_REG(aperture_size_lo)), 16 * MIB);
    CHECK_EQ(rd(VKMT_REG(aperture_size_hi)), 0);
    CHECK_EQ(rd(VKMT_REG(budget_lo)), 8 * MIB);
    CHECK_EQ(rd(0xffc), 0); /* unknown offsets read as zero */
    CHECK_EQ(F.guest_errors, 0);
    wr(VKMT_REG(magic), 1); /* read-only: logged, ignored */
    CHECK_EQ(F.guest_errors, 1);
    CHECK_EQ(rd(VKMT_REG(magic)), VKMT_MAGIC);
    teardown();
}

static void handshake_rules(void)
{
    struct vkmt_core_config cfg = { .num_queues = 2, .features = VKMT_F_RESOURCES };
    uint8_t *ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(2));

    memset(&F, 0, sizeof(F));
    F.ctrl = ctrl;
    CHECK_EQ(vkmt_backend_mem_create(MIB, -1, NULL, &F.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, F.be, ctrl, &fake_ops, NULL, &F.core), 0);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE); /* not ready */
    wr(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK); /* before FEATURES_OK */
    CHECK_EQ(rd(VKMT_REG(status)) & VKMT_STATUS_DRIVER_OK, 0);
    wr(VKMT_REG(driver_features), VKMT_F_GUEST_TRIM); /* not offered */
    wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    CHECK_EQ(rd(VKMT_REG(status)) & VKMT_STATUS_FEATURES_OK, 0);
    wr(VKMT_REG(driver_features), VKMT_F_RESOURCES);
    wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    CHECK(rd(VKMT_REG(status)) & VKMT_STATUS_FEATURES_OK);
    wr(VKMT_REG(driver_features), 0); /* frozen after FEATURES_OK */
    CHECK_EQ(rd(VKMT_REG(driver_features)), VKMT_F_RESOURCES);
    wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 0);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 1);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE); /* all taken */
    CHECK_EQ(F.guest_errors, 3);
    teardown();
}

static void release_and_reclaim_queue(void)
{
    uint32_t seq;

    setup(MIB, 0);
    seq = hdr(0)->sh_claim_seq;
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ACTIVE);
    wr(VKMT_REG(queue_release), 0);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_FREE);
    wr(VKMT_REG(queue_release), 0); /* not claimed any more */
    CHECK_EQ(F.guest_errors, 1);
    wr(VKMT_REG(queue_release), 99);
    CHECK_EQ(F.guest_errors, 2);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 0);
    CHECK_EQ(hdr(0)->sh_claim_seq, seq + 1);
    teardown();
}

static void release_frees_everything(void)
{
    uint32_t dev, h[4];
    struct vkmt_stats s;

    setup(16 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, MIB, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 4; i++) {
        fill(dev, h[i], MIB, 1);
    }
    CHECK_EQ(memfd_bytes(), 4 * MIB);
    wr(VKMT_REG(queue_release), 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations, 0);
    CHECK_EQ(s.devices, 0);
    CHECK_EQ(s.committed_bytes, 0);
    CHECK_EQ(memfd_bytes(), 0);
    teardown();
}

const struct test core_queue_tests[] = {
    TEST(identity_registers),
    TEST(handshake_rules),
    TEST(release_and_reclaim_queue),
    TEST(release_frees_everything),
};
const unsigned core_queue_ntests = sizeof(core_queue_tests) / sizeof(core_queue_tests[0]);
