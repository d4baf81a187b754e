/*
 * vlink-rx.c - link message reassembly, free of QEMU so it can be fuzzed
 * on its own (link/qemu/fuzz).  See vlink-rx.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifdef VLINK_RX_STANDALONE
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "vepc-link.h"
#else
#include "qemu/osdep.h"
#include "hw/misc/vepc-link.h"
#endif
#include "vlink-rx.h"

/* The wire is little-endian whatever the host is. */
static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void vlink_rx_reset(VlinkRx *rx)
{
    rx->have = 0;
    rx->skip = 0;
}

static void vlink_rx_decode_header(VlinkRx *rx)
{
    rx->magic = get_le32(rx->buf + offsetof(struct vlink_header, magic));
    rx->version = get_le16(rx->buf + offsetof(struct vlink_header, version));
    rx->type = get_le16(rx->buf + offsetof(struct vlink_header, type));
    rx->length = get_le32(rx->buf + offsetof(struct vlink_header, length));
}

VlinkRxStatus vlink_rx_feed(VlinkRx *rx, const uint8_t *buf, uint32_t size,
                            uint32_t *used)
{
    uint32_t want, n;

    if (rx->skip) {
        n = rx->skip < size ? rx->skip : size;
        rx->skip -= n;
        *used = n;
        return VLINK_RX_MORE;
    }

    /* Header first; once it is in, the payload it announces. */
    want = VLINK_HEADER_SIZE;
    if (rx->have >= VLINK_HEADER_SIZE) {
        want += rx->length;
    }
    n = want - rx->have < size ? want - rx->have : size;
    memcpy(rx->buf + rx->have, buf, n);
    rx->have += n;
    *used = n;
    if (rx->have < want) {
        return VLINK_RX_MORE;
    }

    if (want == VLINK_HEADER_SIZE) {
        /* The header just completed: check it and size the payload. */
        vlink_rx_decode_header(rx);
        if (rx->magic != VLINK_MAGIC) {
            return VLINK_RX_BAD_MAGIC;
        }
        if (rx->version != VLINK_VERSION) {
            return VLINK_RX_BAD_VERSION;
        }
        if (rx->length > VLINK_MAX_PAYLOAD) {
            rx->have = 0;
            rx->skip = rx->length;
            return VLINK_RX_SKIP;
        }
        if (rx->length > 0) {
            return VLINK_RX_MORE;
        }
    }

    rx->have = 0;
    return VLINK_RX_MESSAGE;
}
