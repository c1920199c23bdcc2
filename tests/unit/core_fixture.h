/* SPDX-License-Identifier: MIT */
/*
 * The fixture of the test_core files (core_fixture.c): one engine driven the
 * way a guest driver drives it, through registers, submission entries written
 * into control memory, doorbells, and completions read back. Fake ops count
 * interrupts, guest errors and events; the memfd backend is real, so memory
 * given back is measured in st_blocks. Each helper's comment is at its
 * definition.
 */
#ifndef VKMT_CORE_FIXTURE_H
#define VKMT_CORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "vkmt_core.h"
#include "vkmt_proto.h"

#define PAGE VKMT_PAGE_SIZE
#define MIB (1u << 20)

struct drv { /* the test's driver state for one queue */
    uint32_t q;
    uint32_t sq_tail, cq_head, phase, cid;
};

struct core_fixture {
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
};

/* The running test's engine; setup() fills it, teardown() frees it. */
extern struct core_fixture F;
extern const struct vkmt_core_ops fake_ops;

/* Registers, the handshake, a queue of one's own, setup and teardown. */
uint32_t rd(uint32_t off);
void wr(uint32_t off, uint32_t v);
void handshake(uint32_t features);
struct drv claim(void);
void setup_config(const struct vkmt_core_config *cfg, uint64_t aperture,
                  const struct vkmt_core_ops *ops, uint32_t features);
void setup_full(uint32_t queues, uint64_t aperture, uint64_t budget, uint32_t features);
void setup(uint64_t aperture, uint64_t budget);
void teardown(void);

/* A queue's control memory: its base, staging area and shared header. */
uint8_t *qbase(uint32_t q);
uint8_t *staging(uint32_t q);
struct vkmt_queue_hdr *hdr(uint32_t q);

/* Takes the next event of queue @q as a driver does; 0 when there is none. */
int next_event(uint32_t q, struct vkmt_qev *out);

/* Submitting commands and reaping completions. */
void post(struct drv *d, struct vkmt_sqe *sqe);
int reap(struct drv *d, struct vkmt_cqe *out);
uint32_t run_on(struct drv *d, struct vkmt_sqe sqe, struct vkmt_cqe *out);
uint32_t run(struct vkmt_sqe sqe, struct vkmt_cqe *out);

/* One command each, on queue 0 unless a struct drv is given. */
uint32_t new_device_on(struct drv *d);
uint32_t new_device(void);
uint32_t create_on(struct drv *d, uint32_t dev, uint32_t n, uint64_t size, uint32_t *h,
                   uint16_t flags, uint64_t *res);
uint32_t create(uint32_t dev, uint32_t n, uint64_t size, uint32_t *h);
uint32_t offer_ex(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t prio, uint32_t flags,
                  uint16_t sqf);
uint32_t offer(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t prio);
/* DESTROY_ALLOCATIONS of the @n handles in @h on @dev; its status. */
uint32_t destroy_allocs(uint32_t dev, const uint32_t *h, uint32_t n);
uint32_t reclaim_ex(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t *res, uint16_t sqf,
                    uint64_t *fence);
uint32_t reclaim(uint32_t dev, const uint32_t *h, uint32_t n, uint32_t *res);
uint32_t lock(uint32_t dev, uint32_t a, uint8_t **p);
uint32_t unlock(uint32_t dev, uint32_t a);

/* The host's side: a trim, and what the memfd holds. */
uint64_t trim(uint64_t bytes);
uint64_t memfd_bytes(void);
/* A backend discard op that always fails, for tests of backend failures. */
int failing_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len);

/* Writes the pattern of @seed into allocation @a; content() checks it. */
uint8_t pattern_byte(uint8_t seed, size_t i);
void fill(uint32_t dev, uint32_t a, size_t len, uint8_t seed);
/* 1 if the first @len bytes of @a hold the pattern of @seed, 0 if all
 * zero, -1 otherwise (a LOCK and an UNLOCK around the look). */
int content(uint32_t dev, uint32_t a, size_t len, uint8_t seed);

#endif /* VKMT_CORE_FIXTURE_H */
