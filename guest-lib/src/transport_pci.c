/* SPDX-License-Identifier: MIT */
/*
 * The PCI transport: a vkmt device seen from a Linux guest's user space, with
 * no kernel driver. Devices are found in sysfs by vendor and device id,
 * enabled through their "enable" file, and their BARs mapped from the
 * resourceN files (root only), the way SPDK's polled drivers reach hardware.
 * The aperture uses the write-combining mapping when sysfs offers one.
 * Completions are polled by the shared queue client (qclient.c).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport.h"
#include "vkmt_proto.h"

#define SYSFS_PCI "/sys/bus/pci/devices"
#define MAX_DEVICES 16

struct pci_dev {
    struct vkmt_transport t;
    volatile uint32_t *regs;
    uint64_t regs_size;
};

static unsigned read_hex(const char *dir, const char *file)
{
    char path[512], buf[32] = { 0 };
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/%s/%s", SYSFS_PCI, dir, file);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    return n > 0 ? (unsigned)strtoul(buf, NULL, 16) : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The addresses ("0000:00:03.0") of every vkmt device, sorted; returns how many. */
static unsigned scan(char names[MAX_DEVICES][32])
{
    DIR *d = opendir(SYSFS_PCI);
    struct dirent *e;
    char *sorted[MAX_DEVICES];
    char found[MAX_DEVICES][32];
    unsigned n = 0;

    if (!d) {
        return 0;
    }
    while ((e = readdir(d)) && n < MAX_DEVICES) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 32) {
            continue;
        }
        if (read_hex(e->d_name, "vendor") == VKMT_PCI_VENDOR_ID &&
            read_hex(e->d_name, "device") == VKMT_PCI_DEVICE_ID) {
            memcpy(found[n], e->d_name, strlen(e->d_name) + 1); /* < 32: checked */
            sorted[n] = found[n];
            n++;
        }
    }
    closedir(d);
    qsort(sorted, n, sizeof(sorted[0]), by_name);
    for (unsigned i = 0; i < n; i++) {
        memmove(names[i], sorted[i], 32);
    }
    return n;
}

static uint32_t pci_count(void)
{
    char names[MAX_DEVICES][32];

    return scan(names);
}

/* Map BAR @bar of device @name; the _wc variant first when @wc. With
 * @keep, the file stays open and its descriptor goes to *@keep. */
static void *map_bar(const char *name, int bar, int wc, uint64_t *size, int *keep)
{
    char path[512];
    struct stat st;
    void *p;
    int fd = -1;

    if (wc) {
        snprintf(path, sizeof(path), "%s/%s/resource%d_wc", SYSFS_PCI, name, bar);
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(path, sizeof(path), "%s/%s/resource%d", SYSFS_PCI, name, bar);
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    if (keep) {
        *keep = fd;
    } else {
        close(fd); /* the mapping stays */
    }
    *size = (uint64_t)st.st_size;
    return p;
}

static void pci_close(struct vkmt_transport *t)
{
    struct pci_dev *d = (struct pci_dev *)t;

    if (d->regs) {
        munmap((void *)d->regs, d->regs_size);
    }
    if (t->ctrl) {
        munmap(t->ctrl, t->ctrl_size);
    }
    if (t->aperture) {
        munmap(t->aperture, t->aperture_size);
    }
    if (t->lock_fd >= 0) {
        close(t->lock_fd); /* drops every queue lock it held */
    }
    free(d);
}

static uint32_t pci_reg_read(struct vkmt_transport *t, uint32_t off)
{
    return ((struct pci_dev *)t)->regs[off / 4];
}

static void pci_reg_write(struct vkmt_transport *t, uint32_t off, uint32_t val)
{
    ((struct pci_dev *)t)->regs[off / 4] = val;
}

static int pci_open(uint32_t index, struct vkmt_transport **out);

const struct vkmt_transport_ops vkmt_pci_transport = {
    .name = "pci",
    .count = pci_count,
    .open = pci_open,
    .close = pci_close,
    .reg_read = pci_reg_read,
    .reg_write = pci_reg_write,
};

static int pci_open(uint32_t index, struct vkmt_transport **out)
{
    char names[MAX_DEVICES][32], path[512];
    unsigned dom = 0, bus = 0, slot = 0, fn = 0;
    struct pci_dev *d;
    int fd;

    if (index >= scan(names)) {
        return -ENODEV;
    }
    /* Memory decoding on (again, if another process did it: harmless). A
     * failure is not fatal here; the mappings below tell. */
    snprintf(path, sizeof(path), "%s/%s/enable", SYSFS_PCI, names[index]);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, "1", 1);

        (void)n;
        close(fd);
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->t.ops = &vkmt_pci_transport;
    d->t.lock_fd = -1;
    d->regs = map_bar(names[index], VKMT_BAR_REGS, 0, &d->regs_size, NULL);
    /* The control BAR's file is the queue lock file: every process that
     * uses the device opens it, whatever its PID namespace. */
    d->t.ctrl = map_bar(names[index], VKMT_BAR_CTRL, 0, &d->t.ctrl_size, &d->t.lock_fd);
    d->t.aperture = map_bar(names[index], VKMT_BAR_APERTURE, 1, &d->t.aperture_size, NULL);
    if (!d->regs || d->regs_size < VKMT_REGS_SIZE || !d->t.ctrl || !d->t.aperture) {
        pci_close(&d->t);
        return -EACCES;
    }
    sscanf(names[index], "%x:%x:%x.%x", &dom, &bus, &slot, &fn);
    d->t.luid = ((uint64_t)dom << 32) | (bus << 8) | (slot << 3) | fn;
    *out = &d->t;
    return 0;
}
