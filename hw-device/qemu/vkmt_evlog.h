/* SPDX-License-Identifier: MIT */
/*
 * The vkmt device's event log (property "event-log"): one tab-separated
 * line per engine event in a file, for research runs (docs/RESEARCH.md).
 * The guest decides how many events there are, so the file is capped
 * ("event-log-size"): past the cap one last line says the log was cut and
 * later events are only counted. Also the names the glue gives events and
 * priorities, in traces and statistics as in the log. Callers serialize
 * every call (the device's lock).
 */
#ifndef VKMT_EVLOG_H
#define VKMT_EVLOG_H

#include "../core/vkmt_core.h"

typedef struct VkmtEvlog {
    FILE *f;          /* the open log, or NULL */
    const char *path; /* the property's string, owned by the device */
    uint64_t cap;     /* most bytes the file may hold, the cut line included */
    uint64_t bytes;   /* bytes written so far */
    uint64_t seq;     /* lines written */
    uint64_t
        dropped; /* events not written: past the cap, or after a write error */
    bool cut;    /* the cut line was written */
} VkmtEvlog;

/* The smallest cap: the header, a few lines and the cut line. */
#define VKMT_EVLOG_MIN_CAP 4096u

/* Open (truncate) @path with room for @cap bytes and write the header.
 * Returns false with @errp set; vkmt_evlog_close() is still due. */
bool vkmt_evlog_open(VkmtEvlog *l, const char *path, uint64_t cap,
                     Error **errp);
void vkmt_evlog_close(VkmtEvlog *l);
/* Log @ev; a no-op when no log is open. */
void vkmt_evlog_event(VkmtEvlog *l, const struct vkmt_event *ev);
/* Write buffered lines out: at the end of every command and host step. */
void vkmt_evlog_flush(VkmtEvlog *l);

/* "create", "offer", ...: the event column. */
const char *vkmt_event_name(enum vkmt_event_type type);
/* "low", "normal", "high", "auto" for VKMT_PRIO_*, "-" for 0 (no offer). */
const char *vkmt_prio_name(uint32_t prio);

#endif /* VKMT_EVLOG_H */
