/* SPDX-License-Identifier: MIT */
/* Test tables of the test_core binary, one per file. */
#ifndef VKMT_TEST_CORE_H
#define VKMT_TEST_CORE_H

#include "harness.h"

extern const struct test aperture_tests[];
extern const unsigned aperture_ntests;

#endif
