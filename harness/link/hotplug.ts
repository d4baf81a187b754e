import type { QmpClient } from '../qemu/qmp.ts';
import type { Plugger } from './relay.ts';
import type { FunctionDescription } from './wire.ts';

/** Names shared by the RC's QEMU command line and the hot-plug requests for one link. */
export function linkNames(linkId: number) {
  return { chardev: `link${linkId}`, port: `link${linkId}-port`, device: `link${linkId}-fn` };
}

/** RC QEMU arguments for a link: a PCIe root port to plug into and the relay's socket. */
export function rcLinkArgs(linkId: number, socketPath: string): string[] {
  const names = linkNames(linkId);
  return [
    '-device',
    // SeaBIOS gives a hot-plug port only 2 MiB per window: reserve room for the function's BARs.
    `pcie-root-port,id=${names.port},bus=pcie.0,chassis=${linkId + 1},slot=${linkId + 1},mem-reserve=64M,pref64-reserve=256M`,
    '-chardev',
    `socket,id=${names.chardev},path=${socketPath}`,
  ];
}

/** EP QEMU arguments for a link: the EPC device, its relay socket and the RC RAM file it maps. */
export function epLinkArgs(linkId: number, socketPath: string, peerRam: string, apertureMiB = 128, pciSlot?: number): string[] {
  const names = linkNames(linkId);
  // A fixed slot fixes the EPC's name (vepc.ko names it after the PCI device): how a trio maps EPC to link.
  const addr = pciSlot === undefined ? '' : `,addr=${epcSlotHex(pciSlot)}`;
  return [
    '-chardev',
    `socket,id=${names.chardev},path=${socketPath}`,
    '-device',
    `vepc,id=link${linkId}-epc,chardev=${names.chardev},link-id=${linkId},peer-ram=${peerRam},aperture-size=${apertureMiB}M${addr}`,
  ];
}

function epcSlotHex(slot: number): string {
  if (!Number.isInteger(slot) || slot < 1 || slot > 0x1f) throw new RangeError(`PCI slot ${slot} is outside 1..31`);
  return `0x${slot.toString(16)}`;
}

/** The EPC name vepc.ko registers for a vepc in slot `slot` of the EP's root bus (its PCI device name). */
export function epcNameForSlot(slot: number): string {
  epcSlotHex(slot);
  return `0000:00:${slot.toString(16).padStart(2, '0')}.0`;
}

/** device_add arguments that make the RC function look exactly like what the EP described. */
export function functionProperties(linkId: number, description: FunctionDescription, epRam: string): Record<string, unknown> {
  const names = linkNames(linkId);
  const props: Record<string, unknown> = {
    driver: 'vepc-function',
    id: names.device,
    bus: names.port,
    chardev: names.chardev,
    'link-id': linkId,
    'peer-ram': epRam,
    'vendor-id': description.vendorId,
    'device-id': description.deviceId,
    revision: description.revision,
    'class-code': (description.classCode << 16) | (description.subclass << 8) | description.progif,
    'subsystem-vendor-id': description.subsysVendorId,
    'subsystem-id': description.subsysId,
    'intx-pin': description.intxPin,
    'msi-vectors': description.msiVectors,
  };
  description.bars.forEach((bar, n) => {
    props[`bar${n}-size`] = Number(bar.size);
    props[`bar${n}-flags`] = bar.flags;
    props[`bar${n}-offset`] = Number(bar.epRamOffset);
  });
  return props;
}

/** Hot-plug through the RC's QMP: device_add on START, device_del + DEVICE_DELETED on STOP. */
export class QmpPlugger implements Plugger {
  constructor(
    private readonly qmp: QmpClient,
    private readonly linkId: number,
    private readonly epRam: string,
    private readonly timeoutMs: number,
  ) {}

  async plug(description: FunctionDescription): Promise<void> {
    await this.qmp.execute('device_add', functionProperties(this.linkId, description, this.epRam), this.timeoutMs);
  }

  async unplug(): Promise<void> {
    const id = linkNames(this.linkId).device;
    const deleted = this.qmp.waitEvent('DEVICE_DELETED', (event) => event.data?.device === id, this.timeoutMs);
    deleted.catch(() => undefined);
    await this.qmp.execute('device_del', { id }, this.timeoutMs);
    await deleted;
  }
}
