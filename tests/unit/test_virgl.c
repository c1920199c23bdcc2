/* SPDX-License-Identifier: MIT */
/*
 * Tests of the virglrenderer backend on Mesa's software renderer, so no GPU
 * is needed. First its hooks, driven the way the engine drives them (commit
 * at create and reclaim, lock and unlock, discard at eviction and destroy);
 * then the whole device through the D3DKMT calls over the loopback transport
 * with VKMT_LOOPBACK_BACKEND=virgl, watching the backend's counters through
 * the loopback library. They check that content really travels through the
 * GPU resource, that a discard makes virglrenderer forget the resource, and
 * that the process-global renderer is refused twice and fails cleanly
 * without EGL.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <virglrenderer.h>

#include "backend_virgl.h"
#include "conformance/conf.h"
#include "harness.h"
#include "vkmt_proto.h"

#define PAGE VKMT_PAGE_SIZE
#define APERTURE (4u << 20)

static struct vkmt_backend *open_backend(void)
{
    struct vkmt_backend *b = NULL;
    char err[256];
    int ret = vkmt_backend_virgl_create(APERTURE, -1, NULL, &b, err, sizeof(err));

    if (ret < 0) {
        harness_fail(__FILE__, __LINE__, "virgl backend: %s (%d)", err, ret);
        return NULL;
    }
    return b;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 7u + seed);
    }
}

static int same(const uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != (uint8_t)(i * 7u + seed)) {
            return 0;
        }
    }
    return 1;
}

static int zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i]) {
            return 0;
        }
    }
    return 1;
}

static struct vkmt_virgl_info info(struct vkmt_backend *b)
{
    struct vkmt_virgl_info in = { 0 };

    CHECK_EQ(vkmt_backend_virgl_info(b, &in), 0);
    return in;
}

/* In a child: true when creation fails with @want and a reason, no crash. */
static int fails_in_child(void (*setup)(void), int want)
{
    pid_t pid;
    int status = 0;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct vkmt_backend *b = NULL;
        char err[256];
        int ret;

        setup();
        ret = vkmt_backend_virgl_create(APERTURE, -1, NULL, &b, err, sizeof(err));
        printf("# refused as expected: %s (%d)\n", err, ret);
        fflush(stdout);
        _exit(ret == want && err[0] && !b ? 0 : 1);
    }
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

static void hide_egl(void)
{
    setenv("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/vkmt-no-egl.json", 1);
}

static void foreign_fence(void *cookie, uint32_t fence)
{
    (void)cookie;
    (void)fence;
}

static void quiet(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

/* Another virglrenderer user in the process, as virtio-gpu-gl would be. */
static void start_foreign_user(void)
{
    static struct virgl_renderer_callbacks cbs = { .version = 1, .write_fence = foreign_fence };
    static int cookie;

    virgl_set_debug_callback(quiet);
    if (virgl_renderer_init(&cookie, VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_USE_SURFACELESS,
                            &cbs)) {
        _exit(2);
    }
}

/* These two run first, each in a child, before this process touches EGL. */
static void no_egl_is_an_error_not_a_crash(void)
{
    CHECK(fails_in_child(hide_egl, -ENODEV));
}

static void another_virglrenderer_user_is_refused(void)
{
    CHECK(fails_in_child(start_foreign_user, -EBUSY));
}

static void runs_on_a_gl_renderer(void)
{
    struct vkmt_backend *b = open_backend();
    struct vkmt_virgl_info in;

    if (!b) {
        return;
    }
    in = info(b);
    printf("# GL renderer: %s\n", in.renderer);
    CHECK(in.renderer[0] != '\0');
    CHECK(strcmp(b->ops->name, "virgl") == 0);
    CHECK_EQ(in.resources, 0);
    vkmt_backend_destroy(b);
}

/* A configured budget wins; else the GL driver's memory. Mesa's llvmpipe
 * exposes neither memory-info extension, so there the answer must be 0 (the
 * engine's default); other drivers' figures have no second source here. A
 * memory backend keeps its budget. */
static void the_budget_comes_from_the_gl_driver(void)
{
    struct vkmt_backend *b = open_backend(), *mem = NULL;
    struct vkmt_virgl_info in;

    if (!b) {
        return;
    }
    in = info(b);
    printf("# GL memory reported: %llu bytes\n", (unsigned long long)in.gl_memory);
    CHECK_EQ(vkmt_backend_virgl_budget(b, 12345), 12345);
    if (strstr(in.renderer, "llvmpipe")) {
        CHECK_EQ(vkmt_backend_virgl_budget(b, 0), 0);
    }
    vkmt_backend_destroy(b);
    CHECK_EQ(vkmt_backend_mem_create(16 * PAGE, -1, NULL, &mem), 0);
    CHECK_EQ(vkmt_backend_virgl_budget(mem, 0), 0);
    vkmt_backend_destroy(mem);
}

static void content_round_trips_through_the_resource(void)
{
    struct vkmt_backend *b = open_backend();
    const uint64_t off = 3 * PAGE, len = 5 * PAGE;
    uint8_t *view;

    if (!b) {
        return;
    }
    view = b->base + off;
    CHECK_EQ(b->ops->commit(b, 7, off, len, NULL), 0);
    CHECK_EQ(info(b).resources, 1);
    CHECK_EQ(info(b).resource_bytes, len);
    CHECK_EQ(b->ops->lock(b, 7, off, len), 0);
    CHECK(zero(view, len));
    CHECK_EQ(info(b).reads, 0); /* nothing newer on the GPU yet */
    fill(view, len, 1);
    CHECK_EQ(b->ops->unlock(b, 7, off, len), 0);
    CHECK_EQ(info(b).writes, 1);
    /* Behind the engine's back: only the resource still has the content. */
    memset(view, 0xa5, len);
    CHECK_EQ(b->ops->lock(b, 7, off, len), 0);
    CHECK_EQ(info(b).reads, 1);
    CHECK(same(view, len, 1));
    CHECK_EQ(b->ops->unlock(b, 7, off, len), 0);
    CHECK_EQ(b->ops->discard(b, 7, off, len), 0);
    vkmt_backend_destroy(b);
}

/*
 * A texture allocation: rows packed at bpp * width in the view, a 2D texture
 * resource behind it. Odd widths make rows that are not 4-byte multiples
 * (R8) or pitches that are not powers of two, so a transfer that ignored the
 * stride would scramble the rows.
 */
static void texture_round_trip(uint32_t format, uint32_t w, uint32_t h)
{
    struct vkmt_backend *b = open_backend();
    struct vkmt_shape shape = {
        .format = format, .width = w, .height = h, .stride = vkmt_format_bpp(format) * w
    };
    const uint64_t bytes = (uint64_t)shape.stride * h, off = 2 * PAGE;
    const uint64_t len = (bytes + PAGE - 1) / PAGE * PAGE;
    uint8_t *view;

    if (!b) {
        return;
    }
    view = b->base + off;
    CHECK_EQ(b->ops->commit(b, 3, off, len, &shape), 0);
    CHECK_EQ(info(b).resources, 1);
    CHECK_EQ(info(b).textures, 1);
    CHECK_EQ(b->ops->lock(b, 3, off, len), 0);
    fill(view, bytes, format);
    CHECK_EQ(b->ops->unlock(b, 3, off, len), 0);
    CHECK_EQ(info(b).writes, 1);
    memset(view, 0x5a, len); /* only the texture keeps the content */
    CHECK_EQ(b->ops->lock(b, 3, off, len), 0);
    CHECK_EQ(info(b).reads, 1);
    CHECK(same(view, bytes, format));
    CHECK_EQ(b->ops->unlock(b, 3, off, len), 0);
    /* Discard destroys the texture; a recommit creates another, reading zeros. */
    CHECK_EQ(b->ops->discard(b, 3, off, len), 0);
    CHECK_EQ(info(b).resources, 0);
    CHECK_EQ(info(b).textures, 0);
    CHECK_EQ(b->ops->commit(b, 3, off, len, &shape), 0);
    CHECK_EQ(info(b).textures, 1);
    CHECK_EQ(b->ops->lock(b, 3, off, len), 0);
    CHECK(zero(view, len));
    fill(view, bytes, format + 1);
    CHECK_EQ(b->ops->unlock(b, 3, off, len), 0);
    memset(view, 0x5a, len);
    CHECK_EQ(b->ops->lock(b, 3, off, len), 0);
    CHECK(same(view, bytes, format + 1));
    CHECK_EQ(b->ops->unlock(b, 3, off, len), 0);
    vkmt_backend_destroy(b);
}

static void texture_content_round_trips_bgra(void)
{
    texture_round_trip(VKMT_FORMAT_B8G8R8A8_UNORM, 61, 37);
}

static void texture_content_round_trips_rgba(void)
{
    texture_round_trip(VKMT_FORMAT_R8G8B8A8_UNORM, 127, 64);
}

static void texture_content_round_trips_r8(void)
{
    texture_round_trip(VKMT_FORMAT_R8_UNORM, 33, 17);
}

static void only_the_outermost_lock_transfers(void)
{
    struct vkmt_backend *b = open_backend();
    uint8_t *view;

    if (!b) {
        return;
    }
    view = b->base;
    CHECK_EQ(b->ops->commit(b, 1, 0, PAGE, NULL), 0);
    CHECK_EQ(b->ops->lock(b, 1, 0, PAGE), 0);
    CHECK_EQ(b->ops->lock(b, 1, 0, PAGE), 0);
    fill(view, PAGE, 2);
    CHECK_EQ(b->ops->unlock(b, 1, 0, PAGE), 0);
    CHECK_EQ(info(b).writes, 0);
    CHECK_EQ(b->ops->unlock(b, 1, 0, PAGE), 0);
    CHECK_EQ(info(b).writes, 1);
    CHECK_EQ(b->ops->unlock(b, 1, 0, PAGE), -ENOENT); /* not locked */
    vkmt_backend_destroy(b);                          /* with the resource still live */
}

static uint64_t blocks(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks : UINT64_MAX;
}

/* What eviction does to an offered allocation, then what reclaim does. */
static void discard_frees_the_resource_and_recommit_reads_zero(void)
{
    struct vkmt_backend *b = open_backend();
    const uint64_t len = 64 * PAGE;
    uint32_t h1, h2;
    uint64_t before;

    if (!b) {
        return;
    }
    CHECK_EQ(b->ops->commit(b, 1, 0, len, NULL), 0);
    CHECK_EQ(b->ops->commit(b, 2, len, len, NULL), 0);
    h1 = vkmt_backend_virgl_handle(b, 1);
    CHECK(h1 != 0);
    CHECK_EQ(vkmt_backend_virgl_handle_alive(b, h1), 1);
    CHECK_EQ(b->ops->lock(b, 1, 0, len), 0);
    fill(b->base, len, 3);
    CHECK_EQ(b->ops->unlock(b, 1, 0, len), 0);
    before = blocks(b->fd);

    CHECK_EQ(b->ops->discard(b, 1, 0, len), 0);
    CHECK_EQ(vkmt_backend_virgl_handle_alive(b, h1), 0); /* virglrenderer let it go */
    CHECK_EQ(vkmt_backend_virgl_handle(b, 1), 0);
    CHECK_EQ(info(b).resources, 1);
    CHECK_EQ(info(b).resource_bytes, len);
    CHECK_EQ(info(b).destroys, 1);
    CHECK(blocks(b->fd) + len / 512 <= before); /* the staging pages went back too */
    CHECK(zero(b->base, len));

    CHECK_EQ(b->ops->commit(b, 1, 0, len, NULL), 0);
    h2 = vkmt_backend_virgl_handle(b, 1);
    CHECK(h2 != 0 && h2 != h1); /* a stale handle never names the new one */
    CHECK_EQ(b->ops->lock(b, 1, 0, len), 0);
    CHECK(zero(b->base, len));
    CHECK_EQ(b->ops->unlock(b, 1, 0, len), 0);
    memset(b->base, 0x5a, len);
    CHECK_EQ(b->ops->lock(b, 1, 0, len), 0);
    CHECK(zero(b->base, len)); /* the recreated resource holds zeros */
    CHECK_EQ(b->ops->unlock(b, 1, 0, len), 0);
    CHECK_EQ(info(b).resources, 2);
    CHECK_EQ(info(b).creates, 3);
    vkmt_backend_destroy(b);
}

static void hooks_check_ranges_and_state(void)
{
    struct vkmt_backend *b = open_backend();

    if (!b) {
        return;
    }
    CHECK_EQ(b->ops->commit(b, 1, APERTURE - PAGE, 2 * PAGE, NULL), -ERANGE);
    CHECK_EQ(b->ops->commit(b, 1, APERTURE + PAGE, PAGE, NULL), -ERANGE);
    CHECK_EQ(b->ops->lock(b, 9, 0, PAGE), -ENOENT);        /* never committed */
    CHECK_EQ(b->ops->unlock(b, 100000, 0, PAGE), -ENOENT); /* beyond the table */
    CHECK_EQ(b->ops->discard(b, 9, 0, PAGE), 0);           /* nothing to free */
    CHECK_EQ(info(b).resources, 0);
    vkmt_backend_destroy(b);
}

/* As QEMU gives it: its own RAM block's mapping and file, which it keeps. */
static void stages_in_the_callers_aperture(void)
{
    struct vkmt_backend *b = NULL;
    int fd = memfd_create("test-aperture", MFD_CLOEXEC);
    uint8_t *base = MAP_FAILED;
    char err[256];

    CHECK(fd >= 0 && ftruncate(fd, APERTURE) == 0);
    if (fd >= 0) {
        base = mmap(NULL, APERTURE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    CHECK(base != MAP_FAILED);
    if (base == MAP_FAILED) {
        return;
    }
    CHECK_EQ(vkmt_backend_virgl_create(APERTURE + 1, fd, base, &b, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "staging aperture") != NULL);
    CHECK_EQ(vkmt_backend_virgl_create(APERTURE, fd, base, &b, err, sizeof(err)), 0);
    if (b) {
        CHECK(b->base == base && b->fd == fd);
        CHECK_EQ(b->ops->commit(b, 1, PAGE, PAGE, NULL), 0);
        CHECK_EQ(b->ops->lock(b, 1, PAGE, PAGE), 0);
        fill(base + PAGE, PAGE, 8);
        CHECK_EQ(b->ops->unlock(b, 1, PAGE, PAGE), 0);
        memset(base + PAGE, 0, PAGE);
        CHECK_EQ(b->ops->lock(b, 1, PAGE, PAGE), 0);
        CHECK(same(base + PAGE, PAGE, 8));
        CHECK_EQ(b->ops->unlock(b, 1, PAGE, PAGE), 0);
        vkmt_backend_destroy(b);
    }
    base[0] = 1; /* still the caller's */
    munmap(base, APERTURE);
    close(fd);
}

static void a_second_backend_is_refused(void)
{
    struct vkmt_backend *b = open_backend(), *b2 = NULL, *mem = NULL;
    struct vkmt_virgl_info in;
    char err[256];

    if (!b) {
        return;
    }
    CHECK_EQ(vkmt_backend_virgl_create(APERTURE, -1, NULL, &b2, err, sizeof(err)), -EBUSY);
    CHECK(b2 == NULL);
    CHECK(strstr(err, "process") != NULL);
    CHECK_EQ(vkmt_backend_mem_create(APERTURE, -1, NULL, &mem), 0);
    CHECK_EQ(vkmt_backend_virgl_info(mem, &in), -EINVAL);
    vkmt_backend_destroy(mem);
    vkmt_backend_destroy(b);
    /* Once the first is gone, the renderer comes up again. */
    b = open_backend();
    vkmt_backend_destroy(b);
}

/* ---- the device over loopback ---- */

/*
 * Open the loopback device on the virgl backend; @get is then the loopback
 * library's view of its counters. The suite runner sets VKMT_TRANSPORT and
 * VKMT_LOOPBACK_LIB; the backend is chosen here, before the first open.
 */
static int open_device(struct conf *c, int (**get)(struct vkmt_virgl_info *))
{
    const char *lib = getenv("VKMT_LOOPBACK_LIB");
    void *dl;

    setenv("VKMT_LOOPBACK_BACKEND", "virgl", 1);
    if (!lib || !conf_open(c)) {
        harness_fail(__FILE__, __LINE__, "no loopback device (VKMT_LOOPBACK_LIB %s)",
                     lib ? lib : "unset: run through tests/run-suites.sh");
        return 0;
    }
    /* The library libvkmt loaded: RTLD_NOLOAD finds that one instance. */
    dl = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    *get =
        dl ? (int (*)(struct vkmt_virgl_info *))dlsym(dl, VKMT_LOOPBACK_VIRGL_INFO_SYMBOL) : NULL;
    if (dl) {
        dlclose(dl); /* libvkmt keeps its own reference */
    }
    if (!*get) {
        harness_fail(__FILE__, __LINE__, "%s has no %s", lib, VKMT_LOOPBACK_VIRGL_INFO_SYMBOL);
        conf_close(c);
        return 0;
    }
    return 1;
}

static struct vkmt_virgl_info device_info(int (*get)(struct vkmt_virgl_info *))
{
    struct vkmt_virgl_info in = { 0 };

    CHECK_EQ(get(&in), 0);
    return in;
}

static void device_content_round_trips_through_the_resource(void)
{
    int (*get)(struct vkmt_virgl_info *);
    unsigned char *p = NULL, *again = NULL;
    struct conf c;
    D3DKMT_HANDLE h;

    if (!open_device(&c, &get)) {
        return;
    }
    CHECK_ST(conf_create(&c, 1, 65536, &h), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).resources, 1);
    CHECK_ST(conf_lock(&c, h, &p), STATUS_SUCCESS);
    if (p) {
        fill(p, 65536, 4);
    }
    CHECK_ST(conf_unlock(&c, h), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).writes, 1);
    /* The staging view stays mapped: scribble on it without a lock. */
    if (p) {
        memset(p, 0x3c, 65536);
    }
    CHECK_ST(conf_lock(&c, h, &again), STATUS_SUCCESS);
    CHECK(again == p);
    CHECK(again && same(again, 65536, 4));
    CHECK_EQ(device_info(get).reads, 1);
    CHECK_ST(conf_unlock(&c, h), STATUS_SUCCESS);
    CHECK_ST(conf_destroy(&c, 1, &h), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).resources, 0);
    conf_close(&c);
}

static void device_eviction_frees_the_resource_and_reclaim_recreates_it(void)
{
    int (*get)(struct vkmt_virgl_info *);
    D3DDDI_RECLAIM_RESULT r[2];
    struct vkmt_virgl_info in;
    D3DKMT_HANDLE h[2];
    struct conf c;

    if (!open_device(&c, &get)) {
        return;
    }
    CHECK_ST(conf_create(&c, 2, 65536, h), STATUS_SUCCESS);
    conf_fill(&c, h[0], 65536, 5);
    conf_fill(&c, h[1], 65536, 6);
    CHECK_ST(conf_offer(&c, h, 2, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    in = device_info(get);
    CHECK_EQ(in.resources, 2); /* offered, not discarded yet */
    CHECK_ST(vkmt_trim(c.adapter, 65536, NULL), STATUS_SUCCESS);
    in = device_info(get);
    CHECK_EQ(in.resources, 1); /* the oldest offer lost its GPU memory */
    CHECK_EQ(in.resource_bytes, 65536);
    CHECK_EQ(in.destroys, 1);
    CHECK_ST(conf_reclaim2(&c, h, 2, r), STATUS_SUCCESS);
    CHECK_EQ(r[0], D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(r[1], D3DDDI_RECLAIM_RESULT_OK);
    CHECK_EQ(device_info(get).resources, 2);
    CHECK_EQ(device_info(get).creates, 3);
    CHECK_EQ(conf_content(&c, h[0], 65536, 5), 0); /* recreated: zeros */
    CHECK_EQ(conf_content(&c, h[1], 65536, 6), 1); /* through the GPU and back */
    conf_close(&c);                                /* the last close destroys the device */
    CHECK_EQ(get(&in), -ENODEV);
}

/* CreateAllocation2 of one texture (@w 0: a buffer of @h bytes) on @c's device. */
static NTSTATUS create_texture(struct conf *c, UINT format, UINT w, UINT h, D3DKMT_HANDLE *out)
{
    VKMT_ALLOCATION_DESC d = { .Size = w ? VKMT_TEXTURE_SIZE(format, w, h) : h,
                               .Flags = w ? VKMT_ALLOC_TEXTURE(format) : 0,
                               .Dims = w ? VKMT_TEXTURE_DIMS(w, h) : 0 };
    D3DDDI_ALLOCATIONINFO2 info = { .pPrivateDriverData = &d, .PrivateDriverDataSize = sizeof(d) };
    D3DKMT_CREATEALLOCATION ca = { .hDevice = c->dev,
                                   .NumAllocations = 1,
                                   .pAllocationInfo2 = &info };
    NTSTATUS st = D3DKMTCreateAllocation2(&ca);

    *out = info.hAllocation;
    return st;
}

/* A texture allocation through D3DKMT calls: a 2D texture resource holds its
 * content; a trim destroys it and the reclaim creates another. */
static void device_texture_is_a_gpu_texture(void)
{
    int (*get)(struct vkmt_virgl_info *);
    D3DKMT_HANDLE t;
    const size_t bytes = 4 * 100 * 75;
    unsigned char *p = NULL;
    D3DDDI_RECLAIM_RESULT r;
    struct conf c;

    if (!open_device(&c, &get)) {
        return;
    }
    CHECK_ST(create_texture(&c, VKMT_TEXFMT_R8G8B8A8_UNORM, 100, 75, &t), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).textures, 1);
    conf_fill(&c, t, bytes, 7);
    CHECK_ST(conf_lock(&c, t, &p), STATUS_SUCCESS);
    CHECK_ST(conf_unlock(&c, t), STATUS_SUCCESS);
    if (p) {
        memset(p, 0x3c, bytes); /* the view, behind the device's back */
    }
    CHECK_EQ(conf_content(&c, t, bytes, 7), 1);
    CHECK_ST(conf_offer(&c, &t, 1, D3DKMT_OFFER_PRIORITY_LOW, 0), STATUS_SUCCESS);
    CHECK_ST(vkmt_trim(c.adapter, bytes, NULL), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).textures, 0);
    CHECK_ST(conf_reclaim2(&c, &t, 1, &r), STATUS_SUCCESS);
    CHECK_EQ(r, D3DDDI_RECLAIM_RESULT_DISCARDED);
    CHECK_EQ(device_info(get).textures, 1);
    CHECK_EQ(conf_content(&c, t, bytes, 7), 0);
    conf_fill(&c, t, bytes, 8);
    CHECK_EQ(conf_content(&c, t, bytes, 8), 1);
    conf_close(&c);
}

/* A device that does not offer VKMT_F_TEXTURES: libvkmt refuses texture
 * descriptors itself, and buffers work as before. */
static void device_without_textures_refuses_them(void)
{
    int (*get)(struct vkmt_virgl_info *);
    D3DKMT_HANDLE h;
    struct conf c;

    setenv("VKMT_LOOPBACK", "features=3", 1); /* GUEST_TRIM | RESOURCES */
    if (!open_device(&c, &get)) {
        unsetenv("VKMT_LOOPBACK");
        return;
    }
    CHECK(!vkmt_textures_supported(c.adapter));
    CHECK_ST(create_texture(&c, VKMT_TEXFMT_R8_UNORM, 64, 64, &h), STATUS_INVALID_PARAMETER);
    CHECK_EQ(device_info(get).creates, 0); /* refused before the device saw it */
    CHECK_ST(create_texture(&c, 0, 0, 64 * 64, &h), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).textures, 0);
    conf_close(&c);
    unsetenv("VKMT_LOOPBACK");
}

/*
 * Backend limits: a GL buffer's width is 32 bits, so with an 8 GiB
 * aperture an allocation over 4 GiB is protocol-valid but more than the
 * backend can ever hold. The backend says so in its limits (the max_alloc
 * register), the device refuses that one command with INVALID_PARAMETER,
 * and stays healthy for the next.
 */
static void an_allocation_the_gpu_cannot_hold_fails_only_that_command(void)
{
    int (*get)(struct vkmt_virgl_info *);
    D3DKMT_HANDLE h;
    struct conf c;

    setenv("VKMT_LOOPBACK", "aperture=8G,budget=8G", 1);
    if (!open_device(&c, &get)) {
        unsetenv("VKMT_LOOPBACK");
        return;
    }
    CHECK_ST(conf_create(&c, 1, (4ull << 30) + PAGE, &h), STATUS_INVALID_PARAMETER);
    CHECK_EQ(device_info(get).creates, 0);
    CHECK_ST(conf_create(&c, 1, 65536, &h), STATUS_SUCCESS);
    CHECK_EQ(device_info(get).resources, 1);
    conf_close(&c);
    unsetenv("VKMT_LOOPBACK");
}

static void the_limits_are_what_gl_can_hold(void)
{
    struct vkmt_backend *b = NULL;
    char err[256];

    CHECK_EQ(vkmt_backend_virgl_create(8ull << 30, -1, NULL, &b, err, sizeof(err)), 0);
    if (!b) {
        return;
    }
    CHECK_EQ(b->max_alloc, (uint64_t)UINT32_MAX / PAGE * PAGE);
    CHECK(b->max_texture_dim >= 1024 && b->max_texture_dim <= VKMT_TEXTURE_MAX_DIM);
    vkmt_backend_destroy(b);
}

static const struct test tests[] = {
    TEST(no_egl_is_an_error_not_a_crash),
    TEST(another_virglrenderer_user_is_refused),
    TEST(runs_on_a_gl_renderer),
    TEST(the_budget_comes_from_the_gl_driver),
    TEST(content_round_trips_through_the_resource),
    TEST(texture_content_round_trips_bgra),
    TEST(texture_content_round_trips_rgba),
    TEST(texture_content_round_trips_r8),
    TEST(only_the_outermost_lock_transfers),
    TEST(discard_frees_the_resource_and_recommit_reads_zero),
    TEST(hooks_check_ranges_and_state),
    TEST(stages_in_the_callers_aperture),
    TEST(a_second_backend_is_refused),
    TEST(device_content_round_trips_through_the_resource),
    TEST(device_eviction_frees_the_resource_and_reclaim_recreates_it),
    TEST(device_texture_is_a_gpu_texture),
    TEST(device_without_textures_refuses_them),
    TEST(the_limits_are_what_gl_can_hold),
    TEST(an_allocation_the_gpu_cannot_hold_fails_only_that_command),
};

int main(void)
{
    return harness_run("test_virgl", tests, sizeof(tests) / sizeof(tests[0]));
}
