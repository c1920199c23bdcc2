/* SPDX-License-Identifier: MIT */
/*
 * The loopback transport: the device engine (hw-device/core) running inside
 * the calling process, with a memfd aperture. It is the one place where
 * guest code meets the engine, and it lives in its own library
 * (libvkmt-loopback) that libvkmt loads on demand, so the guest library
 * proper never links the engine. Register accesses become engine calls and a
 * doorbell processes the queue before the write returns.
 *
 * VKMT_LOOPBACK configures the device the way -device vkmt,... would:
 * "queues=N,aperture=SIZE,budget=SIZE,features=MASK,nonlocal=SIZE" (sizes
 * take K/M/G; nonlocal is the non-local segment, 256M as on the device).
 * VKMT_LOOPBACK_BACKEND picks what holds allocation content: "mem" (host
 * memory, the default) or "virgl" (GPU buffer resources through
 * virglrenderer, docs/VIRGL.md; built when VKMT_WITH_VIRGL is defined,
 * that is unless ./configure --without-virgl).
 * The device lives while any adapter has it open; the next open after the
 * last close gets a fresh one.
 *
 * The engine is not thread-safe: one mutex serializes every call into it,
 * as the QEMU glue's lock does, because besides the library's thunks the
 * host's controls (vkmt_loopback_host, for tests and tools playing the
 * host's part) may come from any thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef VKMT_WITH_VIRGL
#include "backend_virgl.h"
#endif
#include "vkmt_backend.h"
#include "vkmt_core.h"
#include "vkmt_internal.h"
#include "vkmt_proto.h"

#define DEFAULT_QUEUES 8u
#define DEFAULT_APERTURE (256ull << 20)
#define DEFAULT_NONLOCAL (256ull << 20)
#define LOOPBACK_LUID 0x00000000766b6d74ull /* "tmkv": one fixed device */

struct loopback {
    struct vkmt_transport t;
    struct vkmt_core *core;
    struct vkmt_backend *backend;
    unsigned refs;
};

static struct loopback *dev;
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(void *opaque, const char *msg)
{
    (void)opaque;
    if (secure_getenv("VKMT_DEBUG")) {
        fprintf(stderr, "vkmt-loopback: guest error: %s\n", msg);
    }
}

static const struct vkmt_core_ops core_ops = {
    .guest_error = report,
};

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s) {
        return -EINVAL;
    }
    switch (*end) {
    case 'G':
    case 'g':
        v <<= 10; /* fall through */
    case 'M':
    case 'm':
        v <<= 10; /* fall through */
    case 'K':
    case 'k':
        v <<= 10;
        end++;
        break;
    default:
        break;
    }
    if (*end) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_config(struct vkmt_core_config *cfg, uint64_t *aperture)
{
    const char *env = secure_getenv("VKMT_LOOPBACK");
    char *copy, *save = NULL;
    int err = 0;

    cfg->num_queues = DEFAULT_QUEUES;
    cfg->features = VKMT_F_KNOWN;
    cfg->nonlocal_size = DEFAULT_NONLOCAL;
    *aperture = DEFAULT_APERTURE;
    if (!env || !*env) {
        return 0;
    }
    copy = strdup(env);
    if (!copy) {
        return -ENOMEM;
    }
    for (char *kv = strtok_r(copy, ",", &save); kv && !err; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        uint64_t v;

        if (!eq || parse_size(eq + 1, &v) < 0) {
            err = -EINVAL;
        } else if (!strncmp(kv, "queues=", 7)) {
            cfg->num_queues = v <= VKMT_MAX_QUEUES ? (uint32_t)v : 0;
        } else if (!strncmp(kv, "aperture=", 9)) {
            *aperture = v;
        } else if (!strncmp(kv, "budget=", 7)) {
            cfg->budget = v;
        } else if (!strncmp(kv, "features=", 9)) {
            cfg->features = (uint32_t)v;
        } else if (!strncmp(kv, "nonlocal=", 9)) {
            cfg->nonlocal_size = v;
        } else {
            err = -EINVAL;
        }
        if (err) {
            fprintf(stderr, "vkmt-loopback: bad VKMT_LOOPBACK item '%s'\n", kv);
        }
    }
    free(copy);
    return err;
}

/* The backend VKMT_LOOPBACK_BACKEND names; 0 or a negative errno, said why. */
static int create_backend(uint64_t aperture, struct vkmt_backend **out)
{
    const char *name = secure_getenv("VKMT_LOOPBACK_BACKEND");

    if (!name || !*name || !strcmp(name, "mem")) {
        return vkmt_backend_mem_create(aperture, -1, NULL, out);
    }
    if (strcmp(name, "virgl") != 0) {
        fprintf(stderr, "vkmt-loopback: VKMT_LOOPBACK_BACKEND=%s is unknown (mem, virgl)\n", name);
        return -EINVAL;
    }
#ifdef VKMT_WITH_VIRGL
    {
        char why[256];
        int err = vkmt_backend_virgl_create(aperture, -1, NULL, out, why, sizeof(why));

        if (err < 0) {
            fprintf(stderr, "vkmt-loopback: the virgl backend: %s\n", why);
        }
        return err;
    }
#else
    fprintf(stderr,
            "vkmt-loopback: VKMT_LOOPBACK_BACKEND=virgl, but this library was built "
            "without the virgl backend (./configure --without-virgl, or no virglrenderer)\n");
    return -ENOTSUP;
#endif
}

static void destroy(struct loopback *lb)
{
    vkmt_core_destroy(lb->core);
    vkmt_backend_destroy(lb->backend);
    if (lb->t.ctrl) {
        munmap(lb->t.ctrl, lb->t.ctrl_size);
    }
    free(lb);
}

static int create(struct loopback **out)
{
    struct vkmt_core_config cfg = { 0 };
    struct loopback *lb;
    uint64_t aperture;
    int err = parse_config(&cfg, &aperture);

    if (err < 0) {
        return err;
    }
    lb = calloc(1, sizeof(*lb));
    if (!lb) {
        return -ENOMEM;
    }
    lb->t.ctrl_size = vkmt_core_ctrl_size(cfg.num_queues);
    lb->t.ctrl = mmap(NULL, lb->t.ctrl_size ? lb->t.ctrl_size : 1, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (lb->t.ctrl == MAP_FAILED) {
        lb->t.ctrl = NULL;
        destroy(lb);
        return -ENOMEM;
    }
    err = create_backend(aperture, &lb->backend);
    if (!err) {
#ifdef VKMT_WITH_VIRGL
        cfg.budget = vkmt_backend_virgl_budget(lb->backend, cfg.budget);
#endif
        err = vkmt_core_create(&cfg, lb->backend, lb->t.ctrl, &core_ops, lb, &lb->core);
    }
    if (err) {
        fprintf(stderr, "vkmt-loopback: cannot create the device: %s\n", strerror(-err));
        destroy(lb);
        return err;
    }
    lb->t.aperture = lb->backend->base;
    lb->t.aperture_size = lb->backend->size;
    lb->t.luid = LOOPBACK_LUID;
    *out = lb;
    return 0;
}

static uint32_t lb_count(void)
{
    return 1;
}

static int lb_open(uint32_t index, struct vkmt_transport **out);

static void lb_close(struct vkmt_transport *t)
{
    struct loopback *lb = (struct loopback *)t;

    pthread_mutex_lock(&engine_lock);
    if (--lb->refs == 0) {
        dev = NULL;
        destroy(lb);
    }
    pthread_mutex_unlock(&engine_lock);
}

static uint32_t lb_reg_read(struct vkmt_transport *t, uint32_t off)
{
    uint32_t v;

    pthread_mutex_lock(&engine_lock);
    v = vkmt_core_reg_read(((struct loopback *)t)->core, off);
    pthread_mutex_unlock(&engine_lock);
    return v;
}

static void lb_reg_write(struct vkmt_transport *t, uint32_t off, uint32_t val)
{
    pthread_mutex_lock(&engine_lock);
    vkmt_core_reg_write(((struct loopback *)t)->core, off, val);
    pthread_mutex_unlock(&engine_lock);
}

/*
 * The host's side of the device, as QMP sets -device vkmt's properties:
 * @prop is "trim", "trim-notify" or "budget" (DEVICE.md), "queue-budget:Q"
 * for queue Q's own budget (queue-budget "Q:SIZE"), or "periodic-trim"
 * with @value 1 for a restart and 0 for a tick of the period. Returns 0,
 * -ENODEV when no adapter has the device open, -EINVAL for an unknown
 * @prop, or what vkmt_core_set_queue_budget returns.
 */
__attribute__((visibility("default"))) int vkmt_loopback_host(const char *prop, uint64_t value)
{
    int err = 0;

    pthread_mutex_lock(&engine_lock);
    if (!dev) {
        err = -ENODEV;
    } else if (!strcmp(prop, "trim")) {
        vkmt_core_trim(dev->core, value ? value : UINT64_MAX);
    } else if (!strcmp(prop, "trim-notify")) {
        vkmt_core_trim_notify(dev->core, value ? value : UINT64_MAX);
    } else if (!strcmp(prop, "budget")) {
        vkmt_core_set_budget(dev->core, value);
    } else if (!strncmp(prop, "queue-budget:", 13)) {
        char *end;
        unsigned long q = strtoul(prop + 13, &end, 10);

        err = end == prop + 13 || *end || q >= VKMT_MAX_QUEUES
                  ? -EINVAL
                  : vkmt_core_set_queue_budget(dev->core, (uint32_t)q, value);
    } else if (!strcmp(prop, "periodic-trim")) {
        vkmt_core_periodic_trim(dev->core, value != 0);
    } else {
        err = -EINVAL;
    }
    pthread_mutex_unlock(&engine_lock);
    return err;
}

__attribute__((visibility("default"))) const struct vkmt_transport_ops vkmt_loopback_transport = {
    .name = "loopback",
    .count = lb_count,
    .open = lb_open,
    .close = lb_close,
    .reg_read = lb_reg_read,
    .reg_write = lb_reg_write,
};

#ifdef VKMT_WITH_VIRGL
__attribute__((visibility("default"))) int vkmt_loopback_virgl_info(struct vkmt_virgl_info *out)
{
    return dev ? vkmt_backend_virgl_info(dev->backend, out) : -ENODEV;
}
#endif

static int lb_open(uint32_t index, struct vkmt_transport **out)
{
    int err = 0;

    if (index != 0) {
        return -ENODEV;
    }
    pthread_mutex_lock(&engine_lock);
    if (!dev) {
        err = create(&dev);
        if (err == 0) {
            dev->t.ops = &vkmt_loopback_transport;
            dev->t.lock_fd = -1; /* the engine is this process's alone: no reaping */
        }
    }
    if (err == 0) {
        dev->refs++;
        *out = &dev->t;
    }
    pthread_mutex_unlock(&engine_lock);
    return err;
}
