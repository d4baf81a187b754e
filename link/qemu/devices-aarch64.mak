# Devices compiled into qemu-system-aarch64 (configure --without-default-devices
# --with-devices-aarch64=ntbh; build.sh installs this file as
# configs/devices/aarch64-softmmu/ntbh.mak).  Without default devices every
# "default y" and "imply" in QEMU's Kconfig is off: only what is named here
# and what those entries `select` is built.

# The EP guest's machine: -machine virt.  It selects the GIC, the PL011
# behind -serial stdio (ttyAMA0), the PL031 RTC, its generic PCIe host,
# virtio-mmio, fw_cfg DMA and the platform bus.
CONFIG_ARM_VIRT=y
# gic-version=3 under TCG: a "default y" entry, so off unless named.
CONFIG_ARM_GICV3_TCG=y
# QEMU 7.2's TCG Arm code always contains the M-profile CPUs, which call the
# NVIC, and the semihosting handler (which it selects): another "default y"
# entry, without which qemu-system-aarch64 does not link.
CONFIG_ARM_V7M=y

# -device virtio-net-pci (SSH over -netdev user, the guests' dgram network)
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=y
# -device vepc (the endpoint controller)
CONFIG_VEPC=y
