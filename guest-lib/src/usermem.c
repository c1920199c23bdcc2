/* SPDX-License-Identifier: MIT */
/*
 * Kernel-checked copies: process_vm_readv/writev on our own pid fail with
 * EFAULT on a bad range instead of raising SIGSEGV, and reading /dev/zero
 * into a buffer is the cheapest writability probe (one short syscall). If
 * the kernel refuses those calls (seccomp, no /dev/zero) we fall back to
 * plain memory access.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "usermem.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool checks = true; /* cleared if the kernel will not check */
static int zero_fd = -1;
static pid_t self;

static void after_fork(void)
{
    self = getpid();
}

static void init(void)
{
    const char *env = getenv("VKMT_POINTER_CHECKS");

    checks = !(env && strcmp(env, "0") == 0);
    self = getpid();
    pthread_atfork(NULL, NULL, after_fork);
    zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
}

/* 1: copied; 0: the caller's range is bad; -1: the kernel will not check. */
static int vm_copy(void *dst, const void *src, size_t len, bool to_caller)
{
    struct iovec mine = {.iov_base = to_caller ? (void *)src : dst, .iov_len = len};
    struct iovec theirs = {.iov_base = to_caller ? dst : (void *)src,
                           .iov_len = len};
    ssize_t n = to_caller ? process_vm_writev(self, &mine, 1, &theirs, 1, 0)
                          : process_vm_readv(self, &mine, 1, &theirs, 1, 0);

    if (n == (ssize_t)len) {
        return 1;
    }
    /* A short transfer means part of the range is bad. */
    return n >= 0 || errno == EFAULT ? 0 : -1;
}

static bool copy(void *dst, const void *src, size_t len, bool to_caller)
{
    pthread_once(&once, init);
    if (!(to_caller ? dst : src)) {
        return false;
    }
    if (checks && len) {
        int r = vm_copy(dst, src, len, to_caller);

        if (r >= 0) {
            return r == 1;
        }
        checks = false;
    }
    memcpy(dst, src, len);
    return true;
}

bool um_copy_in(void *dst, const void *src, size_t len)
{
    return copy(dst, src, len, false);
}

bool um_copy_out(void *dst, const void *src, size_t len)
{
    return copy(dst, src, len, true);
}

bool um_probe_out(void *dst, size_t len)
{
    pthread_once(&once, init);
    if (!dst) {
        return false;
    }
    if (checks && len && zero_fd >= 0) {
        ssize_t n = read(zero_fd, dst, len);

        if (n == (ssize_t)len) {
            return true;
        }
        if (n >= 0 || errno == EFAULT) {
            return false;
        }
    }
    memset(dst, 0, len);
    return true;
}
