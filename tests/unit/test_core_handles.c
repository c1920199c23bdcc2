/* SPDX-License-Identifier: MIT */
/*
 * test_core: handles that are stale, forged or another queue's are refused,
 * and handle slots retire instead of wrapping.
 */
#include <string.h>

#include "core_fixture.h"
#include "harness.h"
#include "test_core.h"

static void handles_detect_stale_forged_and_foreign(void)
{
    struct drv other;
    uint32_t dev, dev2, h[2], stale;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK(h[0] != 0 && h[1] != 0 && h[0] != h[1]);
    /* A destroyed allocation's handle stays dead even when its slot is reused. */
    CHECK_EQ(destroy_allocs(dev, &h[0], 1), VKMT_ST_SUCCESS);
    stale = h[0];
    CHECK_EQ(lock(dev, stale, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    CHECK(h[0] != stale);
    CHECK_EQ(lock(dev, stale, NULL), VKMT_ST_INVALID_PARAMETER);
    /* Forged values: a type confused with another, garbage, zero. */
    CHECK_EQ(lock(h[0], h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, dev, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, 0xffffffffu, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0] ^ 0x00100000u, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0] + 1000, NULL), VKMT_ST_INVALID_PARAMETER);
    /* Another queue (another guest process) cannot use these handles. */
    other = claim();
    CHECK_EQ(other.q, 1);
    CHECK_EQ(run_on(&other,
                    (struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = h[0] }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    dev2 = new_device_on(&other);
    CHECK_EQ(run_on(&other,
                    (struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev2, .arg0 = h[0] },
                    NULL),
             VKMT_ST_INVALID_PARAMETER);
    /* An allocation of another device of the same queue is refused too. */
    CHECK_EQ(lock(new_device(), h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_SUCCESS);
    teardown();
}

/* PROTOCOL.md 7: a slot whose generations are used up is retired, not
 * wrapped, so its first handle never comes back; a reset returns it. */
static void handle_slots_retire_instead_of_wrapping(void)
{
    uint32_t first, dev, slot;

    setup(MIB, 0);
    first = new_device();
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = first }, NULL),
             VKMT_ST_SUCCESS);
    /* One free slot: every creation reuses it until it is retired. */
    for (uint32_t i = 0; i < 600; i++) {
        dev = new_device();
        CHECK(dev != first);
        CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev }, NULL),
                 VKMT_ST_SUCCESS);
    }
    slot = first & 0xfffffu;
    CHECK((dev & 0xfffffu) != slot);
    wr(VKMT_REG(status), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    /* The retired slot is in use again, behind the one freed before it. */
    CHECK((new_device() & 0xfffffu) != slot);
    CHECK_EQ(new_device() & 0xfffffu, slot);
    teardown();
}

const struct test core_handle_tests[] = {
    TEST(handles_detect_stale_forged_and_foreign),
    TEST(handle_slots_retire_instead_of_wrapping),
};
const unsigned core_handle_ntests = sizeof(core_handle_tests) / sizeof(core_handle_tests[0]);
