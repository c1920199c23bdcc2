/* SPDX-License-Identifier: MIT */
/* Conformance suite entry point: every table of conf.h, in one run. */
#include <stdio.h>

#include "conf.h"

int main(void)
{
    static const struct {
        const struct test *t;
        const unsigned *n;
    } tables[] = {
        { conf_adapter_tests, &conf_adapter_tests_count },
        { conf_alloc_tests, &conf_alloc_tests_count },
        { conf_offer_tests, &conf_offer_tests_count },
        { conf_reclaim_tests, &conf_reclaim_tests_count },
        { conf_pressure_tests, &conf_pressure_tests_count },
        { conf_removal_tests, &conf_removal_tests_count },
    };
    static struct test all[256];
    unsigned n = 0;

    for (unsigned i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        for (unsigned j = 0; j < *tables[i].n && n < 256; j++) {
            all[n++] = tables[i].t[j];
        }
    }
    printf("# transport: %s\n", vkmt_transport_name() ? vkmt_transport_name() : "none");
    return harness_run("conformance", all, n);
}
