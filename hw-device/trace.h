/* SPDX-License-Identifier: MIT */
/* QEMU's generated trace points for hw/vkmt (from trace-events). */
#include "trace/trace-hw_vkmt.h"
