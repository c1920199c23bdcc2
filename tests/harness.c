/* SPDX-License-Identifier: MIT */
/* The test runner behind harness.h: TAP-style lines, one summary line. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static unsigned failures;
static const char *current;
static const char *skip_reason;

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

/* Whether @name matches one of the comma-separated patterns of @list. */
unsigned harness_failures(void)
{
    return failures;
}

static int selected(const char *list, const char *name)
{
    char pat[256];

    while (list && *list) {
        size_t len = strcspn(list, ",");

        if (len < sizeof(pat)) {
            memcpy(pat, list, len);
            pat[len] = '\0';
            if (fnmatch(pat, name, 0) == 0) {
                return 1;
            }
        }
        list += len + (list[len] == ',');
    }
    return 0;
}

void harness_skip(const char *why)
{
    skip_reason = why;
}

int harness_run(const char *suite, const struct test *tests, unsigned n)
{
    const char *only = getenv("VKMT_TEST");
    unsigned passed = 0, failed = 0, skipped = 0;

    printf("1..%u\n", n);
    for (unsigned i = 0; i < n; i++) {
        if (only && !selected(only, tests[i].name)) {
            skipped++;
            printf("ok %u - %s # SKIP not selected by VKMT_TEST\n", i + 1, tests[i].name);
            continue;
        }
        current = tests[i].name;
        failures = 0;
        skip_reason = NULL;
        tests[i].fn();
        if (skip_reason && !failures) {
            skipped++;
            printf("ok %u - %s # SKIP %s\n", i + 1, tests[i].name, skip_reason);
        } else if (failures) {
            failed++;
            printf("not ok %u - %s\n", i + 1, tests[i].name);
        } else {
            passed++;
            printf("ok %u - %s\n", i + 1, tests[i].name);
        }
        fflush(stdout);
    }
    if (skipped) {
        printf("# %s: %u passed, %u failed, %u skipped\n", suite, passed, failed, skipped);
    } else {
        printf("# %s: %u passed, %u failed\n", suite, passed, failed);
    }
    return failed ? 1 : 0;
}
