/* SPDX-License-Identifier: MIT */
/*
 * Mappings of locked allocations over a forwarding transport (kmd). The
 * driver lets a file map an allocation's aperture range only while it holds
 * a LOCK on it, and removes the mapping before an UNLOCK that ends the last
 * lock or a DESTROY that may reach it is forwarded. Here each locked
 * allocation is mapped once, counted per nested Lock2 and unmapped by the
 * Unlock2 that ends it, so pData stays the same across nested locks.
 */
#include <stdlib.h>

#include "lib.h"

#define PAGE_ROUND(n) (((n) + VKMT_PAGE_SIZE - 1) & ~(uint64_t)(VKMT_PAGE_SIZE - 1))

static struct lock_map *find(struct adapter *a, D3DKMT_HANDLE dev, D3DKMT_HANDLE alloc)
{
    for (uint32_t i = 0; i < a->nmaps; i++) {
        if (a->maps[i].dev == dev && a->maps[i].alloc == alloc) {
            return &a->maps[i];
        }
    }
    return NULL;
}

int32_t lib_map_locked(struct dev_rec *d, D3DKMT_HANDLE alloc, uint64_t off, uint64_t size,
                       void **out)
{
    struct adapter *a = d->a;
    struct lock_map *m = find(a, d->hw, alloc), *grown;
    void *p;

    if (m) {
        m->count++;
        *out = m->p;
        return STATUS_SUCCESS;
    }
    grown = realloc(a->maps, (a->nmaps + 1) * sizeof(*a->maps));
    if (!grown) {
        return STATUS_NO_MEMORY;
    }
    a->maps = grown;
    p = a->t->ops->map(a->t, off, PAGE_ROUND(size));
    if (!p) {
        return STATUS_NO_MEMORY; /* the lock stands; Unlock2 ends it */
    }
    a->maps[a->nmaps++] = (struct lock_map){
        .dev = d->hw, .alloc = alloc, .p = p, .len = PAGE_ROUND(size), .count = 1
    };
    *out = p;
    return STATUS_SUCCESS;
}

static void unmap_at(struct adapter *a, uint32_t i)
{
    a->t->ops->unmap(a->t, a->maps[i].p, a->maps[i].len);
    a->maps[i] = a->maps[--a->nmaps];
}

void lib_unmap_locked(struct dev_rec *d, D3DKMT_HANDLE alloc)
{
    struct lock_map *m = find(d->a, d->hw, alloc);

    if (m && --m->count == 0) {
        unmap_at(d->a, (uint32_t)(m - d->a->maps));
    }
}

void lib_forget_maps(struct adapter *a, D3DKMT_HANDLE dev, const D3DKMT_HANDLE *allocs, uint32_t n)
{
    for (uint32_t i = a->nmaps; i-- > 0;) {
        bool hit = a->maps[i].dev == dev && !allocs;

        for (uint32_t j = 0; allocs && !hit && j < n; j++) {
            hit = a->maps[i].dev == dev && a->maps[i].alloc == allocs[j];
        }
        if (hit) {
            unmap_at(a, i);
        }
    }
}

void lib_forget_all_maps(struct adapter *a)
{
    while (a->nmaps) {
        unmap_at(a, a->nmaps - 1);
    }
    free(a->maps);
    a->maps = NULL;
}

/*
 * After a resource was destroyed: the library does not know its members,
 * so it asks the device which of the device's mapped allocations still
 * exist (a residency query refuses a destroyed handle) and unmaps the
 * others. Without residency (a 1.1 device) their records stay until the
 * device or the adapter is closed; the driver has zapped the mappings.
 */
void lib_forget_destroyed_maps(struct dev_rec *d)
{
    struct adapter *a = d->a;

    if (!(a->qc.features & VKMT_F_RESIDENCY)) {
        return;
    }
    for (uint32_t i = a->nmaps; i-- > 0;) {
        struct vkmt_sqe sqe = { .opcode = VKMT_OP_QUERY_RESIDENCY, .handle = d->hw, .count = 1 };
        uint32_t status;

        if (a->maps[i].dev != d->hw) {
            continue;
        }
        lib_stage_payload(a, &a->maps[i].alloc, sizeof(a->maps[i].alloc), &sqe);
        if (!lib_stage_results(a, &status, sizeof(status))) {
            continue;
        }
        sqe.result_off = qc_result_off(sqe.payload_len);
        sqe.result_len = sizeof(status);
        if (lib_run(a, &sqe, NULL) == STATUS_INVALID_PARAMETER) {
            unmap_at(a, i);
        }
    }
}
