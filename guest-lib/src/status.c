/* SPDX-License-Identifier: MIT */
/* Symbolic names of the NTSTATUS values libvkmt returns, for tools and logs. */
#include "vkmt.h"

VKMT_API const char *vkmt_status_name(NTSTATUS status)
{
    switch (status) {
    case STATUS_SUCCESS:
        return "STATUS_SUCCESS";
    case STATUS_TIMEOUT:
        return "STATUS_TIMEOUT";
    case STATUS_PENDING:
        return "STATUS_PENDING";
    case STATUS_UNSUCCESSFUL:
        return "STATUS_UNSUCCESSFUL";
    case STATUS_INVALID_HANDLE:
        return "STATUS_INVALID_HANDLE";
    case STATUS_INVALID_PARAMETER:
        return "STATUS_INVALID_PARAMETER";
    case STATUS_NO_MEMORY:
        return "STATUS_NO_MEMORY";
    case STATUS_BUFFER_TOO_SMALL:
        return "STATUS_BUFFER_TOO_SMALL";
    case STATUS_NOT_SUPPORTED:
        return "STATUS_NOT_SUPPORTED";
    case STATUS_DEVICE_REMOVED:
        return "STATUS_DEVICE_REMOVED";
    case STATUS_GRAPHICS_NO_VIDEO_MEMORY:
        return "STATUS_GRAPHICS_NO_VIDEO_MEMORY";
    default:
        return NULL;
    }
}
