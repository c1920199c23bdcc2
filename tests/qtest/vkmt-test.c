/* SPDX-License-Identifier: MIT */
/*
 * qtests of the vkmt PCI device glue (hw-device/qemu/vkmt_pci.c): identity
 * and BARs, queue claim and release, allocations driven through ring entries
 * written into control memory, trim and statistics (also per priority) over
 * QMP, the event log's exact lines, MSI-X delivery, reset and the removal
 * epoch, the three doorbell modes, a memory backend aperture, the virgl
 * backend (when QEMU has it), a hostile guest scribbling on rings and
 * registers, and one that turns the device's own interrupts against it (q35,
 * behind a pcie-root-port: MSI-X aimed at the port's bus reset and slot
 * power) or unplugs it while an iothread works. The engine's own logic is
 * unit-tested without QEMU (tests/unit/test_core_*.c); these tests check
 * that the glue wires it up. Overlaid into QEMU's tree as
 * tests/qtest/vkmt-test.c.
 */
#include "qemu/osdep.h" /* QEMU's rule: first, in a block of its own */

#include "hw/pci/pci_regs.h"
#include "libqos/libqos-pc.h"
#include "libqos/pci.h"
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"

#include "../../hw/vkmt/protocol/vkmt_proto.h"
#include "vkmt_bad_cmds.h"

#define PAGE VKMT_PAGE_SIZE
#define BASE_ARGS "-nodefaults "

/* The device has backend=virgl exactly when QEMU was built with
 * virglrenderer and OpenGL (hw-device/meson.build). */
#if defined(VIRGL_VERSION_MAJOR) && defined(CONFIG_OPENGL)
#define HAVE_VIRGL 1
#define BACKENDS "mem, virgl"
#else
#define BACKENDS "mem"
#endif

typedef struct Vkmt {
    QOSState *qs;
    QPCIDevice *dev;
    QPCIBar regs, ctrl, ap;
    uint64_t regs_size, ctrl_size, ap_size;
} Vkmt;

typedef struct Drv { /* the test's driver state for one queue */
    uint32_t q;
    uint32_t tail, head, phase, cid;
} Drv;

static void found(QPCIDevice *dev, int devfn, void *data)
{
    *(QPCIDevice **)data = dev;
}

/* Enable the device and give its BARs addresses (again after a reset). */
static void map_bars(Vkmt *v)
{
    qpci_device_enable(v->dev);
    v->regs = qpci_iomap(v->dev, VKMT_BAR_REGS, &v->regs_size);
    v->ctrl = qpci_iomap(v->dev, VKMT_BAR_CTRL, &v->ctrl_size);
    v->ap = qpci_iomap(v->dev, VKMT_BAR_APERTURE, &v->ap_size);
}

/*
 * Boot a PC with "-device vkmt,id=vk,@props @more". The aperture is 16 MiB
 * unless @props says otherwise: libqos's PCI window holds little more.
 */
static void start_with(Vkmt *v, const char *props, const char *more)
{
    bool sized = strstr(props, "aperture-size") || strstr(props, "memdev");

    memset(v, 0, sizeof(*v));
    v->qs = qtest_pc_boot(BASE_ARGS "-device vkmt,id=vk%s%s%s %s",
                          sized ? "" : ",aperture-size=16M", *props ? "," : "",
                          props, more);
    qpci_device_foreach(v->qs->pcibus, VKMT_PCI_VENDOR_ID, VKMT_PCI_DEVICE_ID,
                        found, &v->dev);
    g_assert(v->dev);
    map_bars(v);
}

static void start(Vkmt *v, const char *props)
{
    start_with(v, props, "");
}

static void stop(Vkmt *v)
{
    g_free(v->dev);
    qtest_shutdown(v->qs);
}

static uint32_t rd(Vkmt *v, uint32_t off)
{
    return qpci_io_readl(v->dev, v->regs, off);
}

static void wr(Vkmt *v, uint32_t off, uint32_t val)
{
    qpci_io_writel(v->dev, v->regs, off, val);
}

static void bring_up(Vkmt *v)
{
    wr(v, VKMT_REG(status), VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    wr(v, VKMT_REG(driver_features), rd(v, VKMT_REG(device_features)));
    wr(v, VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    wr(v, VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
    g_assert_cmphex(rd(v, VKMT_REG(status)) & VKMT_STATUS_DRIVER_OK, ==,
                    VKMT_STATUS_DRIVER_OK);
}

static Drv claim(Vkmt *v)
{
    Drv d = { .q = rd(v, VKMT_REG(queue_claim)), .phase = 1 };

    g_assert_cmphex(d.q, !=, VKMT_QUEUE_NONE);
    return d;
}

static uint64_t qoff(const Drv *d, uint32_t off)
{
    return (uint64_t)d->q * VKMT_QUEUE_STRIDE + off;
}

static uint32_t hdr_field(Vkmt *v, const Drv *d, uint32_t field_off)
{
    return qpci_io_readl(v->dev, v->ctrl,
                         qoff(d, VKMT_QUEUE_HDR_OFF + field_off));
}

static void staging_write(Vkmt *v, const Drv *d, uint32_t off, const void *buf,
                          size_t len)
{
    qpci_memwrite(v->dev, v->ctrl, qoff(d, VKMT_QUEUE_STAGING_OFF + off), buf,
                  len);
}

static void staging_read(Vkmt *v, const Drv *d, uint32_t off, void *buf,
                         size_t len)
{
    qpci_memread(v->dev, v->ctrl, qoff(d, VKMT_QUEUE_STAGING_OFF + off), buf,
                 len);
}

/* Put @sqe on the ring without ringing. */
static void post_quiet(Vkmt *v, Drv *d, struct vkmt_sqe *sqe)
{
    sqe->cid = ++d->cid;
    qpci_memwrite(v->dev, v->ctrl,
                  qoff(d, VKMT_QUEUE_SQ_OFF +
                              (d->tail % VKMT_QUEUE_DEPTH) * sizeof(*sqe)),
                  sqe, sizeof(*sqe));
    d->tail++;
    qpci_io_writel(v->dev, v->ctrl,
                   qoff(d, VKMT_QUEUE_HDR_OFF +
                               offsetof(struct vkmt_queue_hdr, sh_sq_tail)),
                   d->tail);
}

/* Put @sqe on the ring and ring the doorbell with the new tail. */
static void post(Vkmt *v, Drv *d, struct vkmt_sqe *sqe)
{
    post_quiet(v, d, sqe);
    wr(v, VKMT_REG_DOORBELL(d->q), d->tail);
}

/* Wait for the next completion (deferred doorbell modes need a few turns). */
static bool reap(Vkmt *v, Drv *d, struct vkmt_cqe *out)
{
    uint64_t off = qoff(d, VKMT_QUEUE_CQ_OFF +
                               (d->head % VKMT_QUEUE_DEPTH) * sizeof(*out));

    for (int tries = 0; tries < 2000; tries++) {
        qpci_memread(v->dev, v->ctrl, off, out, sizeof(*out));
        if ((out->flags & VKMT_CQE_F_PHASE) == d->phase) {
            d->head++;
            if (d->head % VKMT_QUEUE_DEPTH == 0) {
                d->phase ^= 1;
            }
            qpci_io_writel(
                v->dev, v->ctrl,
                qoff(d, VKMT_QUEUE_HDR_OFF +
                            offsetof(struct vkmt_queue_hdr, sh_cq_head)),
                d->head);
            return true;
        }
        g_usleep(tries < 100 ? 0 : 1000);
    }
    return false;
}

static uint32_t run(Vkmt *v, Drv *d, struct vkmt_sqe sqe, struct vkmt_cqe *out)
{
    struct vkmt_cqe c;

    post(v, d, &sqe);
    g_assert_true(reap(v, d, &c));
    g_assert_cmpuint(c.cid, ==, d->cid);
    if (out) {
        *out = c;
    }
    return c.status;
}

static uint32_t new_device(Vkmt *v, Drv *d)
{
    struct vkmt_cqe c;

    g_assert_cmphex(
        run(v, d, (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, &c), ==,
        VKMT_ST_SUCCESS);
    return (uint32_t)c.value0;
}

static void create_descs(Vkmt *v, Drv *d, uint32_t dev,
                         const struct vkmt_alloc_desc *desc, uint32_t n,
                         uint32_t *h)
{
    uint32_t roff = 1024;

    g_assert(n <= 16);
    staging_write(v, d, 0, desc, n * sizeof(desc[0]));
    g_assert_cmphex(run(v, d,
                        (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                           .handle = dev,
                                           .count = n,
                                           .payload_len = n * sizeof(desc[0]),
                                           .result_off = roff,
                                           .result_len = n * 4 },
                        NULL),
                    ==, VKMT_ST_SUCCESS);
    staging_read(v, d, roff, h, n * 4);
}

static void create(Vkmt *v, Drv *d, uint32_t dev, uint32_t n, uint64_t size,
                   uint32_t *h)
{
    struct vkmt_alloc_desc desc[16];

    g_assert(n <= 16);
    for (uint32_t i = 0; i < n; i++) {
        desc[i] = (struct vkmt_alloc_desc){ .size = size };
    }
    create_descs(v, d, dev, desc, n, h);
}

static void destroy(Vkmt *v, Drv *d, uint32_t dev, uint32_t a)
{
    staging_write(v, d, 0, &a, 4);
    g_assert_cmphex(
        run(v, d,
            (struct vkmt_sqe){ .opcode = VKMT_OP_DESTROY_ALLOCATIONS,
                               .handle = dev,
                               .count = 1,
                               .payload_len = 4 },
            NULL),
        ==, VKMT_ST_SUCCESS);
}

/* OFFER with the VKMT_OFFER_F_* @flags. */
static uint32_t offer_flags(Vkmt *v, Drv *d, uint32_t dev, const uint32_t *h,
                            uint32_t n, uint32_t prio, uint32_t flags)
{
    staging_write(v, d, 0, h, n * 4);
    return run(v, d,
               (struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                  .handle = dev,
                                  .count = n,
                                  .payload_len = n * 4,
                                  .arg0 = prio,
                                  .arg1 = flags },
               NULL);
}

static uint32_t offer(Vkmt *v, Drv *d, uint32_t dev, const uint32_t *h,
                      uint32_t n, uint32_t prio)
{
    return offer_flags(v, d, dev, h, n, prio, 0);
}

static uint32_t reclaim(Vkmt *v, Drv *d, uint32_t dev, const uint32_t *h,
                        uint32_t n, uint32_t *res)
{
    uint32_t st;

    staging_write(v, d, 0, h, n * 4);
    st = run(v, d,
             (struct vkmt_sqe){ .opcode = VKMT_OP_RECLAIM,
                                .flags = VKMT_SQE_F_WRITE_RESULTS,
                                .handle = dev,
                                .count = n,
                                .payload_len = n * 4,
                                .result_off = 2048,
                                .result_len = n * 4 },
             NULL);
    if (st == VKMT_ST_SUCCESS) {
        staging_read(v, d, 2048, res, n * 4);
    }
    return st;
}

/* LOCK: the allocation's aperture offset. */
static uint64_t lock_held(Vkmt *v, Drv *d, uint32_t dev, uint32_t a)
{
    struct vkmt_cqe c;

    g_assert_cmphex(run(v, d,
                        (struct vkmt_sqe){
                            .opcode = VKMT_OP_LOCK, .handle = dev, .arg0 = a },
                        &c),
                    ==, VKMT_ST_SUCCESS);
    return c.value0;
}

static void unlock(Vkmt *v, Drv *d, uint32_t dev, uint32_t a)
{
    g_assert_cmphex(run(v, d,
                        (struct vkmt_sqe){ .opcode = VKMT_OP_UNLOCK,
                                           .handle = dev,
                                           .arg0 = a },
                        NULL),
                    ==, VKMT_ST_SUCCESS);
}

/* The offset, locking and unlocking at once (the memory backend's aperture
 * is the content itself, so it may be touched outside the lock). */
static uint64_t lock(Vkmt *v, Drv *d, uint32_t dev, uint32_t a)
{
    uint64_t off = lock_held(v, d, dev, a);

    unlock(v, d, dev, a);
    return off;
}

static QDict *qom_get(Vkmt *v, const char *property)
{
    QDict *resp = qtest_qmp(
        v->qs->qts,
        "{'execute': 'qom-get', 'arguments': {'path': '/machine/peripheral/vk',"
        " 'property': %s}}",
        property);

    g_assert(qdict_haskey(resp, "return"));
    return resp;
}

static int64_t stats_get(Vkmt *v, const char *field)
{
    QDict *resp = qom_get(v, "stats");
    int64_t val = qdict_get_int(qdict_get_qdict(resp, "return"), field);

    qobject_unref(resp);
    return val;
}

#ifdef HAVE_VIRGL
static int64_t virgl_get(Vkmt *v, const char *field)
{
    QDict *resp = qom_get(v, "virgl");
    int64_t val = qdict_get_int(qdict_get_qdict(resp, "return"), field);

    qobject_unref(resp);
    return val;
}
#endif

static void expect_error(QDict *resp, const char *needle);

static void qom_set_size(Vkmt *v, const char *property, uint64_t val)
{
    QDict *resp = qtest_qmp(
        v->qs->qts,
        "{'execute': 'qom-set', 'arguments': {'path': '/machine/peripheral/vk',"
        " 'property': %s, 'value': %" PRIu64 "}}",
        property, val);

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* ---- tests ---- */

static void test_identity(void)
{
    Vkmt v;

    start(&v, "queues=4,aperture-size=64M");
    /* The default budget is half the aperture. */
    g_assert_cmphex(qpci_config_readw(v.dev, PCI_VENDOR_ID), ==,
                    VKMT_PCI_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(v.dev, PCI_DEVICE_ID), ==,
                    VKMT_PCI_DEVICE_ID);
    g_assert_cmpuint(qpci_config_readb(v.dev, PCI_REVISION_ID), ==,
                     VKMT_PCI_REVISION);
    g_assert_cmpuint(v.regs_size, ==, VKMT_REGS_SIZE);
    g_assert_cmpuint(v.ctrl_size, ==, 4 * VKMT_QUEUE_STRIDE);
    g_assert_cmpuint(v.ap_size, ==, 64 * MiB);
    g_assert_cmphex(rd(&v, VKMT_REG(magic)), ==, VKMT_MAGIC);
    g_assert_cmphex(rd(&v, VKMT_REG(version)), ==, VKMT_VERSION);
    g_assert_cmpuint(rd(&v, VKMT_REG(num_queues)), ==, 4);
    g_assert_cmpuint(rd(&v, VKMT_REG(queue_depth)), ==, VKMT_QUEUE_DEPTH);
    g_assert_cmpuint(rd(&v, VKMT_REG(queue_stride)), ==, VKMT_QUEUE_STRIDE);
    g_assert_cmpuint(rd(&v, VKMT_REG(aperture_size_lo)), ==, 64 * MiB);
    g_assert_cmpuint(rd(&v, VKMT_REG(budget_lo)), ==, 32 * MiB);
    g_assert_cmpuint(qpci_msix_table_size(v.dev), ==, 4);
    stop(&v);
}

static void test_claim_release(void)
{
    Vkmt v;

    start(&v, "queues=3");
    g_assert_cmphex(rd(&v, VKMT_REG(queue_claim)), ==,
                    VKMT_QUEUE_NONE); /* not up yet */
    bring_up(&v);
    for (uint32_t q = 0; q < 3; q++) {
        g_assert_cmpuint(rd(&v, VKMT_REG(queue_claim)), ==, q);
    }
    g_assert_cmphex(rd(&v, VKMT_REG(queue_claim)), ==, VKMT_QUEUE_NONE);
    wr(&v, VKMT_REG(queue_release), 1);
    g_assert_cmpuint(rd(&v, VKMT_REG(queue_claim)), ==, 1);
    stop(&v);
}

/* Create, fill, offer at two priorities, trim over QMP, reclaim, compare. */
static void lifecycle(const char *props, const char *more)
{
    Vkmt v;
    Drv d;
    uint32_t dev, h[2], r[2];
    uint8_t pattern[PAGE], back[PAGE], zero[PAGE] = { 0 };
    QDict *resp;

    start_with(&v, props, more);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 2, PAGE, h);
    for (int i = 0; i < PAGE; i++) {
        pattern[i] = (uint8_t)(i * 7 + 3);
    }
    for (int i = 0; i < 2; i++) {
        qpci_memwrite(v.dev, v.ap, lock(&v, &d, dev, h[i]), pattern, PAGE);
    }
    g_assert_cmphex(offer(&v, &d, dev, &h[0], 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmphex(offer(&v, &d, dev, &h[1], 1, VKMT_PRIO_HIGH), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmpint(stats_get(&v, "offers"), ==, 2);
    g_assert_cmpint(stats_get(&v, "offered_bytes"), ==, 2 * PAGE);

    /* Host pressure through QMP: one page, so only the LOW one goes. */
    qom_set_size(&v, "trim", PAGE);
    resp = qom_get(&v, "trim");
    g_assert_cmpint(qdict_get_int(resp, "return"), ==, PAGE);
    qobject_unref(resp);
    g_assert_cmpint(stats_get(&v, "discards"), ==, 1);
    g_assert_cmpint(stats_get(&v, "discarded_bytes_low"), ==, PAGE);

    g_assert_cmphex(reclaim(&v, &d, dev, h, 2, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_DISCARDED);
    g_assert_cmpuint(r[1], ==, VKMT_RECLAIM_OK);
    qpci_memread(v.dev, v.ap, lock(&v, &d, dev, h[0]), back, PAGE);
    g_assert(memcmp(back, zero, PAGE) == 0);
    qpci_memread(v.dev, v.ap, lock(&v, &d, dev, h[1]), back, PAGE);
    g_assert(memcmp(back, pattern, PAGE) == 0);
    g_assert_cmpint(stats_get(&v, "reclaim_discarded"), ==, 1);
    g_assert_cmpint(stats_get(&v, "reclaim_ok"), ==, 1);
    g_assert_cmpint(stats_get(&v, "allocations"), ==, 2);
    stop(&v);
}

static void test_lifecycle_inline(void)
{
    lifecycle("doorbell=inline", "");
}

static void test_lifecycle_ioeventfd(void)
{
    lifecycle("doorbell=ioeventfd", "");
}

static void test_lifecycle_iothread(void)
{
    lifecycle("doorbell=iothread,iothread=io0", "-object iothread,id=io0");
}

static void test_memdev(void)
{
    Vkmt v;
    Drv d;
    uint32_t dev, h[1];

    start_with(&v, "memdev=ap", "-object memory-backend-memfd,id=ap,size=32M");
    g_assert_cmpuint(v.ap_size, ==, 32 * MiB);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 1, PAGE, h);
    g_assert_cmphex(offer(&v, &d, dev, h, 1, VKMT_PRIO_NORMAL), ==,
                    VKMT_ST_SUCCESS);
    qom_set_size(&v, "trim", 0);
    g_assert_cmpint(stats_get(&v, "discards"), ==, 1);
    stop(&v);
}

/* Bytes the file at @path really holds (its allocated blocks). */
static uint64_t file_bytes(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (uint64_t)st.st_blocks * 512;
}

/*
 * Discards return memory to the host, measured on the memory backend's own
 * file rather than the device's counters: a budget lowered over QMP makes
 * the device decommit the two allocations offered with AllowDecommit, which
 * frees the file's blocks under them and no others. (A trim would also
 * scrub every unheld page, which hides whether the discard itself gave
 * memory back.)
 */
static void test_decommit_returns_memory(void)
{
    enum { N = 4, SIZE = 64 * PAGE };
    g_autofree char *dir = g_dir_make_tmp("vkmt-qtest-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "aperture", NULL);
    g_autofree char *more = g_strdup_printf(
        "-object memory-backend-file,id=ap,size=16M,mem-path=%s,share=on",
        path);
    g_autofree uint8_t *buf = g_malloc(SIZE);
    Vkmt v;
    Drv d;
    uint32_t dev, h[N], r[N];
    uint64_t before;

    g_assert(dir);
    start_with(&v, "memdev=ap", more);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, N, SIZE, h);
    memset(buf, 0x5a, SIZE);
    for (int i = 0; i < N; i++) {
        qpci_memwrite(v.dev, v.ap, lock(&v, &d, dev, h[i]), buf, SIZE);
    }
    before = file_bytes(path);
    g_assert_cmpuint(before, >=, N * SIZE);
    staging_write(&v, &d, 0, h, 2 * 4);
    g_assert_cmphex(
        run(&v, &d,
            (struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                               .handle = dev,
                               .count = 2,
                               .payload_len = 2 * 4,
                               .arg0 = VKMT_PRIO_LOW,
                               .arg1 = VKMT_OFFER_F_ALLOW_DECOMMIT },
            NULL),
        ==, VKMT_ST_SUCCESS);
    qom_set_size(&v, "budget", 2 * SIZE);
    g_assert_cmpint(stats_get(&v, "decommits"), ==, 2);
    g_assert_cmpuint(before - file_bytes(path), ==, 2 * SIZE);
    g_assert_cmphex(reclaim(&v, &d, dev, h, N, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_NOT_COMMITTED);
    g_assert_cmpuint(r[1], ==, VKMT_RECLAIM_NOT_COMMITTED);
    g_assert_cmpuint(r[2], ==, VKMT_RECLAIM_OK);
    g_assert_cmpuint(r[3], ==, VKMT_RECLAIM_OK);
    stop(&v);
    unlink(path);
    rmdir(dir);
}

#ifdef HAVE_VIRGL
/*
 * backend=virgl on Mesa's software renderer: content written under a lock
 * reaches the GPU resource at unlock and comes back from it at the next lock
 * (the view is clobbered in between); offer + trim destroys the LOW one's
 * resource and reclaim reports DISCARDED and recreates it, reading zeros. A
 * 32 x 32 B8G8R8A8 texture allocation is a GPU texture whose content
 * survives a clobbered view. A second virgl device is refused with the
 * backend's reason.
 */
static void test_virgl(void)
{
    Vkmt v;
    Drv d;
    uint32_t dev, h[2], r[2], tex;
    uint8_t pattern[PAGE], junk[PAGE], back[PAGE], zero[PAGE] = { 0 };
    uint64_t off[2];
    const struct vkmt_alloc_desc tdesc = {
        .size = PAGE,
        .flags = VKMT_ALLOC_TEXTURE_FLAGS(VKMT_FORMAT_B8G8R8A8_UNORM),
        .dims = VKMT_ALLOC_DIMS(32, 32),
    };

    start(&v, "backend=virgl");
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 2, PAGE, h);
    g_assert_cmpint(virgl_get(&v, "resources"), ==, 2);
    g_assert_cmpint(virgl_get(&v, "resource_bytes"), ==, 2 * PAGE);
    for (int i = 0; i < PAGE; i++) {
        pattern[i] = (uint8_t)(i * 7 + 3);
        junk[i] = (uint8_t)~pattern[i];
    }
    for (int i = 0; i < 2; i++) {
        off[i] = lock_held(&v, &d, dev, h[i]);
        qpci_memwrite(v.dev, v.ap, off[i], pattern, PAGE);
        unlock(&v, &d, dev, h[i]);
        qpci_memwrite(v.dev, v.ap, off[i], junk,
                      PAGE); /* behind the device's back */
    }
    g_assert_cmpint(virgl_get(&v, "writes"), ==, 2);

    g_assert_cmphex(offer(&v, &d, dev, &h[0], 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmphex(offer(&v, &d, dev, &h[1], 1, VKMT_PRIO_HIGH), ==,
                    VKMT_ST_SUCCESS);
    qom_set_size(&v, "trim", PAGE);
    g_assert_cmpint(stats_get(&v, "discards"), ==, 1);
    g_assert_cmpint(virgl_get(&v, "resources"), ==, 1);
    g_assert_cmpint(virgl_get(&v, "destroys"), ==, 1);

    g_assert_cmphex(reclaim(&v, &d, dev, h, 2, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_DISCARDED);
    g_assert_cmpuint(r[1], ==, VKMT_RECLAIM_OK);
    g_assert_cmpint(virgl_get(&v, "resources"), ==, 2);
    g_assert_cmpint(virgl_get(&v, "creates"), ==, 3);
    qpci_memread(v.dev, v.ap, lock_held(&v, &d, dev, h[0]), back, PAGE);
    g_assert(memcmp(back, zero, PAGE) == 0);
    unlock(&v, &d, dev, h[0]);
    qpci_memread(v.dev, v.ap, lock_held(&v, &d, dev, h[1]), back, PAGE);
    g_assert(memcmp(back, pattern, PAGE) ==
             0); /* from the GPU, not the clobbered view */
    unlock(&v, &d, dev, h[1]);
    g_assert_cmpint(virgl_get(&v, "reads"), ==, 1);

    create_descs(&v, &d, dev, &tdesc, 1, &tex);
    g_assert_cmpint(virgl_get(&v, "textures"), ==, 1);
    off[0] = lock_held(&v, &d, dev, tex);
    qpci_memwrite(v.dev, v.ap, off[0], pattern, PAGE);
    unlock(&v, &d, dev, tex);
    qpci_memwrite(v.dev, v.ap, off[0], junk, PAGE);
    qpci_memread(v.dev, v.ap, lock_held(&v, &d, dev, tex), back, PAGE);
    g_assert(memcmp(back, pattern, PAGE) == 0); /* from the texture */
    unlock(&v, &d, dev, tex);
    destroy(&v, &d, dev, tex);
    g_assert_cmpint(virgl_get(&v, "textures"), ==, 0);

    expect_error(
        qtest_qmp(v.qs->qts,
                  "{'execute': 'device_add', 'arguments': {'driver': "
                  "'vkmt', 'backend': 'virgl'}}"),
        "vkmt: backend=virgl: another virgl backend is live in this process");
    destroy(&v, &d, dev, h[0]);
    g_assert_cmpint(virgl_get(&v, "resources"), ==, 1);
    stop(&v);
}

/* Hot-unplugging a backend=virgl device stops its render thread and
 * virglrenderer, so that another one can be plugged in its place. */
static void test_virgl_hotplug(void)
{
    QTestState *qts = qtest_init(BASE_ARGS "-machine pc");

    for (int round = 0; round < 2; round++) {
        QDict *resp;

        qtest_qmp_device_add(
            qts, "vkmt", "vk1",
            "{'addr': '0x06', 'backend': 'virgl', 'aperture-size': 1048576}");
        resp =
            qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': {'path': "
                           "'/machine/peripheral/vk1', 'property': 'virgl'}}");
        g_assert_cmpstr(
            qdict_get_str(qdict_get_qdict(resp, "return"), "renderer"), !=, "");
        qobject_unref(resp);
        qpci_unplug_acpi_device_test(qts, "vk1", 0x06);
    }
    qtest_quit(qts);
}
#endif

static void test_budget_over_qmp(void)
{
    Vkmt v;
    Drv d;
    uint32_t dev, h[4];

    start(&v, "aperture-size=1M");
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 4, PAGE, h);
    g_assert_cmphex(offer(&v, &d, dev, h, 2, VKMT_PRIO_NORMAL), ==,
                    VKMT_ST_SUCCESS);
    qom_set_size(&v, "budget", 3 * PAGE);
    g_assert_cmpuint(rd(&v, VKMT_REG(budget_lo)), ==, 3 * PAGE);
    g_assert_cmpuint(rd(&v, VKMT_REG(config_generation)), ==, 1);
    g_assert_cmpint(stats_get(&v, "committed_bytes"), ==, 3 * PAGE);
    g_assert_cmpint(stats_get(&v, "discards"), ==, 1);
    stop(&v);
}

static QDict *qom_set_str(Vkmt *v, const char *property, const char *val)
{
    return qtest_qmp(v->qs->qts,
                     "{'execute': 'qom-set', 'arguments': {'path': "
                     "'/machine/peripheral/vk', 'property': %s, 'value': %s}}",
                     property, val);
}

static char *queue_budgets(Vkmt *v)
{
    QDict *resp = qom_get(v, "queue-budget");
    char *val = g_strdup(qdict_get_str(resp, "return"));

    qobject_unref(resp);
    return val;
}

/* Field @field of queue-stats' entry @i. */
static int64_t queue_stat(Vkmt *v, int i, const char *field)
{
    QDict *resp = qom_get(v, "queue-stats");
    QList *list = qdict_get_qlist(resp, "return");
    const QListEntry *e = qlist_first(list);
    int64_t val;

    for (; i > 0; i--) {
        e = qlist_next(e);
    }
    val = qdict_get_int(qobject_to(QDict, qlist_entry_obj(e)), field);
    qobject_unref(resp);
    return val;
}

/*
 * queue-budget squeezes one guest process (queue 0): its own offers go,
 * queue 1's stay; queue-stats lists both; bad writes are refused with a
 * reason; a released queue's budget goes with it.
 */
static void test_queue_budget_over_qmp(void)
{
    Vkmt v;
    Drv d0, d1;
    uint32_t dev0, dev1, h0[4], h1[2];
    g_autofree char *set = NULL, *gone = NULL;
    QDict *resp;

    start(&v, "aperture-size=1M");
    /* The guest's side of the same figures, QUERY_QUEUE_STATS. */
    g_assert_cmphex(rd(&v, VKMT_REG(device_features)) & VKMT_F_QUEUE_STATS, ==,
                    VKMT_F_QUEUE_STATS);
    bring_up(&v);
    d0 = claim(&v);
    d1 = claim(&v);
    dev0 = new_device(&v, &d0);
    create(&v, &d0, dev0, 4, PAGE, h0);
    g_assert_cmphex(offer(&v, &d0, dev0, h0, 2, VKMT_PRIO_NORMAL), ==,
                    VKMT_ST_SUCCESS);
    dev1 = new_device(&v, &d1);
    create(&v, &d1, dev1, 2, PAGE, h1);
    g_assert_cmphex(offer(&v, &d1, dev1, h1, 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);

    qtest_qmp_assert_success(v.qs->qts,
                             "{'execute': 'qom-set', 'arguments': {'path': "
                             "'/machine/peripheral/vk', 'property': "
                             "'queue-budget', 'value': '0:8K'}}");
    set = queue_budgets(&v);
    g_assert_cmpstr(set, ==, "0:8192");
    resp = qom_get(&v, "queue-stats");
    g_assert_cmpuint(qlist_size(qdict_get_qlist(resp, "return")), ==, 2);
    qobject_unref(resp);
    g_assert_cmpint(queue_stat(&v, 0, "queue"), ==, 0);
    g_assert_cmpint(queue_stat(&v, 0, "budget"), ==, 2 * PAGE);
    g_assert_cmpint(queue_stat(&v, 0, "budget_local"), ==, 2 * PAGE);
    g_assert_cmpint(queue_stat(&v, 0, "committed"), ==, 2 * PAGE);
    g_assert_cmpint(queue_stat(&v, 0, "resident"), ==, 2 * PAGE);
    g_assert_cmpint(queue_stat(&v, 0, "discarded"), ==, 2 * PAGE);
    g_assert_cmpint(queue_stat(&v, 0, "offered"), ==, 0);
    g_assert_cmpint(queue_stat(&v, 1, "queue"), ==, d1.q);
    g_assert_cmpint(queue_stat(&v, 1, "budget"), ==, 0);
    g_assert_cmpint(queue_stat(&v, 1, "budget_local"), ==, 512 * KiB);
    g_assert_cmpint(queue_stat(&v, 1, "offered"), ==, PAGE);
    g_assert_cmpint(queue_stat(&v, 1, "discarded"), ==, 0);
    g_assert_cmpint(queue_stat(&v, 1, "demoted"), ==, 0);

    expect_error(qom_set_str(&v, "queue-budget", "5:1M"), "queue 5 is free");
    expect_error(qom_set_str(&v, "queue-budget", "0:2M"), "out of range");
    expect_error(qom_set_str(&v, "queue-budget", "9:1M"), "out of range");
    expect_error(qom_set_str(&v, "queue-budget", "0=1M"), "QUEUE:SIZE");
    expect_error(qom_set_str(&v, "queue-budget", "x:1M"), "QUEUE:SIZE");

    wr(&v, VKMT_REG(queue_release), d0.q);
    gone = queue_budgets(&v);
    g_assert_cmpstr(gone, ==, "");
    resp = qom_get(&v, "queue-stats");
    g_assert_cmpuint(qlist_size(qdict_get_qlist(resp, "return")), ==, 1);
    qobject_unref(resp);
    stop(&v);
}

/* longest-step-ns: the longest engine call, restarted by a write; register
 * reads are not engine work. */
static void test_longest_step(void)
{
    Vkmt v;
    Drv d;
    uint32_t dev, h[16];
    QDict *resp;

    start(&v, "");
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 16, PAGE, h);
    g_assert_cmpint(stats_get(&v, "longest_step_ns"), >, 0);
    qom_set_size(&v, "longest-step-ns", 0);
    rd(&v, VKMT_REG(status));
    resp = qom_get(&v, "longest-step-ns");
    g_assert_cmpint(qdict_get_int(resp, "return"), ==, 0);
    qobject_unref(resp);
    g_assert_cmphex(offer(&v, &d, dev, h, 16, VKMT_PRIO_NORMAL), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmpint(stats_get(&v, "longest_step_ns"), >, 0);
    stop(&v);
}

static void test_msix(void)
{
    Vkmt v;
    Drv d0, d1;
    uint64_t addr;
    uint64_t entry;

    start(&v, "queues=2");
    qpci_msix_enable(v.dev);
    bring_up(&v);
    d0 = claim(&v);
    d1 = claim(&v);
    /* Masked vector: the interrupt lands in the pending-bit array. */
    g_assert_true(qpci_msix_masked(v.dev, 1));
    g_assert_cmphex(run(&v, &d1,
                        (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE,
                                           .flags = VKMT_SQE_F_IRQ },
                        NULL),
                    ==, VKMT_ST_SUCCESS);
    g_assert_true(qpci_msix_pending(v.dev, 1));
    g_assert_false(qpci_msix_pending(v.dev, 0));
    g_assert_cmphex(rd(&v, VKMT_REG(isr_lo)), ==, 2);
    wr(&v, VKMT_REG(isr_lo), 2);
    g_assert_cmphex(rd(&v, VKMT_REG(isr_lo)), ==, 0);

    /* Unmasked vector 0 aimed at guest memory: the message is written there. */
    addr = qmalloc(v.qs, 4);
    qtest_writel(v.qs->qts, addr, 0);
    entry = v.dev->msix_table_off + 0 * PCI_MSIX_ENTRY_SIZE;
    qpci_io_writel(v.dev, v.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_LOWER_ADDR, (uint32_t)addr);
    qpci_io_writel(v.dev, v.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_UPPER_ADDR, addr >> 32);
    qpci_io_writel(v.dev, v.dev->msix_table_bar, entry + PCI_MSIX_ENTRY_DATA,
                   0x5a5a);
    qpci_io_writel(v.dev, v.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    g_assert_cmphex(run(&v, &d0,
                        (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE,
                                           .flags = VKMT_SQE_F_IRQ },
                        NULL),
                    ==, VKMT_ST_SUCCESS);
    g_assert_cmphex(qtest_readl(v.qs->qts, addr), ==, 0x5a5a);
    /* No IRQ flag, no message. */
    qtest_writel(v.qs->qts, addr, 0);
    run(&v, &d0, (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL);
    g_assert_cmphex(qtest_readl(v.qs->qts, addr), ==, 0);
    stop(&v);
}

/* Entry @i of @d's event ring: type, and value through *@value. */
static uint32_t event_at(Vkmt *v, const Drv *d, uint32_t i, uint64_t *value)
{
    uint64_t off = qoff(d, VKMT_QUEUE_EVQ_OFF +
                               (i % VKMT_EVQ_DEPTH) * sizeof(struct vkmt_qev));

    *value =
        qpci_io_readq(v->dev, v->ctrl, off + offsetof(struct vkmt_qev, value));
    return qpci_io_readl(v->dev, v->ctrl, off);
}

#define EV_TAIL offsetof(struct vkmt_queue_hdr, sh_ev_tail)

/*
 * The host's requests become events on the queues' rings, each with the
 * queue's interrupt (MSI-X vector q, masked here so it shows as pending):
 * trim-notify to the queue that holds memory only, a budget change to every
 * queue, trim-period-ms a restart and then a tick per period of the
 * virtual clock. With events=off the feature is not offered and nothing is
 * posted.
 */
static void test_events(void)
{
    Vkmt v;
    Drv d0, d1;
    uint32_t dev, h[2];
    uint64_t value;
    QDict *resp;

    start(&v, "queues=2");
    g_assert_cmphex(rd(&v, VKMT_REG(device_features)) & VKMT_F_EVENTS, ==,
                    VKMT_F_EVENTS);
    qpci_msix_enable(v.dev);
    bring_up(&v);
    d0 = claim(&v);
    d1 = claim(&v);
    dev = new_device(&v, &d0);
    create(&v, &d0, dev, 2, PAGE, h);
    qom_set_size(&v, "trim-notify", PAGE);
    resp = qom_get(&v, "trim-notify");
    g_assert_cmpint(qdict_get_int(resp, "return"), ==, 1);
    qobject_unref(resp);
    g_assert_cmpuint(hdr_field(&v, &d0, EV_TAIL), ==, 1);
    g_assert_cmpuint(hdr_field(&v, &d1, EV_TAIL), ==, 0);
    g_assert_cmphex(event_at(&v, &d0, 0, &value), ==, VKMT_QEV_TRIM_TO_BUDGET);
    g_assert_cmpuint(value, ==, PAGE);
    g_assert_true(qpci_msix_pending(v.dev, d0.q));
    g_assert_false(qpci_msix_pending(v.dev, d1.q));
    g_assert_cmphex(rd(&v, VKMT_REG(isr_lo)), ==, 1u << d0.q);
    wr(&v, VKMT_REG(isr_lo), ~0u);

    qom_set_size(&v, "budget", MiB);
    g_assert_cmphex(event_at(&v, &d0, 1, &value), ==, VKMT_QEV_BUDGET_CHANGED);
    g_assert_cmpuint(value, ==, MiB);
    g_assert_cmphex(event_at(&v, &d1, 0, &value), ==, VKMT_QEV_BUDGET_CHANGED);
    g_assert_cmphex(rd(&v, VKMT_REG(isr_lo)), ==, 3);
    wr(&v, VKMT_REG(isr_lo), ~0u);

    qom_set_size(&v, "trim-period-ms", 10);
    g_assert_cmphex(event_at(&v, &d1, 1, &value), ==,
                    VKMT_QEV_RESTART_PERIODIC_TRIM);
    qtest_clock_step(v.qs->qts, 10 * 1000 * 1000);
    g_assert_cmpuint(hdr_field(&v, &d1, EV_TAIL), ==, 3);
    g_assert_cmphex(event_at(&v, &d1, 2, &value), ==, VKMT_QEV_PERIODIC_TRIM);
    qom_set_size(&v, "trim-period-ms", 0);
    qtest_clock_step(v.qs->qts, 100 * 1000 * 1000);
    g_assert_cmpuint(hdr_field(&v, &d1, EV_TAIL), ==, 3);
    g_assert_cmpint(stats_get(&v, "events"), ==, 7);
    g_assert_cmpint(stats_get(&v, "events_lost"), ==, 0);
    stop(&v);

    start(&v, "events=off");
    g_assert_cmphex(rd(&v, VKMT_REG(device_features)) & VKMT_F_EVENTS, ==, 0);
    bring_up(&v);
    d0 = claim(&v);
    qom_set_size(&v, "budget", MiB);
    g_assert_cmpuint(hdr_field(&v, &d0, EV_TAIL), ==, 0);
    g_assert_cmphex(rd(&v, VKMT_REG(isr_lo)), ==, 0);
    stop(&v);
}

/*
 * pressure=cgroup:DIR: every period of guest time the budget becomes what
 * is committed plus the room under DIR's memory.high (at least a quarter
 * of the configured budget), each change a BUDGET_CHANGED event; a change
 * below 1/64 of the budget is not applied.
 */
static void test_pressure_cgroup(void)
{
    g_autofree char *dir = g_dir_make_tmp("vkmt-cgroup-XXXXXX", NULL);
    g_autofree char *cur = g_build_filename(dir, "memory.current", NULL);
    g_autofree char *high = g_build_filename(dir, "memory.high", NULL);
    g_autofree char *props = NULL;
    uint64_t value;
    Vkmt v;
    Drv d;

    g_assert(dir);
    g_assert_true(g_file_set_contents(cur, "1000000000\n", -1, NULL));
    g_assert_true(g_file_set_contents(high, "max\n", -1, NULL));
    props = g_strdup_printf("pressure=cgroup:%s,pressure-period-ms=10", dir);
    start(&v, props);
    bring_up(&v);
    d = claim(&v);
    qtest_clock_step(v.qs->qts, 10 * 1000 * 1000);
    g_assert_cmpuint(rd(&v, VKMT_REG(budget_lo)), ==, 8 * MiB); /* no limit */
    /* 3 MiB of room under memory.high, nothing committed. */
    g_assert_true(g_file_set_contents(high, "1003145728\n", -1, NULL));
    qtest_clock_step(v.qs->qts, 10 * 1000 * 1000);
    g_assert_cmpuint(rd(&v, VKMT_REG(budget_lo)), ==, 3 * MiB);
    g_assert_cmphex(event_at(&v, &d, 0, &value), ==, VKMT_QEV_BUDGET_CHANGED);
    g_assert_cmpuint(value, ==, 3 * MiB);
    /* Over memory.high: a quarter of the 8 MiB configured. */
    g_assert_true(g_file_set_contents(high, "900000000\n", -1, NULL));
    qtest_clock_step(v.qs->qts, 10 * 1000 * 1000);
    g_assert_cmpuint(rd(&v, VKMT_REG(budget_lo)), ==, 2 * MiB);
    /* A move below 1/64 of the base is left alone. */
    g_assert_true(g_file_set_contents(high, "1002100000\n", -1, NULL));
    qtest_clock_step(v.qs->qts, 10 * 1000 * 1000);
    g_assert_cmpuint(rd(&v, VKMT_REG(budget_lo)), ==, 2 * MiB);
    g_assert_cmpuint(hdr_field(&v, &d, EV_TAIL), ==, 2);
    stop(&v);
    unlink(cur);
    unlink(high);
    rmdir(dir);
}

static void test_intx(void)
{
    Vkmt v;
    Drv d;

    start(&v, "");
    bring_up(&v);
    d = claim(&v);
    g_assert_cmphex(qpci_config_readw(v.dev, PCI_STATUS) & PCI_STATUS_INTERRUPT,
                    ==, 0);
    g_assert_cmphex(run(&v, &d,
                        (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE,
                                           .flags = VKMT_SQE_F_IRQ },
                        NULL),
                    ==, VKMT_ST_SUCCESS);
    /* Level-triggered: asserted until the guest clears the status bit. */
    g_assert_cmphex(qpci_config_readw(v.dev, PCI_STATUS) & PCI_STATUS_INTERRUPT,
                    ==, PCI_STATUS_INTERRUPT);
    g_assert_cmphex(rd(&v, VKMT_REG(isr_lo)), ==, 1u << d.q);
    wr(&v, VKMT_REG(isr_lo), 1u << d.q);
    g_assert_cmphex(qpci_config_readw(v.dev, PCI_STATUS) & PCI_STATUS_INTERRUPT,
                    ==, 0);
    stop(&v);
}

static void test_reset(void)
{
    Vkmt v;
    Drv d;
    uint32_t epoch, dev, h[2];
    QDict *resp;

    start(&v, "");
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 2, PAGE, h);
    epoch = rd(&v, VKMT_REG(removal_epoch));

    /* A guest-initiated reset: status 0. */
    wr(&v, VKMT_REG(status), 0);
    g_assert_cmpuint(rd(&v, VKMT_REG(removal_epoch)), ==, epoch + 1);
    g_assert_cmpuint(
        hdr_field(&v, &d, offsetof(struct vkmt_queue_hdr, sh_state)), ==,
        VKMT_QSTATE_FREE);
    g_assert_cmpint(stats_get(&v, "allocations"), ==, 0);

    /* A machine reset does the same. */
    bring_up(&v);
    d = claim(&v);
    new_device(&v, &d);
    resp = qtest_qmp(v.qs->qts, "{'execute': 'system_reset'}");
    qobject_unref(resp);
    qtest_qmp_eventwait(v.qs->qts, "RESET");
    map_bars(&v);
    g_assert_cmpuint(rd(&v, VKMT_REG(removal_epoch)), ==, epoch + 2);
    g_assert_cmpuint(rd(&v, VKMT_REG(status)), ==, 0);
    g_assert_cmpint(stats_get(&v, "devices"), ==, 0);

    /* Host-side surprise removal. */
    map_bars(
        &v); /* the machine reset cleared the BARs and the command register */
    bring_up(&v);
    d = claim(&v);
    qtest_qmp_assert_success(
        v.qs->qts,
        "{'execute': 'qom-set', 'arguments': {'path': "
        "'/machine/peripheral/vk', 'property': 'removed', 'value': true}}");
    g_assert_cmphex(
        run(&v, &d, (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_DEVICE }, NULL),
        ==, VKMT_ST_DEVICE_REMOVED);
    stop(&v);
}

/*
 * ---- hostile interrupts and teardown ----
 *
 * On q35 the device's MSI-X messages travel its bus-master address space,
 * which reaches the MMCONFIG window: a guest can aim one at its root port's
 * config space. The machine here is q35 with vkmt behind a pcie-root-port,
 * set up by hand (libqos enumerates bus 0 only): MMCONFIG at 0xb0000000,
 * the root port at 00:02.0 forwarding 0xe0000000-0xe0ffffff to bus 1, vkmt
 * at 01:00.0 with its register, MSI-X and control BARs in that window.
 */
#define RP_DEVFN QPCI_DEVFN(2, 0)
#define MMCFG_BASE 0xb0000000u
#define RP_REGS 0xe0000000u
#define RP_MSIX 0xe0100000u
#define RP_CTRL 0xe0400000u

typedef struct Q35 {
    QTestState *qts;
    uint8_t rp_exp; /* the root port's PCI Express capability */
    uint32_t msix_table;
} Q35;

static void cfg_addr(QTestState *qts, int bus, int devfn, int reg)
{
    qtest_outl(qts, 0xcf8, 0x80000000u | bus << 16 | devfn << 8 | (reg & 0xfc));
}

static uint32_t cfg_rdl(QTestState *qts, int bus, int devfn, int reg)
{
    cfg_addr(qts, bus, devfn, reg);
    return qtest_inl(qts, 0xcfc);
}

static void cfg_wrl(QTestState *qts, int bus, int devfn, int reg, uint32_t val)
{
    cfg_addr(qts, bus, devfn, reg);
    qtest_outl(qts, 0xcfc, val);
}

static void cfg_wrw(QTestState *qts, int bus, int devfn, int reg, uint16_t val)
{
    cfg_addr(qts, bus, devfn, reg);
    qtest_outw(qts, 0xcfc + (reg & 2), val);
}

static uint8_t find_cap(QTestState *qts, int bus, int devfn, uint8_t id)
{
    uint8_t pos = cfg_rdl(qts, bus, devfn, PCI_CAPABILITY_LIST) & 0xfc;

    while (pos && (cfg_rdl(qts, bus, devfn, pos) & 0xff) != id) {
        pos = (cfg_rdl(qts, bus, devfn, pos) >> 8) & 0xfc;
    }
    g_assert(pos);
    return pos;
}

static void q35_start(Q35 *m, const char *props, const char *more)
{
    uint8_t msix;

    /* Native PCIe hotplug on the root port (q35 defaults to ACPI's). */
    m->qts = qtest_initf(
        BASE_ARGS "-machine q35 %s "
                  "-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off "
                  "-device pcie-root-port,id=rp,bus=pcie.0,addr=0x2,chassis=1 "
                  "-device vkmt,id=vk,bus=rp,queues=1,aperture-size=1M,%s",
        more, props);
    /* MMCONFIG (the firmware would enable it), then the root port's bridge. */
    cfg_wrl(m->qts, 0, 0, 0x60, MMCFG_BASE | 1);
    cfg_wrl(m->qts, 0, RP_DEVFN, PCI_PRIMARY_BUS, 0x00010100);
    cfg_wrl(m->qts, 0, RP_DEVFN, PCI_MEMORY_BASE, 0xe0f0e000);
    cfg_wrw(m->qts, 0, RP_DEVFN, PCI_COMMAND,
            PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    m->rp_exp = find_cap(m->qts, 0, RP_DEVFN, PCI_CAP_ID_EXP);
    /* vkmt's BARs (the aperture stays unmapped), memory and bus mastering. */
    cfg_wrl(m->qts, 1, 0, PCI_BASE_ADDRESS_0 + 4 * VKMT_BAR_REGS, RP_REGS);
    cfg_wrl(m->qts, 1, 0, PCI_BASE_ADDRESS_0 + 4 * VKMT_BAR_MSIX, RP_MSIX);
    cfg_wrl(m->qts, 1, 0, PCI_BASE_ADDRESS_0 + 4 * VKMT_BAR_CTRL, RP_CTRL);
    cfg_wrl(m->qts, 1, 0, PCI_BASE_ADDRESS_0 + 4 * VKMT_BAR_CTRL + 4, 0);
    cfg_wrw(m->qts, 1, 0, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    msix = find_cap(m->qts, 1, 0, PCI_CAP_ID_MSIX);
    m->msix_table =
        RP_MSIX + (cfg_rdl(m->qts, 1, 0, msix + PCI_MSIX_TABLE) & ~7u);
    cfg_wrw(m->qts, 1, 0, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
}

/* Aim MSI-X vector 0 at dword @reg of the root port's config space. */
static void q35_aim_msix(Q35 *m, int reg, uint32_t data)
{
    qtest_writel(m->qts, m->msix_table + PCI_MSIX_ENTRY_LOWER_ADDR,
                 MMCFG_BASE + (RP_DEVFN << 12) + reg);
    qtest_writel(m->qts, m->msix_table + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    qtest_writel(m->qts, m->msix_table + PCI_MSIX_ENTRY_DATA, data);
    qtest_writel(m->qts, m->msix_table + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
}

/* Bring the device up, claim queue 0, post CREATE_DEVICE asking for an
 * interrupt, ring. */
static void q35_ring_with_irq(Q35 *m)
{
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE,
                            .flags = VKMT_SQE_F_IRQ,
                            .cid = 1 };

    qtest_writel(m->qts, RP_REGS + VKMT_REG(status),
                 VKMT_STATUS_ACKNOWLEDGE | VKMT_STATUS_DRIVER);
    qtest_writel(m->qts, RP_REGS + VKMT_REG(driver_features), 0);
    qtest_writel(m->qts, RP_REGS + VKMT_REG(status), VKMT_STATUS_FEATURES_OK);
    qtest_writel(m->qts, RP_REGS + VKMT_REG(status), VKMT_STATUS_DRIVER_OK);
    g_assert_cmpuint(qtest_readl(m->qts, RP_REGS + VKMT_REG(queue_claim)), ==,
                     0);
    qtest_memwrite(m->qts, RP_CTRL + VKMT_QUEUE_SQ_OFF, &sqe, sizeof(sqe));
    qtest_writel(m->qts, RP_CTRL + offsetof(struct vkmt_queue_hdr, sh_sq_tail),
                 1);
    qtest_writel(m->qts, RP_REGS + VKMT_REG_DOORBELL(0), 1);
}

static void q35_alive(Q35 *m)
{
    QDict *resp = qtest_qmp(m->qts, "{'execute': 'query-status'}");

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/*
 * The completion's MSI-X message sets Secondary Bus Reset in the root
 * port's Bridge Control: the device is reset inside that message. Before
 * the fix the reset waited for the lock the raising thread held (QEMU hung).
 */
static void sbr_by_msix(const char *props)
{
    Q35 m;
    uint32_t bctl, epoch;

    q35_start(&m, props, "");
    epoch = qtest_readl(m.qts, RP_REGS + VKMT_REG(removal_epoch));
    bctl = cfg_rdl(m.qts, 0, RP_DEVFN, PCI_INTERRUPT_LINE);
    q35_aim_msix(&m, PCI_INTERRUPT_LINE, bctl | PCI_BRIDGE_CTL_BUS_RESET << 16);
    q35_ring_with_irq(&m);
    q35_alive(&m);
    /* The bus reset cleared the device's BARs and command register: map it
     * again. */
    cfg_wrl(m.qts, 1, 0, PCI_BASE_ADDRESS_0 + 4 * VKMT_BAR_REGS, RP_REGS);
    cfg_wrw(m.qts, 1, 0, PCI_COMMAND, PCI_COMMAND_MEMORY);
    g_assert_cmpuint(qtest_readl(m.qts, RP_REGS + VKMT_REG(removal_epoch)), ==,
                     epoch + 1);
    g_assert_cmpuint(qtest_readl(m.qts, RP_REGS + VKMT_REG(status)), ==, 0);
    qtest_quit(m.qts);
}

static void test_sbr_by_msix_inline(void)
{
    sbr_by_msix("doorbell=inline");
}

static void test_sbr_by_msix_ioeventfd(void)
{
    sbr_by_msix("doorbell=ioeventfd");
}

/*
 * The message powers the root port's slot off: the device is unplugged and
 * freed inside it. Before the fix teardown destroyed the mutex the raising
 * thread held (QEMU aborted).
 */
static void power_off_by_msix(const char *props, const char *more)
{
    Q35 m;
    uint16_t sltctl;

    q35_start(&m, props, more);
    sltctl = cfg_rdl(m.qts, 0, RP_DEVFN, m.rp_exp + PCI_EXP_SLTCTL) & 0xffff;
    sltctl = (sltctl & ~(PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC)) |
             PCI_EXP_SLTCTL_PWR_IND_OFF | PCI_EXP_SLTCTL_PWR_OFF;
    q35_aim_msix(&m, m.rp_exp + PCI_EXP_SLTCTL, sltctl);
    q35_ring_with_irq(&m);
    qtest_qmp_eventwait(m.qts, "DEVICE_DELETED");
    q35_alive(&m);
    qtest_quit(m.qts);
}

static void test_power_off_by_msix_inline(void)
{
    power_off_by_msix("doorbell=inline", "");
}

static void test_power_off_by_msix_iothread(void)
{
    power_off_by_msix("doorbell=iothread,iothread=io0",
                      "-object iothread,id=io0");
}

/*
 * Long commands for the iothread tests: HEAVY_N one-page allocations, whose
 * handles sit at staging offset 0, then CREATE's descriptors.
 */
#define HEAVY_N VKMT_MAX_BATCH
#define HEAVY_DESC_OFF (HEAVY_N * 4)

/*
 * Map only the register and control BARs of @v->dev: the 128 MiB aperture
 * that HEAVY_N pages need does not fit libqos's PCI window, and these tests
 * never touch it.
 */
static void map_regs_ctrl(Vkmt *v)
{
    qpci_device_enable(v->dev);
    v->regs = qpci_iomap(v->dev, VKMT_BAR_REGS, &v->regs_size);
    v->ctrl = qpci_iomap(v->dev, VKMT_BAR_CTRL, &v->ctrl_size);
}

static uint32_t heavy_setup(Vkmt *v, Drv *d)
{
    g_autofree struct vkmt_alloc_desc *desc =
        g_new0(struct vkmt_alloc_desc, HEAVY_N);
    uint32_t dev = new_device(v, d);

    for (uint32_t i = 0; i < HEAVY_N; i++) {
        desc[i].size = PAGE;
    }
    staging_write(v, d, HEAVY_DESC_OFF, desc, HEAVY_N * sizeof(*desc));
    g_assert_cmphex(
        run(v, d,
            (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                               .handle = dev,
                               .count = HEAVY_N,
                               .payload_off = HEAVY_DESC_OFF,
                               .payload_len = HEAVY_N * sizeof(*desc),
                               .result_len = HEAVY_N * 4 },
            NULL),
        ==, VKMT_ST_SUCCESS);
    return dev;
}

/*
 * By @i % 3: OFFER of all HEAVY_N allocations, a guest TRIM of everything
 * offered (a hole punched per allocation: the longest), RECLAIM of all.
 */
static struct vkmt_sqe heavy_sqe(uint32_t dev, uint32_t i, uint16_t flags)
{
    if (i % 3 == 1) {
        return (struct vkmt_sqe){ .opcode = VKMT_OP_TRIM, .flags = flags };
    }
    return (struct vkmt_sqe){ .opcode = i % 3 ? VKMT_OP_RECLAIM : VKMT_OP_OFFER,
                              .flags = flags,
                              .handle = dev,
                              .count = HEAVY_N,
                              .payload_len = HEAVY_N * 4,
                              .arg0 = i % 3 ? 0 : VKMT_PRIO_NORMAL };
}

/*
 * doorbell=iothread with INTx: while the iothread runs a long command that
 * asks for an interrupt, the guest keeps clearing isr, so a clear lands
 * just after the completion. Once the interrupt bottom half ran, the line
 * is asserted exactly when isr is not 0. Before the fix the bottom half
 * raised the line for a completion whose isr bit the guest had already
 * cleared: the line stayed up with isr 0.
 */
static void test_intx_iothread(void)
{
    QOSState *qs = qtest_pc_boot(
        BASE_ARGS "-object iothread,id=io0 -device vkmt,id=vk,"
                  "doorbell=iothread,iothread=io0,aperture-size=128M");
    Vkmt v = { .qs = qs };
    Drv d;
    uint32_t dev;

    qpci_device_foreach(qs->pcibus, VKMT_PCI_VENDOR_ID, VKMT_PCI_DEVICE_ID,
                        found, &v.dev);
    g_assert(v.dev);
    map_regs_ctrl(&v);
    bring_up(&v);
    d = claim(&v);
    dev = heavy_setup(&v, &d);
    for (uint32_t i = 0; i < 8; i++) {
        struct vkmt_sqe sqe = heavy_sqe(dev, i, VKMT_SQE_F_IRQ);
        struct vkmt_cqe c;
        uint64_t off = qoff(&d, VKMT_QUEUE_CQ_OFF +
                                    (d.head % VKMT_QUEUE_DEPTH) * sizeof(c));
        bool isr, line;

        post(&v, &d, &sqe);
        do {
            wr(&v, VKMT_REG(isr_lo), ~0u);
            qpci_memread(v.dev, v.ctrl, off, &c, sizeof(c));
        } while ((c.flags & VKMT_CQE_F_PHASE) != d.phase);
        g_assert_true(reap(&v, &d, &c));
        g_usleep(20 * 1000);
        qobject_unref(
            qtest_qmp(qs->qts, "{'execute': 'query-status'}")); /* BHs ran */
        isr = rd(&v, VKMT_REG(isr_lo)) != 0;
        line = qpci_config_readw(v.dev, PCI_STATUS) & PCI_STATUS_INTERRUPT;
        g_assert_cmpint(line, ==, isr);
        wr(&v, VKMT_REG(isr_lo), ~0u);
        g_assert_cmphex(
            qpci_config_readw(v.dev, PCI_STATUS) & PCI_STATUS_INTERRUPT, ==, 0);
    }
    g_free(v.dev);
    qtest_shutdown(qs);
}

/*
 * doorbell=iothread, hot-unplugged (device_del, then the guest's ACPI
 * eject) while the iothread works through a ring of 63 commands on 10,240
 * allocations (offer, trim, reclaim, 21 times) and the guest keeps ringing;
 * then plugged again, three times.
 * Before the fix teardown freed the engine and destroyed its locked mutex
 * under the running handler (QEMU aborted, or used freed memory).
 */
static void test_unplug_iothread(void)
{
    QOSState *qs = qtest_pc_boot(BASE_ARGS "-object iothread,id=io0");
    QDict *resp;

    for (int round = 0; round < 3; round++) {
        Vkmt v = { .qs = qs };
        Drv d;
        uint32_t dev;

        qtest_qmp_device_add(
            qs->qts, "vkmt", "vk1",
            "{'addr': '0x06', 'doorbell': 'iothread', 'iothread': 'io0', "
            "'queues': 1, 'aperture-size': 134217728}");
        v.dev = qpci_device_find(qs->pcibus, QPCI_DEVFN(6, 0));
        g_assert(v.dev);
        map_regs_ctrl(&v);
        bring_up(&v);
        d = claim(&v);
        dev = heavy_setup(&v, &d);
        for (uint32_t i = 0; i < VKMT_QUEUE_DEPTH - 1; i++) {
            struct vkmt_sqe sqe = heavy_sqe(dev, i, 0);

            post_quiet(&v, &d, &sqe);
        }
        wr(&v, VKMT_REG_DOORBELL(d.q), d.tail);
        qtest_qmp_device_del_send(qs->qts, "vk1");
        for (int i = 0; i < 8; i++) {
            wr(&v, VKMT_REG_DOORBELL(d.q), d.tail);
        }
        qtest_outl(qs->qts, 0xae08 /* ACPI PCI hotplug: eject */, 1u << 6);
        qtest_qmp_eventwait(qs->qts, "DEVICE_DELETED");
        g_free(v.dev);
    }
    resp = qtest_qmp(qs->qts, "{'execute': 'query-status'}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    qtest_shutdown(qs);
}

/* tests/vkmt_bad_cmds.h, shared with the engine's unit test. */
static void test_malformed(void)
{
    Vkmt v;
    Drv d, other;
    struct vkmt_bad_cmd cases[VKMT_BAD_CMDS_MAX];
    struct vkmt_bad_env env;
    struct vkmt_cqe c;
    uint32_t h[2], w, n;
    const uint32_t IP = VKMT_ST_INVALID_PARAMETER;
    static const uint8_t zero_desc[16];

    start(&v, "queues=4");
    bring_up(&v);
    d = claim(&v);
    other = claim(&v);
    env.dev = new_device(&v, &d);
    create(&v, &d, env.dev, 2, PAGE, h);
    env.alloc = h[0];
    env.theirs = new_device(&v, &other);
    create(&v, &d, env.dev, 1, PAGE, &env.stale);
    destroy(&v, &d, env.dev, env.stale);
    g_assert_cmphex(
        run(&v, &d,
            (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_PAGING_QUEUE,
                               .handle = env.dev },
            &c),
        ==, VKMT_ST_SUCCESS);
    env.pq = (uint32_t)c.value0;
    n = vkmt_bad_cmds(&env, cases);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t st;

        staging_write(&v, &d, 0, &env.alloc, 4);
        staging_write(&v, &d, 64, zero_desc, sizeof(zero_desc));
        st = run(&v, &d, cases[i].sqe, NULL);
        if (st != cases[i].status) {
            g_test_message("%s: status 0x%x, want 0x%x", cases[i].what, st,
                           cases[i].status);
        }
        g_assert_cmphex(st, ==, cases[i].status);
    }
    /* A duplicate or a stranger anywhere spoils the whole batch. */
    w = h[0];
    staging_write(&v, &d, 0, (uint32_t[]){ h[1], w, w }, 12);
    g_assert_cmphex(run(&v, &d,
                        (struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                                           .handle = env.dev,
                                           .count = 3,
                                           .payload_len = 12,
                                           .arg0 = 1 },
                        NULL),
                    ==, IP);
    g_assert_cmpint(stats_get(&v, "offers"), ==, 0);

    /* Register abuse: logged and ignored, the device stays usable. */
    wr(&v, VKMT_REG(magic), 0);
    wr(&v, VKMT_REG(queue_release), 0xffffffff);
    wr(&v, VKMT_REG(queue_release), 3); /* never claimed */
    wr(&v, VKMT_REG_DOORBELL(3), 1);    /* not claimed */
    wr(&v, VKMT_REG_DOORBELL(60), 1);   /* beyond num_queues */
    wr(&v, 0xffc, 0xffffffff);
    g_assert_cmphex(rd(&v, VKMT_REG(magic)), ==, VKMT_MAGIC);
    g_assert_cmpint(stats_get(&v, "guest_errors"), >=, 6);

    /* A doorbell far past the head puts only that queue in the error state. */
    wr(&v, VKMT_REG_DOORBELL(other.q), 1000);
    qpci_io_writel(
        v.dev, v.ctrl,
        qoff(&other,
             VKMT_QUEUE_HDR_OFF + offsetof(struct vkmt_queue_hdr, sh_sq_tail)),
        1000);
    wr(&v, VKMT_REG_DOORBELL(other.q), 1000);
    g_assert_cmpuint(
        hdr_field(&v, &other, offsetof(struct vkmt_queue_hdr, sh_state)), ==,
        VKMT_QSTATE_ERROR);
    g_assert_cmpuint(
        hdr_field(&v, &other, offsetof(struct vkmt_queue_hdr, sh_error)), ==,
        VKMT_QERR_DOORBELL_RANGE);
    g_assert_cmpint(stats_get(&v, "queue_errors"), ==, 1);
    g_assert_cmphex(offer(&v, &d, env.dev, h, 2, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    stop(&v);
}

static void test_garbage_rings(void)
{
    Vkmt v;
    Drv d, victim;
    uint32_t dev, h[1];
    GRand *rng = g_rand_new_with_seed(0x766b6d74);
    uint8_t junk[4096];

    start(&v, "queues=2");
    bring_up(&v);
    d = claim(&v);
    victim = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 1, PAGE, h);
    for (int round = 0; round < 200; round++) {
        uint32_t tail;

        for (size_t i = 0; i < sizeof(junk); i++) {
            junk[i] = (uint8_t)g_rand_int(rng);
        }
        /* Random SQ entries, header, staging and CQ, then random doorbells. */
        qpci_memwrite(v.dev, v.ctrl, qoff(&victim, VKMT_QUEUE_SQ_OFF), junk,
                      sizeof(junk));
        qpci_memwrite(
            v.dev, v.ctrl,
            qoff(&victim, VKMT_QUEUE_STAGING_OFF + (round % 32) * 4096), junk,
            sizeof(junk));
        if (round % 10 == 0) {
            qpci_memwrite(v.dev, v.ctrl, qoff(&victim, VKMT_QUEUE_HDR_OFF),
                          junk, 64);
            qpci_memwrite(v.dev, v.ctrl, qoff(&victim, VKMT_QUEUE_CQ_OFF), junk,
                          1024);
        }
        tail = round % 7 == 0 ? g_rand_int(rng)
                              : (uint32_t)round % VKMT_QUEUE_DEPTH;
        wr(&v, VKMT_REG_DOORBELL(victim.q), tail);
        if (round % 25 ==
            0) { /* a broken queue is released and claimed again */
            wr(&v, VKMT_REG(queue_release), victim.q);
            victim = claim(&v);
        }
    }
    g_rand_free(rng);
    /* QEMU is alive and the other queue works. */
    g_assert_cmphex(rd(&v, VKMT_REG(magic)), ==, VKMT_MAGIC);
    g_assert_cmphex(offer(&v, &d, dev, h, 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmpint(stats_get(&v, "offers"), ==, 1);
    stop(&v);
}

/* The event log without its time column, and the times in @times. */
static char *event_log_read(const char *path, GArray *times)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GString *out = g_string_new("");

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i] && *lines[i]; i++) {
        const char *tab = strchr(lines[i], '\t');

        if (i < 2 || !tab) { /* the two header lines stay whole */
            g_string_append_printf(out, "%s\n", lines[i]);
            continue;
        }
        if (times) {
            uint64_t t = g_ascii_strtoull(lines[i], NULL, 10);

            g_array_append_val(times, t);
        }
        g_string_append_printf(out, "%s\n", tab + 1);
    }
    return g_string_free(out, false);
}

/*
 * The event log of a scenario, line by line: create, offer at two
 * priorities, a QMP trim that discards the LOW one, reclaim (DISCARDED and
 * OK), destroy, an AllowDecommit offer lost to a trim of everything and
 * reclaimed as NOT_COMMITTED, a budget change, a guest trim; and the
 * per-priority counters.
 */
static void test_event_log(void)
{
    g_autofree char *path =
        g_build_filename(g_get_tmp_dir(), "vkmt-events-XXXXXX", NULL);
    g_autofree char *props = NULL, *log = NULL, *want = NULL;
    g_autoptr(GArray) times = g_array_new(false, false, sizeof(uint64_t));
    int fd = g_mkstemp(path);
    Vkmt v;
    Drv d;
    uint32_t dev, h[2], h2, r[2];
    const char *head =
        "# vkmt event log 1: time_ns is CLOCK_MONOTONIC in nanoseconds\n"
        "time_ns\tseq\tevent\tqueue\thandle\tsize\tpriority\tresult\n";

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    props = g_strdup_printf("event-log=%s", path);
    start(&v, props);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 2, 5000, h);
    g_assert_cmphex(offer(&v, &d, dev, &h[0], 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmphex(offer(&v, &d, dev, &h[1], 1, VKMT_PRIO_HIGH), ==,
                    VKMT_ST_SUCCESS);

    /* Readable live: a command's lines are in the file once it completed. */
    log = event_log_read(path, NULL);
    want = g_strdup_printf("%s1\treset\t-\t-\t-\t-\t-\n"
                           "2\tclaim\t0\t-\t-\t-\t-\n"
                           "3\tcreate\t0\t0x%08x\t5000\t-\t-\n"
                           "4\tcreate\t0\t0x%08x\t5000\t-\t-\n"
                           "5\toffer\t0\t0x%08x\t5000\tlow\t-\n"
                           "6\toffer\t0\t0x%08x\t5000\thigh\t-\n",
                           head, h[0], h[1], h[0], h[1]);
    g_assert_cmpstr(log, ==, want);
    g_free(log);
    g_free(want);

    qom_set_size(&v, "trim", PAGE);
    g_assert_cmphex(reclaim(&v, &d, dev, h, 2, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_DISCARDED);
    destroy(&v, &d, dev, h[0]);
    staging_write(&v, &d, 0, &h[1], 4);
    g_assert_cmphex(
        run(&v, &d,
            (struct vkmt_sqe){ .opcode = VKMT_OP_OFFER,
                               .handle = dev,
                               .count = 1,
                               .payload_len = 4,
                               .arg0 = VKMT_PRIO_AUTO,
                               .arg1 = VKMT_OFFER_F_ALLOW_DECOMMIT },
            NULL),
        ==, VKMT_ST_SUCCESS);
    qom_set_size(&v, "trim", 0);
    g_assert_cmphex(reclaim(&v, &d, dev, &h[1], 1, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_NOT_COMMITTED);
    qom_set_size(&v, "budget", 8 * MiB);
    /* The guest's own trim names its queue. */
    create(&v, &d, dev, 1, PAGE, &h2);
    g_assert_cmphex(offer(&v, &d, dev, &h2, 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmphex(
        run(&v, &d, (struct vkmt_sqe){ .opcode = VKMT_OP_TRIM }, NULL), ==,
        VKMT_ST_SUCCESS);

    log = event_log_read(path, times);
    want = g_strdup_printf("%s1\treset\t-\t-\t-\t-\t-\n"
                           "2\tclaim\t0\t-\t-\t-\t-\n"
                           "3\tcreate\t0\t0x%08x\t5000\t-\t-\n"
                           "4\tcreate\t0\t0x%08x\t5000\t-\t-\n"
                           "5\toffer\t0\t0x%08x\t5000\tlow\t-\n"
                           "6\toffer\t0\t0x%08x\t5000\thigh\t-\n"
                           "7\ttrim\t-\t-\t4096\t-\t-\n"
                           "8\tdiscard\t0\t0x%08x\t5000\tlow\t-\n"
                           "9\treclaim\t0\t0x%08x\t5000\tlow\tdiscarded\n"
                           "10\treclaim\t0\t0x%08x\t5000\thigh\tok\n"
                           "11\tdestroy\t0\t0x%08x\t5000\t-\t-\n"
                           "12\toffer\t0\t0x%08x\t5000\tauto\t-\n"
                           "13\ttrim\t-\t-\t0\t-\t-\n"
                           "14\tdiscard\t0\t0x%08x\t5000\tauto\t-\n"
                           "15\tdecommit\t0\t0x%08x\t5000\tauto\t-\n"
                           "16\treclaim\t0\t0x%08x\t5000\tauto\tnot_committed\n"
                           "17\tbudget\t-\t-\t8388608\t-\t-\n"
                           "18\tnotify\t0\t-\t8388608\t-\tbudget_changed\n"
                           "19\tcreate\t0\t0x%08x\t4096\t-\t-\n"
                           "20\toffer\t0\t0x%08x\t4096\tlow\t-\n"
                           "21\ttrim\t0\t-\t0\t-\t-\n"
                           "22\tdiscard\t0\t0x%08x\t4096\tlow\t-\n",
                           head, h[0], h[1], h[0], h[1], h[0], h[0], h[1], h[0],
                           h[1], h[1], h[1], h[1], h2, h2, h2);
    g_assert_cmpstr(log, ==, want);
    /* One monotonic clock for every line. */
    g_assert_cmpuint(times->len, ==, 22);
    for (guint i = 1; i < times->len; i++) {
        g_assert_cmpuint(g_array_index(times, uint64_t, i), >=,
                         g_array_index(times, uint64_t, i - 1));
    }

    /* Per priority: bytes are whole pages, reclaims count per result. */
    g_assert_cmpint(stats_get(&v, "offered_bytes_total_low"), ==, 3 * PAGE);
    g_assert_cmpint(stats_get(&v, "offered_bytes_total_high"), ==, 2 * PAGE);
    g_assert_cmpint(stats_get(&v, "offered_bytes_total_auto"), ==, 2 * PAGE);
    g_assert_cmpint(stats_get(&v, "offered_bytes_total_normal"), ==, 0);
    g_assert_cmpint(stats_get(&v, "offered_bytes_auto"), ==, 0);
    g_assert_cmpint(stats_get(&v, "discarded_bytes_low"), ==, 3 * PAGE);
    g_assert_cmpint(stats_get(&v, "discarded_bytes_high"), ==, 0);
    g_assert_cmpint(stats_get(&v, "discarded_bytes_auto"), ==, 2 * PAGE);
    g_assert_cmpint(stats_get(&v, "reclaim_discarded_low"), ==, 1);
    g_assert_cmpint(stats_get(&v, "reclaim_ok_low"), ==, 0);
    g_assert_cmpint(stats_get(&v, "reclaim_ok_high"), ==, 1);
    g_assert_cmpint(stats_get(&v, "reclaim_not_committed_auto"), ==, 1);
    g_assert_cmpint(stats_get(&v, "reclaim_not_committed"), ==, 1);
    stop(&v);
    unlink(path);
}

/* A file of @size bytes in tmpfs, each byte @fill; its path. */
static char *fill_file(size_t size, uint8_t fill)
{
    char *path = g_build_filename("/dev/shm", "vkmt-memdev-XXXXXX", NULL);
    g_autofree uint8_t *buf = g_malloc(size);
    int fd = g_mkstemp(path);

    g_assert_cmpint(fd, >=, 0);
    memset(buf, fill, size);
    g_assert_cmpint(write(fd, buf, size), ==, (ssize_t)size);
    close(fd);
    return path;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

/* qom-set of @property on device @id to string @val, or to the number @num
 * when @val is NULL; the reply. */
static QDict *qom_set_on(QTestState *qts, const char *id, const char *property,
                         const char *val, uint64_t num)
{
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);

    if (val) {
        return qtest_qmp(qts,
                         "{'execute': 'qom-set', 'arguments': {'path': %s, "
                         "'property': %s, 'value': %s}}",
                         path, property, val);
    }
    return qtest_qmp(qts,
                     "{'execute': 'qom-set', 'arguments': {'path': %s, "
                     "'property': %s, 'value': %" PRIu64 "}}",
                     path, property, num);
}

static void qom_set_ok(QTestState *qts, const char *id, const char *property,
                       const char *val, uint64_t num)
{
    QDict *resp = qom_set_on(qts, id, property, val, num);

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* Where unplug tests put the device, and where the guest ejects it. */
#define UNPLUG_SLOT 6
#define UNPLUG_APERTURE (4 * MiB) /* small: each plug maps it again */

/*
 * Hot-unplug with live queues, with doorbell=@doorbell (NULL: inline; @more:
 * the -object an iothread needs, which then serves it): twice, a device on a
 * shared memdev file gets two claimed queues, allocations with content (one
 * offered), stray writes in free aperture space and, on the second queue, a
 * command that a deaf device holds in flight; then device_del and the guest's
 * ACPI eject. The host must free everything (the memdev file's blocks back to
 * 0), and the device plugged again on the same memdev must work from scratch.
 */
static void unplug_live(const char *doorbell, const char *more)
{
    g_autofree char *path = fill_file(UNPLUG_APERTURE, 0);
    g_autofree char *args = NULL;
    g_autofree uint8_t *buf = g_malloc(16 * PAGE);
    g_autofree char *addr = g_strdup_printf("0x%02x", UNPLUG_SLOT);
    QDict *dev_props = qdict_from_jsonf_nofail(
        "{'id': 'vk1', 'addr': %s, 'memdev': 'ap', 'queues': 2}", addr);
    QOSState *qs;

    if (doorbell) {
        qdict_put_str(dev_props, "doorbell", doorbell);
    }
    if (more[0]) {
        qdict_put_str(dev_props, "iothread", "io0");
    }
    g_assert_cmpint(truncate(path, 0), ==, 0);
    g_assert_cmpint(truncate(path, UNPLUG_APERTURE), ==, 0);
    args = g_strdup_printf(BASE_ARGS "-object memory-backend-file,id=ap,"
                                     "size=4M,share=on,mem-path=%s %s",
                           path, more);
    qs = qtest_pc_boot("%s", args);
    for (int round = 0; round < 2; round++) {
        Vkmt v = { .qs = qs };
        Drv d, other;
        uint32_t dev, h[2];
        struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
        QDict *resp;

        qtest_qmp_device_add_qdict(qs->qts, "vkmt", dev_props);
        v.dev = qpci_device_find(qs->pcibus, QPCI_DEVFN(UNPLUG_SLOT, 0));
        g_assert(v.dev);
        map_bars(&v);
        bring_up(&v);
        d = claim(&v);
        other = claim(&v);
        dev = new_device(&v, &d);
        g_assert_cmpuint(new_device(&v, &other), !=, 0);
        create(&v, &d, dev, 2, 16 * PAGE, h);
        /* A new device's allocations read zero, whatever the last left. */
        qpci_memread(v.dev, v.ap, lock(&v, &d, dev, h[0]), buf, 16 * PAGE);
        g_assert_true(all_bytes(buf, 16 * PAGE, 0));
        memset(buf, 0x5a, 16 * PAGE);
        for (int i = 0; i < 2; i++) {
            qpci_memwrite(v.dev, v.ap, lock(&v, &d, dev, h[i]), buf, 16 * PAGE);
        }
        g_assert_cmphex(offer(&v, &d, dev, &h[1], 1, VKMT_PRIO_LOW), ==,
                        VKMT_ST_SUCCESS);
        qpci_memwrite(v.dev, v.ap, UNPLUG_APERTURE - 16 * PAGE, buf,
                      16 * PAGE); /* stray */
        g_assert_cmpuint(file_bytes(path), >=, 48 * PAGE);
        /* In flight: rung, noted, never processed. */
        resp = qtest_qmp(qs->qts, "{'execute': 'qom-set', 'arguments': {"
                                  "'path': '/machine/peripheral/vk1', "
                                  "'property': 'x-deaf', 'value': true}}");
        g_assert(qdict_haskey(resp, "return"));
        qobject_unref(resp);
        post(&v, &other, &sqe);
        post_quiet(&v, &d, &sqe);

        qtest_qmp_device_del_send(qs->qts, "vk1");
        qtest_outl(qs->qts, 0xae08 /* ACPI PCI hotplug: eject */,
                   1u << UNPLUG_SLOT);
        qtest_qmp_eventwait(qs->qts, "DEVICE_DELETED");
        g_free(v.dev);
        g_assert_cmpuint(file_bytes(path), ==, 0);
    }
    qobject_unref(dev_props);
    qtest_shutdown(qs);
    unlink(path);
}

static void test_unplug_live_inline(void)
{
    unplug_live(NULL, "");
}

static void test_unplug_live_ioeventfd(void)
{
    unplug_live("ioeventfd", "");
}

static void test_unplug_live_iothread(void)
{
    unplug_live("iothread", "-object iothread,id=io0");
}

/* The value of string property @property of device @id. */
static char *qom_get_str(QTestState *qts, const char *id, const char *property)
{
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);
    QDict *resp = qtest_qmp(
        qts,
        "{'execute': 'qom-get', 'arguments': {'path': %s, 'property': %s}}",
        path, property);
    char *val = g_strdup(qdict_get_str(resp, "return"));

    qobject_unref(resp);
    return val;
}

/* How many lines of @text hold @needle. */
static int count_lines(const char *text, const char *needle)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    int n = 0;

    for (int i = 0; lines[i]; i++) {
        n += strstr(lines[i], needle) != NULL;
    }
    return n;
}

/* CREATE_ALLOCATIONS of @n one-page allocations (at most 2): its status. */
static uint32_t create_pages(Vkmt *v, Drv *d, uint32_t dev, uint32_t n)
{
    static const struct vkmt_alloc_desc desc[2] = { { .size = PAGE },
                                                    { .size = PAGE } };

    staging_write(v, d, 0, desc, n * sizeof(desc[0]));
    return run(v, d,
               (struct vkmt_sqe){ .opcode = VKMT_OP_CREATE_ALLOCATIONS,
                                  .handle = dev,
                                  .count = n,
                                  .payload_len = n * sizeof(desc[0]),
                                  .result_off = 1024,
                                  .result_len = n * 4 },
               NULL);
}

/*
 * Injected backend faults over QMP (docs/DEVICE.md): a creation whose
 * second commit fails is NO_MEMORY and leaves nothing; a trim whose discard
 * fails frees nothing and the offer keeps its content; a stall is counted;
 * the text forms read back; bad values are refused; properties given at
 * creation are in force from the first command; the event log has a line
 * for each fault and stall.
 */
static void test_faults_over_qmp(void)
{
    g_autofree char *path =
        g_build_filename(g_get_tmp_dir(), "vkmt-events-XXXXXX", NULL);
    g_autofree char *props = NULL, *log = NULL;
    int fd = g_mkstemp(path);
    Vkmt v;
    Drv d;
    uint32_t dev, h[2], r[2];
    uint8_t pattern[PAGE], back[PAGE];
    g_autofree char *rate = NULL;
    g_autofree char *every = NULL;

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    props = g_strdup_printf("x-fault-commit=every:1,event-log=%s", path);
    start(&v, props);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    g_assert_cmphex(create_pages(&v, &d, dev, 1), ==, VKMT_ST_NO_MEMORY);
    g_assert_cmpint(stats_get(&v, "faults_commit"), ==, 1);
    g_assert_cmpint(stats_get(&v, "allocations"), ==, 0);

    qom_set_ok(v.qs->qts, "vk", "x-fault-seed", NULL, 42);
    qom_set_ok(v.qs->qts, "vk", "x-fault-commit", "every:2", 0);
    g_assert_cmphex(create_pages(&v, &d, dev, 2), ==, VKMT_ST_NO_MEMORY);
    g_assert_cmpint(stats_get(&v, "faults_commit"), ==, 2);
    g_assert_cmpint(stats_get(&v, "allocations"), ==, 0);
    g_assert_cmpint(stats_get(&v, "committed_bytes"), ==, 0);
    qom_set_ok(v.qs->qts, "vk", "x-fault-commit", "off", 0);
    create(&v, &d, dev, 2, PAGE, h);

    for (int i = 0; i < PAGE; i++) {
        pattern[i] = (uint8_t)(i * 13 + 1);
    }
    qpci_memwrite(v.dev, v.ap, lock(&v, &d, dev, h[0]), pattern, PAGE);
    g_assert_cmphex(offer(&v, &d, dev, h, 2, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    qom_set_ok(v.qs->qts, "vk", "x-fault-discard", "every:1", 0);
    qom_set_size(&v, "trim", 0);
    g_assert_cmpint(stats_get(&v, "faults_discard"), ==, 1);
    g_assert_cmpint(stats_get(&v, "discards"), ==, 0);
    g_assert_cmpint(stats_get(&v, "offered_bytes"), ==, 2 * PAGE);
    qom_set_ok(v.qs->qts, "vk", "x-fault-discard", "off", 0);
    g_assert_cmphex(reclaim(&v, &d, dev, h, 2, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_OK);
    g_assert_cmpuint(r[1], ==, VKMT_RECLAIM_OK);
    qpci_memread(v.dev, v.ap, lock(&v, &d, dev, h[0]), back, PAGE);
    g_assert(memcmp(back, pattern, PAGE) == 0);

    qom_set_ok(v.qs->qts, "vk", "x-fault-stall-ns", NULL, 2000000);
    qom_set_ok(v.qs->qts, "vk", "x-fault-stall", "rate:1", 0);
    create(&v, &d, dev, 1, PAGE, h);
    g_assert_cmpint(stats_get(&v, "stalls"), ==, 1);
    g_assert_cmpint(stats_get(&v, "stall_ns"), ==, 2000000);

    qom_set_ok(v.qs->qts, "vk", "x-fault-discard", "rate:0.5", 0);
    rate = qom_get_str(v.qs->qts, "vk", "x-fault-discard");
    g_assert_cmpstr(rate, ==, "rate:0.5");
    every = qom_get_str(v.qs->qts, "vk", "x-fault-commit");
    g_assert_cmpstr(every, ==, "off");
    expect_error(qom_set_on(v.qs->qts, "vk", "x-fault-commit", "sometimes", 0),
                 "x-fault-commit=sometimes: use off, every:N");
    expect_error(qom_set_on(v.qs->qts, "vk", "x-fault-stall", "rate:1.5", 0),
                 "use off, every:N");
    expect_error(
        qom_set_on(v.qs->qts, "vk", "x-fault-stall-ns", NULL, 2000000000),
        "x-fault-stall-ns is at most 1000000000");
    stop(&v);
    /* One event log line per injected fault or stall. */
    log = event_log_read(path, NULL);
    g_assert_cmpint(count_lines(log, "\tfault_commit\t0\t"), ==, 2);
    g_assert_cmpint(count_lines(log, "\tfault_discard\t0\t"), ==, 1);
    g_assert_cmpint(count_lines(log, "\tstall_commit\t0\t"), ==, 1);
    unlink(path);
}

/*
 * The aperture BAR is guest-writable RAM. Stray stores
 * into free space hold host memory only until the next trim, and a new
 * allocation over them reads zeros. Measured in the memdev file's blocks.
 */
static void test_stray_writes(void)
{
    g_autofree char *path = fill_file(16 * MiB, 0);
    g_autofree char *more = NULL;
    g_autofree uint8_t *buf = g_malloc(MiB);
    Vkmt v;
    Drv d;
    uint32_t dev, h[1];
    uint64_t off;

    g_assert_cmpint(truncate(path, 0), ==, 0);
    g_assert_cmpint(truncate(path, 16 * MiB), ==, 0);
    more = g_strdup_printf(
        "-object memory-backend-file,id=ap,size=16M,share=on,mem-path=%s",
        path);
    start_with(&v, "memdev=ap", more);
    bring_up(&v);
    memset(buf, 0xcd, MiB);
    qpci_memwrite(v.dev, v.ap, 0, buf, MiB);
    g_assert_cmpuint(file_bytes(path), >=, MiB);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 1, 2 * PAGE, h);
    off = lock(&v, &d, dev, h[0]);
    qpci_memread(v.dev, v.ap, off, buf, 2 * PAGE);
    g_assert_true(all_bytes(buf, 2 * PAGE, 0));
    /* A trim with nothing offered gives back all but the allocation. */
    qom_set_size(&v, "trim", 0);
    g_assert_cmpuint(file_bytes(path), <=, 2 * PAGE);
    /* The limits the guest reads: the memory backend holds up to the aperture.
     */
    g_assert_cmphex(rd(&v, VKMT_REG(max_alloc_lo)), ==, 16 * MiB);
    g_assert_cmphex(rd(&v, VKMT_REG(max_alloc_hi)), ==, 0);
    g_assert_cmphex(rd(&v, VKMT_REG(max_texture_dim)), ==,
                    VKMT_TEXTURE_MAX_DIM);
    stop(&v);
    unlink(path);
}

/* Finding 4: a memdev that maps its file private is refused: punching the
 * file would free nothing the guest sees. */
static void test_memdev_private(void)
{
    g_autofree char *path = fill_file(MiB, 0);
    g_autofree char *args = g_strdup_printf(
        BASE_ARGS "-machine pc -object "
                  "memory-backend-file,id=ap,size=1M,share=off,mem-path=%s",
        path);
    QTestState *qts = qtest_init(args);

    expect_error(
        qtest_qmp(qts,
                  "{'execute': 'device_add', 'arguments': {'driver': 'vkmt',"
                  " 'memdev': 'ap'}}"),
        "vkmt: memdev 'ap' maps its file private (share=off)");
    qtest_quit(qts);
    unlink(path);
}

/*
 * Finding 4: a memdev at offset= 1 MiB into a 3 MiB file. A discard punches
 * the allocation's own range of the file (reads zero through the BAR and in
 * the file) and leaves every byte outside the aperture as it was.
 */
static void test_memdev_offset(void)
{
    g_autofree char *path = fill_file(3 * MiB, 0x5a);
    g_autofree char *more = g_strdup_printf(
        "-object "
        "memory-backend-file,id=ap,size=1M,offset=1M,share=on,mem-path=%s",
        path);
    g_autofree uint8_t *buf = g_malloc(3 * MiB);
    Vkmt v;
    Drv d;
    uint32_t dev, h[1], r[1];
    uint64_t off;
    int fd;

    start_with(&v, "memdev=ap", more);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    create(&v, &d, dev, 1, 2 * PAGE, h);
    off = lock(&v, &d, dev, h[0]);
    memset(buf, 0x77, 2 * PAGE);
    qpci_memwrite(v.dev, v.ap, off, buf, 2 * PAGE);
    g_assert_cmphex(offer(&v, &d, dev, h, 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    qom_set_size(&v, "trim", 0);
    g_assert_cmphex(reclaim(&v, &d, dev, h, 1, r), ==, VKMT_ST_SUCCESS);
    g_assert_cmpuint(r[0], ==, VKMT_RECLAIM_DISCARDED);
    qpci_memread(v.dev, v.ap, off, buf, 2 * PAGE);
    g_assert_true(all_bytes(buf, 2 * PAGE, 0));
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, 3 * MiB, 0), ==, 3 * MiB);
    close(fd);
    g_assert_true(all_bytes(buf, MiB, 0x5a));
    g_assert_true(all_bytes(buf + MiB + off, 2 * PAGE, 0));
    g_assert_true(all_bytes(buf + 2 * MiB, MiB, 0x5a));
    stop(&v);
    unlink(path);
}

/*
 * Finding 5: the event log stops at event-log-size. Its last line says it
 * was cut, the file never passes the cap, and stats.evlog_dropped counts
 * every event left out.
 */
static void test_event_log_cap(void)
{
    g_autofree char *path =
        g_build_filename(g_get_tmp_dir(), "vkmt-events-XXXXXX", NULL);
    g_autofree char *props = NULL, *log = NULL;
    g_auto(GStrv) lines = NULL;
    int fd = g_mkstemp(path);
    uint64_t written = 0, events = 2; /* reset and claim */
    Vkmt v;
    Drv d;
    uint32_t dev, h[16], r[16];
    guint n;

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    props = g_strdup_printf("event-log=%s,event-log-size=4096", path);
    start(&v, props);
    bring_up(&v);
    d = claim(&v);
    dev = new_device(&v, &d);
    for (int round = 0; round < 4; round++) {
        create(&v, &d, dev, 16, PAGE, h);
        g_assert_cmphex(offer(&v, &d, dev, h, 16, VKMT_PRIO_LOW), ==,
                        VKMT_ST_SUCCESS);
        g_assert_cmphex(reclaim(&v, &d, dev, h, 16, r), ==, VKMT_ST_SUCCESS);
        events += 48;
    }
    g_assert_true(g_file_get_contents(path, &log, NULL, NULL));
    g_assert_cmpuint(strlen(log), <=, 4096);
    lines = g_strsplit(log, "\n", -1);
    n = g_strv_length(lines);
    g_assert_cmpuint(n, >=, 4);
    g_assert_cmpstr(lines[n - 1], ==, ""); /* ends with a newline */
    g_assert_true(g_str_has_prefix(lines[n - 2], "# cut at "));
    for (guint i = 2; i < n - 2; i++) {
        written++;
        g_assert_cmpuint(g_ascii_strtoull(strchr(lines[i], '\t') + 1, NULL, 10),
                         ==, written);
    }
    g_assert_cmpint(stats_get(&v, "evlog_dropped"), ==, events - written);
    stop(&v);
    unlink(path);
}

static void expect_error(QDict *resp, const char *needle)
{
    const char *desc;

    g_assert(qdict_haskey(resp, "error"));
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    if (!strstr(desc, needle)) {
        g_test_message("error '%s' does not say '%s'", desc, needle);
    }
    g_assert_nonnull(strstr(desc, needle));
    qobject_unref(resp);
}

/* device_add vkmt with one property; it must fail saying @needle. */
static void add_str(QTestState *qts, const char *key, const char *val,
                    const char *needle)
{
    expect_error(qtest_qmp(qts,
                           "{'execute': 'device_add', 'arguments': {'driver': "
                           "'vkmt', %s: %s}}",
                           key, val),
                 needle);
}

static void add_int(QTestState *qts, const char *key, int64_t val,
                    const char *needle)
{
    expect_error(qtest_qmp(qts,
                           "{'execute': 'device_add', 'arguments': {'driver': "
                           "'vkmt', %s: %" PRId64 "}}",
                           key, val),
                 needle);
}

static void test_bad_properties(void)
{
    QTestState *qts = qtest_init(BASE_ARGS "-machine pc");

    add_str(qts, "doorbell", "sideways", "inline, ioeventfd or iothread");
    add_str(qts, "doorbell", "iothread", "go together");
    add_int(qts, "queues", 0, "queues must be");
    add_int(qts, "queues", 65, "queues must be");
    add_int(qts, "aperture-size", 3000000, "power of two");
    add_str(
        qts, "backend", "gpu",
        "vkmt: backend=gpu is not available in this QEMU (available: " BACKENDS
        ")");
    add_str(qts, "event-log", "/nonexistent/vkmt-events",
            "event-log=/nonexistent/vkmt-events: "
            "cannot open: No such file or directory");
    add_str(qts, "event-log", "/dev/full",
            "event-log=/dev/full: cannot write: No space left on device");
    expect_error(
        qtest_qmp(qts,
                  "{'execute': 'device_add', 'arguments': {'driver': 'vkmt',"
                  " 'event-log': '/dev/null', 'event-log-size': 100}}"),
        "event-log-size=100 is below the minimum 4096");
    qtest_quit(qts);
}

/* ---- migration ---- */

/* The state of the last migration, in or out: "completed", "failed"... */
static char *migration_status(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-migrate'}");
    QDict *ret = qdict_get_qdict(resp, "return");
    char *status = g_strdup(
        qdict_haskey(ret, "status") ? qdict_get_str(ret, "status") : "none");

    qobject_unref(resp);
    return status;
}

/* Waits for the migration to end: true when it completed. */
static bool migration_wait(QTestState *qts)
{
    for (int tries = 0; tries < 6000; tries++) {
        g_autofree char *status = migration_status(qts);

        if (!strcmp(status, "completed")) {
            return true;
        }
        if (!strcmp(status, "failed")) {
            return false;
        }
        g_usleep(10000);
    }
    g_assert_not_reached();
}

static void migrate_to(Vkmt *v, const char *path)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    QDict *resp = qtest_qmp(
        v->qs->qts, "{'execute': 'migrate', 'arguments': {'uri': %s}}", uri);

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    g_assert_true(migration_wait(v->qs->qts));
}

/*
 * A destination started like @src with "-device vkmt,@props", loading the
 * stream in @path and staying alive when the load fails; true when it
 * loaded. The BARs keep the addresses the stream gives them.
 */
static bool start_incoming(Vkmt *v, const Vkmt *src, const char *props,
                           const char *path)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    QDict *resp;
    bool loaded;

    memset(v, 0, sizeof(*v));
    v->qs = qtest_pc_boot(BASE_ARGS "-device vkmt,id=vk,aperture-size=16M%s%s "
                                    "-incoming defer",
                          *props ? "," : "", props);
    resp = qtest_qmp(v->qs->qts,
                     "{'execute': 'migrate-incoming', 'arguments': "
                     "{'uri': %s, 'exit-on-error': false}}",
                     uri);
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    loaded = migration_wait(v->qs->qts);
    qpci_device_foreach(v->qs->pcibus, VKMT_PCI_VENDOR_ID, VKMT_PCI_DEVICE_ID,
                        found, &v->dev);
    g_assert(v->dev);
    v->regs = src->regs;
    v->ctrl = src->ctrl;
    v->ap = src->ap;
    return loaded;
}

/* Every statistic but the host's own timing is the same on both sides. */
static void stats_equal(Vkmt *a, Vkmt *b)
{
    QDict *ra = qom_get(a, "stats"), *rb = qom_get(b, "stats");
    QDict *sa = qdict_get_qdict(ra, "return"),
          *sb = qdict_get_qdict(rb, "return");

    g_assert_cmpuint(qdict_size(sa), ==, qdict_size(sb));
    for (const QDictEntry *e = qdict_first(sa); e; e = qdict_next(sa, e)) {
        if (strcmp(e->key, "longest_step_ns")) {
            g_assert_cmpint(qdict_get_int(sa, e->key), ==,
                            qdict_get_int(sb, e->key));
        }
    }
    qobject_unref(ra);
    qobject_unref(rb);
}

static void fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 12) * 29u);
    }
}

/* Bytes of the stream file at @path. */
static uint64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

#define MIG_ALLOC (1 * MiB)
#define MIG_N 6

static uint64_t keep_stream_bytes; /* /vkmt/migrate/keep's, for discard's */

/*
 * Migrate (to a file and back in) a device whose allocations are resident
 * (h0, h1), offered (h2, h3: half of those with content), discarded (h4) and
 * decommitted (h5), with a command noted by a deaf device and not yet run;
 * then check on the destination every statistic, the registers, every byte
 * of resident content and what each reclaim answers, and that the pending
 * command completes there.
 */
static void test_migrate(const void *data)
{
    const char *mode = data;
    bool discard = !strcmp(mode, "discard");
    g_autofree char *dir = g_dir_make_tmp("vkmt-qtest-XXXXXX", NULL);
    g_autofree char *path = g_strdup_printf("%s/stream", dir);
    g_autofree char *props = g_strdup_printf("migrate-offered=%s", mode);
    g_autofree uint8_t *buf = g_malloc(MIG_ALLOC);
    g_autofree uint8_t *back = g_malloc(MIG_ALLOC);
    static const uint32_t regs[] = {
        VKMT_REG(status),
        VKMT_REG(removal_epoch),
        VKMT_REG(config_generation),
        VKMT_REG(budget_lo),
        VKMT_REG(driver_features),
        VKMT_REG(isr_lo),
    };
    Vkmt src, dst;
    Drv d;
    uint32_t dev, h[MIG_N], r[MIG_N];
    struct vkmt_sqe pending = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct vkmt_cqe c;
    uint64_t bytes;

    start(&src, props);
    bring_up(&src);
    d = claim(&src);
    dev = new_device(&src, &d);
    create(&src, &d, dev, MIG_N, MIG_ALLOC, h);
    for (int i = 0; i < MIG_N; i++) {
        fill_pattern(buf, MIG_ALLOC, i + 1);
        qpci_memwrite(src.dev, src.ap, lock(&src, &d, dev, h[i]), buf,
                      MIG_ALLOC);
    }
    g_assert_cmphex(offer(&src, &d, dev, &h[4], 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmphex(offer_flags(&src, &d, dev, &h[5], 1, VKMT_PRIO_LOW,
                                VKMT_OFFER_F_ALLOW_DECOMMIT),
                    ==, VKMT_ST_SUCCESS);
    qom_set_size(&src, "trim", 0);
    g_assert_cmphex(offer(&src, &d, dev, &h[2], 1, VKMT_PRIO_NORMAL), ==,
                    VKMT_ST_SUCCESS);
    g_assert_cmphex(offer(&src, &d, dev, &h[3], 1, VKMT_PRIO_HIGH), ==,
                    VKMT_ST_SUCCESS);
    /* A queue budget, which the destination takes over too. */
    qtest_qmp_assert_success(src.qs->qts,
                             "{'execute': 'qom-set', 'arguments': {'path': "
                             "'/machine/peripheral/vk', 'property': "
                             "'queue-budget', 'value': '0:12M'}}");
    /* Injected faults in force, which the destination takes over. */
    qtest_qmp_assert_success(src.qs->qts,
                             "{'execute': 'qom-set', 'arguments': {'path': "
                             "'/machine/peripheral/vk', 'property': "
                             "'x-fault-commit', 'value': 'every:1000'}}");
    /* A command the device has noted and not run when the source stops. */
    qtest_qmp_assert_success(src.qs->qts,
                             "{'execute': 'qom-set', 'arguments': {'path': "
                             "'/machine/peripheral/vk', 'property': 'x-deaf',"
                             " 'value': true}}");
    post(&src, &d, &pending);

    migrate_to(&src, path);
    bytes = file_size(path);
    g_test_message("migrate-offered=%s: stream of %" PRIu64 " bytes (pc "
                   "machine, default RAM; 4 MiB of allocations with "
                   "content, half of it offered)",
                   mode, bytes);
    g_assert_true(start_incoming(&dst, &src, props, path));
    stats_equal(&src, &dst);
    g_assert_cmpint(stats_get(&dst, "offered_bytes"), ==,
                    discard ? 0 : 2 * MIG_ALLOC);
    g_assert_cmpint(stats_get(&dst, "committed_bytes"), ==,
                    (discard ? 2 : 4) * MIG_ALLOC);
    for (size_t i = 0; i < ARRAY_SIZE(regs); i++) {
        g_assert_cmphex(rd(&dst, regs[i]), ==, rd(&src, regs[i]));
    }
    {
        QDict *resp = qtest_qmp(dst.qs->qts,
                                "{'execute': 'qom-get', 'arguments': {'path': "
                                "'/machine/peripheral/vk', 'property': "
                                "'x-fault-commit'}}");

        g_assert_cmpstr(qdict_get_str(resp, "return"), ==, "every:1000");
        qobject_unref(resp);
    }
    {
        g_autofree char *budgets = queue_budgets(&dst);

        g_assert_cmpstr(budgets, ==, "0:12582912");
    }

    /* The noted command runs on the destination once it hears again. */
    qtest_qmp_assert_success(dst.qs->qts,
                             "{'execute': 'qom-set', 'arguments': {'path': "
                             "'/machine/peripheral/vk', 'property': 'x-deaf',"
                             " 'value': false}}");
    g_assert_true(reap(&dst, &d, &c));
    g_assert_cmpuint(c.cid, ==, d.cid);
    g_assert_cmphex(c.status, ==, VKMT_ST_SUCCESS);

    g_assert_cmphex(reclaim(&dst, &d, dev, h, MIG_N, r), ==, VKMT_ST_SUCCESS);
    for (int i = 0; i < MIG_N; i++) {
        uint32_t want =
            i < 2    ? VKMT_RECLAIM_OK
            : i < 4  ? (discard ? VKMT_RECLAIM_DISCARDED : VKMT_RECLAIM_OK)
            : i == 4 ? VKMT_RECLAIM_DISCARDED
                     : VKMT_RECLAIM_NOT_COMMITTED;

        g_assert_cmpuint(r[i], ==, want);
        if (i == MIG_N - 1) {
            break; /* decommitted: no range to read */
        }
        fill_pattern(buf, MIG_ALLOC, i + 1);
        if (want == VKMT_RECLAIM_DISCARDED) {
            memset(buf, 0, MIG_ALLOC);
        }
        qpci_memread(dst.dev, dst.ap, lock(&dst, &d, dev, h[i]), back,
                     MIG_ALLOC);
        g_assert(memcmp(back, buf, MIG_ALLOC) == 0);
    }
    g_assert_cmpint(stats_get(&dst, "reclaim_discarded"), ==, discard ? 3 : 1);
    g_assert_cmpint(stats_get(&dst, "allocations"), ==, MIG_N);

    if (discard) {
        /* Two offered MiB were not sent. */
        g_assert_cmpuint(keep_stream_bytes, >, 0);
        g_assert_cmpuint(bytes + 2 * MIG_ALLOC - 64 * KiB, <,
                         keep_stream_bytes);
    } else {
        keep_stream_bytes = bytes;
    }
    stop(&dst);
    stop(&src);
    unlink(path);
    rmdir(dir);
}

/* Offset of the engine snapshot in a stream: its magic "VKSN", the last. */
static size_t find_snapshot(const uint8_t *p, size_t len)
{
    for (size_t i = len - 4; i > 0; i--) {
        if (!memcmp(p + i, "VKSN", 4)) {
            return i;
        }
    }
    g_assert_not_reached();
}

/*
 * The engine snapshot's layout (hw-device/core/snapshot.c) with the default
 * 8 queues: 24 header bytes, 70 device, 65 injected faults, 41 statistics of
 * 8, 8 queues of 73, the slot count; then slot 1 (the device, 9 bytes) and
 * slot 2, the first allocation, whose state is its 10th byte and first page
 * its 21st.
 */
#define SNAP_SLOT2 (24 + 70 + 65 + 41 * 8 + 8 * 73 + 4 + 9)

/*
 * Truncated and corrupted streams: the destination refuses each load, says
 * why, and stays alive in a failed incoming state (exit-on-error off), with
 * the device as a fresh one.
 */
static void test_migrate_corrupt(void)
{
    g_autofree char *dir = g_dir_make_tmp("vkmt-qtest-XXXXXX", NULL);
    g_autofree char *path = g_strdup_printf("%s/stream", dir);
    g_autofree char *bad = g_strdup_printf("%s/bad", dir);
    g_autofree uint8_t *good = NULL;
    uint8_t page[PAGE];
    size_t len, snap;
    Vkmt src, dst;
    Drv d;
    uint32_t dev, h[2];
    enum {
        CUT,
        SHORT_BLOB,
        HUGE_LENGTH,
        MAGIC,
        VERSION,
        STATE,
        PAGE_OUT,
        FEATURES,
        CASES
    };

    start(&src, "");
    bring_up(&src);
    d = claim(&src);
    dev = new_device(&src, &d);
    create(&src, &d, dev, 2, PAGE, h);
    fill_pattern(page, PAGE, 9);
    qpci_memwrite(src.dev, src.ap, lock(&src, &d, dev, h[0]), page, PAGE);
    g_assert_cmphex(offer(&src, &d, dev, &h[1], 1, VKMT_PRIO_LOW), ==,
                    VKMT_ST_SUCCESS);
    migrate_to(&src, path);
    g_assert_true(g_file_get_contents(path, (char **)&good, &len, NULL));
    snap = find_snapshot(good, len);

    for (int i = 0; i < CASES; i++) {
        g_autofree uint8_t *p = g_memdup2(good, len);
        size_t n = len;
        const char *props = "";

        switch (i) {
        case CUT: /* the stream ends inside the device state */
            n = snap + 100;
            break;
        case SHORT_BLOB: { /* a well-formed stream, its blob's end cut off */
            size_t end = snap + ldl_be_p(p + snap - 4);

            stl_be_p(p + snap - 4, ldl_be_p(p + snap - 4) - 100);
            memmove(p + end - 100, p + end, len - end);
            n = len - 100;
            break;
        }
        case HUGE_LENGTH:
            stl_be_p(p + snap - 4, 0xfffffff0);
            break;
        case MAGIC:
            p[snap] ^= 0xff;
            break;
        case VERSION:
            p[snap + 4] = 9;
            break;
        case STATE:
            p[snap + SNAP_SLOT2 + 9] = 7;
            break;
        case PAGE_OUT:
            stl_le_p(p + snap + SNAP_SLOT2 + 20, 0xffff);
            break;
        case FEATURES: /* the stream is fine; the destination differs */
            props = "guest-trim=off";
            break;
        }
        g_assert_true(g_file_set_contents(bad, (char *)p, n, NULL));
        g_test_message("corrupt stream case %d (a refusal follows)", i);
        g_assert_false(start_incoming(&dst, &src, props, bad));
        g_assert_cmpint(stats_get(&dst, "allocations"), ==, 0);
        stop(&dst);
    }
    stop(&src);
    unlink(bad);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vkmt/identity", test_identity);
    qtest_add_func("/vkmt/claim-release", test_claim_release);
    qtest_add_func("/vkmt/lifecycle/inline", test_lifecycle_inline);
    qtest_add_func("/vkmt/lifecycle/ioeventfd", test_lifecycle_ioeventfd);
    qtest_add_func("/vkmt/lifecycle/iothread", test_lifecycle_iothread);
    qtest_add_func("/vkmt/memdev", test_memdev);
    qtest_add_func("/vkmt/decommit-returns-memory",
                   test_decommit_returns_memory);
#ifdef HAVE_VIRGL
    qtest_add_func("/vkmt/virgl", test_virgl);
    qtest_add_func("/vkmt/virgl-hotplug", test_virgl_hotplug);
#endif
    qtest_add_func("/vkmt/budget-over-qmp", test_budget_over_qmp);
    qtest_add_func("/vkmt/queue-budget-over-qmp", test_queue_budget_over_qmp);
    qtest_add_func("/vkmt/event-log", test_event_log);
    qtest_add_func("/vkmt/longest-step", test_longest_step);
    qtest_add_func("/vkmt/msix", test_msix);
    qtest_add_func("/vkmt/intx", test_intx);
    qtest_add_func("/vkmt/events", test_events);
    qtest_add_func("/vkmt/pressure-cgroup", test_pressure_cgroup);
    qtest_add_func("/vkmt/reset", test_reset);
    qtest_add_func("/vkmt/q35-root-port/sbr-by-msix/inline",
                   test_sbr_by_msix_inline);
    qtest_add_func("/vkmt/q35-root-port/sbr-by-msix/ioeventfd",
                   test_sbr_by_msix_ioeventfd);
    qtest_add_func("/vkmt/q35-root-port/power-off-by-msix/inline",
                   test_power_off_by_msix_inline);
    qtest_add_func("/vkmt/q35-root-port/power-off-by-msix/iothread",
                   test_power_off_by_msix_iothread);
    qtest_add_func("/vkmt/iothread/intx-follows-isr", test_intx_iothread);
    qtest_add_func("/vkmt/iothread/unplug-during-doorbells",
                   test_unplug_iothread);
    qtest_add_func("/vkmt/unplug-live/inline", test_unplug_live_inline);
    qtest_add_func("/vkmt/unplug-live/ioeventfd", test_unplug_live_ioeventfd);
    qtest_add_func("/vkmt/unplug-live/iothread", test_unplug_live_iothread);
    qtest_add_func("/vkmt/faults-over-qmp", test_faults_over_qmp);
    qtest_add_func("/vkmt/malformed", test_malformed);
    qtest_add_func("/vkmt/garbage-rings", test_garbage_rings);
    qtest_add_func("/vkmt/bad-properties", test_bad_properties);
    qtest_add_func("/vkmt/stray-writes", test_stray_writes);
    qtest_add_func("/vkmt/memdev-private", test_memdev_private);
    qtest_add_func("/vkmt/memdev-offset", test_memdev_offset);
    qtest_add_func("/vkmt/event-log-cap", test_event_log_cap);
    qtest_add_data_func("/vkmt/migrate/keep", "keep", test_migrate);
    qtest_add_data_func("/vkmt/migrate/discard", "discard", test_migrate);
    qtest_add_func("/vkmt/migrate/corrupt-streams", test_migrate_corrupt);
    return g_test_run();
}
