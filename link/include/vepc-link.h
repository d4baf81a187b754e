/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * vepc-link.h - the one definition of the virtual PCIe link shared by
 *   - the EPC device in the EP guest's QEMU      (link/qemu: "vepc")
 *   - the endpoint function in the RC guest's QEMU (link/qemu: "vepc-function")
 *   - the EP guest's EPC driver                  (link/epc-driver: vepc.ko)
 * and mirrored by the TypeScript relay (harness/link/wire.ts).
 * link/PROTOCOL.md explains it in prose; this header is the reference.
 *
 * Everything is little-endian.  Only fixed-size types are used so the same
 * header compiles in the kernel, in QEMU and in a plain C test program.
 */
#ifndef VEPC_LINK_H
#define VEPC_LINK_H

/* ------------------------------------------------------------------------
 * 1. The EPC device as the EP guest sees it (PCI 1234:ee0c, class 0xff00)
 *
 * BAR0: 4 KiB of control registers (32-bit accesses only).
 * BAR2: the outbound aperture (64-bit, prefetchable).  Each mapped outbound
 *       window makes a slice of it alias RC guest RAM; unmapped parts read 0.
 * BAR4: 4 KiB doorbell region (the controller's "embedded doorbell").  The
 *       EP driver never touches it: an endpoint function points one of its
 *       BARs at it (set_bar with PHYS inside BAR4), and each host write to
 *       the ring register through that BAR latches DB_STATUS and asserts
 *       the device's INTx (pin A) until the driver clears DB_STATUS.
 * Apart from the doorbell, everything the EP driver does is a register
 * write followed by a status read.
 * ---------------------------------------------------------------------- */
#define VEPC_PCI_VENDOR_ID		0x1234
#define VEPC_PCI_DEVICE_ID		0xee0c
#define VEPC_CTRL_BAR			0
#define VEPC_APERTURE_BAR		2
#define VEPC_CTRL_SIZE			0x1000
#define VEPC_DOORBELL_BAR		4
#define VEPC_DOORBELL_SIZE		0x1000
#define VEPC_DOORBELL_RING		0x000	/* in BAR4: a host write here rings */

#define VEPC_MAGIC			0x43504556	/* "VEPC" */
#define VEPC_REGS_VERSION		1

#define VEPC_REG_MAGIC			0x000	/* RO */
#define VEPC_REG_VERSION		0x004	/* RO */
#define VEPC_REG_STATUS			0x008	/* RO, VEPC_STATUS_* */
#define VEPC_REG_CONTROL		0x00c	/* WO, VEPC_CONTROL_* */
#define VEPC_REG_MSI_REQUESTED		0x010	/* RW: MSI vectors the function offers (0, or a power of two 1..32) */
#define VEPC_REG_MSI_ENABLED		0x014	/* RO: MSI vectors the host enabled, 0 = MSI off */
#define VEPC_REG_IRQ_RAISE		0x018	/* WO: VEPC_IRQ_RAISE(type, number) */
#define VEPC_REG_ERROR			0x01c	/* RO: VEPC_ERR_* of the last command; read clears */
#define VEPC_REG_HOST_COMMAND		0x020	/* RO: host's PCI command register (bit 2 = bus master) */
#define VEPC_REG_WINDOW_COUNT		0x024	/* RO: number of outbound window slots */
#define VEPC_REG_APERTURE_SIZE_LO	0x028	/* RO */
#define VEPC_REG_APERTURE_SIZE_HI	0x02c	/* RO */
#define VEPC_REG_DB_STATUS		0x030	/* RW1C: bit 0 = a doorbell rang; INTx asserted while set */
#define VEPC_REG_DB_COUNT		0x034	/* RO: doorbell writes received since reset (wraps) */
#define VEPC_REG_DB_LAST		0x038	/* RO: value of the last doorbell write */
/* The MSI message the host programmed (vector 0), from HOST_CONFIG: for map_msi_irq and MSI writes. */
#define VEPC_REG_MSI_ADDR_LO		0x060	/* RO */
#define VEPC_REG_MSI_ADDR_HI		0x064	/* RO */
#define VEPC_REG_MSI_DATA		0x068	/* RO */

/* Configuration header the function presents to the host (write_header). */
#define VEPC_REG_HDR_ID			0x040	/* vendor [15:0], device [31:16] */
#define VEPC_REG_HDR_CLASS		0x044	/* revision [7:0], progif [15:8], subclass [23:16], class [31:24] */
#define VEPC_REG_HDR_SUBSYS		0x048	/* subsystem vendor [15:0], subsystem id [31:16] */
#define VEPC_REG_HDR_INTX		0x04c	/* interrupt pin [7:0] (0 = none, 1 = INTA) */

/* BAR table: what backs each of the function's six BARs (set_bar/clear_bar). */
#define VEPC_REG_BAR_BASE		0x100
#define VEPC_REG_BAR_STRIDE		0x20
#define VEPC_BAR_PHYS_LO		0x00	/* EP physical (DMA) address of the backing memory */
#define VEPC_BAR_PHYS_HI		0x04
#define VEPC_BAR_SIZE_LO		0x08	/* a power of two >= 128 (the driver rounds up) */
#define VEPC_BAR_SIZE_HI		0x0c
#define VEPC_BAR_FLAGS			0x10	/* writing it commits the entry: VEPC_BAR_F_* */
#define VEPC_REG_BAR(n, field)		(VEPC_REG_BAR_BASE + (n) * VEPC_REG_BAR_STRIDE + (field))

#define VEPC_BAR_F_ENABLED		(1u << 0)
#define VEPC_BAR_F_MEM64		(1u << 1)
#define VEPC_BAR_F_PREFETCH		(1u << 2)
#define VEPC_BAR_F_IO			(1u << 3)
/*
 * The BAR exists (size and type go to the host) but no EP memory backs it
 * yet: PHYS is 0 and must not be resolved; host reads return 0 and writes
 * are dropped until a later commit of the same BAR supplies memory.
 * pci-epf-vntb declares its memory-window BARs this way and points them at
 * memory at run time, possibly after START.  The driver keeps the size a
 * BAR was committed with until the BAR is cleared, so such a re-commit does
 * not change the size the host saw.  Travels unchanged in vlink_bar.flags.
 */
#define VEPC_BAR_F_UNBACKED		(1u << 4)
/*
 * Set by the EP device, never by the driver: PHYS..PHYS+SIZE lies inside
 * the device's doorbell region (BAR4), so the BAR is backed by no RAM.  In
 * vlink_bar, ep_ram_offset is then the offset inside the doorbell region,
 * and the RC function forwards host writes into the BAR as DOORBELL
 * messages instead of aliasing EP RAM.
 */
#define VEPC_BAR_F_DOORBELL		(1u << 5)
/*
 * Set by the EP device, never by the driver: PHYS..PHYS+SIZE lies inside
 * the outbound aperture (BAR2) of a vepc device of the same EP machine,
 * its own or another's -- the EP's internal interconnect, as pci-epf-ntb
 * uses it (a BAR of one controller backed by the other's outbound space).
 * In vlink_bar, ep_ram_offset then carries the EP physical address PHYS,
 * and the RC function forwards host writes into the BAR as FABRIC_WRITE
 * messages; the EP device replays each on its system memory.
 */
#define VEPC_BAR_F_FABRIC		(1u << 6)

/* Outbound windows: aperture slice -> host (RC) PCI address (map_addr/unmap_addr). */
#define VEPC_REG_WIN_BASE		0x400
#define VEPC_REG_WIN_STRIDE		0x20
#define VEPC_WIN_OFFSET_LO		0x00	/* offset inside the aperture BAR */
#define VEPC_WIN_OFFSET_HI		0x04
#define VEPC_WIN_PCI_LO			0x08	/* host bus address */
#define VEPC_WIN_PCI_HI			0x0c
#define VEPC_WIN_SIZE_LO		0x10
#define VEPC_WIN_SIZE_HI		0x14
#define VEPC_WIN_CTRL			0x18	/* write 1 = map, 0 = unmap; commits */
#define VEPC_REG_WIN(n, field)		(VEPC_REG_WIN_BASE + (n) * VEPC_REG_WIN_STRIDE + (field))
#define VEPC_MAX_WINDOWS		32

#define VEPC_STATUS_RELAY_CONNECTED	(1u << 0)	/* chardev connected to the relay */
#define VEPC_STATUS_STARTED		(1u << 1)	/* START sent, STOP not yet */
#define VEPC_STATUS_MSI_ENABLED		(1u << 2)	/* host enabled MSI */
#define VEPC_STATUS_BUS_MASTER		(1u << 3)	/* host enabled bus mastering */
#define VEPC_STATUS_LINK_UP		(1u << 4)	/* relay says the RC function is plugged */

#define VEPC_CONTROL_START		1
#define VEPC_CONTROL_STOP		2

#define VEPC_IRQ_INTX			1
#define VEPC_IRQ_MSI			2
#define VEPC_IRQ_RAISE(type, number)	(((type) << 16) | ((number) & 0xffff))

#define VEPC_ERR_NONE			0
#define VEPC_ERR_BAD_ARGUMENT		1	/* index, size or alignment out of range */
#define VEPC_ERR_NOT_RAM		2	/* BAR memory is not in the shared guest RAM file */
#define VEPC_ERR_OUTSIDE_PEER_RAM	3	/* window target is not inside the RC's RAM */
#define VEPC_ERR_NO_RELAY		4	/* no relay connection */
#define VEPC_ERR_NOT_STARTED		5	/* IRQ raised while the link is down */
#define VEPC_ERR_BUSY			6	/* window slot or aperture range already in use */

/* ------------------------------------------------------------------------
 * 2. The wire between each QEMU device and the harness relay (UNIX stream)
 *
 * Every message is a header followed by `length` payload bytes.  A reader
 * skips payload bytes it does not know (forward compatibility) and drops a
 * connection whose magic or major version differs.
 * ---------------------------------------------------------------------- */
#define VLINK_MAGIC			0x4b4e4c56	/* "VLNK" */
#define VLINK_VERSION			1

struct vlink_header {
	uint32_t magic;
	uint16_t version;
	uint16_t type;		/* VLINK_MSG_* */
	uint32_t length;	/* payload bytes after this header */
	uint32_t seq;		/* per-sender counter, for the trace */
};

enum vlink_msg_type {
	VLINK_MSG_HELLO		= 1,	/* device -> relay */
	VLINK_MSG_START		= 2,	/* EP -> relay: link up, here is the function */
	VLINK_MSG_STOP		= 3,	/* EP -> relay: link down */
	VLINK_MSG_SET_BAR	= 4,	/* EP -> RC: BAR n now backed by EP RAM at offset */
	VLINK_MSG_RAISE_IRQ	= 5,	/* EP -> RC: raise INTx or MSI number n (1-based) */
	VLINK_MSG_IRQ_RESULT	= 6,	/* RC -> relay: what became of a RAISE_IRQ */
	VLINK_MSG_HOST_CONFIG	= 7,	/* RC -> EP: host changed MSI enable/count or command */
	VLINK_MSG_WINDOW	= 8,	/* EP -> relay: outbound window mapped/unmapped (trace only) */
	VLINK_MSG_LINK_STATE	= 9,	/* relay -> EP: the RC function is plugged (1) or not (0) */
	VLINK_MSG_DOORBELL	= 10,	/* RC -> EP: host wrote into a BAR mapped onto the doorbell region */
	VLINK_MSG_MEM_WRITE	= 11,	/* EP -> RC: outbound write to a host address outside host RAM */
	VLINK_MSG_FABRIC_WRITE	= 12,	/* RC -> EP: host wrote into a BAR backed by an EP aperture */
	VLINK_MSG_FABRIC_READ	= 13,	/* RC -> EP: host reads from such a BAR (non-posted) */
	VLINK_MSG_FABRIC_READ_REPLY = 14,	/* EP -> RC: the completion of one FABRIC_READ */
	VLINK_MSG_HOST_CONFIG_ACK = 15,	/* EP -> RC: the EP applied a HOST_CONFIG (payload: the same struct) */
};

#define VLINK_ROLE_EP			1
#define VLINK_ROLE_RC			2

struct vlink_hello {
	uint32_t role;		/* VLINK_ROLE_* */
	uint32_t link_id;	/* from the device's "link-id" property */
};

struct vlink_bar {
	uint64_t ep_ram_offset;	/* offset of the backing memory in the EP's RAM file */
	uint64_t size;		/* power of two, 0 = BAR not implemented */
	uint32_t flags;		/* VEPC_BAR_F_* */
	uint32_t reserved;
};

struct vlink_start {
	uint16_t vendor_id;
	uint16_t device_id;
	uint8_t revision;
	uint8_t progif;
	uint8_t subclass;
	uint8_t class_code;
	uint16_t subsys_vendor_id;
	uint16_t subsys_id;
	uint8_t intx_pin;
	uint8_t msi_vectors;	/* vectors offered, 0..32 */
	uint16_t reserved;
	struct vlink_bar bars[6];
};

struct vlink_set_bar {
	uint32_t bar;
	uint32_t reserved;
	struct vlink_bar entry;	/* flags without VEPC_BAR_F_ENABLED = cleared */
};

struct vlink_raise_irq {
	uint32_t type;		/* VEPC_IRQ_* */
	uint32_t number;	/* MSI number as the EPC API counts: 1 = first vector */
};

enum vlink_irq_result {
	VLINK_IRQ_DELIVERED		= 0,
	VLINK_IRQ_MSI_DISABLED		= 1,
	VLINK_IRQ_OUT_OF_RANGE		= 2,	/* number > vectors the host enabled */
	VLINK_IRQ_NO_BUS_MASTER		= 3,
	VLINK_IRQ_MASKED		= 4,	/* per-vector mask set: left pending */
	VLINK_IRQ_NOT_PLUGGED		= 5,	/* set by the relay, never by a device */
	VLINK_IRQ_UNSUPPORTED		= 6,	/* INTx without an interrupt pin, or unknown type */
};

struct vlink_irq_result_msg {
	uint32_t type;
	uint32_t number;
	uint32_t result;	/* enum vlink_irq_result */
	uint32_t reserved;
};

struct vlink_host_config {
	uint32_t msi_enabled_vectors;	/* 0 = MSI disabled */
	uint32_t command;		/* PCI command register */
	/* Appended (compatible): the MSI message for vector 0, 0 while MSI is off. */
	uint64_t msi_address;
	uint32_t msi_data;
	uint32_t reserved;
};
#define VLINK_HOST_CONFIG_V1_SIZE	8	/* a sender without the MSI message */

struct vlink_window {
	uint32_t index;
	uint32_t mapped;		/* 1 = mapped, 0 = unmapped */
	uint64_t aperture_offset;
	uint64_t pci_addr;
	uint64_t size;
};

struct vlink_doorbell {
	uint32_t bar;		/* the function's BAR the host wrote to */
	uint32_t size;		/* access size in bytes: 1, 2, 4 or 8 */
	uint64_t offset;	/* offset inside the EP's doorbell region */
	uint64_t value;
};

/*
 * A posted memory write the EP made through an outbound window whose host
 * address is not host RAM (an MSI address, above all).  The RC function
 * replays it as a DMA write of the function into the RC's address space.
 */
struct vlink_mem_write {
	uint64_t address;	/* host bus address */
	uint32_t size;		/* 1, 2, 4 or 8 */
	uint32_t reserved;
	uint64_t value;		/* little-endian, low `size` bytes */
};

/*
 * A posted write the host made into a BAR whose entry has
 * VEPC_BAR_F_FABRIC.  The EP device replays it at `address` on its own
 * system memory, after checking it lies inside that BAR's committed range.
 */
struct vlink_fabric_write {
	uint32_t bar;		/* the function's BAR the host wrote to (0..5) */
	uint32_t size;		/* access size in bytes: 1, 2, 4 or 8 */
	uint64_t address;	/* EP physical address: the entry's PHYS + offset in the BAR */
	uint64_t value;		/* little-endian, low `size` bytes */
};

/*
 * A non-posted read the host made from a BAR whose entry has
 * VEPC_BAR_F_FABRIC.  The RC function waits for the FABRIC_READ_REPLY with
 * the same tag (one read in flight per function); the EP device reads
 * `address` on its system memory, with the checks of FABRIC_WRITE, and
 * answers at once.
 */
struct vlink_fabric_read {
	uint32_t bar;		/* the function's BAR the host read from (0..5) */
	uint32_t size;		/* access size in bytes: 1, 2, 4 or 8 */
	uint64_t address;	/* EP physical address: the entry's PHYS + offset in the BAR */
	uint32_t tag;		/* chosen by the RC function, copied into the reply */
	uint32_t reserved;
};

enum vlink_fabric_read_status {
	VLINK_FABRIC_READ_OK		= 0,	/* value holds the data */
	VLINK_FABRIC_READ_UNSUPPORTED	= 1,	/* refused by the EP: not a fabric BAR, outside its range, bad size */
	VLINK_FABRIC_READ_ERROR		= 2,	/* the EP's memory access failed */
	VLINK_FABRIC_READ_NO_EP		= 3,	/* set by the relay: no EP connected, never by a device */
};

struct vlink_fabric_read_reply {
	uint32_t tag;		/* the request's tag */
	uint32_t status;	/* enum vlink_fabric_read_status; not OK = the host reads all-ones */
	uint64_t value;		/* little-endian, low `size` bytes of the request */
};

struct vlink_link_state {
	uint32_t up;
	uint32_t reserved;
};

#endif /* VEPC_LINK_H */
