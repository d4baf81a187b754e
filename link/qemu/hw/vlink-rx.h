/*
 * vlink-rx.h - reassembly of link protocol messages (hw/misc/vepc-link.h,
 * link/PROTOCOL.md) from the arbitrary chunks a stream hands us.  Plain C
 * with no QEMU dependency, so link/qemu/fuzz can feed it arbitrary bytes;
 * vepc-wire.c adds the logging, the hang-up and the dispatch.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_VLINK_RX_H
#define HW_MISC_VLINK_RX_H

#include <stdint.h>

#define VLINK_HEADER_SIZE       16
/* Our largest message is START (160 bytes); anything longer is skipped. */
#define VLINK_MAX_PAYLOAD       1024

typedef enum VlinkRxStatus {
    VLINK_RX_MORE,          /* bytes taken, no complete message yet */
    VLINK_RX_MESSAGE,       /* a message is complete: type, length, payload */
    VLINK_RX_SKIP,          /* an oversized message's header: its payload is dropped */
    VLINK_RX_BAD_MAGIC,     /* not our relay: the caller hangs up */
    VLINK_RX_BAD_VERSION,
} VlinkRxStatus;

typedef struct VlinkRx {
    uint8_t buf[VLINK_HEADER_SIZE + VLINK_MAX_PAYLOAD];
    uint32_t have;          /* bytes of the current message in buf */
    uint32_t skip;          /* payload bytes of an oversized message to drop */
    /* The last completed header, decoded (valid after any status but MORE). */
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t length;
} VlinkRx;

void vlink_rx_reset(VlinkRx *rx);

/*
 * Takes up to @size bytes from @buf (*@used says how many) and stops at the
 * first event.  After VLINK_RX_MESSAGE the payload is vlink_rx_payload()
 * until the next call; after a BAD_* status the caller must reset.
 */
VlinkRxStatus vlink_rx_feed(VlinkRx *rx, const uint8_t *buf, uint32_t size,
                            uint32_t *used);

static inline const uint8_t *vlink_rx_payload(const VlinkRx *rx)
{
    return rx->buf + VLINK_HEADER_SIZE;
}

#endif
