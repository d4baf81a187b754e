/*
 * vepc-wire.h - what "vepc" and "vepc-function" share: the framing of the
 * link protocol (vepc-link.h, link/PROTOCOL.md) on a chardev, and the
 * careful mapping of the peer guest's RAM file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_VEPC_WIRE_H
#define HW_MISC_VEPC_WIRE_H

#include "chardev/char-fe.h"
#include "exec/memory.h"
#include "hw/misc/vepc-link.h"
#include "vlink-rx.h"

/* Called once per complete message; @payload is in wire (LE) order. */
typedef void VlinkHandler(void *opaque, uint16_t type,
                          const uint8_t *payload, uint32_t len);

typedef struct VlinkWire {
    CharBackend *chr;
    const char *name;           /* device type, for log lines */
    VlinkHandler *handle;
    void *opaque;

    bool connected;
    uint32_t tx_seq;

    /* Reassembly: the chardev hands us arbitrary chunks. */
    VlinkRx rx;
} VlinkWire;

void vlink_wire_init(VlinkWire *w, CharBackend *chr, const char *name,
                     VlinkHandler *handle, void *opaque);
void vlink_wire_opened(VlinkWire *w);
void vlink_wire_closed(VlinkWire *w);
int vlink_wire_can_receive(VlinkWire *w);
void vlink_wire_receive(VlinkWire *w, const uint8_t *buf, int size);
bool vlink_wire_send(VlinkWire *w, uint16_t type,
                     const void *payload, uint32_t len);

/*
 * Wait for a message without the main loop: read the chardev ourselves and
 * dispatch every complete message through @w's handler, in arrival order,
 * until @done(@opaque) is true or @deadline_ns (QEMU_CLOCK_REALTIME) passes.
 * For a device that must answer inside an MMIO callback (a non-posted read
 * across the link).  Returns 1 when done, 0 on timeout, -1 when the link
 * is not there (not a socket, not connected, closed meanwhile).
 */
int vlink_wire_wait(VlinkWire *w, int64_t deadline_ns,
                    bool (*done)(void *opaque), void *opaque);

/*
 * Copy a received payload into @out (zero-filled first).  Longer payloads
 * are fine (a newer peer added fields); shorter ones are refused.
 */
bool vlink_payload(VlinkWire *w, uint16_t type, const uint8_t *payload,
                   uint32_t len, void *out, size_t out_size);

/*
 * Map the peer guest's RAM file (a memory-backend-file,share=on of the other
 * QEMU) into @mr.  The file must already exist with its final size: we
 * never create, truncate or grow it.
 */
bool vlink_map_peer_ram(MemoryRegion *mr, Object *owner, const char *path,
                        uint64_t *size, Error **errp);

#endif
