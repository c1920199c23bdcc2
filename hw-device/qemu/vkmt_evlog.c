/* SPDX-License-Identifier: MIT */
/*
 * The event log: one tab-separated line per allocation transition, queue
 * event, reset, trim and budget change (format: docs/RESEARCH.md). Lines are
 * buffered and flushed at the end of every command and host operation, so
 * that a reader following the file (tail -f) sees whole operations as they
 * happen. The file never grows past its cap: the line that would pass it is
 * replaced by one that says the log was cut, and every later event is only
 * counted (stats: evlog_dropped), so a guest cannot fill the host's disk.
 */
#include "qemu/osdep.h"

#include "qapi/error.h"
#include "qemu/error-report.h"

#include "vkmt_evlog.h"
#include "vkmt_proto.h"

#define VKMT_EVLOG_HEADER                                                      \
    "# vkmt event log 1: time_ns is CLOCK_MONOTONIC in nanoseconds\n"          \
    "time_ns\tseq\tevent\tqueue\thandle\tsize\tpriority\tresult\n"

/* The longest cut line: "# cut at" + two 20-digit numbers and the text. */
#define VKMT_EVLOG_CUT_MAX 160

static const char *const vkmt_event_names[] = {
    [VKMT_EV_COMMAND] = "command",
    [VKMT_EV_CREATE] = "create",
    [VKMT_EV_DESTROY] = "destroy",
    [VKMT_EV_OFFER] = "offer",
    [VKMT_EV_DISCARD] = "discard",
    [VKMT_EV_DECOMMIT] = "decommit",
    [VKMT_EV_RECLAIM] = "reclaim",
    [VKMT_EV_QUEUE_CLAIM] = "claim",
    [VKMT_EV_QUEUE_RELEASE] = "release",
    [VKMT_EV_QUEUE_ERROR] = "error",
    [VKMT_EV_RESET] = "reset",
    [VKMT_EV_TRIM] = "trim",
    [VKMT_EV_BUDGET] = "budget",
    [VKMT_EV_FAULT_COMMIT] = "fault_commit",
    [VKMT_EV_FAULT_DISCARD] = "fault_discard",
    [VKMT_EV_STALL_COMMIT] = "stall_commit",
    [VKMT_EV_STALL_DISCARD] = "stall_discard",
    [VKMT_EV_NOTIFY] = "notify",
    [VKMT_EV_DEMOTE] = "demote",
    [VKMT_EV_PROMOTE] = "promote",
};

const char *vkmt_event_name(enum vkmt_event_type type)
{
    return (unsigned)type < ARRAY_SIZE(vkmt_event_names)
               ? vkmt_event_names[type]
               : "?";
}

const char *vkmt_prio_name(uint32_t prio)
{
    static const char *const names[] = { "-", "low", "normal", "high", "auto" };

    return prio < ARRAY_SIZE(names) ? names[prio] : "?";
}

static const char *vkmt_qev_name(uint32_t type)
{
    switch (type) {
    case VKMT_QEV_PERIODIC_TRIM:
        return "periodic_trim";
    case VKMT_QEV_RESTART_PERIODIC_TRIM:
        return "restart_periodic_trim";
    case VKMT_QEV_TRIM_TO_BUDGET:
        return "trim_to_budget";
    case VKMT_QEV_BUDGET_CHANGED:
        return "budget_changed";
    }
    return "?";
}

static const char *vkmt_result_name(uint32_t result)
{
    static const char *const names[] = { "ok", "discarded", "not_committed" };

    return result < ARRAY_SIZE(names) ? names[result] : "?";
}

/* A write error: say so once, stop logging; the guest is not affected. */
static void vkmt_evlog_fail(VkmtEvlog *l)
{
    warn_report("vkmt: event-log %s: %s; event logging stops", l->path,
                strerror(errno));
    fclose(l->f);
    l->f = NULL;
}

/* @fields: the columns after "event", tab-separated. */
static void vkmt_evlog_put(VkmtEvlog *l, const char *event, const char *fields)
{
    char line[256];
    struct timespec ts;
    uint64_t ns;
    int len;

    if (l->cut) {
        l->dropped++;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    len = snprintf(line, sizeof(line), "%" PRIu64 "\t%" PRIu64 "\t%s\t%s\n", ns,
                   l->seq + 1, event, fields);
    /* Room is kept for the cut line, so the file never passes the cap. */
    if (l->bytes + (uint64_t)len + VKMT_EVLOG_CUT_MAX > l->cap) {
        len = fprintf(l->f,
                      "# cut at %" PRIu64 " bytes (event-log-size=%" PRIu64
                      "): later events are not written, stats evlog_dropped "
                      "counts them\n",
                      l->bytes, l->cap);
        l->bytes += len > 0 ? (uint64_t)len : 0;
        l->cut = true;
        l->dropped++;
        vkmt_evlog_flush(l);
        return;
    }
    fputs(line, l->f);
    l->bytes += (uint64_t)len;
    l->seq++;
}

void vkmt_evlog_flush(VkmtEvlog *l)
{
    if (l->f && fflush(l->f)) {
        vkmt_evlog_fail(l);
    }
}

void vkmt_evlog_event(VkmtEvlog *l, const struct vkmt_event *ev)
{
    char fields[96];

    if (!l->f) {
        if (l->path && ev->type != VKMT_EV_COMMAND) {
            l->dropped++; /* logging stopped after a write error */
        }
        return;
    }
    switch (ev->type) {
    case VKMT_EV_COMMAND:
        /* Before the completion is posted: a guest that sees it finds the
         * lines. */
        vkmt_evlog_flush(l);
        return;
    case VKMT_EV_QUEUE_CLAIM:
    case VKMT_EV_QUEUE_RELEASE:
    case VKMT_EV_QUEUE_ERROR:
        snprintf(fields, sizeof(fields), "%u\t-\t-\t-\t-", ev->queue);
        vkmt_evlog_put(l, vkmt_event_name(ev->type), fields);
        /* Register accesses, not commands: nothing else would flush. */
        vkmt_evlog_flush(l);
        return;
    case VKMT_EV_RESET:
        vkmt_evlog_put(l, "reset", "-\t-\t-\t-\t-");
        vkmt_evlog_flush(l);
        return;
    case VKMT_EV_TRIM:
    case VKMT_EV_BUDGET: {
        char queue[12] = "-";

        /* Inside a command (a guest trim) or a host step: both flush at the
         * end. */
        if (ev->queue != VKMT_EV_HOST) {
            snprintf(queue, sizeof(queue), "%u", ev->queue);
        }
        snprintf(fields, sizeof(fields), "%s\t-\t%" PRIu64 "\t-\t-", queue,
                 ev->size == UINT64_MAX ? 0 : ev->size); /* a trim of all */
        vkmt_evlog_put(l, vkmt_event_name(ev->type), fields);
        return;
    }
    case VKMT_EV_NOTIFY:
        /* The event's kind in the result column, its value as the size. */
        snprintf(fields, sizeof(fields), "%u\t-\t%" PRIu64 "\t-\t%s", ev->queue,
                 ev->size, vkmt_qev_name(ev->status));
        vkmt_evlog_put(l, "notify", fields);
        return;
    default:
        snprintf(fields, sizeof(fields), "%u\t0x%08x\t%" PRIu64 "\t%s\t%s",
                 ev->queue, ev->handle, ev->size, vkmt_prio_name(ev->priority),
                 ev->type == VKMT_EV_RECLAIM ? vkmt_result_name(ev->status)
                                             : "-");
        vkmt_evlog_put(l, vkmt_event_name(ev->type), fields);
        return;
    }
}

bool vkmt_evlog_open(VkmtEvlog *l, const char *path, uint64_t cap, Error **errp)
{
    *l = (VkmtEvlog){ .path = path, .cap = cap };
    if (cap < VKMT_EVLOG_MIN_CAP) {
        error_setg(errp,
                   "vkmt: event-log-size=%" PRIu64 " is below the minimum %u",
                   cap, VKMT_EVLOG_MIN_CAP);
        return false;
    }
    l->f = fopen(path, "we");
    if (!l->f) {
        error_setg_errno(errp, errno, "vkmt: event-log=%s: cannot open", path);
        return false;
    }
    fputs(VKMT_EVLOG_HEADER, l->f);
    l->bytes = sizeof(VKMT_EVLOG_HEADER) - 1;
    if (fflush(l->f)) {
        error_setg_errno(errp, errno, "vkmt: event-log=%s: cannot write", path);
        return false;
    }
    return true;
}

void vkmt_evlog_close(VkmtEvlog *l)
{
    if (l->f) {
        fclose(l->f);
        l->f = NULL;
    }
}
