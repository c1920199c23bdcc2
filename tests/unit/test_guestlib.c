/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libvkmt's internals: checked user-memory access, status
 * names, and the queue client against a scripted fake device, which can
 * misbehave in ways the real engine never does (wrong identity, no free
 * queue, a completion for the wrong command, a reset while a command waits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "qclient.h"
#include "usermem.h"
#include "vkmt.h"
#include "vkmt_shmem.h"

/* ---- usermem ---- */

static void *page(int prot)
{
    void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    /* Two pages: the first usable, the second with @prot. */
    mprotect((char *)p + 4096, 4096, prot);
    return p;
}

static void copy_in_reports_unreadable_ranges(void)
{
    char *p = page(PROT_NONE);
    char buf[64];

    memset(p, 0x42, 4096);
    CHECK(um_copy_in(buf, p + 4096 - 64, 64));
    CHECK_EQ(buf[63], 0x42);
    CHECK(!um_copy_in(buf, p + 4096 - 32, 64)); /* runs into the guard page */
    CHECK(!um_copy_in(buf, p + 4096, 4));
    CHECK(!um_copy_in(buf, NULL, 4));
    CHECK(!um_copy_in(buf, (void *)(uintptr_t)8, 4));
    munmap(p, 8192);
}

static void copy_out_and_probe_report_unwritable_ranges(void)
{
    char *p = page(PROT_READ);
    char buf[64] = { 1 };

    CHECK(um_copy_out(p + 100, buf, 64));
    CHECK_EQ(p[100], 1);
    CHECK(!um_copy_out(p + 4096 - 8, buf, 64));
    CHECK(!um_copy_out(p + 4096, buf, 4));
    CHECK(!um_probe_out(p + 4096, 4));
    CHECK(!um_probe_out(NULL, 4));
    memset(p, 0x33, 129);
    CHECK(um_probe_out(p, 128));
    CHECK_EQ(p[0], 0);
    CHECK_EQ(p[127], 0);
    CHECK_EQ(p[128], 0x33); /* the byte after the range is left alone */
    munmap(p, 8192);
}

#define OWN_HANDLER "--own-handler"

static sigjmp_buf own_jb;
static volatile sig_atomic_t own_faults;

static void own_handler(int sig)
{
    (void)sig;
    own_faults++;
    siglongjmp(own_jb, 1);
}

/*
 * Run as "test_guestlib --own-handler", a fresh process: the program's
 * SIGSEGV handler is in place before libvkmt's first checked access.
 * libvkmt's own bad copies still fail cleanly, and a fault of the
 * program's reaches the program's handler. Exit status 0 when both hold.
 */
static int own_handler_child(void)
{
    struct sigaction sa = { .sa_handler = own_handler, .sa_flags = SA_NODEFER };
    volatile char *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char buf[16];
    int ok = bad != MAP_FAILED;

    sigemptyset(&sa.sa_mask);
    ok = ok && sigaction(SIGSEGV, &sa, NULL) == 0;
    ok = ok && !um_copy_in(buf, (const void *)bad, sizeof(buf)) && own_faults == 0;
    if (ok && sigsetjmp(own_jb, 0) == 0) {
        (void)bad[0]; /* the program's own fault */
        ok = 0;
    }
    return ok && own_faults == 1 && !um_probe_out((void *)bad, 8) && own_faults == 1 ? 0 : 1;
}

static void the_programs_own_fault_handler_still_gets_its_faults(void)
{
    pid_t pid = fork();
    int status = 0;

    CHECK(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_guestlib", OWN_HANDLER, (char *)NULL);
        _exit(127);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

static void status_names(void)
{
    CHECK(strcmp(vkmt_status_name(STATUS_INVALID_PARAMETER), "STATUS_INVALID_PARAMETER") == 0);
    CHECK(strcmp(vkmt_status_name(STATUS_DEVICE_REMOVED), "STATUS_DEVICE_REMOVED") == 0);
    CHECK(strcmp(vkmt_status_name(STATUS_GRAPHICS_NO_VIDEO_MEMORY),
                 "STATUS_GRAPHICS_NO_VIDEO_MEMORY") == 0);
    CHECK(vkmt_status_name((NTSTATUS)0xC0001234) == NULL);
}

/* ---- the queue client against a scripted device ---- */

static struct fake {
    struct vkmt_transport t;
    uint32_t magic;
    uint32_t status;
    uint32_t claim; /* what queue_claim answers */
    uint32_t epoch;
    int complete;        /* answer doorbells */
    uint32_t cid_delta;  /* added to the echoed cid */
    int reset_after;     /* doorbells until a "reset" frees the queue; 0: never */
    int refuse_features; /* FEATURES_OK never sticks */
    uint32_t status_out; /* the status completions carry */
    unsigned doorbells;
    uint32_t released;
} fk;

static uint32_t fk_read(struct vkmt_transport *t, uint32_t off)
{
    (void)t;
    switch (off) {
    case VKMT_REG(magic):
        return fk.magic;
    case VKMT_REG(version):
        return VKMT_VERSION;
    case VKMT_REG(queue_depth):
        return VKMT_QUEUE_DEPTH;
    case VKMT_REG(queue_stride):
        return VKMT_QUEUE_STRIDE;
    case VKMT_REG(status):
        return fk.status;
    case VKMT_REG(device_features):
        return VKMT_F_KNOWN | 0x80000000u; /* an unknown bit is not taken */
    case VKMT_REG(driver_features):
        return VKMT_F_KNOWN;
    case VKMT_REG(removal_epoch):
        return fk.epoch;
    case VKMT_REG(queue_claim): {
        struct vkmt_queue_hdr *h = (struct vkmt_queue_hdr *)(fk.t.ctrl);

        h->sh_state = VKMT_QSTATE_ACTIVE;
        h->sh_claim_seq = 7;
        return fk.claim;
    }
    default:
        return 0;
    }
}

static void fk_write(struct vkmt_transport *t, uint32_t off, uint32_t val)
{
    struct vkmt_queue_hdr *h = (struct vkmt_queue_hdr *)(t->ctrl);

    if (off == VKMT_REG(status)) {
        fk.status = fk.refuse_features ? val & ~VKMT_STATUS_FEATURES_OK : val;
    } else if (off == VKMT_REG(queue_release)) {
        fk.released = val + 1;
    } else if (off == VKMT_REG_DOORBELL(0)) {
        struct vkmt_sqe *sq = (struct vkmt_sqe *)(t->ctrl + VKMT_QUEUE_SQ_OFF);
        struct vkmt_cqe *cq = (struct vkmt_cqe *)(t->ctrl + VKMT_QUEUE_CQ_OFF);
        uint32_t slot = (val - 1) & (VKMT_QUEUE_DEPTH - 1);

        fk.doorbells++;
        if (fk.reset_after && fk.doorbells >= (unsigned)fk.reset_after) {
            vkmt_sh_store(&h->sh_state, VKMT_QSTATE_FREE);
            fk.epoch++;
            return;
        }
        if (!fk.complete) {
            return;
        }
        cq[slot].cid = sq[slot].cid + fk.cid_delta;
        cq[slot].status = fk.status_out;
        cq[slot].value0 = 0x1234;
        vkmt_sh_store_release(&cq[slot].flags, ((val - 1) / VKMT_QUEUE_DEPTH + 1) & 1);
    }
}

static const struct vkmt_transport_ops fk_ops = {
    .name = "fake",
    .reg_read = fk_read,
    .reg_write = fk_write,
};

static void fake_reset(void)
{
    static uint8_t *ctrl;

    if (!ctrl) {
        ctrl = aligned_alloc(4096, VKMT_QUEUE_STRIDE);
    }
    memset(ctrl, 0, VKMT_QUEUE_STRIDE);
    memset(&fk, 0, sizeof(fk));
    fk.t.ops = &fk_ops;
    fk.t.ctrl = ctrl;
    fk.t.ctrl_size = VKMT_QUEUE_STRIDE;
    fk.t.lock_fd = -1;
    fk.magic = VKMT_MAGIC;
    fk.complete = 1;
}

static void qclient_brings_the_device_up(void)
{
    struct qclient qc;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct qresult res;

    fake_reset();
    fk.refuse_features = 1;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_DEVICE_REMOVED);
    CHECK(fk.status & VKMT_STATUS_FAILED); /* and it told the device */
    CHECK_EQ(fk.status & VKMT_STATUS_DRIVER_OK, 0);
    fake_reset();
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    CHECK(fk.status & VKMT_STATUS_DRIVER_OK);
    CHECK_EQ(qc.features, VKMT_F_KNOWN);
    for (int i = 0; i < 3 * (int)VKMT_QUEUE_DEPTH; i++) { /* across phase flips */
        CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_SUCCESS);
    }
    CHECK_EQ(res.value0, 0x1234);
    qc_close(&qc);
    CHECK_EQ(fk.released, 1);
}

/*
 * The event ring as the device writes it: entries read once in order, a
 * type the protocol does not define or a reserved field set skipped, the
 * head handed back, the loss counter reported as a difference, and a tail
 * that runs more than a ring ahead ending the events for good.
 */
static void qclient_reads_the_event_ring_and_distrusts_it(void)
{
    struct qclient qc;
    struct vkmt_queue_hdr *h;
    struct vkmt_qev *ring, out[8];
    uint32_t lost = 99;

    fake_reset();
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    h = (struct vkmt_queue_hdr *)fk.t.ctrl;
    ring = (struct vkmt_qev *)(fk.t.ctrl + VKMT_QUEUE_EVQ_OFF);
    CHECK_EQ(qc_read_events(&qc, out, 8, &lost), 0);
    CHECK_EQ(lost, 0);
    ring[0] = (struct vkmt_qev){ .type = VKMT_QEV_TRIM_TO_BUDGET, .value = 8192 };
    ring[1] = (struct vkmt_qev){ .type = 0x8 }; /* not a type of the protocol */
    ring[2] = (struct vkmt_qev){ .type = VKMT_QEV_PERIODIC_TRIM, .reserved = 1 };
    ring[3] = (struct vkmt_qev){ .type = VKMT_QEV_BUDGET_CHANGED, .value = 1u << 20 };
    vkmt_sh_store(&h->sh_ev_lost, 3);
    vkmt_sh_store_release(&h->sh_ev_tail, 4);
    CHECK_EQ(qc_read_events(&qc, out, 1, &lost), 1); /* room for one */
    CHECK_EQ(out[0].type, VKMT_QEV_TRIM_TO_BUDGET);
    CHECK_EQ(out[0].value, 8192);
    CHECK_EQ(h->sh_ev_head, 1);
    CHECK_EQ(lost, 3);
    CHECK_EQ(qc_read_events(&qc, out, 8, &lost), 1);
    CHECK_EQ(out[0].type, VKMT_QEV_BUDGET_CHANGED);
    CHECK_EQ(h->sh_ev_head, 4);
    CHECK_EQ(lost, 0);
    vkmt_sh_store_release(&h->sh_ev_tail, 4 + VKMT_EVQ_DEPTH + 1);
    CHECK_EQ(qc_read_events(&qc, out, 8, &lost), -EIO);
    CHECK_EQ(h->sh_ev_head, 4); /* nothing taken from a broken ring */
    vkmt_sh_store_release(&h->sh_ev_tail, 5);
    CHECK_EQ(qc_read_events(&qc, out, 8, &lost), -EIO); /* for good */
    /* A queue that is not ours any more has no events. */
    fake_reset();
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    vkmt_sh_store(&((struct vkmt_queue_hdr *)fk.t.ctrl)->sh_state, VKMT_QSTATE_FREE);
    CHECK_EQ(qc_read_events(&qc, out, 8, &lost), -ENODEV);
}

static void qclient_refuses_a_wrong_device(void)
{
    struct qclient qc;

    fake_reset();
    fk.magic = 0xffffffffu; /* what a vanished device reads as */
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_DEVICE_REMOVED);
    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK | VKMT_STATUS_DEVICE_NEEDS_RESET;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_DEVICE_REMOVED);
    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK;
    fk.claim = VKMT_QUEUE_NONE;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_NO_MEMORY);
    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK;
    fk.claim = 5; /* beyond the mapped control memory */
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_DEVICE_REMOVED);
}

static void qclient_distrusts_a_wrong_completion(void)
{
    struct qclient qc;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct qresult res;

    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    fk.cid_delta = 1;
    CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_DEVICE_REMOVED);
    fk.cid_delta = 0;
    CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_DEVICE_REMOVED); /* sticky */
}

static void qclient_notices_a_reset_while_waiting(void)
{
    struct qclient qc;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct qresult res;

    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    fk.reset_after = 2;
    CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_SUCCESS);
    CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_DEVICE_REMOVED);
    CHECK(qc.removed);
    qc_close(&qc);
    CHECK_EQ(fk.released, 0); /* a removed queue is not released again */
}

static void qclient_releases_a_queue_it_cannot_use(void)
{
    struct qclient qc;
    struct vkmt_sqe sqe = { .opcode = VKMT_OP_CREATE_DEVICE };
    struct vkmt_queue_hdr *h;
    struct qresult res;

    /* A status PROTOCOL.md does not define, even a success-class one. */
    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    fk.status_out = 0x40000000u;
    CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_DEVICE_REMOVED);
    CHECK(qc_dead(&qc) && !qc.removed);
    qc_close(&qc);
    CHECK_EQ(fk.released, 1); /* still ours: given back */

    /* A queue the device put in the error state (another process's bad
     * doorbell can do that): unusable, but released at close. */
    fake_reset();
    fk.status = VKMT_STATUS_DRIVER_OK;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    h = (struct vkmt_queue_hdr *)fk.t.ctrl;
    vkmt_sh_store(&h->sh_state, VKMT_QSTATE_ERROR);
    CHECK_EQ(qc_run(&qc, &sqe, &res), STATUS_DEVICE_REMOVED);
    CHECK_EQ(fk.doorbells, 0); /* nothing was submitted */
    qc_close(&qc);
    CHECK_EQ(fk.released, 1);
}

/* ---- reaping: a queue's owner is alive while it holds the queue's lock ---- */

static uint32_t reap_writes[4], nreap_writes;

static uint32_t rf_read(struct vkmt_transport *t, uint32_t off)
{
    (void)t;
    return off == VKMT_REG(num_queues) ? 2 : 0;
}

static void rf_write(struct vkmt_transport *t, uint32_t off, uint32_t val)
{
    (void)t;
    if (off == VKMT_REG(queue_reap) && nreap_writes < 4) {
        reap_writes[nreap_writes++] = val;
    }
}

static const struct vkmt_transport_ops rf_ops = {
    .name = "reap-fake",
    .reg_read = rf_read,
    .reg_write = rf_write,
};

/* An OFD write lock on byte @q of @fd, as the owner of queue @q holds it. */
static int lock_byte(int fd, uint32_t q, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = q, .l_len = 1 };

    return fcntl(fd, F_OFD_SETLK, &fl);
}

/*
 * Queue liveness: queue 1 is claimed by "another process" (another
 * open file description of the lock file) whose sh_owner names no process
 * here, as a process in another PID namespace, or one that forged it, looks.
 * It is not reaped while its lock is held, and is once the lock goes; an
 * sh_owner naming a live process (ours) does not keep a lockless queue.
 */
static void reap_trusts_the_queue_lock_not_the_pid(void)
{
    char path[] = "/tmp/vkmt-lock-XXXXXX";
    struct vkmt_transport t = { .ops = &rf_ops, .ctrl_size = 2 * VKMT_QUEUE_STRIDE };
    struct vkmt_queue_hdr *h;
    int other;

    t.ctrl = aligned_alloc(4096, 2 * VKMT_QUEUE_STRIDE);
    CHECK(t.ctrl != NULL);
    if (!t.ctrl) {
        return;
    }
    memset(t.ctrl, 0, 2 * VKMT_QUEUE_STRIDE);
    t.lock_fd = mkstemp(path);
    CHECK(t.lock_fd >= 0);
    other = open(path, O_RDWR | O_CLOEXEC);
    CHECK(other >= 0);
    unlink(path);
    h = (struct vkmt_queue_hdr *)(t.ctrl + VKMT_QUEUE_STRIDE);
    h->sh_state = VKMT_QSTATE_ACTIVE;
    h->sh_claim_seq = 5;
    h->sh_owner = 0x7ffffffe; /* above any pid_max: no such process here */
    CHECK_EQ(lock_byte(other, 1, F_WRLCK), 0);
    nreap_writes = 0;
    CHECK_EQ(qc_reap(&t), 0);
    CHECK_EQ(nreap_writes, 0);
    CHECK_EQ(qc_owner_alive(&t, 1), 1);
    /* Its owner is gone: the kernel dropped the lock with the file. */
    close(other);
    CHECK_EQ(qc_owner_alive(&t, 1), 0);
    CHECK_EQ(qc_reap(&t), 0); /* the fake does not free it */
    CHECK_EQ(nreap_writes, 1);
    CHECK_EQ(reap_writes[0], VKMT_REAP(1, 5));
    /* A live pid in sh_owner does not keep a queue nobody holds. */
    h->sh_owner = (uint32_t)getpid();
    nreap_writes = 0;
    qc_reap(&t);
    CHECK_EQ(nreap_writes, 1);
    /* A transport without a lock file never reaps (loopback). */
    close(t.lock_fd);
    t.lock_fd = -1;
    nreap_writes = 0;
    CHECK_EQ(qc_owner_alive(&t, 1), -1);
    qc_reap(&t);
    CHECK_EQ(nreap_writes, 0);
    free(t.ctrl);
}

/* qc_open takes its queue's lock before it writes the owner tag, and
 * qc_close drops it. */
static void an_open_queue_holds_its_lock(void)
{
    char path[] = "/tmp/vkmt-lock-XXXXXX";
    struct vkmt_transport probe = { .ops = &rf_ops };
    struct qclient qc;

    fake_reset();
    fk.t.lock_fd = mkstemp(path);
    CHECK(fk.t.lock_fd >= 0);
    probe.lock_fd = open(path, O_RDWR | O_CLOEXEC);
    unlink(path);
    CHECK_EQ(qc_owner_alive(&probe, 0), 0);
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_SUCCESS);
    CHECK_EQ(qc_owner_alive(&probe, 0), 1);
    CHECK(((struct vkmt_queue_hdr *)fk.t.ctrl)->sh_owner == (uint32_t)getpid());
    qc_close(&qc);
    CHECK_EQ(qc_owner_alive(&probe, 0), 0);
    /* A queue whose lock another holder keeps is not taken. */
    CHECK_EQ(lock_byte(probe.lock_fd, 0, F_WRLCK), 0);
    fk.released = 0;
    CHECK_EQ(qc_open(&qc, &fk.t), STATUS_NO_MEMORY);
    CHECK_EQ(fk.released, 1);
    close(probe.lock_fd);
    close(fk.t.lock_fd);
}

/* ---- the environment of a privileged program ---- */

#define PRINT_TRANSPORT "--print-transport"

/*
 * A setuid copy of this binary (owned by nobody, run by root, so the kernel
 * sets AT_SECURE) must ignore VKMT_TRANSPORT and VKMT_LOOPBACK_LIB, or any
 * user could make a privileged program dlopen their code. Needs root and a
 * mount that honours setuid; without them there is nothing to check.
 */
static void a_setuid_program_ignores_the_environment(void)
{
    char dir[] = "/tmp/vkmt-secure-XXXXXX", exe[64], line[64] = "";
    char *argv[] = { exe, PRINT_TRANSPORT, NULL };
    char *envp[] = { "VKMT_TRANSPORT=loopback", "VKMT_LOOPBACK_LIB=/nonexistent/evil.so", NULL };
    unsigned long secure = 0;
    int fds[2], status = 0;
    FILE *in, *out;
    pid_t pid;

    if (geteuid() != 0) {
        harness_skip("making a setuid copy needs root");
        return;
    }
    CHECK(mkdtemp(dir) != NULL);
    snprintf(exe, sizeof(exe), "%s/t", dir);
    in = fopen("/proc/self/exe", "rb");
    out = fopen(exe, "wb");
    CHECK(in && out);
    for (int ch; in && out && (ch = getc(in)) != EOF;) {
        putc(ch, out);
    }
    if (in) {
        fclose(in);
    }
    if (out) {
        fclose(out);
    }
    CHECK_EQ(chmod(dir, 0755), 0);
    CHECK_EQ(chown(exe, 65534, 65534), 0);
    CHECK_EQ(chmod(exe, 04755), 0);
    CHECK_EQ(pipe(fds), 0);
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        /* Quiet: LeakSanitizer reports at exit that it cannot run setuid. */
        freopen("/dev/null", "w", stderr);
        execve(exe, argv, envp);
        _exit(127);
    }
    close(fds[1]);
    in = fdopen(fds[0], "r");
    if (in && fgets(line, sizeof(line), in)) {
        secure = strtoul(line, NULL, 10);
    }
    if (in) {
        fclose(in);
    }
    waitpid(pid, &status, 0);
    unlink(exe);
    rmdir(dir);
    if (!secure) {
        printf("# the copy ran without AT_SECURE (%s)\n", line);
        harness_skip("this mount ignores setuid");
        return;
    }
    CHECK(strstr(line, " pci\n") != NULL);
}

static const struct test tests[] = {
    TEST(copy_in_reports_unreadable_ranges),
    TEST(copy_out_and_probe_report_unwritable_ranges),
    TEST(the_programs_own_fault_handler_still_gets_its_faults),
    TEST(status_names),
    TEST(qclient_brings_the_device_up),
    TEST(qclient_refuses_a_wrong_device),
    TEST(qclient_distrusts_a_wrong_completion),
    TEST(qclient_notices_a_reset_while_waiting),
    TEST(qclient_releases_a_queue_it_cannot_use),
    TEST(reap_trusts_the_queue_lock_not_the_pid),
    TEST(an_open_queue_holds_its_lock),
    TEST(a_setuid_program_ignores_the_environment),
    TEST(qclient_reads_the_event_ring_and_distrusts_it),
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], PRINT_TRANSPORT) == 0) {
        const char *name = vkmt_transport_name();

        printf("%lu %s\n", getauxval(AT_SECURE), name ? name : "none");
        return fflush(stdout) != 0;
    }
    if (argc == 2 && strcmp(argv[1], OWN_HANDLER) == 0) {
        return own_handler_child();
    }
    return harness_run("test_guestlib", tests, sizeof(tests) / sizeof(tests[0]));
}
