/* SPDX-License-Identifier: MIT */
/* Conformance: a device reset surfaces as STATUS_DEVICE_REMOVED everywhere. */
#include "conf.h"

static void every_call_after_a_reset_is_device_removed(void)
{
    struct conf c, fresh;
    D3DKMT_HANDLE h[2];
    D3DKMT_CREATEDEVICE cd = { 0 };
    D3DKMT_CREATEPAGINGQUEUE pq = { 0 };
    D3DKMT_QUERYVIDEOMEMORYINFO q = { 0 };
    D3DKMT_DESTROYDEVICE dd = { 0 };
    BOOL d[1];
    NTSTATUS st;

    if (!conf_open(&c)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 4096, h), STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, &h[1], 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    st = vkmt_reset_adapter(c.adapter);
    if (st == STATUS_ACCESS_DENIED) {
        /* Over the kernel driver only CAP_SYS_ADMIN may reset (docs/KMD.md). */
        harness_skip("an unprivileged process may not reset the device over the kernel driver");
        conf_close(&c);
        return;
    }
    CHECK_ST(st, STATUS_SUCCESS);
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_DEVICE_REMOVED);
    CHECK_ST(conf_reclaim2(&c, &h[1], 1, NULL), STATUS_DEVICE_REMOVED);
    CHECK_ST(conf_reclaim1(&c, &h[1], 1, d), STATUS_DEVICE_REMOVED);
    CHECK_ST(conf_lock(&c, h[0], NULL), STATUS_DEVICE_REMOVED);
    CHECK_ST(conf_unlock(&c, h[0]), STATUS_DEVICE_REMOVED);
    CHECK_ST(conf_create(&c, 1, 4096, NULL), STATUS_DEVICE_REMOVED);
    CHECK_ST(conf_destroy(&c, 1, h), STATUS_DEVICE_REMOVED);
    cd.hAdapter = c.adapter;
    CHECK_ST(D3DKMTCreateDevice(&cd), STATUS_DEVICE_REMOVED);
    pq.hDevice = c.dev;
    CHECK_ST(D3DKMTCreatePagingQueue(&pq), STATUS_DEVICE_REMOVED);
    q.hAdapter = c.adapter;
    CHECK_ST(D3DKMTQueryVideoMemoryInfo(&q), STATUS_DEVICE_REMOVED);
    CHECK_ST(vkmt_trim(c.adapter, 0, NULL), STATUS_DEVICE_REMOVED);
    CHECK_ST(vkmt_reset_adapter(c.adapter), STATUS_DEVICE_REMOVED);
    /* It stays that way, and a fresh open gets a working device. */
    CHECK_ST(conf_offer(&c, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_DEVICE_REMOVED);
    if (conf_open(&fresh)) {
        CHECK(fresh.adapter != c.adapter);
        CHECK_ST(conf_create(&fresh, 1, 4096, NULL), STATUS_SUCCESS);
        CHECK_ST(conf_offer(&fresh, h, 1, D3DKMT_OFFER_PRIORITY_LOW, 0),
                 STATUS_INVALID_PARAMETER); /* old handles mean nothing now */
        conf_close(&fresh);
    }
    /* Tearing down the removed objects is allowed and reports the removal. */
    dd.hDevice = c.dev;
    CHECK_ST(D3DKMTDestroyDevice(&dd), STATUS_DEVICE_REMOVED);
    CHECK_ST(D3DKMTDestroyDevice(&dd), STATUS_INVALID_PARAMETER);
    {
        D3DKMT_CLOSEADAPTER ca = { .hAdapter = c.adapter };

        CHECK_ST(D3DKMTCloseAdapter(&ca), STATUS_DEVICE_REMOVED);
        CHECK_ST(D3DKMTCloseAdapter(&ca), STATUS_INVALID_PARAMETER);
    }
}

const struct test conf_removal_tests[] = {
    TEST(every_call_after_a_reset_is_device_removed),
};
CONF_COUNT(conf_removal_tests);
