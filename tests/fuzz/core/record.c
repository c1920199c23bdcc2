/* SPDX-License-Identifier: MIT */
/*
 * A recording loopback transport, for seeding the device-engine fuzzer from
 * real command traces. Built as a shared library that exports
 * vkmt_loopback_transport with the layout of guest-lib/src/transport.h, it
 * is what libvkmt loads when VKMT_LOOPBACK_LIB names it: like
 * guest-lib/loopback/loopback.c it runs the engine in process, but the device
 * always has the fuzzer's largest shape (two queues, 128 pages, both
 * features), and every register access and every submitted entry is also
 * written down as fuzzer operations (fuzz_input.h). Handles in entries
 * become selectors ("the k-th live device of this queue") by following the
 * completions, so a seed replays the same objects on the harness's fresh
 * device. Each device lifetime (open to last close; a conformance test)
 * becomes one file in $VKMT_FUZZ_RECORD_DIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz_input.h"
#include "vkmt_backend.h"
#include "vkmt_core.h"
#include "vkmt_internal.h"
#include "vkmt_proto.h"
#include "vkmt_shmem.h"

#define QUEUES 2u
#define PAGES_BYTE 120u /* FZ_PAGES_MIN + 120 = 128 pages */
#define APERTURE ((uint64_t)(FZ_PAGES_MIN + PAGES_BYTE) * VKMT_PAGE_SIZE)
#define LUID 0x00000000766b6d74ull
#define NONE UINT32_MAX

enum kind { K_DEVICE, K_PQ, K_SYNC, K_ALLOC, K_RES };

/* What the harness's model will hold, in its creation order. */
struct robj {
    uint32_t handle;
    uint8_t kind;
    uint8_t queue;
    bool live;
    uint32_t parent;
    uint32_t nmembers; /* a resource: its members follow it */
};

/* One entry taken from the ring before the engine consumed it. */
struct entry {
    struct vkmt_sqe sqe;
    uint8_t payload[FZ_MAX_ELEMS * sizeof(struct vkmt_alloc_desc)];
};

static struct recorder {
    struct vkmt_transport t;
    struct vkmt_core *core;
    struct vkmt_backend *backend;
    unsigned refs;
    uint32_t tail[QUEUES], cq[QUEUES];
    struct robj *objs;
    uint32_t nobjs, cap;
    uint8_t *out;
    size_t len, size;
} * R;

static unsigned files; /* seeds written by this process */

/* The engine and the seed, as loopback's engine lock: libvkmt's event
 * thread reads registers beside the test's own calls. */
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;

static void put(uint8_t b)
{
    if (R->len == R->size) {
        uint8_t *bigger = realloc(R->out, R->size ? R->size * 2 : 4096);

        if (!bigger) {
            abort();
        }
        R->out = bigger;
        R->size = R->size ? R->size * 2 : 4096;
    }
    R->out[R->len++] = b;
}

static void put32(uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        put((uint8_t)(v >> (8 * i)));
    }
}

static uint32_t obj_add(uint32_t handle, uint8_t kind, uint32_t q, uint32_t parent)
{
    if (R->nobjs == R->cap) {
        struct robj *bigger = realloc(R->objs, (R->cap ? R->cap * 2 : 256) * sizeof(*bigger));

        if (!bigger) {
            abort();
        }
        R->objs = bigger;
        R->cap = R->cap ? R->cap * 2 : 256;
    }
    R->objs[R->nobjs] = (struct robj){ handle, kind, (uint8_t)q, true, parent, 0 };
    return R->nobjs++;
}

static uint32_t lookup(uint32_t handle, uint8_t kind, uint32_t q)
{
    for (uint32_t i = 0; handle && i < R->nobjs; i++) {
        const struct robj *o = &R->objs[i];

        if (o->live && o->handle == handle) {
            return o->kind == kind && o->queue == q ? i : NONE;
        }
    }
    return NONE;
}

/* Kill @i and whatever hangs off it (a device's objects, a pq's sync). */
static void obj_kill(uint32_t i)
{
    R->objs[i].live = false;
    for (uint32_t k = i + 1; k < R->nobjs; k++) {
        if (R->objs[k].live && R->objs[k].parent == i) {
            obj_kill(k);
        }
    }
}

/* The selector byte that makes the harness pick @handle (fuzz_input.h). */
static void put_sel(uint32_t handle, uint8_t kind, uint32_t q, uint32_t dev)
{
    uint32_t n = 0;

    for (uint32_t i = 0; handle && i < R->nobjs; i++) {
        const struct robj *o = &R->objs[i];

        if (!o->live || o->kind != kind || o->queue != q ||
            (dev != NONE && (kind == K_ALLOC || kind == K_RES) && o->parent != dev)) {
            continue;
        }
        if (o->handle == handle && n < FZ_SEL_ANY) {
            put((uint8_t)n);
            return;
        }
        n++;
    }
    if (handle == 0) {
        put(FZ_SEL_ZERO);
        return;
    }
    put(FZ_SEL_LITERAL);
    put32(handle);
}

static uint8_t size_byte(uint64_t size)
{
    uint64_t pages = (size + VKMT_PAGE_SIZE - 1) / VKMT_PAGE_SIZE, slack;

    if (size == 0) {
        return FZ_SIZE_ZERO;
    }
    if (size > APERTURE) {
        return FZ_SIZE_OVER;
    }
    if (size == APERTURE) {
        return FZ_SIZE_APERTURE;
    }
    slack = pages * VKMT_PAGE_SIZE - size;
    if (slack && pages <= 16) {
        return (uint8_t)((pages - 1) | ((slack + 255) / 511 > 7 ? 7 : (slack + 255) / 511) << 4);
    }
    return (uint8_t)(0x80 + (pages > 112 ? 111 : pages - 1));
}

/* The descriptor operand that reproduces a texture or malformed descriptor
 * @d exactly, else the nearest malformed one. */
static uint8_t shape_byte(const struct vkmt_alloc_desc *d)
{
    for (unsigned b = FZ_SIZE_TEX_NO_FLAG; b <= FZ_SIZE_BAD_FLAGS; b++) {
        struct vkmt_alloc_desc c = fz_desc((uint8_t)b, APERTURE, 0);

        if (!memcmp(&c, d, sizeof(c))) {
            return (uint8_t)b;
        }
    }
    return d->flags ? FZ_SIZE_BAD_FLAGS : FZ_SIZE_BAD_RESERVED;
}

/* Whether the entry is one a structured operation reproduces field for field. */
static bool plain(const struct vkmt_sqe *s)
{
    static const uint8_t zero[16];

    bool array = s->opcode == VKMT_OP_CREATE_ALLOCATIONS || s->opcode == VKMT_OP_OFFER ||
                 s->opcode == VKMT_OP_RECLAIM ||
                 (s->opcode == VKMT_OP_DESTROY_ALLOCATIONS && !s->arg0);

    /* Larger batches are cut to FZ_MAX_ELEMS elements: the same command, smaller. */
    return !s->reserved0 && !memcmp(s->reserved1, zero, sizeof(zero)) && s->opcode >= 1 &&
           s->opcode <= VKMT_OP_MAX && (!array || s->count);
}

static uint32_t elem(const struct entry *e, uint32_t i)
{
    uint32_t v;

    memcpy(&v, e->payload + 4 * i, sizeof(v));
    return v;
}

/* Write one entry as an operation, with the selectors of the state now. */
static void put_entry(uint32_t q, const struct entry *e, uint8_t mod)
{
    const struct vkmt_sqe *s = &e->sqe;
    uint32_t n = s->count < FZ_MAX_ELEMS ? s->count : FZ_MAX_ELEMS, dev, p;
    bool res = s->flags & VKMT_SQE_F_RESOURCES;

    mod |= s->flags & VKMT_SQE_F_IRQ ? FZ_MOD_IRQ : 0;
    dev = lookup(s->handle, K_DEVICE, q);
    if (!plain(s)) {
        put(FZ_OP_RAW_SQE);
        put((uint8_t)q);
        put(mod);
        for (size_t i = 0; i < sizeof(*s); i++) {
            put(((const uint8_t *)s)[i]);
        }
        return;
    }
    switch (s->opcode) {
    case VKMT_OP_CREATE_DEVICE:
        put(FZ_OP_CREATE_DEVICE);
        put((uint8_t)q);
        put(mod);
        break;
    case VKMT_OP_DESTROY_DEVICE:
        put(FZ_OP_DESTROY_DEVICE);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_DEVICE, q, NONE);
        break;
    case VKMT_OP_CREATE_PAGING_QUEUE:
        put(FZ_OP_CREATE_PQ);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_DEVICE, q, NONE);
        put((int32_t)s->arg0 >= -2 && (int32_t)s->arg0 <= 2 ? (uint8_t)((int32_t)s->arg0 + 2)
                                                            : 0xff);
        break;
    case VKMT_OP_DESTROY_PAGING_QUEUE:
        put(FZ_OP_DESTROY_PQ);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_PQ, q, NONE);
        break;
    case VKMT_OP_CREATE_ALLOCATIONS:
        put(FZ_OP_CREATE_ALLOCS);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_DEVICE, q, NONE);
        put(s->flags & VKMT_SQE_F_CREATE_RESOURCE ? 1 : 0);
        put((uint8_t)(n - 1));
        for (uint32_t i = 0; i < n; i++) {
            struct vkmt_alloc_desc d;

            memcpy(&d, e->payload + i * sizeof(d), sizeof(d));
            put(d.flags || d.dims ? shape_byte(&d) : size_byte(d.size));
        }
        break;
    case VKMT_OP_DESTROY_ALLOCATIONS:
        if (s->arg0) {
            put(FZ_OP_DESTROY_RESOURCE);
            put((uint8_t)q);
            put(mod);
            put_sel(s->handle, K_DEVICE, q, NONE);
            put_sel(s->arg0, K_RES, q, dev);
            break;
        }
        put(FZ_OP_DESTROY_ALLOCS);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_DEVICE, q, NONE);
        put((uint8_t)(n - 1));
        for (uint32_t i = 0; i < n; i++) {
            put_sel(elem(e, i), K_ALLOC, q, dev);
        }
        break;
    case VKMT_OP_LOCK:
    case VKMT_OP_UNLOCK:
        put(s->opcode == VKMT_OP_LOCK ? FZ_OP_LOCK : FZ_OP_UNLOCK);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_DEVICE, q, NONE);
        put_sel(s->arg0, K_ALLOC, q, dev);
        break;
    case VKMT_OP_OFFER:
        put(FZ_OP_OFFER);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_DEVICE, q, NONE);
        put(res ? 1 : 0);
        put(s->arg0 >= 1 && s->arg0 <= 4 ? (uint8_t)(s->arg0 - 1)
                                         : (uint8_t)(0xf0 | (s->arg0 & 15)));
        put((uint8_t)((s->arg1 & 3) | (s->arg1 & ~3u ? 0x80 : 0)));
        put((uint8_t)(n - 1));
        for (uint32_t i = 0; i < n; i++) {
            put_sel(elem(e, i), res ? K_RES : K_ALLOC, q, dev);
        }
        break;
    case VKMT_OP_RECLAIM: {
        uint8_t f = (res ? FZ_RF_RESOURCES : 0) |
                    (s->flags & VKMT_SQE_F_PAGING_QUEUE ? FZ_RF_PAGING_QUEUE : 0) |
                    (s->flags & VKMT_SQE_F_WRITE_RESULTS ? FZ_RF_WRITE_RESULTS : 0) |
                    (s->flags & VKMT_SQE_F_RECOMMIT ? FZ_RF_RECOMMIT : 0);

        put(FZ_OP_RECLAIM);
        put((uint8_t)q);
        put(mod);
        put(f);
        if (f & FZ_RF_PAGING_QUEUE) {
            put_sel(s->handle, K_PQ, q, NONE);
            p = lookup(s->handle, K_PQ, q);
            dev = p == NONE ? NONE : R->objs[p].parent;
        } else {
            put_sel(s->handle, K_DEVICE, q, NONE);
        }
        put((uint8_t)(n - 1));
        for (uint32_t i = 0; i < n; i++) {
            put_sel(elem(e, i), res ? K_RES : K_ALLOC, q, dev);
        }
        break;
    }
    case VKMT_OP_QUERY_MEMORY:
        put(FZ_OP_QUERY_MEMORY);
        put((uint8_t)q);
        put(mod);
        put(s->arg0 < 2 ? (uint8_t)s->arg0 : 0xff);
        break;
    case VKMT_OP_QUERY_FENCE:
        put(FZ_OP_QUERY_FENCE);
        put((uint8_t)q);
        put(mod);
        put_sel(s->handle, K_SYNC, q, NONE);
        break;
    case VKMT_OP_TRIM:
        put(FZ_OP_TRIM_CMD);
        put((uint8_t)q);
        put(mod);
        put(s->arg64 / FZ_BYTE_UNIT > 0xff ? 0xff : (uint8_t)(s->arg64 / FZ_BYTE_UNIT));
        break;
    default:
        put(FZ_OP_QUERY_STATS);
        put((uint8_t)q);
        put(mod);
        put(0);
        break;
    }
}

/* Follow the completion of @e into the object list the harness will hold. */
static void follow(uint32_t q, const struct entry *e, const struct vkmt_cqe *c, const uint8_t *st)
{
    const struct vkmt_sqe *s = &e->sqe;
    uint32_t dev = lookup(s->handle, K_DEVICE, q), x;

    if (c->status != VKMT_ST_SUCCESS) {
        return;
    }
    switch (s->opcode) {
    case VKMT_OP_CREATE_DEVICE:
        obj_add((uint32_t)c->value0, K_DEVICE, q, NONE);
        break;
    case VKMT_OP_CREATE_PAGING_QUEUE:
        x = obj_add((uint32_t)c->value0, K_PQ, q, dev);
        obj_add((uint32_t)c->value1, K_SYNC, q, x);
        break;
    case VKMT_OP_CREATE_ALLOCATIONS:
        if (s->flags & VKMT_SQE_F_CREATE_RESOURCE) {
            x = obj_add((uint32_t)c->value0, K_RES, q, dev);
            R->objs[x].nmembers = s->count;
        }
        for (uint32_t i = 0; i < s->count; i++) {
            uint32_t h;

            memcpy(&h, st + s->result_off + 4 * i, sizeof(h));
            obj_add(h, K_ALLOC, q, dev);
        }
        break;
    case VKMT_OP_DESTROY_DEVICE:
        obj_kill(dev);
        break;
    case VKMT_OP_DESTROY_PAGING_QUEUE:
        obj_kill(lookup(s->handle, K_PQ, q));
        break;
    case VKMT_OP_DESTROY_ALLOCATIONS:
        if (s->arg0) {
            uint32_t r = lookup(s->arg0, K_RES, q);

            for (uint32_t i = r; i <= r + R->objs[r].nmembers; i++) {
                R->objs[i].live = false;
            }
        } else {
            for (uint32_t i = 0; i < s->count && i < FZ_MAX_ELEMS; i++) {
                R->objs[lookup(elem(e, i), K_ALLOC, q)].live = false;
            }
        }
        break;
    default:
        break;
    }
}

static void doorbell(uint32_t q, uint32_t val)
{
    uint8_t *base = R->t.ctrl + (size_t)q * VKMT_QUEUE_STRIDE;
    const struct vkmt_sqe *sq = (const struct vkmt_sqe *)(base + VKMT_QUEUE_SQ_OFF);
    const struct vkmt_cqe *cq = (const struct vkmt_cqe *)(base + VKMT_QUEUE_CQ_OFF);
    uint8_t *st = base + VKMT_QUEUE_STAGING_OFF;
    uint32_t n = val - R->tail[q];
    static struct entry e[VKMT_QUEUE_DEPTH];

    if (n == 0 || n > VKMT_QUEUE_DEPTH) {
        put(FZ_OP_DOORBELL);
        put((uint8_t)q);
        put((uint8_t)n);
        vkmt_core_reg_write(R->core, VKMT_REG_DOORBELL(q), val);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct vkmt_sqe *s = &sq[(R->tail[q] + i) % VKMT_QUEUE_DEPTH];
        uint32_t len =
            s->payload_len < sizeof(e[i].payload) ? s->payload_len : sizeof(e[i].payload);

        e[i].sqe = *s;
        memset(e[i].payload, 0, sizeof(e[i].payload));
        if (s->payload_off <= VKMT_STAGING_SIZE - len) {
            memcpy(e[i].payload, st + s->payload_off, len);
        }
        put_entry(q, &e[i], i + 1 < n ? FZ_MOD_BATCH : 0);
    }
    vkmt_core_reg_write(R->core, VKMT_REG_DOORBELL(q), val);
    for (uint32_t i = 0; i < n; i++) {
        const struct vkmt_cqe *c = &cq[R->cq[q] % VKMT_QUEUE_DEPTH];

        R->cq[q]++;
        follow(q, &e[i], c, st);
    }
    R->tail[q] = val;
}

static void on_event(void *opaque, const struct vkmt_event *ev)
{
    (void)opaque;
    if (ev->type == VKMT_EV_QUEUE_RELEASE) {
        for (uint32_t i = 0; i < R->nobjs; i++) {
            if (R->objs[i].queue == ev->queue) {
                R->objs[i].live = false;
            }
        }
    }
}

static const struct vkmt_core_ops core_ops = {
    .event = on_event,
};

static void save(void)
{
    const char *dir = getenv("VKMT_FUZZ_RECORD_DIR");
    char path[4096];
    FILE *f;

    if (!dir || R->len <= FZ_HDR_LEN) {
        return;
    }
    snprintf(path, sizeof(path), "%s/conf-%03u", dir, ++files);
    f = fopen(path, "wb");
    if (!f || fwrite(R->out, 1, R->len, f) != R->len || fclose(f) != 0) {
        fprintf(stderr, "vkmt-record: cannot write %s: %s\n", path, strerror(errno));
    }
}

static void destroy(void)
{
    save();
    vkmt_core_destroy(R->core);
    vkmt_backend_destroy(R->backend);
    munmap(R->t.ctrl, R->t.ctrl_size);
    free(R->objs);
    free(R->out);
    free(R);
    R = NULL;
}

static int create(void)
{
    struct vkmt_core_config cfg = { .num_queues = QUEUES, .features = VKMT_F_KNOWN };
    int err;

    R = calloc(1, sizeof(*R));
    if (!R) {
        return -ENOMEM;
    }
    R->t.ctrl_size = vkmt_core_ctrl_size(QUEUES);
    R->t.ctrl =
        mmap(NULL, R->t.ctrl_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (R->t.ctrl == MAP_FAILED) {
        free(R);
        R = NULL;
        return -ENOMEM;
    }
    err = vkmt_backend_mem_create(APERTURE, -1, NULL, &R->backend);
    if (!err) {
        err = vkmt_core_create(&cfg, R->backend, R->t.ctrl, &core_ops, NULL, &R->core);
    }
    if (err) {
        fprintf(stderr, "vkmt-record: cannot create the device: %s\n", strerror(-err));
        vkmt_backend_destroy(R->backend);
        munmap(R->t.ctrl, R->t.ctrl_size);
        free(R);
        R = NULL;
        return err;
    }
    R->t.aperture = R->backend->base;
    R->t.aperture_size = R->backend->size;
    R->t.luid = LUID;
    /* As loopback's: no other process shares the queues, so none is reaped
     * (0 would name standard input as the queues' lock file). */
    R->t.lock_fd = -1;
    /* The seed's header: this device, brought up by the recorded guest. */
    put(FZ_CFG_TWO_QUEUES | FZ_CFG_NO_BRINGUP | FZ_CFG_FEATURES_MASK << FZ_CFG_FEATURES_SHIFT);
    put(PAGES_BYTE);
    put(0);
    put(0);
    put(0);
    return 0;
}

static uint32_t rec_count(void)
{
    return 1;
}

static uint32_t rec_reg_read(struct vkmt_transport *t, uint32_t off)
{
    uint32_t v;

    (void)t;
    pthread_mutex_lock(&rec_lock);
    v = vkmt_core_reg_read(R->core, off);
    if (off == VKMT_REG(queue_claim)) {
        put(FZ_OP_CLAIM);
        if (v < QUEUES) {
            R->tail[v] = R->cq[v] = 0;
        }
    } else if (off % 4 == 0 && off < 0x200) {
        put(FZ_OP_REG_READ);
        put((uint8_t)(off / 4));
    }
    pthread_mutex_unlock(&rec_lock);
    return v;
}

static void rec_reg_write(struct vkmt_transport *t, uint32_t off, uint32_t val)
{
    (void)t;
    pthread_mutex_lock(&rec_lock);
    if (off >= VKMT_REG(sq_doorbell) && off < VKMT_REG_DOORBELL(QUEUES) && off % 4 == 0) {
        doorbell((off - VKMT_REG(sq_doorbell)) / 4, val);
        pthread_mutex_unlock(&rec_lock);
        return;
    }
    if (off == VKMT_REG(status) && val <= 0xff) {
        put(FZ_OP_STATUS);
        put((uint8_t)val);
    } else if (off == VKMT_REG(queue_release) && val <= 0xff) {
        put(FZ_OP_RELEASE);
        put((uint8_t)val);
    } else if (off == VKMT_REG(queue_reap) && (val & 0xffu) < QUEUES) {
        uint32_t q = val & 0xffu;
        uint32_t seq = vkmt_sh_load(
            &((struct vkmt_queue_hdr *)(R->t.ctrl + (size_t)q * VKMT_QUEUE_STRIDE))->sh_claim_seq);

        put(FZ_OP_REAP);
        put((uint8_t)q);
        put((uint8_t)((val >> 8) - (seq & 0xffffffu)));
    } else if (off % 4 == 0 && off < 0x200) {
        put(FZ_OP_REG_WRITE);
        put((uint8_t)(off / 4));
        put32(val);
    }
    vkmt_core_reg_write(R->core, off, val);
    pthread_mutex_unlock(&rec_lock);
}

/* A byte operand of bytes / FZ_BYTE_UNIT, rounded up; 0 (everything): 0xff. */
static uint8_t unit_byte(uint64_t bytes)
{
    uint64_t b = (bytes + FZ_BYTE_UNIT - 1) / FZ_BYTE_UNIT;

    return bytes == 0 ? 0xff : b < 0xfe ? (uint8_t)b : 0xfe;
}

/*
 * The host's controls, as loopback's (transport.h), recorded as the
 * harness's host operations with the value rounded to its operand: the
 * conformance tests of the device events play the host through them.
 */
__attribute__((visibility("default"))) int vkmt_loopback_host(const char *prop, uint64_t value)
{
    int err = 0;

    pthread_mutex_lock(&rec_lock);
    if (!R) {
        err = -ENODEV;
    } else if (!strcmp(prop, "trim")) {
        put(FZ_OP_TRIM);
        put(unit_byte(value));
        vkmt_core_trim(R->core, value ? value : UINT64_MAX);
    } else if (!strcmp(prop, "trim-notify")) {
        put(FZ_OP_HOST_EVENT);
        put(0);
        put(unit_byte(value));
        vkmt_core_trim_notify(R->core, value ? value : UINT64_MAX);
    } else if (!strcmp(prop, "budget")) {
        put(FZ_OP_BUDGET);
        put(value / FZ_BYTE_UNIT < 0xff ? (uint8_t)(value / FZ_BYTE_UNIT) : 0xff);
        vkmt_core_set_budget(R->core, value);
    } else if (!strcmp(prop, "periodic-trim")) {
        put(FZ_OP_HOST_EVENT);
        put(value ? 2 : 1);
        put(0);
        vkmt_core_periodic_trim(R->core, value != 0);
    } else {
        err = -EINVAL;
    }
    pthread_mutex_unlock(&rec_lock);
    return err;
}

static int rec_open(uint32_t index, struct vkmt_transport **out);

static void rec_close(struct vkmt_transport *t)
{
    (void)t;
    pthread_mutex_lock(&rec_lock);
    if (--R->refs == 0) {
        destroy();
    }
    pthread_mutex_unlock(&rec_lock);
}

__attribute__((visibility("default"))) const struct vkmt_transport_ops vkmt_loopback_transport = {
    .name = "loopback",
    .count = rec_count,
    .open = rec_open,
    .close = rec_close,
    .reg_read = rec_reg_read,
    .reg_write = rec_reg_write,
};

static int rec_open(uint32_t index, struct vkmt_transport **out)
{
    if (index != 0) {
        return -ENODEV;
    }
    pthread_mutex_lock(&rec_lock);
    if (!R) {
        int err = create();

        if (err < 0) {
            pthread_mutex_unlock(&rec_lock);
            return err;
        }
        R->t.ops = &vkmt_loopback_transport;
    }
    R->refs++;
    *out = &R->t;
    pthread_mutex_unlock(&rec_lock);
    return 0;
}
