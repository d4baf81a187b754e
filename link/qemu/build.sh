#!/bin/bash
# Build Debian bookworm's QEMU 7.2 with the vepc device pair and install the
# two system emulators the harness needs.
#
#   link/qemu/build.sh SRC_WORK_DIR INSTALL_PREFIX
#
# SRC_WORK_DIR   scratch directory: the unpacked source tree and its build/
#                directory live here and are reused by the next run.
# INSTALL_PREFIX gets bin/qemu-system-{x86_64,aarch64} and share/qemu/ (the
#                ROMs those binaries load; they find them relative to bin/).
#
# QEMU_DEB_SRC_DIR (default /var/tmp/qsrc) is a directory holding the Debian
# source package (.dsc + tarballs); if it has none, `apt-get source` fetches
# it into SRC_WORK_DIR.  Running the script again only rebuilds what changed.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 SRC_WORK_DIR INSTALL_PREFIX" >&2
    exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
link_dir=$(dirname "$here")
mkdir -p "$1" "$2"
work=$(cd "$1" && pwd)
prefix=$(cd "$2" && pwd)
deb_src_dir=${QEMU_DEB_SRC_DIR:-/var/tmp/qsrc}
src="$work/qemu"
build="$src/build"
jobs=$(nproc)

log() { echo "[vepc-qemu] $*" >&2; }

# 1. Unpack Debian's source package (with Debian's own patches applied),
# again only if the package changed.
find_dsc() { ls "$1"/qemu_*.dsc 2>/dev/null | sort -V | tail -n 1 || true; }
dsc=$(find_dsc "$deb_src_dir")
[ -n "$dsc" ] || dsc=$(find_dsc "$work/download")
if [ -z "$dsc" ]; then
    log "no qemu .dsc in $deb_src_dir, running apt-get source"
    mkdir -p "$work/download"
    (cd "$work/download" && apt-get source --download-only qemu)
    dsc=$(find_dsc "$work/download")
fi
if [ "$(cat "$src/.vepc-dsc" 2>/dev/null)" != "$(basename "$dsc")" ]; then
    log "unpacking $dsc"
    rm -rf "$src" "$src.tmp"
    dpkg-source -x "$dsc" "$src.tmp" >/dev/null
    basename "$dsc" >"$src.tmp/.vepc-dsc"
    mv "$src.tmp" "$src"
fi

# 2. Our sources.  Copy only what changed so ninja recompiles only that.
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2"
        log "updated ${2#"$src"/}"
    fi
}
for f in vepc.c vepc-function.c vepc-wire.c vepc-wire.h vlink-rx.c vlink-rx.h; do
    install_if_changed "$here/hw/$f" "$src/hw/misc/$f"
done
install_if_changed "$link_dir/include/vepc-link.h" "$src/include/hw/misc/vepc-link.h"
# The device set per target (configure --with-devices-<target>=ntbh).  An
# edited .mak makes ninja rerun meson, which reconfigures what changed.
for t in x86_64 aarch64; do
    install_if_changed "$here/devices-$t.mak" "$src/configs/devices/$t-softmmu/ntbh.mak"
done

# 3. The build wiring (Kconfig + meson.build).  The patch as applied is kept
# beside the tree so an edited patch replaces the old one.
patch_file="$here/qemu-7.2-vepc.patch"
applied="$src/.vepc-applied.patch"
if ! cmp -s "$patch_file" "$applied"; then
    if [ -f "$applied" ]; then
        log "reverting the previous $(basename "$patch_file")"
        patch -d "$src" -p1 -R --silent <"$applied"
        rm -f "$applied"
    fi
    log "applying $(basename "$patch_file")"
    patch -d "$src" -p1 --forward --silent <"$patch_file"
    cp "$patch_file" "$applied"
fi

# 4. Configure.  --without-default-features turns off everything optional;
# what we need back: TCG, the system libfdt (arm virt builds its device
# tree) and slirp (-netdev user,hostfwd=...).  memory-backend-file, QMP and
# socket/dgram chardevs and netdevs are always built.  Devices are Kconfig
# symbols: --without-default-devices builds none but those our devices-*.mak
# name (q35, arm virt, pcie-root-port, intel-iommu, virtio-net-pci, vepc),
# instead of every board and optional device of both targets.  No --prefix:
# we install by hand, and QEMU finds ../share/qemu relative to its binary
# wherever it is, so INSTALL_PREFIX can change (or move) without a rebuild.
configure_args=(
    --target-list=x86_64-softmmu,aarch64-softmmu
    --without-default-features
    --without-default-devices
    --with-devices-x86_64=ntbh
    --with-devices-aarch64=ntbh
    --enable-tcg
    --enable-fdt=system
    --enable-slirp
    --disable-docs
    --disable-tools
    --disable-werror
)
stamp="$build/.vepc-configure-args"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${configure_args[*]}" ]; then
    log "configuring"
    rm -rf "$build"
    mkdir -p "$build"
    (cd "$build" && ../configure "${configure_args[@]}" >configure.log) || {
        tail -n 30 "$build/configure.log" >&2
        exit 1
    }
    echo "${configure_args[*]}" >"$stamp"
fi

# 5. Build.
log "building with $jobs jobs"
ninja -C "$build" -j "$jobs" qemu-system-x86_64 qemu-system-aarch64

# 6. Install the two binaries and the ROMs they load.  Debian's source
# package carries no prebuilt ROMs (dfsg), so they come from Debian's binary
# packages qemu-system-data, seabios and ipxe-qemu (see README.md).
mkdir -p "$prefix/bin" "$prefix/share/qemu"
for t in x86_64 aarch64; do
    install -m 0755 "$build/qemu-system-$t" "$prefix/bin/qemu-system-$t.new"
    mv -f "$prefix/bin/qemu-system-$t.new" "$prefix/bin/qemu-system-$t"
done

# q35 + SeaBIOS + -kernel (linuxboot, multiboot, pvh for a vmlinux) +
# virtio-net-pci's option ROM (both targets load it).  No VGA or e1000e is
# built, so their ROMs are not needed (the harness passes -nodefaults).
roms=(
    /usr/share/seabios/bios-256k.bin
    /usr/share/qemu/kvmvapic.bin
    /usr/share/qemu/linuxboot.bin
    /usr/share/qemu/linuxboot_dma.bin
    /usr/share/qemu/multiboot.bin
    /usr/share/qemu/multiboot_dma.bin
    /usr/share/qemu/pvh.bin
    /usr/lib/ipxe/qemu/efi-virtio.rom
)
missing=0
for rom in "${roms[@]}"; do
    if [ -e "$rom" ]; then
        install -m 0644 "$(readlink -f "$rom")" "$prefix/share/qemu/$(basename "$rom")"
    else
        log "missing ROM $rom (apt-get install qemu-system-data seabios ipxe-qemu)"
        missing=1
    fi
done
[ "$missing" = 0 ] || exit 1

log "installed $prefix/bin/qemu-system-x86_64 and qemu-system-aarch64"
