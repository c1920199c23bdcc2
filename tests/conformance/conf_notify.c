/* SPDX-License-Identifier: MIT */
/*
 * Conformance: trim and budget-change notifications. Argument checks of the
 * four thunks (bad pointers, NULL callback, bad device, wrong LUID, unknown
 * handles), then the host's side: a host trim request, a budget change and
 * the periodic trim reach the callbacks, on the library's thread, with the
 * registration's context; unregistering waits for a running callback, and
 * works from inside one. The host is played through the loopback library's
 * vkmt_loopback_host, or inside the test VM through the console's qmp
 * service (docs/VM.md).
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "conf.h"

#define PAGE 4096u
#define WAIT_MS 10000 /* the longest a notification may take, emulation included */

/* Sets the device property @prop to @value as the host would; 0 or -1. */
static int host_set(const char *prop, uint64_t value)
{
    const char *t = vkmt_transport_name();
    char reply[4096];

    if (t && !strcmp(t, "loopback")) {
        void *so = dlopen("libvkmt-loopback.so.1", RTLD_NOW | RTLD_NOLOAD);
        int (*host)(const char *, uint64_t) =
            so ? (int (*)(const char *, uint64_t))dlsym(so, "vkmt_loopback_host") : NULL;

        return host && host(prop, value) == 0 ? 0 : -1;
    }
    printf("vkmt-vm: qmp {\"execute\":\"qom-set\",\"arguments\":{\"path\":"
           "\"/machine/peripheral/vk\",\"property\":\"%s\",\"value\":%" PRIu64 "}}\n",
           prop, value);
    fflush(stdout);
    return fgets(reply, sizeof(reply), stdin) && strstr(reply, "\"return\"") ? 0 : -1;
}

/* What the callbacks saw. */
static struct {
    atomic_uint calls;
    atomic_uint started, finished;
    UINT flags;
    UINT64 bytes;
    void *ctx;
    pthread_t thread;
    VOID *self_handle; /* unregister_from_inside's own registration */
    NTSTATUS inside_st;
    unsigned sleep_ms;
} seen;

static void reset_seen(void)
{
    atomic_store(&seen.calls, 0);
    atomic_store(&seen.started, 0);
    atomic_store(&seen.finished, 0);
    seen.flags = 0;
    seen.bytes = 0;
    seen.ctx = NULL;
    seen.sleep_ms = 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Waits until @counter reaches @want; false after WAIT_MS. */
static int wait_for(atomic_uint *counter, unsigned want)
{
    for (int ms = 0; ms < WAIT_MS; ms++) {
        if (atomic_load(counter) >= want) {
            return 1;
        }
        sleep_ms(1);
    }
    return 0;
}

static VOID on_trim(D3DKMT_TRIMNOTIFICATION *n)
{
    atomic_fetch_add(&seen.started, 1);
    seen.flags = n->Flags.Value;
    seen.bytes = n->NumBytesToTrim;
    seen.ctx = n->Context;
    seen.thread = pthread_self();
    if (seen.sleep_ms) {
        sleep_ms(seen.sleep_ms);
    }
    atomic_fetch_add(&seen.finished, 1);
    atomic_fetch_add(&seen.calls, 1);
}

static VOID on_budget(D3DKMT_BUDGETCHANGENOTIFICATION *n)
{
    seen.bytes = n->Budget;
    seen.ctx = n->Context;
    atomic_fetch_add(&seen.calls, 1);
}

static VOID unregister_self(D3DKMT_TRIMNOTIFICATION *n)
{
    D3DKMT_UNREGISTERTRIMNOTIFICATION u = { .Handle = seen.self_handle };

    (void)n;
    seen.inside_st = D3DKMTUnregisterTrimNotification(&u);
    atomic_fetch_add(&seen.calls, 1);
}

static LUID adapter_luid(struct conf *c)
{
    D3DKMT_ADAPTERINFO info[4];
    D3DKMT_ENUMADAPTERS2 e = { .NumAdapters = 4, .pAdapters = info };
    LUID l = { 0 };

    CHECK_ST(D3DKMTEnumAdapters2(&e), STATUS_SUCCESS);
    for (ULONG i = 0; i < e.NumAdapters; i++) {
        D3DKMT_CLOSEADAPTER ca = { .hAdapter = info[i].hAdapter };

        if (i == 0) {
            l = info[0].AdapterLuid;
        }
        D3DKMTCloseAdapter(&ca);
    }
    (void)c;
    return l;
}

static D3DKMT_REGISTERTRIMNOTIFICATION trim_reg(struct conf *c,
                                                PFND3DKMT_TRIMNOTIFICATIONCALLBACK cb)
{
    D3DKMT_REGISTERTRIMNOTIFICATION r = {
        .AdapterLuid = adapter_luid(c), .hDevice = c->dev, .Callback = cb, .Context = &seen
    };

    return r;
}

static void unregister_trim(VOID *h)
{
    D3DKMT_UNREGISTERTRIMNOTIFICATION u = { .Handle = h };

    CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_SUCCESS);
}

static void register_trim_checks_its_arguments(void)
{
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r;
    D3DKMT_REGISTERTRIMNOTIFICATION *ro;
    uint8_t *two = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(D3DKMTRegisterTrimNotification(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTRegisterTrimNotification(conf_unreadable()), STATUS_INVALID_PARAMETER);
    r = trim_reg(&c, NULL);
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_INVALID_PARAMETER);
    r = trim_reg(&c, on_trim);
    r.hDevice = 0xdead;
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_INVALID_PARAMETER);
    r = trim_reg(&c, on_trim);
    r.AdapterLuid.HighPart ^= 0x100;
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.Handle, NULL);
    /* A valid request whose Handle cannot be written registers nothing:
     * Handle is the first field of a read-only page. */
    CHECK(two != MAP_FAILED);
    ro = (D3DKMT_REGISTERTRIMNOTIFICATION *)(two + PAGE -
                                             offsetof(D3DKMT_REGISTERTRIMNOTIFICATION, Handle));
    r = trim_reg(&c, on_trim);
    memcpy(ro, &r, offsetof(D3DKMT_REGISTERTRIMNOTIFICATION, Handle));
    CHECK_EQ(mprotect(two + PAGE, PAGE, PROT_READ), 0);
    CHECK_ST(D3DKMTRegisterTrimNotification(ro), STATUS_INVALID_PARAMETER);
    munmap(two, 2 * PAGE);
    r = trim_reg(&c, on_trim);
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_SUCCESS);
    CHECK(r.Handle != NULL);
    unregister_trim(r.Handle);
    conf_close(&c);
}

static void register_budget_change_checks_its_arguments(void)
{
    struct conf c;
    D3DKMT_REGISTERBUDGETCHANGENOTIFICATION r = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(D3DKMTRegisterBudgetChangeNotification(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTRegisterBudgetChangeNotification(conf_unreadable()), STATUS_INVALID_PARAMETER);
    r.hDevice = c.dev;
    CHECK_ST(D3DKMTRegisterBudgetChangeNotification(&r), STATUS_INVALID_PARAMETER);
    r.Callback = on_budget;
    r.hDevice = 0;
    CHECK_ST(D3DKMTRegisterBudgetChangeNotification(&r), STATUS_INVALID_PARAMETER);
    r.hDevice = c.dev;
    CHECK_ST(D3DKMTRegisterBudgetChangeNotification(&r), STATUS_SUCCESS);
    CHECK(r.Handle != NULL);
    {
        D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION u = { .Handle = r.Handle };

        CHECK_ST(D3DKMTUnregisterBudgetChangeNotification(&u), STATUS_SUCCESS);
        /* Twice: the handle is gone. */
        CHECK_ST(D3DKMTUnregisterBudgetChangeNotification(&u), STATUS_INVALID_PARAMETER);
    }
    conf_close(&c);
}

static void unregister_of_an_unknown_handle_is_invalid(void)
{
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r;
    D3DKMT_UNREGISTERTRIMNOTIFICATION u = { 0 };
    D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION ub = { 0 };

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(D3DKMTUnregisterTrimNotification(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTUnregisterTrimNotification(conf_unreadable()), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_INVALID_PARAMETER); /* both NULL */
    u.Handle = (VOID *)(uintptr_t)0x7fff1234;
    CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_INVALID_PARAMETER);
    u = (D3DKMT_UNREGISTERTRIMNOTIFICATION){ .Callback = on_trim }; /* none registered */
    CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTUnregisterBudgetChangeNotification(NULL), STATUS_INVALID_PARAMETER);
    CHECK_ST(D3DKMTUnregisterBudgetChangeNotification(&ub), STATUS_INVALID_PARAMETER);
    /* A trim handle is not a budget-change handle. */
    r = trim_reg(&c, on_trim);
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_SUCCESS);
    ub.Handle = r.Handle;
    CHECK_ST(D3DKMTUnregisterBudgetChangeNotification(&ub), STATUS_INVALID_PARAMETER);
    unregister_trim(r.Handle);
    conf_close(&c);
}

static void host_trim_request_reaches_the_callback(void)
{
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r;
    D3DKMT_HANDLE h[4];

    if (!conf_open(&c)) {
        return;
    }
    reset_seen();
    CHECK_ST(conf_create(&c, 4, PAGE, h), STATUS_SUCCESS);
    r = trim_reg(&c, on_trim);
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_SUCCESS);
    CHECK_EQ(host_set("trim-notify", 2 * PAGE), 0);
    CHECK(wait_for(&seen.calls, 1));
    CHECK_EQ(seen.flags, 0x4u); /* TrimToBudget alone */
    CHECK_EQ(seen.bytes, 2 * PAGE);
    CHECK_EQ(seen.ctx, &seen);
    CHECK(!pthread_equal(seen.thread, pthread_self()));
    /* More than the process holds asks for what it holds. */
    CHECK_EQ(host_set("trim-notify", 0), 0);
    CHECK(wait_for(&seen.calls, 2));
    CHECK_EQ(seen.bytes, conf_usage(&c));
    unregister_trim(r.Handle);
    conf_close(&c);
}

/* The host's period: over loopback a restart and a tick by hand; in the VM
 * trim-period-ms, which restarts then ticks every 20 ms until set to 0. */
static void periodic_trim_restarts_then_ticks(void)
{
    const char *t = vkmt_transport_name();
    bool loopback = t && !strcmp(t, "loopback");
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r;

    if (!conf_open(&c)) {
        return;
    }
    reset_seen();
    r = trim_reg(&c, on_trim);
    CHECK_ST(D3DKMTRegisterTrimNotification(&r), STATUS_SUCCESS);
    CHECK_EQ(loopback ? host_set("periodic-trim", 1) : host_set("trim-period-ms", 20), 0);
    CHECK(wait_for(&seen.calls, 1));
    CHECK_EQ(seen.flags, 0x2u); /* RestartPeriodicTrim */
    CHECK_EQ(seen.bytes, 0);
    if (loopback) {
        CHECK_EQ(host_set("periodic-trim", 0), 0);
    }
    CHECK(wait_for(&seen.calls, 2));
    if (!loopback) {
        CHECK_EQ(host_set("trim-period-ms", 0), 0);
    }
    CHECK_EQ(seen.flags, 0x1u); /* PeriodicTrim */
    unregister_trim(r.Handle);
    conf_close(&c);
}

static void budget_change_reaches_the_callback(void)
{
    struct conf c;
    D3DKMT_REGISTERBUDGETCHANGENOTIFICATION r = { 0 };
    D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION u;
    UINT64 budget;

    if (!conf_open(&c)) {
        return;
    }
    reset_seen();
    budget = c.budget / 2 / PAGE * PAGE;
    r.hDevice = c.dev;
    r.Callback = on_budget;
    r.Context = &c;
    CHECK_ST(D3DKMTRegisterBudgetChangeNotification(&r), STATUS_SUCCESS);
    CHECK_EQ(host_set("budget", budget), 0);
    CHECK(wait_for(&seen.calls, 1));
    CHECK_EQ(seen.bytes, budget);
    CHECK_EQ(seen.ctx, &c);
    CHECK_EQ(host_set("budget", c.budget), 0);
    CHECK(wait_for(&seen.calls, 2));
    CHECK_EQ(seen.bytes, c.budget);
    u.Handle = r.Handle;
    CHECK_ST(D3DKMTUnregisterBudgetChangeNotification(&u), STATUS_SUCCESS);
    conf_close(&c);
}

/*
 * Opens @c holding one page (something to trim) and registers @cb for trims
 * into *@r, with what the callbacks saw cleared. False when it cannot open.
 */
static int open_registered(struct conf *c, PFND3DKMT_TRIMNOTIFICATIONCALLBACK cb,
                           D3DKMT_REGISTERTRIMNOTIFICATION *r)
{
    D3DKMT_HANDLE h;

    if (!conf_open(c)) {
        return 0;
    }
    reset_seen();
    CHECK_ST(conf_create(c, 1, PAGE, &h), STATUS_SUCCESS);
    *r = trim_reg(c, cb);
    CHECK_ST(D3DKMTRegisterTrimNotification(r), STATUS_SUCCESS);
    return 1;
}

static void unregister_waits_for_a_running_callback(void)
{
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r;

    if (!open_registered(&c, on_trim, &r)) {
        return;
    }
    seen.sleep_ms = 300;
    CHECK_EQ(host_set("trim-notify", PAGE), 0);
    CHECK(wait_for(&seen.started, 1));
    unregister_trim(r.Handle);
    /* Unregister returned: the callback that was running has returned too. */
    CHECK_EQ(atomic_load(&seen.finished), 1);
    conf_close(&c);
}

static void unregister_from_inside_the_callback_returns(void)
{
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r;

    seen.inside_st = -1;
    if (!open_registered(&c, unregister_self, &r)) {
        return;
    }
    seen.self_handle = r.Handle;
    CHECK_EQ(host_set("trim-notify", PAGE), 0);
    CHECK(wait_for(&seen.calls, 1));
    CHECK_ST(seen.inside_st, STATUS_SUCCESS);
    /* Gone: a second request calls nothing, and the handle is unknown. */
    CHECK_EQ(host_set("trim-notify", PAGE), 0);
    sleep_ms(200);
    CHECK_EQ(atomic_load(&seen.calls), 1);
    {
        D3DKMT_UNREGISTERTRIMNOTIFICATION u = { .Handle = r.Handle };

        CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_INVALID_PARAMETER);
    }
    conf_close(&c);
}

static void unregister_by_callback_removes_each_of_its_registrations(void)
{
    struct conf c;
    D3DKMT_REGISTERTRIMNOTIFICATION r1, r2;
    D3DKMT_UNREGISTERTRIMNOTIFICATION u = { .Callback = on_trim };

    if (!open_registered(&c, on_trim, &r1)) {
        return;
    }
    r2 = trim_reg(&c, on_trim);
    CHECK_ST(D3DKMTRegisterTrimNotification(&r2), STATUS_SUCCESS);
    CHECK(r1.Handle != r2.Handle);
    CHECK_EQ(host_set("trim-notify", PAGE), 0);
    CHECK(wait_for(&seen.calls, 2)); /* each registration once */
    CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_SUCCESS);
    CHECK_EQ(host_set("trim-notify", PAGE), 0);
    sleep_ms(200);
    CHECK_EQ(atomic_load(&seen.calls), 2);
    u = (D3DKMT_UNREGISTERTRIMNOTIFICATION){ .Handle = r1.Handle };
    CHECK_ST(D3DKMTUnregisterTrimNotification(&u), STATUS_INVALID_PARAMETER);
    conf_close(&c);
}

const struct test conf_notify_tests[] = {
    TEST(register_trim_checks_its_arguments),
    TEST(register_budget_change_checks_its_arguments),
    TEST(unregister_of_an_unknown_handle_is_invalid),
    TEST(host_trim_request_reaches_the_callback),
    TEST(periodic_trim_restarts_then_ticks),
    TEST(budget_change_reaches_the_callback),
    TEST(unregister_waits_for_a_running_callback),
    TEST(unregister_from_inside_the_callback_returns),
    TEST(unregister_by_callback_removes_each_of_its_registrations),
};
CONF_COUNT(conf_notify_tests);
