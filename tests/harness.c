/* SPDX-License-Identifier: MIT */
/* The test runner behind harness.h: TAP-style lines, one summary line. */
#include <stdarg.h>
#include <stdio.h>

#include "harness.h"

static unsigned failures;
static const char *current;

void harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    failures++;
    fprintf(stdout, "#   %s: %s:%d: ", current, file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

unsigned harness_failures(void)
{
    return failures;
}

int harness_run(const char *suite, const struct test *tests, unsigned n)
{
    unsigned passed = 0, failed = 0;

    printf("1..%u\n", n);
    for (unsigned i = 0; i < n; i++) {
        current = tests[i].name;
        failures = 0;
        tests[i].fn();
        if (failures) {
            failed++;
            printf("not ok %u - %s\n", i + 1, tests[i].name);
        } else {
            passed++;
            printf("ok %u - %s\n", i + 1, tests[i].name);
        }
        fflush(stdout);
    }
    printf("# %s: %u passed, %u failed\n", suite, passed, failed);
    return failed ? 1 : 0;
}
