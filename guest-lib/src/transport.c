/* SPDX-License-Identifier: MIT */
/*
 * Transport selection. VKMT_TRANSPORT names the transport: "kmd" reaches vkmt
 * devices through the guest kernel driver's /dev/vkmtN nodes (the default
 * when one exists); "pci" reaches them from a Linux guest's user space
 * through sysfs (the default otherwise);
 * "loopback" runs the device engine inside this process from libvkmt-loopback, loaded with
 * dlopen so that libvkmt itself never links the engine (a guest build needs
 * only the protocol). It is looked for in VKMT_LOOPBACK_LIB, then next to
 * libvkmt itself (a build tree or an install), then by soname. Every
 * variable is read with secure_getenv: in a setuid or file-capability
 * program they count as unset, so nobody can make such a program dlopen
 * their code.
 */
#define _GNU_SOURCE /* dladdr, secure_getenv */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"
#include "vkmt.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct vkmt_transport_ops *chosen;

/* Open the loopback library from the directory libvkmt was loaded from. */
static void *open_beside_us(void)
{
    Dl_info self;
    char path[4096];
    const char *slash;

    if (!dladdr((void *)vkmt_transport_get, &self) || !self.dli_fname ||
        !(slash = strrchr(self.dli_fname, '/'))) {
        return NULL;
    }
    if (snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - self.dli_fname), self.dli_fname,
                 VKMT_LOOPBACK_SONAME) >= (int)sizeof(path)) {
        return NULL;
    }
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

static const struct vkmt_transport_ops *load_loopback(void)
{
    const char *path = secure_getenv("VKMT_LOOPBACK_LIB");
    const struct vkmt_transport_ops *ops;
    void *dl = path && *path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : open_beside_us();

    if (!dl && !(path && *path)) {
        dl = dlopen(VKMT_LOOPBACK_SONAME, RTLD_NOW | RTLD_LOCAL);
    }
    if (!dl) {
        fprintf(stderr, "libvkmt: loopback transport unavailable: %s\n", dlerror());
        return NULL;
    }
    ops = dlsym(dl, VKMT_LOOPBACK_SYMBOL);
    if (!ops) {
        fprintf(stderr, "libvkmt: %s has no %s\n", path ? path : VKMT_LOOPBACK_SONAME,
                VKMT_LOOPBACK_SYMBOL);
        dlclose(dl);
    }
    /* Stays loaded: the engine's state lives in it for the process's life. */
    return ops;
}

static void choose(void)
{
    const char *name = secure_getenv("VKMT_TRANSPORT");

    if (!name || !*name) {
        /* The driver when it is bound to a device, else the driverless way. */
        chosen = vkmt_kmd_transport.count() ? &vkmt_kmd_transport : &vkmt_pci_transport;
    } else if (strcmp(name, "kmd") == 0) {
        chosen = &vkmt_kmd_transport;
    } else if (strcmp(name, "pci") == 0) {
        chosen = &vkmt_pci_transport;
    } else if (strcmp(name, "loopback") == 0) {
        chosen = load_loopback();
    } else {
        fprintf(stderr, "libvkmt: VKMT_TRANSPORT=%s is unknown (kmd, pci, loopback)\n", name);
    }
}

const struct vkmt_transport_ops *vkmt_transport_get(void)
{
    pthread_once(&once, choose);
    return chosen;
}

VKMT_API const char *vkmt_transport_name(void)
{
    const struct vkmt_transport_ops *ops = vkmt_transport_get();

    return ops ? ops->name : NULL;
}
