/* SPDX-License-Identifier: MIT */
/*
 * The test harness every suite uses: a table of named tests, non-fatal
 * CHECKs that report the failing expression with both values, and a final
 * "# SUITE: N passed, N failed" line that tests/run-suites.sh adds up. It is
 * small and dependency-free on purpose: the same suites run statically linked
 * inside a busybox test guest.
 */
#ifndef VKMT_HARNESS_H
#define VKMT_HARNESS_H

#include <stdint.h>

struct test {
    const char *name;
    void (*fn)(void);
};

#define TEST(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

/*
 * Runs @tests in order; returns the process exit status (0: all passed).
 * VKMT_TEST=PATTERN[,PATTERN...] runs only the tests whose names match one
 * of the shell patterns (fnmatch), e.g. VKMT_TEST='batch_*,decommit*'; the
 * others are reported as skipped.
 */
int harness_run(const char *suite, const struct test *tests, unsigned n);

void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* How many checks of the running test failed so far. */
unsigned harness_failures(void);

/* Ends the running test as skipped (it reports "# SKIP @why", counted as
 * skipped, not passed): for a test this machine cannot run. */
void harness_skip(const char *why);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            harness_fail(__FILE__, __LINE__, "%s", #cond);                                         \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                           \
        if (a_ != b_) {                                                                            \
            harness_fail(__FILE__, __LINE__, "%s == %s: 0x%llx != 0x%llx", #a, #b,                 \
                         (unsigned long long)a_, (unsigned long long)b_);                          \
        }                                                                                          \
    } while (0)

#endif /* VKMT_HARNESS_H */
