/* SPDX-License-Identifier: MIT */
/*
 * test_core: unit tests of the device engine (the test_core_*.c files, on
 * the fixture in core_fixture.c) and of its aperture allocator
 * (test_aperture.c), run as one suite in this order.
 */
#include <stdlib.h>

#include "harness.h"
#include "test_core.h"

int main(void)
{
    static const struct {
        const struct test *tests;
        const unsigned *n;
    } tables[] = {
        { core_queue_tests, &core_queue_ntests },
        { core_handle_tests, &core_handle_ntests },
        { core_state_tests, &core_state_ntests },
        { core_command_tests, &core_command_ntests },
        { core_ring_tests, &core_ring_ntests },
        { core_stats_tests, &core_stats_ntests },
        { core_device_tests, &core_device_ntests },
        { core_texture_tests, &core_texture_ntests },
        { core_lifecycle_tests, &core_lifecycle_ntests },
        { core_hostmem_tests, &core_hostmem_ntests },
        { core_bounded_tests, &core_bounded_ntests },
        { core_snapshot_tests, &core_snapshot_ntests },
        { core_fault_tests, &core_fault_ntests },
        { core_event_tests, &core_event_ntests },
        { core_pressure_tests, &core_pressure_ntests },
        { core_residency_tests, &core_residency_ntests },
        { core_quota_tests, &core_quota_ntests },
        { aperture_tests, &aperture_ntests },
    };
    enum { NTABLES = sizeof(tables) / sizeof(tables[0]) };
    struct test *all;
    unsigned total = 0, n = 0;
    int rc;

    for (unsigned t = 0; t < NTABLES; t++) {
        total += *tables[t].n;
    }
    all = malloc(total * sizeof(*all));
    if (!all) {
        return 1;
    }
    for (unsigned t = 0; t < NTABLES; t++) {
        for (unsigned i = 0; i < *tables[t].n; i++) {
            all[n++] = tables[t].tests[i];
        }
    }
    rc = harness_run("test_core", all, n);
    free(all);
    return rc;
}
