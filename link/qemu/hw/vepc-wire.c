/*
 * vepc-wire.c - link protocol framing and peer RAM mapping shared by the
 * "vepc" and "vepc-function" devices.  Reassembly itself is vlink-rx.c.  The protocol itself is defined in
 * hw/misc/vepc-link.h and explained in link/PROTOCOL.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "chardev/char-socket.h"
#include "io/channel.h"
#include "qemu/timer.h"
#include "vepc-wire.h"

QEMU_BUILD_BUG_ON(sizeof(struct vlink_header) != VLINK_HEADER_SIZE);
/* The wire layout is the C layout: these catch an edit that adds padding. */
QEMU_BUILD_BUG_ON(sizeof(struct vlink_hello) != 8);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_bar) != 24);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_start) != 160);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_set_bar) != 32);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_raise_irq) != 8);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_irq_result_msg) != 16);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_host_config) != 24);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_window) != 32);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_link_state) != 8);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_doorbell) != 24);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_mem_write) != 24);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_fabric_write) != 24);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_fabric_read) != 24);
QEMU_BUILD_BUG_ON(sizeof(struct vlink_fabric_read_reply) != 16);

void vlink_wire_init(VlinkWire *w, CharBackend *chr, const char *name,
                     VlinkHandler *handle, void *opaque)
{
    memset(w, 0, sizeof(*w));
    w->chr = chr;
    w->name = name;
    w->handle = handle;
    w->opaque = opaque;
}

void vlink_wire_opened(VlinkWire *w)
{
    w->connected = true;
    w->tx_seq = 0;
    vlink_rx_reset(&w->rx);
}

void vlink_wire_closed(VlinkWire *w)
{
    w->connected = false;
    vlink_rx_reset(&w->rx);
}

int vlink_wire_can_receive(VlinkWire *w)
{
    return sizeof(w->rx.buf);
}

bool vlink_wire_send(VlinkWire *w, uint16_t type,
                     const void *payload, uint32_t len)
{
    uint8_t buf[VLINK_HEADER_SIZE + VLINK_MAX_PAYLOAD];
    struct vlink_header hdr;

    assert(len <= VLINK_MAX_PAYLOAD);
    if (!w->connected) {
        return false;
    }

    hdr.magic = cpu_to_le32(VLINK_MAGIC);
    hdr.version = cpu_to_le16(VLINK_VERSION);
    hdr.type = cpu_to_le16(type);
    hdr.length = cpu_to_le32(len);
    hdr.seq = cpu_to_le32(w->tx_seq++);
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), payload, len);

    /* One write per message so a relay never sees a torn header. */
    if (qemu_chr_fe_write_all(w->chr, buf, sizeof(hdr) + len) < 0) {
        error_report("%s: link write failed (type %u)", w->name, type);
        return false;
    }
    return true;
}

bool vlink_payload(VlinkWire *w, uint16_t type, const uint8_t *payload,
                   uint32_t len, void *out, size_t out_size)
{
    memset(out, 0, out_size);
    if (len < out_size) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: message type %u has %u payload bytes, need %zu\n",
                      w->name, type, len, out_size);
        return false;
    }
    memcpy(out, payload, out_size);
    return true;
}

/*
 * Consume up to @size bytes and return how many were used.  Dispatches a
 * message when it is complete; returns -1 if the connection was dropped.
 */
static int vlink_wire_feed(VlinkWire *w, const uint8_t *buf, int size)
{
    VlinkRx *rx = &w->rx;
    uint32_t used;

    switch (vlink_rx_feed(rx, buf, size, &used)) {
    case VLINK_RX_MORE:
        return used;
    case VLINK_RX_SKIP:
        qemu_log_mask(LOG_UNIMP, "%s: skipping message type %u with "
                      "%u payload bytes\n", w->name, rx->type, rx->length);
        return used;
    case VLINK_RX_BAD_MAGIC:
        /* A wrong magic or version: we are not talking to our relay. */
        error_report("%s: bad link magic 0x%08x, dropping the connection",
                     w->name, rx->magic);
        break;
    case VLINK_RX_BAD_VERSION:
        error_report("%s: link version %u, we speak %u, dropping the "
                     "connection", w->name, rx->version, VLINK_VERSION);
        break;
    case VLINK_RX_MESSAGE:
        w->handle(w->opaque, rx->type, vlink_rx_payload(rx), rx->length);
        /* The handler may have answered and found the connection gone. */
        return w->connected ? (int)used : -1;
    }
    vlink_wire_closed(w);
    qemu_chr_fe_disconnect(w->chr);
    return -1;
}

void vlink_wire_receive(VlinkWire *w, const uint8_t *buf, int size)
{
    while (size > 0) {
        int used = vlink_wire_feed(w, buf, size);

        if (used < 0) {
            return;
        }
        buf += used;
        size -= used;
    }
}

/*
 * The socket chardev reads only from the main loop, which cannot run while
 * a vCPU holds the BQL in an MMIO callback.  So we poll its file descriptor
 * and read its channel ourselves: the channel is non-blocking, and the main
 * loop reads it only under the BQL, which we hold, so no byte is read twice
 * or out of order.  Bytes go through the same reassembly (w->rx) as the
 * main loop's, so a message half-read before we started completes here.
 * An EOF is left for the chardev to find on its next read (it disconnects
 * and sends CHR_EVENT_CLOSED as usual); we only report the link gone.
 */
int vlink_wire_wait(VlinkWire *w, int64_t deadline_ns,
                    bool (*done)(void *opaque), void *opaque)
{
    Chardev *chr = qemu_chr_fe_get_driver(w->chr);
    SocketChardev *sc;
    uint8_t buf[256];

    if (!chr || !object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)) {
        return -1;
    }
    sc = SOCKET_CHARDEV(chr);
    while (!done(opaque)) {
        GPollFD pfd;
        int64_t left_ms;
        ssize_t n;
        int ret;

        if (!w->connected || sc->state != TCP_CHARDEV_STATE_CONNECTED ||
            !sc->sioc || !sc->ioc) {
            return -1;
        }
        left_ms = (deadline_ns - qemu_clock_get_ns(QEMU_CLOCK_REALTIME)) /
                  SCALE_MS;
        if (left_ms <= 0) {
            return 0;
        }
        pfd.fd = sc->sioc->fd;
        pfd.events = G_IO_IN | G_IO_HUP | G_IO_ERR;
        pfd.revents = 0;
        ret = g_poll(&pfd, 1, MIN(left_ms, 100));
        if (ret < 0 && errno != EINTR) {
            return -1;
        }
        if (ret <= 0) {
            continue;
        }
        n = qio_channel_read(sc->ioc, (char *)buf, sizeof(buf), NULL);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        vlink_wire_receive(w, buf, n);
    }
    return 1;
}

bool vlink_map_peer_ram(MemoryRegion *mr, Object *owner, const char *path,
                        uint64_t *size, Error **errp)
{
    Error *local_err = NULL;
    struct stat st;
    int fd;

    if (!path || !*path) {
        error_setg(errp, "no peer-ram file given");
        return false;
    }
    /* No O_CREAT: the peer's QEMU owns the file and sized it. */
    fd = qemu_open(path, O_RDWR, errp);
    if (fd < 0) {
        return false;
    }
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat peer-ram '%s'", path);
        goto fail;
    }
    /*
     * An empty file would make QEMU ftruncate() it to our size, and a size
     * that is not page aligned would be refused further down anyway.
     */
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
        !QEMU_IS_ALIGNED(st.st_size, qemu_real_host_page_size())) {
        error_setg(errp, "peer-ram '%s' is not a sized guest RAM file "
                   "(size %" PRId64 ")", path, (int64_t)st.st_size);
        goto fail;
    }

    /* On success the RAMBlock owns fd and closes it when it goes away. */
    memory_region_init_ram_from_fd(mr, owner, "peer-ram", st.st_size,
                                   RAM_SHARED, fd, 0, &local_err);
    if (local_err) {
        error_propagate_prepend(errp, local_err, "peer-ram '%s': ", path);
        goto fail;
    }
    *size = st.st_size;
    return true;

fail:
    close(fd);
    return false;
}
