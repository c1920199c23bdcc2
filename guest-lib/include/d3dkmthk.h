/* SPDX-License-Identifier: MIT */
/*
 * The Windows-compatible D3DKMT surface of libvkmt: the kernel-thunk entry
 * points a WDDM user-mode driver calls, with the same names, field order and
 * x86_64 struct layouts as on Windows, so code written against the Windows
 * thunks builds and runs against libvkmt unchanged. Layouts are only
 * promised (and asserted) for x86_64; the wire protocol lives elsewhere.
 */
/* Laid out as tables of Windows fields: keep the alignment. */
/* clang-format off */
#ifndef VKMT_D3DKMTHK_H
#define VKMT_D3DKMTHK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

#if defined(__GNUC__)
#define VKMT_API __attribute__((visibility("default")))
#else
#define VKMT_API
#endif

#ifdef __cplusplus
#define VKMT_D3D_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define VKMT_D3D_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Checks one field's byte offset against the Windows x86_64 value. */
#define VKMT_CHECK_OFFSET(type, field, off)                                   \
    VKMT_D3D_STATIC_ASSERT(offsetof(type, field) == (off),                        \
                       #type "." #field " must sit at offset " #off)
#define VKMT_CHECK_SIZE(type, size)                                           \
    VKMT_D3D_STATIC_ASSERT(sizeof(type) == (size),                                \
                       "sizeof(" #type ") must be " #size)

/* ------------------------------------------------------------------------ */
/* Windows base types                                                        */
/* ------------------------------------------------------------------------ */

/* Windows is LLP64: its LONG/ULONG are 32 bits, so fixed-width types are
 * used here rather than C's long, which is 64 bits on Linux x86_64. */
typedef uint32_t  UINT;
typedef uint32_t  ULONG;
typedef int32_t   LONG;
typedef int32_t   BOOL;
typedef int32_t   NTSTATUS;
typedef uint64_t  UINT64;
typedef uintptr_t ULONG_PTR;
typedef void     *HANDLE;
#ifndef VOID
#define VOID void
#endif
/* BOOL's values, spelled as windef.h spells them; a program that defines
 * them first keeps its own. */
#ifndef FALSE
#define FALSE 0
#endif
#ifndef TRUE
#define TRUE 1
#endif

/* Handles handed out by the thunks are 32-bit values, not pointers. */
typedef UINT   D3DKMT_HANDLE;
typedef UINT64 D3DGPU_VIRTUAL_ADDRESS;
typedef UINT   D3DDDI_VIDEO_PRESENT_SOURCE_ID;

typedef struct _LUID {
    ULONG LowPart;
    LONG  HighPart;
} LUID;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(LUID, 8);
VKMT_CHECK_OFFSET(LUID, LowPart, 0);
VKMT_CHECK_OFFSET(LUID, HighPart, 4);
#endif

/* Structs that some fields point at but that libvkmt never looks inside;
 * left incomplete so those pointers still carry a meaningful type. */
typedef struct _D3DDDI_ALLOCATIONLIST           D3DDDI_ALLOCATIONLIST;
typedef struct _D3DDDI_PATCHLOCATIONLIST        D3DDDI_PATCHLOCATIONLIST;
typedef struct _D3DDDI_ALLOCATIONINFO           D3DDDI_ALLOCATIONINFO;
typedef struct _D3DKMT_CREATESTANDARDALLOCATION D3DKMT_CREATESTANDARDALLOCATION;

/* ------------------------------------------------------------------------ */
/* NTSTATUS codes                                                            */
/* ------------------------------------------------------------------------ */

/* Each one is guarded so a caller that already has the Windows values
 * (from another compat header) keeps its own spelling. Negative means
 * failure; zero and positive values (TIMEOUT, PENDING) are successes. */
#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS                  ((NTSTATUS)0x00000000L)
#endif
#ifndef STATUS_TIMEOUT
#define STATUS_TIMEOUT                  ((NTSTATUS)0x00000102L)
#endif
#ifndef STATUS_PENDING
#define STATUS_PENDING                  ((NTSTATUS)0x00000103L)
#endif
#ifndef STATUS_UNSUCCESSFUL
#define STATUS_UNSUCCESSFUL             ((NTSTATUS)0xC0000001L)
#endif
#ifndef STATUS_NOT_IMPLEMENTED
#define STATUS_NOT_IMPLEMENTED          ((NTSTATUS)0xC0000002L)
#endif
#ifndef STATUS_INVALID_HANDLE
#define STATUS_INVALID_HANDLE           ((NTSTATUS)0xC0000008L)
#endif
#ifndef STATUS_INVALID_PARAMETER
#define STATUS_INVALID_PARAMETER        ((NTSTATUS)0xC000000DL)
#endif
#ifndef STATUS_NO_MEMORY
#define STATUS_NO_MEMORY                ((NTSTATUS)0xC0000017L)
#endif
#ifndef STATUS_ACCESS_DENIED
#define STATUS_ACCESS_DENIED            ((NTSTATUS)0xC0000022L)
#endif
#ifndef STATUS_BUFFER_TOO_SMALL
#define STATUS_BUFFER_TOO_SMALL         ((NTSTATUS)0xC0000023L)
#endif
#ifndef STATUS_NOT_SUPPORTED
#define STATUS_NOT_SUPPORTED            ((NTSTATUS)0xC00000BBL)
#endif
#ifndef STATUS_DEVICE_REMOVED
#define STATUS_DEVICE_REMOVED           ((NTSTATUS)0xC00002B6L)
#endif
#ifndef STATUS_GRAPHICS_NO_VIDEO_MEMORY
#define STATUS_GRAPHICS_NO_VIDEO_MEMORY ((NTSTATUS)0xC01E0100L)
#endif
#ifndef STATUS_GRAPHICS_ALLOCATION_BUSY
#define STATUS_GRAPHICS_ALLOCATION_BUSY ((NTSTATUS)0xC01E0102L)
#endif
#ifndef NT_SUCCESS
#define NT_SUCCESS(s) (((NTSTATUS)(s)) >= 0)
#endif

/* ------------------------------------------------------------------------ */
/* Adapters                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct _D3DKMT_ADAPTERINFO {
    D3DKMT_HANDLE hAdapter;
    LUID          AdapterLuid;
    ULONG         NumOfSources;
    BOOL          bPrecisePresentRegionsPreferred;
} D3DKMT_ADAPTERINFO;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_ADAPTERINFO, 20);
VKMT_CHECK_OFFSET(D3DKMT_ADAPTERINFO, hAdapter, 0);
VKMT_CHECK_OFFSET(D3DKMT_ADAPTERINFO, AdapterLuid, 4);
VKMT_CHECK_OFFSET(D3DKMT_ADAPTERINFO, NumOfSources, 12);
VKMT_CHECK_OFFSET(D3DKMT_ADAPTERINFO, bPrecisePresentRegionsPreferred, 16);
#endif

/* With pAdapters NULL the call only reports how many entries to allocate. */
typedef struct _D3DKMT_ENUMADAPTERS2 {
    ULONG               NumAdapters; /* in: array capacity; out: count */
    D3DKMT_ADAPTERINFO *pAdapters;
} D3DKMT_ENUMADAPTERS2;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_ENUMADAPTERS2, 16);
VKMT_CHECK_OFFSET(D3DKMT_ENUMADAPTERS2, NumAdapters, 0);
VKMT_CHECK_OFFSET(D3DKMT_ENUMADAPTERS2, pAdapters, 8);
#endif

typedef struct _D3DKMT_OPENADAPTERFROMLUID {
    LUID          AdapterLuid;
    D3DKMT_HANDLE hAdapter; /* out */
} D3DKMT_OPENADAPTERFROMLUID;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_OPENADAPTERFROMLUID, 12);
VKMT_CHECK_OFFSET(D3DKMT_OPENADAPTERFROMLUID, AdapterLuid, 0);
VKMT_CHECK_OFFSET(D3DKMT_OPENADAPTERFROMLUID, hAdapter, 8);
#endif

typedef struct _D3DKMT_CLOSEADAPTER {
    D3DKMT_HANDLE hAdapter;
} D3DKMT_CLOSEADAPTER;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CLOSEADAPTER, 4);
VKMT_CHECK_OFFSET(D3DKMT_CLOSEADAPTER, hAdapter, 0);
#endif

/* ------------------------------------------------------------------------ */
/* Devices                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct _D3DKMT_CREATEDEVICEFLAGS {
    UINT LegacyMode        : 1;
    UINT RequestVSync      : 1;
    UINT DisableGpuTimeout : 1;
    UINT Reserved          : 29;
} D3DKMT_CREATEDEVICEFLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CREATEDEVICEFLAGS, 4);
#endif

/*
 * User mode fills hAdapter; pAdapter exists for kernel callers and only
 * widens the union to pointer size. The command-buffer and list outputs
 * are leftovers of the D3D10-era submission model.
 */
typedef struct _D3DKMT_CREATEDEVICE {
    union {
        D3DKMT_HANDLE hAdapter;
        VOID         *pAdapter;
    };
    D3DKMT_CREATEDEVICEFLAGS  Flags;
    D3DKMT_HANDLE             hDevice; /* out */
    VOID                     *pCommandBuffer;
    UINT                      CommandBufferSize;
    D3DDDI_ALLOCATIONLIST    *pAllocationList;
    UINT                      AllocationListSize;
    D3DDDI_PATCHLOCATIONLIST *pPatchLocationList;
    UINT                      PatchLocationListSize;
} D3DKMT_CREATEDEVICE;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CREATEDEVICE, 64);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, hAdapter, 0);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, pAdapter, 0);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, Flags, 8);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, hDevice, 12);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, pCommandBuffer, 16);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, CommandBufferSize, 24);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, pAllocationList, 32);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, AllocationListSize, 40);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, pPatchLocationList, 48);
VKMT_CHECK_OFFSET(D3DKMT_CREATEDEVICE, PatchLocationListSize, 56);
#endif

typedef struct _D3DKMT_DESTROYDEVICE {
    D3DKMT_HANDLE hDevice;
} D3DKMT_DESTROYDEVICE;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_DESTROYDEVICE, 4);
VKMT_CHECK_OFFSET(D3DKMT_DESTROYDEVICE, hDevice, 0);
#endif

/* ------------------------------------------------------------------------ */
/* Paging queues                                                             */
/* ------------------------------------------------------------------------ */

typedef enum D3DDDI_PAGINGQUEUE_PRIORITY {
    D3DDDI_PAGINGQUEUE_PRIORITY_BELOW_NORMAL = -1,
    D3DDDI_PAGINGQUEUE_PRIORITY_NORMAL       = 0,
    D3DDDI_PAGINGQUEUE_PRIORITY_ABOVE_NORMAL = 1
} D3DDDI_PAGINGQUEUE_PRIORITY;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_PAGINGQUEUE_PRIORITY, 4);
#endif

/* A paging queue comes with a monitored fence; the CPU can read its current
 * value through FenceValueCPUVirtualAddress without calling in. */
typedef struct _D3DKMT_CREATEPAGINGQUEUE {
    D3DKMT_HANDLE               hDevice;
    D3DDDI_PAGINGQUEUE_PRIORITY Priority;
    D3DKMT_HANDLE               hPagingQueue;                /* out */
    D3DKMT_HANDLE               hSyncObject;                 /* out */
    VOID                       *FenceValueCPUVirtualAddress; /* out, read-only */
    UINT                        PhysicalAdapterIndex;
} D3DKMT_CREATEPAGINGQUEUE;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CREATEPAGINGQUEUE, 32);
VKMT_CHECK_OFFSET(D3DKMT_CREATEPAGINGQUEUE, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_CREATEPAGINGQUEUE, Priority, 4);
VKMT_CHECK_OFFSET(D3DKMT_CREATEPAGINGQUEUE, hPagingQueue, 8);
VKMT_CHECK_OFFSET(D3DKMT_CREATEPAGINGQUEUE, hSyncObject, 12);
VKMT_CHECK_OFFSET(D3DKMT_CREATEPAGINGQUEUE, FenceValueCPUVirtualAddress, 16);
VKMT_CHECK_OFFSET(D3DKMT_CREATEPAGINGQUEUE, PhysicalAdapterIndex, 24);
#endif

typedef struct D3DDDI_DESTROYPAGINGQUEUE {
    D3DKMT_HANDLE hPagingQueue;
} D3DDDI_DESTROYPAGINGQUEUE;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_DESTROYPAGINGQUEUE, 4);
VKMT_CHECK_OFFSET(D3DDDI_DESTROYPAGINGQUEUE, hPagingQueue, 0);
#endif

/* ------------------------------------------------------------------------ */
/* Allocations                                                               */
/* ------------------------------------------------------------------------ */

/* One entry per allocation in D3DKMT_CREATEALLOCATION.pAllocationInfo2. */
typedef struct _D3DDDI_ALLOCATIONINFO2 {
    D3DKMT_HANDLE hAllocation; /* out */
    union {                    /* which one is meant depends on the
                                  ExistingSection creation flag */
        HANDLE      hSection;
        const VOID *pSystemMem;
    };
    VOID                          *pPrivateDriverData;
    UINT                           PrivateDriverDataSize;
    D3DDDI_VIDEO_PRESENT_SOURCE_ID VidPnSourceId;
    union {
        struct {
            UINT Primary          : 1;
            UINT Stereo           : 1;
            UINT OverridePriority : 1;
            UINT Reserved         : 29;
        };
        UINT Value;
    } Flags;
    D3DGPU_VIRTUAL_ADDRESS GpuVirtualAddress; /* out */
    union {
        UINT      Priority; /* read only when Flags.OverridePriority is set */
        ULONG_PTR Unused;   /* keeps the slot pointer-sized */
    };
    ULONG_PTR Reserved[5];
} D3DDDI_ALLOCATIONINFO2;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_ALLOCATIONINFO2, 96);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, hAllocation, 0);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, hSection, 8);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, pSystemMem, 8);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, pPrivateDriverData, 16);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, PrivateDriverDataSize, 24);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, VidPnSourceId, 28);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, Flags, 32);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, Flags.Value, 32);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, GpuVirtualAddress, 40);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, Priority, 48);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, Unused, 48);
VKMT_CHECK_OFFSET(D3DDDI_ALLOCATIONINFO2, Reserved, 56);
#endif

/* Bit positions follow the newest (WDDM 3.0) Windows definition. */
typedef struct _D3DKMT_CREATEALLOCATIONFLAGS {
    UINT CreateResource       : 1;
    UINT CreateShared         : 1;
    UINT NonSecure            : 1;
    UINT CreateProtected      : 1;
    UINT RestrictSharedAccess : 1;
    UINT ExistingSysMem       : 1;
    UINT NtSecuritySharing    : 1;
    UINT ReadOnly             : 1;
    UINT CreateWriteCombined  : 1;
    UINT CreateCached         : 1;
    UINT SwapChainBackBuffer  : 1;
    UINT CrossAdapter         : 1;
    UINT OpenCrossAdapter     : 1;
    UINT PartialSharedCreation : 1;
    UINT Zeroed               : 1;
    UINT WriteWatch           : 1;
    UINT StandardAllocation   : 1;
    UINT ExistingSection      : 1;
    UINT AllowNotZeroed       : 1;
    UINT PhysicallyContiguous : 1;
    UINT NoKmdAccess          : 1;
    UINT SharedDisplayable    : 1;
    UINT Reserved             : 10;
} D3DKMT_CREATEALLOCATIONFLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CREATEALLOCATIONFLAGS, 4);
#endif

/*
 * The argument of D3DKMTCreateAllocation2. The second union is read as
 * pStandardAllocation when Flags.StandardAllocation is set; the third
 * union is read as pAllocationInfo2 by the "2" entry point.
 */
typedef struct _D3DKMT_CREATEALLOCATION {
    D3DKMT_HANDLE hDevice;
    D3DKMT_HANDLE hResource;    /* in/out */
    D3DKMT_HANDLE hGlobalShare; /* out */
    const VOID   *pPrivateRuntimeData;
    UINT          PrivateRuntimeDataSize;
    union {
        D3DKMT_CREATESTANDARDALLOCATION *pStandardAllocation;
        const VOID                      *pPrivateDriverData;
    };
    UINT PrivateDriverDataSize;
    UINT NumAllocations;
    union {
        D3DDDI_ALLOCATIONINFO  *pAllocationInfo;
        D3DDDI_ALLOCATIONINFO2 *pAllocationInfo2;
    };
    D3DKMT_CREATEALLOCATIONFLAGS Flags;
    HANDLE                       hPrivateRuntimeResourceHandle;
} D3DKMT_CREATEALLOCATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CREATEALLOCATION, 72);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, hResource, 4);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, hGlobalShare, 8);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, pPrivateRuntimeData, 16);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, PrivateRuntimeDataSize, 24);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, pStandardAllocation, 32);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, pPrivateDriverData, 32);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, PrivateDriverDataSize, 40);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, NumAllocations, 44);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, pAllocationInfo, 48);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, pAllocationInfo2, 48);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, Flags, 56);
VKMT_CHECK_OFFSET(D3DKMT_CREATEALLOCATION, hPrivateRuntimeResourceHandle, 64);
#endif

/* Note the gap: Reserved covers bits 2..30 and SystemUseOnly is bit 31. */
typedef struct _D3DDDICB_DESTROYALLOCATION2FLAGS {
    union {
        struct {
            UINT AssumeNotInUse     : 1;
            UINT SynchronousDestroy : 1;
            UINT Reserved           : 29;
            UINT SystemUseOnly      : 1; /* not for drivers to set */
        };
        UINT Value;
    };
} D3DDDICB_DESTROYALLOCATION2FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDICB_DESTROYALLOCATION2FLAGS, 4);
VKMT_CHECK_OFFSET(D3DDDICB_DESTROYALLOCATION2FLAGS, Value, 0);
#endif

typedef struct _D3DKMT_DESTROYALLOCATION2 {
    D3DKMT_HANDLE                    hDevice;
    D3DKMT_HANDLE                    hResource;
    const D3DKMT_HANDLE             *phAllocationList;
    UINT                             AllocationCount;
    D3DDDICB_DESTROYALLOCATION2FLAGS Flags;
} D3DKMT_DESTROYALLOCATION2;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_DESTROYALLOCATION2, 24);
VKMT_CHECK_OFFSET(D3DKMT_DESTROYALLOCATION2, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_DESTROYALLOCATION2, hResource, 4);
VKMT_CHECK_OFFSET(D3DKMT_DESTROYALLOCATION2, phAllocationList, 8);
VKMT_CHECK_OFFSET(D3DKMT_DESTROYALLOCATION2, AllocationCount, 16);
VKMT_CHECK_OFFSET(D3DKMT_DESTROYALLOCATION2, Flags, 20);
#endif

/* ------------------------------------------------------------------------ */
/* CPU mapping                                                               */
/* ------------------------------------------------------------------------ */

/* Windows defines no lock2 flags yet; every bit is reserved. */
typedef struct _D3DDDICB_LOCK2FLAGS {
    union {
        struct {
            UINT Reserved : 32;
        };
        UINT Value;
    };
} D3DDDICB_LOCK2FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDICB_LOCK2FLAGS, 4);
VKMT_CHECK_OFFSET(D3DDDICB_LOCK2FLAGS, Value, 0);
#endif

typedef struct _D3DKMT_LOCK2 {
    D3DKMT_HANDLE       hDevice;
    D3DKMT_HANDLE       hAllocation;
    D3DDDICB_LOCK2FLAGS Flags;
    VOID               *pData; /* out: CPU address of the allocation */
} D3DKMT_LOCK2;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_LOCK2, 24);
VKMT_CHECK_OFFSET(D3DKMT_LOCK2, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_LOCK2, hAllocation, 4);
VKMT_CHECK_OFFSET(D3DKMT_LOCK2, Flags, 8);
VKMT_CHECK_OFFSET(D3DKMT_LOCK2, pData, 16);
#endif

typedef struct _D3DKMT_UNLOCK2 {
    D3DKMT_HANDLE hDevice;
    D3DKMT_HANDLE hAllocation;
} D3DKMT_UNLOCK2;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_UNLOCK2, 8);
VKMT_CHECK_OFFSET(D3DKMT_UNLOCK2, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_UNLOCK2, hAllocation, 4);
#endif

/* ------------------------------------------------------------------------ */
/* Offer / reclaim                                                           */
/* ------------------------------------------------------------------------ */

/* Starts at 1: zero is not a valid priority. */
typedef enum _D3DKMT_OFFER_PRIORITY {
    D3DKMT_OFFER_PRIORITY_LOW    = 1, /* content worthless: drop first */
    D3DKMT_OFFER_PRIORITY_NORMAL = 2, /* useful but cheap to rebuild */
    D3DKMT_OFFER_PRIORITY_HIGH   = 3, /* costly to rebuild: drop last */
    D3DKMT_OFFER_PRIORITY_AUTO   = 4  /* memory manager chooses */
} D3DKMT_OFFER_PRIORITY;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_OFFER_PRIORITY, 4);
#endif

/* Kernel-thunk bit order. The UMD-level D3DDDI_OFFER_FLAGS and DXGI put
 * AllowDecommit at bit 0 instead, so values must be translated, not copied. */
typedef struct _D3DKMT_OFFER_FLAGS {
    union {
        struct {
            UINT OfferImmediately : 1; /* bit 0 */
            UINT AllowDecommit    : 1; /* bit 1 */
            UINT Reserved         : 30;
        };
        UINT Value;
    };
} D3DKMT_OFFER_FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_OFFER_FLAGS, 4);
VKMT_CHECK_OFFSET(D3DKMT_OFFER_FLAGS, Value, 0);
#endif

/* Exactly one of pResources / HandleList is non-NULL, each holding
 * NumAllocations handles. */
typedef struct _D3DKMT_OFFERALLOCATIONS {
    D3DKMT_HANDLE         hDevice;
    D3DKMT_HANDLE        *pResources;
    const D3DKMT_HANDLE  *HandleList;
    UINT                  NumAllocations;
    D3DKMT_OFFER_PRIORITY Priority;
    D3DKMT_OFFER_FLAGS    Flags; /* absent before WDDM 2.0 (then 32 bytes) */
} D3DKMT_OFFERALLOCATIONS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_OFFERALLOCATIONS, 40);
VKMT_CHECK_OFFSET(D3DKMT_OFFERALLOCATIONS, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_OFFERALLOCATIONS, pResources, 8);
VKMT_CHECK_OFFSET(D3DKMT_OFFERALLOCATIONS, HandleList, 16);
VKMT_CHECK_OFFSET(D3DKMT_OFFERALLOCATIONS, NumAllocations, 24);
VKMT_CHECK_OFFSET(D3DKMT_OFFERALLOCATIONS, Priority, 28);
VKMT_CHECK_OFFSET(D3DKMT_OFFERALLOCATIONS, Flags, 32);
#endif

/* Same width as BOOL so a results array can share storage with pDiscarded. */
typedef enum _D3DDDI_RECLAIM_RESULT {
    D3DDDI_RECLAIM_RESULT_OK            = 0, /* content intact */
    D3DDDI_RECLAIM_RESULT_DISCARDED     = 1, /* usable, content undefined */
    D3DDDI_RECLAIM_RESULT_NOT_COMMITTED = 2  /* gone: must be recreated */
} D3DDDI_RECLAIM_RESULT;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_RECLAIM_RESULT, 4);
#endif

/* pDiscarded is optional; without it the caller must treat every
 * allocation's content as lost. */
typedef struct _D3DKMT_RECLAIMALLOCATIONS {
    D3DKMT_HANDLE        hDevice;
    D3DKMT_HANDLE       *pResources;
    const D3DKMT_HANDLE *HandleList;
    BOOL                *pDiscarded; /* out, optional */
    UINT                 NumAllocations;
} D3DKMT_RECLAIMALLOCATIONS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_RECLAIMALLOCATIONS, 40);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS, pResources, 8);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS, HandleList, 16);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS, pDiscarded, 24);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS, NumAllocations, 32);
#endif

/* The device is implied by the paging queue. Residency completes when the
 * queue's fence reaches PagingFenceValue; GPU work using the allocations
 * must wait for it. */
typedef struct _D3DKMT_RECLAIMALLOCATIONS2 {
    D3DKMT_HANDLE        hPagingQueue;
    UINT                 NumAllocations;
    D3DKMT_HANDLE       *pResources;
    const D3DKMT_HANDLE *HandleList;
    union {
        BOOL                  *pDiscarded; /* out, optional */
        D3DDDI_RECLAIM_RESULT *pResults;   /* out, optional */
    };
    UINT64 PagingFenceValue; /* out */
} D3DKMT_RECLAIMALLOCATIONS2;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_RECLAIMALLOCATIONS2, 40);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, hPagingQueue, 0);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, NumAllocations, 4);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, pResources, 8);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, HandleList, 16);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, pDiscarded, 24);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, pResults, 24);
VKMT_CHECK_OFFSET(D3DKMT_RECLAIMALLOCATIONS2, PagingFenceValue, 32);
#endif

/* ------------------------------------------------------------------------ */
/* Video memory budget                                                       */
/* ------------------------------------------------------------------------ */

typedef enum _D3DKMT_MEMORY_SEGMENT_GROUP {
    D3DKMT_MEMORY_SEGMENT_GROUP_LOCAL     = 0, /* memory on the GPU */
    D3DKMT_MEMORY_SEGMENT_GROUP_NON_LOCAL = 1  /* system memory it can reach */
} D3DKMT_MEMORY_SEGMENT_GROUP;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_MEMORY_SEGMENT_GROUP, 4);
#endif

typedef struct _D3DKMT_QUERYVIDEOMEMORYINFO {
    HANDLE                      hProcess; /* NULL: the calling process */
    D3DKMT_HANDLE               hAdapter;
    D3DKMT_MEMORY_SEGMENT_GROUP MemorySegmentGroup;
    UINT64                      Budget;                  /* out */
    UINT64                      CurrentUsage;            /* out */
    UINT64                      CurrentReservation;      /* out */
    UINT64                      AvailableForReservation; /* out */
    UINT                        PhysicalAdapterIndex;
} D3DKMT_QUERYVIDEOMEMORYINFO;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_QUERYVIDEOMEMORYINFO, 56);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, hProcess, 0);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, hAdapter, 8);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, MemorySegmentGroup, 12);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, Budget, 16);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, CurrentUsage, 24);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, CurrentReservation, 32);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, AvailableForReservation, 40);
VKMT_CHECK_OFFSET(D3DKMT_QUERYVIDEOMEMORYINFO, PhysicalAdapterIndex, 48);
#endif

typedef struct _D3DKMT_CHANGEVIDEOMMEMORYRESERVATION { /* sic: Windows' tag */
    HANDLE                      hProcess; /* NULL: the calling process */
    D3DKMT_HANDLE               hAdapter;
    D3DKMT_MEMORY_SEGMENT_GROUP MemorySegmentGroup;
    UINT64                      Reservation; /* at most AvailableForReservation */
    UINT                        PhysicalAdapterIndex;
} D3DKMT_CHANGEVIDEOMEMORYRESERVATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_CHANGEVIDEOMEMORYRESERVATION, 32);
VKMT_CHECK_OFFSET(D3DKMT_CHANGEVIDEOMEMORYRESERVATION, hProcess, 0);
VKMT_CHECK_OFFSET(D3DKMT_CHANGEVIDEOMEMORYRESERVATION, hAdapter, 8);
VKMT_CHECK_OFFSET(D3DKMT_CHANGEVIDEOMEMORYRESERVATION, MemorySegmentGroup, 12);
VKMT_CHECK_OFFSET(D3DKMT_CHANGEVIDEOMEMORYRESERVATION, Reservation, 16);
VKMT_CHECK_OFFSET(D3DKMT_CHANGEVIDEOMEMORYRESERVATION, PhysicalAdapterIndex, 24);
#endif

/* ------------------------------------------------------------------------ */
/* Residency                                                                 */
/* ------------------------------------------------------------------------ */

/* Allocation priorities: named levels of a scale on which every UINT is
 * legal; lower ones are demoted first under pressure. */
#define D3DDDI_ALLOCATIONPRIORITY_MINIMUM 0x28000000
#define D3DDDI_ALLOCATIONPRIORITY_LOW     0x50000000
#define D3DDDI_ALLOCATIONPRIORITY_NORMAL  0x78000000
#define D3DDDI_ALLOCATIONPRIORITY_HIGH    0xa0000000
#define D3DDDI_ALLOCATIONPRIORITY_MAXIMUM 0xc8000000

typedef struct _D3DDDI_MAKERESIDENT_FLAGS {
    union {
        struct {
            UINT CantTrimFurther : 1; /* may exceed the current budget */
            UINT MustSucceed     : 1; /* only with CantTrimFurther */
            UINT Reserved        : 30;
        };
        UINT Value;
    };
} D3DDDI_MAKERESIDENT_FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_MAKERESIDENT_FLAGS, 4);
#endif

/* The device is implied by the paging queue. */
typedef struct _D3DDDI_MAKERESIDENT {
    D3DKMT_HANDLE             hPagingQueue;
    UINT                      NumAllocations; /* in and out */
    const D3DKMT_HANDLE      *AllocationList;
    const UINT               *PriorityList;   /* ignored, may be NULL */
    D3DDDI_MAKERESIDENT_FLAGS Flags;
    UINT64                    PagingFenceValue; /* out */
    UINT64                    NumBytesToTrim;   /* out, on STATUS_NO_MEMORY */
} D3DDDI_MAKERESIDENT;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_MAKERESIDENT, 48);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, hPagingQueue, 0);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, NumAllocations, 4);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, AllocationList, 8);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, PriorityList, 16);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, Flags, 24);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, PagingFenceValue, 32);
VKMT_CHECK_OFFSET(D3DDDI_MAKERESIDENT, NumBytesToTrim, 40);
#endif

typedef struct _D3DDDI_EVICT_FLAGS {
    union {
        struct {
            UINT EvictOnlyIfNecessary : 1; /* likely reused: only under pressure */
            UINT NotWrittenTo         : 1;
            UINT Reserved             : 30;
        };
        UINT Value;
    };
} D3DDDI_EVICT_FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_EVICT_FLAGS, 4);
#endif

typedef struct _D3DKMT_EVICT {
    D3DKMT_HANDLE        hDevice;
    UINT                 NumAllocations;
    const D3DKMT_HANDLE *AllocationList;
    D3DDDI_EVICT_FLAGS   Flags;
    UINT64               NumBytesToTrim; /* out */
} D3DKMT_EVICT;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_EVICT, 32);
VKMT_CHECK_OFFSET(D3DKMT_EVICT, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_EVICT, NumAllocations, 4);
VKMT_CHECK_OFFSET(D3DKMT_EVICT, AllocationList, 8);
VKMT_CHECK_OFFSET(D3DKMT_EVICT, Flags, 16);
VKMT_CHECK_OFFSET(D3DKMT_EVICT, NumBytesToTrim, 24);
#endif

/* Either hResource (AllocationCount 0, phAllocationList NULL, one
 * priority) or an allocation list with one priority each. */
typedef struct _D3DKMT_SETALLOCATIONPRIORITY {
    D3DKMT_HANDLE        hDevice;
    D3DKMT_HANDLE        hResource;
    const D3DKMT_HANDLE *phAllocationList;
    UINT                 AllocationCount;
    const UINT          *pPriorities;
} D3DKMT_SETALLOCATIONPRIORITY;

typedef struct _D3DKMT_GETALLOCATIONPRIORITY {
    D3DKMT_HANDLE        hDevice;
    D3DKMT_HANDLE        hResource;
    const D3DKMT_HANDLE *phAllocationList;
    UINT                 AllocationCount;
    UINT                *pPriorities; /* out */
} D3DKMT_GETALLOCATIONPRIORITY;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_SETALLOCATIONPRIORITY, 32);
VKMT_CHECK_OFFSET(D3DKMT_SETALLOCATIONPRIORITY, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_SETALLOCATIONPRIORITY, hResource, 4);
VKMT_CHECK_OFFSET(D3DKMT_SETALLOCATIONPRIORITY, phAllocationList, 8);
VKMT_CHECK_OFFSET(D3DKMT_SETALLOCATIONPRIORITY, AllocationCount, 16);
VKMT_CHECK_OFFSET(D3DKMT_SETALLOCATIONPRIORITY, pPriorities, 24);
VKMT_CHECK_SIZE(D3DKMT_GETALLOCATIONPRIORITY, 32);
VKMT_CHECK_OFFSET(D3DKMT_GETALLOCATIONPRIORITY, pPriorities, 24);
#endif

typedef enum _D3DKMT_ALLOCATIONRESIDENCYSTATUS {
    D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINGPUMEMORY    = 1,
    D3DKMT_ALLOCATIONRESIDENCYSTATUS_RESIDENTINSHAREDMEMORY = 2,
    D3DKMT_ALLOCATIONRESIDENCYSTATUS_NOTRESIDENT            = 3
} D3DKMT_ALLOCATIONRESIDENCYSTATUS;

typedef struct _D3DKMT_QUERYALLOCATIONRESIDENCY {
    D3DKMT_HANDLE                     hDevice;
    D3DKMT_HANDLE                     hResource;
    const D3DKMT_HANDLE              *phAllocationList;
    UINT                              AllocationCount;
    D3DKMT_ALLOCATIONRESIDENCYSTATUS *pResidencyStatus; /* out */
} D3DKMT_QUERYALLOCATIONRESIDENCY;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_ALLOCATIONRESIDENCYSTATUS, 4);
VKMT_CHECK_SIZE(D3DKMT_QUERYALLOCATIONRESIDENCY, 32);
VKMT_CHECK_OFFSET(D3DKMT_QUERYALLOCATIONRESIDENCY, hResource, 4);
VKMT_CHECK_OFFSET(D3DKMT_QUERYALLOCATIONRESIDENCY, phAllocationList, 8);
VKMT_CHECK_OFFSET(D3DKMT_QUERYALLOCATIONRESIDENCY, AllocationCount, 16);
VKMT_CHECK_OFFSET(D3DKMT_QUERYALLOCATIONRESIDENCY, pResidencyStatus, 24);
#endif

/* ------------------------------------------------------------------------ */
/* Trim and budget-change notifications                                      */
/* ------------------------------------------------------------------------ */

/* Why a trim callback runs; TrimToBudget comes with NumBytesToTrim. */
typedef struct _D3DDDI_TRIMRESIDENCYSET_FLAGS {
    union {
        struct {
            UINT PeriodicTrim        : 1; /* trim what was unused since the last one */
            UINT RestartPeriodicTrim : 1; /* only restart that period */
            UINT TrimToBudget        : 1; /* over budget: trim NumBytesToTrim */
            UINT Reserved            : 29;
        };
        UINT Value;
    };
} D3DDDI_TRIMRESIDENCYSET_FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_TRIMRESIDENCYSET_FLAGS, 4);
#endif

typedef struct _D3DKMT_TRIMNOTIFICATION {
    VOID                         *Context;        /* the registration's */
    D3DDDI_TRIMRESIDENCYSET_FLAGS Flags;
    UINT64                        NumBytesToTrim; /* with TrimToBudget */
} D3DKMT_TRIMNOTIFICATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_TRIMNOTIFICATION, 24);
VKMT_CHECK_OFFSET(D3DKMT_TRIMNOTIFICATION, Context, 0);
VKMT_CHECK_OFFSET(D3DKMT_TRIMNOTIFICATION, Flags, 8);
VKMT_CHECK_OFFSET(D3DKMT_TRIMNOTIFICATION, NumBytesToTrim, 16);
#endif

typedef VOID (*PFND3DKMT_TRIMNOTIFICATIONCALLBACK)(D3DKMT_TRIMNOTIFICATION *);

typedef struct _D3DKMT_REGISTERTRIMNOTIFICATION {
    LUID                              AdapterLuid; /* the adapter of hDevice */
    D3DKMT_HANDLE                     hDevice;
    PFND3DKMT_TRIMNOTIFICATIONCALLBACK Callback;
    VOID                             *Context;
    VOID                             *Handle;      /* out: for Unregister */
} D3DKMT_REGISTERTRIMNOTIFICATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_REGISTERTRIMNOTIFICATION, 40);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERTRIMNOTIFICATION, AdapterLuid, 0);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERTRIMNOTIFICATION, hDevice, 8);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERTRIMNOTIFICATION, Callback, 16);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERTRIMNOTIFICATION, Context, 24);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERTRIMNOTIFICATION, Handle, 32);
#endif

/* Handle NULL and Callback set: every registration of that callback goes. */
typedef struct _D3DKMT_UNREGISTERTRIMNOTIFICATION {
    VOID                             *Handle;
    PFND3DKMT_TRIMNOTIFICATIONCALLBACK Callback;
} D3DKMT_UNREGISTERTRIMNOTIFICATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_UNREGISTERTRIMNOTIFICATION, 16);
VKMT_CHECK_OFFSET(D3DKMT_UNREGISTERTRIMNOTIFICATION, Handle, 0);
VKMT_CHECK_OFFSET(D3DKMT_UNREGISTERTRIMNOTIFICATION, Callback, 8);
#endif

typedef struct _D3DKMT_BUDGETCHANGENOTIFICATION {
    VOID  *Context;
    UINT64 Budget; /* the new budget, bytes */
} D3DKMT_BUDGETCHANGENOTIFICATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_BUDGETCHANGENOTIFICATION, 16);
VKMT_CHECK_OFFSET(D3DKMT_BUDGETCHANGENOTIFICATION, Budget, 8);
#endif

typedef VOID (*PFND3DKMT_BUDGETCHANGENOTIFICATIONCALLBACK)(D3DKMT_BUDGETCHANGENOTIFICATION *);

typedef struct _D3DKMT_REGISTERBUDGETCHANGENOTIFICATION {
    D3DKMT_HANDLE                             hDevice;
    PFND3DKMT_BUDGETCHANGENOTIFICATIONCALLBACK Callback;
    VOID                                     *Context;
    VOID                                     *Handle; /* out */
} D3DKMT_REGISTERBUDGETCHANGENOTIFICATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_REGISTERBUDGETCHANGENOTIFICATION, 32);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERBUDGETCHANGENOTIFICATION, Callback, 8);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERBUDGETCHANGENOTIFICATION, Context, 16);
VKMT_CHECK_OFFSET(D3DKMT_REGISTERBUDGETCHANGENOTIFICATION, Handle, 24);
#endif

typedef struct _D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION {
    VOID *Handle;
} D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION, 8);
#endif

/* ------------------------------------------------------------------------ */
/* CPU waits on monitored fences                                             */
/* ------------------------------------------------------------------------ */

typedef struct _D3DDDI_WAITFORSYNCHRONIZATIONOBJECTFROMCPU_FLAGS {
    union {
        struct {
            UINT WaitAny  : 1; /* one satisfied entry is enough, not all */
            UINT Reserved : 31;
        };
        UINT Value;
    };
} D3DDDI_WAITFORSYNCHRONIZATIONOBJECTFROMCPU_FLAGS;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DDDI_WAITFORSYNCHRONIZATIONOBJECTFROMCPU_FLAGS, 4);
VKMT_CHECK_OFFSET(D3DDDI_WAITFORSYNCHRONIZATIONOBJECTFROMCPU_FLAGS, Value, 0);
#endif

/* With hAsyncEvent NULL the call blocks until the condition holds;
 * otherwise it returns at once and the event fires later. */
typedef struct _D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU {
    D3DKMT_HANDLE        hDevice;
    UINT                 ObjectCount;
    const D3DKMT_HANDLE *ObjectHandleArray; /* ObjectCount fences */
    const UINT64        *FenceValueArray;   /* ObjectCount values */
    HANDLE               hAsyncEvent;
    D3DDDI_WAITFORSYNCHRONIZATIONOBJECTFROMCPU_FLAGS Flags;
} D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU;

#if defined(__x86_64__)
VKMT_CHECK_SIZE(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, 40);
VKMT_CHECK_OFFSET(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, hDevice, 0);
VKMT_CHECK_OFFSET(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, ObjectCount, 4);
VKMT_CHECK_OFFSET(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, ObjectHandleArray, 8);
VKMT_CHECK_OFFSET(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, FenceValueArray, 16);
VKMT_CHECK_OFFSET(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, hAsyncEvent, 24);
VKMT_CHECK_OFFSET(D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU, Flags, 32);
#endif

/* ------------------------------------------------------------------------ */
/* Entry points                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Constness copies Microsoft's declarations exactly, including the odd
 * cases: EnumAdapters2, OpenAdapterFromLuid and ReclaimAllocations take a
 * const pointer yet write results back through it (or through a pointer
 * it holds), while DestroyPagingQueue takes a non-const one.
 */
VKMT_API NTSTATUS D3DKMTEnumAdapters2(const D3DKMT_ENUMADAPTERS2 *pData);
VKMT_API NTSTATUS D3DKMTOpenAdapterFromLuid(const D3DKMT_OPENADAPTERFROMLUID *pData);
VKMT_API NTSTATUS D3DKMTCloseAdapter(const D3DKMT_CLOSEADAPTER *pData);

VKMT_API NTSTATUS D3DKMTCreateDevice(D3DKMT_CREATEDEVICE *pData);
VKMT_API NTSTATUS D3DKMTDestroyDevice(const D3DKMT_DESTROYDEVICE *pData);

VKMT_API NTSTATUS D3DKMTCreatePagingQueue(D3DKMT_CREATEPAGINGQUEUE *pData);
VKMT_API NTSTATUS D3DKMTDestroyPagingQueue(D3DDDI_DESTROYPAGINGQUEUE *pData);

VKMT_API NTSTATUS D3DKMTCreateAllocation2(D3DKMT_CREATEALLOCATION *pData);
VKMT_API NTSTATUS D3DKMTDestroyAllocation2(const D3DKMT_DESTROYALLOCATION2 *pData);

VKMT_API NTSTATUS D3DKMTLock2(D3DKMT_LOCK2 *pData);
VKMT_API NTSTATUS D3DKMTUnlock2(const D3DKMT_UNLOCK2 *pData);

VKMT_API NTSTATUS D3DKMTOfferAllocations(const D3DKMT_OFFERALLOCATIONS *pData);
VKMT_API NTSTATUS D3DKMTReclaimAllocations(const D3DKMT_RECLAIMALLOCATIONS *pData);
VKMT_API NTSTATUS D3DKMTReclaimAllocations2(D3DKMT_RECLAIMALLOCATIONS2 *pData);

VKMT_API NTSTATUS D3DKMTQueryVideoMemoryInfo(D3DKMT_QUERYVIDEOMEMORYINFO *pData);
VKMT_API NTSTATUS D3DKMTChangeVideoMemoryReservation(
    const D3DKMT_CHANGEVIDEOMEMORYRESERVATION *pData);

VKMT_API NTSTATUS D3DKMTMakeResident(D3DDDI_MAKERESIDENT *pData);
VKMT_API NTSTATUS D3DKMTEvict(D3DKMT_EVICT *pData);
VKMT_API NTSTATUS D3DKMTSetAllocationPriority(const D3DKMT_SETALLOCATIONPRIORITY *pData);
VKMT_API NTSTATUS D3DKMTGetAllocationPriority(const D3DKMT_GETALLOCATIONPRIORITY *pData);
VKMT_API NTSTATUS D3DKMTQueryAllocationResidency(const D3DKMT_QUERYALLOCATIONRESIDENCY *pData);

VKMT_API NTSTATUS D3DKMTRegisterTrimNotification(D3DKMT_REGISTERTRIMNOTIFICATION *pData);
VKMT_API NTSTATUS D3DKMTUnregisterTrimNotification(D3DKMT_UNREGISTERTRIMNOTIFICATION *pData);
/*
 * Microsoft's d3dkmthk.h declares only the PFND3DKMT_* pointer types of these
 * two; libvkmt exports them as functions of that type all the same.
 */
VKMT_API NTSTATUS D3DKMTRegisterBudgetChangeNotification(
    D3DKMT_REGISTERBUDGETCHANGENOTIFICATION *pData);
VKMT_API NTSTATUS D3DKMTUnregisterBudgetChangeNotification(
    D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION *pData);
typedef NTSTATUS (*PFND3DKMT_REGISTERBUDGETCHANGENOTIFICATION)(
    D3DKMT_REGISTERBUDGETCHANGENOTIFICATION *);
typedef NTSTATUS (*PFND3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION)(
    D3DKMT_UNREGISTERBUDGETCHANGENOTIFICATION *);

VKMT_API NTSTATUS D3DKMTWaitForSynchronizationObjectFromCpu(
    const D3DKMT_WAITFORSYNCHRONIZATIONOBJECTFROMCPU *pData);

#ifdef __cplusplus
}
#endif

#endif /* VKMT_D3DKMTHK_H */
/* clang-format on */
