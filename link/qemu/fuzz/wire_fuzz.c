/*
 * wire_fuzz.c - libFuzzer harness for the link's message reassembly
 * (hw/vlink-rx.c, the part of vepc-wire.c that reads what the relay sends).
 *
 * Input: byte 0 = n, the next n bytes = chunk sizes (each + 1), the rest =
 * the byte stream a device reads from its chardev.  The stream is fed twice,
 * once whole and once in those chunks (as a chardev hands it over), acting
 * as vepc-wire.c does: hang up after a bad header.  Besides what ASan and
 * UBSan catch, it aborts on a broken invariant or when the two feeds see
 * different messages: reassembly must not depend on how bytes arrive.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vepc-link.h"
#include "vlink-rx.h"

#define MAX_EVENTS 8192

struct event {
    VlinkRxStatus status;
    uint16_t type;
    uint32_t length;
    uint64_t digest;            /* of the payload, for MESSAGE */
};

static struct event whole[MAX_EVENTS], chunked[MAX_EVENTS];

static void fail(const char *what)
{
    fprintf(stderr, "wire_fuzz: %s\n", what);
    abort();
}

static uint64_t digest(const uint8_t *p, uint32_t len)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */

    for (uint32_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

/* Feeds @data in chunks of chunks[k] + 1 bytes (all at once if nchunks is 0). */
static size_t feed(const uint8_t *data, size_t size, const uint8_t *chunks,
                   size_t nchunks, struct event *ev)
{
    /* On the heap, exactly its size: an overrun hits ASan's redzone. */
    VlinkRx *rx = calloc(1, sizeof(*rx));   /* zeroed, as vlink_wire_init() leaves it */
    size_t off = 0, k = 0, n = 0;

    if (!rx) {
        fail("out of memory");
    }
    vlink_rx_reset(rx);
    while (off < size) {
        size_t chunk = nchunks ? (size_t)chunks[k++ % nchunks] + 1 : size - off;
        const uint8_t *p = data + off;
        uint32_t left;

        if (chunk > size - off) {
            chunk = size - off;
        }
        left = (uint32_t)chunk;
        off += chunk;
        while (left > 0) {
            uint32_t used = 0;
            VlinkRxStatus status = vlink_rx_feed(rx, p, left, &used);

            if (used == 0 || used > left) {
                fail("feed made no progress or took more than it was given");
            }
            if (rx->have > sizeof(rx->buf)) {
                fail("reassembly buffer overrun");
            }
            p += used;
            left -= used;
            if (status == VLINK_RX_MORE) {
                continue;
            }
            if (n == MAX_EVENTS) {
                goto out;
            }
            ev[n] = (struct event){ .status = status, .type = rx->type, .length = rx->length };
            switch (status) {
            case VLINK_RX_MESSAGE:
                if (rx->magic != VLINK_MAGIC || rx->version != VLINK_VERSION ||
                    rx->length > VLINK_MAX_PAYLOAD || rx->have != 0) {
                    fail("a message with a header that should have been refused");
                }
                ev[n].digest = digest(vlink_rx_payload(rx), rx->length);
                break;
            case VLINK_RX_SKIP:
                if (rx->length <= VLINK_MAX_PAYLOAD || rx->skip != rx->length) {
                    fail("skipping a message that fits");
                }
                break;
            case VLINK_RX_BAD_MAGIC:
            case VLINK_RX_BAD_VERSION:
                /* vepc-wire.c hangs up: nothing after this is read. */
                vlink_rx_reset(rx);
                n++;
                goto out;
            default:
                fail("unknown status");
            }
            n++;
        }
    }
out:
    free(rx);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nchunks, a, b;

    if (size < 1) {
        return 0;
    }
    nchunks = data[0] % 16;
    if (size < 1 + nchunks) {
        return 0;
    }
    a = feed(data + 1 + nchunks, size - 1 - nchunks, NULL, 0, whole);
    b = feed(data + 1 + nchunks, size - 1 - nchunks, data + 1, nchunks, chunked);
    if (a != b) {
        fail("whole and chunked feeds saw a different number of events");
    }
    for (size_t i = 0; i < a; i++) {
        if (whole[i].status != chunked[i].status || whole[i].type != chunked[i].type ||
            whole[i].length != chunked[i].length || whole[i].digest != chunked[i].digest) {
            fail("whole and chunked feeds saw different events");
        }
    }
    return 0;
}
