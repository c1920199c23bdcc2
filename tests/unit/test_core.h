/* SPDX-License-Identifier: MIT */
/* Test tables of the test_core binary, one per file; test_core_main.c runs them in order. */
#ifndef VKMT_TEST_CORE_H
#define VKMT_TEST_CORE_H

#include "harness.h"

extern const struct test core_queue_tests[];
extern const unsigned core_queue_ntests;
extern const struct test core_handle_tests[];
extern const unsigned core_handle_ntests;
extern const struct test core_state_tests[];
extern const unsigned core_state_ntests;
extern const struct test core_command_tests[];
extern const unsigned core_command_ntests;
extern const struct test core_ring_tests[];
extern const unsigned core_ring_ntests;
extern const struct test core_stats_tests[];
extern const unsigned core_stats_ntests;
extern const struct test core_device_tests[];
extern const unsigned core_device_ntests;
extern const struct test core_texture_tests[];
extern const unsigned core_texture_ntests;
extern const struct test core_lifecycle_tests[];
extern const unsigned core_lifecycle_ntests;
extern const struct test core_hostmem_tests[];
extern const unsigned core_hostmem_ntests;
extern const struct test core_bounded_tests[];
extern const unsigned core_bounded_ntests;
extern const struct test core_snapshot_tests[];
extern const unsigned core_snapshot_ntests;
extern const struct test core_pressure_tests[];
extern const unsigned core_pressure_ntests;
extern const struct test core_event_tests[];
extern const unsigned core_event_ntests;
extern const struct test core_fault_tests[];
extern const unsigned core_fault_ntests;
extern const struct test core_residency_tests[];
extern const unsigned core_residency_ntests;
extern const struct test core_quota_tests[];
extern const unsigned core_quota_ntests;
extern const struct test aperture_tests[];
extern const unsigned aperture_ntests;

#endif
