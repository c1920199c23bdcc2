/* SPDX-License-Identifier: MIT */
/*
 * Checked access to the caller's arrays without a system call: the copy
 * runs with a fault catcher armed. libvkmt installs SIGSEGV and SIGBUS
 * handlers once (at the first checked access); a fault inside an armed copy
 * jumps back to it, which then reports the range as bad; any other fault is
 * passed on to the handler that was there before (the program's, or the
 * default action, which then happens as if libvkmt were not there). The
 * arming is a thread-local pointer, so threads probe independently. Cost:
 * a sigsetjmp that saves no signal mask, a few tens of ns, against the
 * 100-320 ns of the kernel round trips the checks used before (a write into
 * a pipe, a read from /dev/zero, process_vm_writev). A bad range may be
 * partly copied before the fault, as the kernel's own copies leave it.
 *
 * A program that installs its own SIGSEGV or SIGBUS handler after its first
 * D3DKMT call must pass faults it does not own on to the previous handler,
 * as with any library that catches faults; if it does not, a bad pointer
 * reaches that handler instead of becoming STATUS_INVALID_PARAMETER.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "usermem.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool checks = true; /* cleared when VKMT_POINTER_CHECKS=0 or no catcher */
static struct sigaction prev_segv, prev_bus;
static _Thread_local sigjmp_buf *armed;

/* A fault that is not ours: what would have happened without libvkmt. */
static void pass_on(const struct sigaction *prev, int sig, siginfo_t *si, void *uc)
{
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
    } else {
        /* Back to the default: returning re-runs the faulting access,
         * which then ends the process as it would have. */
        signal(sig, SIG_DFL);
    }
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    sigjmp_buf *jb = armed;

    if (jb) {
        armed = NULL;
        siglongjmp(*jb, 1);
    }
    pass_on(sig == SIGBUS ? &prev_bus : &prev_segv, sig, si, uc);
}

static void init(void)
{
    const char *env = secure_getenv("VKMT_POINTER_CHECKS");
    /* NODEFER: the jump out of the handler does not restore the signal
     * mask (that would cost a system call), so the signal must not be
     * blocked while it runs. ONSTACK: a program's stack-overflow handler
     * on its alternate stack keeps working. */
    struct sigaction sa = { .sa_sigaction = on_fault,
                            .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK };

    if (env && strcmp(env, "0") == 0) {
        checks = false;
        return;
    }
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &prev_segv) != 0 || sigaction(SIGBUS, &sa, &prev_bus) != 0) {
        checks = false;
    }
}

/*
 * memcpy (@src) or memset to 0 (@src NULL) of @len bytes with the catcher
 * armed: false when the caller's memory faulted.
 */
static bool guarded(void *dst, const void *src, size_t len)
{
    sigjmp_buf jb;

    if (sigsetjmp(jb, 0)) {
        return false; /* on_fault disarmed it */
    }
    armed = &jb;
    /* The copy stays between arming and disarming. */
    atomic_signal_fence(memory_order_seq_cst);
    if (src) {
        memcpy(dst, src, len);
    } else {
        memset(dst, 0, len);
    }
    atomic_signal_fence(memory_order_seq_cst);
    armed = NULL;
    return true;
}

/*
 * An access of @len bytes from @src (NULL: zeros) to @dst, where @theirs is
 * the caller's side of it: refused when NULL, checked unless checks are off.
 */
static bool access_theirs(void *dst, const void *src, size_t len, const void *theirs)
{
    pthread_once(&once, init);
    if (!theirs) {
        return false;
    }
    if (checks && len) {
        return guarded(dst, src, len);
    }
    if (src) {
        memcpy(dst, src, len);
    } else {
        memset(dst, 0, len);
    }
    return true;
}

bool um_copy_in(void *dst, const void *src, size_t len)
{
    return access_theirs(dst, src, len, src);
}

bool um_copy_out(void *dst, const void *src, size_t len)
{
    return access_theirs(dst, src, len, dst);
}

bool um_probe_out(void *dst, size_t len)
{
    return access_theirs(dst, NULL, len, dst);
}
