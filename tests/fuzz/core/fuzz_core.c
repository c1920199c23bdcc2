/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the device engine (hw-device/core). An input is a
 * small device configuration and a sequence of guest and host operations
 * (fuzz_input.h). The harness is at once a hostile guest driver and a
 * reference model of protocol/PROTOCOL.md: from the engine's public
 * interface only (registers, completions, result arrays, the event hook,
 * statistics and the calls the engine makes into its backend) it predicts
 * what every command and host control must do and aborts on the first
 * difference. Allocation content is checked through the aperture with
 * patterns the guest writes, and shared memory is rewritten from inside the
 * event hook while the engine works, to prove it acts on its private copies.
 * One engine is created and destroyed per input, so every input replays the
 * same way on its own; the aperture and control memory are reused, and must
 * therefore be left as they were found, which is itself checked.
 *
 * This file runs one input: setup, the operations, teardown. The rest is
 * split by concern: fz.h (what the files share), fz_model.c (model objects,
 * matching engine reports, model semantics), fz_commands.c (what each
 * command must do), fz_engine.c (calling and following the engine, its
 * callbacks, the backend), fz_checks.c (invariants) and fz_decode.c
 * (decoding operations).
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fz.h"

#define DEFAULT_MAX_OBJECTS ((1u << 20) - 1u)

/* ---- Failure reports ---- */

uint32_t fail_op;
size_t fail_pos;

void fail(const char *file, int line, const char *fmt, ...)
{
    const char *base = strrchr(file, '/');
    va_list ap;

    fprintf(stderr,
            "%s:%d: invariant violated at operation %u (input byte %zu): ", base ? base + 1 : file,
            line, fail_op, fail_pos);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- Growable arrays: capacity survives across inputs, length does not ---- */

void *grow(void *v, uint32_t *cap, uint32_t need, size_t elem)
{
    uint32_t c = *cap ? *cap : 64;

    if (need <= *cap) {
        return v;
    }
    while (c < need) {
        c *= 2;
    }
    v = realloc(v, (size_t)c * elem);
    if (!v) {
        abort();
    }
    *cap = c;
    return v;
}

/* ---- The harness's state (fz.h says what it holds) ---- */

struct harness G;

/* Memory reused by every input: control memory and two apertures. Control
 * memory is a heap block so that ASan's redzone around it catches the engine
 * reading or writing past it even where the harness is built without ASan. */
uint8_t *ctrl_mem;
static uint8_t *ap_anon, *ap_memfd;
static int memfd = -1;
static int trace_env = -1; /* FUZZ_CORE_TRACE: print what each input does */

static struct vkmt_backend backend;

/* ---- One input ---- */

static void map_memory(void)
{
    size_t size = (size_t)FZ_PAGES_MAX * PAGE;

    ctrl_mem = aligned_alloc(4096, (size_t)FZ_MAX_QUEUES * VKMT_QUEUE_STRIDE);
    CHECK(ctrl_mem, "no memory for control memory");

    ap_anon = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ap_anon != MAP_FAILED, "mmap: %s", strerror(errno));
    memfd = memfd_create("vkmt-fuzz-aperture", MFD_CLOEXEC);
    if (memfd >= 0 && ftruncate(memfd, (off_t)size) == 0) {
        ap_memfd = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    }
    if (!ap_memfd || ap_memfd == MAP_FAILED) {
        ap_memfd = NULL; /* no memfd here: FZ_CFG_MEMFD inputs use the plain aperture */
    }
}

static void setup(const uint8_t *data, size_t size)
{
    struct vkmt_core_config cfg = { 0 };
    uint8_t h[FZ_HDR_LEN] = { 0 };
    int err;

    if (!ap_anon) {
        map_memory();
    }
    memset(&G, 0, sizeof(G));
    memset(&M, 0, sizeof(M));
    forget_handles();
    objs.n = live.n = batch.n = elem_end.n = events.n = exp_destroy.n = nl_writes.n = 0;
    bcalls.n = exp_discards.n = 0;
    for (int k = 0; k < K_COUNT; k++) {
        pool[k].n = 0;
    }
    memcpy(h, data, size < FZ_HDR_LEN ? size : FZ_HDR_LEN);
    G.in = data;
    G.len = size;
    G.pos = FZ_HDR_LEN;
    G.proc_q = -1;
    if (trace_env < 0) {
        trace_env = getenv("FUZZ_CORE_TRACE") != NULL;
    }
    G.trace = trace_env;
    G.cfg = h[FZ_HDR_CONFIG];
    G.nq = G.cfg & FZ_CFG_TWO_QUEUES ? 2 : 1;
    G.deferred = G.cfg & FZ_CFG_DEFERRED;
    G.memfd = (G.cfg & FZ_CFG_MEMFD) && ap_memfd;
    /* No header bit is left for textures or protocol 1.2: the device always
     * offers them; the bring-up takes textures, a handshake operand the rest. */
    G.features = ((G.cfg >> FZ_CFG_FEATURES_SHIFT) & FZ_CFG_FEATURES_MASK) | VKMT_F_TEXTURES;
    G.offered = G.features | VKMT_F_RESIDENCY | VKMT_F_EVENTS;
    G.npages = FZ_PAGES_MIN + h[FZ_HDR_PAGES] % FZ_PAGES_SPAN;
    G.aperture = (uint64_t)G.npages * PAGE;
    G.fault_at = h[FZ_HDR_FAULT] & (FZ_FAULT_NONLOCAL - 1);
    G.nonlocal = h[FZ_HDR_FAULT] & FZ_FAULT_NONLOCAL;
    G.ap = G.memfd ? ap_memfd : ap_anon;
    cfg.num_queues = G.nq;
    cfg.budget = (uint64_t)h[FZ_HDR_BUDGET] * FZ_BYTE_UNIT;
    cfg.max_objects = G.cfg & FZ_CFG_OBJ_LIMIT ? 4u + h[FZ_HDR_OBJECTS] % 124u : 0;
    cfg.features = G.offered;
    G.max_objects = cfg.max_objects ? cfg.max_objects : DEFAULT_MAX_OBJECTS;
    M.budget = budget_for(cfg.budget);
    if (G.nonlocal) {
        /* Small, so that it fills: a quarter of the aperture. */
        M.nl.npages = G.npages / 4 > FZ_NL_PAGES_MIN ? G.npages / 4 : FZ_NL_PAGES_MIN;
        cfg.nonlocal_size = (uint64_t)M.nl.npages * PAGE;
    }
    backend = (struct vkmt_backend){ .ops = G.nonlocal ? &backend_ops_nl : &backend_ops,
                                     .base = G.ap,
                                     .size = G.aperture,
                                     .fd = -1,
                                     .max_alloc = G.aperture,
                                     .max_texture_dim = VKMT_TEXTURE_MAX_DIM };
    if (G.memfd) {
        err = vkmt_backend_mem_create(G.aperture, memfd, G.ap, &G.inner);
        CHECK(err == 0, "memfd backend: %d", err);
    }
    err = vkmt_core_create(&cfg, &backend, ctrl_mem, G.deferred ? &ops_deferred : &ops_inline, NULL,
                           &G.core);
    CHECK(err == 0, "vkmt_core_create: %d", err);
    if (G.trace) {
        fprintf(stderr, "device: %u queues, %u pages, budget %llu, features %u, objects %u%s%s%s\n",
                G.nq, G.npages, (unsigned long long)M.budget, G.offered, G.max_objects,
                G.deferred ? ", deferred" : "", G.memfd ? ", memfd" : "",
                G.nonlocal ? ", non-local" : "");
    }
    if (!(G.cfg & FZ_CFG_NO_BRINGUP)) {
        handshake(G.features);
        for (uint32_t q = 0; q < G.nq; q++) {
            reg_read(VKMT_REG(queue_claim));
        }
    }
}

/* Tear down and check the device gave every page back. */
static void finish(void)
{
    if (G.cfg & FZ_CFG_NO_RESET) {
        /* Destroying a live device frees what it holds, without queue events. */
        call_begin(-1);
        vkmt_core_destroy(G.core);
        for (uint32_t q = 0; q < G.nq; q++) {
            m_destroy_queue_objects(q);
        }
        ev_expect_destroys();
        step_end();
    } else {
        host_reset();
        check_all();
        call_begin(-1);
        vkmt_core_destroy(G.core);
        step_end();
    }
    G.core = NULL;
    for (uint32_t p = 0; p < G.npages; p++) {
        CHECK(!G.committed[p] && page_zero(p), "page %u still held after teardown", p);
    }
    if (G.inner) {
        vkmt_backend_destroy(G.inner);
        G.inner = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup(data, size);
    check_all();
    while (G.pos < G.len) {
        one_op();
        check_all();
    }
    check_registers();
    check_memory();
    fail_op = 0;
    finish();
    return 0;
}
