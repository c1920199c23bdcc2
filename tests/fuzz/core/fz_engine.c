/* SPDX-License-Identifier: MIT */
/*
 * The harness's side of the engine: it calls the engine as a guest and a
 * host would (registers, doorbells, processing, trims, budgets, resets) and
 * predicts each call's outcome; it follows a processing pass entry by entry
 * from the event hook, reading each entry as the engine must have read it
 * and checking each completion; it rewrites shared memory from that hook;
 * and it is the engine's backend, which checks every call and then does
 * what the memfd backend does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fz.h"

/* ---- Following the engine through a processing pass ---- */

/* The completion of the command before is in the CQ now: check it all. */
static void completion_check(void)
{
    const struct vkmt_cqe *cqe = cqe_at(C.q, C.cq_index);

    G.check_pending = false;
    CHECK(vkmt_sh_load_acquire(&cqe->flags) == C.phase && cqe->cid == C.sqe.cid &&
              cqe->status == C.status && cqe->sq_head == C.sq_head,
          "completion flags %u cid %u status 0x%x sq_head %u, due %u %u 0x%x %u", cqe->flags,
          cqe->cid, cqe->status, cqe->sq_head, C.phase, C.sqe.cid, C.status, C.sq_head);
    if (C.learn0 != NONE) {
        CHECK(cqe->value0 <= UINT32_MAX, "opcode 0x%x returned handle 0x%llx", C.sqe.opcode,
              (unsigned long long)cqe->value0);
        check_new_handle((uint32_t)cqe->value0, "returned");
        set_handle(C.learn0, (uint32_t)cqe->value0);
    } else {
        CHECK(cqe->value0 == C.value0, "opcode 0x%x value0 0x%llx, due 0x%llx", C.sqe.opcode,
              (unsigned long long)cqe->value0, (unsigned long long)C.value0);
    }
    if (C.learn1 != NONE) {
        CHECK(cqe->value1 <= UINT32_MAX, "opcode 0x%x returned handle 0x%llx as value1",
              C.sqe.opcode, (unsigned long long)cqe->value1);
        check_new_handle((uint32_t)cqe->value1, "returned sync");
        set_handle(C.learn1, (uint32_t)cqe->value1);
    } else {
        CHECK(cqe->value1 == C.value1, "opcode 0x%x value1 0x%llx, due 0x%llx", C.sqe.opcode,
              (unsigned long long)cqe->value1, (unsigned long long)C.value1);
    }
    /* Both areas were checked to lie inside staging. */
    if (C.status == VKMT_ST_SUCCESS && C.result_len) {
        CHECK(!memcmp(staging(C.q) + C.sqe.result_off, C.results, C.result_len),
              "opcode 0x%x wrote other results", C.sqe.opcode);
    } else if (C.snap_len) {
        CHECK(!memcmp(staging(C.q) + C.sqe.result_off, C.snap, C.snap_len),
              "opcode 0x%x (status 0x%x) wrote its result area", C.sqe.opcode, C.status);
    }
}

/* First sign of the next entry: read it as the engine must have read it. */
static void cmd_start(void)
{
    uint32_t q = (uint32_t)G.proc_q;
    struct mqueue *mq = &M.q[q];
    const struct vkmt_sqe *s = &C.sqe;

    if (G.check_pending) {
        completion_check();
    }
    CHECK(mq->state == VKMT_QSTATE_ACTIVE && mq->head != mq->tail,
          "queue %u executed an entry with none due (state %u head %u tail %u)", q, mq->state,
          mq->head, mq->tail);
    CHECK(mq->cq_tail - vkmt_sh_load(&hdr(q)->sh_cq_head) < DEPTH,
          "queue %u executed an entry with its completion queue full", q);
    C.q = q;
    memcpy(&C.sqe, qbase(q) + VKMT_QUEUE_SQ_OFF + (mq->head & (DEPTH - 1)) * sizeof(C.sqe),
           sizeof(C.sqe));
    C.payload_ok = staging_ok(s->payload_off, s->payload_len) && s->payload_len <= MAX_PAYLOAD;
    if (C.payload_ok) {
        memcpy(C.payload, staging(q) + s->payload_off, s->payload_len);
    }
    G.started = true;
}

static void cmd_finish(const struct vkmt_event *ev)
{
    struct mqueue *mq = &M.q[C.q];
    const struct vkmt_sqe *s = &C.sqe;

    CHECK(ev->queue == C.q && ev->opcode == s->opcode && ev->handle == s->handle,
          "COMMAND event queue %u opcode 0x%x handle 0x%x for entry opcode 0x%x handle 0x%x",
          ev->queue, ev->opcode, ev->handle, s->opcode, s->handle);
    C.status = ev->status;
    G.ev_cur = 0;
    m_command();
    if (step_end()) {
        M.failed = true;
    }
    M.st.commands++;
    M.st.command_errors += C.status != VKMT_ST_SUCCESS;
    if (C.status == VKMT_ST_INVALID_PARAMETER || C.status == VKMT_ST_NOT_SUPPORTED) {
        CHECK(G.guest_errors > C.ge_start, "status 0x%x for opcode 0x%x without a guest error",
              C.status, s->opcode);
    }
    if (G.trace) {
        fprintf(stderr, "  q%u cid %u opcode 0x%02x -> 0x%08x\n", C.q, s->cid, s->opcode, C.status);
    }
    G.batch_irq |= (s->flags & VKMT_SQE_F_IRQ) != 0;
    mq->head++;
    C.sq_head = mq->head;
    C.cq_index = mq->cq_tail;
    C.phase = mq->phase;
    mq->cq_tail++;
    if ((mq->cq_tail & (DEPTH - 1)) == 0) {
        mq->phase ^= VKMT_CQE_F_PHASE;
    }
    /* A failed command must leave its result area alone (PROTOCOL.md 6.1). */
    C.snap_len = 0;
    if (C.status != VKMT_ST_SUCCESS && staging_ok(s->result_off, s->result_len)) {
        C.snap_len = s->result_len < RESULT_SNAP ? s->result_len : RESULT_SNAP;
        memcpy(C.snap, staging(C.q) + s->result_off, C.snap_len);
    }
    G.check_pending = true;
    G.started = false;
    G.executed++;
    C.ge_start = G.guest_errors; /* the next entry's reports come after this */
}

static uint64_t rnd(void)
{
    G.rng ^= G.rng << 13;
    G.rng ^= G.rng >> 7;
    G.rng ^= G.rng << 17;
    return G.rng;
}

static void scribble_bytes(uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        p[i] = (uint8_t)rnd();
    }
}

/*
 * The guest rewrites shared memory of queue @q: entries, staging and header,
 * but never sh_cq_head (that only stalls the queue, which CQ_HEAD covers) nor
 * the CQ (the guest would lose its own completions). @cur: mid-command, so
 * also the entry and payload the engine is working from.
 */
void scribble(uint32_t q, bool cur)
{
    uint64_t r = rnd();
    uint8_t *base = qbase(q);
    const struct vkmt_sqe *s = &C.sqe;
    uint32_t off;

    switch (r % 6) {
    case 0:
        off = cur ? M.q[q].head & (DEPTH - 1) : (uint32_t)(r >> 8) % DEPTH;
        scribble_bytes(base + VKMT_QUEUE_SQ_OFF + off * sizeof(struct vkmt_sqe),
                       sizeof(struct vkmt_sqe));
        break;
    case 1:
        if (cur && staging_ok(s->payload_off, s->payload_len) && s->payload_len) {
            uint32_t end = s->payload_off + s->payload_len;

            off = s->payload_off + (uint32_t)(r >> 8) % s->payload_len;
            scribble_bytes(staging(q) + off, end - off < 64 ? end - off : 64);
        }
        break;
    case 2: {
        /* sh_ev_head among them, never sh_ev_tail or sh_ev_lost: the device
         * only writes those (and the driver reads them against the model). */
        static const uint32_t fields[] = { 0, 8, 12, 16, 20, 24, 32, 60 };
        uint32_t v = (uint32_t)(r >> 16);

        memcpy(base + fields[(r >> 8) % 8], &v, sizeof(v));
        break;
    }
    case 3:
        if (cur && staging_ok(s->result_off, s->result_len) && s->result_len) {
            scribble_bytes(staging(q) + s->result_off, s->result_len < 64 ? s->result_len : 64);
        }
        break;
    case 4:
        scribble_bytes(base + VKMT_QUEUE_SQ_OFF + ((r >> 8) % DEPTH) * sizeof(struct vkmt_sqe),
                       sizeof(struct vkmt_sqe));
        break;
    default:
        scribble_bytes(staging(q) + (r >> 8) % (STAGING - 64), 64);
        break;
    }
}

/* ---- Engine callbacks ---- */

static void on_event(void *opaque, const struct vkmt_event *ev)
{
    (void)opaque;
    if (G.proc_q >= 0) {
        if (!G.started) {
            cmd_start();
        }
        if (ev->type == VKMT_EV_COMMAND) {
            cmd_finish(ev);
            return;
        }
        PUSH(events, *ev);
        if (G.scribbles) {
            G.scribbles--;
            scribble((uint32_t)G.proc_q, true);
        }
        return;
    }
    PUSH(events, *ev);
}

static void on_irq(void *opaque, uint32_t q)
{
    (void)opaque;
    CHECK(q < G.nq, "interrupt for queue %u", q);
    G.irqs[q]++;
}

static void on_notify(void *opaque, uint32_t q)
{
    (void)opaque;
    CHECK(q < G.nq, "notify for queue %u", q);
    G.notifies[q]++;
}

static void on_guest_error(void *opaque, const char *msg)
{
    (void)opaque;
    G.guest_errors++;
    if (G.trace) {
        fprintf(stderr, "  guest error: %s\n", msg);
    }
}

/* The engine copied content: into the non-local segment (a demotion, which
 * the model matches), or back into the aperture (a promotion: the guest's
 * content again, which a discard must clear). */
static void on_wrote(void *opaque, bool nonlocal, uint64_t off, uint64_t len)
{
    uint64_t size = nonlocal ? (uint64_t)M.nl.npages * PAGE : G.aperture;

    (void)opaque;
    CHECK(G.nonlocal && off % PAGE == 0 && len % PAGE == 0 && len && off <= size &&
              len <= size - off,
          "copy of [0x%llx +0x%llx] into the %s", (unsigned long long)off, (unsigned long long)len,
          nonlocal ? "non-local segment" : "aperture");
    if (nonlocal) {
        PUSH(nl_writes, ((struct range){ off, len }));
        return;
    }
    touch((uint32_t)(off / PAGE), (uint32_t)(len / PAGE));
    for (uint64_t p = off / PAGE; p < (off + len) / PAGE; p++) {
        G.dirty[p] = 1;
    }
}

const struct vkmt_core_ops ops_inline = {
    .raise_irq = on_irq,
    .guest_error = on_guest_error,
    .event = on_event,
    .wrote = on_wrote,
};

const struct vkmt_core_ops ops_deferred = {
    .raise_irq = on_irq,
    .notify = on_notify,
    .guest_error = on_guest_error,
    .event = on_event,
    .wrote = on_wrote,
};

/* ---- The backend: checks every call, then does what the memfd one does ---- */

NO_ASAN bool page_zero(uint32_t p)
{
    const uint8_t *b = G.ap + (size_t)p * PAGE;

    return !G.dirty[p] && !rd64(b) && !rd64(b + PAGE - 8);
}

static int backend_call(uint8_t op, uint32_t id, uint64_t off, uint64_t len)
{
    struct bcall c = { .op = op, .id = id, .off = off, .len = len };
    uint32_t first = (uint32_t)(off / PAGE), n = (uint32_t)(len / PAGE);

    CHECK(off % PAGE == 0 && len % PAGE == 0 && len && off <= G.aperture && len <= G.aperture - off,
          "backend call %u on [0x%llx +0x%llx]: not whole pages of the aperture", op,
          (unsigned long long)off, (unsigned long long)len);
    touch(first, n);
    for (uint32_t p = first; p < first + n && !G.nonlocal; p++) {
        if (op == BC_COMMIT) {
            CHECK(!G.committed[p], "commit of page %u, already committed", p);
            /* PROTOCOL.md 8: new and recommitted ranges read as zeros. */
            CHECK(page_zero(p), "page %u is committed with stale content", p);
            G.committed[p] = 1;
        } else {
            CHECK(G.committed[p], "backend call %u on page %u, which is not committed", op, p);
        }
    }
    /* A failed commit fails its own command and is undone (NO_MEMORY;
     * test_core_hostmem.c checks that): faults go where a failure means
     * the device needs a reset. */
    c.failed = op != BC_COMMIT && ++G.backend_calls == G.fault_at;
    PUSH(bcalls, c);
    if (op == BC_DISCARD) {
        if (G.inner) {
            CHECK(G.inner->ops->discard(G.inner, id, off, len) == 0, "memfd discard failed: %s",
                  strerror(errno));
        }
        for (uint32_t p = first; p < first + n; p++) {
            if (G.dirty[p]) {
                if (!G.inner) {
                    memset(G.ap + (size_t)p * PAGE, 0, PAGE);
                }
                G.dirty[p] = 0;
            }
            CHECK(page_zero(p), "page %u holds content after a discard", p);
            G.committed[p] = 0;
        }
    }
    /* A failed call still did its work: the device must stop trusting it. */
    return c.failed ? -EIO : 0;
}

static int be_commit(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                     const struct vkmt_shape *shape)
{
    int ret;

    (void)b;
    ret = backend_call(BC_COMMIT, id, off, len);
    if (shape) {
        bcalls.v[bcalls.n - 1].textured = true;
        bcalls.v[bcalls.n - 1].shape = *shape;
    }
    return ret;
}

static int be_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    return backend_call(BC_DISCARD, id, off, len);
}

/* Scrubs reach only pages no allocation holds, and leave them zero. */
static int be_scrub(struct vkmt_backend *b, uint64_t off, uint64_t len)
{
    uint32_t first = (uint32_t)(off / PAGE), n = (uint32_t)(len / PAGE);

    (void)b;
    CHECK(off % PAGE == 0 && len % PAGE == 0 && len && off <= G.aperture && len <= G.aperture - off,
          "scrub of [0x%llx +0x%llx]: not whole pages of the aperture", (unsigned long long)off,
          (unsigned long long)len);
    if (G.inner) {
        CHECK(G.inner->ops->scrub(G.inner, off, len) == 0, "memfd scrub failed: %s",
              strerror(errno));
    }
    for (uint32_t p = first; p < first + n; p++) {
        CHECK(!G.committed[p], "scrub of page %u, which an allocation holds", p);
        if (G.dirty[p]) {
            if (!G.inner) {
                memset(G.ap + (size_t)p * PAGE, 0, PAGE);
            }
            G.dirty[p] = 0;
        }
    }
    return 0;
}

static int be_lock(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    return backend_call(BC_LOCK, id, off, len);
}

static int be_unlock(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    (void)b;
    return backend_call(BC_UNLOCK, id, off, len);
}

static void be_destroy(struct vkmt_backend *b)
{
    (void)b;
}

const struct vkmt_backend_ops backend_ops = {
    .name = "fuzz",
    .commit = be_commit,
    .discard = be_discard,
    .scrub = be_scrub,
    .lock = be_lock,
    .unlock = be_unlock,
    .destroy = be_destroy,
};

/* The non-local mode: no commit or lock hooks, so the engine demotes; the
 * model holds which pages are committed (G.committed stays empty). */
const struct vkmt_backend_ops backend_ops_nl = {
    .name = "fuzz-nonlocal",
    .discard = be_discard,
    .scrub = be_scrub,
    .destroy = be_destroy,
};

/* ---- Calling the engine ---- */

void call_begin(int proc_q)
{
    G.proc_q = proc_q;
    G.started = false;
    G.check_pending = false;
    G.batch_irq = false;
    G.executed = 0;
    G.released = 0;
    C.ge_start = G.guest_errors;
    events.n = 0;
    bcalls.n = 0;
    memcpy(G.irq_base, G.irqs, sizeof(G.irq_base));
    memset(G.posted, 0, sizeof(G.posted));
    step_begin();
}

/* Entries a processing pass on @q must execute: PROTOCOL.md 5.2. */
static uint32_t runnable(uint32_t q)
{
    const struct mqueue *mq = &M.q[q];
    uint32_t used = mq->cq_tail - vkmt_sh_load(&hdr(q)->sh_cq_head);
    uint32_t space = used >= DEPTH ? 0 : DEPTH - used;

    if (mq->state != VKMT_QSTATE_ACTIVE) {
        return 0;
    }
    return mq->tail - mq->head < space ? mq->tail - mq->head : space;
}

static void process_end(uint32_t q, uint32_t want, uint32_t irqs)
{
    if (G.check_pending) {
        completion_check();
    }
    CHECK(!G.started && events.n == 0, "events after the last command of a pass");
    CHECK(G.executed == want, "queue %u: %u entries executed, %u due", q, G.executed, want);
    CHECK(vkmt_sh_load(&hdr(q)->sh_sq_head) == M.q[q].head, "queue %u: sh_sq_head %u, due %u", q,
          vkmt_sh_load(&hdr(q)->sh_sq_head), M.q[q].head);
    if (G.batch_irq) {
        M.isr |= 1u << q;
    }
    CHECK(G.irqs[q] == irqs + G.batch_irq, "queue %u: %u interrupts, due %u", q, G.irqs[q] - irqs,
          G.batch_irq);
    G.proc_q = -1;
}

/* @failures: whether a failed commit or discard leaves the device needing reset
 * (not after a reset, which clears that). */
static void host_step_end_(bool failures)
{
    if (step_end() && failures) {
        M.failed = true;
    }
    for (uint32_t q = 0; q < G.nq; q++) {
        if (G.released & (1u << q)) {
            CHECK(vkmt_sh_load(&hdr(q)->sh_state) == VKMT_QSTATE_FREE,
                  "released queue %u has sh_state %u", q, vkmt_sh_load(&hdr(q)->sh_state));
        }
    }
}

static void host_step_end(void)
{
    host_step_end_(true);
}

/* After a host step that may post events: an interrupt per event posted,
 * and the ring's published tail and loss count as the model has them. */
static void check_posts(void)
{
    for (uint32_t q = 0; q < G.nq; q++) {
        const struct mqueue *mq = &M.q[q];
        uint32_t posted = G.posted[q] & 0x7fffffffu;

        CHECK(G.irqs[q] == G.irq_base[q] + posted, "queue %u: %u interrupts for %u events", q,
              G.irqs[q] - G.irq_base[q], posted);
        if (G.posted[q]) {
            CHECK(vkmt_sh_load(&hdr(q)->sh_ev_tail) == mq->ev_tail &&
                      vkmt_sh_load(&hdr(q)->sh_ev_lost) == mq->ev_lost,
                  "queue %u: sh_ev_tail %u sh_ev_lost %u, due %u %u", q,
                  vkmt_sh_load(&hdr(q)->sh_ev_tail), vkmt_sh_load(&hdr(q)->sh_ev_lost), mq->ev_tail,
                  mq->ev_lost);
        }
    }
}

/* A doorbell write (@kick: an event doorbell reading sh_sq_tail). */
void doorbell(uint32_t q, uint32_t tail, bool kick)
{
    enum { IGNORE, ERROR, ACCEPT } act = ACCEPT;
    uint32_t irqs = q < G.nq ? G.irqs[q] : 0, notifies = q < G.nq ? G.notifies[q] : 0, want = 0;
    bool run;

    if (q >= G.nq || M.q[q].state != VKMT_QSTATE_ACTIVE) {
        act = IGNORE;
    } else if (tail - M.q[q].head > DEPTH) {
        act = ERROR;
    }
    run = act == ACCEPT && !G.deferred;
    if (act == ACCEPT) {
        M.q[q].tail = tail;
        want = run ? runnable(q) : 0;
    }
    call_begin(run ? (int)q : -1);
    if (kick) {
        vkmt_core_kick(G.core, q);
    } else {
        vkmt_core_reg_write(G.core, VKMT_REG_DOORBELL(q), tail);
    }
    if (run) {
        process_end(q, want, irqs);
        CHECK(G.notifies[q] == notifies, "notify without the notify mode");
        return;
    }
    if (act == ERROR) {
        const struct vkmt_event *e = ev_take(VKMT_EV_QUEUE_ERROR);

        CHECK(e->queue == q, "QUEUE_ERROR names queue %u, due %u", e->queue, q);
        M.q[q].state = VKMT_QSTATE_ERROR;
        M.st.queue_errors++;
        M.isr |= 1u << q;
        CHECK(G.irqs[q] == irqs + 1, "queue %u entered ERROR without an interrupt", q);
        CHECK(vkmt_sh_load(&hdr(q)->sh_state) == VKMT_QSTATE_ERROR &&
                  vkmt_sh_load(&hdr(q)->sh_error) == VKMT_QERR_DOORBELL_RANGE,
              "queue %u in ERROR shows sh_state %u sh_error %u", q, vkmt_sh_load(&hdr(q)->sh_state),
              vkmt_sh_load(&hdr(q)->sh_error));
    } else if (q < G.nq) {
        CHECK(G.irqs[q] == irqs, "interrupt on a doorbell that ran nothing");
        CHECK(G.notifies[q] == notifies + (act == ACCEPT),
              "queue %u: notify count %u after a doorbell (%s)", q, G.notifies[q] - notifies,
              act == ACCEPT ? "accepted" : "ignored");
    }
    host_step_end();
}

void process(uint32_t q)
{
    uint32_t want, irqs, done;

    if (q >= G.nq) {
        call_begin(-1);
        CHECK(vkmt_core_process(G.core, q) == 0, "processing queue %u that does not exist", q);
        host_step_end();
        return;
    }
    want = runnable(q);
    irqs = G.irqs[q];
    call_begin((int)q);
    done = vkmt_core_process(G.core, q);
    process_end(q, want, irqs);
    CHECK(done == want, "vkmt_core_process returned %u, ran %u", done, want);
}

void reg_write(uint32_t off, uint32_t val)
{
    bool reset = false;

    if (off >= VKMT_REG(sq_doorbell) && off < VKMT_REG_DOORBELL(VKMT_MAX_QUEUES) && off % 4 == 0) {
        doorbell((off - VKMT_REG(sq_doorbell)) / 4, val, false);
        return;
    }
    call_begin(-1);
    vkmt_core_reg_write(G.core, off, val);
    switch (off) {
    case VKMT_REG(driver_features):
        /* Frozen once FEATURES_OK is set. */
        if (!(M.status & VKMT_STATUS_FEATURES_OK)) {
            M.driver_features = val;
        }
        break;
    case VKMT_REG(status):
        m_status_write(val);
        reset = val == 0;
        break;
    case VKMT_REG(queue_reap): {
        uint32_t q = val & 0xffu;

        if (q < G.nq && M.q[q].state != VKMT_QSTATE_FREE &&
            (M.q[q].claim_seq & 0xffffffu) == val >> 8) {
            m_release(q);
        }
        break;
    }
    case VKMT_REG(queue_release):
        if (val < G.nq && M.q[val].state != VKMT_QSTATE_FREE) {
            m_release(val);
        }
        break;
    case VKMT_REG(isr_lo):
        M.isr &= ~val;
        break;
    default:
        break;
    }
    host_step_end_(!reset);
}

void reg_read(uint32_t off)
{
    uint32_t got, want;

    call_begin(-1);
    got = vkmt_core_reg_read(G.core, off);
    want = off == VKMT_REG(queue_claim) ? m_claim() : m_reg_value(off);
    CHECK(got == want, "register 0x%x reads 0x%x, due 0x%x", off, got, want);
    host_step_end();
    if (off == VKMT_REG(queue_claim) && got != VKMT_QUEUE_NONE) {
        static const uint8_t zero[VKMT_QUEUE_STAGING_OFF];
        struct vkmt_queue_hdr h;

        /* PROTOCOL.md 5: a claim zeroes header, SQ and CQ. */
        memcpy(&h, hdr(got), sizeof(h));
        CHECK(h.sh_claim_seq == M.q[got].claim_seq && h.sh_state == VKMT_QSTATE_ACTIVE,
              "claimed queue %u shows claim_seq %u state %u", got, h.sh_claim_seq, h.sh_state);
        h.sh_claim_seq = h.sh_state = 0;
        CHECK(!memcmp(&h, zero, sizeof(h)) &&
                  !memcmp(qbase(got) + sizeof(h), zero, sizeof(zero) - sizeof(h)),
              "claimed queue %u is not zeroed", got);
        G.drv[got] = (struct drv){ .claimed = true, .phase = VKMT_CQE_F_PHASE };
    }
}

void host_trim(uint64_t bytes)
{
    uint64_t got, freed;

    call_begin(-1);
    got = vkmt_core_trim(G.core, bytes);
    ev_expect_host(VKMT_EV_TRIM, VKMT_EV_HOST, bytes);
    freed = m_evict(bytes);
    M.st.trims++;
    M.st.trimmed_bytes += freed;
    CHECK(got == freed, "trim of %llu freed %llu, due %llu", (unsigned long long)bytes,
          (unsigned long long)got, (unsigned long long)freed);
    m_post_over_budget();
    host_step_end();
    check_posts();
}

void host_budget(uint64_t b)
{
    call_begin(-1);
    vkmt_core_set_budget(G.core, b);
    M.budget = budget_for(b);
    M.config_gen++;
    ev_expect_host(VKMT_EV_BUDGET, VKMT_EV_HOST, M.budget);
    m_enforce_budget(true);
    m_post_budget();
    host_step_end();
    check_posts();
}

/* The host asks the processes for memory back, or starts a periodic trim. */
void host_event(uint8_t kind, uint8_t b)
{
    uint64_t bytes = b == 0xff ? UINT64_MAX : (uint64_t)b * FZ_BYTE_UNIT;
    uint32_t got, want = 0, type;

    call_begin(-1);
    if (kind % 3 == 0) {
        got = vkmt_core_trim_notify(G.core, bytes);
        for (uint32_t q = 0; q < G.nq; q++) {
            uint64_t held = queue_committed(q), ask = bytes < held ? bytes : held;
            uint32_t before = G.posted[q];

            ask = ask > m_over_budget(q) ? ask : m_over_budget(q);
            if (ask) {
                m_post(q, VKMT_QEV_TRIM_TO_BUDGET, ask);
            }
            want += G.posted[q] != before && !(G.posted[q] & 0x80000000u);
        }
    } else {
        type = kind % 3 == 1 ? VKMT_QEV_PERIODIC_TRIM : VKMT_QEV_RESTART_PERIODIC_TRIM;
        got = vkmt_core_periodic_trim(G.core, kind % 3 == 2);
        for (uint32_t q = 0; q < G.nq; q++) {
            uint32_t before = G.posted[q];

            m_post(q, type, 0);
            want += G.posted[q] != before && !(G.posted[q] & 0x80000000u);
        }
    }
    CHECK(got == want, "host event %u posted %u, due %u", kind % 3, got, want);
    if (G.trace) {
        fprintf(stderr, "host event %u: %u posted\n", kind % 3, got);
    }
    host_step_end();
    check_posts();
}

void host_reset(void)
{
    call_begin(-1);
    vkmt_core_reset(G.core);
    m_reset();
    host_step_end_(false);
}

/*
 * The guest reads queue @q's event ring (PROTOCOL.md 5.4): the published
 * tail is the model's, at most a ring ahead of what it read, and every entry
 * is the one posted, untouched since; then it hands the slots back with
 * sh_ev_head = tail + (int8)@d, a lie unless @d is 0 (0x80: no store).
 */
void read_events(uint32_t q, uint8_t d)
{
    struct drv *dv = &G.drv[q];
    const struct mqueue *mq = &M.q[q];
    const struct vkmt_qev *ring = (const struct vkmt_qev *)(qbase(q) + VKMT_QUEUE_EVQ_OFF);
    uint32_t tail;

    if (!dv->claimed || mq->state == VKMT_QSTATE_FREE) {
        return;
    }
    /* Pairs with the device's release store of sh_ev_tail: entries first. */
    tail = vkmt_sh_load_acquire(&hdr(q)->sh_ev_tail);
    CHECK(tail == mq->ev_tail && tail - dv->ev_head <= VKMT_EVQ_DEPTH &&
              vkmt_sh_load(&hdr(q)->sh_ev_lost) == mq->ev_lost,
          "queue %u: event tail %u lost %u (read up to %u), due %u %u", q, tail,
          vkmt_sh_load(&hdr(q)->sh_ev_lost), dv->ev_head, mq->ev_tail, mq->ev_lost);
    CHECK(tail == 0 || (M.driver_features & VKMT_F_EVENTS),
          "queue %u has events without VKMT_F_EVENTS", q);
    for (; dv->ev_head != tail; dv->ev_head++) {
        const struct vkmt_qev *e = &ring[dv->ev_head & (VKMT_EVQ_DEPTH - 1)];

        CHECK(vkmt_qev_type_known(e->type) && e->reserved == 0 &&
                  !memcmp(e, &mq->ev[dv->ev_head & (VKMT_EVQ_DEPTH - 1)], sizeof(*e)),
              "queue %u event %u: type 0x%x reserved %u value %llu, not what was posted", q,
              dv->ev_head, e->type, e->reserved, (unsigned long long)e->value);
    }
    if (G.trace) {
        fprintf(stderr, "q%u events read to %u, %u lost\n", q, tail, mq->ev_lost);
    }
    if (d != 0x80) {
        /* Pairs with the device's acquire load: done with the slots. */
        vkmt_sh_store_release(&hdr(q)->sh_ev_head, tail + (uint32_t)(int32_t)(int8_t)d);
    }
}

/* The guest consumes every completion, as a polling driver does. */
void reap(void)
{
    for (uint32_t q = 0; q < G.nq; q++) {
        struct drv *d = &G.drv[q];
        uint32_t n = 0;

        if (!d->claimed) {
            continue;
        }
        while ((vkmt_sh_load_acquire(&cqe_at(q, d->cq_head)->flags) & VKMT_CQE_F_PHASE) ==
               d->phase) {
            CHECK(++n <= DEPTH, "queue %u: more than a ring of completions", q);
            d->cq_head++;
            if ((d->cq_head & (DEPTH - 1)) == 0) {
                d->phase ^= VKMT_CQE_F_PHASE;
            }
        }
        if (n) {
            vkmt_sh_store_release(&hdr(q)->sh_cq_head, d->cq_head);
        }
        CHECK(d->cq_head == M.q[q].cq_tail, "queue %u: %u completions visible, %u produced", q,
              d->cq_head, M.q[q].cq_tail);
    }
}
