/* SPDX-License-Identifier: MIT */
/*
 * A main() for a libFuzzer harness without libFuzzer, in the spirit of
 * OSS-Fuzz's standalone replayers: it feeds every file named on the command
 * line, and every file in every directory named (sorted, dot files and
 * README files skipped), to LLVMFuzzerTestOneInput once. Each input runs in
 * a child process, so that an abort or a sanitizer report counts as that
 * input's failure and the rest still run; --no-fork runs them in this process
 * instead (for a debugger, or for coverage counters without a fork per
 * input). It prints one "ok N - FILE" or "not ok N - FILE" line per input and
 * ends with the summary line tests/run-suites.sh adds up. Any compiler
 * builds it, which is how the corpus replays in make check without clang.
 */
#define _DEFAULT_SOURCE /* scandir, alphasort, DT_* */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_input.h"

static unsigned passed, failed, n;
static bool no_fork;

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        return -errno;
    }
    for (;;) {
        size_t got;

        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap ? cap * 2 : 4096);

            if (!bigger) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = bigger;
            cap = cap ? cap * 2 : 4096;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    *data = buf;
    *size = len;
    return 0;
}

/* Run one input; true when it came back without a report. */
static bool run_one(const char *path)
{
    uint8_t *data;
    size_t size;
    int err = read_file(path, &data, &size), status;
    pid_t pid;

    if (err < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(-err));
        return false;
    }
    if (no_fork) {
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        return true;
    }
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        free(data);
        return false;
    }
    if (pid == 0) {
        LLVMFuzzerTestOneInput(data, size);
        exit(0);
    }
    free(data);
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return false;
    }
    if (WIFSIGNALED(status)) {
        printf("# %s: killed by signal %d\n", path, WTERMSIG(status));
        return false;
    }
    if (WEXITSTATUS(status) != 0) {
        printf("# %s: exit status %d\n", path, WEXITSTATUS(status));
        return false;
    }
    return true;
}

static void input(const char *path)
{
    bool ok = run_one(path);

    n++;
    if (ok) {
        passed++;
    } else {
        failed++;
    }
    printf("%s %u - %s\n", ok ? "ok" : "not ok", n, path);
}

static int skipped(const struct dirent *e)
{
    return e->d_name[0] != '.' && strncmp(e->d_name, "README", 6) != 0;
}

static void directory(const char *path)
{
    struct dirent **names;
    int count = scandir(path, &names, skipped, alphasort);

    if (count < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    for (int i = 0; i < count; i++) {
        char file[4096];
        struct stat st;

        if (snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name) < (int)sizeof(file) &&
            stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            input(file);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (strcmp(argv[i], "--no-fork") == 0) {
            no_fork = true;
        } else if (argv[i][0] == '-') {
            /* libFuzzer flags (-runs=, -dict=...) mean nothing here. */
            continue;
        } else if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            directory(argv[i]);
        } else {
            input(argv[i]);
        }
    }
    printf("# fuzz_core_replay: %u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
