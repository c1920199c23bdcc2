/* SPDX-License-Identifier: MIT */
/*
 * test_core: the budget that follows host memory pressure: PSI lines as the
 * kernel prints them (and text that is not one), the PSI budget's slope and
 * floor, and the cgroup budget between a quarter of the base and the base.
 */
#include "harness.h"
#include "test_core.h"
#include "vkmt_core.h"

#define MIB (1ull << 20)

static void psi_lines_parse_and_garbage_does_not(void)
{
    uint32_t pm = 7;

    CHECK_EQ(vkmt_psi_some_avg10("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                                 "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                                 &pm),
             0);
    CHECK_EQ(pm, 0);
    CHECK_EQ(vkmt_psi_some_avg10("some avg10=12.34 avg60=1.00 avg300=0.10 total=99\n", &pm), 0);
    CHECK_EQ(pm, 123);
    CHECK_EQ(vkmt_psi_some_avg10("some avg10=100.00 avg60=1.00", &pm), 0);
    CHECK_EQ(pm, 1000);
    CHECK_EQ(vkmt_psi_some_avg10("full avg10=5.00", &pm), -1);
    CHECK_EQ(vkmt_psi_some_avg10("some avg10=", &pm), -1);
    CHECK_EQ(vkmt_psi_some_avg10("some avg10=101.00", &pm), -1);
    CHECK_EQ(vkmt_psi_some_avg10("some avg10=1.5 avg60", &pm), -1);
}

static void psi_budget_halves_at_twenty_percent(void)
{
    CHECK_EQ(vkmt_pressure_budget_psi(1000 * MIB, 0), 1000 * MIB);
    CHECK_EQ(vkmt_pressure_budget_psi(1000 * MIB, 100), 750 * MIB);
    CHECK_EQ(vkmt_pressure_budget_psi(1000 * MIB, VKMT_PSI_HALF_PERMILLE), 500 * MIB);
    CHECK_EQ(vkmt_pressure_budget_psi(1000 * MIB, 1000), 500 * MIB);
}

static void cgroup_budget_is_the_room_under_memory_high(void)
{
    /* Plenty of room: the base. */
    CHECK_EQ(vkmt_pressure_budget_cgroup(64 * MIB, 8 * MIB, 100 * MIB, 1000 * MIB), 64 * MIB);
    /* 16 MiB of room: what is committed plus that. */
    CHECK_EQ(vkmt_pressure_budget_cgroup(64 * MIB, 8 * MIB, 984 * MIB, 1000 * MIB), 24 * MIB);
    /* Over memory.high: what is committed, but never below a quarter. */
    CHECK_EQ(vkmt_pressure_budget_cgroup(64 * MIB, 32 * MIB, 2000 * MIB, 1000 * MIB), 32 * MIB);
    CHECK_EQ(vkmt_pressure_budget_cgroup(64 * MIB, 0, 2000 * MIB, 1000 * MIB), 16 * MIB);
    /* memory.high "max" reads as UINT64_MAX. */
    CHECK_EQ(vkmt_pressure_budget_cgroup(64 * MIB, 8 * MIB, 100 * MIB, UINT64_MAX), 64 * MIB);
}

const struct test core_pressure_tests[] = {
    TEST(psi_lines_parse_and_garbage_does_not),
    TEST(psi_budget_halves_at_twenty_percent),
    TEST(cgroup_budget_is_the_room_under_memory_high),
};
const unsigned core_pressure_ntests = sizeof(core_pressure_tests) / sizeof(core_pressure_tests[0]);
