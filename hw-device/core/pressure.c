/* SPDX-License-Identifier: MIT */
/*
 * The budget that follows the host's memory pressure (docs/DEVICE.md,
 * property "pressure"): pure functions from what the host's files say to a
 * budget, so that the policy is unit-tested without a host under pressure.
 * The QEMU glue samples the files and applies the result with
 * vkmt_core_set_budget, which logs the change and posts BUDGET_CHANGED.
 */
#include <stdlib.h>
#include <string.h>

#include "vkmt_core.h"

int vkmt_psi_some_avg10(const char *text, uint32_t *permille)
{
    /* "some avg10=1.23 avg60=... total=..." on the first line. */
    const char *p = strstr(text, "some avg10=");
    char *end;
    unsigned long whole, frac = 0;

    if (!p) {
        return -1;
    }
    p += strlen("some avg10=");
    whole = strtoul(p, &end, 10);
    if (end == p || whole > 100) {
        return -1;
    }
    if (*end == '.') {
        const char *f = end + 1;

        frac = strtoul(f, &end, 10);
        if (end != f + 2) {
            return -1; /* the kernel prints two decimals */
        }
    }
    *permille = (uint32_t)(whole * 10 + frac / 10);
    return *permille <= 1000 ? 0 : -1;
}

uint64_t vkmt_pressure_budget_psi(uint64_t base, uint32_t some_avg10_permille)
{
    uint32_t cut = some_avg10_permille >= VKMT_PSI_HALF_PERMILLE
                       ? 500
                       : some_avg10_permille * 500 / VKMT_PSI_HALF_PERMILLE;

    return base - base / 1000 * cut;
}

uint64_t vkmt_pressure_budget_cgroup(uint64_t base, uint64_t committed, uint64_t current,
                                     uint64_t high)
{
    uint64_t room = high > current ? high - current : 0;
    uint64_t budget = committed + room < committed ? UINT64_MAX : committed + room;

    budget = budget < base ? budget : base;
    return budget > base / 4 ? budget : base / 4;
}
