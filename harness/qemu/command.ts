import type { Arch } from '../kernel/spec.ts';

export interface QemuCommandInput {
  arch: Arch;
  kernel: string;
  initrd: string;
  cmdline: string[];
  memoryMiB: number;
  cpus: number;
  /** When set, guest RAM is this file (share=on) so another process can map it. */
  ramFile?: string;
  sshPort: number;
  qmpSocket: string;
  accel: 'tcg' | 'kvm';
  /** Firmware/ROM directory for a QEMU built from source (-L). */
  dataDir?: string;
  /** Device arguments added by topologies (link devices, root ports). */
  extra: string[];
  /** x86: interrupt-remapping IOMMU (default on; off only for bare baselines such as bench/speed.ts). */
  iommu?: boolean;
}

/** Console device name per arch, for console= on the kernel command line. */
export const consoleDevice: Record<Arch, string> = { x86_64: 'ttyS0', arm64: 'ttyAMA0' };

export function defaultCmdline(arch: Arch): string[] {
  const common = [`console=${consoleDevice[arch]}`, 'printk.devkmsg=on', 'loglevel=7', 'panic=-1', 'rdinit=/init'];
  // With an IOMMU the RC's DMA addresses must be physical: the link maps RC RAM by physical address.
  // no_timer_check: under TCG on a loaded machine the IO-APIC timer probe can miss its ticks, and with
  // interrupt remapping on the kernel then panics ("timer doesn't work through Interrupt-remapped
  // IO-APIC") — a property of emulation speed, not of the code under test (KVM guests skip it too).
  return arch === 'x86_64' ? [...common, 'iommu=pt', 'no_timer_check'] : common;
}

/** The full argv (after the binary) for one guest. Kept pure so it can be unit-tested and recorded. */
export function qemuArgs(input: QemuCommandInput): string[] {
  const args: string[] = [];
  const machine = input.arch === 'x86_64' ? 'q35' : 'virt,gic-version=3';
  args.push('-machine', `${machine},accel=${input.accel}`);
  if (input.arch === 'arm64') args.push('-cpu', input.accel === 'kvm' ? 'host' : 'max');
  else if (input.accel === 'kvm') args.push('-cpu', 'host');
  // RDRAND seeds the guest's CRNG at boot. Without it an x86 TCG guest's getrandom() (dropbear's first
  // key exchange) blocks for ~2 s of jitter entropy; arm64's -cpu max has RNDR for the same reason.
  else args.push('-cpu', 'qemu64,+rdrand');
  args.push('-smp', String(input.cpus), '-m', `${input.memoryMiB}M`);
  if (input.ramFile) {
    args.push('-object', `memory-backend-file,id=ram0,size=${input.memoryMiB}M,mem-path=${input.ramFile},share=on`);
    args.push('-machine', 'memory-backend=ram0');
  }
  // Interrupt remapping: without it an x86 device gets a single MSI vector.
  if (input.arch === 'x86_64' && input.iommu !== false) args.push('-device', 'intel-iommu,intremap=on');
  args.push('-kernel', input.kernel, '-initrd', input.initrd, '-append', input.cmdline.join(' '));
  args.push('-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${input.sshPort}-:22`, '-device', 'virtio-net-pci,netdev=net0');
  args.push('-nodefaults', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot');
  args.push('-qmp', `unix:${input.qmpSocket},server=on,wait=off`);
  if (input.dataDir) args.push('-L', input.dataDir);
  args.push(...input.extra);
  return args;
}

/**
 * The guests' private network: a second virtio-net on a datagram netdev between two UNIX sockets in
 * the run's scratch directory, one bound by each guest's QEMU, each sending to the other's. Nothing
 * goes through the outer machine's interfaces. The MAC's last byte is the guest's address on
 * 192.168.76.0/24 (images/init.sh).
 */
export const GUEST_NET = { subnet: '192.168.76', host: 1, ep: 2 } as const;

export function guestNetArgs(localPath: string, remotePath: string, hostByte: number): string[] {
  const mac = `52:54:00:76:00:${hostByte.toString(16).padStart(2, '0')}`;
  return [
    '-netdev', `dgram,id=gnet,local.type=unix,local.path=${localPath},remote.type=unix,remote.path=${remotePath}`,
    '-device', `virtio-net-pci,netdev=gnet,mac=${mac}`,
  ];
}

export function defaultQemuBinary(arch: Arch): string {
  return arch === 'x86_64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
}

/** A shell-quoted command line, for the run's record and for copy-paste reproduction. */
export function shellQuote(argv: string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
