/* SPDX-License-Identifier: MIT */
/*
 * virglrenderer backend. The aperture is the staging view (a host-memory
 * backend underneath holds it), and each committed allocation also owns a GL
 * resource that virglrenderer creates and transfers in its own GL context
 * (its context 0: no 3D context is needed to create and transfer) on a
 * surfaceless EGL display: a buffer, or a 2D texture when the allocation has
 * a texture shape. Unlock copies the staging view into the resource; the next
 * lock copies the resource back, so what the guest reads after an unlock is
 * what the GPU holds. Discard unreferences the resource, which frees its GPU
 * memory, and punches the staging pages out like the memory backend.
 *
 * A GL context belongs to the thread that made it current, and virglrenderer
 * keeps process-global state, so one render thread owns every virglrenderer
 * call: the hooks queue a request and sleep until the thread completes it.
 * The per-allocation table is touched only by that thread.
 */
#ifndef _GNU_SOURCE /* QEMU defines it for every file */
#define _GNU_SOURCE
#endif
#include <epoxy/egl.h>
#include <epoxy/gl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <virglrenderer.h>

#include "backend_virgl.h"
#include "vkmt_proto.h"

/* virglrenderer.h only declares the transfer box; this is its layout. */
struct virgl_box {
    uint32_t x, y, z;
    uint32_t w, h, d;
};

/* The largest buffer virglrenderer can create (its width is 32 bits), in
 * whole pages. */
#define BUFFER_MAX ((uint64_t)UINT32_MAX / VKMT_PAGE_SIZE * VKMT_PAGE_SIZE)

/* Gallium values virglrenderer takes: targets and the formats vkmt names. */
#define TARGET_BUFFER 0u
#define TARGET_TEXTURE_2D 2u
#define FORMAT_B8G8R8A8_UNORM 1u
#define FORMAT_R8_UNORM 64u
#define FORMAT_R8G8B8A8_UNORM 67u

/* The Gallium format of VKMT_FORMAT_* @format; the engine passes known ones only. */
static uint32_t gallium_format(uint32_t format)
{
    switch (format) {
    case VKMT_FORMAT_B8G8R8A8_UNORM:
        return FORMAT_B8G8R8A8_UNORM;
    case VKMT_FORMAT_R8G8B8A8_UNORM:
        return FORMAT_R8G8B8A8_UNORM;
    default:
        return FORMAT_R8_UNORM;
    }
}

enum req_op {
    REQ_COMMIT,
    REQ_DISCARD,
    REQ_LOCK,
    REQ_UNLOCK,
    REQ_INFO,
    REQ_ALIVE,
    REQ_HANDLE,
    REQ_STOP,
};

struct req {
    enum req_op op;
    uint32_t id; /* allocation id, or a resource handle for REQ_ALIVE */
    uint64_t off;
    uint64_t len;
    const struct vkmt_shape *shape; /* REQ_COMMIT: NULL for a buffer */
    void *out;                      /* REQ_INFO */
    uint32_t value;                 /* REQ_HANDLE: the answer */
    int result;
    bool done;
    struct req *next;
};

/* What stands behind one allocation id. */
struct vres {
    uint32_t handle; /* virglrenderer resource, 0: none */
    uint32_t locks;  /* nesting: only the outermost lock/unlock transfers */
    uint32_t bytes;  /* its size */
    uint32_t stride; /* a texture's row pitch and size (at most 16384); 0 for a buffer */
    uint16_t width;
    uint16_t height;
    bool gpu_newer; /* the resource was written since the staging view was */
};

struct backend_virgl {
    struct vkmt_backend b;
    struct vkmt_backend *staging; /* host-memory backend holding the aperture */

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* the render thread waits for requests */
    pthread_cond_t done; /* callers wait for their request */
    struct req *head, *tail;

    /* Render thread only. */
    struct vres *res; /* indexed by allocation id */
    uint32_t cap;
    uint32_t next_handle;
    struct vkmt_virgl_info info;
    char *err; /* the creator's message buffer, during start-up */
    size_t errlen;
};

/* virglrenderer is process-global: one backend at a time. */
static atomic_bool virgl_taken;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- render thread ---- */

static void write_fence(void *cookie, uint32_t fence)
{
    /* No fences are created: every transfer completes before it returns. */
    (void)cookie;
    (void)fence;
}

static struct virgl_renderer_callbacks callbacks = {
    .version = 1,
    .write_fence = write_fence,
};

static struct vres *slot(struct backend_virgl *v, uint32_t id)
{
    if (id >= v->cap) {
        uint32_t cap = v->cap ? v->cap : 64;
        struct vres *grown;

        while (cap <= id) {
            cap *= 2;
        }
        grown = realloc(v->res, (size_t)cap * sizeof(*grown));
        if (!grown) {
            return NULL;
        }
        memset(grown + v->cap, 0, (size_t)(cap - v->cap) * sizeof(*grown));
        v->res = grown;
        v->cap = cap;
    }
    return &v->res[id];
}

static void release(struct backend_virgl *v, struct vres *r)
{
    if (r->handle) {
        virgl_renderer_resource_unref(r->handle);
        v->info.resources--;
        v->info.resource_bytes -= r->bytes;
        v->info.textures -= r->width != 0;
        v->info.destroys++;
    }
    memset(r, 0, sizeof(*r));
}

/* Handles are never reused while the backend lives, so a stale one can only
 * miss, never hit a newer resource. */
static uint32_t new_handle(struct backend_virgl *v)
{
    if (++v->next_handle == 0) {
        v->next_handle = 1;
    }
    return v->next_handle;
}

static int do_commit(struct backend_virgl *v, struct req *q)
{
    struct virgl_renderer_resource_create_args args = {
        .target = TARGET_BUFFER,
        .format = FORMAT_R8_UNORM,
        /* A vertex buffer is a real GL buffer object; VIRGL_RES_BIND_CUSTOM
         * would be plain host memory inside virglrenderer. */
        .bind = VIRGL_RES_BIND_VERTEX_BUFFER,
        .width = (uint32_t)q->len,
        .height = 1,
        .depth = 1,
        .array_size = 1,
    };
    const struct vkmt_shape *t = q->shape;
    struct vres *r;
    int err;

    if (q->len == 0 || q->len > UINT32_MAX) {
        return -EFBIG; /* a buffer's width is 32 bits */
    }
    if (t && (t->format >= VKMT_FORMAT_COUNT || t->width == 0 || t->height == 0 ||
              t->width > VKMT_TEXTURE_MAX_DIM || t->height > VKMT_TEXTURE_MAX_DIM ||
              (uint64_t)t->stride * t->height > q->len)) {
        return -EINVAL; /* the engine never passes one; a direct caller might */
    }
    if (!(r = slot(v, q->id))) {
        return -ENOMEM;
    }
    release(v, r); /* the engine never commits twice; stay leak-free if it did */
    if (t) {
        /* Sampled and rendered to, as a guest's texture would be. */
        args.target = TARGET_TEXTURE_2D;
        args.format = gallium_format(t->format);
        args.bind = VIRGL_RES_BIND_SAMPLER_VIEW | VIRGL_RES_BIND_RENDER_TARGET;
        args.width = t->width;
        args.height = t->height;
    }
    args.handle = new_handle(v);
    /* GL reports running out of memory only through glGetError: clear what
     * earlier calls left, so that what is read after is this create's. */
    while (glGetError() != GL_NO_ERROR) {
    }
    err = virgl_renderer_resource_create(&args, NULL, 0);
    if (err) {
        return err > 0 ? -err : err;
    }
    if (glGetError() == GL_OUT_OF_MEMORY) {
        virgl_renderer_resource_unref(args.handle);
        return -ENOMEM;
    }
    /* A marker virglrenderer forgets with the resource (handle_alive). */
    virgl_renderer_resource_set_priv(args.handle, v);
    r->handle = args.handle;
    r->bytes = (uint32_t)q->len;
    r->width = t ? (uint16_t)t->width : 0;
    r->height = t ? (uint16_t)t->height : 0;
    r->stride = t ? t->stride : 0;
    /* Its bytes are undefined until the first unlock writes the whole
     * staging view, which reads as zeros; until then the staging view is
     * the content and lock does not read the resource. */
    r->gpu_newer = false;
    v->info.resources++;
    v->info.resource_bytes += q->len;
    v->info.textures += t != NULL;
    v->info.creates++;
    return 0;
}

static int transfer(struct backend_virgl *v, struct req *q, bool to_gpu)
{
    struct vres *r = q->id < v->cap ? &v->res[q->id] : NULL;
    struct virgl_box box = { .w = (uint32_t)q->len, .h = 1, .d = 1 };
    struct iovec iov = { .iov_base = v->b.base + q->off, .iov_len = q->len };
    uint32_t stride = 0;
    int err;

    if (!r || !r->handle) {
        return -ENOENT; /* its commit failed: the engine has marked the device failed */
    }
    if (r->width) {
        /* The whole texture; its packed rows are the start of the range. */
        box.w = r->width;
        box.h = r->height;
        stride = r->stride;
        iov.iov_len = (size_t)stride * r->height;
    }
    if (to_gpu) {
        err = virgl_renderer_transfer_write_iov(r->handle, 0, 0, stride, 0, &box, 0, &iov, 1);
        v->info.writes += err == 0;
    } else {
        err = virgl_renderer_transfer_read_iov(r->handle, 0, 0, stride, 0, &box, 0, &iov, 1);
        v->info.reads += err == 0;
    }
    return err > 0 ? -err : err;
}

static int do_lock(struct backend_virgl *v, struct req *q)
{
    struct vres *r = q->id < v->cap ? &v->res[q->id] : NULL;
    int err;

    if (!r || !r->handle) {
        return -ENOENT;
    }
    if (r->locks == 0 && r->gpu_newer) {
        if ((err = transfer(v, q, false)) < 0) {
            return err;
        }
        r->gpu_newer = false;
    }
    r->locks++;
    return 0;
}

static int do_unlock(struct backend_virgl *v, struct req *q)
{
    struct vres *r = q->id < v->cap ? &v->res[q->id] : NULL;
    int err;

    if (!r || !r->handle || r->locks == 0) {
        return -ENOENT;
    }
    if (r->locks == 1) {
        if ((err = transfer(v, q, true)) < 0) {
            return err;
        }
        r->gpu_newer = true;
    }
    r->locks--;
    return 0;
}

static int do_discard(struct backend_virgl *v, struct req *q)
{
    if (q->id < v->cap) {
        release(v, &v->res[q->id]);
    }
    /* The staging pages go back to the host too, and read as zeros. */
    return v->staging->ops->discard(v->staging, q->id, q->off, q->len);
}

static int execute(struct backend_virgl *v, struct req *q)
{
    switch (q->op) {
    case REQ_COMMIT:
        return do_commit(v, q);
    case REQ_DISCARD:
        return do_discard(v, q);
    case REQ_LOCK:
        return do_lock(v, q);
    case REQ_UNLOCK:
        return do_unlock(v, q);
    case REQ_INFO:
        memcpy(q->out, &v->info, sizeof(v->info));
        return 0;
    case REQ_ALIVE:
        return virgl_renderer_resource_get_priv(q->id) == v;
    case REQ_HANDLE:
        q->value = q->id < v->cap ? v->res[q->id].handle : 0;
        return 0;
    case REQ_STOP:
        break;
    }
    return 0;
}

/* virglrenderer logs its GL version on every start; its lines reach stderr
 * only when VKMT_VIRGL_DEBUG is set. QEMU's build asks GCC to suggest format
 * attributes, but virglrenderer's callback type has none to match one. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsuggest-attribute=format"
#endif
static void virgl_log(const char *fmt, va_list ap)
{
    if (getenv("VKMT_VIRGL_DEBUG")) {
        fputs("virglrenderer: ", stderr);
        vfprintf(stderr, fmt, ap);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/*
 * Whether a surfaceless EGL display comes up. virglrenderer 0.10 crashes
 * instead of failing when it does not, so this is checked first, through
 * libepoxy, which also survives a missing libEGL.
 */
static int egl_probe(struct backend_virgl *v)
{
    EGLDisplay dpy;

    if (!epoxy_has_egl()) {
        set_err(v->err, v->errlen, "no EGL library can be loaded (install libegl1)");
        return -ENODEV;
    }
    if (!epoxy_has_egl_extension(EGL_NO_DISPLAY, "EGL_EXT_platform_base") ||
        !epoxy_has_egl_extension(EGL_NO_DISPLAY, "EGL_MESA_platform_surfaceless")) {
        set_err(v->err, v->errlen,
                "EGL offers no surfaceless platform (install Mesa's libegl-mesa0)");
        return -ENODEV;
    }
    dpy = eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
    if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, NULL, NULL)) {
        set_err(v->err, v->errlen,
                "the surfaceless EGL display does not initialise (EGL error 0x%x; "
                "install Mesa's libgl1-mesa-dri)",
                (unsigned)eglGetError());
        return -ENODEV;
    }
    /* Left initialised: the display is process-wide, so terminating it here
     * would pull it from under another virglrenderer user; virglrenderer
     * opens it again and terminates it at cleanup. */
    return 0;
}

/*
 * The memory the GL driver says the GPU has for buffers, in bytes, which
 * device creation takes as the default budget; 0 when the driver exposes
 * neither memory-info extension (Mesa's llvmpipe exposes neither).
 * GL_NVX_gpu_memory_info: the dedicated memory available in total;
 * GL_ATI_meminfo: the free memory of the buffer-object pool.
 */
static uint64_t gl_memory(void)
{
    GLint kib[4] = { 0 };

    if (epoxy_has_gl_extension("GL_NVX_gpu_memory_info")) {
        glGetIntegerv(GL_GPU_MEMORY_INFO_TOTAL_AVAILABLE_MEMORY_NVX, kib);
    } else if (epoxy_has_gl_extension("GL_ATI_meminfo")) {
        glGetIntegerv(GL_VBO_FREE_MEMORY_ATI, kib);
    }
    return kib[0] > 0 ? (uint64_t)kib[0] * 1024 : 0;
}

/* The widest and tallest 2D texture GL can create here, within the
 * protocol's own limit. */
static uint32_t max_texture_dim(void)
{
    GLint dim = 0;

    glGetIntegerv(GL_MAX_TEXTURE_SIZE, &dim);
    if (dim <= 0) {
        return 1024; /* what GL 3.0 promises at least */
    }
    return (uint32_t)dim < VKMT_TEXTURE_MAX_DIM ? (uint32_t)dim : VKMT_TEXTURE_MAX_DIM;
}

/* Bring virglrenderer up on this thread; 0 or a negative errno. */
static int render_init(struct backend_virgl *v)
{
    const char *name;
    int err = egl_probe(v);

    if (err < 0) {
        return err;
    }
    virgl_set_debug_callback(virgl_log);
    err =
        virgl_renderer_init(v, VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_USE_SURFACELESS, &callbacks);
    if (err == -EBUSY) {
        set_err(v->err, v->errlen,
                "virglrenderer is already in use in this process (by virtio-gpu-gl?); "
                "it has one user per process");
        return -EBUSY;
    }
    if (err) {
        set_err(v->err, v->errlen,
                "virglrenderer does not initialise on the surfaceless EGL display (%d)", err);
        return -ENODEV;
    }
    /* virglrenderer left its GL context current on this thread. */
    name = (const char *)glGetString(GL_RENDERER);
    snprintf(v->info.renderer, sizeof(v->info.renderer), "%s", name ? name : "unknown");
    v->info.gl_memory = gl_memory();
    v->b.max_texture_dim = max_texture_dim();
    return 0;
}

static void *render_thread(void *opaque)
{
    struct backend_virgl *v = opaque;
    int err = render_init(v);
    struct req *q;
    bool stop = false;

    pthread_mutex_lock(&v->mu);
    /* The creator waits on the start-up request at the head of the queue. */
    v->head->result = err;
    v->head->done = true;
    v->head = v->tail = NULL;
    pthread_cond_broadcast(&v->done);
    if (err) {
        pthread_mutex_unlock(&v->mu);
        return NULL;
    }
    while (!stop) {
        while (!v->head) {
            pthread_cond_wait(&v->work, &v->mu);
        }
        q = v->head;
        v->head = q->next;
        if (!v->head) {
            v->tail = NULL;
        }
        pthread_mutex_unlock(&v->mu);
        stop = q->op == REQ_STOP;
        q->result = execute(v, q);
        pthread_mutex_lock(&v->mu);
        q->done = true;
        pthread_cond_broadcast(&v->done);
    }
    pthread_mutex_unlock(&v->mu);
    for (uint32_t id = 0; id < v->cap; id++) {
        if (v->res[id].handle) {
            virgl_renderer_resource_unref(v->res[id].handle);
        }
    }
    free(v->res);
    virgl_renderer_cleanup(v);
    return NULL;
}

/* ---- the hooks: run on the engine's thread ---- */

/* Queue @q for the render thread and wait for its result. */
static int call(struct backend_virgl *v, struct req *q)
{
    pthread_mutex_lock(&v->mu);
    q->next = NULL;
    q->done = false;
    if (v->tail) {
        v->tail->next = q;
    } else {
        v->head = q;
    }
    v->tail = q;
    pthread_cond_signal(&v->work);
    while (!q->done) {
        pthread_cond_wait(&v->done, &v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    return q->result;
}

static int range_call(struct vkmt_backend *b, enum req_op op, uint32_t id, uint64_t off,
                      uint64_t len, const struct vkmt_shape *shape)
{
    struct req q = { .op = op, .id = id, .off = off, .len = len, .shape = shape };

    if (off > b->size || len > b->size - off) {
        return -ERANGE;
    }
    return call((struct backend_virgl *)b, &q);
}

static int virgl_commit(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len,
                        const struct vkmt_shape *shape)
{
    return range_call(b, REQ_COMMIT, id, off, len, shape);
}

static int virgl_discard(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    return range_call(b, REQ_DISCARD, id, off, len, NULL);
}

/* Free space is staging only: no GPU resource stands behind it. */
static int virgl_scrub(struct vkmt_backend *b, uint64_t off, uint64_t len)
{
    struct backend_virgl *v = (struct backend_virgl *)b;

    return v->staging->ops->scrub(v->staging, off, len);
}

static int virgl_lock(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    return range_call(b, REQ_LOCK, id, off, len, NULL);
}

static int virgl_unlock(struct vkmt_backend *b, uint32_t id, uint64_t off, uint64_t len)
{
    return range_call(b, REQ_UNLOCK, id, off, len, NULL);
}

static void free_backend(struct backend_virgl *v)
{
    pthread_cond_destroy(&v->done);
    pthread_cond_destroy(&v->work);
    pthread_mutex_destroy(&v->mu);
    vkmt_backend_destroy(v->staging);
    free(v);
    atomic_store(&virgl_taken, false);
}

static void virgl_destroy(struct vkmt_backend *b)
{
    struct backend_virgl *v = (struct backend_virgl *)b;
    struct req q = { .op = REQ_STOP };

    call(v, &q);
    pthread_join(v->thread, NULL);
    free_backend(v);
}

static const struct vkmt_backend_ops virgl_ops = {
    .name = "virgl",
    .commit = virgl_commit,
    .discard = virgl_discard,
    .scrub = virgl_scrub,
    .lock = virgl_lock,
    .unlock = virgl_unlock,
    .destroy = virgl_destroy,
};

int vkmt_backend_virgl_create(uint64_t size, int fd, void *base, struct vkmt_backend **out,
                              char *err, size_t errlen)
{
    struct req start = { 0 };
    struct backend_virgl *v;
    bool expected = false;
    int ret;

    set_err(err, errlen, "%s", "");
    if (!atomic_compare_exchange_strong(&virgl_taken, &expected, true)) {
        set_err(err, errlen,
                "another virgl backend is live in this process (virglrenderer is process-global)");
        return -EBUSY;
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        atomic_store(&virgl_taken, false);
        return -ENOMEM;
    }
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->work, NULL);
    pthread_cond_init(&v->done, NULL);
    ret = vkmt_backend_mem_create(size, fd, base, &v->staging);
    if (ret < 0) {
        set_err(err, errlen, "cannot set up the %llu-byte staging aperture: %s",
                (unsigned long long)size, strerror(-ret));
        free_backend(v);
        return ret;
    }
    v->b.ops = &virgl_ops;
    v->b.base = v->staging->base;
    v->b.size = v->staging->size;
    v->b.fd = v->staging->fd;
    /* A GL buffer's width is 32 bits; the engine rounds sizes up to pages. */
    v->b.max_alloc = v->b.size < BUFFER_MAX ? v->b.size : BUFFER_MAX;
    v->err = err;
    v->errlen = errlen;
    /* The thread answers this request once virglrenderer is up (or not). */
    v->head = v->tail = &start;
    ret = pthread_create(&v->thread, NULL, render_thread, v);
    if (ret) {
        set_err(err, errlen, "cannot start the render thread: %s", strerror(ret));
        free_backend(v);
        return -ret;
    }
    pthread_mutex_lock(&v->mu);
    while (!start.done) {
        pthread_cond_wait(&v->done, &v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    v->err = NULL;
    v->errlen = 0;
    if (start.result < 0) {
        pthread_join(v->thread, NULL);
        free_backend(v);
        return start.result;
    }
    *out = &v->b;
    return 0;
}

static struct backend_virgl *as_virgl(struct vkmt_backend *b)
{
    return b && b->ops == &virgl_ops ? (struct backend_virgl *)b : NULL;
}

int vkmt_backend_virgl_info(struct vkmt_backend *b, struct vkmt_virgl_info *out)
{
    struct backend_virgl *v = as_virgl(b);
    struct req q = { .op = REQ_INFO, .out = out };

    return v ? call(v, &q) : -EINVAL;
}

uint64_t vkmt_backend_virgl_budget(struct vkmt_backend *b, uint64_t budget)
{
    struct vkmt_virgl_info info;

    if (budget || vkmt_backend_virgl_info(b, &info) < 0) {
        return budget;
    }
    return info.gl_memory;
}

uint32_t vkmt_backend_virgl_handle(struct vkmt_backend *b, uint32_t id)
{
    struct backend_virgl *v = as_virgl(b);
    struct req q = { .op = REQ_HANDLE, .id = id };

    if (!v) {
        return 0;
    }
    call(v, &q);
    return q.value;
}

int vkmt_backend_virgl_handle_alive(struct vkmt_backend *b, uint32_t handle)
{
    struct backend_virgl *v = as_virgl(b);
    struct req q = { .op = REQ_ALIVE, .id = handle };

    return v && handle ? call(v, &q) : 0;
}
