import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Arch } from '../../harness/kernel/spec.ts';
import { epLinkArgs, functionProperties, rcLinkArgs } from '../../harness/link/hotplug.ts';
import type { FunctionDescription } from '../../harness/link/wire.ts';
import { guestNetArgs, qemuArgs } from '../../harness/qemu/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';

// Our QEMU is built with --without-default-devices: a machine or device the harness passes exists only if
// link/qemu/devices-<target>.mak names its Kconfig symbols. The symbols per name, from QEMU 7.2's hw/*/Kconfig.
const SYMBOLS: Record<string, string[]> = {
  q35: ['Q35'],
  virt: ['ARM_VIRT', 'ARM_GICV3_TCG'],
  'intel-iommu': ['VTD'],
  'pcie-root-port': ['PCIE_PORT'],
  'virtio-net-pci': ['VIRTIO_PCI', 'VIRTIO_NET'],
  vepc: ['VEPC'],
  'vepc-function': ['VEPC'],
};

const target: Record<Arch, string> = { x86_64: 'x86_64', arm64: 'aarch64' };

function enabled(arch: Arch): Set<string> {
  const mak = readFileSync(join(repoRoot, 'link', 'qemu', `devices-${target[arch]}.mak`), 'utf8');
  return new Set([...mak.matchAll(/^CONFIG_(\w+)=y\s*$/gm)].map((m) => m[1]!));
}

/** Machine and device names in an argv: `-machine NAME,…` and `-device NAME,…`. */
function names(argv: string[]): string[] {
  const found: string[] = [];
  argv.forEach((arg, i) => {
    const next = argv[i + 1];
    if (!next || (arg !== '-device' && arg !== '-machine')) return;
    const name = next.split(',')[0]!;
    if (!name.includes('=')) found.push(name);
  });
  return found;
}

/** Everything the harness puts on one guest's QEMU command line, plus what it hot-plugs into it. */
function harnessDevices(arch: Arch): string[] {
  const argv = qemuArgs({
    arch,
    kernel: '/k',
    initrd: '/i',
    cmdline: [],
    memoryMiB: 512,
    cpus: 1,
    ramFile: '/r',
    sshPort: 2222,
    qmpSocket: '/q',
    accel: 'tcg',
    dataDir: '/d',
    extra: [...guestNetArgs('/a', '/b', 1), ...(arch === 'x86_64' ? rcLinkArgs(0, '/s') : epLinkArgs(0, '/s', '/r', 128, 16))],
  });
  const description: FunctionDescription = { vendorId: 0x1957, deviceId: 0x0809, revision: 0, progif: 0, subclass: 0x80, classCode: 0x05, subsysVendorId: 0, subsysId: 0, intxPin: 0, msiVectors: 16, bars: [] };
  const plugged = arch === 'x86_64' ? [String(functionProperties(0, description, '/e').driver)] : [];
  return [...names(argv), ...plugged];
}

for (const arch of ['x86_64', 'arm64'] as const) {
  t.test(`devices-${target[arch]}.mak builds every machine and device the harness uses on ${arch}`, async (t) => {
    const devices = harnessDevices(arch);
    t.ok(devices.length >= 4, `found ${devices.join(' ')}`);
    const have = enabled(arch);
    for (const name of new Set(devices)) {
      const symbols = SYMBOLS[name];
      t.ok(symbols, `${name}: its Kconfig symbols are in this test's table (add them, and to link/qemu/devices-${target[arch]}.mak)`);
      for (const symbol of symbols ?? []) t.ok(have.has(symbol), `${name}: CONFIG_${symbol}=y in devices-${target[arch]}.mak`);
    }
  });
}

t.test('VEPC is named explicitly: without default devices its "default y if PCI_DEVICES" is off', async (t) => {
  for (const arch of ['x86_64', 'arm64'] as const) t.ok(enabled(arch).has('VEPC'), target[arch]);
});
