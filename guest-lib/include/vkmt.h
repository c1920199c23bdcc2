/* SPDX-License-Identifier: MIT */
/*
 * libvkmt's own extras on top of the Windows surface in d3dkmthk.h: the
 * driver-private allocation description every D3DKMTCreateAllocation2 call
 * carries, and a few calls for tools and tests (status names, guest-side
 * trim, device reset) that Windows has no thunk for.
 */
#ifndef VKMT_H
#define VKMT_H

#include "d3dkmthk.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Passed per allocation through D3DDDI_ALLOCATIONINFO2.pPrivateDriverData
 * with PrivateDriverDataSize == sizeof(VKMT_ALLOCATION_DESC). Size is in
 * bytes and must be non-zero. A byte buffer has Flags 0 and Dims 0. A 2D
 * texture (when the device offers textures: vkmt_textures_supported()) has
 * Flags = VKMT_ALLOC_TEXTURE(format), Dims = VKMT_TEXTURE_DIMS(width, height)
 * with width and height 1..VKMT_TEXTURE_DIM_MAX, and Size exactly
 * VKMT_TEXTURE_SIZE(format, width, height): its rows are packed, each
 * bytes-per-pixel * width bytes, and Lock2 maps them in that layout.
 * Anything else fails with STATUS_INVALID_PARAMETER.
 */
typedef struct _VKMT_ALLOCATION_DESC {
    UINT64 Size;
    UINT Flags;
    UINT Dims;
} VKMT_ALLOCATION_DESC;

/* Texture formats (D3D's DXGI_FORMAT names less the prefix). */
#define VKMT_TEXFMT_B8G8R8A8_UNORM 1u
#define VKMT_TEXFMT_R8G8B8A8_UNORM 2u
#define VKMT_TEXFMT_R8_UNORM 3u

#define VKMT_TEXTURE_DIM_MAX 16384u
#define VKMT_ALLOC_TEXTURE(format) (0x1u | (UINT)(format) << 8)
#define VKMT_TEXTURE_DIMS(width, height) ((UINT)(width) | (UINT)(height) << 16)
#define VKMT_TEXFMT_BPP(format)                                                                    \
    ((format) == VKMT_TEXFMT_R8_UNORM                                                              \
         ? 1u                                                                                      \
         : ((format) == VKMT_TEXFMT_B8G8R8A8_UNORM || (format) == VKMT_TEXFMT_R8G8B8A8_UNORM       \
                ? 4u                                                                               \
                : 0u))
#define VKMT_TEXTURE_SIZE(format, width, height)                                                   \
    ((UINT64)VKMT_TEXFMT_BPP(format) * (UINT64)(width) * (UINT64)(height))

VKMT_D3D_STATIC_ASSERT(sizeof(VKMT_ALLOCATION_DESC) == 16, "VKMT_ALLOCATION_DESC is 16 bytes");

/* Device-wide counters, for tools (vkmtctl) and tests. */
typedef struct _VKMT_DEVICE_STATS {
    UINT64 Allocations;    /* live, every process */
    UINT64 CommittedBytes; /* every process */
    UINT64 OfferedBytes;   /* offered and still holding content */
    UINT64 BudgetBytes;
    UINT64 Offers;
    UINT64 Discards;
    UINT64 DiscardedBytes;
    UINT64 ReclaimOk;
    UINT64 ReclaimDiscarded;
    UINT64 ReclaimNotCommitted;
    UINT64 Trims;
    UINT64 Commands;
    UINT64 CommandErrors;
    UINT64 QueuesClaimed; /* processes with the device open */
} VKMT_DEVICE_STATS;

/* Fill *@out with the device's counters. */
VKMT_API NTSTATUS vkmt_query_stats(D3DKMT_HANDLE hAdapter, VKMT_DEVICE_STATS *out);

/*
 * One process's figures: each process that opens the device holds one of
 * its queues, and the host names the process by that queue (the QOM
 * properties queue-budget and queue-stats, docs/DEVICE.md). Byte counts
 * are page-rounded, as the budget counts them.
 */
typedef struct _VKMT_QUEUE_STATS {
    UINT Queue;              /* the device queue the process holds */
    BOOL Caller;             /* the calling process's own */
    UINT64 BudgetBytes;      /* the host's budget for the process, 0: none */
    UINT64 LocalBudgetBytes; /* the budget in force: the smaller of it and the device's */
    UINT64 CommittedBytes;   /* resident + offered */
    UINT64 ResidentBytes;    /* resident in the local segment, not offered */
    UINT64 OfferedBytes;     /* offered and still holding content */
    UINT64 DemotedBytes;     /* in the non-local segment */
    UINT64 DiscardedBytes;   /* offered content the device discarded, since the process opened it */
} VKMT_QUEUE_STATS;

/*
 * Per-process figures into @out (@capacity entries): the calling
 * process's own (@all FALSE), or every process's with the device open,
 * in queue order, as many as fit (@all TRUE). *@count, when non-NULL, gets
 * how many there are (more than @capacity when some did not fit).
 * STATUS_NOT_SUPPORTED when the device does not offer VKMT_F_QUEUE_STATS
 * (protocol 1.3); over the kernel driver (kmd transport) @all needs
 * CAP_SYS_ADMIN, others get STATUS_ACCESS_DENIED.
 */
VKMT_API NTSTATUS vkmt_query_queue_stats(D3DKMT_HANDLE hAdapter, BOOL all, VKMT_QUEUE_STATS *out,
                                         UINT capacity, UINT *count);

/* Whether the device behind @hAdapter takes 2D texture allocations. */
VKMT_API BOOL vkmt_textures_supported(D3DKMT_HANDLE hAdapter);

/* The symbolic name of @status ("STATUS_INVALID_PARAMETER"), or NULL. */
VKMT_API const char *vkmt_status_name(NTSTATUS status);

/* The transport this process uses ("loopback", ...), or NULL if none. */
VKMT_API const char *vkmt_transport_name(void);

/*
 * Ask the device to discard offered content, as host memory pressure would:
 * at least @bytes (0: all offered content), in eviction order. The bytes
 * discarded go to *@discarded when it is non-NULL. STATUS_NOT_SUPPORTED when
 * the device does not offer guest-requested trims.
 */
VKMT_API NTSTATUS vkmt_trim(D3DKMT_HANDLE hAdapter, UINT64 bytes, UINT64 *discarded);

/*
 * Reset the device behind @hAdapter. Every queue and allocation on it is
 * torn down, for every process; from then on each call on an adapter opened
 * before the reset returns STATUS_DEVICE_REMOVED. Open the adapter again to
 * use the device. Over the kernel driver (kmd transport) only a process with
 * CAP_SYS_ADMIN may: others get STATUS_ACCESS_DENIED.
 */
VKMT_API NTSTATUS vkmt_reset_adapter(D3DKMT_HANDLE hAdapter);

#ifdef __cplusplus
}
#endif

#endif /* VKMT_H */
