/** Debian packages the harness needs on the machine it runs on (bookworm). */
export const hostPackages = [
  // Stock QEMU for single-guest boots, plus qemu-img and friends.
  'qemu-system-x86',
  'qemu-system-arm',
  'qemu-utils',
  // Kernel builds (the sources themselves are downloaded per version: harness/kernel/debian.ts).
  'build-essential',
  'bc',
  'bison',
  'flex',
  'libelf-dev',
  'libssl-dev',
  'dwarves',
  'kmod',
  'cpio',
  'xz-utils',
  'zstd',
  'rsync',
  'ccache',
  'gcc-aarch64-linux-gnu',
  'libc6-dev-arm64-cross',
  'util-linux',
  // Guest image contents for the host's own arch (the other arch's .debs are downloaded).
  'busybox-static',
  'dropbear-bin',
  'openssh-client',
  // Building our QEMU with the link devices (link/qemu/README.md).
  'dpkg-dev',
  'libglib2.0-dev',
  'libpixman-1-dev',
  'libslirp-dev',
  'meson',
  'ninja-build',
  'libfdt-dev',
  'zlib1g-dev',
  'python3-venv',
  // ROMs for the QEMU we build (Debian's source package ships none).
  'qemu-system-data',
  'seabios',
  'ipxe-qemu',
  // The libFuzzer harness of the link's C message reader (link/qemu/fuzz; its runtime is only a Recommends of clang).
  'clang',
  'libclang-rt-14-dev',
  // The test suite renders report.html in a real headless browser (test/e2e/report-html.test.ts).
  'chromium',
];

/** Per guest architecture: the .debs unpacked into the guest image (downloaded for that arch). */
export const guestDebs = ['busybox-static', 'dropbear-bin', 'libc6', 'libcrypt1', 'zlib1g', 'libtomcrypt1', 'libtommath1', 'libgmp10'];
