/* SPDX-License-Identifier: MIT */
/*
 * The seed corpus of vkmt-fuzz, generated: each workload below is the command
 * sequence of a real use of the device (the flows of the device's qtest and
 * of the conformance suite: bring-up, devices, allocations, lock, offers at
 * each priority, trims from the host and the guest, reclaims with results,
 * resources, paging queues and fences, budgets, resets, queue reaping,
 * interrupts) or of a known abuse (the qtest's malformed commands, register
 * abuse, garbage rings), encoded in the target's input format (vkmt_fuzz.h).
 * The encoder mirrors the target's handle pool, so a command names "the
 * second allocation created" the way the target will resolve it.
 *
 * It also writes the regression inputs of fixed findings (crashes/): inputs
 * that crashed, hung or broke a check of a port target before the fix.
 *
 * Usage: vkmt-fuzz-seeds DIR [CRASH_DIR]  (writes DIR/seed-<workload>, one
 * file each, and CRASH_DIR/<finding>)
 */
#define _GNU_SOURCE /* memmem */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkmt_fuzz.h"
#include "vkmt_proto.h"

#define PAGE VKMT_PAGE_SIZE
#define NQUEUES 4 /* as the target's device */
/* What the target's device offers (guest-trim on), and what the seeds' driver
 * takes. */
#define OFFERED                                                                \
    (VKMT_F_GUEST_TRIM | VKMT_F_RESOURCES | VKMT_F_TEXTURES |                  \
     VKMT_F_RESIDENCY | VKMT_F_EVENTS | VKMT_F_QUEUE_STATS)
#define FEATURES (VKMT_F_GUEST_TRIM | VKMT_F_RESOURCES)
/* A 1.2 driver: residency and device events (and 1.3's per-queue figures). */
#define FEATURES_1_2                                                           \
    (FEATURES | VKMT_F_RESIDENCY | VKMT_F_EVENTS | VKMT_F_QUEUE_STATS)

struct seed {
    uint8_t buf[1 << 16];
    size_t len;
    uint32_t npool; /* handles the target will have harvested */
    bool driver_ok;
    bool busy[NQUEUES];     /* queues claimed, as the device sees them */
    uint8_t order[NQUEUES]; /* the target's claimed list: queue indices */
    uint32_t nclaimed;
};

static void fail(const char *what)
{
    fprintf(stderr, "vkmt-fuzz-seeds: %s\n", what);
    exit(1);
}

static void append(struct seed *s, const void *p, size_t n)
{
    if (s->len + n > sizeof(s->buf)) {
        fail("seed too long");
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

/*
 * One operation. Trailing zero bytes of a record are left out (the target
 * reads a short record as zero-padded) unless data follows it.
 */
static void emit_data(struct seed *s, uint8_t op, const void *rec, size_t n,
                      const void *data, size_t dn)
{
    const uint8_t *r = rec;

    if (!dn) {
        while (n && r[n - 1] == 0) {
            n--;
        }
    }
    if (memmem(r, n, VF_SEPARATOR, VF_SEPARATOR_LEN) ||
        (dn && memmem(data, dn, VF_SEPARATOR, VF_SEPARATOR_LEN))) {
        fail("a record holds the separator");
    }
    if (s->len) {
        append(s, VF_SEPARATOR, VF_SEPARATOR_LEN);
    }
    append(s, &op, 1);
    append(s, r, n);
    append(s, data, dn);
}

static void emit(struct seed *s, uint8_t op, const void *rec, size_t n)
{
    emit_data(s, op, rec, n, NULL, 0);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Pool selector of the @i-th handle harvested (oldest first). */
static uint8_t P(uint32_t i)
{
    if (i >= 0x7f) {
        fail("pool index out of selector range");
    }
    return (uint8_t)(i + 1);
}

static void harvested(struct seed *s, uint32_t n)
{
    s->npool = s->npool + n > VF_POOL_MAX ? VF_POOL_MAX : s->npool + n;
}

/* ---- the driver side ---- */

static void bring_up(struct seed *s, uint8_t features)
{
    emit(s, VF_OP_BRING_UP, &features, 1);
    s->driver_ok = (features & ~OFFERED) == 0;
}

/* Claim a queue; returns its selector (its place in the target's list). */
static uint8_t claim(struct seed *s)
{
    emit(s, VF_OP_CLAIM, NULL, 0);
    for (uint8_t q = 0; s->driver_ok && q < NQUEUES; q++) {
        if (!s->busy[q]) {
            s->busy[q] = true;
            for (uint8_t i = 0; i < s->nclaimed; i++) {
                if (s->order[i] == q) {
                    return i;
                }
            }
            s->order[s->nclaimed] = q;
            return (uint8_t)s->nclaimed++;
        }
    }
    fail("no queue to claim");
    return 0;
}

static void release(struct seed *s, uint8_t qsel)
{
    emit(s, VF_OP_RELEASE, &qsel, 1);
    s->busy[s->order[qsel]] = false;
}

static void device_reset(struct seed *s)
{
    memset(s->busy, 0, sizeof(s->busy));
    s->driver_ok = false;
}

static void cmd(struct seed *s, struct vf_cmd c)
{
    emit(s, VF_OP_CMD, &c, sizeof(c));
}

/* A CREATE_DEVICE that is expected to fail or to be ignored: nothing harvested.
 */
static void create_device_refused(struct seed *s, uint8_t q)
{
    cmd(s, (struct vf_cmd){ .q = q, .opcode = VKMT_OP_CREATE_DEVICE });
}

static uint32_t create_device(struct seed *s, uint8_t q)
{
    create_device_refused(s, q);
    harvested(s, 1);
    return s->npool - 1;
}

/* A CREATE_ALLOCATIONS expected to fail (no room, bad sizes): nothing
 * harvested. */
static void create_refused(struct seed *s, uint8_t q, uint32_t dev, uint16_t n,
                           uint32_t size, uint8_t sqe_flags)
{
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                            .flags = sqe_flags,
                            .hsel = P(dev),
                            .mode = VF_PAY_DESCS | VF_RESULTS,
                            .count = n,
                            .pval = size });
}

/* @n allocations of @size bytes (VF_VARY: x1, x2, x3); returns the first's pool
 * index. */
static uint32_t create(struct seed *s, uint8_t q, uint32_t dev, uint16_t n,
                       uint32_t size, uint8_t vary)
{
    uint32_t first;

    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                            .hsel = P(dev),
                            .mode = VF_PAY_DESCS | VF_RESULTS | vary,
                            .count = n,
                            .pval = size });
    first = s->npool;
    harvested(s, n < VF_HARVEST_MAX ? n : VF_HARVEST_MAX);
    return first;
}

/* @n 2D textures of @w x @h in @format (VF_SHAPE), @size bytes each; returns
 * the first's pool index, or nothing harvested when @refused. */
static uint32_t create_textures(struct seed *s, uint8_t q, uint32_t dev,
                                uint16_t n, uint32_t format, uint32_t w,
                                uint32_t h, uint32_t size, bool refused)
{
    uint32_t first = s->npool;

    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                            .hsel = P(dev),
                            .mode = VF_PAY_DESCS | VF_RESULTS | VF_SHAPE,
                            .count = n,
                            .pval = size,
                            .arg64 = VKMT_ALLOC_TEXTURE_FLAGS(format) |
                                     (uint64_t)VKMT_ALLOC_DIMS(w, h) << 32 });
    if (!refused) {
        harvested(s, n < VF_HARVEST_MAX ? n : VF_HARVEST_MAX);
    }
    return first;
}

/* A resource of @n allocations; returns the resource's pool index (members
 * follow). */
static uint32_t create_resource(struct seed *s, uint8_t q, uint32_t dev,
                                uint16_t n, uint32_t size)
{
    uint32_t res = s->npool;

    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                            .flags = VKMT_SQE_F_CREATE_RESOURCE,
                            .hsel = P(dev),
                            .mode = VF_PAY_DESCS | VF_RESULTS,
                            .count = n,
                            .pval = size });
    harvested(s, 1 + (n < VF_HARVEST_MAX ? n : VF_HARVEST_MAX));
    return res;
}

static void lock(struct seed *s, uint8_t q, uint32_t dev, uint32_t a)
{
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_LOCK, .hsel = P(dev), .asel = P(a) });
}

static void unlock(struct seed *s, uint8_t q, uint32_t dev, uint32_t a)
{
    cmd(s,
        (struct vf_cmd){
            .q = q, .opcode = VKMT_OP_UNLOCK, .hsel = P(dev), .asel = P(a) });
}

/* Element list: pool[first], pool[first + 1], ... */
static uint32_t list(uint32_t first)
{
    return (first & 0xff) | 1u << 8;
}

static void offer(struct seed *s, uint8_t q, uint32_t dev, uint32_t first,
                  uint16_t n, uint32_t prio, uint32_t flags, uint8_t sqe_flags)
{
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_OFFER,
                            .flags = sqe_flags,
                            .hsel = P(dev),
                            .aval = prio,
                            .arg1 = flags,
                            .mode = VF_PAY_HANDLES,
                            .count = n,
                            .pval = list(first) });
}

static void reclaim(struct seed *s, uint8_t q, uint32_t subject, uint32_t first,
                    uint16_t n, uint8_t sqe_flags)
{
    bool results = sqe_flags & VKMT_SQE_F_WRITE_RESULTS;

    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_RECLAIM,
                            .flags = sqe_flags,
                            .hsel = P(subject),
                            .mode = VF_PAY_HANDLES | (results ? VF_RESULTS : 0),
                            .count = n,
                            .pval = list(first) });
}

static void destroy(struct seed *s, uint8_t q, uint32_t dev, uint32_t first,
                    uint16_t n)
{
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                            .hsel = P(dev),
                            .mode = VF_PAY_HANDLES,
                            .count = n,
                            .pval = list(first) });
}

static void host(struct seed *s, uint8_t what, uint64_t val)
{
    uint8_t rec[VF_LEN_HOST] = { what };

    for (int i = 0; i < 8; i++) {
        rec[1 + i] = (uint8_t)(val >> (8 * i));
    }
    emit(s, VF_OP_HOST, rec, sizeof(rec));
    if (what == VF_HOST_RESET) {
        device_reset(s);
    }
}

static void reg_write(struct seed *s, uint16_t off, uint32_t val)
{
    uint8_t rec[VF_LEN_REG_WRITE] = { (uint8_t)off, (uint8_t)(off >> 8) };

    put32(rec + 2, val);
    emit(s, VF_OP_REG_WRITE, rec, sizeof(rec));
    if (off == VKMT_REG(status) && val == 0) {
        device_reset(s);
    }
}

static void reg_read(struct seed *s, uint16_t off)
{
    uint8_t rec[VF_LEN_REG_READ] = { (uint8_t)off, (uint8_t)(off >> 8) };

    emit(s, VF_OP_REG_READ, rec, sizeof(rec));
}

static void doorbell(struct seed *s, uint8_t q, uint8_t how, uint32_t val)
{
    uint8_t rec[VF_LEN_DOORBELL] = { q, how };

    put32(rec + 2, val);
    emit(s, VF_OP_DOORBELL, rec, sizeof(rec));
}

static void sqe_raw(struct seed *s, uint8_t q, struct vkmt_sqe sqe)
{
    uint8_t rec[VF_LEN_SQE_RAW] = { q };

    memcpy(rec + 1, &sqe, sizeof(sqe));
    emit(s, VF_OP_SQE_RAW, rec, sizeof(rec));
}

/* Raw bytes at byte @off of queue @qsel's region of control memory. */
static void ctrl_write(struct seed *s, uint8_t qsel, uint32_t off,
                       const void *data, size_t n)
{
    uint8_t rec[VF_LEN_CTRL_WRITE];

    put32(rec, s->order[qsel] * VKMT_QUEUE_STRIDE + off);
    emit_data(s, VF_OP_CTRL_WRITE, rec, sizeof(rec), data, n);
}

static void aperture(struct seed *s, uint32_t off, const void *data, size_t n)
{
    uint8_t rec[VF_LEN_APERTURE];

    put32(rec, off);
    emit_data(s, VF_OP_APERTURE, rec, sizeof(rec), data, n);
}

static void msix(struct seed *s, uint8_t how, uint16_t off, uint32_t val)
{
    uint8_t rec[VF_LEN_MSIX] = { how, (uint8_t)off, (uint8_t)(off >> 8) };

    put32(rec + 3, val);
    emit(s, VF_OP_MSIX, rec, sizeof(rec));
}

static void cfg_write(struct seed *s, uint8_t size_sel, uint8_t off,
                      uint32_t val)
{
    uint8_t rec[VF_LEN_CFG_WRITE] = { size_sel, off };

    put32(rec + 2, val);
    emit(s, VF_OP_CFG_WRITE, rec, sizeof(rec));
}

static void cfg_read(struct seed *s, uint8_t size_sel, uint8_t off)
{
    uint8_t rec[VF_LEN_CFG_READ] = { size_sel, off };

    emit(s, VF_OP_CFG_READ, rec, sizeof(rec));
}

/* Vector @vector's message to @off in @target (VF_AIM_*), with @data. */
static void aim(struct seed *s, uint8_t vector, uint8_t target, uint16_t off,
                uint32_t data)
{
    uint8_t rec[VF_LEN_AIM] = { vector, target, (uint8_t)off,
                                (uint8_t)(off >> 8) };

    put32(rec + 4, data);
    emit(s, VF_OP_AIM, rec, sizeof(rec));
}

/*
 * Hot-plug (VF_PLUG_*), as the port targets see it: a bus reset resets the
 * device; a power-off unplugs it, and the target forgets its claimed queues
 * (device_del alone only asks the guest to eject).
 */
static void plug(struct seed *s, uint8_t how)
{
    emit(s, VF_OP_PLUG, &how, 1);
    if (how == VF_PLUG_BUS_RESET || how == VF_PLUG_POWER_OFF) {
        device_reset(s);
    }
    if (how == VF_PLUG_POWER_OFF) {
        s->nclaimed = 0;
    }
}

/* A process: bring-up (unless the device is up), a queue, a device. */
static uint32_t open_device(struct seed *s, uint8_t *q)
{
    if (!s->driver_ok) {
        bring_up(s, FEATURES);
    }
    *q = claim(s);
    return create_device(s, *q);
}

static void fill_pattern(uint8_t *p, size_t n, uint8_t k)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 7 + k);
    }
}

/* ---- workloads ---- */

/* The qtest's lifecycle: fill, offer LOW and HIGH, host trim of one page,
 * reclaim. */
static void w_lifecycle(struct seed *s)
{
    uint8_t q, pat[64];
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 2, PAGE, 0);

    fill_pattern(pat, sizeof(pat), 3);
    for (uint32_t i = 0; i < 2; i++) {
        lock(s, q, dev, a + i);
        aperture(s, i * PAGE, pat, sizeof(pat));
        unlock(s, q, dev, a + i);
    }
    offer(s, q, dev, a, 1, VKMT_PRIO_LOW, 0, 0);
    offer(s, q, dev, a + 1, 1, VKMT_PRIO_HIGH, 0, 0);
    host(s, VF_HOST_STATS, 0);
    host(s, VF_HOST_TRIM, PAGE);
    reclaim(s, q, dev, a, 2, VKMT_SQE_F_WRITE_RESULTS);
    lock(s, q, dev, a);
    unlock(s, q, dev, a);
    host(s, VF_HOST_STATS, 0);
}

/* Every priority, then guest trims of growing size; reclaim everything. */
static void w_priorities(struct seed *s)
{
    static const uint32_t prio[] = { VKMT_PRIO_LOW, VKMT_PRIO_NORMAL,
                                     VKMT_PRIO_HIGH, VKMT_PRIO_AUTO };
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 8, PAGE, VF_VARY);

    for (uint32_t i = 0; i < 8; i++) {
        offer(s, q, dev, a + i, 1, prio[i % 4],
              i % 3 == 0 ? VKMT_OFFER_F_IMMEDIATE : 0, 0);
    }
    cmd(s, (struct vf_cmd){ .q = q, .opcode = VKMT_OP_TRIM, .arg64 = PAGE });
    cmd(s,
        (struct vf_cmd){ .q = q, .opcode = VKMT_OP_TRIM, .arg64 = 4 * PAGE });
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_STATS, .mode = VF_RESULTS });
    reclaim(s, q, dev, a, 8, VKMT_SQE_F_WRITE_RESULTS);
    cmd(s, (struct vf_cmd){ .q = q, .opcode = VKMT_OP_TRIM });
}

/* The budget over QMP: lowering it discards offered content, creation meets
 * pressure. */
static void w_budget(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 4, PAGE, 0);

    offer(s, q, dev, a, 2, VKMT_PRIO_NORMAL, 0, 0);
    host(s, VF_HOST_BUDGET, 3 * PAGE);
    reg_read(s, VKMT_REG(budget_lo));
    reg_read(s, VKMT_REG(config_generation));
    cmd(s, (struct vf_cmd){ .q = q, .opcode = VKMT_OP_QUERY_MEMORY });
    cmd(s,
        (struct vf_cmd){ .q = q, .opcode = VKMT_OP_QUERY_MEMORY, .aval = 1 });
    create_refused(s, q, dev, 2, PAGE,
                   0); /* no room: GRAPHICS_NO_VIDEO_MEMORY */
    offer(s, q, dev, a + 2, 2, VKMT_PRIO_LOW, 0, 0);
    create(s, q, dev, 1, 2 * PAGE, 0); /* fits after discarding */
    reclaim(s, q, dev, a, 4, VKMT_SQE_F_WRITE_RESULTS); /* NO_MEMORY */
    host(s, VF_HOST_BUDGET, 0);
    reclaim(s, q, dev, a, 4, VKMT_SQE_F_WRITE_RESULTS);
}

/* Filling the whole budget, then the aperture: both limits. */
static void w_pressure(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a =
        create(s, q, dev, 64, 8 * PAGE, 0); /* the whole 2 MiB budget */

    create_refused(s, q, dev, 1, PAGE, 0); /* over budget */
    offer(s, q, dev, a, 32, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0);
    offer(s, q, dev, a + 32, 32, VKMT_PRIO_NORMAL, 0, 0);
    create(s, q, dev, 32, 16 * PAGE, 0); /* evicts the LOW ones */
    reclaim(s, q, dev, a, 64, VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_STATS, .mode = VF_RESULTS });
}

/* AllowDecommit: NOT_COMMITTED, then RECOMMIT; destroy what is left. */
static void w_decommit(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 3, 2 * PAGE, 0);

    offer(s, q, dev, a, 3, VKMT_PRIO_AUTO, VKMT_OFFER_F_ALLOW_DECOMMIT, 0);
    host(s, VF_HOST_TRIM, 0);
    reclaim(s, q, dev, a, 1, VKMT_SQE_F_WRITE_RESULTS);
    reclaim(s, q, dev, a + 1, 1,
            VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    reclaim(s, q, dev, a + 2, 1, 0);
    lock(s, q, dev, a + 1);
    destroy(s, q, dev, a, 1);
    destroy(s, q, dev, a + 2, 1);
    unlock(s, q, dev, a + 1);
    destroy(s, q, dev, a + 1, 1);
}

/* Resources: offered and reclaimed as one, worst result, destroyed only whole.
 */
static void w_resources(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t r = create_resource(s, q, dev, 3, PAGE);
    uint32_t r2 = create_resource(s, q, dev, 2, 3 * PAGE);
    uint32_t solo = create(s, q, dev, 1, PAGE, 0);

    offer(s, q, dev, r, 1, VKMT_PRIO_LOW, 0, VKMT_SQE_F_RESOURCES);
    offer(s, q, dev, r2 + 1, 1, VKMT_PRIO_HIGH, 0, 0); /* a member alone */
    host(s, VF_HOST_TRIM, PAGE);
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_RECLAIM,
                            .flags =
                                VKMT_SQE_F_RESOURCES | VKMT_SQE_F_WRITE_RESULTS,
                            .hsel = P(dev),
                            .mode = VF_PAY_HANDLES | VF_RESULTS,
                            .count = 2,
                            .pval = (r & 0xff) | (r2 - r) << 8 }); /* r, r2 */
    destroy(s, q, dev, r + 1, 1); /* a member by its own handle: refused */
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                            .hsel = P(dev),
                            .asel = P(r) });
    destroy(s, q, dev, solo, 1);
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_DESTROY_DEVICE, .hsel = P(dev) });
}

/* A paging queue: reclaim through it, its fence counts, query and destroy. */
static void w_paging_queue(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t pq, a;

    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .hsel = P(dev) });
    pq = s->npool;
    harvested(s, 2);
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_PAGING_QUEUE,
                            .hsel = P(dev),
                            .aval = 0xffffffff });
    harvested(s, 2);
    a = create(s, q, dev, 2, PAGE, 0);
    offer(s, q, dev, a, 2, VKMT_PRIO_NORMAL, 0, 0);
    reclaim(s, q, pq, a, 2, VKMT_SQE_F_PAGING_QUEUE | VKMT_SQE_F_WRITE_RESULTS);
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_FENCE, .hsel = P(pq + 1) });
    reclaim(s, q, pq, a, 2, VKMT_SQE_F_PAGING_QUEUE);
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_FENCE, .hsel = P(pq + 1) });
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_DESTROY_PAGING_QUEUE, .hsel = P(pq) });
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_FENCE, .hsel = P(pq + 1) });
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_DESTROY_DEVICE, .hsel = P(dev) });
}

/* Two processes: foreign handles are refused, a release frees what a queue
 * owned, reaping. */
static void w_two_queues(struct seed *s)
{
    uint8_t q0, q1;
    uint32_t d0 = open_device(s, &q0);
    uint32_t d1 = open_device(s, &q1);
    uint32_t a0 = create(s, q0, d0, 2, PAGE, 0);
    uint32_t a1 = create(s, q1, d1, 2, PAGE, 0);
    uint8_t reap[VF_LEN_REAP] = { q1, 0 };

    offer(s, q0, d1, a1, 1, VKMT_PRIO_LOW, 0, 0); /* another queue's device */
    offer(s, q0, d0, a1, 1, VKMT_PRIO_LOW, 0,
          0); /* another queue's allocation */
    offer(s, q1, d1, a1, 2, VKMT_PRIO_LOW, 0, 0);
    offer(s, q0, d0, a0, 2, VKMT_PRIO_HIGH, 0, 0);
    release(s, q1);
    cmd(s, (struct vf_cmd){
               .q = q0, .opcode = VKMT_OP_QUERY_STATS, .mode = VF_RESULTS });
    q1 = claim(s);
    d1 = create_device(s, q1);
    create(s, q1, d1, 1, PAGE, 0);
    reap[1] = 0xff; /* a stale claim sequence: left alone */
    emit(s, VF_OP_REAP, reap, sizeof(reap));
    reap[1] = 0; /* the claim as it is now: released */
    emit(s, VF_OP_REAP, reap, sizeof(reap));
    s->busy[s->order[q1]] = false;
    reclaim(s, q0, d0, a0, 2, VKMT_SQE_F_WRITE_RESULTS);
}

/* Batches: entries posted without a doorbell, then one doorbell for all. */
static void w_batch(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a;

    cmd(s, (struct vf_cmd){ .q = q | VF_Q_DEFER,
                            .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                            .hsel = P(dev),
                            .mode = VF_PAY_DESCS | VF_RESULTS,
                            .count = 4,
                            .pval = PAGE });
    a = s->npool;
    harvested(s, 4);
    cmd(s,
        (struct vf_cmd){ .q = q | VF_Q_DEFER, .opcode = VKMT_OP_QUERY_MEMORY });
    cmd(s, (struct vf_cmd){ .q = q | VF_Q_DEFER,
                            .opcode = VKMT_OP_QUERY_STATS,
                            .mode = VF_RESULTS });
    doorbell(s, q, VF_DB_TAIL, 0);
    for (uint32_t i = 0; i < 4; i++) {
        cmd(s, (struct vf_cmd){ .q = q | VF_Q_DEFER,
                                .opcode = VKMT_OP_OFFER,
                                .hsel = P(dev),
                                .aval = 1 + i,
                                .mode = VF_PAY_HANDLES,
                                .count = 1,
                                .pval = list(a + i) });
    }
    doorbell(s, q, VF_DB_NUDGE, 0);
    cmd(s,
        (struct vf_cmd){ .q = q, .opcode = VKMT_OP_TRIM, .arg64 = 2 * PAGE });
    reclaim(s, q, dev, a, 4, VKMT_SQE_F_WRITE_RESULTS);
}

/* The largest batches: 10240 elements (duplicates from a small pool) and 64
 * distinct. */
static void w_big_batch(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 64, PAGE, 0);

    offer(s, q, dev, a, 64, VKMT_PRIO_LOW, 0, 0);
    reclaim(s, q, dev, a, 64, VKMT_SQE_F_WRITE_RESULTS);
    offer(s, q, dev, a, VKMT_MAX_BATCH, VKMT_PRIO_LOW, 0,
          0);                                        /* duplicates: refused */
    create_refused(s, q, dev, VKMT_MAX_BATCH, 1, 0); /* no room */
    create(s, q, dev, 300, 1, 0);
    destroy(s, q, dev, a, 64);
}

/* The qtest's malformed commands, each with its own outcome. */
static void w_malformed(struct seed *s)
{
    uint8_t q, q2;
    uint32_t dev = open_device(s, &q);
    uint32_t h = create(s, q, dev, 2, PAGE, 0);
    uint32_t theirs;
    uint32_t stale = create(s, q, dev, 1, PAGE, 0);

    q2 = claim(s);
    theirs = create_device(s, q2);
    destroy(s, q, dev, stale, 1);
    sqe_raw(s, q, (struct vkmt_sqe){ .opcode = 0x42 });
    sqe_raw(s, q, (struct vkmt_sqe){ .opcode = 0 });
    sqe_raw(
        s, q,
        (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE, .reserved0 = 1 });
    sqe_raw(s, q,
            (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE,
                               .reserved1 = { [3] = 9 } });
    sqe_raw(
        s, q,
        (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE, .flags = 0x4000 });
    offer(s, q, dev, h, 0, VKMT_PRIO_LOW, 0, 0); /* count 0 */
    offer(s, q, dev, h, VKMT_MAX_BATCH + 1, VKMT_PRIO_LOW, 0,
          0); /* count 10241 */
    sqe_raw(s, q,
            (struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                               .count = 0xffffffff,
                               .payload_len = 0xfffffffc,
                               .arg0 = 1 }); /* count 0xffffffff */
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_OFFER,
                            .hsel = P(dev),
                            .aval = 1,
                            .mode = VF_PAY_RAW,
                            .count = 1,
                            .pval = VKMT_STAGING_SIZE -
                                    2 }); /* payload past staging */
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_OFFER,
                            .hsel = P(dev),
                            .aval = 1,
                            .mode = VF_PAY_RAW,
                            .count = 2,
                            .pval = 0xfffffffc }); /* payload offset wraps */
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_OFFER,
                            .hsel = P(dev),
                            .aval = 1,
                            .mode = VF_PAY_RAW,
                            .count = 1,
                            .pval = 1 }); /* misaligned */
    sqe_raw(s, q,
            (struct vkmt_sqe){ .opcode = VKMT_OP_RECLAIM,
                               .flags = VKMT_SQE_F_WRITE_RESULTS,
                               .count = 1,
                               .payload_len = 4,
                               .result_off = VKMT_STAGING_SIZE,
                               .result_len = 4 });  /* results past staging */
    offer(s, q, dev, h, 1, 0, 0, 0);                /* priority 0 */
    offer(s, q, dev, h, 1, 5, 0, 0);                /* priority 5 */
    offer(s, q, dev, h, 1, VKMT_PRIO_LOW, 0x10, 0); /* reserved offer flag */
    offer(s, q, theirs, h, 1, VKMT_PRIO_LOW, 0, 0); /* another queue's device */
    lock(s, q, dev, stale);                         /* stale allocation */
    lock(s, q, h, h);                               /* allocation as device */
    unlock(s, q, dev, h);                           /* not locked */
    cmd(s,
        (struct vf_cmd){ .q = q, .opcode = VKMT_OP_QUERY_MEMORY, .aval = 9 });
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_PAGING_QUEUE,
                            .hsel = P(dev),
                            .aval = 2 });
    create_refused(s, q, dev, 1, 0, 0); /* size 0 */
    cmd(s,
        (struct vf_cmd){ .q = q,
                         .opcode = VKMT_OP_OFFER,
                         .hsel = P(dev),
                         .aval = 1,
                         .mode = VF_PAY_HANDLES,
                         .count = 3,
                         .pval = list(h) & 0xff }); /* one handle three times */
    lock(s, q, dev, h);
    offer(s, q, dev, h, 1, VKMT_PRIO_LOW, 0, 0); /* locked */
    reclaim(s, q, dev, h, 2, VKMT_SQE_F_WRITE_RESULTS);
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_RECLAIM,
                            .hsel = P(dev),
                            .mode = VF_PAY_HANDLES | VF_RESULTS,
                            .count = 1,
                            .pval = list(h) }); /* results without the flag */
    offer(s, q, dev, h + 1, 1, VKMT_PRIO_LOW, 0, 0);
}

/* Register abuse, the qtest's: logged and ignored; a far doorbell breaks one
 * queue. */
static void w_registers(struct seed *s)
{
    uint8_t q, q2;
    uint32_t dev = open_device(s, &q);

    q2 = claim(s);
    for (uint16_t off = 0; off <= VKMT_REG(queue_reap); off += 4) {
        if (off != VKMT_REG(queue_claim)) {
            reg_read(s, off);
        }
    }
    reg_write(s, VKMT_REG(magic), 0);
    reg_write(s, VKMT_REG(queue_release), 0xffffffff);
    reg_write(s, VKMT_REG(queue_release), 3);
    reg_write(s, VKMT_REG_DOORBELL(3), 1);
    reg_write(s, VKMT_REG_DOORBELL(60), 1);
    reg_write(s, 0xffc, 0xffffffff);
    reg_write(s, VKMT_REG(driver_features), 0);
    reg_write(s, VKMT_REG(isr_lo), 0xffffffff);
    reg_write(s, VKMT_REG(isr_hi), 0xffffffff);
    doorbell(s, q2, VF_DB_RAW, 1000);
    doorbell(s, q2, VF_DB_SHARED, 1000);
    doorbell(s, q2 | VF_Q_RAW, VF_DB_TAIL, 0); /* by index */
    create(s, q, dev, 1, PAGE, 0);
    release(s, q2);
    q2 = claim(s);
    create_device(s, q2);
    doorbell(s, q, VF_DB_NUDGE, 0xff); /* tail moved back: the queue breaks */
    create_device_refused(s, q);
}

/* Guest reset (status 0) and machine-style reset in the middle of work; the
 * epoch moves. */
static void w_resets(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 2, PAGE, 0);

    offer(s, q, dev, a, 1, VKMT_PRIO_LOW, 0, 0);
    reg_write(s, VKMT_REG(status), 0);
    reg_read(s, VKMT_REG(removal_epoch));
    create_device_refused(s, q); /* the queue is gone: ignored */
    dev = open_device(s, &q);
    a = create(s, q, dev, 2, PAGE, 0);
    host(s, VF_HOST_RESET, 0);
    reg_read(s, VKMT_REG(status));
    dev = open_device(s, &q);
    create(s, q, dev, 1, PAGE, 0);
    host(s, VF_HOST_REMOVED, 1);
    create_device_refused(s, q); /* DEVICE_REMOVED */
    emit(s, VF_OP_CLAIM, NULL, 0);
    host(s, VF_HOST_REMOVED, 0);
    create_device(s, q);
}

/* Bring-up variants: no features, an unknown feature, DRIVER_OK too early. */
static void w_features(struct seed *s)
{
    uint8_t q;
    uint32_t dev;

    reg_write(s, VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
    bring_up(s, 0x80); /* refused: FEATURES_OK does not stick */
    emit(s, VF_OP_CLAIM, NULL, 0);
    reg_write(s, VKMT_REG(status), 0);
    bring_up(s, 0);
    q = claim(s);
    dev = create_device(s, q);
    cmd(s, (struct vf_cmd){ .q = q, .opcode = VKMT_OP_TRIM });
    create_refused(s, q, dev, 2, PAGE,
                   VKMT_SQE_F_CREATE_RESOURCE); /* not negotiated */
    reg_write(s, VKMT_REG(driver_features),
              FEATURES); /* after FEATURES_OK: ignored */
}

/* Interrupts: INTx, then MSI-X with a masked and an unmasked vector. */
static void w_interrupts(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);

    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_DEVICE,
                            .flags = VKMT_SQE_F_IRQ });
    harvested(s, 1);
    reg_read(s, VKMT_REG(isr_lo));
    reg_write(s, VKMT_REG(isr_lo), 1);
    cfg_read(s, 1, 0x06); /* PCI status: the interrupt bit */
    msix(s, VF_MSIX_ENABLE, 0, 0);
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_QUERY_MEMORY,
                            .flags = VKMT_SQE_F_IRQ });
    msix(s, VF_MSIX_READ, 0, 0);
    msix(s, VF_MSIX_TABLE, 0, 0x1000); /* address: guest RAM */
    msix(s, VF_MSIX_TABLE, 8, 0x5a5a); /* data */
    msix(s, VF_MSIX_TABLE, 12, 0);     /* unmask */
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_QUERY_STATS,
                            .flags = VKMT_SQE_F_IRQ,
                            .mode = VF_RESULTS });
    msix(s, VF_MSIX_ENABLE, 0, 1); /* function mask */
    create(s, q, dev, 1, PAGE, 0);
    msix(s, VF_MSIX_DISABLE, 0, 0);
    doorbell(s, q, VF_DB_RAW, 500); /* a queue error raises an interrupt too */
}

/* Config space: the header and capabilities read back, MSI-X switched through
 * it. */
static void w_config(struct seed *s)
{
    uint8_t q;

    for (uint8_t off = 0; off < 0x40; off += 4) {
        cfg_read(s, 2, off);
    }
    cfg_read(s, 0, 0x34); /* capability list: MSI-X */
    cfg_read(s, 2, 0x40);
    cfg_read(s, 2, 0x44);
    open_device(s, &q);
    cfg_write(s, 0, 0x3c, 11);     /* interrupt line */
    cfg_write(s, 1, 0x42, 0x8000); /* MSI-X enable, written directly */
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_QUERY_MEMORY,
                            .flags = VKMT_SQE_F_IRQ });
    cfg_write(s, 1, 0x42, 0xc000);     /* ... and the function mask */
    cfg_write(s, 1, 0x04, 0);          /* the command register: dropped */
    cfg_write(s, 2, 0x10, 0xffffffff); /* BAR sizing: dropped */
    create_device(s, q);
}

/* The completion queue: a bogus consumer head stalls the queue, a good one
 * resumes it. */
static void w_cq_stall(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint8_t head[4];

    put32(head, 0xffffff00u);
    ctrl_write(s, q, (uint32_t)offsetof(struct vkmt_queue_hdr, sh_cq_head),
               head, sizeof(head));
    for (int i = 0; i < 3; i++) {
        cmd(s, (struct vf_cmd){ .q = q | VF_Q_DEFER,
                                .opcode = VKMT_OP_CREATE_DEVICE });
    }
    ctrl_write(s, q, (uint32_t)offsetof(struct vkmt_queue_hdr, sh_cq_head),
               head, sizeof(head));
    doorbell(s, q, VF_DB_TAIL,
             0); /* stalls; the harvest then writes a good head */
    doorbell(s, q, VF_DB_TAIL, 0);
    harvested(s, 3);
    create(s, q, dev, 1, PAGE, 0);
}

/* The qtest's garbage rings: junk entries, headers, staging and doorbells in
 * one queue. */
static void w_garbage(struct seed *s)
{
    uint8_t q, victim, junk[256];
    uint32_t dev = open_device(s, &q);
    uint32_t x = 0x766b6d74;

    victim = claim(s);
    create(s, q, dev, 1, PAGE, 0);
    for (int round = 0; round < 5; round++) {
        for (size_t i = 0; i < sizeof(junk); i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk[i] = (uint8_t)x;
        }
        for (size_t i = 0; i + 4 <= sizeof(junk); i++) {
            if (!memcmp(junk + i, VF_SEPARATOR, VF_SEPARATOR_LEN)) {
                junk[i] ^= 1;
            }
        }
        ctrl_write(s, victim, VKMT_QUEUE_SQ_OFF, junk, sizeof(junk));
        ctrl_write(s, victim, VKMT_QUEUE_STAGING_OFF + (uint32_t)round * 4096,
                   junk, 128);
        if (round % 4 == 0) {
            ctrl_write(s, victim, VKMT_QUEUE_HDR_OFF, junk, 64);
            ctrl_write(s, victim, VKMT_QUEUE_CQ_OFF, junk + 64, 128);
        }
        doorbell(s, victim, round % 5 == 0 ? VF_DB_RAW : VF_DB_NUDGE,
                 round % 5 == 0 ? x : (uint32_t)round % 16);
        if (round % 3 == 2) {
            release(s, victim);
            victim = claim(s);
        }
    }
    offer(s, q, dev, 1, 1, VKMT_PRIO_LOW, 0, 0);
}

/* Teardown of everything at once: a device with every kind of child, queues
 * with live objects. */
static void w_teardown(struct seed *s)
{
    uint8_t q, q2;
    uint32_t dev = open_device(s, &q);
    uint32_t dev2 = create_device(s, q);
    uint32_t a, r, d2;

    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .hsel = P(dev) });
    harvested(s, 2);
    r = create_resource(s, q, dev, 2, PAGE);
    a = create(s, q, dev, 3, PAGE, VF_VARY);
    create(s, q, dev2, 2, PAGE, 0);
    offer(s, q, dev, a, 2, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT, 0);
    offer(s, q, dev, r, 1, VKMT_PRIO_HIGH, 0, VKMT_SQE_F_RESOURCES);
    host(s, VF_HOST_TRIM, PAGE);
    lock(s, q, dev, a + 2);
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_DESTROY_DEVICE, .hsel = P(dev) });
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_STATS, .mode = VF_RESULTS });
    q2 = claim(s);
    d2 = create_device(s, q2);
    create_resource(s, q2, d2, 3, 2 * PAGE);
    release(s, q); /* dev2 and its allocations go with the queue */
    reg_write(s, VKMT_REG(status), 0); /* and q2's with the device */
}

/* A process killed with its queue claimed: the next one reaps it, as libvkmt
 * does. */
static void w_reap_dead(struct seed *s)
{
    uint8_t q, q2, rec[VF_LEN_REAP];
    uint32_t dev = open_device(s, &q);
    uint32_t d2;
    uint8_t owner[4];

    put32(owner, 4242);
    ctrl_write(s, q, (uint32_t)offsetof(struct vkmt_queue_hdr, sh_owner), owner,
               sizeof(owner));
    create(s, q, dev, 4, PAGE, 0);
    q2 = claim(s);
    d2 = create_device(s, q2);
    rec[0] =
        q; /* the dead process's queue, by the claim sequence in its header */
    rec[1] = 0;
    emit(s, VF_OP_REAP, rec, sizeof(rec));
    s->busy[s->order[q]] = false;
    create(s, q2, d2, 4, PAGE, 0);
    q = claim(s); /* the reaped queue, claimed afresh */
    create_device(s, q);
    rec[0] =
        q2 | VF_Q_RAW; /* a reap naming the queue index with a wrong sequence */
    rec[1] = 1;
    emit(s, VF_OP_REAP, rec, sizeof(rec));
}

/* The aperture full while the budget allows more: creation and recommit run out
 * of ranges. */
static void w_aperture_full(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a, b;

    host(s, VF_HOST_BUDGET, 4u << 20); /* the whole aperture */
    a = create(s, q, dev, 64, 8 * PAGE, 0);
    b = create(s, q, dev, 64, 8 * PAGE,
               0); /* 1024 pages: the aperture is full */
    offer(s, q, dev, a, 64, VKMT_PRIO_NORMAL, VKMT_OFFER_F_ALLOW_DECOMMIT, 0);
    host(s, VF_HOST_TRIM, 0); /* decommitted: their ranges are free again */
    create(s, q, dev, 2, 8 * PAGE, 0);
    create(s, q, dev, 40, 4 * PAGE,
           VF_VARY); /* 4, 8, 12 pages: ~850 of 1024 in use */
    offer(s, q, dev, b, 64, VKMT_PRIO_LOW, 0, 0);
    /* The budget allows it once b is discarded, but the free ranges run out
     * midway. */
    reclaim(s, q, dev, a, 64, VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    reclaim(s, q, dev, b, 64, VKMT_SQE_F_WRITE_RESULTS);
}

/* Locks: nested, blocking offers, counted down. */
static void w_locks(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 2, 3 * PAGE, 0);
    uint8_t pat[32];

    fill_pattern(pat, sizeof(pat), 9);
    for (int i = 0; i < 3; i++) {
        lock(s, q, dev, a);
    }
    aperture(s, 0, pat, sizeof(pat));
    offer(s, q, dev, a, 2, VKMT_PRIO_LOW, 0,
          0); /* one is locked: nothing offered */
    for (int i = 0; i < 3; i++) {
        unlock(s, q, dev, a);
    }
    unlock(s, q, dev, a);
    offer(s, q, dev, a, 2, VKMT_PRIO_LOW, 0, 0);
    lock(s, q, dev, a); /* offered: refused */
    reclaim(s, q, dev, a, 2, 0);
    lock(s, q, dev, a + 1);
    destroy(s, q, dev, a + 1, 1); /* a locked allocation can be destroyed */
}

/* The host side over QMP: statistics, budgets up and down, trims, removal. */
static void w_host(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 8, 2 * PAGE, 0);

    offer(s, q, dev, a, 4, VKMT_PRIO_AUTO, 0, 0);
    offer(s, q, dev, a + 4, 4, VKMT_PRIO_HIGH, VKMT_OFFER_F_ALLOW_DECOMMIT, 0);
    host(s, VF_HOST_STATS, 0);
    host(s, VF_HOST_BUDGET, 10 * PAGE);
    host(s, VF_HOST_BUDGET, 1ull << 40); /* capped at the aperture */
    host(s, VF_HOST_TRIM, 3 * PAGE);
    host(s, VF_HOST_TRIM, 0);
    host(s, VF_HOST_REMOVED, 1);
    reclaim(s, q, dev, a, 8, VKMT_SQE_F_WRITE_RESULTS);
    host(s, VF_HOST_REMOVED, 0);
    reclaim(s, q, dev, a, 8, VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    host(s, VF_HOST_STATS, 0);
}

/* Interrupt status of several queues: set, read, cleared one bit at a time. */
static void w_isr(struct seed *s)
{
    uint8_t q[3];

    for (int i = 0; i < 3; i++) {
        open_device(s, &q[i]);
        cmd(s, (struct vf_cmd){ .q = q[i],
                                .opcode = VKMT_OP_QUERY_MEMORY,
                                .flags = VKMT_SQE_F_IRQ });
    }
    reg_read(s, VKMT_REG(isr_lo));
    reg_write(s, VKMT_REG(isr_lo), 2);
    reg_read(s, VKMT_REG(isr_lo));
    reg_write(s, VKMT_REG(isr_hi), 1);
    reg_write(s, VKMT_REG(isr_lo), 5);
    cfg_read(s, 1, 0x06);
}

/* A deferred-mode driver: sh_sq_tail written first, the doorbell value ignored.
 */
static void w_shared_tail(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);

    cmd(s,
        (struct vf_cmd){ .q = q | VF_Q_DEFER, .opcode = VKMT_OP_QUERY_MEMORY });
    cmd(s, (struct vf_cmd){ .q = q | VF_Q_DEFER,
                            .opcode = VKMT_OP_CREATE_DEVICE });
    doorbell(s, q, VF_DB_SHARED, 3);
    harvested(s, 1);
    create(s, q, dev, 2, PAGE, 0);
    host(s, VF_HOST_FLUSH, 0);
    doorbell(s, q, VF_DB_SHARED, 0); /* the tail moved back */
}

/*
 * More than the handle table's first 1024 slots: resources of 500 one-page
 * allocations, offered with AllowDecommit and trimmed, keep their slots but
 * give their pages and ranges back, so the next 500 fit; the third grows it.
 */
static void w_many_objects(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);

    for (int round = 0; round < 3; round++) {
        uint32_t r = create_resource(s, q, dev, 500, 1);

        offer(s, q, dev, r, 1, VKMT_PRIO_LOW, VKMT_OFFER_F_ALLOW_DECOMMIT,
              VKMT_SQE_F_RESOURCES);
        host(s, VF_HOST_TRIM, 0);
    }
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_STATS, .mode = VF_RESULTS });
}

/*
 * 2D textures (VKMT_F_TEXTURES): two shapes filled through the aperture,
 * offered, trimmed away and reclaimed as DISCARDED; then the descriptors the
 * device refuses (a size that does not match, an unknown format, a width of
 * 0) and a buffer descriptor that carries dims.
 */
static void w_textures(struct seed *s)
{
    uint8_t q, pat[64];
    uint32_t dev, a, b;

    bring_up(s, FEATURES | VKMT_F_TEXTURES);
    q = claim(s);
    dev = create_device(s, q);
    a = create_textures(s, q, dev, 2, VKMT_FORMAT_B8G8R8A8_UNORM, 32, 32, PAGE,
                        false);
    b = create_textures(s, q, dev, 1, VKMT_FORMAT_R8_UNORM, 100, 30, 3000,
                        false);
    fill_pattern(pat, sizeof(pat), 9);
    lock(s, q, dev, a);
    aperture(s, 0, pat, sizeof(pat));
    unlock(s, q, dev, a);
    offer(s, q, dev, a, 2, VKMT_PRIO_LOW, 0, 0);
    offer(s, q, dev, b, 1, VKMT_PRIO_HIGH, VKMT_OFFER_F_ALLOW_DECOMMIT, 0);
    host(s, VF_HOST_TRIM, 0);
    reclaim(s, q, dev, a, 2, VKMT_SQE_F_WRITE_RESULTS);
    reclaim(s, q, dev, b, 1, VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    lock(s, q, dev, b);
    unlock(s, q, dev, b);
    create_textures(s, q, dev, 1, VKMT_FORMAT_B8G8R8A8_UNORM, 32, 32, PAGE + 1,
                    true);
    create_textures(s, q, dev, 1, VKMT_FORMAT_COUNT, 32, 32, PAGE, true);
    create_textures(s, q, dev, 1, VKMT_FORMAT_R8_UNORM, 0, 32, PAGE, true);
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                            .hsel = P(dev),
                            .mode = VF_PAY_DESCS | VF_RESULTS | VF_SHAPE,
                            .count = 1,
                            .pval = PAGE,
                            .arg64 = (uint64_t)VKMT_ALLOC_DIMS(1, 1) << 32 });
    destroy(s, q, dev, a, 2);
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_QUERY_STATS, .mode = VF_RESULTS });
}

/* ---- the port targets: a root port, hot-plug, iothread doorbells ---- */

/* A command on @q that raises the queue's interrupt when it completes. */
static void irq_cmd(struct seed *s, uint8_t q)
{
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_QUERY_MEMORY,
                            .flags = VKMT_SQE_F_IRQ });
}

/*
 * The hot-plug life cycle: an ejection (device_del, then the guest powers
 * the slot off) with objects live, a re-plug, a bus reset, a surprise
 * power-off, and a device_del left for the reset to finish.
 */
static void w_port_hotplug(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 4, PAGE, 0);

    offer(s, q, dev, a, 2, VKMT_PRIO_LOW, 0, 0);
    plug(s, VF_PLUG_DEL);
    plug(s, VF_PLUG_POWER_OFF);
    plug(s, VF_PLUG_ADD);
    dev = open_device(s, &q);
    create(s, q, dev, 2, PAGE, 0);
    irq_cmd(s, q);
    plug(s, VF_PLUG_BUS_RESET);
    dev = open_device(s, &q);
    a = create(s, q, dev, 2, PAGE, 0);
    offer(s, q, dev, a, 2, VKMT_PRIO_HIGH, 0, 0);
    plug(s, VF_PLUG_POWER_OFF);
    plug(s, VF_PLUG_ADD);
    dev = open_device(s, &q);
    create(s, q, dev, 1, PAGE, 0);
    plug(s, VF_PLUG_DEL);
}

/*
 * MSI-X messages a driver could aim anywhere, here at harmless places: the
 * local APIC, the root port's Interrupt Line (Bridge Control left 0) and
 * Slot Control (power and indicator on), the device's own cache line size.
 */
static void w_port_msix(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);

    aim(s, 0, VF_AIM_LAPIC, 0, 0x4041);
    irq_cmd(s, q);
    aim(s, 0, VF_AIM_PORT, 0x3c,
        0x0b); /* PCI_INTERRUPT_LINE, PCI_BRIDGE_CONTROL */
    irq_cmd(s, q);
    aim(s, 0, VF_AIM_PORT_EXP, 0x18, 0x0100); /* PCI_EXP_SLTCTL: PWR_IND_ON */
    create(s, q, dev, 2, PAGE, 0);
    irq_cmd(s, q);
    aim(s, 0, VF_AIM_SELF, 0x0c, 0x10); /* PCI_CACHE_LINE_SIZE */
    irq_cmd(s, q);
    msix(s, VF_MSIX_DISABLE, 0, 0);
    irq_cmd(s, q);
}

/* Doorbells left running (VF_Q_DEFER on the doorbell) before registers,
 * flushes, more work. */
static void w_port_storm(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 8, PAGE, 0);

    for (uint32_t i = 0; i < 8; i++) {
        offer(s, q | VF_Q_DEFER, dev, a + i, 1, VKMT_PRIO_LOW, 0,
              VKMT_SQE_F_IRQ);
    }
    doorbell(s, q | VF_Q_DEFER, VF_DB_TAIL, 0);
    reg_read(s, VKMT_REG(isr_lo));
    reclaim(s, q | VF_Q_DEFER, dev, a, 8,
            VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_IRQ);
    doorbell(s, q | VF_Q_DEFER, VF_DB_TAIL, 0);
    host(s, VF_HOST_FLUSH, 0);
    reg_write(s, VKMT_REG(isr_lo), 1);
    destroy(s, q, dev, a, 8);
}

/* ---- residency (1.2) ---- */

static uint32_t open_device_1_2(struct seed *s, uint8_t *q)
{
    bring_up(s, FEATURES_1_2);
    *q = claim(s);
    return create_device(s, *q);
}

/* A batch command naming @n pool handles from @first (the queries with
 * their result arrays). */
static void batch(struct seed *s, uint8_t q, uint8_t op, uint32_t subject,
                  uint32_t flags, uint32_t first, uint16_t n, uint32_t arg1)
{
    bool answers = op == VKMT_OP_GET_PRIORITY || op == VKMT_OP_QUERY_RESIDENCY;

    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = op,
                            .hsel = P(subject),
                            .aval = flags,
                            .arg1 = arg1,
                            .mode = VF_PAY_HANDLES | (answers ? VF_RESULTS : 0),
                            .count = n,
                            .pval = list(first) });
}

/* A resource-form query or priority change (arg0 = the resource). */
static void on_resource(struct seed *s, uint8_t q, uint8_t op, uint32_t dev,
                        uint32_t res, uint32_t arg1)
{
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = op,
                            .hsel = P(dev),
                            .asel = P(res),
                            .arg1 = arg1 });
}

/*
 * Every residency opcode in both forms: make resident (with and without
 * CantTrimFurther, a duplicate refused), priorities, queries, evictions that
 * demote, an eviction of a count at 0, reservations, and the promotions
 * (LOCK, MAKE_RESIDENT, RECLAIM) that bring content back.
 */
static void w_residency(struct seed *s)
{
    uint8_t q, pat[64];
    uint32_t dev = open_device_1_2(s, &q);
    uint32_t pq, a, res;

    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .hsel = P(dev) });
    pq = s->npool;
    harvested(s, 2);
    a = create(s, q, dev, 8, 2 * PAGE, 0);
    fill_pattern(pat, sizeof(pat), 9);
    for (uint32_t i = 0; i < 2; i++) {
        lock(s, q, dev, a + i);
        aperture(s, i * 2 * PAGE, pat, sizeof(pat));
        unlock(s, q, dev, a + i);
    }
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, 0, a, 4, 0);
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq,
          VKMT_RESIDENT_F_CANT_TRIM_FURTHER | VKMT_RESIDENT_F_MUST_SUCCEED,
          a + 4, 2, 0);
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_MAKE_RESIDENT,
                            .hsel = P(pq),
                            .mode = VF_PAY_HANDLES,
                            .count = 2,
                            .pval = a & 0xff }); /* a duplicate: refused */
    batch(s, q, VKMT_OP_SET_PRIORITY, dev, 0, a, 8, 0x10000000);
    batch(s, q, VKMT_OP_GET_PRIORITY, dev, 0, a, 8, 0);
    batch(s, q, VKMT_OP_QUERY_RESIDENCY, dev, 0, a, 8, 0);
    batch(s, q, VKMT_OP_EVICT, dev, 0, a, 4, 0); /* counts reach 0: demoted */
    batch(s, q, VKMT_OP_QUERY_RESIDENCY, dev, 0, a, 8, 0);
    batch(s, q, VKMT_OP_EVICT, dev, 0, a, 4, 0); /* counts at 0: refused */
    batch(s, q, VKMT_OP_EVICT, dev, VKMT_EVICT_F_ONLY_IF_NECESSARY, a + 4, 2,
          0);
    cmd(s,
        (struct vf_cmd){ .q = q, .opcode = VKMT_OP_QUERY_MEMORY, .aval = 1 });
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CHANGE_RESERVATION,
                            .aval = 1,
                            .arg64 = PAGE });
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_CHANGE_RESERVATION,
                            .arg64 = 1ull << 40 }); /* refused */
    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_CHANGE_RESERVATION, .aval = 2 });
    lock(s, q, dev, a); /* promotes */
    unlock(s, q, dev, a);
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, 0, a + 1, 1, 0);
    offer(s, q, dev, a + 2, 1, VKMT_PRIO_LOW, 0, 0); /* DEMOTED: discarded */
    reclaim(s, q, dev, a, 8, VKMT_SQE_F_WRITE_RESULTS);
    res = create_resource(s, q, dev, 3, PAGE);
    on_resource(s, q, VKMT_OP_SET_PRIORITY, dev, res, 0x50000000);
    on_resource(s, q, VKMT_OP_GET_PRIORITY, dev, res, 0);
    on_resource(s, q, VKMT_OP_QUERY_RESIDENCY, dev, res, 0);
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, 0, res + 1, 3, 0);
    batch(s, q, VKMT_OP_EVICT, dev, 0, res + 1, 3, 0);
    on_resource(s, q, VKMT_OP_QUERY_RESIDENCY, dev, res, 0);
    destroy(s, q, dev, a, 8);
}

/*
 * Pressure with both segments: a lowered budget discards the offered
 * allocations, then demotes (lowest priority first, held ones last);
 * creation fills the non-local segment until it fails; promotions over
 * budget are refused, then allowed with CantTrimFurther; trim and budget events
 * (with a periodic trim on the virtual clock) fill the event ring past its
 * depth while the driver consumes a few; injected commit faults; the budget
 * back, the later allocations destroyed and everything else reclaimed.
 */
static void w_demotion(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device_1_2(s, &q);
    uint32_t pq, a, b, head = 3;

    cmd(s, (struct vf_cmd){
               .q = q, .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .hsel = P(dev) });
    pq = s->npool;
    harvested(s, 2);
    host(s, VF_HOST_TRIM_PERIOD, 5);
    host(s, VF_HOST_CLOCK, 20 * 1000 * 1000);
    a = create(s, q, dev, 32, 16 * PAGE, 0); /* the whole 2 MiB budget */
    offer(s, q, dev, a, 4, VKMT_PRIO_LOW, 0, 0);
    /* Rising priorities: demotion takes the lowest first. */
    batch(s, q, VKMT_OP_SET_PRIORITY, dev, 0, a + 8, 8, 0x08000000);
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, 0, a + 16, 2, 0); /* held */
    host(s, VF_HOST_BUDGET, 1 << 20);
    host(s, VF_HOST_TRIM_NOTIFY, 0);
    host(s, VF_HOST_TRIM_NOTIFY, 64 * PAGE);
    batch(s, q, VKMT_OP_QUERY_RESIDENCY, dev, 0, a, 32, 0);
    ctrl_write(s, q, (uint32_t)offsetof(struct vkmt_queue_hdr, sh_ev_head),
               &head, sizeof(head));
    b = create(s, q, dev, 16, 16 * PAGE, 0); /* demotes what is left */
    /* The non-local segment is full. */
    create_refused(s, q, dev, 16, 16 * PAGE, 0);
    /* Promotions over budget: refused with the bytes to trim, then allowed
     * past the budget (within the aperture) with CantTrimFurther. */
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, 0, a + 8, 4, 0);
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, VKMT_RESIDENT_F_CANT_TRIM_FURTHER,
          a + 8, 4, 0);
    batch(s, q, VKMT_OP_MAKE_RESIDENT, pq, 0, a, 1, 0); /* discarded: refused */
    host(s, VF_HOST_CLOCK, 200 * 1000 * 1000); /* the event ring overflows */
    host(s, VF_HOST_STATS, 0);
    reclaim(s, q, dev, a, 32,
            VKMT_SQE_F_WRITE_RESULTS);  /* no room to promote */
    host(s, VF_HOST_FAULT, 0 | 2 << 8); /* every second commit fails */
    host(s, VF_HOST_BUDGET, 0);
    reclaim(s, q, dev, a, 32, VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    host(s, VF_HOST_FAULT, 0);
    destroy(s, q, dev, b, 16);
    reclaim(s, q, dev, a, 32, VKMT_SQE_F_WRITE_RESULTS | VKMT_SQE_F_RECOMMIT);
    host(s, VF_HOST_TRIM_PERIOD, 0);
    destroy(s, q, dev, a, 32);
}

static void queue_stats(struct seed *s, uint8_t q, uint32_t all, uint16_t n)
{
    cmd(s, (struct vf_cmd){ .q = q,
                            .opcode = VKMT_OP_QUERY_QUEUE_STATS,
                            .aval = all,
                            .mode = VF_RESULTS,
                            .count = n });
}

/* The host's budget for queue selector @q (its queue index), @pages pages. */
static void queue_budget(struct seed *s, uint8_t index, uint32_t pages)
{
    host(s, VF_HOST_QUEUE_BUDGET, index | (uint64_t)pages << 8);
}

/*
 * Per-process budgets (1.3): the host squeezes one of two processes, whose
 * own offers go and own content is demoted while the other's stay; both
 * read their figures; refused budgets (a free queue, past the aperture);
 * the squeezed process creates, reclaims and makes resident under its
 * budget; its release clears the budget.
 */
static void w_quota(struct seed *s)
{
    uint8_t q0, q1;
    uint32_t dev0 = open_device_1_2(s, &q0), dev1, pq0, a, b, o;

    q1 = claim(s);
    dev1 = create_device(s, q1);
    cmd(s, (struct vf_cmd){ .q = q0,
                            .opcode = VKMT_OP_CREATE_PAGING_QUEUE,
                            .hsel = P(dev0) });
    pq0 = s->npool;
    harvested(s, 2);
    a = create(s, q0, dev0, 8, 4 * PAGE, 0);
    b = create(s, q1, dev1, 4, 4 * PAGE, 0);
    offer(s, q0, dev0, a, 2, VKMT_PRIO_LOW, 0, 0);
    offer(s, q1, dev1, b, 1, VKMT_PRIO_LOW, 0, 0);
    queue_stats(s, q0, 0, 1);
    queue_budget(s, s->order[q0], 16);       /* discards a, a + 1; demotes */
    queue_budget(s, NQUEUES - 1, 16);        /* a free queue: refused */
    queue_budget(s, s->order[q0], 1u << 24); /* past the aperture: refused */
    host(s, VF_HOST_STATS, 0);
    queue_stats(s, q1, VKMT_QSTATS_ALL, 4);
    o = create(s, q0, dev0, 2, 4 * PAGE, 0); /* under its own budget */
    batch(s, q0, VKMT_OP_MAKE_RESIDENT, pq0, 0, a + 2, 4, 0);
    batch(s, q0, VKMT_OP_MAKE_RESIDENT, pq0, VKMT_RESIDENT_F_CANT_TRIM_FURTHER,
          a + 2, 6, 0);
    offer(s, q0, dev0, o, 2, VKMT_PRIO_NORMAL, 0, 0); /* over: discarded */
    reclaim(s, q0, dev0, a, 8, VKMT_SQE_F_WRITE_RESULTS);
    queue_stats(s, q0, VKMT_QSTATS_ALL, 64);
    release(s, q0);
    host(s, VF_HOST_STATS, 0);
    reclaim(s, q1, dev1, b, 4, VKMT_SQE_F_WRITE_RESULTS);
}

static const struct {
    const char *name;
    void (*fn)(struct seed *s);
} workloads[] = {
    { "lifecycle", w_lifecycle },
    { "priorities", w_priorities },
    { "budget", w_budget },
    { "pressure", w_pressure },
    { "decommit", w_decommit },
    { "resources", w_resources },
    { "paging-queue", w_paging_queue },
    { "two-queues", w_two_queues },
    { "batch", w_batch },
    { "big-batch", w_big_batch },
    { "malformed", w_malformed },
    { "registers", w_registers },
    { "resets", w_resets },
    { "features", w_features },
    { "interrupts", w_interrupts },
    { "config", w_config },
    { "cq-stall", w_cq_stall },
    { "garbage", w_garbage },
    { "teardown", w_teardown },
    { "reap-dead", w_reap_dead },
    { "aperture-full", w_aperture_full },
    { "locks", w_locks },
    { "host", w_host },
    { "isr", w_isr },
    { "shared-tail", w_shared_tail },
    { "many-objects", w_many_objects },
    { "textures", w_textures },
    { "port-hotplug", w_port_hotplug },
    { "port-msix", w_port_msix },
    { "port-storm", w_port_storm },
    { "residency", w_residency },
    { "demotion", w_demotion },
    { "quota", w_quota },
};

/* ---- regression inputs of fixed bugs ---- */

/*
 * Finding 1, Secondary Bus Reset: every vector's message goes to the root
 * port's dword at 0x3c with Bridge Control's bus reset bit; a completion's
 * interrupt then resets the device inside msix_notify. Unfixed: the reset
 * takes the device lock the doorbell holds (a hang: a libFuzzer timeout).
 */
static void r_msix_bus_reset(struct seed *s)
{
    uint8_t q;

    open_device(s, &q);
    for (uint8_t v = 0; v < NQUEUES; v++) {
        aim(s, v, VF_AIM_PORT, 0x3c,
            0x40u << 16); /* PCI_BRIDGE_CTL_BUS_RESET */
    }
    irq_cmd(s, q);
}

/*
 * Finding 1, slot power-off: the messages turn the root port's slot power
 * and power indicator off, which unplugs the device inside msix_notify.
 * Unfixed: teardown destroys the locked device mutex (an abort).
 */
static void r_msix_slot_power_off(struct seed *s)
{
    uint8_t q;

    open_device(s, &q);
    for (uint8_t v = 0; v < NQUEUES; v++) {
        aim(s, v, VF_AIM_PORT_EXP, 0x18,
            0x0700); /* PCI_EXP_SLTCTL: PWR_OFF, PWR_IND_OFF */
    }
    irq_cmd(s, q);
}

/*
 * Finding 2: a doorbell=iothread device unplugged (the guest powers the
 * slot off) while the iothread works through a full ring of long
 * commands. Unfixed: teardown frees the engine and destroys the mutex under
 * the running handler (use-after-free, or an abort on the locked mutex).
 */
static void r_unplug_during_doorbells(struct seed *s)
{
    uint8_t q;
    uint32_t dev = open_device(s, &q);
    uint32_t a = create(s, q, dev, 64, PAGE, 0);

    for (uint32_t i = 0; i < VKMT_QUEUE_DEPTH - 2; i++) {
        /* 10240 elements naming 64 allocations: validated in full, then refused
         */
        offer(s, q | VF_Q_DEFER, dev, a, VKMT_MAX_BATCH, VKMT_PRIO_LOW, 0, 0);
    }
    doorbell(s, q | VF_Q_DEFER, VF_DB_TAIL, 0);
    plug(s, VF_PLUG_POWER_OFF);
}

/*
 * Finding 8: in iothread mode a completion's interrupt is raised by a
 * main-loop bottom half; the guest clears isr before it runs. Unfixed: the
 * bottom half raises INTx anyway and the line stays high with isr clear
 * (the target's INTx check aborts).
 */
static void r_intx_after_isr_clear(struct seed *s)
{
    uint8_t q;

    open_device(s, &q);
    cmd(s, (struct vf_cmd){ .q = q | VF_Q_DEFER,
                            .opcode = VKMT_OP_QUERY_MEMORY,
                            .flags = VKMT_SQE_F_IRQ });
    doorbell(s, q | VF_Q_DEFER, VF_DB_TAIL, 0);
    reg_write(s, VKMT_REG(isr_lo), 0xffffffffu);
}

/*
 * The guest engages the root port's electromechanical interlock (Slot
 * Control's EIC, by an MSI-X message), powers the slot off, and the host
 * plugs the device again: QEMU refuses a device_add into a locked slot.
 * Unfixed: the target took that refusal for its own failure (an abort).
 */
static void r_plug_into_locked_slot(struct seed *s)
{
    uint8_t q;

    open_device(s, &q);
    aim(s, 0, VF_AIM_PORT_EXP, 0x18, 0x0800); /* PCI_EXP_SLTCTL_EIC */
    irq_cmd(s, q);
    plug(s, VF_PLUG_POWER_OFF);
    plug(s, VF_PLUG_ADD);
}

static const struct {
    const char *name;
    void (*fn)(struct seed *s);
} regressions[] = {
    { "plug-into-locked-slot", r_plug_into_locked_slot },
    { "issue12-1-msix-bus-reset", r_msix_bus_reset },
    { "issue12-1-msix-slot-power-off", r_msix_slot_power_off },
    { "issue12-2-unplug-during-doorbells", r_unplug_during_doorbells },
    { "issue12-8-intx-after-isr-clear", r_intx_after_isr_clear },
};

static int write_input(const char *dir, const char *prefix, const char *name,
                       void (*fn)(struct seed *s))
{
    static struct seed s;
    char path[4096];
    FILE *f;

    memset(&s, 0, sizeof(s));
    fn(&s);
    snprintf(path, sizeof(path), "%s/%s%s", dir, prefix, name);
    f = fopen(path, "wb");
    if (!f || fwrite(s.buf, 1, s.len, f) != s.len || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s DIR [CRASH_DIR]\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        if (write_input(argv[1], "seed-", workloads[i].name, workloads[i].fn)) {
            return 1;
        }
    }
    for (size_t i = 0;
         argc == 3 && i < sizeof(regressions) / sizeof(regressions[0]); i++) {
        if (write_input(argv[2], "", regressions[i].name, regressions[i].fn)) {
            return 1;
        }
    }
    return 0;
}
