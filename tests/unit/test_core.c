/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the device engine, driven the way a guest driver drives it:
 * registers, submission entries written into control memory, doorbells, and
 * completions read back. Fake ops count interrupts, guest errors and events;
 * the memfd backend is real, so memory given back is measured in st_blocks.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "test_core.h"
#include "vkmt_core.h"
#include "vkmt_proto.h"
#include "vkmt_shmem.h"

#define PAGE VKMT_PAGE_SIZE
#define MIB (1u << 20)

struct drv { /* the test's driver state for one queue */
    uint32_t q;
    uint32_t sq_tail, cq_head, phase, cid;
};

static struct {
    struct vkmt_core *core;
    struct vkmt_backend *be;
    uint8_t *ctrl;
    uint32_t queues;
    unsigned irqs;
    unsigned guest_errors;
    uint32_t discard_order[64];
    unsigned ndiscards;
    void (*hook)(const struct vkmt_event *ev);
    struct drv d; /* queue 0 */
} F;

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

static const struct vkmt_core_ops fake_ops = {
    .raise_irq = fake_irq,
    .guest_error = fake_error,
    .event = fake_event,
};

static uint32_t rd(uint32_t off)
{
    return vkmt_core_reg_read(F.core, off);
}

static void wr(uint32_t off, uint32_t v)
{
    vkmt_core_reg_write(F.core, off, v);
}

static void handshake(uint32_t features)
{
    wr(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    wr(VKMT_REG(driver_features), features);
    wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
}

static struct drv claim(void)
{
    struct drv d = { .q = rd(VKMT_REG(queue_claim)), .phase = 1 };

    return d;
}

static void setup_full(uint32_t queues, uint64_t aperture, uint64_t budget, uint32_t features)
{
    struct vkmt_core_config cfg = { .num_queues = queues,
                                    .budget = budget,
                                    .features = VKMT_F_KNOWN };

    memset(&F, 0, sizeof(F));
    F.queues = queues;
    F.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(queues));
    CHECK(F.ctrl != NULL);
    CHECK_EQ(vkmt_backend_mem_create(aperture, -1, NULL, &F.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, F.be, F.ctrl, &fake_ops, NULL, &F.core), 0);
    handshake(features);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
}

static void setup(uint64_t aperture, uint64_t budget)
{
    setup_full(4, aperture, budget, VKMT_F_KNOWN);
}

static void teardown(void)
{
    vkmt_core_destroy(F.core);
    vkmt_backend_destroy(F.be);
    free(F.ctrl);
}

static uint8_t *qbase(uint32_t q)
{
    return F.ctrl + (size_t)q * VKMT_QUEUE_STRIDE;
}

static uint8_t *staging(uint32_t q)
{
    return qbase(q) + VKMT_QUEUE_STAGING_OFF;
}

static struct vkmt_queue_hdr *hdr(uint32_t q)
{
    return (struct vkmt_queue_hdr *)qbase(q);
}

/* Put @sqe on the ring of @d without ringing. */
static void post(struct drv *d, struct vkmt_sqe *sqe)
{
    sqe->cid = ++d->cid;
    memcpy(qbase(d->q) + VKMT_QUEUE_SQ_OFF + (d->sq_tail & (VKMT_QUEUE_DEPTH - 1)) * sizeof(*sqe),
           sqe, sizeof(*sqe));
    d->sq_tail++;
}

/* Take the next completion; false if none is there. */
static int reap(struct drv *d, struct vkmt_cqe *out)
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
static uint32_t run_on(struct drv *d, struct vkmt_sqe sqe, struct vkmt_cqe *out)
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

static uint32_t run(struct vkmt_sqe sqe, struct vkmt_cqe *out)
{
    return run_on(&F.d, sqe, out);
}

static uint32_t new_device_on(struct drv *d)
{
    struct vkmt_cqe c;

    CHECK_EQ(run_on(d, (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, &c), VKMT_ST_SUCCESS);
    CHECK(c.value0 != 0);
    return (uint32_t)c.value0;
}

static uint32_t new_device(void)
{
    return new_device_on(&F.d);
}

/* Create @n allocations of @size bytes each on @dev; handles into @h. */
static uint32_t create_on(struct drv *d, uint32_t dev, uint32_t n, uint64_t size, uint32_t *h,
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

static uint32_t create(uint32_t dev, uint32_t n, uint64_t size, uint32_t *h)
{
    return create_on(&F.d, dev, n, size, h, 0, NULL);
}

static uint32_t offer_ex(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t prio, uint32_t flags,
                         uint16_t sqf)
{
    memcpy(staging(0), h, n * 4);
    return run((struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                  .flags = sqf,
                                  .handle = dev,
                                  .count = n,
                                  .payload_len = n * 4,
                                  .arg0 = prio,
                                  .arg1 = flags },
               NULL);
}

static uint32_t offer(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t prio)
{
    return offer_ex(dev, h, n, prio, 0, 0);
}

/* Reclaim with results (written to @res when non-NULL). */
static uint32_t reclaim_ex(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t *res, uint16_t sqf,
                           uint64_t *fence)
{
    uint32_t roff = (n * 4 + 63) & ~63u;
    struct vkmt_cqe c = { 0 };
    uint32_t st;

    memcpy(staging(0), h, n * 4);
    st = run((struct vkmt_sqe){ .opcode = VKMT_OP_RECLAIM,
                                .flags = (uint16_t)(sqf | VKMT_SQE_F_WRITE_RESULTS),
                                .handle = dev,
                                .count = n,
                                .payload_len = n * 4,
                                .result_off = roff,
                                .result_len = n * 4 },
             &c);
    if (st == VKMT_ST_SUCCESS && res) {
        memcpy(res, staging(0) + roff, n * 4);
    }
    if (fence) {
        *fence = c.value0;
    }
    return st;
}

static uint32_t reclaim(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t *res)
{
    return reclaim_ex(dev, h, n, res, 0, NULL);
}

/* Lock: returns the status; the CPU pointer into the aperture in *p. */
static uint32_t lock(uint32_t dev, uint32_t a, uint8_t **p)
{
    struct vkmt_cqe c = { 0 };
    uint32_t st = run((struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = a }, &c);

    if (st == VKMT_ST_SUCCESS && p) {
        *p = F.be->base + c.value0;
    }
    return st;
}

static uint32_t unlock(uint32_t dev, uint32_t a)
{
    return run((struct vkmt_sqe){ .opcode = VKMT_OP_UNLOCK, .handle = dev, .arg0 = a }, NULL);
}

static uint64_t trim(uint64_t bytes)
{
    return vkmt_core_trim(F.core, bytes);
}

static void fill(uint32_t dev, uint32_t a, size_t len, uint8_t seed)
{
    uint8_t *p = NULL;

    CHECK_EQ(lock(dev, a, &p), VKMT_ST_SUCCESS);
    for (size_t i = 0; p && i < len; i++) {
        p[i] = (uint8_t)(seed + i * 7);
    }
    CHECK_EQ(unlock(dev, a), VKMT_ST_SUCCESS);
}

/* 1 if the content is the pattern of @seed, 0 if all zero, -1 otherwise. */
static int content(uint32_t dev, uint32_t a, size_t len, uint8_t seed)
{
    uint8_t *p = NULL;
    int pattern = 1, zero = 1;

    CHECK_EQ(lock(dev, a, &p), VKMT_ST_SUCCESS);
    for (size_t i = 0; p && i < len; i++) {
        pattern &= p[i] == (uint8_t)(seed + i * 7);
        zero &= p[i] == 0;
    }
    CHECK_EQ(unlock(dev, a), VKMT_ST_SUCCESS);
    return pattern ? 1 : zero ? 0 : -1;
}

static uint64_t memfd_bytes(void)
{
    struct stat st;

    CHECK_EQ(fstat(F.be->fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* ---- registers and queues ---- */

static void identity_registers(void)
{
    setup(16 * MIB, 8 * MIB);
    CHECK_EQ(rd(VKMT_REG(magic)), VKMT_MAGIC);
    CHECK_EQ(rd(VKMT_REG(version)), VKMT_VERSION);
    CHECK_EQ(rd(VKMT_REG(device_features)), VKMT_F_KNOWN);
    CHECK_EQ(rd(VKMT_REG(num_queues)), 4);
    CHECK_EQ(rd(VKMT_REG(queue_depth)), VKMT_QUEUE_DEPTH);
    CHECK_EQ(rd(VKMT_REG(queue_stride)), VKMT_QUEUE_STRIDE);
    CHECK_EQ(rd(VKMT_REG(staging_size)), VKMT_STAGING_SIZE);
    CHECK_EQ(rd(VKMT_REG(max_batch)), 10240);
    CHECK_EQ(rd(VKMT_REG(aperture_size_lo)), 16 * MIB);
    CHECK_EQ(rd(VKMT_REG(aperture_size_hi)), 0);
    CHECK_EQ(rd(VKMT_REG(budget_lo)), 8 * MIB);
    CHECK_EQ(rd(0xffc), 0); /* unknown offsets read as zero */
    CHECK_EQ(F.guest_errors, 0);
    wr(VKMT_REG(magic), 1); /* read-only: logged, ignored */
    CHECK_EQ(F.guest_errors, 1);
    CHECK_EQ(rd(VKMT_REG(magic)), VKMT_MAGIC);
    teardown();
}

static void handshake_rules(void)
{
    struct vkmt_core_config cfg = { .num_queues = 2, .features = VKMT_F_RESOURCES };
    uint8_t *ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(2));

    memset(&F, 0, sizeof(F));
    F.ctrl = ctrl;
    CHECK_EQ(vkmt_backend_mem_create(MIB, -1, NULL, &F.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, F.be, ctrl, &fake_ops, NULL, &F.core), 0);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE); /* not ready */
    wr(VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK); /* before FEATURES_OK */
    CHECK_EQ(rd(VKMT_REG(status)) & VKMT_STATUS_DRIVER_OK, 0);
    wr(VKMT_REG(driver_features), VKMT_F_GUEST_TRIM); /* not offered */
    wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    CHECK_EQ(rd(VKMT_REG(status)) & VKMT_STATUS_FEATURES_OK, 0);
    wr(VKMT_REG(driver_features), VKMT_F_RESOURCES);
    wr(VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    CHECK(rd(VKMT_REG(status)) & VKMT_STATUS_FEATURES_OK);
    wr(VKMT_REG(driver_features), 0); /* frozen after FEATURES_OK */
    CHECK_EQ(rd(VKMT_REG(driver_features)), VKMT_F_RESOURCES);
    wr(VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 0);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 1);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE); /* all taken */
    CHECK_EQ(F.guest_errors, 3);
    teardown();
}

static void release_and_reclaim_queue(void)
{
    uint32_t seq;

    setup(MIB, 0);
    seq = hdr(0)->sh_claim_seq;
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ACTIVE);
    wr(VKMT_REG(queue_release), 0);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_FREE);
    wr(VKMT_REG(queue_release), 0); /* not claimed any more */
    CHECK_EQ(F.guest_errors, 1);
    wr(VKMT_REG(queue_release), 99);
    CHECK_EQ(F.guest_errors, 2);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), 0);
    CHECK_EQ(hdr(0)->sh_claim_seq, seq + 1);
    teardown();
}

static void release_frees_everything(void)
{
    uint32_t dev, h[4];
    struct vkmt_stats s;

    setup(16 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, MIB, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 4; i++) {
        fill(dev, h[i], MIB, 1);
    }
    CHECK_EQ(memfd_bytes(), 4 * MIB);
    wr(VKMT_REG(queue_release), 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations, 0);
    CHECK_EQ(s.devices, 0);
    CHECK_EQ(s.committed_bytes, 0);
    CHECK_EQ(memfd_bytes(), 0);
    teardown();
}

/* ---- handles ---- */

static void handles_detect_stale_forged_and_foreign(void)
{
    struct drv other;
    uint32_t dev, dev2, h[2], stale;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK(h[0] != 0 && h[1] != 0 && h[0] != h[1]);
    /* A destroyed allocation's handle stays dead even when its slot is reused. */
    memcpy(staging(0), &h[0], 4);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                    .handle = dev,
                                    .count = 1,
                                    .payload_len = 4 },
                 NULL),
             VKMT_ST_SUCCESS);
    stale = h[0];
    CHECK_EQ(lock(dev, stale, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    CHECK(h[0] != stale);
    CHECK_EQ(lock(dev, stale, NULL), VKMT_ST_INVALID_PARAMETER);
    /* Forged values: a type confused with another, garbage, zero. */
    CHECK_EQ(lock(h[0], h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, dev, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, 0xffffffffu, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0] ^ 0x00100000u, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0] + 1000, NULL), VKMT_ST_INVALID_PARAMETER);
    /* Another queue (another guest process) cannot use these handles. */
    other = claim();
    CHECK_EQ(other.q, 1);
    CHECK_EQ(run_on(&other,
                    (struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = h[0] }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    dev2 = new_device_on(&other);
    CHECK_EQ(run_on(&other,
                    (struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev2, .arg0 = h[0] },
                    NULL),
             VKMT_ST_INVALID_PARAMETER);
    /* An allocation of another device of the same queue is refused too. */
    CHECK_EQ(lock(new_device(), h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_SUCCESS);
    teardown();
}

/* PROTOCOL.md 7: a slot whose generations are used up is retired, not
 * wrapped, so its first handle never comes back; a reset returns it. */
static void handle_slots_retire_instead_of_wrapping(void)
{
    uint32_t first, dev, slot;

    setup(MIB, 0);
    first = new_device();
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = first }, NULL),
             VKMT_ST_SUCCESS);
    /* One free slot: every creation reuses it until it is retired. */
    for (uint32_t i = 0; i < 600; i++) {
        dev = new_device();
        CHECK(dev != first);
        CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev }, NULL),
                 VKMT_ST_SUCCESS);
    }
    slot = first & 0xfffffu;
    CHECK((dev & 0xfffffu) != slot);
    wr(VKMT_REG(status), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    /* The retired slot is in use again, behind the one freed before it. */
    CHECK((new_device() & 0xfffffu) != slot);
    CHECK_EQ(new_device() & 0xfffffu, slot);
    teardown();
}

/* PROTOCOL.md 10: NO_MEMORY is for a recommit; a reclaim that needs no
 * memory succeeds even when the host lowered the budget below what is held. */
static void reclaim_needing_no_memory_succeeds_over_budget(void)
{
    uint32_t dev, h[2], res[2];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 4 * PAGE, h), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, PAGE);
    CHECK_EQ(reclaim(dev, h, 2, res), VKMT_ST_SUCCESS);
    CHECK_EQ(res[0], VKMT_RECLAIM_OK);
    CHECK_EQ(res[1], VKMT_RECLAIM_OK);
    teardown();
}

/* ---- the allocation state machine ---- */

static void offered_content_survives_byte_for_byte(void)
{
    uint32_t dev, h[3], r[3] = { 9, 9, 9 };

    setup(16 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 3, 3 * PAGE + 5, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 3; i++) {
        fill(dev, h[i], 3 * PAGE + 5, (uint8_t)(i * 40));
    }
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(reclaim(dev, h, 3, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_OK);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(r[2], VKMT_RECLAIM_OK); /* never offered: reclaim is a no-op */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(content(dev, h[i], 3 * PAGE + 5, (uint8_t)(i * 40)), 1);
    }
    teardown();
}

static void discarded_content_reads_zero(void)
{
    uint32_t dev, h[2], r[2];
    struct vkmt_stats s;

    setup(16 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 2 * PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], 2 * PAGE, 3);
    fill(dev, h[1], 2 * PAGE, 4);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER); /* discarded */
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(content(dev, h[0], 2 * PAGE, 3), 0);
    CHECK_EQ(content(dev, h[1], 2 * PAGE, 4), 1); /* never offered: untouched */
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 1);
    CHECK_EQ(s.discarded_bytes, 2 * PAGE);
    CHECK_EQ(s.reclaim_discarded, 1);
    CHECK_EQ(s.reclaim_ok, 1);
    CHECK_EQ(s.offers, 1);
    CHECK_EQ(s.discarded_bytes_by_prio[vkmt_prio_index(VKMT_PRIO_LOW)], 2 * PAGE);
    teardown();
}

static void trim_returns_memory_to_the_host(void)
{
    enum { N = 8 };
    uint32_t dev, h[N];
    uint64_t before, after;

    setup(64 * MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, N, MIB, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < N; i++) {
        fill(dev, h[i], MIB, (uint8_t)i);
    }
    before = memfd_bytes();
    CHECK_EQ(before, N * MIB);
    CHECK_EQ(offer(dev, h, 5, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(5 * MIB), 5 * MIB);
    after = memfd_bytes();
    /* The file's allocated blocks, not a counter, show what the host got back. */
    CHECK_EQ(before - after, 5 * MIB);
    for (int i = 5; i < N; i++) {
        CHECK_EQ(content(dev, h[i], MIB, (uint8_t)i), 1);
    }
    teardown();
}

static void eviction_order_by_priority_then_age(void)
{
    uint32_t dev, h[6];
    /* Offered in this order: */
    const uint32_t prio[6] = { VKMT_PRIO_HIGH, VKMT_PRIO_NORMAL, VKMT_PRIO_LOW,
                               VKMT_PRIO_AUTO, VKMT_PRIO_LOW,    VKMT_PRIO_HIGH };
    /* Expected discard order: LOW oldest first, NORMAL/AUTO, then HIGH. */
    const int order[6] = { 2, 4, 1, 3, 0, 5 };

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 6, PAGE, h), VKMT_ST_SUCCESS);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(offer(dev, &h[i], 1, prio[i]), VKMT_ST_SUCCESS);
    }
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(trim(1), PAGE);
    }
    CHECK_EQ(trim(1), 0);
    CHECK_EQ(F.ndiscards, 6);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(F.discard_order[i], h[order[i]]);
    }
    teardown();
}

static void reoffer_after_reclaim_moves_to_the_back(void)
{
    uint32_t dev, h[2];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(reclaim(dev, &h[0], 1, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(1), PAGE);
    CHECK_EQ(F.discard_order[0], h[1]);
    teardown();
}

static void budget_pressure_on_create(void)
{
    uint32_t dev, h[8], more[2], r[8];
    struct vkmt_stats s;

    setup(MIB, 8 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 8, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 1, PAGE, more), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h + 2, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(create(dev, 2, PAGE, more), VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 8 * PAGE);
    CHECK_EQ(s.discards, 2);
    /* More than all offered content can free: refused, nothing discarded. */
    CHECK_EQ(create(dev, 3, PAGE, NULL), VKMT_ST_GRAPHICS_NO_VIDEO_MEMORY);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.discards, 2);
    CHECK_EQ(reclaim(dev, h, 4, r), VKMT_ST_NO_MEMORY);         /* 2 to recommit, 0 free */
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER); /* still offered */
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_OK);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    teardown();
}

static void reclaim_evicts_others_but_never_its_own_batch(void)
{
    uint32_t dev, h[4], r[2];

    setup(MIB, 3 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 3, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(1), PAGE); /* h[0] discarded */
    CHECK_EQ(create(dev, 1, PAGE, &h[3]), VKMT_ST_SUCCESS);
    /* Recommitting h[0] needs one page: h[2] (not in the batch) goes. */
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], h[1] }, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    CHECK_EQ(reclaim(dev, &h[2], 1, r), VKMT_ST_NO_MEMORY);
    teardown();
}

static void lowering_the_budget_discards_offered(void)
{
    uint32_t dev, h[4];
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(rd(VKMT_REG(config_generation)), 0);
    vkmt_core_set_budget(F.core, 3 * PAGE);
    CHECK_EQ(rd(VKMT_REG(config_generation)), 1);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.committed_bytes, 3 * PAGE);
    CHECK_EQ(s.budget_bytes, 3 * PAGE);
    CHECK_EQ(rd(VKMT_REG(budget_lo)), 3 * PAGE);
    CHECK_EQ(F.discard_order[0], h[0]);
    teardown();
}

static void decommit_and_recommit(void)
{
    uint32_t dev, h[2], r[2];
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], PAGE, 5);
    CHECK_EQ(offer_ex(dev, h, 2, VKMT_PRIO_NORMAL, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.decommits, 2);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(r[1], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(reclaim(dev, h, 1, r), VKMT_ST_SUCCESS); /* still gone */
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    /* The v1 thunk's flag: fresh zeroed backing, reported as discarded. */
    CHECK_EQ(reclaim_ex(dev, h, 1, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(content(dev, h[0], PAGE, 5), 0);
    /* Without AllowDecommit a trim only discards. */
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), PAGE);
    CHECK_EQ(reclaim(dev, h, 1, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    teardown();
}

static void batches_are_all_or_nothing(void)
{
    uint32_t dev, h[5], bad[3], r[5];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 5, PAGE, h), VKMT_ST_SUCCESS);
    bad[0] = h[0];
    bad[1] = h[1];
    bad[2] = h[1] ^ 0x40000000u;
    CHECK_EQ(offer(dev, bad, 3, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    bad[2] = h[0]; /* duplicate */
    CHECK_EQ(offer(dev, bad, 3, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_SUCCESS);                     /* nothing was offered */
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER); /* locked */
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_SUCCESS);
    CHECK_EQ(unlock(dev, h[0]), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h + 1, 2, VKMT_PRIO_LOW), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[2], NULL), VKMT_ST_SUCCESS); /* h[2] was not offered */
    CHECK_EQ(unlock(dev, h[2]), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    /* A reclaim with one stranger changes nothing: h[0] stays discarded. */
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], 0x12345678u }, 2, r), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim(dev, (uint32_t[]){ h[0], h[0] }, 2, r), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim(dev, h, 5, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(r[2], VKMT_RECLAIM_OK);
    /* Destroy with one bad handle destroys nothing. */
    memcpy(staging(0), (uint32_t[]){ h[3], h[4], h[4] }, 12);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                    .handle = dev,
                                    .count = 3,
                                    .payload_len = 12 },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(lock(dev, h[3], NULL), VKMT_ST_SUCCESS);
    teardown();
}

static void batch_sizes(void)
{
    static uint32_t h[VKMT_MAX_BATCH], r[VKMT_MAX_BATCH];
    const uint32_t sizes[] = { 1, 2, 64, VKMT_MAX_BATCH };

    setup(64 * MIB, 64 * MIB);
    for (unsigned s = 0; s < 4; s++) {
        uint32_t n = sizes[s], dev = new_device();
        int ok = 1;

        CHECK_EQ(create(dev, n, PAGE, h), VKMT_ST_SUCCESS);
        {
            uint32_t *after = (uint32_t *)(staging(0) + ((n * 4 + 63) & ~63u) + n * 4);

            CHECK_EQ(offer(dev, h, n, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
            CHECK_EQ(trim((uint64_t)(n / 2) * PAGE), (uint64_t)(n / 2) * PAGE);
            memset(r, 0xff, sizeof(r));
            *after = 0xcafebabe; /* the word after the result array */
            CHECK_EQ(reclaim(dev, h, n, r), VKMT_ST_SUCCESS);
            for (uint32_t i = 0; i < n; i++) {
                ok &= r[i] == (i < n / 2 ? VKMT_RECLAIM_DISCARDED : VKMT_RECLAIM_OK);
            }
            CHECK(ok);
            CHECK_EQ(*after, 0xcafebabe);
        }
        CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev }, NULL),
                 VKMT_ST_SUCCESS);
    }
    teardown();
}

/* ---- resources, paging queues, fences ---- */

static void resources_group_their_allocations(void)
{
    uint32_t dev, h[3], r[2], res2h[2];
    uint64_t res, res2;
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create_on(&F.d, dev, 3, PAGE, h, VKMT_SQE_F_CREATE_RESOURCE, &res), VKMT_ST_SUCCESS);
    CHECK_EQ(create_on(&F.d, dev, 2, PAGE, res2h, VKMT_SQE_F_CREATE_RESOURCE, &res2),
             VKMT_ST_SUCCESS);
    CHECK(res != 0 && res2 != 0 && res != res2);
    CHECK_EQ(offer_ex(dev, (uint32_t[]){ (uint32_t)res, (uint32_t)res2 }, 2, VKMT_PRIO_LOW, 0,
                      VKMT_SQE_F_RESOURCES),
             VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[1], NULL), VKMT_ST_INVALID_PARAMETER); /* member offered */
    CHECK_EQ(trim(1), PAGE); /* the oldest member of the first resource */
    CHECK_EQ(reclaim_ex(dev, (uint32_t[]){ (uint32_t)res, (uint32_t)res2 }, 2, r,
                        VKMT_SQE_F_RESOURCES, NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED); /* worst of its members */
    CHECK_EQ(r[1], VKMT_RECLAIM_OK);
    /* Members go with their resource, not one by one. */
    memcpy(staging(0), &h[0], 4);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                    .handle = dev,
                                    .count = 1,
                                    .payload_len = 4 },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                    .handle = dev,
                                    .arg0 = (uint32_t)res },
                 NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(lock(dev, h[2], NULL), VKMT_ST_INVALID_PARAMETER);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.resources, 1);
    CHECK_EQ(s.allocations, 2);
    teardown();
}

static void paging_queue_fence_counts_reclaims(void)
{
    uint32_t dev, pq, sync, h[1];
    struct vkmt_cqe c;
    uint64_t fence = 0;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE,
                                    .handle = dev,
                                    .arg0 = (uint32_t)-1 },
                 &c),
             VKMT_ST_SUCCESS);
    pq = (uint32_t)c.value0;
    sync = (uint32_t)c.value1;
    CHECK(pq && sync && pq != sync);
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev, .arg0 = 2 },
            NULL),
        VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK_EQ(reclaim_ex(pq, h, 1, NULL, VKMT_SQE_F_PAGING_QUEUE, &fence), VKMT_ST_SUCCESS);
        CHECK_EQ(fence, i);
    }
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_FENCE, .handle = sync }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 3);
    /* A device handle is not a paging queue, nor the other way round. */
    CHECK_EQ(reclaim_ex(dev, h, 1, NULL, VKMT_SQE_F_PAGING_QUEUE, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(reclaim_ex(pq, h, 1, NULL, 0, NULL), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev }, NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_FENCE, .handle = sync }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    teardown();
}

static void query_memory_reports_budget_and_usage(void)
{
    uint32_t dev, h[2];
    struct vkmt_cqe c;
    struct drv other;

    setup(MIB, 64 * PAGE);
    dev = new_device();
    CHECK_EQ(create(dev, 2, 3 * PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = VKMT_SEGMENT_LOCAL }, &c),
        VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 64 * PAGE);
    CHECK_EQ(c.value1, 6 * PAGE);
    other = claim();
    CHECK_EQ(run_on(&other, (struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value1, 0); /* usage is per queue, as per process on Windows */
    CHECK_EQ(
        run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = VKMT_SEGMENT_NON_LOCAL },
            &c),
        VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, 0);
    teardown();
}

/* ---- hostile input ---- */

struct bad_case {
    const char *what;
    struct vkmt_sqe sqe;
    uint32_t status;
};

static void malformed_commands_get_precise_statuses(void)
{
    uint32_t dev, h[1], pq;
    struct vkmt_cqe c;
    struct vkmt_stats before, after;

    setup_full(4, MIB, 0, VKMT_F_RESOURCES); /* no GUEST_TRIM */
    dev = new_device();
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev }, &c),
             VKMT_ST_SUCCESS);
    pq = (uint32_t)c.value0;
    memcpy(staging(0), h, 4);
    {
        const uint32_t IP = VKMT_ST_INVALID_PARAMETER;
        const struct bad_case cases[] = {
            { "opcode 0", { .opcode = 0 }, VKMT_ST_NOT_SUPPORTED },
            { "opcode 0xff", { .opcode = 0xff }, VKMT_ST_NOT_SUPPORTED },
            { "opcode past the last", { .opcode = VKMT_OP_MAX + 1 }, VKMT_ST_NOT_SUPPORTED },
            { "reserved0", { .opcode = VKMT_OP_CREATE_DEVICE, .reserved0 = 1 }, IP },
            { "reserved1", { .opcode = VKMT_OP_CREATE_DEVICE, .reserved1 = { [15] = 1 } }, IP },
            { "unused handle", { .opcode = VKMT_OP_CREATE_DEVICE, .handle = 1 }, IP },
            { "unused arg64",
              { .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = h[0], .arg64 = 1 },
              IP },
            { "unknown flag",
              { .opcode = VKMT_OP_OFFER,
                .flags = 0x8000,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .arg0 = 1 },
              IP },
            { "flag of another opcode",
              { .opcode = VKMT_OP_OFFER,
                .flags = VKMT_SQE_F_RECOMMIT,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .arg0 = 1 },
              IP },
            { "count 0", { .opcode = VKMT_OP_OFFER, .handle = dev, .count = 0, .arg0 = 1 }, IP },
            { "count 10241",
              { .opcode = VKMT_OP_OFFER,
                .handle = dev,
                .count = 10241,
                .payload_len = 40964,
                .arg0 = 1 },
              IP },
            { "count 0xffffffff",
              { .opcode = VKMT_OP_OFFER,
                .handle = dev,
                .count = 0xffffffff,
                .payload_len = 0xfffffffc,
                .arg0 = 1 },
              IP },
            { "payload length short",
              { .opcode = VKMT_OP_OFFER, .handle = dev, .count = 2, .payload_len = 4, .arg0 = 1 },
              IP },
            { "payload past staging",
              { .opcode = VKMT_OP_OFFER,
                .handle = dev,
                .count = 1,
                .payload_off = VKMT_STAGING_SIZE,
                .payload_len = 4,
                .arg0 = 1 },
              IP },
            { "payload offset wraps",
              { .opcode = VKMT_OP_OFFER,
                .handle = dev,
                .count = 1,
                .payload_off = 0xfffffffc,
                .payload_len = 4,
                .arg0 = 1 },
              IP },
            { "payload misaligned",
              { .opcode = VKMT_OP_OFFER,
                .handle = dev,
                .count = 1,
                .payload_off = 2,
                .payload_len = 4,
                .arg0 = 1 },
              IP },
            { "offer priority 0",
              { .opcode = VKMT_OP_OFFER, .handle = dev, .count = 1, .payload_len = 4, .arg0 = 0 },
              IP },
            { "offer priority 5",
              { .opcode = VKMT_OP_OFFER, .handle = dev, .count = 1, .payload_len = 4, .arg0 = 5 },
              IP },
            { "offer reserved flag",
              { .opcode = VKMT_OP_OFFER,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .arg0 = 1,
                .arg1 = 4 },
              IP },
            { "offer on a paging queue",
              { .opcode = VKMT_OP_OFFER, .handle = pq, .count = 1, .payload_len = 4, .arg0 = 1 },
              IP },
            { "results past staging",
              { .opcode = VKMT_OP_RECLAIM,
                .flags = VKMT_SQE_F_WRITE_RESULTS,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .result_off = VKMT_STAGING_SIZE - 2,
                .result_len = 4 },
              IP },
            { "results short",
              { .opcode = VKMT_OP_RECLAIM,
                .flags = VKMT_SQE_F_WRITE_RESULTS,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .result_off = 64,
                .result_len = 2 },
              IP },
            { "result area without the flag",
              { .opcode = VKMT_OP_RECLAIM,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .result_off = 64,
                .result_len = 4 },
              IP },
            { "create size 0",
              { .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                .handle = dev,
                .count = 1,
                .payload_off = 64,
                .payload_len = 16,
                .result_off = 128,
                .result_len = 4 },
              IP },
            { "create result count",
              { .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                .handle = dev,
                .count = 1,
                .payload_len = 16,
                .result_off = 128,
                .result_len = 8 },
              IP },
            { "destroy resource with a list",
              { .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                .handle = dev,
                .count = 1,
                .payload_len = 4,
                .arg0 = h[0] },
              IP },
            { "paging queue priority 7",
              { .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev, .arg0 = 7 },
              IP },
            { "segment group 2", { .opcode = VKMT_OP_QUERY_MEMORY, .arg0 = 2 }, IP },
            { "fence of a device", { .opcode = VKMT_OP_QUERY_FENCE, .handle = dev }, IP },
            { "trim not negotiated",
              { .opcode = VKMT_OP_TRIM, .arg64 = 1 },
              VKMT_ST_NOT_SUPPORTED },
        };

        vkmt_core_get_stats(F.core, &before);
        memset(staging(0) + 64, 0, 16); /* a desc of size 0 at offset 64 */
        for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            uint32_t st = run(cases[i].sqe, NULL);

            if (st != cases[i].status) {
                harness_fail(__FILE__, __LINE__, "%s: status 0x%x, want 0x%x", cases[i].what, st,
                             cases[i].status);
            }
        }
        vkmt_core_get_stats(F.core, &after);
        CHECK_EQ(after.command_errors - before.command_errors, sizeof(cases) / sizeof(cases[0]));
        CHECK_EQ(after.offers, before.offers);
        CHECK_EQ(after.allocations, before.allocations);
    }
    /* The queue still works after all that. */
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    teardown();
}

static void doorbell_out_of_range_stops_only_that_queue(void)
{
    struct drv other;
    uint32_t dev;

    setup(MIB, 0);
    other = claim();
    wr(VKMT_REG_DOORBELL(0), VKMT_QUEUE_DEPTH + 1);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ERROR);
    CHECK_EQ(hdr(0)->sh_error, VKMT_QERR_DOORBELL_RANGE);
    CHECK_EQ(F.irqs, 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 1);
    wr(VKMT_REG(isr_lo), 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 0);
    wr(VKMT_REG_DOORBELL(0), 1); /* ignored in the error state */
    CHECK_EQ(hdr(0)->sh_sq_head, 0);
    dev = new_device_on(&other);
    CHECK(dev != 0);
    wr(VKMT_REG_DOORBELL(3), 1);     /* a queue nobody claimed */
    wr(VKMT_REG_DOORBELL(63), 1);    /* beyond num_queues */
    wr(VKMT_REG_DOORBELL(0) + 2, 1); /* unaligned */
    CHECK_EQ(F.guest_errors, 5);
    /* Releasing the broken queue makes it usable again. */
    wr(VKMT_REG(queue_release), 0);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    CHECK(new_device() != 0);
    teardown();
}

static void full_completion_queue_stalls_until_consumed(void)
{
    struct vkmt_cqe c;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };

    setup(MIB, 0);
    for (unsigned i = 0; i < VKMT_QUEUE_DEPTH; i++) {
        post(&F.d, &sqe);
    }
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK_EQ(hdr(0)->sh_sq_head, VKMT_QUEUE_DEPTH);
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK_EQ(hdr(0)->sh_sq_head, VKMT_QUEUE_DEPTH); /* CQ full: waits */
    CHECK(reap(&F.d, &c));
    CHECK_EQ(c.cid, 1);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK_EQ(hdr(0)->sh_sq_head, VKMT_QUEUE_DEPTH + 1);
    for (unsigned i = 2; i <= VKMT_QUEUE_DEPTH + 1; i++) {
        CHECK(reap(&F.d, &c));
        CHECK_EQ(c.cid, i);
        CHECK_EQ(c.status, VKMT_ST_SUCCESS);
    }
    CHECK(!reap(&F.d, &c));
    /* A lying CQ head only stalls this queue. */
    vkmt_sh_store(&hdr(0)->sh_cq_head, F.d.cq_head + 1000);
    post(&F.d, &sqe);
    wr(VKMT_REG_DOORBELL(0), F.d.sq_tail);
    CHECK(!reap(&F.d, &c));
    teardown();
}

static void kick_takes_the_tail_from_shared_memory(void)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct vkmt_cqe c;

    setup(MIB, 0);
    post(&F.d, &sqe);
    post(&F.d, &sqe);
    vkmt_sh_store_release(&hdr(0)->sh_sq_tail, F.d.sq_tail);
    vkmt_core_kick(F.core, 0);
    CHECK(reap(&F.d, &c));
    CHECK(reap(&F.d, &c));
    CHECK_EQ(c.cid, 2);
    CHECK_EQ(hdr(0)->sh_sq_head, 2);
    vkmt_core_kick(F.core, 2); /* not claimed */
    CHECK_EQ(F.guest_errors, 1);
    vkmt_sh_store(&hdr(0)->sh_sq_tail, 0x80000000u); /* far past the head */
    vkmt_core_kick(F.core, 0);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ERROR);
    teardown();
}

static uint32_t scribble_q;

static void scribble(const struct vkmt_event *ev)
{
    /* The guest rewrites the ring and the payload while the device works. */
    if (ev->type == VKMT_EV_OFFER) {
        memset(qbase(scribble_q) + VKMT_QUEUE_SQ_OFF, 0xa5, 64 * 64);
        memset(staging(scribble_q), 0x5a, 4096);
    }
}

static void device_acts_on_its_private_copy(void)
{
    uint32_t dev, h[8], r[8];
    struct vkmt_stats s;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 8, PAGE, h), VKMT_ST_SUCCESS);
    scribble_q = 0;
    F.hook = scribble;
    CHECK_EQ(offer(dev, h, 8, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    F.hook = NULL;
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.offers, 8);
    CHECK_EQ(s.offered_bytes_by_prio[vkmt_prio_index(VKMT_PRIO_HIGH)], 8 * PAGE);
    CHECK_EQ(reclaim(dev, h, 8, r), VKMT_ST_SUCCESS);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(r[i], VKMT_RECLAIM_OK);
    }
    teardown();
}

static uint32_t reclaim_prio[8];
static unsigned nreclaim_prio;

static void note_reclaim_prio(const struct vkmt_event *ev)
{
    if (ev->type == VKMT_EV_RECLAIM && nreclaim_prio < 8) {
        reclaim_prio[nreclaim_prio++] = ev->priority;
    }
}

static void per_priority_statistics(void)
{
    uint32_t dev, h[4], r[4];
    struct vkmt_stats s;
    const unsigned lo = vkmt_prio_index(VKMT_PRIO_LOW), no = vkmt_prio_index(VKMT_PRIO_NORMAL),
                   hi = vkmt_prio_index(VKMT_PRIO_HIGH), au = vkmt_prio_index(VKMT_PRIO_AUTO);

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 4, 2 * PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[0], 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[1], 1, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, &h[2], 1, VKMT_PRIO_HIGH), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(PAGE), 2 * PAGE); /* the LOW one */
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.offered_bytes_by_prio[lo], 0);
    CHECK_EQ(s.offered_bytes_by_prio[no], 2 * PAGE);
    CHECK_EQ(s.offered_bytes_total_by_prio[lo], 2 * PAGE);
    CHECK_EQ(s.discarded_bytes_by_prio[lo], 2 * PAGE);

    /* h[3] was never offered: its OK counts only in the total. */
    nreclaim_prio = 0;
    F.hook = note_reclaim_prio;
    CHECK_EQ(reclaim(dev, h, 4, r), VKMT_ST_SUCCESS);
    CHECK_EQ(nreclaim_prio, 4);
    CHECK_EQ(reclaim_prio[0], VKMT_PRIO_LOW);
    CHECK_EQ(reclaim_prio[1], VKMT_PRIO_NORMAL);
    CHECK_EQ(reclaim_prio[2], VKMT_PRIO_HIGH);
    CHECK_EQ(reclaim_prio[3], 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.reclaim_ok, 3);
    CHECK_EQ(s.reclaim_discarded, 1);
    CHECK_EQ(s.reclaims_by_prio[lo][VKMT_RECLAIM_DISCARDED], 1);
    CHECK_EQ(s.reclaims_by_prio[lo][VKMT_RECLAIM_OK], 0);
    CHECK_EQ(s.reclaims_by_prio[no][VKMT_RECLAIM_OK], 1);
    CHECK_EQ(s.reclaims_by_prio[hi][VKMT_RECLAIM_OK], 1);
    CHECK_EQ(s.reclaims_by_prio[au][VKMT_RECLAIM_OK], 0);
    CHECK_EQ(s.offered_bytes_by_prio[no], 0);

    /* Reclaimed means resident: no offer is in effect, no priority counts. */
    nreclaim_prio = 0;
    CHECK_EQ(reclaim(dev, h, 3, r), VKMT_ST_SUCCESS);
    CHECK_EQ(reclaim_prio[0], 0);
    CHECK_EQ(reclaim_prio[2], 0);

    /* A decommitted allocation stays lost, so every reclaim counts. */
    CHECK_EQ(offer_ex(dev, &h[3], 1, VKMT_PRIO_AUTO, VKMT_OFFER_F_ALLOW_DECOMMIT, 0),
             VKMT_ST_SUCCESS);
    CHECK_EQ(trim(UINT64_MAX), 2 * PAGE);
    CHECK_EQ(reclaim(dev, &h[3], 1, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_NOT_COMMITTED);
    CHECK_EQ(reclaim_ex(dev, &h[3], 1, r, VKMT_SQE_F_RECOMMIT, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    F.hook = NULL;
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.reclaims_by_prio[au][VKMT_RECLAIM_NOT_COMMITTED], 1);
    CHECK_EQ(s.reclaims_by_prio[au][VKMT_RECLAIM_DISCARDED], 1);
    CHECK_EQ(s.offered_bytes_total_by_prio[au], 2 * PAGE);
    CHECK_EQ(s.reclaim_ok, 6);
    CHECK_EQ(s.reclaims_by_prio[lo][VKMT_RECLAIM_OK] + s.reclaims_by_prio[no][VKMT_RECLAIM_OK] +
                 s.reclaims_by_prio[hi][VKMT_RECLAIM_OK],
             2);
    teardown();
}

static struct vkmt_event host_events[4];
static unsigned nhost_events;

static void note_host_event(const struct vkmt_event *ev)
{
    if ((ev->type == VKMT_EV_TRIM || ev->type == VKMT_EV_BUDGET) && nhost_events < 4) {
        host_events[nhost_events++] = *ev;
    }
}

static void trims_and_budget_changes_are_events(void)
{
    uint32_t dev, h[2];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    nhost_events = 0;
    F.ndiscards = 0;
    F.hook = note_host_event;
    CHECK_EQ(trim(PAGE), PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM }, NULL), VKMT_ST_SUCCESS);
    vkmt_core_set_budget(F.core, 0);
    F.hook = NULL;
    CHECK_EQ(nhost_events, 3);
    /* The host's trim, then the guest's on queue 0 (0: everything). */
    CHECK_EQ(host_events[0].type, VKMT_EV_TRIM);
    CHECK_EQ(host_events[0].queue, VKMT_EV_HOST);
    CHECK_EQ(host_events[0].size, PAGE);
    CHECK_EQ(host_events[1].type, VKMT_EV_TRIM);
    CHECK_EQ(host_events[1].queue, 0);
    CHECK_EQ(host_events[1].size, UINT64_MAX);
    /* A budget event names the budget in force: 0 asked for half the aperture. */
    CHECK_EQ(host_events[2].type, VKMT_EV_BUDGET);
    CHECK_EQ(host_events[2].queue, VKMT_EV_HOST);
    CHECK_EQ(host_events[2].size, MIB / 2);
    CHECK_EQ(F.ndiscards, 2);
    teardown();
}

/* ---- reset, removal, interrupts ---- */

static void reset_tears_down_and_bumps_the_epoch(void)
{
    uint32_t dev, h[2];
    uint32_t epoch;
    struct vkmt_stats s;

    setup(16 * MIB, 0);
    epoch = rd(VKMT_REG(removal_epoch));
    dev = new_device();
    CHECK_EQ(create(dev, 2, MIB, h), VKMT_ST_SUCCESS);
    fill(dev, h[0], MIB, 1);
    wr(VKMT_REG(status), 0);
    CHECK_EQ(rd(VKMT_REG(removal_epoch)), epoch + 1);
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_FREE);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations, 0);
    CHECK_EQ(s.committed_bytes, 0);
    CHECK_EQ(memfd_bytes(), 0);
    /* A fresh bring-up works and old handles are gone. */
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    CHECK_EQ(lock(dev, h[0], NULL), VKMT_ST_INVALID_PARAMETER);
    teardown();
}

static void removed_device_answers_device_removed(void)
{
    setup(MIB, 0);
    vkmt_core_set_removed(F.core, true);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL),
             VKMT_ST_DEVICE_REMOVED);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = 0x77 }, NULL), VKMT_ST_DEVICE_REMOVED);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    vkmt_core_set_removed(F.core, false);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL), VKMT_ST_SUCCESS);
    teardown();
}

static void completion_interrupts(void)
{
    struct drv other;

    setup(MIB, 0);
    other = claim();
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(F.irqs, 0);
    CHECK_EQ(run_on(&other,
                    (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE, .flags = VKMT_SQE_F_IRQ },
                    NULL),
             VKMT_ST_SUCCESS);
    CHECK_EQ(F.irqs, 1);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 1u << other.q);
    wr(VKMT_REG(isr_lo), 1u << other.q);
    CHECK_EQ(rd(VKMT_REG(isr_lo)), 0);
    teardown();
}

static void guest_trim_needs_the_feature(void)
{
    uint32_t dev, h[2];
    struct vkmt_cqe c;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 2, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_NORMAL), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM, .arg64 = 1 }, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_TRIM }, &c), VKMT_ST_SUCCESS);
    CHECK_EQ(c.value0, PAGE); /* 0 means everything that is left */
    teardown();
}

static void object_limit_is_enforced(void)
{
    struct vkmt_core_config cfg = { .num_queues = 1, .max_objects = 5, .features = VKMT_F_KNOWN };
    uint32_t dev, h[4];

    memset(&F, 0, sizeof(F));
    F.ctrl = aligned_alloc(4096, vkmt_core_ctrl_size(1));
    CHECK_EQ(vkmt_backend_mem_create(MIB, -1, NULL, &F.be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, F.be, F.ctrl, &fake_ops, NULL, &F.core), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    dev = new_device();
    CHECK_EQ(create(dev, 5, PAGE, NULL), VKMT_ST_NO_MEMORY);
    CHECK_EQ(create(dev, 4, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL), VKMT_ST_NO_MEMORY);
    teardown();
}

static void resources_need_the_feature(void)
{
    uint32_t dev, h[1];

    setup_full(2, MIB, 0, VKMT_F_GUEST_TRIM);
    dev = new_device();
    CHECK_EQ(create_on(&F.d, dev, 1, PAGE, h, VKMT_SQE_F_CREATE_RESOURCE, NULL),
             VKMT_ST_NOT_SUPPORTED);
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    CHECK_EQ(offer_ex(dev, h, 1, VKMT_PRIO_LOW, 0, VKMT_SQE_F_RESOURCES), VKMT_ST_NOT_SUPPORTED);
    CHECK_EQ(offer(dev, h, 1, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    teardown();
}

/* ---- texture allocations ---- */

#define TEX(fmt, w, h) VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_##fmt), VKMT_ALLOC_DIMS(w, h)

/* CREATE_ALLOCATIONS of the @n descriptors @d on @dev; handles into @h. */
static uint32_t create_descs(uint32_t dev, const struct vkmt_alloc_desc *d, uint32_t n, uint32_t *h)
{
    uint32_t roff = n * (uint32_t)sizeof(*d);
    uint32_t st;

    memcpy(staging(F.d.q), d, roff);
    st = run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                .handle = dev,
                                .count = n,
                                .payload_len = roff,
                                .result_off = roff,
                                .result_len = n * 4 },
             NULL);
    if (st == VKMT_ST_SUCCESS && h) {
        memcpy(h, staging(F.d.q) + roff, n * 4);
    }
    return st;
}

static uint64_t queue_committed(void)
{
    struct vkmt_cqe c;

    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_MEMORY }, &c), VKMT_ST_SUCCESS);
    return c.value1;
}

static void texture_descriptors_are_validated(void)
{
    static const struct vkmt_alloc_desc good[] = {
        { 4 * 64 * 32, TEX(B8G8R8A8_UNORM, 64, 32) },
        { 4 * 7 * 3, TEX(R8G8B8A8_UNORM, 7, 3) },
        { 100 * 30, TEX(R8_UNORM, 100, 30) },
        { VKMT_TEXTURE_MAX_DIM, TEX(R8_UNORM, VKMT_TEXTURE_MAX_DIM, 1) },
        { VKMT_TEXTURE_MAX_DIM, TEX(R8_UNORM, 1, VKMT_TEXTURE_MAX_DIM) },
    };
    static const struct {
        const char *what;
        struct vkmt_alloc_desc d;
    } bad[] = {
        { "size one byte short", { 4 * 64 * 32 - 1, TEX(B8G8R8A8_UNORM, 64, 32) } },
        { "size one byte over", { 4 * 64 * 32 + 1, TEX(B8G8R8A8_UNORM, 64, 32) } },
        { "size page-rounded", { PAGE, TEX(R8_UNORM, 100, 30) } },
        { "format 0", { 64 * 32, VKMT_ALLOC_F_TEXTURE2D, VKMT_ALLOC_DIMS(64, 32) } },
        { "unknown format",
          { 64 * 32, VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_COUNT), VKMT_ALLOC_DIMS(64, 32) } },
        { "format 255", { 64 * 32, VKMT_ALLOC_TEXTURE_FLAGS(255), VKMT_ALLOC_DIMS(64, 32) } },
        { "width 0", { 4 * 32, TEX(B8G8R8A8_UNORM, 0, 32) } },
        { "height 0", { 4 * 64, TEX(B8G8R8A8_UNORM, 64, 0) } },
        { "width over the maximum", { VKMT_TEXTURE_MAX_DIM + 1, TEX(R8_UNORM, 16385, 1) } },
        { "height over the maximum", { VKMT_TEXTURE_MAX_DIM + 1, TEX(R8_UNORM, 1, 16385) } },
        { "a format without the flag",
          { 4 * 64 * 32, VKMT_FORMAT_B8G8R8A8_UNORM << 8, VKMT_ALLOC_DIMS(64, 32) } },
        { "an unknown flag beside it", { 4 * 64 * 32, TEX(B8G8R8A8_UNORM, 64, 32) | 0x2u } },
        { "dims on a buffer", { PAGE, 0, VKMT_ALLOC_DIMS(64, 16) } },
    };
    struct vkmt_alloc_desc batch[3];
    struct vkmt_stats st;
    struct vkmt_cqe c;
    uint32_t dev, h[5];

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create_descs(dev, good, 5, h), VKMT_ST_SUCCESS);
    CHECK_EQ(queue_committed(), 2 * PAGE + PAGE + PAGE + 4 * PAGE + 4 * PAGE);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = h[2] }, &c),
             VKMT_ST_SUCCESS);
    CHECK_EQ(c.value1, 100 * 30); /* the size as created: the packed rows */
    CHECK_EQ(unlock(dev, h[2]), VKMT_ST_SUCCESS);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned errors = F.guest_errors;

        /* Last in a batch of good ones: nothing of the batch is created. */
        batch[0] = good[0];
        batch[1] = good[2];
        batch[2] = bad[i].d;
        if (create_descs(dev, batch, 3, NULL) != VKMT_ST_INVALID_PARAMETER) {
            harness_fail(__FILE__, __LINE__, "accepted: %s", bad[i].what);
        }
        CHECK_EQ(F.guest_errors, errors + 1);
    }
    CHECK_EQ(queue_committed(), 12 * PAGE);
    vkmt_core_get_stats(F.core, &st);
    CHECK_EQ(st.allocations, 5);
    teardown();
}

static void textures_need_the_feature(void)
{
    static const struct vkmt_alloc_desc tex = { 4 * 64 * 32, TEX(B8G8R8A8_UNORM, 64, 32) };
    uint32_t dev, h[1];

    setup_full(2, MIB, 0, VKMT_F_GUEST_TRIM | VKMT_F_RESOURCES);
    dev = new_device();
    CHECK_EQ(create_descs(dev, &tex, 1, h), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(create(dev, 1, tex.size, h), VKMT_ST_SUCCESS); /* the same bytes as a buffer */
    teardown();
}

static struct vkmt_shape commits[8];
static bool commit_textured[8];
static unsigned ncommits;

static int note_commit(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                       const struct vkmt_shape *shape)
{
    (void)b;
    (void)id;
    (void)off;
    (void)len;
    if (ncommits < 8) {
        commit_textured[ncommits] = shape != NULL;
        commits[ncommits++] = shape ? *shape : (struct vkmt_shape){ 0 };
    }
    return 0;
}

/* The backend learns the shape at create and again at every recommit. */
static void texture_shape_reaches_the_backend(void)
{
    static const struct vkmt_alloc_desc d[] = {
        { 4 * 640 * 480, TEX(R8G8B8A8_UNORM, 640, 480) },
        { 3 * PAGE, 0, 0 },
    };
    struct vkmt_backend_ops noting;
    const struct vkmt_backend_ops *real;
    uint32_t dev, h[2], r[2];

    setup(8 * MIB, 0);
    real = F.be->ops;
    noting = *real;
    noting.commit = note_commit;
    F.be->ops = &noting;
    ncommits = 0;
    dev = new_device();
    CHECK_EQ(create_descs(dev, d, 2, h), VKMT_ST_SUCCESS);
    CHECK_EQ(ncommits, 2);
    CHECK(commit_textured[0] && !commit_textured[1]);
    CHECK_EQ(commits[0].format, VKMT_FORMAT_R8G8B8A8_UNORM);
    CHECK_EQ(commits[0].width, 640);
    CHECK_EQ(commits[0].height, 480);
    CHECK_EQ(commits[0].stride, 4 * 640);
    CHECK_EQ(offer(dev, h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    CHECK_EQ(trim(8 * MIB), 300 * PAGE + 3 * PAGE);
    CHECK_EQ(reclaim(dev, h, 2, r), VKMT_ST_SUCCESS);
    CHECK_EQ(r[0], VKMT_RECLAIM_DISCARDED);
    CHECK_EQ(ncommits, 4);
    CHECK(commit_textured[2] && !commit_textured[3]);
    CHECK_EQ(memcmp(&commits[2], &commits[0], sizeof(commits[0])), 0);
    F.be->ops = real;
    teardown();
}

static int failing_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    (void)id;
    (void)off;
    (void)len;
    return -5; /* -EIO */
}

static void backend_failure_needs_a_reset(void)
{
    struct vkmt_backend_ops broken;
    const struct vkmt_backend_ops *real;
    uint32_t dev, h[1];

    setup(MIB, 0);
    real = F.be->ops;
    broken = *real;
    broken.discard = failing_discard;
    dev = new_device();
    CHECK_EQ(create(dev, 1, PAGE, h), VKMT_ST_SUCCESS);
    F.be->ops = &broken;
    memcpy(staging(0), h, 4);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                                    .handle = dev,
                                    .count = 1,
                                    .payload_len = 4 },
                 NULL),
             VKMT_ST_SUCCESS);
    F.be->ops = real;
    CHECK(rd(VKMT_REG(status)) & VKMT_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL),
             VKMT_ST_DEVICE_REMOVED);
    CHECK_EQ(rd(VKMT_REG(queue_claim)), VKMT_QUEUE_NONE);
    wr(VKMT_REG(status), 0);
    CHECK_EQ(rd(VKMT_REG(status)), 0);
    handshake(VKMT_F_KNOWN);
    F.d = claim();
    CHECK_EQ(F.d.q, 0);
    teardown();
}

static void teardown_frees_every_owned_object(void)
{
    uint32_t dev[3], h[4];
    uint64_t res;
    struct vkmt_stats s;
    struct vkmt_cqe c;

    setup(4 * MIB, 0);
    for (int i = 0; i < 3; i++) {
        dev[i] = new_device();
        CHECK_EQ(create(dev[i], 4, PAGE, h), VKMT_ST_SUCCESS);
        CHECK_EQ(create_on(&F.d, dev[i], 3, PAGE, NULL, VKMT_SQE_F_CREATE_RESOURCE, &res),
                 VKMT_ST_SUCCESS);
        CHECK_EQ(
            run((struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE, .handle = dev[i] }, &c),
            VKMT_ST_SUCCESS);
        CHECK_EQ(offer(dev[i], h, 2, VKMT_PRIO_LOW), VKMT_ST_SUCCESS);
    }
    /* The middle device goes alone; the others stay whole. */
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_DEVICE, .handle = dev[1] }, NULL),
             VKMT_ST_SUCCESS);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.devices, 2);
    CHECK_EQ(s.allocations, 14);
    CHECK_EQ(s.resources, 2);
    CHECK_EQ(s.committed_bytes, 14 * PAGE);
    CHECK_EQ(s.offered_bytes, 4 * PAGE);
    CHECK_EQ(trim(UINT64_MAX), 4 * PAGE); /* the offer lists hold no freed slots */
    wr(VKMT_REG(queue_release), 0);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.devices + s.allocations + s.resources + s.committed_bytes, 0);
    teardown();
}

static void reap_releases_only_the_claim_it_names(void)
{
    uint32_t seq;
    struct vkmt_stats s;

    setup(MIB, 0);
    CHECK_EQ(create(new_device(), 2, PAGE, NULL), VKMT_ST_SUCCESS);
    seq = hdr(0)->sh_claim_seq;
    wr(VKMT_REG(queue_reap), VKMT_REAP(0, seq + 1)); /* a stale claim: ignored */
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_ACTIVE);
    wr(VKMT_REG(queue_reap), VKMT_REAP(3, seq)); /* never claimed: ignored */
    CHECK_EQ(F.guest_errors, 0);
    wr(VKMT_REG(queue_reap), VKMT_REAP(0, seq));
    CHECK_EQ(hdr(0)->sh_state, VKMT_QSTATE_FREE);
    vkmt_core_get_stats(F.core, &s);
    CHECK_EQ(s.allocations, 0);
    teardown();
}

static void query_stats_fills_one_block(void)
{
    struct vkmt_wire_stats w;
    uint32_t dev;

    setup(MIB, 0);
    dev = new_device();
    CHECK_EQ(create(dev, 3, PAGE, NULL), VKMT_ST_SUCCESS);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_STATS,
                                    .result_off = 64,
                                    .result_len = sizeof(w) },
                 NULL),
             VKMT_ST_SUCCESS);
    memcpy(&w, staging(0) + 64, sizeof(w));
    CHECK_EQ(w.allocations, 3);
    CHECK_EQ(w.committed_bytes, 3 * PAGE);
    CHECK_EQ(w.queues_claimed, 1);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_STATS, .result_len = 64 }, NULL),
             VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(run((struct vkmt_sqe){ .opcode = VKMT_OP_QUERY_STATS,
                                    .result_off = VKMT_STAGING_SIZE - 64,
                                    .result_len = sizeof(w) },
                 NULL),
             VKMT_ST_INVALID_PARAMETER);
    teardown();
}

static void bad_configurations_are_refused(void)
{
    struct vkmt_backend *be;
    struct vkmt_core *core;
    uint8_t ctrl[64];
    struct vkmt_core_config cfg = { .num_queues = 0 };

    CHECK_EQ(vkmt_backend_mem_create(MIB, -1, NULL, &be), 0);
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &core), -22);
    cfg.num_queues = VKMT_MAX_QUEUES + 1;
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &core), -22);
    cfg.num_queues = 1;
    cfg.features = 0x80000000u;
    CHECK_EQ(vkmt_core_create(&cfg, be, ctrl, &fake_ops, NULL, &core), -22);
    vkmt_backend_destroy(be);
    CHECK_EQ(vkmt_backend_mem_create(MIB + 1, -1, NULL, &be), -22);
    CHECK_EQ(vkmt_backend_mem_create(0, -1, NULL, &be), -22);
}

static const struct test core_tests[] = {
    TEST(identity_registers),
    TEST(handshake_rules),
    TEST(release_and_reclaim_queue),
    TEST(release_frees_everything),
    TEST(handles_detect_stale_forged_and_foreign),
    TEST(handle_slots_retire_instead_of_wrapping),
    TEST(offered_content_survives_byte_for_byte),
    TEST(discarded_content_reads_zero),
    TEST(trim_returns_memory_to_the_host),
    TEST(eviction_order_by_priority_then_age),
    TEST(reoffer_after_reclaim_moves_to_the_back),
    TEST(budget_pressure_on_create),
    TEST(reclaim_evicts_others_but_never_its_own_batch),
    TEST(lowering_the_budget_discards_offered),
    TEST(reclaim_needing_no_memory_succeeds_over_budget),
    TEST(decommit_and_recommit),
    TEST(batches_are_all_or_nothing),
    TEST(batch_sizes),
    TEST(resources_group_their_allocations),
    TEST(paging_queue_fence_counts_reclaims),
    TEST(query_memory_reports_budget_and_usage),
    TEST(malformed_commands_get_precise_statuses),
    TEST(doorbell_out_of_range_stops_only_that_queue),
    TEST(full_completion_queue_stalls_until_consumed),
    TEST(kick_takes_the_tail_from_shared_memory),
    TEST(device_acts_on_its_private_copy),
    TEST(per_priority_statistics),
    TEST(trims_and_budget_changes_are_events),
    TEST(reset_tears_down_and_bumps_the_epoch),
    TEST(removed_device_answers_device_removed),
    TEST(completion_interrupts),
    TEST(guest_trim_needs_the_feature),
    TEST(object_limit_is_enforced),
    TEST(resources_need_the_feature),
    TEST(texture_descriptors_are_validated),
    TEST(textures_need_the_feature),
    TEST(texture_shape_reaches_the_backend),
    TEST(backend_failure_needs_a_reset),
    TEST(teardown_frees_every_owned_object),
    TEST(reap_releases_only_the_claim_it_names),
    TEST(query_stats_fills_one_block),
    TEST(bad_configurations_are_refused),
};

int main(void)
{
    enum { NCORE = sizeof(core_tests) / sizeof(core_tests[0]) };
    static struct test all[NCORE + 16];
    unsigned n = 0;

    for (unsigned i = 0; i < NCORE; i++) {
        all[n++] = core_tests[i];
    }
    for (unsigned i = 0; i < aperture_ntests; i++) {
        all[n++] = aperture_tests[i];
    }
    return harness_run("test_core", all, n);
}
