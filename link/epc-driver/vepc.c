// SPDX-License-Identifier: GPL-2.0-only
/*
 * vepc - PCI endpoint controller driver for the harness's virtual EPC device.
 *
 * The EP guest's QEMU has a PCI device (1234:ee0c) whose BAR0 holds control
 * registers and whose BAR2 is an outbound aperture: slices of it alias the
 * RC guest's RAM once an outbound window is mapped.  The device forwards
 * every command to the harness relay, which plays the function to the RC
 * guest.  This driver turns that device into a struct pci_epc so that the
 * kernel's unmodified endpoint functions (pci-epf-test, pci-epf-vntb) can be
 * bound to it through configfs.
 *
 * Every operation is "write the registers, commit, read VEPC_REG_ERROR".
 * The EPC core calls all ops under epc->lock, so these multi-register
 * sequences need no lock of their own.
 *
 * The register map is ../include/vepc-link.h.
 */

#include <linux/bitmap.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/irq.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-epc.h>
#include <linux/sizes.h>
#include <linux/version.h>

#include "vepc-link.h"

/*
 * Supported kernels: 6.1 <= version < 7.4.  Compiled (W=1, arm64 and x86_64)
 * against 6.1, 6.12, 7.1, 7.2 and 7.3; the boundaries in between come from
 * upstream history.  A newer EPC API may change again: fail here, not in a
 * guest.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0) || \
	LINUX_VERSION_CODE >= KERNEL_VERSION(7, 4, 0)
#error "vepc supports Linux 6.1 <= version < 7.4 (link/epc-driver/README.md); this kernel is outside that range"
#endif

/*
 * Kernel API differences, all in one place, oldest first.  Each shim names
 * the release that changed the EPC interface.
 *  - 6.8 replaced enum pci_epc_irq_type (PCI_EPC_IRQ_LEGACY/_MSI) in
 *    raise_irq() with an unsigned int carrying PCI_IRQ_INTX/PCI_IRQ_MSI.
 *  - 6.9 replaced the reserved_bar bitmap (and bar_fixed_64bit,
 *    bar_fixed_size[]) of struct pci_epc_features with bar[] descriptors.
 *    Zero still means "programmable, 32- or 64-bit as the function asks",
 *    and linkup_notifier and (6.1) core_init_notifier stay off.
 *  - 6.11 added pcim_iomap_region()/pcim_request_region(); the older
 *    pcim_iomap_regions() is deprecated since and removed later.
 *  - 6.15 added pci_epc_features.intx_capable (pci-epf-test reports INTx to
 *    the host only when it is set).
 *  - 6.16 made set_msi() take and get_msi() return a vector count; before,
 *    both used the log2 encoding of the MSI capability (MMC/MME) and the
 *    core did the conversion (the argument is now named nr_irqs).
 *  - 7.0 added pci_epc_features.dynamic_inbound_mapping: set_bar() again on
 *    a configured BAR without clear_bar() first.
 *  - 7.2 added the get_aux_resources_count()/get_aux_resources() ops, which
 *    pci_epf_alloc_doorbell() asks for an "embedded" doorbell when the EPC
 *    has no platform MSI domain (VEPC_HAS_AUX_RESOURCES).
 *  raise_irq(), map_addr(), unmap_addr(), write_header(), set_bar() and
 *  clear_bar() have the same prototypes from 6.8 through 7.3.
 */

/* 6.8: raise_irq() takes an unsigned int PCI_IRQ_* type instead of the enum. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
typedef unsigned int vepc_irq_type_t;
#define VEPC_EPC_IRQ_INTX	PCI_IRQ_INTX
#define VEPC_EPC_IRQ_MSI	PCI_IRQ_MSI
#else
typedef enum pci_epc_irq_type vepc_irq_type_t;
#define VEPC_EPC_IRQ_INTX	PCI_EPC_IRQ_LEGACY
#define VEPC_EPC_IRQ_MSI	PCI_EPC_IRQ_MSI
#endif

/* 7.2: the EPC can describe an embedded doorbell as an auxiliary resource. */
#define VEPC_HAS_AUX_RESOURCES	(LINUX_VERSION_CODE >= KERNEL_VERSION(7, 2, 0))

/* 6.16: set_msi()/get_msi() carry a vector count, no longer log2 of it. */
#define VEPC_MSI_OPS_USE_COUNTS	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0))

/* set_msi() argument -> vectors offered (MSI only knows powers of two). */
static u32 vepc_msi_arg_to_count(u8 arg)
{
	if (VEPC_MSI_OPS_USE_COUNTS)
		return roundup_pow_of_two(arg);
	return 1u << arg;
}

/* Vectors the host enabled (non-zero) -> get_msi() return value. */
static int vepc_msi_count_to_ret(u32 count)
{
	if (VEPC_MSI_OPS_USE_COUNTS)
		return count;
	return ilog2(count);
}

/* 6.9: bar[] descriptors replace the reserved_bar bitmap. */
static void vepc_reserve_bar(struct pci_epc_features *features, int bar)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	features->bar[bar].type = BAR_RESERVED;
#else
	features->reserved_bar |= BIT(bar);
#endif
}

/* Claim BAR0 (mapped) and BAR2 (claimed only: pci_epc_mem maps slices). */
static void __iomem *vepc_claim_bars(struct pci_dev *pdev)
{
	int ret;

	/* 6.11: per-BAR managed helpers; pcim_iomap_regions() is deprecated. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	ret = pcim_request_region(pdev, VEPC_APERTURE_BAR, KBUILD_MODNAME);
	if (ret)
		return IOMEM_ERR_PTR(ret);
	return pcim_iomap_region(pdev, VEPC_CTRL_BAR, KBUILD_MODNAME);
#else
	ret = pcim_iomap_regions(pdev, BIT(VEPC_CTRL_BAR), KBUILD_MODNAME);
	if (ret)
		return IOMEM_ERR_PTR(ret);
	/* Managed too: the device was enabled with pcim_enable_device(). */
	ret = pci_request_region(pdev, VEPC_APERTURE_BAR, KBUILD_MODNAME);
	if (ret)
		return IOMEM_ERR_PTR(ret);
	return pcim_iomap_table(pdev)[VEPC_CTRL_BAR];
#endif
}

/* ---- Device state and register access ---- */

/* pci_epf_alloc_space() never allocates less, and Cadence uses it too. */
#define VEPC_MIN_BAR_SIZE	128

/*
 * The function's BARs that endpoint functions may use; the others are
 * reserved.  The default, BARs 0, 2 and 4, is the i.MX8 layout that
 * ntb_hw_epf expects for 1957:0809 (config BAR0, doorbells BAR2, memory
 * window BAR4): pci-epf-vntb in 6.1 and 6.12 has no BAR attributes and
 * takes the first free BARs in order.  0x3f offers all six, e.g. so that
 * pci-epf-test backs every BAR pci_endpoint_test checks.
 */
static unsigned int free_bars = BIT(0) | BIT(2) | BIT(4);
module_param(free_bars, uint, 0444);
MODULE_PARM_DESC(free_bars, "bitmask of BARs offered to endpoint functions (default 0x15: BARs 0, 2, 4)");

/*
 * doorbell=1 offers the device's doorbell region (BAR4) to endpoint
 * functions as an embedded doorbell on 7.2+: vntb then maps its doorbell
 * BAR onto it and takes host doorbells as interrupts instead of polling
 * every 5 ms.  Off by default: 7.2's vntb reports every doorbell bit for
 * any ring through an embedded doorbell (one shared IRQ for all of them,
 * docs/doorbells.md), so the per-bit interop scenarios keep the polled
 * doorbell they were written for, and a scenario opts in.
 */
static bool doorbell;
module_param(doorbell, bool, 0444);
MODULE_PARM_DESC(doorbell, "offer the device's embedded doorbell to endpoint functions (7.2+; default off: vntb polls)");

/*
 * msi_write=1 raises MSIs the way a real EPC does: by writing the MSI data
 * through an outbound window to the address the host programmed (the link
 * replays that write as the function's DMA on the RC side).  The default
 * sends the interrupt as a message (RAISE_IRQ) that the RC's QEMU turns
 * into msi_notify().  map_msi_irq always uses windows.
 */
static bool msi_write;
module_param(msi_write, bool, 0444);
MODULE_PARM_DESC(msi_write, "raise MSIs as memory writes through an outbound window (default off: as link messages)");

struct vepc {
	struct pci_dev *pdev;
	struct pci_epc *epc;
	struct pci_epc_features features;
	void __iomem *regs;
	phys_addr_t aperture;		/* CPU physical address of BAR2 */
	resource_size_t aperture_size;
	u64 bar_size[PCI_STD_NUM_BARS];	/* as last committed, 0 = cleared */
	unsigned int nr_windows;
	DECLARE_BITMAP(win_used, VEPC_MAX_WINDOWS);
	phys_addr_t win_addr[VEPC_MAX_WINDOWS];	/* aperture address per slot */
	/*
	 * Embedded doorbell: CPU address of the ring register and the IRQ
	 * endpoint functions request (dispatched from the device's INTx), or
	 * db_irq 0 when not offered.
	 */
	phys_addr_t db_ring;
	int db_irq;
	/* msi_write: one aperture page kept mapped onto the host's MSI page. */
	void __iomem *msi_virt;
	phys_addr_t msi_phys;
	u64 msi_pci;		/* host page it is mapped to, or U64_MAX */
};

static u32 vepc_read(struct vepc *vepc, u32 reg)
{
	return readl(vepc->regs + reg);
}

static void vepc_write(struct vepc *vepc, u32 reg, u32 val)
{
	writel(val, vepc->regs + reg);
}

/* 64-bit fields are LO/HI register pairs; the commit comes later. */
static void vepc_write64(struct vepc *vepc, u32 reg_lo, u64 val)
{
	vepc_write(vepc, reg_lo, lower_32_bits(val));
	vepc_write(vepc, reg_lo + 4, upper_32_bits(val));
}

static const struct {
	int ret;
	const char *text;
} vepc_errors[] = {
	[VEPC_ERR_BAD_ARGUMENT]	    = { -EINVAL, "index, size or alignment out of range" },
	[VEPC_ERR_NOT_RAM]	    = { -EFAULT, "memory is not in the EP guest's shared RAM" },
	[VEPC_ERR_OUTSIDE_PEER_RAM] = { -EFAULT, "target is not inside the RC guest's RAM" },
	[VEPC_ERR_NO_RELAY]	    = { -ENOTCONN, "no connection to the harness relay" },
	[VEPC_ERR_NOT_STARTED]	    = { -ENOLINK, "the link is not started" },
	[VEPC_ERR_BUSY]		    = { -EBUSY, "window slot or aperture range already in use" },
};

/*
 * Write a committing register, then read (and so clear) the device's verdict
 * on it.  Non-zero codes become an errno and a message naming the command.
 * Ratelimited: raise_irq() may be called in a loop by a function.
 */
static __printf(4, 5) int vepc_commit(struct vepc *vepc, u32 reg, u32 val,
				      const char *fmt, ...)
{
	struct va_format vaf;
	const char *text = "unknown device error";
	int ret = -EIO;
	va_list args;
	u32 err;

	vepc_write(vepc, reg, val);
	err = vepc_read(vepc, VEPC_REG_ERROR);
	if (err == VEPC_ERR_NONE)
		return 0;

	if (err < ARRAY_SIZE(vepc_errors) && vepc_errors[err].text) {
		ret = vepc_errors[err].ret;
		text = vepc_errors[err].text;
	}

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	dev_err_ratelimited(&vepc->pdev->dev, "%pV failed: %s (device error %u)\n",
			    &vaf, text, err);
	va_end(args);

	return ret;
}

/* ---- EPC operations ---- */

static int vepc_write_header(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			     struct pci_epf_header *hdr)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	vepc_write(vepc, VEPC_REG_HDR_ID,
		   hdr->vendorid | (u32)hdr->deviceid << 16);
	vepc_write(vepc, VEPC_REG_HDR_CLASS,
		   hdr->revid | (u32)hdr->progif_code << 8 |
		   (u32)hdr->subclass_code << 16 |
		   (u32)hdr->baseclass_code << 24);
	vepc_write(vepc, VEPC_REG_HDR_SUBSYS,
		   hdr->subsys_vendor_id | (u32)hdr->subsys_id << 16);
	/* The header registers have no commit of their own; check them all here. */
	return vepc_commit(vepc, VEPC_REG_HDR_INTX, hdr->interrupt_pin,
			   "write header %04x:%04x class %02x%02x%02x",
			   hdr->vendorid, hdr->deviceid, hdr->baseclass_code,
			   hdr->subclass_code, hdr->progif_code);
}

static u32 vepc_bar_flags(const struct pci_epf_bar *bar)
{
	u32 flags = VEPC_BAR_F_ENABLED;

	if (bar->flags & PCI_BASE_ADDRESS_SPACE_IO)
		return flags | VEPC_BAR_F_IO;
	if (bar->flags & PCI_BASE_ADDRESS_MEM_TYPE_64)
		flags |= VEPC_BAR_F_MEM64;
	if (bar->flags & PCI_BASE_ADDRESS_MEM_PREFETCH)
		flags |= VEPC_BAR_F_PREFETCH;
	/*
	 * pci-epf-vntb sets its memory-window BARs with phys_addr 0 and
	 * re-sets them once a client supplies memory (mw_set_trans).
	 */
	if (!bar->phys_addr)
		flags |= VEPC_BAR_F_UNBACKED;
	return flags;
}

static int vepc_set_bar(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			struct pci_epf_bar *bar)
{
	struct vepc *vepc = epc_get_drvdata(epc);
	enum pci_barno n = bar->barno;
	u32 flags = vepc_bar_flags(bar);
	u64 size;
	int ret;

	if (!(free_bars & BIT(n)) || !bar->size) {
		dev_err(&vepc->pdev->dev, "set BAR%d: %s\n", n,
			bar->size ? "reserved (see free_bars)" : "size 0");
		return -EINVAL;
	}

	/*
	 * A BAR is a power of two.  6.1's pci_epf_alloc_space() only aligns
	 * sizes up to epc_features->align, and vntb passes its memory-window
	 * sizes through unchanged, so round up here as Cadence does.
	 */
	size = roundup_pow_of_two(max_t(u64, bar->size, VEPC_MIN_BAR_SIZE));
	/*
	 * The host sized the BAR when the function was plugged, and vntb
	 * re-targets a memory-window BAR at a client's buffer that may be
	 * smaller than the window: a BAR never shrinks until it is cleared.
	 */
	size = max(size, vepc->bar_size[n]);

	vepc_write64(vepc, VEPC_REG_BAR(n, VEPC_BAR_PHYS_LO), bar->phys_addr);
	vepc_write64(vepc, VEPC_REG_BAR(n, VEPC_BAR_SIZE_LO), size);
	ret = vepc_commit(vepc, VEPC_REG_BAR(n, VEPC_BAR_FLAGS), flags,
			  "set BAR%d (memory %pad, %#llx bytes, flags %#x)",
			  n, &bar->phys_addr, size, flags);
	if (ret)
		return ret;

	vepc->bar_size[n] = size;
	return 0;
}

static void vepc_clear_bar(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			   struct pci_epf_bar *bar)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	vepc->bar_size[bar->barno] = 0;
	vepc_commit(vepc, VEPC_REG_BAR(bar->barno, VEPC_BAR_FLAGS), 0,
		    "clear BAR%d", bar->barno);
}

static int vepc_find_window(struct vepc *vepc, phys_addr_t addr)
{
	unsigned int i;

	for_each_set_bit(i, vepc->win_used, vepc->nr_windows)
		if (vepc->win_addr[i] == addr)
			return i;
	return -ENOENT;
}

static void vepc_window_unmap(struct vepc *vepc, unsigned int slot)
{
	/* Forget the slot even if the device objects: it is not ours any more. */
	clear_bit(slot, vepc->win_used);
	vepc_commit(vepc, VEPC_REG_WIN(slot, VEPC_WIN_CTRL), 0,
		    "unmap window %u (aperture %pa)", slot, &vepc->win_addr[slot]);
}

static int vepc_map_addr(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			 phys_addr_t addr, u64 pci_addr, size_t size)
{
	struct vepc *vepc = epc_get_drvdata(epc);
	struct device *dev = &vepc->pdev->dev;
	u64 offset = addr - vepc->aperture;
	int slot, ret;

	if (!size || addr < vepc->aperture || size > vepc->aperture_size ||
	    offset > vepc->aperture_size - size) {
		dev_err(dev, "map %pa (+%#zx): not inside the aperture\n",
			&addr, size);
		return -EINVAL;
	}

	/*
	 * vntb maps the same aperture range again when the host re-configures
	 * a memory window without tearing it down: replace the old mapping.
	 */
	slot = vepc_find_window(vepc, addr);
	if (slot >= 0)
		vepc_window_unmap(vepc, slot);
	else
		slot = find_first_zero_bit(vepc->win_used, vepc->nr_windows);
	if (slot >= vepc->nr_windows) {
		dev_err(dev, "map %pa: all %u outbound windows in use\n",
			&addr, vepc->nr_windows);
		return -ENOSPC;
	}

	vepc_write64(vepc, VEPC_REG_WIN(slot, VEPC_WIN_OFFSET_LO), offset);
	vepc_write64(vepc, VEPC_REG_WIN(slot, VEPC_WIN_PCI_LO), pci_addr);
	vepc_write64(vepc, VEPC_REG_WIN(slot, VEPC_WIN_SIZE_LO), size);
	ret = vepc_commit(vepc, VEPC_REG_WIN(slot, VEPC_WIN_CTRL), 1,
			  "map window %u: aperture %pa -> PCI %#llx (+%#zx)",
			  slot, &addr, pci_addr, size);
	if (ret)
		return ret;

	vepc->win_addr[slot] = addr;
	set_bit(slot, vepc->win_used);
	return 0;
}

static void vepc_unmap_addr(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			    phys_addr_t addr)
{
	struct vepc *vepc = epc_get_drvdata(epc);
	int slot = vepc_find_window(vepc, addr);

	/* vntb tears down memory windows the host never configured. */
	if (slot < 0) {
		dev_dbg(&vepc->pdev->dev, "unmap %pa: not mapped\n", &addr);
		return;
	}
	vepc_window_unmap(vepc, slot);
}

static int vepc_set_msi(struct pci_epc *epc, u8 func_no, u8 vfunc_no, u8 arg)
{
	struct vepc *vepc = epc_get_drvdata(epc);
	u32 count = vepc_msi_arg_to_count(arg);

	return vepc_commit(vepc, VEPC_REG_MSI_REQUESTED, count,
			   "offer %u MSI vectors", count);
}

static int vepc_get_msi(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct vepc *vepc = epc_get_drvdata(epc);
	u32 enabled = vepc_read(vepc, VEPC_REG_MSI_ENABLED);

	/* The core turns a negative value into "0 vectors". */
	if (!enabled)
		return -EINVAL;
	return vepc_msi_count_to_ret(enabled);
}

/* The MSI message the host programmed, as HOST_CONFIG brought it. */
static u64 vepc_msi_address(struct vepc *vepc)
{
	return vepc_read(vepc, VEPC_REG_MSI_ADDR_LO) |
	       (u64)vepc_read(vepc, VEPC_REG_MSI_ADDR_HI) << 32;
}

static int vepc_map_addr(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			 phys_addr_t addr, u64 pci_addr, size_t size);

/*
 * Like a DesignWare or Cadence EP: write data | (num - 1) to the host's MSI
 * address through an outbound window, re-targeted only when the host moves
 * its MSI address to another page.
 */
static int vepc_write_msi(struct vepc *vepc, u16 num, u32 enabled)
{
	u64 addr = vepc_msi_address(vepc);
	u64 page = addr & ~(u64)(SZ_4K - 1);
	u32 data = vepc_read(vepc, VEPC_REG_MSI_DATA) & ~(enabled - 1);
	int ret;

	if (!vepc->msi_virt || !addr)
		return -EINVAL;
	if (vepc->msi_pci != page) {
		ret = vepc_map_addr(vepc->epc, 0, 0, vepc->msi_phys, page, SZ_4K);
		if (ret)
			return ret;
		vepc->msi_pci = page;
	}
	writel(data | (num - 1), vepc->msi_virt + (addr - page));
	return 0;
}

static int vepc_raise_msi(struct vepc *vepc, u16 num)
{
	u32 enabled = vepc_read(vepc, VEPC_REG_MSI_ENABLED);

	/*
	 * Never raise a vector the host did not enable: a real device would
	 * write a message the host never set up.  vntb, for one, does not
	 * check before ringing a doorbell.
	 */
	if (!num || num > enabled) {
		dev_err_ratelimited(&vepc->pdev->dev,
				    "MSI %u not raised: the host enabled %u vector(s)\n",
				    num, enabled);
		return -EINVAL;
	}
	if (msi_write)
		return vepc_write_msi(vepc, num, enabled);
	return vepc_commit(vepc, VEPC_REG_IRQ_RAISE,
			   VEPC_IRQ_RAISE(VEPC_IRQ_MSI, num), "raise MSI %u", num);
}

/*
 * pci-epf-ntb's op: map windows at phys_addr (interrupt_num of them,
 * entry_size apart) onto the host's MSI page and say what to write where;
 * a peer then raises MSI n by writing msi_data | n at msi_addr_offset.
 */
static int vepc_map_msi_irq(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			    phys_addr_t phys_addr, u8 interrupt_num,
			    u32 entry_size, u32 *msi_data, u32 *msi_addr_offset)
{
	struct vepc *vepc = epc_get_drvdata(epc);
	u32 enabled = vepc_read(vepc, VEPC_REG_MSI_ENABLED);
	u64 addr = vepc_msi_address(vepc);
	u64 page = addr & ~(u64)(SZ_4K - 1);
	int i, ret;

	if (!enabled || !addr || !interrupt_num || interrupt_num > enabled)
		return -EINVAL;
	for (i = 0; i < interrupt_num; i++) {
		ret = vepc_map_addr(epc, func_no, vfunc_no,
				    phys_addr + (phys_addr_t)i * entry_size, page,
				    entry_size);
		if (ret)
			return ret;
	}
	*msi_data = vepc_read(vepc, VEPC_REG_MSI_DATA) & ~(enabled - 1);
	*msi_addr_offset = addr - page;
	return 0;
}

/* May be called in atomic context by old vntb: register accesses only. */
static int vepc_raise_irq(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			  vepc_irq_type_t type, u16 num)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	switch (type) {
	case VEPC_EPC_IRQ_INTX:
		return vepc_commit(vepc, VEPC_REG_IRQ_RAISE,
				   VEPC_IRQ_RAISE(VEPC_IRQ_INTX, 0), "raise INTx");
	case VEPC_EPC_IRQ_MSI:
		return vepc_raise_msi(vepc, num);
	default:
		dev_err_ratelimited(&vepc->pdev->dev,
				    "IRQ type %u not supported (INTx and MSI only)\n",
				    (unsigned int)type);
		return -EINVAL;
	}
}

static int vepc_start(struct pci_epc *epc)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	return vepc_commit(vepc, VEPC_REG_CONTROL, VEPC_CONTROL_START,
			   "start the link");
}

static void vepc_stop(struct pci_epc *epc)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	vepc_commit(vepc, VEPC_REG_CONTROL, VEPC_CONTROL_STOP, "stop the link");
}

static const struct pci_epc_features *
vepc_get_features(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	return &vepc->features;
}

#if VEPC_HAS_AUX_RESOURCES
/*
 * 7.2 ops.  One resource when the doorbell is offered: the ring register,
 * not yet exposed through any BAR (NO_BAR), so the core DMA-maps it and
 * the function points a BAR of its own at it.  Without it the count is 0:
 * pci_epf_alloc_doorbell() fails with -ENODEV and pci-epf-vntb falls back
 * to polling its doorbell BAR, as on 6.x.
 */
static int vepc_get_aux_resources_count(struct pci_epc *epc, u8 func_no,
					u8 vfunc_no)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	return vepc->db_irq ? 1 : 0;
}

static int vepc_get_aux_resources(struct pci_epc *epc, u8 func_no,
				  u8 vfunc_no,
				  struct pci_epc_aux_resource *res, int count)
{
	struct vepc *vepc = epc_get_drvdata(epc);

	if (!vepc->db_irq)
		return -EOPNOTSUPP;
	if (count < 1)
		return -EINVAL;
	res[0] = (struct pci_epc_aux_resource) {
		.type = PCI_EPC_AUX_DOORBELL_MMIO,
		.phys_addr = vepc->db_ring,
		.size = sizeof(u32),
		.bar = NO_BAR,
		.u.db_mmio = {
			.irq = vepc->db_irq,
			/* The device rings on any value; 1 reads well in a trace. */
			.data = 1,
		},
	};
	return 0;
}
#endif

static const struct pci_epc_ops vepc_ops = {
	.write_header	= vepc_write_header,
	.set_bar	= vepc_set_bar,
	.clear_bar	= vepc_clear_bar,
	.map_addr	= vepc_map_addr,
	.unmap_addr	= vepc_unmap_addr,
	.set_msi	= vepc_set_msi,
	.get_msi	= vepc_get_msi,
	.raise_irq	= vepc_raise_irq,
	.map_msi_irq	= vepc_map_msi_irq,
	.start		= vepc_start,
	.stop		= vepc_stop,
	.get_features	= vepc_get_features,
#if VEPC_HAS_AUX_RESOURCES
	.get_aux_resources_count = vepc_get_aux_resources_count,
	.get_aux_resources = vepc_get_aux_resources,
#endif
	/*
	 * No .owner: the configfs controller group holds a pci_epc_get()
	 * reference for the EPC's whole life, so an owner could never be
	 * unloaded.  Like the in-tree EPC drivers, unlink functions first.
	 */
};

/* ---- Probe and remove ---- */

static int vepc_check_device(struct vepc *vepc)
{
	struct device *dev = &vepc->pdev->dev;
	u32 magic = vepc_read(vepc, VEPC_REG_MAGIC);
	u32 version = vepc_read(vepc, VEPC_REG_VERSION);

	if (magic != VEPC_MAGIC) {
		dev_err(dev, "bad magic %#x (expected %#x)\n", magic, VEPC_MAGIC);
		return -ENODEV;
	}
	if (version != VEPC_REGS_VERSION) {
		dev_err(dev, "register layout version %u, driver knows %u\n",
			version, VEPC_REGS_VERSION);
		return -ENODEV;
	}
	return 0;
}

/* The aperture is BAR2, cut to the size the device says is usable. */
static int vepc_find_aperture(struct vepc *vepc)
{
	struct pci_dev *pdev = vepc->pdev;
	resource_size_t len = pci_resource_len(pdev, VEPC_APERTURE_BAR);
	u64 usable = vepc_read(vepc, VEPC_REG_APERTURE_SIZE_LO) |
		     (u64)vepc_read(vepc, VEPC_REG_APERTURE_SIZE_HI) << 32;

	if (!(pci_resource_flags(pdev, VEPC_APERTURE_BAR) & IORESOURCE_MEM) ||
	    len < PAGE_SIZE) {
		dev_err(&pdev->dev, "BAR%d is not a usable memory aperture\n",
			VEPC_APERTURE_BAR);
		return -ENODEV;
	}
	vepc->aperture = pci_resource_start(pdev, VEPC_APERTURE_BAR);
	vepc->aperture_size = usable && usable < len ? usable : len;
	return 0;
}

/*
 * MSI only, no link-up notifier (the device's only interrupt is the
 * doorbell's INTx), BARs as free_bars says.  align: BAR memory comes in whole 4 KiB pages, so the
 * QEMU side aliases whole pages of EP RAM into the host's BARs.
 */
static int vepc_init_features(struct vepc *vepc)
{
	struct pci_epc_features *features = &vepc->features;
	int bar;

	if (!(free_bars & GENMASK(PCI_STD_NUM_BARS - 1, 0))) {
		dev_err(&vepc->pdev->dev, "free_bars %#x offers no BAR\n",
			free_bars);
		return -EINVAL;
	}
	features->msi_capable = true;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 15, 0)
	/* 6.15 asks: raise_irq() does INTx (older cores assume every EPC can). */
	features->intx_capable = true;
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 0, 0)
	/* 7.0 asks: the device re-targets a live BAR (vntb memory windows). */
	features->dynamic_inbound_mapping = true;
#endif
	features->align = SZ_4K;
	for (bar = 0; bar < PCI_STD_NUM_BARS; bar++)
		if (!(free_bars & BIT(bar)))
			vepc_reserve_bar(features, bar);
	return 0;
}

/*
 * 6.1's pci_epc_destroy() frees the EPC itself right after
 * device_unregister() but gives the device no release callback, so the
 * driver core WARNs on every unbind.  Later cores have their own callback
 * (which frees it); only fill the gap.
 */
static void vepc_epc_release_noop(struct device *dev)
{
}

static void vepc_mem_exit(void *epc)
{
	pci_epc_mem_exit(epc);
}

static int vepc_create_epc(struct vepc *vepc)
{
	struct device *dev = &vepc->pdev->dev;
	struct pci_epc *epc;
	int ret;

	/* Named after the PCI device, e.g. "0000:00:02.0", in configfs too. */
	epc = devm_pci_epc_create(dev, &vepc_ops);
	if (IS_ERR(epc)) {
		dev_err(dev, "cannot create the EPC: %pe\n", epc);
		return PTR_ERR(epc);
	}
	if (!epc->dev.release)
		epc->dev.release = vepc_epc_release_noop;
	epc->max_functions = 1;
	epc_set_drvdata(epc, vepc);
	vepc->epc = epc;

	ret = pci_epc_mem_init(epc, vepc->aperture, vepc->aperture_size,
			       PAGE_SIZE);
	if (ret) {
		dev_err(dev, "cannot manage the aperture: %d\n", ret);
		return ret;
	}
	ret = devm_add_action_or_reset(dev, vepc_mem_exit, epc);
	if (ret || !msi_write)
		return ret;
	/* Freed with the aperture map (pci_epc_mem_exit). */
	vepc->msi_pci = U64_MAX;
	vepc->msi_virt = pci_epc_mem_alloc_addr(epc, &vepc->msi_phys, SZ_4K);
	if (!vepc->msi_virt) {
		dev_err(dev, "no aperture page for MSI writes\n");
		return -ENOMEM;
	}
	return 0;
}

/* ---- Embedded doorbell (7.2+) ---- */

#if VEPC_HAS_AUX_RESOURCES
/*
 * The device asserts INTx while DB_STATUS is set; functions expect an
 * edge-like "kick" they need not acknowledge.  So the INTx handler clears
 * the status and hands the event to a descriptor of our own, the IRQ the
 * function requested (as a controller demultiplexes its doorbell).
 */
static irqreturn_t vepc_doorbell_isr(int irq, void *data)
{
	struct vepc *vepc = data;
	u32 status = vepc_read(vepc, VEPC_REG_DB_STATUS);

	if (!status)
		return IRQ_NONE;
	vepc_write(vepc, VEPC_REG_DB_STATUS, status);
	generic_handle_irq(vepc->db_irq);
	return IRQ_HANDLED;
}

static void vepc_doorbell_free(void *data)
{
	struct vepc *vepc = data;

	irq_free_desc(vepc->db_irq);
	vepc->db_irq = 0;
}

/* Failure is not fatal: functions then poll, as without the resource. */
static void vepc_doorbell_init(struct vepc *vepc)
{
	struct pci_dev *pdev = vepc->pdev;
	struct device *dev = &pdev->dev;
	int irq, ret;

	if (!doorbell)
		return;
	if (!(pci_resource_flags(pdev, VEPC_DOORBELL_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, VEPC_DOORBELL_BAR) < VEPC_DOORBELL_SIZE ||
	    !pdev->irq) {
		dev_info(dev, "device has no doorbell region or INTx: no embedded doorbell\n");
		return;
	}
	ret = pcim_request_region(pdev, VEPC_DOORBELL_BAR, KBUILD_MODNAME);
	if (ret) {
		dev_err(dev, "cannot claim the doorbell region: %d\n", ret);
		return;
	}

	irq = irq_alloc_desc(dev_to_node(dev));
	if (irq < 0) {
		dev_err(dev, "cannot allocate the doorbell IRQ: %d\n", irq);
		return;
	}
	irq_set_chip_and_handler(irq, &dummy_irq_chip, handle_simple_irq);
	irq_clear_status_flags(irq, IRQ_NOREQUEST | IRQ_NOPROBE);
	vepc->db_irq = irq;
	if (devm_add_action_or_reset(dev, vepc_doorbell_free, vepc))
		return;

	vepc_write(vepc, VEPC_REG_DB_STATUS, ~0u);
	ret = devm_request_irq(dev, pdev->irq, vepc_doorbell_isr, IRQF_SHARED,
			       "vepc-doorbell", vepc);
	if (ret) {
		dev_err(dev, "cannot request INTx %d: %d\n", pdev->irq, ret);
		vepc->db_irq = 0;
		return;
	}
	vepc->db_ring = pci_resource_start(pdev, VEPC_DOORBELL_BAR) +
			VEPC_DOORBELL_RING;
}
#else
static void vepc_doorbell_init(struct vepc *vepc)
{
}
#endif

static int vepc_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct vepc *vepc;
	u32 status;
	int ret;

	vepc = devm_kzalloc(dev, sizeof(*vepc), GFP_KERNEL);
	if (!vepc)
		return -ENOMEM;
	vepc->pdev = pdev;
	pci_set_drvdata(pdev, vepc);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;

	vepc->regs = vepc_claim_bars(pdev);
	if (IS_ERR(vepc->regs)) {
		dev_err(dev, "cannot claim BARs: %pe\n", vepc->regs);
		return PTR_ERR(vepc->regs);
	}

	ret = vepc_check_device(vepc);
	if (ret)
		return ret;

	ret = vepc_find_aperture(vepc);
	if (ret)
		return ret;

	ret = vepc_init_features(vepc);
	if (ret)
		return ret;

	vepc->nr_windows = min_t(u32, vepc_read(vepc, VEPC_REG_WINDOW_COUNT),
				 VEPC_MAX_WINDOWS);
	if (!vepc->nr_windows) {
		dev_err(dev, "device has no outbound windows\n");
		return -ENODEV;
	}

	/* BAR memory comes from dma_alloc_coherent() on this device. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret) {
		dev_err(dev, "cannot set a 64-bit DMA mask: %d\n", ret);
		return ret;
	}
	/* The host's accesses to BAR memory are this device's DMA. */
	pci_set_master(pdev);

	/* A previous instance (reload after a crash) may have left the link up. */
	status = vepc_read(vepc, VEPC_REG_STATUS);
	if (status & VEPC_STATUS_STARTED)
		vepc_commit(vepc, VEPC_REG_CONTROL, VEPC_CONTROL_STOP,
			    "stop the link left started");

	vepc_doorbell_init(vepc);

	ret = vepc_create_epc(vepc);
	if (ret)
		return ret;

	dev_info(dev, "EPC %s: aperture %pa (%pa bytes), %u windows, BARs %#x, relay %s, embedded doorbell %s\n",
		 dev_name(&vepc->epc->dev), &vepc->aperture,
		 &vepc->aperture_size, vepc->nr_windows, free_bars,
		 status & VEPC_STATUS_RELAY_CONNECTED ? "connected" : "not connected",
		 vepc->db_irq ? "offered" : "not offered");

	/*
	 * No separate core initialisation to wait for.  6.11+ functions
	 * configure the EPC from this event (or at bind, if it came first);
	 * on 6.1 nobody listens and functions configure it at bind.
	 */
	pci_epc_init_notify(vepc->epc);
	return 0;
}

static void vepc_remove(struct pci_dev *pdev)
{
	struct vepc *vepc = pci_get_drvdata(pdev);

	/* Functions should be unlinked by now; make sure the host side unplugs. */
	if (vepc_read(vepc, VEPC_REG_STATUS) & VEPC_STATUS_STARTED)
		pci_epc_stop(vepc->epc);
	/* devres then frees the aperture map, the EPC and the BARs, in that order. */
}

static const struct pci_device_id vepc_ids[] = {
	{ PCI_DEVICE(VEPC_PCI_VENDOR_ID, VEPC_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vepc_ids);

static struct pci_driver vepc_driver = {
	.name		= KBUILD_MODNAME,
	.id_table	= vepc_ids,
	.probe		= vepc_probe,
	.remove		= vepc_remove,
};
module_pci_driver(vepc_driver);

MODULE_DESCRIPTION("PCI endpoint controller for the epf-ntb-harness virtual EPC device");
MODULE_LICENSE("GPL");
