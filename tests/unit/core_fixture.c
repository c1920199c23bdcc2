/* SPDX-License-Identifier: MIT */
/*
 * The fixture every test_core file shares: fake host ops that count
 * interrupts, guest errors and events, one engine with a real memfd backend
 * set up and torn down per test, and the driver helpers that write
 * submission entries, ring doorbells and reap completions.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core_fixture.h"
#include "harness.h"
#include "vkmt_shmem.h"

struct core_fixture F;

static void fake_irq(void *opaque, uint32_t q)
{
    (void)opaque;
    (void)q;
    F.irqs++;
}

static void fake_error(void *opaque, const char *msg)
{
    (void)opaque;
    (void)msg;
    F.guest_errors++;
}

static void fake_event(void *opaque, const struct vkmt_event *ev)
{
    (void)opaque;
    if (ev->type == VKMT_EV_DISCARD && F.ndiscards < 64) {
        F.discard_order[F.ndiscards++] = ev->handle;
    }
    if (F.hook) {
        F.hook(ev);
    }
}

const struct vkmt_core_ops fake_ops = {
    .raise_irq = fake_irq,
    .guest_error = fake_error,
    .event = fake_event,
};

uint32_t rd(uint32_t off)
{
    return vkmt_core_reg_read(F.core, off);
}

void wr(uint32_t off, uint32_t v)
{
    vkmt_core_reg_write(F.core, off, v);
}

void handshake(uint32_t features)
{
    wr(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    wr(VKMT_REG(driver_features), features);
    wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
}

struct drv claim(void)
{
    struct drv d = { .q = rd(VKMT_REG(queue_claim)), .phase = 1 };

    return d;
}

/* The engine of @cfg with @ops over a new @aperture-byte memfd; the driver
 * accepts @features and claims queue 0. */
void setup_config(const struct vkmt_core_config *cfg, uint64_t aperture,
                  const struct vkmt_core_ops *ops, uint32_t features)
{
    memset(&F, 0, sizeof(F));
    F.queues = cfg->num_queues;
    F.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(cfg->num_queues));
    CHECK(F.ctrl != NULL);
    CHECK_EQ(vkmt_backend_mem_create(aperture, -1, NULL, &F.be), 0);
    CHECK_EQ(vkmt_core_create(cfg, F.be, F.ctrl, ops, NULL, &F.core), 0);
    handshake(features);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
}

void setup_full(uint32_t queues, uint64_t aperture, uint64_t budget, uint32_t features)
{
    struct vkmt_core_config cfg = { .num_queues = queues,
                                    .budget = budget,
                                    .features = VKMT_F_KNOWN };

    setup_config(&cfg, aperture, &fake_ops, features);
}

void setup(uint64_t aperture, uint64_t budget)
{
    setup_full(4, aperture, budget, VKMT_F_KNOWN);
}

void teardown(void)
{
    vkmt_core_destroy(F.core);
    vkmt_backend_destroy(F.be);
    free(F.ctrl);
}

uint8_t *qbase(uint32_t q)
{
    return F.ctrl + (size_t)q * VKMT_QUEUE_STRIDE;
}

uint8_t *staging(uint32_t q)
{
    return qbase(q) + VKMT_QUEUE_STAGING_OFF;
}

struct vkmt_queue_hdr *hdr(uint32_t q)
{
    return (struct vkmt_queue_hdr *)qbase(q);
}

/* Put @sqe on the ring of @d without ringing. */
int next_event(uint32_t q, struct vkmt_qev *out)
{
    struct vkmt_queue_hdr *h = hdr(q);
    uint32_t head = vkmt_sh_load(&h->sh_ev_head);

    if (vkmt_sh_load_acquire(&h->sh_ev_tail) == head) {
        return 0;
    }
    *out = ((struct vkmt_qev *)(qbase(q) + VKMT_QUEUE_EVQ_OFF))[head & (VKMT_EVQ_DEPTH - 1)];
    vkmt_sh_store_release(&h->sh_ev_head, head + 1);
    return 1;
}

void post(struct drv *d, struct vkmt_sqe *sqe)
{
    sqe->cid = ++d->cid;
    memcpy(qbase(d->q) + VKMT_QUEUE_SQ_OFF + (d->sq_tail & (VKMT_QUEUE_DEPTH - 1)) * sizeof(*sqe),
           sqe, sizeof(*sqe));
    d->sq_tail++;
}

/* Take the next completion; false if none is there. */
int reap(struct drv *d, struct vkmt_cqe *out)
{
    struct vkmt_cqe *c = (struct vkmt_cqe *)(qbase(d->q) + VKMT_QUEUE_CQ_OFF) +
                         (d->cq_head & (VKMT_QUEUE_DEPTH - 1));

    if ((vkmt_sh_load_acquire(&c->flags) & 1u) != d->phase) {
        return 0;
    }
    *out = *c;
    d->cq_head++;
    if ((d->cq_head & (VKMT_QUEUE_DEPTH - 1)) == 0) {
        d->phase ^= 1;
    }
    vkmt_sh_store_release(&hdr(d->q)->sh_cq_head, d->cq_head);
    return 1;
}

/* Submit one command on @d and return its status; values into @out. */
uint32_t run_on(struct drv *d, struct vkmt_sqe sqe, struct vkmt_cqe *out)
{
    struct vkmt_cqe c = { 0 };

    post(d, &sqe);
    wr(VKMT_REG_DOORBELL(d->q), d->sq_tail);
    if (!reap(d, &c)) {
        harness_fail(__FILE__, __LINE__, "no completion for opcode %u", sqe.opcode);
        return 0xdeadbeef;
    }
    CHECK_EQ(c.cid, d->cid);
    if (out) {
        *out = c;
    }
    return c.status;
}

uint32_t run(struct vkmt_sqe sqe, struct vkmt_cqe *out)
{
    return run_on(&F.d, sqe, out);
}

uint32_t new_device_on(struct drv *d)
{
    struct vkmt_cqe c;

    CHECK_EQ(run_on(d, (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, &c), VKMT_ST_SUCCESS);
    CHECK(c.value0 != 0);
    return (uint32_t)c.value0;
}

uint32_t new_device(void)
{
    return new_device_on(&F.d);
}

/* Create @n allocations of @size bytes each on @dev; handles into @h. */
uint32_t create_on(struct drv *d, uint32_t dev, uint32_t n, uint64_t size, uint32_t *h,
                   uint16_t flags, uint64_t *res)
{
    struct vkmt_alloc_desc *desc = (struct vkmt_alloc_desc *)staging(d->q);
    uint32_t roff = n * (uint32_t)sizeof(*desc);
    struct vkmt_cqe c = { 0 };
    uint32_t st;

    for (uint32_t i = 0; i < n; i++) {
        desc[i] = (struct vkmt_alloc_desc){ .size = size };
    }
    st = run_on(d,
                (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                   .flags = flags,
                                   .handle = dev,
                                   .count = n,
                                   .payload_len = roff,
                                   .result_off = roff,
                                   .result_len = n * 4 },
                &c);
    if (st == VKMT_ST_SUCCESS && h) {
        memcpy(h, staging(d->q) + roff, n * 4);
    }
    if (res) {
        *res = c.value0;
    }
    return st;
}

uint32_t create(uint32_t dev, uint32_t n, uint64_t size, uint32_t *h)
{
    return create_on(&F.d, dev, n, size, h, 0, NULL);
}

uint32_t offer_ex(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t prio, uint32_t flags,
                  uint16_t sqf)
{
    memcpy(staging(F.d.q), h, n * 4);
    return run((struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                  .flags = sqf,
                                  .handle = dev,
                                  .count = n,
                                  .payload_len = n * 4,
                                  .arg0 = prio,
                                  .arg1 = flags },
               NULL);
}

uint32_t offer(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t prio)
{
    return offer_ex(dev, h, n, prio, 0, 0);
}

uint32_t destroy_allocs(uint32_t dev, const uint32_t *h, uint32_t n)
{
    memcpy(staging(F.d.q), h, (size_t)n * 4);
    return run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                  .handle = dev,
                                  .count = n,
                                  .payload_len = n * 4 },
               NULL);
}

/* Reclaim with results (written to @res when non-NULL). */
uint32_t reclaim_ex(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t *res, uint16_t sqf,
                    uint64_t *fence)
{
    uint32_t roff = (n * 4 + 63) & ~63u;
    struct vkmt_cqe c = { 0 };
    uint32_t st;

    memcpy(staging(F.d.q), h, n * 4);
    st = run((struct vkmt_sqe){ .opcode = VKMT_OP_RECLAIM,
                                .flags = (uint16_t)(sqf | VKMT_SQE_F_WRITE_RESULTS),
                                .handle = dev,
                                .count = n,
                                .payload_len = n * 4,
                                .result_off = roff,
                                .result_len = n * 4 },
             &c);
    if (st == VKMT_ST_SUCCESS && res) {
        memcpy(res, staging(F.d.q) + roff, n * 4);
    }
    if (fence) {
        *fence = c.value0;
    }
    return st;
}

uint32_t reclaim(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t *res)
{
    return reclaim_ex(dev, h, n, res, 0, NULL);
}

/* Lock: returns the status; the CPU pointer into the aperture in *p. */
uint32_t lock(uint32_t dev, uint32_t a, uint8_t **p)
{
    struct vkmt_cqe c = { 0 };
    uint32_t st = run((struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = a }, &c);

    if (st == VKMT_ST_SUCCESS && p) {
        *p = F.be->base + c.value0;
    }
    return st;
}

uint32_t unlock(uint32_t dev, uint32_t a)
{
    return run((struct vkmt_sqe){ .opcode = VKMT_OP_UNLOCK, .handle = dev, .arg0 = a }, NULL);
}

uint64_t trim(uint64_t bytes)
{
    return vkmt_core_trim(F.core, bytes);
}

/* Byte @i of the pattern of @seed: neighbouring pages differ, and so do
 * allocations filled with different seeds. */
uint8_t pattern_byte(uint8_t seed, size_t i)
{
    return (uint8_t)(seed * 131u + i * 7u + (i >> 12) * 29u + (i >> 20) * 53u);
}

void fill(uint32_t dev, uint32_t a, size_t len, uint8_t seed)
{
    uint8_t *p = NULL;

    CHECK_EQ(lock(dev, a, &p), VKMT_ST_SUCCESS);
    for (size_t i = 0; p && i < len; i++) {
        p[i] = pattern_byte(seed, i);
    }
    CHECK_EQ(unlock(dev, a), VKMT_ST_SUCCESS);
}

int content(uint32_t dev, uint32_t a, size_t len, uint8_t seed)
{
    uint8_t *p = NULL;
    int pattern = 1, zero = 1;

    CHECK_EQ(lock(dev, a, &p), VKMT_ST_SUCCESS);
    for (size_t i = 0; p && i < len; i++) {
        pattern &= p[i] == pattern_byte(seed, i);
        zero &= p[i] == 0;
    }
    CHECK_EQ(unlock(dev, a), VKMT_ST_SUCCESS);
    return pattern ? 1 : zero ? 0 : -1;
}

/* A backend discard that fails as a host out of resources would (-EIO). */
int failing_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    (void)id;
    (void)off;
    (void)len;
    return -5;
}

uint64_t memfd_bytes(void)
{
    struct stat st;

    CHECK_EQ(fstat(F.be->fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}
