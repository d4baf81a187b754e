# Devices compiled into qemu-system-x86_64 (configure --without-default-devices
# --with-devices-x86_64=ntbh; build.sh installs this file as
# configs/devices/x86_64-softmmu/ntbh.mak).  Without default devices every
# "default y" and "imply" in QEMU's Kconfig is off: only what is named here
# and what those entries `select` is built.

# The RC guest's machine: -machine q35.  It selects the ICH9 LPC/SMBus/AHCI,
# PIC/IO-APIC/PIT, the MC146818 RTC, i8042, fw_cfg DMA (for -kernel) and the
# ISA serial port behind -serial stdio.
CONFIG_Q35=y
# q35 instantiates these by itself when they are compiled in: keep them so
# the guest sees the same machine as with QEMU's default device set.
CONFIG_HPET=y
CONFIG_VMPORT=y
CONFIG_VMMOUSE=y

# -device intel-iommu,intremap=on
CONFIG_VTD=y
# -device pcie-root-port (one per link, the hot-plug slot of vepc-function)
CONFIG_PCIE_PORT=y
# -device virtio-net-pci (SSH over -netdev user, the guests' dgram network)
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=y
# vepc-function, hot-plugged through QMP device_add
CONFIG_VEPC=y
