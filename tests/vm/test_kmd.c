/* SPDX-License-Identifier: MIT */
/*
 * Runs inside the test VM with the guest kernel driver loaded (kmd-load):
 * its user interface through raw ioctls (guest-kmd/uapi/vkmt_kmd.h). Each
 * open file has its own queue; commands are forwarded; mapping follows the
 * file's LOCKs; closing or dying releases everything; an unprivileged user
 * can use the device but not reset it; the BARs are the driver's alone; the
 * module unloads only when no file is open. The last test unloads and loads
 * the module again.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vkmt_kmd.h"
#include "vkmt_proto.h"

#define NODE VKMT_KMD_NODE_PREFIX "0"
#define ALLOC_SIZE (64u << 10)

static int open_node(void)
{
    int fd = open(NODE, O_RDWR | O_CLOEXEC);

    CHECK(fd >= 0);
    return fd;
}

/* SUBMIT of @n commands: 0 or -errno. */
static int submit(int fd, struct vkmt_kmd_cmd *c, uint32_t n)
{
    struct vkmt_kmd_submit s = { .cmds = (uintptr_t)c, .count = n };

    return ioctl(fd, VKMT_KMD_IOC_SUBMIT, &s) == 0 ? 0 : -errno;
}

/* RUN of one command: 0 or -errno. */
static int run_one(int fd, struct vkmt_kmd_cmd *c)
{
    return ioctl(fd, VKMT_KMD_IOC_RUN, c) == 0 ? 0 : -errno;
}

/* One command; the ioctl must succeed; returns the completion's status. */
static uint32_t run(int fd, struct vkmt_kmd_cmd *c)
{
    CHECK_EQ(run_one(fd, c), 0);
    return c->status;
}

static struct vkmt_kmd_cmd op(uint8_t opcode, uint32_t handle, uint32_t arg0)
{
    struct vkmt_kmd_cmd c;
    struct vkmt_sqe *s = (struct vkmt_sqe *)c.sqe;

    memset(&c, 0, sizeof(c));
    s->opcode = opcode;
    s->handle = handle;
    s->arg0 = arg0;
    return c;
}

/* @c with an input array of @count elements of @size bytes and, when
 * @results, a u32 result per element. */
static void with_payload(struct vkmt_kmd_cmd *c, const void *payload, uint32_t count, uint32_t size,
                         uint32_t *results)
{
    struct vkmt_sqe *s = (struct vkmt_sqe *)c->sqe;

    s->count = count;
    s->payload_len = count * size;
    c->payload = (uintptr_t)payload;
    if (results) {
        s->result_len = count * 4;
        c->results = (uintptr_t)results;
    }
}

static uint32_t create_device(int fd)
{
    struct vkmt_kmd_cmd c = op(VKMT_OP_CREATE_DEVICE, 0, 0);

    CHECK_EQ(run(fd, &c), VKMT_ST_SUCCESS);
    return (uint32_t)c.value0;
}

static void create_allocs(int fd, uint32_t dev, uint32_t *handles, uint32_t n)
{
    struct vkmt_alloc_desc desc[16];
    struct vkmt_kmd_cmd c = op(VKMT_OP_CREATE_ALLOCATIONS, dev, 0);

    memset(desc, 0, sizeof(desc));
    for (uint32_t i = 0; i < n; i++) {
        desc[i].size = ALLOC_SIZE;
    }
    with_payload(&c, desc, n, sizeof(desc[0]), handles);
    CHECK_EQ(run(fd, &c), VKMT_ST_SUCCESS);
}

/* LOCK: the aperture range in @off and @size; returns the status. */
static uint32_t lock(int fd, uint32_t dev, uint32_t alloc, uint64_t *off, uint64_t *size)
{
    struct vkmt_kmd_cmd c = op(VKMT_OP_LOCK, dev, alloc);
    uint32_t st = run(fd, &c);

    *off = c.value0;
    *size = c.value1;
    return st;
}

static uint32_t simple(int fd, uint8_t opcode, uint32_t handle, uint32_t arg0)
{
    struct vkmt_kmd_cmd c = op(opcode, handle, arg0);

    return run(fd, &c);
}

static uint32_t destroy_alloc(int fd, uint32_t dev, uint32_t alloc)
{
    struct vkmt_kmd_cmd c = op(VKMT_OP_DESTROY_ALLOCATIONS, dev, 0);

    with_payload(&c, &alloc, 1, sizeof(alloc), NULL);
    return run(fd, &c);
}

/* Live allocations of the whole device (QUERY_STATS), once any release in
 * progress has finished (the device may tear down in steps). */
static uint64_t live_allocations(int fd, uint64_t expect)
{
    struct vkmt_wire_stats st;

    for (int tries = 0; tries < 100; tries++) {
        struct vkmt_kmd_cmd c = op(VKMT_OP_QUERY_STATS, 0, 0);

        ((struct vkmt_sqe *)c.sqe)->result_len = sizeof(st);
        c.results = (uintptr_t)&st;
        memset(&st, 0xff, sizeof(st));
        CHECK_EQ(run(fd, &c), VKMT_ST_SUCCESS);
        if (st.allocations == expect) {
            break;
        }
        usleep(20000);
    }
    return st.allocations;
}

static void *map(int fd, uint64_t off, uint64_t size, int flags)
{
    return mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, (off_t)off);
}

/* Whether touching @p kills a child with SIGSEGV or SIGBUS. */
static int access_faults(volatile uint8_t *p)
{
    int status = 0;
    pid_t child = fork();

    if (child == 0) {
        (void)p[0];
        _exit(0);
    }
    CHECK_EQ(waitpid(child, &status, 0), child);
    return WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

static void info_is_sane(void)
{
    struct vkmt_kmd_info info;
    int fd = open_node();

    memset(&info, 0xff, sizeof(info));
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_INFO, &info), 0);
    CHECK_EQ(info.version, VKMT_KMD_VERSION);
    CHECK_EQ(info.features & ~VKMT_F_KNOWN, 0);
    CHECK(info.aperture_size > 0 && info.aperture_size % 4096 == 0);
    CHECK(info.max_alloc > 0 && info.max_alloc <= info.aperture_size);
    CHECK(info.queue < VKMT_MAX_QUEUES);
    CHECK(info.max_batch >= 1 && info.max_batch <= VKMT_MAX_BATCH);
    CHECK_EQ(info.staging_size, VKMT_STAGING_SIZE);
    CHECK(info.max_texture_dim >= 1 && info.max_texture_dim <= VKMT_TEXTURE_MAX_DIM);
    CHECK_EQ(info.reserved, 0);
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_NOP), 0);
    CHECK_EQ(ioctl(fd, _IO('V', 0x7f)), -1);
    CHECK_EQ(errno, ENOTTY);
    close(fd);
}

/* Whether the driver's sysfs list holds "@queue @pid ..." */
static int sysfs_lists(unsigned queue, int pid)
{
    FILE *f = fopen("/sys/class/vkmt/vkmt0/queues", "r");
    unsigned q;
    int p, found = 0;
    char comm[64];

    if (!f) {
        return -1;
    }
    while (fscanf(f, "%u %d %63s", &q, &p, comm) == 3) {
        found |= q == queue && p == pid;
    }
    fclose(f);
    return found;
}

/* /sys/class/vkmt/vkmt0/queues names each open file's queue and process,
 * and forgets a file once it is closed. */
static void sysfs_names_each_queue_and_its_process(void)
{
    struct vkmt_kmd_info a, b;
    int fa = open_node(), fb = open_node();

    CHECK_EQ(ioctl(fa, VKMT_KMD_IOC_INFO, &a), 0);
    CHECK_EQ(ioctl(fb, VKMT_KMD_IOC_INFO, &b), 0);
    CHECK(a.queue != b.queue);
    CHECK_EQ(sysfs_lists(a.queue, getpid()), 1);
    CHECK_EQ(sysfs_lists(b.queue, getpid()), 1);
    close(fb);
    CHECK_EQ(sysfs_lists(a.queue, getpid()), 1);
    CHECK_EQ(sysfs_lists(b.queue, getpid()), 0);
    close(fa);
    CHECK_EQ(sysfs_lists(a.queue, getpid()), 0);
}

static void several_commands_in_one_submit(void)
{
    struct vkmt_kmd_cmd c[3] = { op(VKMT_OP_CREATE_DEVICE, 0, 0),
                                 op(VKMT_OP_QUERY_MEMORY, 0, VKMT_SEGMENT_LOCAL),
                                 op(VKMT_OP_DESTROY_DEVICE, 0xdead, 0) };
    int fd = open_node();

    CHECK_EQ(submit(fd, c, 3), 0);
    CHECK_EQ(c[0].status, VKMT_ST_SUCCESS);
    CHECK(c[0].value0 != 0);
    CHECK_EQ(c[1].status, VKMT_ST_SUCCESS);
    CHECK(c[1].value0 > 0); /* the budget */
    CHECK_EQ(c[2].status, VKMT_ST_INVALID_PARAMETER);
    /* SUBMIT of one and RUN answer alike. */
    c[1].status = 0;
    CHECK_EQ(submit(fd, &c[1], 1), 0);
    CHECK_EQ(c[1].status, VKMT_ST_SUCCESS);
    c[2].status = 0;
    CHECK_EQ(run_one(fd, &c[2]), 0);
    CHECK_EQ(c[2].status, VKMT_ST_INVALID_PARAMETER);
    close(fd);
}

static void lock_map_write_read_unlock(void)
{
    int fd = open_node();
    uint32_t dev = create_device(fd), alloc = 0;
    uint64_t off = 0, size = 0;
    uint8_t *p, *q;

    create_allocs(fd, dev, &alloc, 1);
    CHECK_EQ(lock(fd, dev, alloc, &off, &size), VKMT_ST_SUCCESS);
    CHECK_EQ(size, ALLOC_SIZE);
    CHECK_EQ(off % 4096, 0);
    p = map(fd, off, size, MAP_SHARED);
    CHECK(p != MAP_FAILED);
    if (p != MAP_FAILED) {
        CHECK_EQ(p[0], 0); /* new allocations read as zeros */
        for (uint64_t i = 0; i < size; i++) {
            p[i] = (uint8_t)(i * 7 + 1);
        }
        /* A second mapping of the same range sees the same bytes. */
        q = map(fd, off, size, MAP_SHARED);
        CHECK(q != MAP_FAILED);
        if (q != MAP_FAILED) {
            CHECK_EQ(memcmp(p, q, size), 0);
            CHECK_EQ(q[size - 1], (uint8_t)((size - 1) * 7 + 1));
            munmap(q, size);
        }
        CHECK(!access_faults(p));
    }
    /* A private mapping would copy device memory on write: refused. */
    CHECK(map(fd, off, size, MAP_PRIVATE) == MAP_FAILED);
    CHECK_EQ(errno, EINVAL);
    /* Past the allocation's end: refused. */
    CHECK(map(fd, off, size + 4096, MAP_SHARED) == MAP_FAILED);
    CHECK_EQ(errno, EACCES);

    CHECK_EQ(simple(fd, VKMT_OP_UNLOCK, dev, alloc), VKMT_ST_SUCCESS);
    if (p != MAP_FAILED) {
        CHECK(access_faults(p)); /* the UNLOCK took the mapping away */
        munmap(p, size);
    }
    CHECK(map(fd, off, size, MAP_SHARED) == MAP_FAILED);
    CHECK_EQ(errno, EACCES);

    /* Locked again: mappable again, the content kept. */
    CHECK_EQ(lock(fd, dev, alloc, &off, &size), VKMT_ST_SUCCESS);
    p = map(fd, off, size, MAP_SHARED);
    CHECK(p != MAP_FAILED);
    if (p != MAP_FAILED) {
        CHECK_EQ(p[1], 8);
        munmap(p, size);
    }
    CHECK_EQ(simple(fd, VKMT_OP_UNLOCK, dev, alloc), VKMT_ST_SUCCESS);
    CHECK_EQ(destroy_alloc(fd, dev, alloc), VKMT_ST_SUCCESS);
    CHECK_EQ(simple(fd, VKMT_OP_DESTROY_DEVICE, dev, 0), VKMT_ST_SUCCESS);
    close(fd);
}

static void nested_locks_keep_the_mapping_until_the_last_unlock(void)
{
    int fd = open_node();
    uint32_t dev = create_device(fd), alloc = 0;
    uint64_t off = 0, size = 0;
    uint8_t *p;

    create_allocs(fd, dev, &alloc, 1);
    CHECK_EQ(lock(fd, dev, alloc, &off, &size), VKMT_ST_SUCCESS);
    if (lock(fd, dev, alloc, &off, &size) != VKMT_ST_SUCCESS) {
        harness_skip("the device does not nest LOCKs");
        close(fd);
        return;
    }
    p = map(fd, off, size, MAP_SHARED);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(simple(fd, VKMT_OP_UNLOCK, dev, alloc), VKMT_ST_SUCCESS);
    if (p != MAP_FAILED) {
        CHECK(!access_faults(p));
    }
    CHECK_EQ(simple(fd, VKMT_OP_UNLOCK, dev, alloc), VKMT_ST_SUCCESS);
    if (p != MAP_FAILED) {
        CHECK(access_faults(p));
        munmap(p, size);
    }
    close(fd);
}

static void destroy_takes_the_mapping_away(void)
{
    int fd = open_node();
    uint32_t dev = create_device(fd), alloc[2] = { 0 };
    uint64_t off = 0, size = 0, off1 = 0, size1 = 0;
    uint8_t *p, *p1;

    create_allocs(fd, dev, alloc, 2);
    CHECK_EQ(lock(fd, dev, alloc[0], &off, &size), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(fd, dev, alloc[1], &off1, &size1), VKMT_ST_SUCCESS);
    p = map(fd, off, size, MAP_SHARED);
    p1 = map(fd, off1, size1, MAP_SHARED);
    CHECK(p != MAP_FAILED && p1 != MAP_FAILED);
    if (p == MAP_FAILED || p1 == MAP_FAILED) {
        close(fd);
        return;
    }
    p[0] = 1;
    p1[0] = 2;
    /* Destroying one allocation leaves the other's mapping alone. */
    destroy_alloc(fd, dev, alloc[0]);
    CHECK(access_faults(p));
    CHECK(!access_faults(p1));
    CHECK_EQ(p1[0], 2);
    /* Destroying the device takes every mapping of it. */
    simple(fd, VKMT_OP_DESTROY_DEVICE, dev, 0);
    CHECK(access_faults(p1));
    munmap(p, size);
    munmap(p1, size1);
    close(fd);
}

/* A DESTROY the device refuses (a bad handle in the batch) changes nothing,
 * the locked allocation's mapping included. */
static void a_refused_destroy_keeps_the_mapping(void)
{
    int fd = open_node();
    uint32_t dev = create_device(fd), alloc = 0, batch[2];
    uint64_t off = 0, size = 0;
    struct vkmt_kmd_cmd c;
    uint8_t *p;

    create_allocs(fd, dev, &alloc, 1);
    CHECK_EQ(lock(fd, dev, alloc, &off, &size), VKMT_ST_SUCCESS);
    p = map(fd, off, size, MAP_SHARED);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED) {
        close(fd);
        return;
    }
    p[0] = 7;
    batch[0] = alloc;
    batch[1] = 0xdead;
    c = op(VKMT_OP_DESTROY_ALLOCATIONS, dev, 0);
    with_payload(&c, batch, 2, sizeof(batch[0]), NULL);
    CHECK_EQ(run(fd, &c), VKMT_ST_INVALID_PARAMETER);
    CHECK(!access_faults(p));
    CHECK_EQ(p[0], 7);
    /* And one that succeeds takes it away. */
    destroy_alloc(fd, dev, alloc);
    CHECK(access_faults(p));
    munmap(p, size);
    close(fd);
}

static void mmap_without_lock_is_refused(void)
{
    int fd = open_node();
    uint32_t dev = create_device(fd), alloc = 0;
    void *p;

    create_allocs(fd, dev, &alloc, 1);
    /* Nothing LOCKed: no aperture byte is mappable. */
    p = map(fd, 0, 4096, MAP_SHARED);
    CHECK(p == MAP_FAILED);
    CHECK_EQ(errno, EACCES);
    close(fd);
}

static void bad_pointers_are_efault(void)
{
    int fd = open_node();
    uint32_t dev = create_device(fd);
    struct vkmt_alloc_desc desc = { .size = ALLOC_SIZE };
    uint32_t handle;
    struct vkmt_kmd_cmd c = op(VKMT_OP_CREATE_ALLOCATIONS, dev, 0);
    struct vkmt_kmd_submit s = { .cmds = 16, .count = 1 };

    with_payload(&c, (void *)16, 1, sizeof(desc), &handle);
    CHECK_EQ(submit(fd, &c, 1), -EFAULT);
    CHECK_EQ(run_one(fd, &c), -EFAULT);
    with_payload(&c, &desc, 1, sizeof(desc), (uint32_t *)16);
    CHECK_EQ(run_one(fd, &c), -EFAULT); /* results it could not write back */
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_RUN, (void *)16), -1);
    CHECK_EQ(errno, EFAULT);
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_SUBMIT, &s), -1);
    CHECK_EQ(errno, EFAULT);
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_SUBMIT, (void *)16), -1);
    CHECK_EQ(errno, EFAULT);
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_INFO, (void *)16), -1);
    CHECK_EQ(errno, EFAULT);
    /* The file still works. */
    c = op(VKMT_OP_CREATE_ALLOCATIONS, dev, 0);
    with_payload(&c, &desc, 1, sizeof(desc), &handle);
    CHECK_EQ(run(fd, &c), VKMT_ST_SUCCESS);
    close(fd);
}

static void malformed_requests_are_einval(void)
{
    int fd = open_node();
    struct vkmt_kmd_cmd c[VKMT_KMD_MAX_CMDS + 1];
    struct vkmt_kmd_submit s = { .cmds = (uintptr_t)c, .count = 1, .flags = 1 };
    uint32_t buf[4] = { 0 };

    for (unsigned i = 0; i <= VKMT_KMD_MAX_CMDS; i++) {
        c[i] = op(VKMT_OP_QUERY_MEMORY, 0, 0);
    }
    CHECK_EQ(submit(fd, c, 0), -EINVAL);
    CHECK_EQ(submit(fd, c, VKMT_KMD_MAX_CMDS + 1), -EINVAL);
    CHECK_EQ(ioctl(fd, VKMT_KMD_IOC_SUBMIT, &s), -1);
    CHECK_EQ(errno, EINVAL);
    c[0].reserved = 1;
    CHECK_EQ(submit(fd, c, 1), -EINVAL);
    CHECK_EQ(run_one(fd, c), -EINVAL);
    c[0] = op(VKMT_OP_QUERY_MEMORY, 0, 0);
    ((struct vkmt_sqe *)c[0].sqe)->payload_len = VKMT_STAGING_SIZE + 4;
    c[0].payload = (uintptr_t)buf;
    CHECK_EQ(submit(fd, c, 1), -EINVAL); /* does not fit staging */
    c[0] = op(VKMT_OP_QUERY_MEMORY, 0, 0);
    ((struct vkmt_sqe *)c[0].sqe)->payload_len = VKMT_STAGING_SIZE - 64;
    ((struct vkmt_sqe *)c[0].sqe)->result_len = 128;
    c[0].payload = (uintptr_t)buf;
    c[0].results = (uintptr_t)buf;
    CHECK_EQ(submit(fd, c, 1), -EINVAL); /* payload and results together do not */
    c[0] = op(VKMT_OP_QUERY_MEMORY, 0, 0);
    ((struct vkmt_sqe *)c[0].sqe)->payload_len = 4; /* a length without a pointer */
    CHECK_EQ(submit(fd, c, 1), -EINVAL);
    c[0] = op(VKMT_OP_QUERY_MEMORY, 0, 0);
    c[0].results = (uintptr_t)buf; /* a pointer without a length */
    CHECK_EQ(submit(fd, c, 1), -EINVAL);
    /* A malformed command anywhere in the array: none of them runs. */
    c[0] = op(VKMT_OP_CREATE_DEVICE, 0, 0);
    c[1] = op(VKMT_OP_QUERY_MEMORY, 0, 0);
    c[1].reserved = 1;
    CHECK_EQ(submit(fd, c, 2), -EINVAL);
    CHECK_EQ(c[0].status, 0);
    CHECK_EQ(c[0].value0, 0);
    /* What only the device checks comes back as a status. */
    c[0] = op(VKMT_OP_MAX + 1, 0, 0);
    CHECK_EQ(run(fd, &c[0]), VKMT_ST_NOT_SUPPORTED);
    close(fd);
}

static void another_file_cannot_use_or_map_my_objects(void)
{
    int a = open_node(), b = open_node();
    uint32_t dev = create_device(a), alloc = 0;
    uint64_t off = 0, size = 0, off2, size2;
    struct vkmt_kmd_info ia, ib;

    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_INFO, &ia), 0);
    CHECK_EQ(ioctl(b, VKMT_KMD_IOC_INFO, &ib), 0);
    CHECK(ia.queue != ib.queue);
    create_allocs(a, dev, &alloc, 1);
    CHECK_EQ(lock(a, dev, alloc, &off, &size), VKMT_ST_SUCCESS);
    CHECK_EQ(lock(b, dev, alloc, &off2, &size2), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(simple(b, VKMT_OP_UNLOCK, dev, alloc), VKMT_ST_INVALID_PARAMETER);
    CHECK_EQ(destroy_alloc(b, dev, alloc), VKMT_ST_INVALID_PARAMETER);
    CHECK(map(b, off, size, MAP_SHARED) == MAP_FAILED);
    CHECK_EQ(errno, EACCES);
    close(b);
    close(a);
}

/* In a child as nobody (65534): exit status 0 when everything held. */
static void unprivileged_child(void)
{
    struct vkmt_kmd_info info;
    int fd;

    if (setgid(65534) != 0 || setuid(65534) != 0 || getuid() != 65534) {
        _exit(10);
    }
    fd = open(NODE, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        _exit(11);
    }
    if (ioctl(fd, VKMT_KMD_IOC_INFO, &info) != 0) {
        _exit(12);
    }
    if (create_device(fd) == 0) {
        _exit(13);
    }
    if (ioctl(fd, VKMT_KMD_IOC_RESET) != -1 || errno != EPERM) {
        _exit(14);
    }
    _exit(0);
}

static void unprivileged_user_opens_but_cannot_reset(void)
{
    int status = -1;
    pid_t child = fork();

    if (child == 0) {
        unprivileged_child();
    }
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

static void closing_releases_everything(void)
{
    int watcher = open_node(), fd = open_node();
    uint64_t base = live_allocations(watcher, 0);
    uint32_t dev = create_device(fd), handles[16];

    create_allocs(fd, dev, handles, 16);
    CHECK_EQ(live_allocations(watcher, base + 16), base + 16);
    close(fd);
    CHECK_EQ(live_allocations(watcher, base), base);
    close(watcher);
}

static void a_killed_process_releases_everything(void)
{
    int watcher = open_node(), fds[2];
    uint64_t base = live_allocations(watcher, 0);
    char c = 0;
    pid_t child;

    CHECK_EQ(pipe(fds), 0);
    child = fork();
    if (child == 0) {
        int fd = open(NODE, O_RDWR | O_CLOEXEC);
        uint32_t handles[16];

        create_allocs(fd, create_device(fd), handles, 16);
        if (write(fds[1], "r", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(live_allocations(watcher, base + 16), base + 16);
    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    CHECK_EQ(live_allocations(watcher, base), base);
    close(fds[0]);
    close(fds[1]);
    close(watcher);
}

/* The sysfs directory of the first vkmt PCI device, into @dir. */
static int find_pci_dir(char *dir, size_t len)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;
    int found = 0;

    while (d && !found && (e = readdir(d))) {
        char path[512], id[16] = "";
        FILE *f;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
        f = fopen(path, "r");
        if (f) {
            found = fgets(id, sizeof(id), f) && strtoul(id, NULL, 16) == VKMT_PCI_DEVICE_ID;
            fclose(f);
        }
        if (found) {
            snprintf(dir, len, "/sys/bus/pci/devices/%s", e->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    return found;
}

static void bars_cannot_be_mapped_through_sysfs(void)
{
    char dir[300], path[400];

    CHECK(find_pci_dir(dir, sizeof(dir)));
    for (int bar = 0; bar <= VKMT_BAR_APERTURE; bar += 2) {
        int fd;
        void *p;

        snprintf(path, sizeof(path), "%s/resource%d", dir, bar);
        fd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(p == MAP_FAILED);
        if (p != MAP_FAILED) {
            munmap(p, 4096);
        }
        close(fd);
    }
}

static void reset_ends_every_file(void)
{
    int a = open_node(), b;
    uint32_t events = 0, dev = create_device(a);
    struct pollfd pfd = { .fd = a, .events = POLLIN };
    struct vkmt_kmd_cmd c = op(VKMT_OP_QUERY_MEMORY, dev, 0);

    CHECK_EQ(poll(&pfd, 1, 0), 0);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_RESET), 0);
    CHECK_EQ(submit(a, &c, 1), -ENODEV);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_INFO, &(struct vkmt_kmd_info){ 0 }), -1);
    CHECK_EQ(errno, ENODEV);
    CHECK_EQ(poll(&pfd, 1, 0), 1);
    CHECK(pfd.revents & POLLIN);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_EVENTS, &events), 0);
    CHECK(events & VKMT_KMD_EV_REMOVED);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_EVENTS, &events), 0);
    CHECK_EQ(events, 0); /* cleared by the read */
    /* A new file gets a queue on the device brought up again. */
    b = open_node();
    CHECK(create_device(b) != 0);
    close(b);
    close(a);
}

/* One QMP command through the test VM's console (docs/VM.md): 0 when it
 * answered "return". */
static int host_qmp(const char *fmt, const char *prop, const char *value)
{
    char reply[4096], cmd[512];

    snprintf(cmd, sizeof(cmd), fmt, prop, value);
    printf("vkmt-vm: qmp %s\n", cmd);
    fflush(stdout);
    if (!fgets(reply, sizeof(reply), stdin)) {
        return -1;
    }
    return strstr(reply, "\"return\"") ? 0 : -1;
}

/* Sets a fault property of the device (DEVICE.md: x-poison-completions, x-deaf). */
static int device_fault(const char *prop, const char *value)
{
    return host_qmp("{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine/peripheral/vk\","
                    "\"property\":\"%s\",\"value\":%s}}",
                    prop, value);
}

/*
 * A host trim request (QMP trim-notify) posts TRIM_TO_BUDGET to the queue
 * of a file that holds memory: its file polls readable, READ_EVENTS hands
 * the event over once, and a file that holds nothing gets none.
 */
static void trim_request_polls_in_and_reads_once(void)
{
    int a = open_node(), b = open_node();
    uint32_t flags = 0, dev = create_device(a), h[2];
    struct pollfd pfd = { .fd = a, .events = POLLIN };
    struct vkmt_kmd_event ev[4];
    struct vkmt_kmd_read_events req = { .events = (uintptr_t)ev, .count = 4 };

    create_allocs(a, dev, h, 2);
    CHECK_EQ(device_fault("trim-notify", "4096"), 0);
    CHECK_EQ(poll(&pfd, 1, 5000), 1);
    CHECK(pfd.revents & POLLIN);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_READ_EVENTS, &req), 0);
    CHECK_EQ(req.count, 1);
    CHECK_EQ(req.lost, 0);
    CHECK_EQ(ev[0].type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(ev[0].value, 4096);
    CHECK_EQ(ev[0].reserved, 0);
    req.count = 4;
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_READ_EVENTS, &req), 0);
    CHECK_EQ(req.count, 0);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_EVENTS, &flags), 0);
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    req.count = 4;
    CHECK_EQ(ioctl(b, VKMT_KMD_IOC_READ_EVENTS, &req), 0);
    CHECK_EQ(req.count, 0);
    close(b);
    close(a);
}

static void read_events_checks_its_request(void)
{
    int a = open_node();
    struct vkmt_kmd_event ev[1];
    struct vkmt_kmd_read_events req = { .events = (uintptr_t)ev, .count = 0 };

    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_READ_EVENTS, &req), -1);
    CHECK_EQ(errno, EINVAL);
    req.count = VKMT_KMD_MAX_EVENTS + 1;
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_READ_EVENTS, &req), -1);
    CHECK_EQ(errno, EINVAL);
    req = (struct vkmt_kmd_read_events){ .events = (uintptr_t)ev, .count = 1, .lost = 1 };
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_READ_EVENTS, &req), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ioctl(a, VKMT_KMD_IOC_READ_EVENTS, (void *)8), -1);
    CHECK_EQ(errno, EFAULT);
    close(a);
}

static int set_timeout_ms(const char *ms)
{
    int fd = open("/sys/module/vkmt/parameters/cmd_timeout_ms", O_WRONLY);
    ssize_t n = fd >= 0 ? write(fd, ms, strlen(ms)) : -1;

    if (fd >= 0) {
        close(fd);
    }
    return n == (ssize_t)strlen(ms) ? 0 : -1;
}

/* A completion with a foreign cid and an undefined status ends that file
 * (ENODEV from then on); the kernel, the device and other files go on. */
static void a_poisoned_completion_ends_only_its_file(void)
{
    int fd = open_node(), other;
    struct vkmt_kmd_cmd c = op(VKMT_OP_CREATE_DEVICE, 0, 0);

    CHECK(create_device(fd) != 0);
    CHECK_EQ(device_fault("x-poison-completions", "1"), 0);
    CHECK_EQ(submit(fd, &c, 1), -ENODEV);
    c = op(VKMT_OP_CREATE_DEVICE, 0, 0);
    CHECK_EQ(submit(fd, &c, 1), -ENODEV);
    close(fd);
    other = open_node();
    CHECK(create_device(other) != 0);
    close(other);
}

/* A device that never answers: the wait ends at the timeout, the file is
 * given up, and once the device answers again a new file works. */
static void a_deaf_device_times_out(void)
{
    int fd = open_node(), other;
    struct vkmt_kmd_cmd c = op(VKMT_OP_CREATE_DEVICE, 0, 0);
    struct timespec t0, t1;
    double took;

    CHECK_EQ(set_timeout_ms("1500"), 0);
    CHECK_EQ(device_fault("x-deaf", "true"), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(submit(fd, &c, 1), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(took >= 1.4 && took < 20);
    CHECK_EQ(device_fault("x-deaf", "false"), 0);
    c = op(VKMT_OP_CREATE_DEVICE, 0, 0);
    CHECK_EQ(submit(fd, &c, 1), -ENODEV);
    close(fd);
    CHECK_EQ(set_timeout_ms("30000"), 0);
    other = open_node();
    CHECK(create_device(other) != 0);
    close(other);
}

static void unload_only_when_closed(void)
{
    int fd = open_node();

    CHECK(system("rmmod vkmt 2>/dev/null") != 0);
    close(fd);
    CHECK_EQ(system("rmmod vkmt"), 0);
    CHECK(access(NODE, F_OK) != 0);
    CHECK_EQ(system("insmod /lib/vkmt.ko"), 0);
    for (int i = 0; i < 50 && access(NODE, F_OK) != 0; i++) {
        usleep(100000);
    }
    fd = open_node();
    CHECK(create_device(fd) != 0);
    close(fd);
}

static const struct test tests[] = {
    TEST(info_is_sane),
    TEST(sysfs_names_each_queue_and_its_process),
    TEST(several_commands_in_one_submit),
    TEST(lock_map_write_read_unlock),
    TEST(nested_locks_keep_the_mapping_until_the_last_unlock),
    TEST(destroy_takes_the_mapping_away),
    TEST(a_refused_destroy_keeps_the_mapping),
    TEST(mmap_without_lock_is_refused),
    TEST(bad_pointers_are_efault),
    TEST(malformed_requests_are_einval),
    TEST(another_file_cannot_use_or_map_my_objects),
    TEST(unprivileged_user_opens_but_cannot_reset),
    TEST(closing_releases_everything),
    TEST(a_killed_process_releases_everything),
    TEST(bars_cannot_be_mapped_through_sysfs),
    TEST(reset_ends_every_file),
    TEST(trim_request_polls_in_and_reads_once),
    TEST(read_events_checks_its_request),
    TEST(a_poisoned_completion_ends_only_its_file),
    TEST(a_deaf_device_times_out),
    TEST(unload_only_when_closed),
};

int main(void)
{
    return harness_run("test_kmd", tests, sizeof(tests) / sizeof(tests[0]));
}
