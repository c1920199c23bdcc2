/* SPDX-License-Identifier: MIT */
/* Conformance suite entry point: every table of conf.h, in one run. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
        { conf_notify_tests, &conf_notify_tests_count },
        { conf_residency_tests, &conf_residency_tests_count },
        { conf_quota_tests, &conf_quota_tests_count },
        { conf_removal_tests, &conf_removal_tests_count },
    };
    static struct test all[256];
    unsigned n = 0;

    for (unsigned i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        for (unsigned j = 0; j < *tables[i].n && n < 256; j++) {
            all[n++] = tables[i].t[j];
        }
    }
    const char *transport = vkmt_transport_name();

    printf("# transport: %s\n", transport ? transport : "none");
    /* Over the kernel driver it reports apart, so one VM run can hold the
     * PCI run, the unprivileged run and a privileged one (which may reset). */
    return harness_run(!transport || strcmp(transport, "kmd") ? "conformance"
                       : geteuid()                            ? "conformance_kmd"
                                                              : "conformance_kmd_root",
                       all, n);
}
