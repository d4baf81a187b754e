/*
 * vepc - a virtual PCIe endpoint controller for the endpoint (EP) guest.
 *
 * The EP guest's EPC driver (link/epc-driver) programs this device the way
 * a real EPC driver programs its controller: a configuration header, a BAR
 * table saying which EP memory backs each BAR, MSI vectors on offer, and
 * outbound windows from an aperture BAR into host (RC) memory.  START hands
 * the whole description to the harness relay, which hot-plugs a matching
 * "vepc-function" into the RC guest; from then on set_bar and raise_irq
 * travel to that function as messages.
 *
 * Outbound windows are zero-copy: the RC guest's RAM is a shared file, and
 * each mapped window is an alias of a slice of it inside the aperture BAR.
 *
 * BAR4 is the controller's embedded doorbell: a function BAR that the EPF
 * points into it becomes, on the RC side, a forwarded MMIO BAR; a host write
 * to the ring register comes back as a DOORBELL message, latches DB_STATUS
 * and asserts INTA until the EP driver clears it (like a DesignWare eDMA
 * interrupt-emulation register or a GIC ITS translater, as vntb sees it).
 * A function BAR the EPF points into the aperture of any vepc of this
 * machine (pci-epf-ntb backs one controller's BARs with the other's
 * outbound space) is a fabric BAR: host writes come back as FABRIC_WRITE
 * and are replayed on system memory, where that aperture's windows route
 * them (to another link's RC RAM, or as MEM_WRITE to its MSI address).
 * Register map and messages: hw/misc/vepc-link.h, link/PROTOCOL.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/range.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "exec/cpu-common.h"
#include "exec/memory.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "vepc-wire.h"

#define TYPE_VEPC "vepc"
OBJECT_DECLARE_SIMPLE_TYPE(VepcState, VEPC)

#define VEPC_NUM_BARS 6

typedef struct VepcBar {
    /* Staged by the driver; a write to FLAGS validates and commits them. */
    uint64_t phys;
    uint64_t size;
    /* Committed: what START / SET_BAR tell the RC side. */
    uint32_t flags;
    uint64_t ep_ram_offset;
    uint64_t committed_size;
    /* The size the RC function was plugged with (fixed until STOP). */
    uint64_t started_size;
} VepcBar;

typedef struct VepcWindow {
    /* Staged by the driver; a write of 1 to CTRL maps them. */
    uint64_t offset;
    uint64_t pci_addr;
    uint64_t size;
    /* The live mapping. */
    bool mapped;
    uint64_t map_offset;
    uint64_t map_pci_addr;
    uint64_t map_size;
    MemoryRegion alias;         /* into peer_ram, set up with it */
    /* A target outside the RC's RAM: writes travel as MEM_WRITE. */
    bool forwarded;
    MemoryRegion fwd;
    struct VepcState *owner;
} VepcWindow;

struct VepcState {
    PCIDevice pdev;

    MemoryRegion ctrl;
    MemoryRegion aperture;
    MemoryRegion doorbell;
    MemoryRegion peer_ram;
    bool peer_ram_mapped;
    uint64_t peer_ram_size;

    /* Properties */
    CharBackend chr;
    uint32_t link_id;
    char *peer_ram_path;
    uint64_t aperture_size;
    bool doorbell_enabled;

    VlinkWire wire;

    /* Register state */
    bool started;
    bool link_up;
    uint32_t error;
    uint32_t msi_requested;
    uint32_t msi_enabled;
    uint32_t host_command;
    uint64_t msi_address;
    uint32_t msi_data;
    uint32_t hdr_id;
    uint32_t hdr_class;
    uint32_t hdr_subsys;
    uint32_t hdr_intx;
    uint32_t db_status;
    uint32_t db_count;
    uint32_t db_last;
    VepcBar bars[VEPC_NUM_BARS];
    VepcWindow win[VEPC_MAX_WINDOWS];
};

/* ---- messages to the relay ------------------------------------------- */

static void vepc_bar_to_wire(const VepcBar *b, struct vlink_bar *out)
{
    out->ep_ram_offset = cpu_to_le64(b->ep_ram_offset);
    out->size = cpu_to_le64(b->committed_size);
    out->flags = cpu_to_le32(b->flags);
    out->reserved = 0;
}

static void vepc_send_hello(VepcState *s)
{
    struct vlink_hello m = {
        .role = cpu_to_le32(VLINK_ROLE_EP),
        .link_id = cpu_to_le32(s->link_id),
    };

    vlink_wire_send(&s->wire, VLINK_MSG_HELLO, &m, sizeof(m));
}

static void vepc_send_start(VepcState *s)
{
    struct vlink_start m = {
        .vendor_id = cpu_to_le16(s->hdr_id & 0xffff),
        .device_id = cpu_to_le16(s->hdr_id >> 16),
        .revision = s->hdr_class & 0xff,
        .progif = (s->hdr_class >> 8) & 0xff,
        .subclass = (s->hdr_class >> 16) & 0xff,
        .class_code = s->hdr_class >> 24,
        .subsys_vendor_id = cpu_to_le16(s->hdr_subsys & 0xffff),
        .subsys_id = cpu_to_le16(s->hdr_subsys >> 16),
        .intx_pin = s->hdr_intx & 0xff,
        .msi_vectors = s->msi_requested,
    };
    int i;

    for (i = 0; i < VEPC_NUM_BARS; i++) {
        vepc_bar_to_wire(&s->bars[i], &m.bars[i]);
    }
    vlink_wire_send(&s->wire, VLINK_MSG_START, &m, sizeof(m));
}

static void vepc_send_set_bar(VepcState *s, int n)
{
    struct vlink_set_bar m = { .bar = cpu_to_le32(n) };

    vepc_bar_to_wire(&s->bars[n], &m.entry);
    vlink_wire_send(&s->wire, VLINK_MSG_SET_BAR, &m, sizeof(m));
}

static void vepc_send_window(VepcState *s, int n)
{
    VepcWindow *w = &s->win[n];
    struct vlink_window m = {
        .index = cpu_to_le32(n),
        .mapped = cpu_to_le32(w->mapped ? (w->forwarded ? 2 : 1) : 0),
        .aperture_offset = cpu_to_le64(w->map_offset),
        .pci_addr = cpu_to_le64(w->map_pci_addr),
        .size = cpu_to_le64(w->map_size),
    };

    vlink_wire_send(&s->wire, VLINK_MSG_WINDOW, &m, sizeof(m));
}

/* ---- commands ---------------------------------------------------------- */

/* The host side's view of the function is gone or about to be. */
static void vepc_forget_host_config(VepcState *s)
{
    s->msi_enabled = 0;
    s->host_command = 0;
    s->msi_address = 0;
    s->msi_data = 0;
}

static uint32_t vepc_start(VepcState *s)
{
    int i;

    if (s->started) {
        return VEPC_ERR_BUSY;
    }
    if (!s->wire.connected) {
        return VEPC_ERR_NO_RELAY;
    }
    for (i = 0; i < VEPC_NUM_BARS; i++) {
        s->bars[i].started_size = s->bars[i].committed_size;
    }
    s->started = true;
    vepc_send_start(s);
    return VEPC_ERR_NONE;
}

static uint32_t vepc_stop(VepcState *s)
{
    if (!s->started) {
        return VEPC_ERR_NONE;
    }
    s->started = false;
    vepc_forget_host_config(s);
    vlink_wire_send(&s->wire, VLINK_MSG_STOP, NULL, 0);
    return VEPC_ERR_NONE;
}

static uint32_t vepc_control(VepcState *s, uint32_t val)
{
    switch (val) {
    case VEPC_CONTROL_START:
        return vepc_start(s);
    case VEPC_CONTROL_STOP:
        return vepc_stop(s);
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: unknown control 0x%x\n", val);
        return VEPC_ERR_BAD_ARGUMENT;
    }
}

static uint32_t vepc_set_msi_requested(VepcState *s, uint32_t val)
{
    /* What an MSI capability can offer: 0 or a power of two up to 32. */
    if (val > 32 || (val && !is_power_of_2(val))) {
        return VEPC_ERR_BAD_ARGUMENT;
    }
    /* A running function keeps its MSI capability until the next START. */
    s->msi_requested = val;
    return VEPC_ERR_NONE;
}

/* HDR_INTX is written last by write_header: it is the header's commit. */
static uint32_t vepc_set_intx_pin(VepcState *s, uint32_t val)
{
    if (val > 4) {
        return VEPC_ERR_BAD_ARGUMENT;
    }
    s->hdr_intx = val;
    return VEPC_ERR_NONE;
}

static uint32_t vepc_raise_irq(VepcState *s, uint32_t val)
{
    uint32_t type = val >> 16;
    uint32_t number = val & 0xffff;
    struct vlink_raise_irq m;

    if (type == VEPC_IRQ_MSI && (number < 1 || number > 32)) {
        return VEPC_ERR_BAD_ARGUMENT;
    }
    if (type != VEPC_IRQ_MSI && type != VEPC_IRQ_INTX) {
        return VEPC_ERR_BAD_ARGUMENT;
    }
    if (!s->started) {
        return VEPC_ERR_NOT_STARTED;
    }
    if (!s->wire.connected) {
        return VEPC_ERR_NO_RELAY;
    }
    /* Whether it is delivered is for the RC side to say (IRQ_RESULT). */
    m.type = cpu_to_le32(type);
    m.number = cpu_to_le32(number);
    vlink_wire_send(&s->wire, VLINK_MSG_RAISE_IRQ, &m, sizeof(m));
    return VEPC_ERR_NONE;
}

/*
 * The driver gives us the EP physical address of the BAR's backing memory;
 * the RC side needs it as an offset in our RAM file, which it has mapped.
 * So the memory must be plain RAM from one shared, file-backed region.
 */
static bool vepc_ram_offset(VepcState *s, uint64_t phys, uint64_t size,
                            uint64_t *offset)
{
    MemoryRegionSection sec;
    bool ok;

    sec = memory_region_find(get_system_memory(), phys, size);
    if (!sec.mr) {
        return false;
    }
    ok = memory_region_is_ram(sec.mr) &&
         !memory_region_is_ram_device(sec.mr) &&
         int128_get64(sec.size) == size &&
         memory_region_get_fd(sec.mr) >= 0 &&
         qemu_ram_is_shared(sec.mr->ram_block);
    /* A memory-backend-file maps its file from offset 0. */
    *offset = sec.offset_within_region;
    memory_region_unref(sec.mr);
    return ok;
}

/*
 * Is PHYS..PHYS+SIZE inside our own doorbell BAR, as the EP sees it?  Then
 * the function's BAR is mapped onto the doorbell (an inbound translation
 * into controller registers, not RAM) and *offset is where in it.
 */
static bool vepc_doorbell_offset(VepcState *s, uint64_t phys, uint64_t size,
                                 uint64_t *offset)
{
    pcibus_t base;

    if (!s->doorbell_enabled) {
        return false;
    }
    base = pci_get_bar_addr(&s->pdev, VEPC_DOORBELL_BAR);
    if (base == PCI_BAR_UNMAPPED || phys < base ||
        phys - base >= VEPC_DOORBELL_SIZE ||
        size > VEPC_DOORBELL_SIZE - (phys - base)) {
        return false;
    }
    *offset = phys - base;
    return true;
}

typedef struct VepcFabricSearch {
    uint64_t phys;
    uint64_t size;
    bool found;
} VepcFabricSearch;

static int vepc_fabric_match(Object *obj, void *opaque)
{
    VepcFabricSearch *q = opaque;
    VepcState *other;
    pcibus_t base;

    if (!object_dynamic_cast(obj, TYPE_VEPC)) {
        return 0;
    }
    other = VEPC(obj);
    base = pci_get_bar_addr(&other->pdev, VEPC_APERTURE_BAR);
    if (base == PCI_BAR_UNMAPPED || q->phys < base ||
        q->phys - base >= other->aperture_size ||
        q->size > other->aperture_size - (q->phys - base)) {
        return 0;
    }
    q->found = true;
    return 1;
}

/*
 * Is PHYS..PHYS+SIZE inside the outbound aperture of a vepc of this
 * machine (ours or another's), as the EP sees it?  pci-epf-ntb backs the
 * doorbell/memory-window BARs of one controller with memory from the
 * other's outbound space: the EP's own interconnect, not RAM.
 */
static bool vepc_fabric_range(uint64_t phys, uint64_t size)
{
    VepcFabricSearch q = { .phys = phys, .size = size };

    if (size == 0 || size > UINT64_MAX - phys) {
        return false;
    }
    object_child_foreach_recursive(object_get_root(), vepc_fabric_match, &q);
    return q.found;
}

static uint32_t vepc_bar_commit(VepcState *s, int n, uint32_t flags)
{
    VepcBar *b = &s->bars[n];
    bool is_io = flags & VEPC_BAR_F_IO;
    bool is_64 = flags & VEPC_BAR_F_MEM64;
    uint64_t offset;

    if (!(flags & VEPC_BAR_F_ENABLED)) {
        /* clear_bar: the function keeps the BAR but nothing backs it. */
        b->flags = flags;
        b->ep_ram_offset = 0;
        if (s->started) {
            vepc_send_set_bar(s, n);
        }
        b->committed_size = 0;
        return VEPC_ERR_NONE;
    }

    if (!is_power_of_2(b->size) || b->size < (is_io ? 4 : 16) ||
        (is_io && (is_64 || b->size > 256)) ||
        (!is_64 && b->size > 2 * GiB) ||
        (is_64 && n == VEPC_NUM_BARS - 1)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: BAR%d: bad size 0x%" PRIx64
                      " or flags 0x%x\n", n, b->size, flags);
        return VEPC_ERR_BAD_ARGUMENT;
    }
    /* The upper half of a 64-bit BAR is not a BAR of its own. */
    if (n > 0 && (s->bars[n - 1].flags & VEPC_BAR_F_ENABLED) &&
        (s->bars[n - 1].flags & VEPC_BAR_F_MEM64)) {
        return VEPC_ERR_BAD_ARGUMENT;
    }
    if (is_64 && (s->bars[n + 1].flags & VEPC_BAR_F_ENABLED)) {
        return VEPC_ERR_BUSY;
    }
    /* The host sized the BAR when the function was plugged. */
    if (s->started && b->size != b->started_size) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: BAR%d: size 0x%" PRIx64
                      " differs from 0x%" PRIx64 " the host was given\n",
                      n, b->size, b->started_size);
        return VEPC_ERR_BAD_ARGUMENT;
    }
    /* The device decides what backs a BAR (doorbell, fabric), not the driver. */
    flags &= ~(VEPC_BAR_F_DOORBELL | VEPC_BAR_F_FABRIC);
    if (flags & VEPC_BAR_F_UNBACKED) {
        /* Declared now, backed by a later commit (pci-epf-vntb's MW BARs). */
        offset = 0;
    } else if (!is_io && vepc_doorbell_offset(s, b->phys, b->size, &offset)) {
        flags |= VEPC_BAR_F_DOORBELL;
    } else if (!is_io && vepc_fabric_range(b->phys, b->size)) {
        /* The entry carries the EP physical address itself. */
        flags |= VEPC_BAR_F_FABRIC;
        offset = b->phys;
    } else if (!vepc_ram_offset(s, b->phys, b->size, &offset)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: BAR%d: 0x%" PRIx64 "+0x%" PRIx64
                      " is not in the shared RAM file\n",
                      n, b->phys, b->size);
        return VEPC_ERR_NOT_RAM;
    }

    b->flags = flags;
    b->ep_ram_offset = offset;
    b->committed_size = b->size;
    if (s->started) {
        vepc_send_set_bar(s, n);
    }
    return VEPC_ERR_NONE;
}

/*
 * The RC's RAM file usually appears after we start (the harness may boot
 * the guests in any order), so it is mapped at the first window map.
 */
static bool vepc_map_peer_ram(VepcState *s)
{
    Error *err = NULL;
    int i;

    if (s->peer_ram_mapped) {
        return true;
    }
    if (!vlink_map_peer_ram(&s->peer_ram, OBJECT(s), s->peer_ram_path,
                            &s->peer_ram_size, &err)) {
        error_report_err(err);
        return false;
    }
    for (i = 0; i < VEPC_MAX_WINDOWS; i++) {
        memory_region_init_alias(&s->win[i].alias, OBJECT(s), "vepc-window",
                                 &s->peer_ram, 0, s->peer_ram_size);
    }
    s->peer_ram_mapped = true;
    return true;
}

static uint32_t vepc_window_map(VepcState *s, int n)
{
    VepcWindow *w = &s->win[n];
    int i;

    if (w->mapped) {
        return VEPC_ERR_BUSY;
    }
    if (w->size == 0 || w->offset >= s->aperture_size ||
        w->size > s->aperture_size - w->offset) {
        return VEPC_ERR_BAD_ARGUMENT;
    }
    for (i = 0; i < VEPC_MAX_WINDOWS; i++) {
        if (s->win[i].mapped &&
            ranges_overlap(w->offset, w->size,
                           s->win[i].map_offset, s->win[i].map_size)) {
            return VEPC_ERR_BUSY;
        }
    }
    if (!vepc_map_peer_ram(s)) {
        return VEPC_ERR_OUTSIDE_PEER_RAM;
    }
    /*
     * Wholly outside the RC's RAM (an MSI address, a peer's BAR): a
     * forwarded window, whose writes the RC function replays as DMA.
     */
    if (w->pci_addr >= s->peer_ram_size &&
        w->size <= UINT64_MAX - w->pci_addr) {
        memory_region_transaction_begin();
        memory_region_set_size(&w->fwd, w->size);
        memory_region_add_subregion(&s->aperture, w->offset, &w->fwd);
        memory_region_transaction_commit();
        w->forwarded = true;
        w->mapped = true;
        w->map_offset = w->offset;
        w->map_pci_addr = w->pci_addr;
        w->map_size = w->size;
        vepc_send_window(s, n);
        return VEPC_ERR_NONE;
    }
    /* RC bus addresses are RC physical addresses are file offsets. */
    if (w->pci_addr >= s->peer_ram_size ||
        w->size > s->peer_ram_size - w->pci_addr) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: window %d: 0x%" PRIx64
                      "+0x%" PRIx64 " is outside the RC's RAM (0x%" PRIx64
                      ")\n", n, w->pci_addr, w->size, s->peer_ram_size);
        return VEPC_ERR_OUTSIDE_PEER_RAM;
    }

    memory_region_transaction_begin();
    memory_region_set_alias_offset(&w->alias, w->pci_addr);
    memory_region_set_size(&w->alias, w->size);
    memory_region_add_subregion(&s->aperture, w->offset, &w->alias);
    memory_region_transaction_commit();

    w->mapped = true;
    w->map_offset = w->offset;
    w->map_pci_addr = w->pci_addr;
    w->map_size = w->size;
    vepc_send_window(s, n);
    return VEPC_ERR_NONE;
}

static void vepc_window_unmap(VepcState *s, int n)
{
    VepcWindow *w = &s->win[n];

    if (!w->mapped) {
        return;
    }
    memory_region_del_subregion(&s->aperture,
                                w->forwarded ? &w->fwd : &w->alias);
    w->mapped = false;
    w->forwarded = false;
    vepc_send_window(s, n);
}

static uint32_t vepc_window_ctrl(VepcState *s, int n, uint32_t val)
{
    switch (val) {
    case 1:
        return vepc_window_map(s, n);
    case 0:
        vepc_window_unmap(s, n);
        return VEPC_ERR_NONE;
    default:
        return VEPC_ERR_BAD_ARGUMENT;
    }
}

/* ---- forwarded windows -------------------------------------------------- */

static uint64_t vepc_fwd_read(void *opaque, hwaddr addr, unsigned size)
{
    /* Non-posted reads of host MMIO are not modelled. */
    qemu_log_mask(LOG_UNIMP, "vepc: read through a forwarded window\n");
    return 0;
}

static void vepc_fwd_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    VepcWindow *w = opaque;
    VepcState *s = w->owner;
    struct vlink_mem_write m = {
        .address = cpu_to_le64(w->map_pci_addr + addr),
        .size = cpu_to_le32(size),
        .value = cpu_to_le64(val),
    };

    if (!s->started) {
        /* No link: a real controller's write would go nowhere either. */
        return;
    }
    vlink_wire_send(&s->wire, VLINK_MSG_MEM_WRITE, &m, sizeof(m));
}

static const MemoryRegionOps vepc_fwd_ops = {
    .read = vepc_fwd_read,
    .write = vepc_fwd_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* ---- the embedded doorbell --------------------------------------------- */

static void vepc_update_irq(VepcState *s)
{
    pci_set_irq(&s->pdev, s->db_status != 0);
}

/* A write reached the doorbell region: from the host (DOORBELL) or locally. */
static void vepc_doorbell_write(VepcState *s, uint64_t offset, uint64_t value)
{
    if (offset != VEPC_DOORBELL_RING) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: doorbell write at 0x%" PRIx64
                      " (only 0x%x rings)\n", offset, VEPC_DOORBELL_RING);
        return;
    }
    s->db_count++;
    s->db_last = value;
    s->db_status |= 1;
    vepc_update_irq(s);
}

static uint64_t vepc_doorbell_mmio_read(void *opaque, hwaddr addr,
                                        unsigned size)
{
    return 0;
}

static void vepc_doorbell_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                                     unsigned size)
{
    vepc_doorbell_write(opaque, addr, val);
}

static const MemoryRegionOps vepc_doorbell_ops = {
    .read = vepc_doorbell_mmio_read,
    .write = vepc_doorbell_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

static void vepc_doorbell_msg(VepcState *s, const uint8_t *payload,
                              uint32_t len)
{
    struct vlink_doorbell m;

    if (!vlink_payload(&s->wire, VLINK_MSG_DOORBELL, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    if (!s->doorbell_enabled) {
        return;
    }
    vepc_doorbell_write(s, le64_to_cpu(m.offset), le64_to_cpu(m.value));
}

/* ---- the fabric: host writes into BARs backed by an aperture ---------- */

/*
 * A fabric access is acted on only inside the range its BAR was committed
 * with: the BAR, size and address all come from the wire.
 */
static bool vepc_fabric_ok(VepcState *s, const char *what, uint32_t n,
                           uint32_t size, uint64_t addr)
{
    VepcBar *b;

    if (n >= VEPC_NUM_BARS ||
        (size != 1 && size != 2 && size != 4 && size != 8)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: %s BAR%u size %u\n",
                      what, n, size);
        return false;
    }
    b = &s->bars[n];
    if (!(b->flags & VEPC_BAR_F_ENABLED) || !(b->flags & VEPC_BAR_F_FABRIC) ||
        addr < b->ep_ram_offset || addr - b->ep_ram_offset >= b->committed_size ||
        size > b->committed_size - (addr - b->ep_ram_offset)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: %s at 0x%" PRIx64
                      " outside BAR%u's fabric range\n", what, addr, n);
        return false;
    }
    return true;
}

/*
 * The host wrote into a BAR whose entry has FABRIC.  Replay it on our
 * system memory, where it reaches whatever the aperture maps there: RC
 * RAM of another link, or a forwarded window (MEM_WRITE on that link).
 */
static void vepc_fabric_write_msg(VepcState *s, const uint8_t *payload,
                                  uint32_t len)
{
    struct vlink_fabric_write m;
    uint64_t addr;
    uint32_t size;
    uint8_t buf[8];

    if (!vlink_payload(&s->wire, VLINK_MSG_FABRIC_WRITE, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    size = le32_to_cpu(m.size);
    addr = le64_to_cpu(m.address);
    if (!vepc_fabric_ok(s, "FABRIC_WRITE", le32_to_cpu(m.bar), size, addr)) {
        return;
    }
    stq_le_p(buf, le64_to_cpu(m.value));
    address_space_write(&address_space_memory, addr, MEMTXATTRS_UNSPECIFIED,
                        buf, size);
}

/*
 * The host reads from a fabric BAR, and its vCPU waits for the answer.
 * Read our system memory with the checks of a write and reply at once:
 * an aperture slice aliasing another link's RC RAM gives real data, a
 * forwarded window reads 0 (vepc_fwd_read), a hole in the aperture 0.
 * Nothing here blocks: a read through a forwarded window is not sent on.
 */
static void vepc_fabric_read_msg(VepcState *s, const uint8_t *payload,
                                 uint32_t len)
{
    struct vlink_fabric_read m;
    struct vlink_fabric_read_reply r = { 0 };
    uint32_t size, status = VLINK_FABRIC_READ_UNSUPPORTED;
    uint64_t addr;
    uint8_t buf[8] = { 0 };

    if (!vlink_payload(&s->wire, VLINK_MSG_FABRIC_READ, payload, len,
                       &m, sizeof(m))) {
        /* Too short to carry a tag: the RC's timeout answers for us. */
        return;
    }
    size = le32_to_cpu(m.size);
    addr = le64_to_cpu(m.address);
    if (vepc_fabric_ok(s, "FABRIC_READ", le32_to_cpu(m.bar), size, addr)) {
        MemTxResult res = address_space_read(&address_space_memory, addr,
                                             MEMTXATTRS_UNSPECIFIED, buf,
                                             size);

        status = res == MEMTX_OK ? VLINK_FABRIC_READ_OK
                                 : VLINK_FABRIC_READ_ERROR;
        if (res != MEMTX_OK) {
            qemu_log_mask(LOG_GUEST_ERROR, "vepc: FABRIC_READ at 0x%" PRIx64
                          " failed (%d)\n", addr, res);
        }
    }
    r.tag = m.tag;
    r.status = cpu_to_le32(status);
    r.value = status == VLINK_FABRIC_READ_OK ? cpu_to_le64(ldq_le_p(buf)) : 0;
    vlink_wire_send(&s->wire, VLINK_MSG_FABRIC_READ_REPLY, &r, sizeof(r));
}

/* ---- registers --------------------------------------------------------- */

static void set_lo(uint64_t *field, uint32_t val)
{
    *field = deposit64(*field, 0, 32, val);
}

static void set_hi(uint64_t *field, uint32_t val)
{
    *field = deposit64(*field, 32, 32, val);
}

static uint32_t vepc_status(VepcState *s)
{
    uint32_t status = 0;

    if (s->wire.connected) {
        status |= VEPC_STATUS_RELAY_CONNECTED;
    }
    if (s->started) {
        status |= VEPC_STATUS_STARTED;
    }
    if (s->msi_enabled) {
        status |= VEPC_STATUS_MSI_ENABLED;
    }
    if (s->host_command & PCI_COMMAND_MASTER) {
        status |= VEPC_STATUS_BUS_MASTER;
    }
    if (s->link_up) {
        status |= VEPC_STATUS_LINK_UP;
    }
    return status;
}

static uint64_t vepc_bar_read(VepcState *s, int n, hwaddr field)
{
    VepcBar *b = &s->bars[n];

    switch (field) {
    case VEPC_BAR_PHYS_LO:
        return extract64(b->phys, 0, 32);
    case VEPC_BAR_PHYS_HI:
        return extract64(b->phys, 32, 32);
    case VEPC_BAR_SIZE_LO:
        return extract64(b->size, 0, 32);
    case VEPC_BAR_SIZE_HI:
        return extract64(b->size, 32, 32);
    case VEPC_BAR_FLAGS:
        return b->flags;
    default:
        return 0;
    }
}

static void vepc_bar_write(VepcState *s, int n, hwaddr field, uint32_t val)
{
    VepcBar *b = &s->bars[n];

    switch (field) {
    case VEPC_BAR_PHYS_LO:
        set_lo(&b->phys, val);
        break;
    case VEPC_BAR_PHYS_HI:
        set_hi(&b->phys, val);
        break;
    case VEPC_BAR_SIZE_LO:
        set_lo(&b->size, val);
        break;
    case VEPC_BAR_SIZE_HI:
        set_hi(&b->size, val);
        break;
    case VEPC_BAR_FLAGS:
        s->error = vepc_bar_commit(s, n, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: write to BAR%d field 0x%"
                      HWADDR_PRIx "\n", n, field);
    }
}

static uint64_t vepc_window_read(VepcState *s, int n, hwaddr field)
{
    VepcWindow *w = &s->win[n];

    switch (field) {
    case VEPC_WIN_OFFSET_LO:
        return extract64(w->offset, 0, 32);
    case VEPC_WIN_OFFSET_HI:
        return extract64(w->offset, 32, 32);
    case VEPC_WIN_PCI_LO:
        return extract64(w->pci_addr, 0, 32);
    case VEPC_WIN_PCI_HI:
        return extract64(w->pci_addr, 32, 32);
    case VEPC_WIN_SIZE_LO:
        return extract64(w->size, 0, 32);
    case VEPC_WIN_SIZE_HI:
        return extract64(w->size, 32, 32);
    case VEPC_WIN_CTRL:
        return w->mapped;
    default:
        return 0;
    }
}

static void vepc_window_write(VepcState *s, int n, hwaddr field, uint32_t val)
{
    VepcWindow *w = &s->win[n];

    switch (field) {
    case VEPC_WIN_OFFSET_LO:
        set_lo(&w->offset, val);
        break;
    case VEPC_WIN_OFFSET_HI:
        set_hi(&w->offset, val);
        break;
    case VEPC_WIN_PCI_LO:
        set_lo(&w->pci_addr, val);
        break;
    case VEPC_WIN_PCI_HI:
        set_hi(&w->pci_addr, val);
        break;
    case VEPC_WIN_SIZE_LO:
        set_lo(&w->size, val);
        break;
    case VEPC_WIN_SIZE_HI:
        set_hi(&w->size, val);
        break;
    case VEPC_WIN_CTRL:
        s->error = vepc_window_ctrl(s, n, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: write to window %d field 0x%"
                      HWADDR_PRIx "\n", n, field);
    }
}

static bool vepc_in_table(hwaddr addr, hwaddr base, hwaddr stride,
                          int count, int *index, hwaddr *field)
{
    if (addr < base || addr >= base + stride * count) {
        return false;
    }
    *index = (addr - base) / stride;
    *field = (addr - base) % stride;
    return true;
}

static uint64_t vepc_ctrl_read(void *opaque, hwaddr addr, unsigned size)
{
    VepcState *s = opaque;
    hwaddr field;
    uint32_t val;
    int n;

    if (vepc_in_table(addr, VEPC_REG_BAR_BASE, VEPC_REG_BAR_STRIDE,
                      VEPC_NUM_BARS, &n, &field)) {
        return vepc_bar_read(s, n, field);
    }
    if (vepc_in_table(addr, VEPC_REG_WIN_BASE, VEPC_REG_WIN_STRIDE,
                      VEPC_MAX_WINDOWS, &n, &field)) {
        return vepc_window_read(s, n, field);
    }

    switch (addr) {
    case VEPC_REG_MAGIC:
        return VEPC_MAGIC;
    case VEPC_REG_VERSION:
        return VEPC_REGS_VERSION;
    case VEPC_REG_STATUS:
        return vepc_status(s);
    case VEPC_REG_MSI_REQUESTED:
        return s->msi_requested;
    case VEPC_REG_MSI_ENABLED:
        return s->msi_enabled;
    case VEPC_REG_ERROR:
        val = s->error;
        s->error = VEPC_ERR_NONE;
        return val;
    case VEPC_REG_HOST_COMMAND:
        return s->host_command;
    case VEPC_REG_WINDOW_COUNT:
        return VEPC_MAX_WINDOWS;
    case VEPC_REG_APERTURE_SIZE_LO:
        return extract64(s->aperture_size, 0, 32);
    case VEPC_REG_APERTURE_SIZE_HI:
        return extract64(s->aperture_size, 32, 32);
    case VEPC_REG_DB_STATUS:
        return s->db_status;
    case VEPC_REG_DB_COUNT:
        return s->db_count;
    case VEPC_REG_DB_LAST:
        return s->db_last;
    case VEPC_REG_MSI_ADDR_LO:
        return extract64(s->msi_address, 0, 32);
    case VEPC_REG_MSI_ADDR_HI:
        return extract64(s->msi_address, 32, 32);
    case VEPC_REG_MSI_DATA:
        return s->msi_data;
    case VEPC_REG_HDR_ID:
        return s->hdr_id;
    case VEPC_REG_HDR_CLASS:
        return s->hdr_class;
    case VEPC_REG_HDR_SUBSYS:
        return s->hdr_subsys;
    case VEPC_REG_HDR_INTX:
        return s->hdr_intx;
    default:
        return 0;
    }
}

static void vepc_ctrl_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    VepcState *s = opaque;
    hwaddr field;
    int n;

    if (vepc_in_table(addr, VEPC_REG_BAR_BASE, VEPC_REG_BAR_STRIDE,
                      VEPC_NUM_BARS, &n, &field)) {
        vepc_bar_write(s, n, field, val);
        return;
    }
    if (vepc_in_table(addr, VEPC_REG_WIN_BASE, VEPC_REG_WIN_STRIDE,
                      VEPC_MAX_WINDOWS, &n, &field)) {
        vepc_window_write(s, n, field, val);
        return;
    }

    switch (addr) {
    case VEPC_REG_CONTROL:
        s->error = vepc_control(s, val);
        break;
    case VEPC_REG_MSI_REQUESTED:
        s->error = vepc_set_msi_requested(s, val);
        break;
    case VEPC_REG_IRQ_RAISE:
        s->error = vepc_raise_irq(s, val);
        break;
    case VEPC_REG_HDR_ID:
        s->hdr_id = val;
        break;
    case VEPC_REG_HDR_CLASS:
        s->hdr_class = val;
        break;
    case VEPC_REG_HDR_SUBSYS:
        s->hdr_subsys = val;
        break;
    case VEPC_REG_HDR_INTX:
        s->error = vepc_set_intx_pin(s, val);
        break;
    case VEPC_REG_DB_STATUS:
        /* Write 1 to clear; INTA follows. */
        s->db_status &= ~(uint32_t)val;
        vepc_update_irq(s);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vepc: write to read-only or unknown "
                      "register 0x%" HWADDR_PRIx "\n", addr);
    }
}

static const MemoryRegionOps vepc_ctrl_ops = {
    .read = vepc_ctrl_read,
    .write = vepc_ctrl_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* Aperture parts no window covers read as zero and ignore writes. */
static uint64_t vepc_hole_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void vepc_hole_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
}

static const MemoryRegionOps vepc_hole_ops = {
    .read = vepc_hole_read,
    .write = vepc_hole_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* ---- messages from the relay ------------------------------------------ */

static void vepc_host_config(VepcState *s, const uint8_t *payload,
                             uint32_t len)
{
    struct vlink_host_config m = { 0 };

    /* An older sender stops after the command register: no MSI message. */
    if (!vlink_payload(&s->wire, VLINK_MSG_HOST_CONFIG, payload,
                       MIN(len, sizeof(m)), &m,
                       MIN(MAX(len, VLINK_HOST_CONFIG_V1_SIZE), sizeof(m)))) {
        return;
    }
    s->msi_enabled = MIN(le32_to_cpu(m.msi_enabled_vectors), 32);
    s->host_command = le32_to_cpu(m.command) & 0xffff;
    s->msi_address = le64_to_cpu(m.msi_address);
    s->msi_data = le32_to_cpu(m.msi_data);
    /*
     * Config writes are non-posted: the host's next access must not pass
     * this one.  The RC function waits for this answer before the host's
     * vCPU goes on, so a command the host then writes into a BAR of our
     * RAM never finds the old MSI state here (pci-epf-ntb's map_msi_irq).
     */
    vlink_wire_send(&s->wire, VLINK_MSG_HOST_CONFIG_ACK, &m, sizeof(m));
}

static void vepc_link_state(VepcState *s, const uint8_t *payload,
                            uint32_t len)
{
    struct vlink_link_state m;

    if (!vlink_payload(&s->wire, VLINK_MSG_LINK_STATE, payload, len,
                       &m, sizeof(m))) {
        return;
    }
    s->link_up = le32_to_cpu(m.up) != 0;
    if (!s->link_up) {
        vepc_forget_host_config(s);
    }
}

static void vepc_handle_message(void *opaque, uint16_t type,
                                const uint8_t *payload, uint32_t len)
{
    VepcState *s = opaque;

    switch (type) {
    case VLINK_MSG_HOST_CONFIG:
        vepc_host_config(s, payload, len);
        break;
    case VLINK_MSG_LINK_STATE:
        vepc_link_state(s, payload, len);
        break;
    case VLINK_MSG_IRQ_RESULT:
        /* The relay may pass these on; the trace is the relay's job. */
        break;
    case VLINK_MSG_DOORBELL:
        vepc_doorbell_msg(s, payload, len);
        break;
    case VLINK_MSG_FABRIC_WRITE:
        vepc_fabric_write_msg(s, payload, len);
        break;
    case VLINK_MSG_FABRIC_READ:
        vepc_fabric_read_msg(s, payload, len);
        break;
    default:
        qemu_log_mask(LOG_UNIMP, "vepc: ignoring link message type %u\n",
                      type);
    }
}

static int vepc_can_receive(void *opaque)
{
    VepcState *s = opaque;

    return vlink_wire_can_receive(&s->wire);
}

static void vepc_receive(void *opaque, const uint8_t *buf, int size)
{
    VepcState *s = opaque;

    vlink_wire_receive(&s->wire, buf, size);
}

static void vepc_chr_event(void *opaque, QEMUChrEvent event)
{
    VepcState *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        vlink_wire_opened(&s->wire);
        vepc_send_hello(s);
        /* A relay that restarted learns the running function again. */
        if (s->started) {
            vepc_send_start(s);
        }
        break;
    case CHR_EVENT_CLOSED:
        vlink_wire_closed(&s->wire);
        s->link_up = false;
        vepc_forget_host_config(s);
        break;
    default:
        break;
    }
}

/* ---- device ------------------------------------------------------------ */

static void vepc_realize(PCIDevice *pdev, Error **errp)
{
    VepcState *s = VEPC(pdev);

    if (!is_power_of_2(s->aperture_size) || s->aperture_size < 64 * KiB) {
        error_setg(errp, "aperture-size must be a power of two >= 64 KiB");
        return;
    }

    memory_region_init_io(&s->ctrl, OBJECT(s), &vepc_ctrl_ops, s,
                          "vepc-ctrl", VEPC_CTRL_SIZE);
    pci_register_bar(pdev, VEPC_CTRL_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->ctrl);

    for (int i = 0; i < VEPC_MAX_WINDOWS; i++) {
        s->win[i].owner = s;
        memory_region_init_io(&s->win[i].fwd, OBJECT(s), &vepc_fwd_ops,
                              &s->win[i], "vepc-window-fwd", 4096);
    }
    /* Windows are aliases of peer RAM laid over this zero-reading region. */
    memory_region_init_io(&s->aperture, OBJECT(s), &vepc_hole_ops, s,
                          "vepc-aperture", s->aperture_size);
    pci_register_bar(pdev, VEPC_APERTURE_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH,
                     &s->aperture);

    if (s->doorbell_enabled) {
        memory_region_init_io(&s->doorbell, OBJECT(s), &vepc_doorbell_ops, s,
                              "vepc-doorbell", VEPC_DOORBELL_SIZE);
        pci_register_bar(pdev, VEPC_DOORBELL_BAR,
                         PCI_BASE_ADDRESS_SPACE_MEMORY, &s->doorbell);
    }
    /* INTA: the doorbell's interrupt (the device raises no other). */
    pci_config_set_interrupt_pin(pdev->config, 1);

    vlink_wire_init(&s->wire, &s->chr, TYPE_VEPC, vepc_handle_message, s);
    if (qemu_chr_fe_backend_connected(&s->chr)) {
        qemu_chr_fe_set_handlers(&s->chr, vepc_can_receive, vepc_receive,
                                 vepc_chr_event, NULL, s, NULL, true);
    }
}

static void vepc_exit(PCIDevice *pdev)
{
    VepcState *s = VEPC(pdev);
    int i;

    qemu_chr_fe_deinit(&s->chr, false);
    /* A mapped alias holds a reference on us, its owner: drop them all. */
    for (i = 0; i < VEPC_MAX_WINDOWS; i++) {
        if (s->win[i].mapped) {
            memory_region_del_subregion(&s->aperture, s->win[i].forwarded ?
                                        &s->win[i].fwd : &s->win[i].alias);
            s->win[i].mapped = false;
            s->win[i].forwarded = false;
        }
    }
}

static void vepc_reset(DeviceState *dev)
{
    VepcState *s = VEPC(dev);
    int i;

    /* A rebooting EP takes the link down, as a real controller would. */
    vepc_stop(s);
    for (i = 0; i < VEPC_MAX_WINDOWS; i++) {
        vepc_window_unmap(s, i);
        s->win[i].offset = 0;
        s->win[i].pci_addr = 0;
        s->win[i].size = 0;
    }
    memset(s->bars, 0, sizeof(s->bars));
    s->error = VEPC_ERR_NONE;
    s->msi_requested = 0;
    s->hdr_id = 0;
    s->hdr_class = 0;
    s->hdr_subsys = 0;
    s->hdr_intx = 0;
    s->db_status = 0;
    s->db_count = 0;
    s->db_last = 0;
    vepc_update_irq(s);
}

/* The peer QEMU, the relay and the shared RAM files do not travel along. */
static const VMStateDescription vepc_vmstate = {
    .name = TYPE_VEPC,
    .unmigratable = 1,
};

static Property vepc_properties[] = {
    DEFINE_PROP_CHR("chardev", VepcState, chr),
    DEFINE_PROP_UINT32("link-id", VepcState, link_id, 0),
    DEFINE_PROP_STRING("peer-ram", VepcState, peer_ram_path),
    DEFINE_PROP_SIZE("aperture-size", VepcState, aperture_size, 128 * MiB),
    DEFINE_PROP_BOOL("doorbell", VepcState, doorbell_enabled, true),
    DEFINE_PROP_END_OF_LIST(),
};

static void vepc_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vepc_realize;
    k->exit = vepc_exit;
    k->vendor_id = VEPC_PCI_VENDOR_ID;
    k->device_id = VEPC_PCI_DEVICE_ID;
    k->revision = 1;
    k->class_id = PCI_CLASS_OTHERS << 8;
    dc->desc = "Virtual PCIe endpoint controller (epf-ntb harness link)";
    dc->reset = vepc_reset;
    dc->vmsd = &vepc_vmstate;
    device_class_set_props(dc, vepc_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo vepc_info = {
    .name = TYPE_VEPC,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VepcState),
    .class_init = vepc_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void vepc_register_types(void)
{
    type_register_static(&vepc_info);
}

type_init(vepc_register_types)
