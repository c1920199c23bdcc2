/* SPDX-License-Identifier: MIT */
/*
 * libvkmt's internal interface for the programs built with it: the
 * transports (raw register and BAR access) and the queue client (the ring
 * driver). vkmtctl, the in-VM benchmark, the loopback library and the fuzz
 * recorder use it; applications use vkmt.h. Not installed, no ABI promise:
 * these programs are built from the same tree as the library.
 */
#ifndef VKMT_INTERNAL_H
#define VKMT_INTERNAL_H

#include "qclient.h"
#include "transport.h"

#endif /* VKMT_INTERNAL_H */
