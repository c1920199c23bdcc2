/* SPDX-License-Identifier: MIT */
/*
 * Accessors for fields that live in memory shared between guest and device.
 * Every ring index crosses with one of these so that each access is a single
 * untorn load or store with the ordering its comment names; both sides use
 * the same helpers, so the pairing is visible in one place.
 */
#ifndef VKMT_SHMEM_H
#define VKMT_SHMEM_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vkmt reads its little-endian wire format in place: little-endian hosts only"
#endif

/* Acquire: later reads of the entry a published index covers see its data. */
static inline uint32_t vkmt_sh_load_acquire(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Release: the entry's other fields are visible before the index or flag. */
static inline void vkmt_sh_store_release(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Relaxed single-copy access for fields with no ordering duty. */
static inline uint32_t vkmt_sh_load(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void vkmt_sh_store(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

#endif /* VKMT_SHMEM_H */
