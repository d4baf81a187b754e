/*
 * vepc-function - the endpoint function as the host (RC) guest sees it.
 *
 * The harness relay hot-plugs one of these into a pcie-root-port when the
 * EP guest starts its endpoint controller ("vepc") and unplugs it when the
 * EP stops.  Everything the EP wrote arrives as properties: IDs, class,
 * interrupt pin, MSI vector count, and per BAR its size, flags and where it
 * lives in the EP guest's RAM file.  QEMU's PCI core then does what a real
 * function does: config cycles, BAR sizing, MSI address/data and masking.
 *
 * BARs are zero-copy: each is an alias into the EP's shared RAM file, which
 * SET_BAR re-points while the function runs (pci-epf-vntb re-targets its
 * memory-window BARs).  RAISE_IRQ from the EP becomes INTx or msi_notify(),
 * and every attempt is answered with IRQ_RESULT for the relay's trace.
 * A BAR the EP backs with its doorbell region or with an aperture of its
 * fabric (pci-epf-ntb) has no RAM behind it here: writes travel to the EP
 * as DOORBELL or FABRIC_WRITE messages.  Doorbell reads return 0; a fabric
 * read is non-posted, as on PCIe: FABRIC_READ goes out and the vCPU waits
 * for its FABRIC_READ_REPLY (or a completion timeout: all-ones).
 * Protocol: hw/misc/vepc-link.h, link/PROTOCOL.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "hw/pci/msi.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "vepc-wire.h"

#define TYPE_VEPC_FUNCTION "vepc-function"
OBJECT_DECLARE_SIMPLE_TYPE(VepcFunctionState, VEPC_FUNCTION)

#define VF_NUM_BARS             6
#define VF_MSI_CAP_OFFSET       0x50
#define VF_EXP_CAP_OFFSET       0x80

typedef struct VepcFunctionBar {
    VepcFunctionState *owner;   /* for the container's MMIO callbacks */
    int index;
    /* Properties, fixed for the life of the function. */
    uint64_t size;              /* 0 = BAR not implemented */
    uint32_t flags;             /* VEPC_BAR_F_* */
    uint64_t offset;            /* in the EP's RAM file */

    MemoryRegion container;     /* what pci_register_bar() sees */
    MemoryRegion alias;         /* into peer_ram, present while backed */
    bool backed;
    /* Mapped onto the EP's doorbell region: writes go back as DOORBELL. */
    bool doorbell;
    uint64_t doorbell_offset;
    /* Backed by an EP aperture (the EP's fabric): writes go as FABRIC_WRITE. */
    bool fabric;
    uint64_t fabric_addr;       /* EP physical address of the BAR's start */
} VepcFunctionBar;

struct VepcFunctionState {
    PCIDevice pdev;

    /* Properties */
    CharBackend chr;
    uint32_t link_id;
    char *peer_ram_path;
    uint16_t vendor_id;
    uint16_t device_id;
    uint8_t revision;
    uint32_t class_code;
    uint16_t subsys_vendor_id;
    uint16_t subsys_id;
    uint8_t intx_pin;
    uint8_t msi_vectors;
    VepcFunctionBar bars[VF_NUM_BARS];

    VlinkWire wire;
    MemoryRegion peer_ram;
    uint64_t peer_ram_size;
    bool peer_ram_mapped;

    /* Last HOST_CONFIG sent, so only changes go on the wire. */
    struct vlink_host_config host_config;
    /* HOST_CONFIGs sent from config writes and HOST_CONFIG_ACKs received. */
    uint32_t config_sent;
    uint32_t config_acked;
    uint32_t config_ack_timeouts;

    /*
     * The fabric read in flight (at most one: the vCPU that made it waits).
     * Replies are matched by tag, so a late one for a read that timed out
     * is recognised and dropped.
     */
    uint32_t read_timeout_ms;   /* property: the completion timeout */
    uint32_t read_tag;
    bool read_pending;
    bool read_done;
    uint32_t read_status;
    uint64_t read_value;
    uint32_t read_timeouts;     /* reads answered with all-ones: timeout or no link */
    uint32_t read_errors;       /* reads the EP refused or failed */
};

/* ---- host configuration ------------------------------------------------ */

/* Vectors the host enabled: the MSI Multiple Message Enable field. */
static uint32_t vf_msi_enabled_vectors(VepcFunctionState *s)
{
    PCIDevice *pdev = &s->pdev;
    uint16_t flags;

    if (!msi_enabled(pdev)) {
        return 0;
    }
    flags = pci_get_word(pdev->config + pdev->msi_cap + PCI_MSI_FLAGS);
    return 1u << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4);
}

static void vf_send_host_config(VepcFunctionState *s, bool only_if_changed)
{
    struct vlink_host_config now = {
        .msi_enabled_vectors = cpu_to_le32(vf_msi_enabled_vectors(s)),
        .command = cpu_to_le32(pci_get_word(s->pdev.config + PCI_COMMAND)),
    };

    /* What a real EP reads from its own MSI capability for map_msi_irq. */
    if (msi_enabled(&s->pdev)) {
        MSIMessage msg = msi_get_message(&s->pdev, 0);

        now.msi_address = cpu_to_le64(msg.address);
        now.msi_data = cpu_to_le32(msg.data);
    }

    if (only_if_changed && !memcmp(&now, &s->host_config, sizeof(now))) {
        return;
    }
    s->host_config = now;
    /* The EP answers each one (HOST_CONFIG_ACK): count them to match. */
    if (vlink_wire_send(&s->wire, VLINK_MSG_HOST_CONFIG, &now, sizeof(now))) {
        s->config_sent++;
    }
}

static bool vf_config_acked(void *opaque)
{
    VepcFunctionState *s = opaque;

    return s->config_acked == s->config_sent;
}

static void vf_host_config_ack(VepcFunctionState *s, const uint8_t *payload,
                               uint32_t len)
{
    struct vlink_host_config m = { 0 };

    if (!vlink_payload(&s->wire, VLINK_MSG_HOST_CONFIG_ACK, payload, len,
                       &m, VLINK_HOST_CONFIG_V1_SIZE)) {
        return;
    }
    /* One answer per HOST_CONFIG, in order; a stray one is not counted. */
    if (s->config_acked != s->config_sent) {
        s->config_acked++;
    }
}

/*
 * A config write is non-posted: the host's vCPU does not go on until it
 * completed.  On our link "completed" means the EP applied the HOST_CONFIG
 * it caused, so wait (like a fabric read, reading the link ourselves) for
 * the EP's HOST_CONFIG_ACK.  Without the wait the host's next write into a
 * BAR backed by EP RAM (a command for the EPF) could reach the EP before
 * the new MSI state, which no PCIe ordering allows.  No answer in time (an
 * EP without the message, a stopped EP guest): go on and count it.
 */
static void vf_wait_config_applied(VepcFunctionState *s)
{
    int64_t deadline;

    if (vf_config_acked(s)) {
        return;
    }
    deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
               (int64_t)s->read_timeout_ms * SCALE_MS;
    if (vlink_wire_wait(&s->wire, deadline, vf_config_acked, s) != 1) {
        s->config_ack_timeouts++;
        s->config_acked = s->config_sent;
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: the EP did not "
                      "confirm the host configuration in %u ms (%u)\n",
                      s->read_timeout_ms, s->config_ack_timeouts);
    }
}

static void vf_write_config(PCIDevice *pdev, uint32_t addr, uint32_t val,
                            int len)
{
    VepcFunctionState *s = VEPC_FUNCTION(pdev);
    uint32_t sent = s->config_sent;

    /* Also runs msi_write_config(). */
    pci_default_write_config(pdev, addr, val, len);
    /* The EP driver learns MSI enable/count and bus mastering from this. */
    vf_send_host_config(s, true);
    if (s->config_sent != sent) {
        vf_wait_config_applied(s);
    }
}

/* ---- interrupts -------------------------------------------------------- */

static uint32_t vf_raise_intx(VepcFunctionState *s)
{
    if (s->intx_pin == 0) {
        return VLINK_IRQ_UNSUPPORTED;
    }
    pci_irq_pulse(&s->pdev);
    return VLINK_IRQ_DELIVERED;
}

/*
 * The same checks a real function makes before it writes an MSI; QEMU
 * would drop a write without bus mastering silently, and msi_notify()
 * asserts on a vector the host did not enable.
 */
static uint32_t vf_raise_msi(VepcFunctionState *s, uint32_t number)
{
    PCIDevice *pdev = &s->pdev;
    unsigned int vector = number - 1;

    if (!msi_enabled(pdev)) {
        return VLINK_IRQ_MSI_DISABLED;
    }
    if (number < 1 || number > vf_msi_enabled_vectors(s) ||
        vector >= msi_nr_vectors_allocated(pdev)) {
        return VLINK_IRQ_OUT_OF_RANGE;
    }
    if (!(pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        return VLINK_IRQ_NO_BUS_MASTER;
    }
    if (msi_is_masked(pdev, vector)) {
        /* msi_notify() sets the pending bit; unmasking does not replay it. */
        msi_notify(pdev, vector);
        return VLINK_IRQ_MASKED;
    }
    msi_notify(pdev, vector);
    return VLINK_IRQ_DELIVERED;
}

static void vf_raise_irq(VepcFunctionState *s, const uint8_t *payload,
                         uint32_t len)
{
    struct vlink_raise_irq m;
    struct vlink_irq_result_msg r = { 0 };
    uint32_t type, number, result;

    if (!vlink_payload(&s->wire, VLINK_MSG_RAISE_IRQ, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    type = le32_to_cpu(m.type);
    number = le32_to_cpu(m.number);

    switch (type) {
    case VEPC_IRQ_INTX:
        result = vf_raise_intx(s);
        break;
    case VEPC_IRQ_MSI:
        result = vf_raise_msi(s, number);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: unknown IRQ type %u\n",
                      type);
        result = VLINK_IRQ_UNSUPPORTED;
    }

    r.type = cpu_to_le32(type);
    r.number = cpu_to_le32(number);
    r.result = cpu_to_le32(result);
    vlink_wire_send(&s->wire, VLINK_MSG_IRQ_RESULT, &r, sizeof(r));
}

/*
 * The EP wrote through an outbound window to a host address outside RAM:
 * replay it as this function's DMA write, so it meets the RC's IOMMU
 * (interrupt remapping) and MSI controller exactly as msi_notify() would,
 * and is dropped like any DMA while Bus Master Enable is clear.
 */
static void vf_mem_write(VepcFunctionState *s, const uint8_t *payload,
                         uint32_t len)
{
    struct vlink_mem_write m;
    uint32_t size;
    uint64_t value;
    uint8_t buf[8];
    MemTxResult res;

    if (!vlink_payload(&s->wire, VLINK_MSG_MEM_WRITE, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    size = le32_to_cpu(m.size);
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: MEM_WRITE of %u "
                      "bytes\n", size);
        return;
    }
    value = le64_to_cpu(m.value);
    stq_le_p(buf, value);
    res = pci_dma_write(&s->pdev, le64_to_cpu(m.address), buf, size);
    if (res != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: MEM_WRITE to 0x%"
                      PRIx64 " failed (%d)\n", le64_to_cpu(m.address), res);
    }
}

/* ---- BARs -------------------------------------------------------------- */

/* An entry the EP declared but has not pointed at memory yet reads 0. */
static bool vf_bar_backed(uint32_t flags)
{
    return (flags & VEPC_BAR_F_ENABLED) &&
           !(flags & (VEPC_BAR_F_UNBACKED | VEPC_BAR_F_DOORBELL |
                      VEPC_BAR_F_FABRIC));
}

/* The BAR's writes become FABRIC_WRITE messages (an EP aperture behind it). */
static bool vf_bar_fabric(uint32_t flags)
{
    return (flags & VEPC_BAR_F_ENABLED) && (flags & VEPC_BAR_F_FABRIC) &&
           !(flags & (VEPC_BAR_F_UNBACKED | VEPC_BAR_F_DOORBELL));
}

/* The BAR's writes become DOORBELL messages (no EP RAM behind it). */
static bool vf_bar_doorbell(uint32_t flags)
{
    return (flags & VEPC_BAR_F_ENABLED) && (flags & VEPC_BAR_F_DOORBELL) &&
           !(flags & VEPC_BAR_F_UNBACKED);
}

static bool vf_in_peer_ram(VepcFunctionState *s, uint64_t offset,
                           uint64_t size)
{
    return offset < s->peer_ram_size && size <= s->peer_ram_size - offset;
}

/* Point BAR n at EP RAM offset, or leave it empty (reads 0). */
static void vf_back_bar(VepcFunctionState *s, int n, bool backed,
                        uint64_t offset)
{
    VepcFunctionBar *b = &s->bars[n];

    memory_region_transaction_begin();
    if (backed) {
        memory_region_set_alias_offset(&b->alias, offset);
        if (!b->backed) {
            memory_region_add_subregion(&b->container, 0, &b->alias);
        }
    } else if (b->backed) {
        memory_region_del_subregion(&b->container, &b->alias);
    }
    memory_region_transaction_commit();
    b->backed = backed;
}

static void vf_set_bar(VepcFunctionState *s, const uint8_t *payload,
                       uint32_t len)
{
    struct vlink_set_bar m;
    uint32_t n, flags;
    uint64_t size, offset;

    if (!vlink_payload(&s->wire, VLINK_MSG_SET_BAR, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    n = le32_to_cpu(m.bar);
    flags = le32_to_cpu(m.entry.flags);
    size = le64_to_cpu(m.entry.size);
    offset = le64_to_cpu(m.entry.ep_ram_offset);

    if (n >= VF_NUM_BARS || s->bars[n].size == 0) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: SET_BAR for BAR%u, "
                      "which the function does not have\n", n);
        return;
    }
    /* Any re-target ends forwarding; a doorbell or fabric entry starts it again. */
    s->bars[n].doorbell = false;
    s->bars[n].fabric = false;
    if (vf_bar_doorbell(flags) && size == s->bars[n].size) {
        vf_back_bar(s, n, false, 0);
        s->bars[n].doorbell = true;
        s->bars[n].doorbell_offset = offset;
        return;
    }
    if (vf_bar_fabric(flags) && size == s->bars[n].size) {
        vf_back_bar(s, n, false, 0);
        s->bars[n].fabric = true;
        s->bars[n].fabric_addr = offset;
        return;
    }
    if (!vf_bar_backed(flags)) {
        vf_back_bar(s, n, false, 0);
        return;
    }
    /* The host sized and placed the BAR at plug time. */
    if (size != s->bars[n].size) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: SET_BAR%u: size 0x%"
                      PRIx64 " differs from 0x%" PRIx64 " at plug time, "
                      "ignored\n", n, size, s->bars[n].size);
        return;
    }
    if (!vf_in_peer_ram(s, offset, size)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: SET_BAR%u: 0x%" PRIx64
                      "+0x%" PRIx64 " is outside the EP's RAM, ignored\n",
                      n, offset, size);
        return;
    }
    vf_back_bar(s, n, true, offset);
}

/* ---- reads through the EP's fabric (non-posted) ------------------------ */

static bool vf_read_done(void *opaque)
{
    VepcFunctionState *s = opaque;

    return s->read_done;
}

static void vf_fabric_read_reply(VepcFunctionState *s, const uint8_t *payload,
                                 uint32_t len)
{
    struct vlink_fabric_read_reply m;
    uint32_t tag;

    if (!vlink_payload(&s->wire, VLINK_MSG_FABRIC_READ_REPLY, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    tag = le32_to_cpu(m.tag);
    if (!s->read_pending || s->read_done || tag != s->read_tag) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: FABRIC_READ_REPLY "
                      "tag %u matches no read in flight (late after a "
                      "timeout?), dropped\n", tag);
        return;
    }
    s->read_status = le32_to_cpu(m.status);
    s->read_value = le64_to_cpu(m.value);
    s->read_done = true;
}

/*
 * A host read from a fabric BAR: a non-posted request, so the vCPU waits
 * here for its completion, as a CPU stalls on a PCIe read.  The main loop
 * cannot run meanwhile (we hold the BQL), so vlink_wire_wait() reads the
 * link itself.  Messages that arrive before the reply are dispatched at
 * once, in order, before the read returns: PCIe does not let a completion
 * pass posted writes going the same way (MEM_WRITE, an MSI written as
 * memory), and what they do (re-pointing a BAR, msi_notify, a DMA write,
 * an IRQ_RESULT on the wire) is what any device may do in an MMIO
 * callback.  Queueing them for a bottom half instead would let the read
 * overtake them and would race the chardev's own reads of later bytes.
 * No reply in time, or no link: all-ones, as a completion timeout or an
 * unsupported request reads on real hardware.
 */
static uint64_t vf_fabric_read(VepcFunctionState *s, VepcFunctionBar *b,
                               hwaddr addr, unsigned size)
{
    uint64_t ones = size == 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
    struct vlink_fabric_read r;
    int64_t deadline;
    int ret;

    if (s->read_pending) {
        /* Only reachable by a handler that reads back into us: refuse. */
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: nested fabric read\n");
        return ones;
    }
    s->read_tag++;
    r.bar = cpu_to_le32(b->index);
    r.size = cpu_to_le32(size);
    r.address = cpu_to_le64(b->fabric_addr + addr);
    r.tag = cpu_to_le32(s->read_tag);
    r.reserved = 0;
    if (!vlink_wire_send(&s->wire, VLINK_MSG_FABRIC_READ, &r, sizeof(r))) {
        s->read_timeouts++;
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: fabric read of BAR%d"
                      "+0x%" HWADDR_PRIx ": no link, reads all-ones (%u)\n",
                      b->index, addr, s->read_timeouts);
        return ones;
    }

    s->read_pending = true;
    s->read_done = false;
    deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
               (int64_t)s->read_timeout_ms * SCALE_MS;
    ret = vlink_wire_wait(&s->wire, deadline, vf_read_done, s);
    s->read_pending = false;
    if (ret != 1) {
        s->read_timeouts++;
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: fabric read of BAR%d"
                      "+0x%" HWADDR_PRIx " tag %u: %s, reads all-ones (%u)\n",
                      b->index, addr, s->read_tag,
                      ret == 0 ? "completion timeout" : "link lost",
                      s->read_timeouts);
        return ones;
    }
    if (s->read_status != VLINK_FABRIC_READ_OK) {
        s->read_errors++;
        qemu_log_mask(LOG_GUEST_ERROR, "vepc-function: fabric read of BAR%d"
                      "+0x%" HWADDR_PRIx " refused (status %u), reads "
                      "all-ones (%u)\n", b->index, addr, s->read_status,
                      s->read_errors);
        return ones;
    }
    return s->read_value & ones;
}

/*
 * A BAR without RAM behind it reads as zero.  Writes are dropped, unless
 * the EP mapped the BAR onto its doorbell region or an aperture of its
 * fabric: then each one travels to the EP as it was made (offset or
 * address, size, value), like a posted write would.  Reads of a fabric
 * BAR travel too, and wait for their completion.
 */
static uint64_t vf_hole_read(void *opaque, hwaddr addr, unsigned size)
{
    VepcFunctionBar *b = opaque;

    if (b->fabric) {
        return vf_fabric_read(b->owner, b, addr, size);
    }
    return 0;
}

static void vf_hole_write(void *opaque, hwaddr addr, uint64_t val,
                          unsigned size)
{
    VepcFunctionBar *b = opaque;
    VepcFunctionState *s = b->owner;
    struct vlink_doorbell m;

    if (b->fabric) {
        struct vlink_fabric_write f = {
            .bar = cpu_to_le32(b->index),
            .size = cpu_to_le32(size),
            .address = cpu_to_le64(b->fabric_addr + addr),
            .value = cpu_to_le64(val),
        };

        vlink_wire_send(&s->wire, VLINK_MSG_FABRIC_WRITE, &f, sizeof(f));
        return;
    }
    if (!b->doorbell) {
        return;
    }
    /* Memory Space Enable gates the BAR already; Bus Master is the EP's. */
    m.bar = cpu_to_le32(b->index);
    m.size = cpu_to_le32(size);
    m.offset = cpu_to_le64(b->doorbell_offset + addr);
    m.value = cpu_to_le64(val);
    vlink_wire_send(&s->wire, VLINK_MSG_DOORBELL, &m, sizeof(m));
}

static const MemoryRegionOps vf_hole_ops = {
    .read = vf_hole_read,
    .write = vf_hole_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

static uint8_t vf_bar_type(uint32_t flags)
{
    uint8_t type;

    if (flags & VEPC_BAR_F_IO) {
        return PCI_BASE_ADDRESS_SPACE_IO;
    }
    type = PCI_BASE_ADDRESS_SPACE_MEMORY;
    if (flags & VEPC_BAR_F_MEM64) {
        type |= PCI_BASE_ADDRESS_MEM_TYPE_64;
    }
    if (flags & VEPC_BAR_F_PREFETCH) {
        type |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    }
    return type;
}

static bool vf_check_bar(VepcFunctionState *s, int n, Error **errp)
{
    VepcFunctionBar *b = &s->bars[n];
    bool is_io = b->flags & VEPC_BAR_F_IO;
    bool is_64 = b->flags & VEPC_BAR_F_MEM64;

    if (b->size == 0) {
        return true;
    }
    if (!is_power_of_2(b->size) || b->size < (is_io ? 4 : 16) ||
        (is_io && (is_64 || b->size > 256)) ||
        (!is_64 && b->size > 2 * GiB)) {
        error_setg(errp, "bar%d: bad size 0x%" PRIx64 " for flags 0x%x",
                   n, b->size, b->flags);
        return false;
    }
    if (is_64 && (n == VF_NUM_BARS - 1 || s->bars[n + 1].size)) {
        error_setg(errp, "bar%d is 64-bit: bar%d must be absent", n, n + 1);
        return false;
    }
    if (b->size > s->peer_ram_size) {
        error_setg(errp, "bar%d: size 0x%" PRIx64 " exceeds the EP's RAM",
                   n, b->size);
        return false;
    }
    if (vf_bar_backed(b->flags) && !vf_in_peer_ram(s, b->offset, b->size)) {
        error_setg(errp, "bar%d: 0x%" PRIx64 "+0x%" PRIx64 " is outside "
                   "the EP's RAM (0x%" PRIx64 ")", n, b->offset, b->size,
                   s->peer_ram_size);
        return false;
    }
    return true;
}

static void vf_init_bar(VepcFunctionState *s, int n)
{
    VepcFunctionBar *b = &s->bars[n];
    g_autofree char *name = g_strdup_printf("vepc-function.bar%d", n);
    g_autofree char *alias_name = g_strdup_printf("vepc-function.bar%d-ep-ram",
                                                  n);

    if (b->size == 0) {
        return;
    }
    b->owner = s;
    b->index = n;
    memory_region_init_io(&b->container, OBJECT(s), &vf_hole_ops, b, name,
                          b->size);
    memory_region_init_alias(&b->alias, OBJECT(s), alias_name, &s->peer_ram,
                             0, b->size);
    b->backed = false;
    b->doorbell = vf_bar_doorbell(b->flags);
    b->doorbell_offset = b->offset;
    b->fabric = vf_bar_fabric(b->flags);
    b->fabric_addr = b->offset;
    if (vf_bar_backed(b->flags)) {
        vf_back_bar(s, n, true, b->offset);
    }
    pci_register_bar(&s->pdev, n, vf_bar_type(b->flags), &b->container);
}

/* ---- messages from the relay ------------------------------------------ */

static void vf_send_hello(VepcFunctionState *s)
{
    struct vlink_hello m = {
        .role = cpu_to_le32(VLINK_ROLE_RC),
        .link_id = cpu_to_le32(s->link_id),
    };

    vlink_wire_send(&s->wire, VLINK_MSG_HELLO, &m, sizeof(m));
}

static void vf_handle_message(void *opaque, uint16_t type,
                              const uint8_t *payload, uint32_t len)
{
    VepcFunctionState *s = opaque;

    switch (type) {
    case VLINK_MSG_SET_BAR:
        vf_set_bar(s, payload, len);
        break;
    case VLINK_MSG_RAISE_IRQ:
        vf_raise_irq(s, payload, len);
        break;
    case VLINK_MSG_MEM_WRITE:
        vf_mem_write(s, payload, len);
        break;
    case VLINK_MSG_FABRIC_READ_REPLY:
        vf_fabric_read_reply(s, payload, len);
        break;
    case VLINK_MSG_HOST_CONFIG_ACK:
        vf_host_config_ack(s, payload, len);
        break;
    default:
        qemu_log_mask(LOG_UNIMP, "vepc-function: ignoring link message "
                      "type %u\n", type);
    }
}

static int vf_can_receive(void *opaque)
{
    VepcFunctionState *s = opaque;

    return vlink_wire_can_receive(&s->wire);
}

static void vf_receive(void *opaque, const uint8_t *buf, int size)
{
    VepcFunctionState *s = opaque;

    vlink_wire_receive(&s->wire, buf, size);
}

static void vf_chr_event(void *opaque, QEMUChrEvent event)
{
    VepcFunctionState *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        vlink_wire_opened(&s->wire);
        vf_send_hello(s);
        /* Start the EP from the function's current state. */
        vf_send_host_config(s, false);
        break;
    case CHR_EVENT_CLOSED:
        vlink_wire_closed(&s->wire);
        /* Answers to what went out on the old connection will not come. */
        s->config_acked = s->config_sent;
        break;
    default:
        break;
    }
}

/* ---- device ------------------------------------------------------------ */

static bool vf_check_properties(VepcFunctionState *s, Error **errp)
{
    int n;

    if (s->class_code > 0xffffff) {
        error_setg(errp, "class-code is 24 bits: class, subclass, prog-if");
        return false;
    }
    if (s->intx_pin > 4) {
        error_setg(errp, "intx-pin must be 0 (none) or 1..4 (INTA..INTD)");
        return false;
    }
    if (s->msi_vectors > 32) {
        error_setg(errp, "msi-vectors must be 0..32");
        return false;
    }
    if (s->read_timeout_ms < 1 || s->read_timeout_ms > 60000) {
        error_setg(errp, "fabric-read-timeout-ms must be 1..60000");
        return false;
    }
    for (n = 0; n < VF_NUM_BARS; n++) {
        if (!vf_check_bar(s, n, errp)) {
            return false;
        }
    }
    return true;
}

static bool vf_needs_peer_ram(VepcFunctionState *s)
{
    int n;

    for (n = 0; n < VF_NUM_BARS; n++) {
        if (s->bars[n].size) {
            return true;
        }
    }
    return false;
}

static void vf_write_header(VepcFunctionState *s)
{
    uint8_t *config = s->pdev.config;

    pci_set_word(config + PCI_VENDOR_ID, s->vendor_id);
    pci_set_word(config + PCI_DEVICE_ID, s->device_id);
    pci_set_byte(config + PCI_REVISION_ID, s->revision);
    pci_config_set_class(config, s->class_code >> 8);
    pci_config_set_prog_interface(config, s->class_code & 0xff);
    pci_set_word(config + PCI_SUBSYSTEM_VENDOR_ID, s->subsys_vendor_id);
    pci_set_word(config + PCI_SUBSYSTEM_ID, s->subsys_id);
    pci_config_set_interrupt_pin(config, s->intx_pin);
}

static void vf_realize(PCIDevice *pdev, Error **errp)
{
    VepcFunctionState *s = VEPC_FUNCTION(pdev);
    int n;

    /* Needed first: BAR checks compare against the EP's RAM size. */
    if (vf_needs_peer_ram(s)) {
        if (!vlink_map_peer_ram(&s->peer_ram, OBJECT(s), s->peer_ram_path,
                                &s->peer_ram_size, errp)) {
            return;
        }
        s->peer_ram_mapped = true;
    }
    if (!vf_check_properties(s, errp)) {
        return;
    }

    vf_write_header(s);

    if (s->msi_vectors &&
        msi_init(pdev, VF_MSI_CAP_OFFSET, pow2ceil(s->msi_vectors),
                 true, true, errp) < 0) {
        return;
    }
    /* Express when plugged into an express port (pcie-root-port). */
    if (pci_is_express(pdev) &&
        pcie_endpoint_cap_init(pdev, VF_EXP_CAP_OFFSET) < 0) {
        error_setg(errp, "cannot add the PCI Express capability");
        return;
    }

    for (n = 0; n < VF_NUM_BARS; n++) {
        vf_init_bar(s, n);
    }

    vlink_wire_init(&s->wire, &s->chr, TYPE_VEPC_FUNCTION,
                    vf_handle_message, s);
    /* Read-only counters for qom-get: fabric reads that read all-ones. */
    object_property_add_uint32_ptr(OBJECT(s), "fabric-read-timeouts",
                                   &s->read_timeouts, OBJ_PROP_FLAG_READ);
    object_property_add_uint32_ptr(OBJECT(s), "fabric-read-errors",
                                   &s->read_errors, OBJ_PROP_FLAG_READ);
    if (qemu_chr_fe_backend_connected(&s->chr)) {
        /* Fires CHR_EVENT_OPENED at once if the relay is connected. */
        qemu_chr_fe_set_handlers(&s->chr, vf_can_receive, vf_receive,
                                 vf_chr_event, NULL, s, NULL, true);
    }
}

static void vf_exit(PCIDevice *pdev)
{
    VepcFunctionState *s = VEPC_FUNCTION(pdev);
    int n;

    /* Let go of the chardev now so the next hot-plug can take it. */
    qemu_chr_fe_deinit(&s->chr, false);
    /*
     * A mapped alias holds a reference on its owner, us: without this the
     * device is never finalized and QMP never sees DEVICE_DELETED.
     */
    for (n = 0; n < VF_NUM_BARS; n++) {
        if (s->bars[n].backed) {
            vf_back_bar(s, n, false, 0);
        }
    }
    if (pci_is_express(pdev)) {
        pcie_cap_exit(pdev);
    }
    msi_uninit(pdev);
}

/* The peer QEMU, the relay and the shared RAM files do not travel along. */
static const VMStateDescription vf_vmstate = {
    .name = TYPE_VEPC_FUNCTION,
    .unmigratable = 1,
};

#define DEFINE_PROP_VF_BAR(n)                                               \
    DEFINE_PROP_UINT64("bar" #n "-size", VepcFunctionState, bars[n].size, 0), \
    DEFINE_PROP_UINT32("bar" #n "-flags", VepcFunctionState, bars[n].flags, 0), \
    DEFINE_PROP_UINT64("bar" #n "-offset", VepcFunctionState, bars[n].offset, 0)

static Property vf_properties[] = {
    DEFINE_PROP_CHR("chardev", VepcFunctionState, chr),
    DEFINE_PROP_UINT32("link-id", VepcFunctionState, link_id, 0),
    DEFINE_PROP_STRING("peer-ram", VepcFunctionState, peer_ram_path),
    DEFINE_PROP_UINT16("vendor-id", VepcFunctionState, vendor_id,
                       VEPC_PCI_VENDOR_ID),
    DEFINE_PROP_UINT16("device-id", VepcFunctionState, device_id, 0xee0d),
    DEFINE_PROP_UINT8("revision", VepcFunctionState, revision, 0),
    DEFINE_PROP_UINT32("class-code", VepcFunctionState, class_code,
                       PCI_CLASS_OTHERS << 16),
    DEFINE_PROP_UINT16("subsystem-vendor-id", VepcFunctionState,
                       subsys_vendor_id, 0),
    DEFINE_PROP_UINT16("subsystem-id", VepcFunctionState, subsys_id, 0),
    DEFINE_PROP_UINT8("intx-pin", VepcFunctionState, intx_pin, 0),
    DEFINE_PROP_UINT8("msi-vectors", VepcFunctionState, msi_vectors, 0),
    /* A PCIe completion timeout is 50 us..50 ms; ours crosses two sockets and a TCG guest. */
    DEFINE_PROP_UINT32("fabric-read-timeout-ms", VepcFunctionState,
                       read_timeout_ms, 1000),
    DEFINE_PROP_VF_BAR(0),
    DEFINE_PROP_VF_BAR(1),
    DEFINE_PROP_VF_BAR(2),
    DEFINE_PROP_VF_BAR(3),
    DEFINE_PROP_VF_BAR(4),
    DEFINE_PROP_VF_BAR(5),
    DEFINE_PROP_END_OF_LIST(),
};

static void vf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vf_realize;
    k->exit = vf_exit;
    k->config_write = vf_write_config;
    /* Placeholders: realize writes the IDs the EP asked for. */
    k->vendor_id = VEPC_PCI_VENDOR_ID;
    k->device_id = 0xee0d;
    k->class_id = PCI_CLASS_OTHERS << 8;
    dc->desc = "Endpoint function of a vepc link (epf-ntb harness)";
    dc->vmsd = &vf_vmstate;
    device_class_set_props(dc, vf_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo vf_info = {
    .name = TYPE_VEPC_FUNCTION,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VepcFunctionState),
    .class_init = vf_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { },
    },
};

static void vf_register_types(void)
{
    type_register_static(&vf_info);
}

type_init(vf_register_types)
