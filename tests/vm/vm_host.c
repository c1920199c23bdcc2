/* SPDX-License-Identifier: MIT */
/* The VM runner's host services (vm_host.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vm_host.h"

const char *vm_host(const char *fmt, ...)
{
    static char reply[4096];
    va_list ap;

    printf("vkmt-vm: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!fgets(reply, sizeof(reply), stdin)) {
        return "";
    }
    reply[strcspn(reply, "\r\n")] = 0;
    return reply;
}
