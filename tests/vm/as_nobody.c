/* SPDX-License-Identifier: MIT */
/*
 * Inside the test VM: runs a command as the unprivileged user nobody
 * (65534), with no supplementary groups. The busybox guest has no su that
 * works without /etc/passwd, and its setpriv cannot change ids.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: as-nobody COMMAND [ARG]...\n");
        return 2;
    }
    if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
        perror("as-nobody");
        return 1;
    }
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
