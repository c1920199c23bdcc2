/* SPDX-License-Identifier: MIT */
/*
 * The invariants checked after every operation: all of the engine's
 * statistics against the model's, registers, the backend holding exactly the
 * pages of resident and offered allocations, and the aperture's content (the
 * guest's patterns, or zeros once discarded or freed).
 */

#include "fz.h"

/* ---- Invariants after every operation ---- */

#define ST_EQ(field)                                                                               \
    CHECK(st.field == M.st.field, "stats." #field " %llu, due %llu", (unsigned long long)st.field, \
          (unsigned long long)M.st.field)

/* Whether the @n bytes (a multiple of 8) at @a and @b are equal, without
 * memcmp: ASan's interceptor would first scan both ranges' shadow. */
NO_ASAN static bool same_words(const void *a, const void *b, size_t n)
{
    uint64_t diff = 0;

    for (size_t i = 0; i < n; i += 8) {
        diff |= rd64((const uint8_t *)a + i) ^ rd64((const uint8_t *)b + i);
    }
    return !diff;
}

static void check_stats(void)
{
    struct vkmt_stats st, want = M.st;

    vkmt_core_get_stats(G.core, &st);
    /* Every field is a uint64_t, so the struct has no padding: one pass
     * settles the usual case, the fields below name a difference. */
    want.budget_bytes = M.budget;
    want.guest_errors = G.guest_errors;
    if (same_words(&st, &want, sizeof(st)) &&
        (st.committed_bytes <= st.budget_bytes || st.offered_bytes == 0)) {
        return;
    }
    ST_EQ(commands);
    ST_EQ(command_errors);
    ST_EQ(queue_errors);
    ST_EQ(devices);
    ST_EQ(allocations);
    ST_EQ(resources);
    ST_EQ(committed_bytes);
    ST_EQ(offered_bytes);
    ST_EQ(offers);
    ST_EQ(discards);
    ST_EQ(discarded_bytes);
    ST_EQ(decommits);
    ST_EQ(reclaim_ok);
    ST_EQ(reclaim_discarded);
    ST_EQ(reclaim_not_committed);
    ST_EQ(trims);
    ST_EQ(trimmed_bytes);
    ST_EQ(demoted_bytes);
    ST_EQ(demotions);
    ST_EQ(promotions);
    for (int i = 0; i < VKMT_PRIO_CLASSES; i++) {
        ST_EQ(offered_bytes_by_prio[i]);
        ST_EQ(discarded_bytes_by_prio[i]);
        ST_EQ(offered_bytes_total_by_prio[i]);
        for (int r = 0; r < VKMT_RECLAIM_RESULTS; r++) {
            ST_EQ(reclaims_by_prio[i][r]);
        }
    }
    CHECK(st.budget_bytes == M.budget, "stats.budget_bytes %llu, due %llu",
          (unsigned long long)st.budget_bytes, (unsigned long long)M.budget);
    CHECK(st.guest_errors == G.guest_errors, "stats.guest_errors %llu, %u reported",
          (unsigned long long)st.guest_errors, G.guest_errors);
    /* PROTOCOL.md 9: over budget only when nothing offered is left to discard
     * (a budget lowered below what is resident). */
    CHECK(st.committed_bytes <= st.budget_bytes || st.offered_bytes == 0,
          "committed %llu over budget %llu with %llu offered",
          (unsigned long long)st.committed_bytes, (unsigned long long)st.budget_bytes,
          (unsigned long long)st.offered_bytes);
    /* PROTOCOL.md 12: demoted content stays within the segment. */
    CHECK(st.demoted_bytes <= (uint64_t)M.nl.npages * PAGE, "%llu bytes demoted, segment %llu",
          (unsigned long long)st.demoted_bytes, (unsigned long long)M.nl.npages * PAGE);
}

void check_registers(void)
{
    static const uint32_t regs[] = {
        VKMT_REG(status),        VKMT_REG(driver_features),
        VKMT_REG(removal_epoch), VKMT_REG(config_generation),
        VKMT_REG(isr_lo),        VKMT_REG(isr_hi),
        VKMT_REG(budget_lo),     VKMT_REG(budget_hi),
    };

    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        uint32_t got = vkmt_core_reg_read(G.core, regs[i]), want = m_reg_value(regs[i]);

        CHECK(got == want, "register 0x%x reads 0x%x, due 0x%x", regs[i], got, want);
    }
}

/*
 * The model agrees with itself, the backend holds exactly the ranges of
 * resident and offered allocations, and content is what the guest left:
 * its pattern, or zeros once discarded (PROTOCOL.md 8).
 */
NO_ASAN void check_memory(void)
{
    uint64_t committed = 0, offered = 0, by_prio[VKMT_PRIO_CLASSES] = { 0 };
    uint64_t allocs = 0, devices = 0, resources = 0, nlive = 0;
    uint64_t demoted[FZ_MAX_QUEUES] = { 0 }, nl_bytes = 0;
    uint8_t want[FZ_PAGES_MAX] = { 0 }, used[FZ_PAGES_MAX] = { 0 }, nl_used[FZ_PAGES_MAX] = { 0 };

    for (uint32_t i = 0; i < live.n; i++) {
        const struct mobj *o = obj(live.v[i]);
        const uint8_t *base;

        if (!o->live) {
            continue;
        }
        nlive++;
        devices += o->kind == K_DEVICE;
        resources += o->kind == K_RES;
        if (o->kind != K_ALLOC) {
            continue;
        }
        allocs++;
        if (o->state == A_DECOMMITTED) {
            continue;
        }
        base = G.ap + (size_t)o->page * PAGE;
        for (uint32_t p = o->page; p < o->page + o->npages; p++) {
            used[p] = 1;
            want[p] = o->state != A_DISCARDED && o->state != A_DEMOTED && !G.nonlocal;
        }
        if (o->state == A_DEMOTED) {
            demoted[o->queue] += bytes_of(o);
            for (uint32_t p = o->nl_page; p < o->nl_page + o->npages; p++) {
                CHECK(M.nl.used[p] == 1, "demoted 0x%x: non-local page %u", o->handle, p);
                nl_used[p]++;
            }
        }
        /* A demoted allocation keeps its range, reading zeros (PROTOCOL.md 12). */
        if (o->state == A_DISCARDED || o->state == A_DEMOTED) {
            for (uint32_t p = o->page; p < o->page + o->npages; p++) {
                CHECK(page_zero(p), "%s allocation 0x%x: page %u is not zero",
                      o->state == A_DEMOTED ? "demoted" : "discarded", o->handle, p);
            }
            continue;
        }
        committed += bytes_of(o);
        if (o->state == A_OFFERED) {
            offered += bytes_of(o);
            by_prio[vkmt_prio_index(o->prio)] += bytes_of(o);
        }
        for (uint32_t p = 0; p < o->npages; p++) {
            CHECK(rd64(base + (size_t)p * PAGE) == o->stamp,
                  "allocation 0x%x (state %u) page %u holds 0x%llx, due 0x%llx", o->handle,
                  o->state, p, (unsigned long long)rd64(base + (size_t)p * PAGE),
                  (unsigned long long)o->stamp);
        }
        if (o->size >= 8) {
            CHECK(rd64(base + o->size - 8) == o->stamp, "allocation 0x%x: last bytes changed",
                  o->handle);
        }
        if (bytes_of(o) - o->size >= 8) {
            CHECK(!rd64(base + bytes_of(o) - 8), "allocation 0x%x: bytes past its size", o->handle);
        }
    }
    CHECK(committed == M.st.committed_bytes && offered == M.st.offered_bytes &&
              allocs == M.st.allocations && devices == M.st.devices && resources == M.st.resources,
          "model sums disagree with the model's counters");
    for (int i = 0; i < VKMT_PRIO_CLASSES; i++) {
        CHECK(by_prio[i] == M.st.offered_bytes_by_prio[i], "model offered bytes by priority");
    }
    CHECK(nlive == M.live_objs, "model live count %llu, counter %u", (unsigned long long)nlive,
          M.live_objs);
    /* The non-local segment holds exactly the demoted allocations, none twice. */
    for (uint32_t p = 0; p < M.nl.npages; p++) {
        CHECK(nl_used[p] == M.nl.used[p], "model non-local map at page %u", p);
        nl_bytes += nl_used[p] ? PAGE : 0;
    }
    CHECK(nl_bytes == M.st.demoted_bytes && demoted[0] == M.q_demoted[0] &&
              demoted[1] == M.q_demoted[1],
          "model demoted bytes %llu, counter %llu", (unsigned long long)nl_bytes,
          (unsigned long long)M.st.demoted_bytes);
    for (uint32_t p = 0; p < G.npages; p++) {
        CHECK(used[p] == M.page_used[p], "model page map at page %u", p);
        CHECK(G.committed[p] == want[p], "page %u: backend %s it, the model %s", p,
              G.committed[p] ? "holds" : "does not hold", want[p] ? "does" : "does not");
        if (!used[p]) {
            CHECK(page_zero(p), "free page %u is not zero", p);
        }
    }
}

/*
 * After every step, for the pages the step touched (G.touched: backend calls,
 * the guest's writes, the model's transitions): the backend holds exactly the
 * pages of resident and offered allocations, and each of those starts with
 * the guest's pattern (or zeros). The engine changes content only through
 * backend calls, so a page no step touched cannot have changed; every
 * CHECK_FULL_EVERY steps and at the end, check_memory reads all pages,
 * checks every allocation's last bytes and the model against itself, and
 * registers, which only operations the model follows can change, are read
 * back on the same schedule.
 */
#define CHECK_FULL_EVERY 16u

NO_ASAN static void check_page(uint32_t p)
{
    CHECK(G.nonlocal || G.committed[p] == M.page_held[p], "page %u: backend %s it, the model %s", p,
          G.committed[p] ? "holds" : "does not hold", M.page_held[p] ? "does" : "does not");
    if (M.page_held[p]) {
        uint64_t v = rd64(G.ap + (size_t)p * PAGE);

        CHECK(v == M.page_stamp[p], "page %u starts with 0x%llx, due 0x%llx", p,
              (unsigned long long)v, (unsigned long long)M.page_stamp[p]);
    } else {
        CHECK(page_zero(p), "page %u, which nobody holds, has content", p);
    }
}

static void check_pages(bool all)
{
    if (all) {
        for (uint32_t p = 0; p < G.npages; p++) {
            check_page(p);
        }
    } else {
        for (uint32_t i = 0; i < G.ntouched; i++) {
            check_page(G.touched_list[i]);
        }
    }
    for (uint32_t i = 0; i < G.ntouched; i++) {
        G.touched[G.touched_list[i]] = 0;
    }
    G.ntouched = 0;
}

void check_all(void)
{
    bool full = G.nops % CHECK_FULL_EVERY == 0;

    reap();
    check_stats();
    check_pages(full);
    if (full) {
        check_registers();
        check_memory();
    }
}
