/* SPDX-License-Identifier: MIT */
/*
 * Checked access to the caller's arrays. The Windows thunks answer an
 * unreadable input or unwritable output array with STATUS_INVALID_PARAMETER,
 * and they must find out before the device acts: otherwise the caller cannot
 * learn which contents were lost. These helpers copy with a fault catcher
 * armed (usermem.c), so a bad pointer becomes an error return instead of a
 * crash. VKMT_POINTER_CHECKS=0 disarms it (a bad pointer then faults in the
 * caller before the device acts).
 */
#ifndef VKMT_USERMEM_H
#define VKMT_USERMEM_H

#include <stdbool.h>
#include <stddef.h>

/* Copy @len bytes from the caller's @src. False: @src is not readable. */
bool um_copy_in(void *dst, const void *src, size_t len);
/* Make sure @len bytes at @dst are writable, zero-filling them. */
bool um_probe_out(void *dst, size_t len);
/* Copy @len bytes to the caller's @dst. False: @dst is not writable. */
bool um_copy_out(void *dst, const void *src, size_t len);

#endif /* VKMT_USERMEM_H */
