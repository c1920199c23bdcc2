/* SPDX-License-Identifier: MIT */
/*
 * The VM runner's host services, for programs in the test VM (docs/VM.md):
 * one request line on the console, one answer line back.
 */
#ifndef VKMT_VM_HOST_H
#define VKMT_VM_HOST_H

/* Sends "vkmt-vm: " and the formatted request; returns the answer without
 * its line end ("" when none came), valid until the next call. */
const char *vm_host(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* VKMT_VM_HOST_H */
