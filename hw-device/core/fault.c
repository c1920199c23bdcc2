/* SPDX-License-Identifier: MIT */
/*
 * Injected backend faults: the host picks which backend commits and
 * discards fail or stall (vkmt_core_set_backend_faults), every Nth one or
 * each with a probability drawn from a seeded generator, so that a run can
 * be repeated exactly. The decision is taken here, before the backend is
 * called; the callers then fail the command the way a real backend failure
 * fails it, so an injected fault exercises the same paths.
 */
#ifndef _GNU_SOURCE /* QEMU defines it for every file */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core_priv.h"

#define GOLDEN 0x9e3779b97f4a7c15ull

/* SplitMix64's output function: a counter through it is a good generator,
 * so the count of operations seen is all the state a sequence needs. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Whether the next operation of kind @k is picked. */
static bool fault_hit(struct vkmt_core *core, enum vkmt_fault_kind k)
{
    const struct vkmt_fault_rate *r = &core->faults.rate[k];
    uint64_t n;

    if (!r->every && !r->ppm) {
        return false;
    }
    n = ++core->fault_seen[k];
    if (r->every) {
        return n % r->every == 0;
    }
    /* One stream per kind: the seed salted with the kind. */
    return mix64((core->faults.seed ^ mix64(k + 1)) + n * GOLDEN) % VKMT_FAULT_PPM < r->ppm;
}

/* A slow backend: the call holds the device for stall_ns more. */
static void fault_stall(struct vkmt_core *core, uint32_t idx, enum vkmt_event_type ev)
{
    uint64_t ns = core->faults.stall_ns;
    struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
                           .tv_nsec = (long)(ns % 1000000000u) };

    if (!ns || !fault_hit(core, VKMT_FAULT_STALL)) {
        return;
    }
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    core->stats.stalls++;
    core->stats.stall_ns += ns;
    core_event(core, ev, idx, 0);
}

int fault_commit(struct vkmt_core *core, uint32_t idx)
{
    fault_stall(core, idx, VKMT_EV_STALL_COMMIT);
    if (!fault_hit(core, VKMT_FAULT_COMMIT)) {
        return 0;
    }
    core->stats.faults_commit++;
    core_event(core, VKMT_EV_FAULT_COMMIT, idx, 0);
    return -ENOMEM;
}

bool fault_discard(struct vkmt_core *core, uint32_t idx)
{
    fault_stall(core, idx, VKMT_EV_STALL_DISCARD);
    if (!fault_hit(core, VKMT_FAULT_DISCARD)) {
        return false;
    }
    core->stats.faults_discard++;
    core_event(core, VKMT_EV_FAULT_DISCARD, idx, 0);
    return true;
}

int vkmt_core_set_backend_faults(struct vkmt_core *core, const struct vkmt_backend_faults *f)
{
    for (unsigned k = 0; k < VKMT_FAULT_KINDS; k++) {
        if (f->rate[k].ppm > VKMT_FAULT_PPM) {
            return -EINVAL;
        }
    }
    if (f->stall_ns > VKMT_FAULT_STALL_MAX_NS) {
        return -EINVAL;
    }
    memset(core->fault_seen, 0, sizeof(core->fault_seen));
    core->faults = *f;
    core->evict_stuck = false;
    return 0;
}

/* Decimal digits at *@p into *@val, at most @max; false when there are none
 * or the value passes @max. */
static bool parse_uint(const char **p, uint32_t max, uint32_t *val)
{
    uint64_t v = 0;
    const char *s = *p;

    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s++ - '0');
        if (v > max) {
            return false;
        }
    }
    if (s == *p) {
        return false;
    }
    *val = (uint32_t)v;
    *p = s;
    return true;
}

int vkmt_fault_rate_parse(const char *text, struct vkmt_fault_rate *out)
{
    struct vkmt_fault_rate r = { 0 };
    const char *p = text;

    if (strcmp(text, "off") == 0) {
        *out = r;
        return 0;
    }
    if (strncmp(p, "every:", 6) == 0) {
        p += 6;
        if (!parse_uint(&p, UINT32_MAX, &r.every) || r.every == 0 || *p) {
            return -EINVAL;
        }
        *out = r;
        return 0;
    }
    if (strncmp(p, "rate:", 5) == 0) {
        uint32_t whole, scale = VKMT_FAULT_PPM;

        p += 5;
        /* Parsed by hand: strtod would follow the host's locale. */
        if (!parse_uint(&p, 1, &whole)) {
            return -EINVAL;
        }
        r.ppm = whole * VKMT_FAULT_PPM;
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++) {
                scale /= 10;
                if (scale == 0) {
                    return -EINVAL; /* finer than a millionth */
                }
                r.ppm += (uint32_t)(*p - '0') * scale;
            }
        }
        if (*p || r.ppm > VKMT_FAULT_PPM) {
            return -EINVAL;
        }
        *out = r;
        return 0;
    }
    return -EINVAL;
}

void vkmt_fault_rate_format(const struct vkmt_fault_rate *r, char *buf, unsigned len)
{
    char frac[8];
    int n;

    if (r->every) {
        snprintf(buf, len, "every:%u", r->every);
        return;
    }
    if (!r->ppm) {
        snprintf(buf, len, "off");
        return;
    }
    /* The shortest decimal that parses back to the same millionths. */
    n = snprintf(frac, sizeof(frac), "%06u", r->ppm % VKMT_FAULT_PPM);
    while (n > 0 && frac[n - 1] == '0') {
        frac[--n] = '\0';
    }
    snprintf(buf, len, "rate:%u%s%s", r->ppm / VKMT_FAULT_PPM, n ? "." : "", frac);
}
