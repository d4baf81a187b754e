/**
 * Three guests for the pci-epf-ntb bridge (Documentation/PCI/endpoint/pci-ntb-howto.rst): an EP with
 * two of our EPC devices, each linked through its own relay to its own RC guest ("host" on link 0,
 * "host2" on link 1). pci-epf-ntb then joins the two hosts inside the EP: host writes into the
 * function's doorbell/memory-window BARs cross the EP's fabric (link/PROTOCOL.md, FABRIC_WRITE).
 */
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { Guest } from '../guest/guest.ts';
import type { SshKey } from '../guest/keys.ts';
import { LinkRelay } from '../link/relay.ts';
import { QmpPlugger, epLinkArgs, epcNameForSlot, linkNames, rcLinkArgs } from '../link/hotplug.ts';
import type { QemuBuild } from '../qemu/build.ts';
import { makePrivateDir } from '../util/rundir.ts';
import { scaleMs } from '../util/timeouts.ts';
import type { PairSide } from './pair.ts';

export interface BridgeOptions {
  /** Kept artifacts: dir/<guest>/ (console, QEMU command line), dir/wire-link0.ndjson, dir/wire-link1.ndjson. */
  dir: string;
  /** tmpfs scratch for RAM files and sockets. */
  shm: string;
  key: SshKey;
  qemu: QemuBuild;
  timeoutScale: number;
  log: (line: string) => void;
  ep: PairSide;
  host: PairSide;
  host2: PairSide;
  extraCmdline?: { ep?: string[]; host?: string[]; host2?: string[] };
  /** Module parameters for the EPC driver; default free_bars=0x3f (pci-epf-ntb wants BARs 0, 1, 2..). */
  epcParams?: string;
}

/** The EP's vepc for link N sits in this PCI slot, so its EPC is named epcNameForSlot(slot) on every boot. */
export const BRIDGE_EPC_SLOT = [0x10, 0x11] as const;
const HOSTS = ['host', 'host2'] as const;

export class BridgeTrio {
  /** [0] the link to host, [1] the link to host2. */
  readonly relays: readonly [LinkRelay, LinkRelay];
  readonly ep: Guest;
  readonly host: Guest;
  readonly host2: Guest;
  /** Controllers under /sys/kernel/config/pci_ep/controllers: [0] ↔ host, [1] ↔ host2 (checked by start()). */
  epcNames: [string, string] = [epcNameForSlot(BRIDGE_EPC_SLOT[0]), epcNameForSlot(BRIDGE_EPC_SLOT[1])];

  constructor(private readonly options: BridgeOptions) {
    for (const side of ['host', 'host2'] as const) {
      // The link maps RC RAM by physical address: it must stay below q35's 2 GiB split.
      if ((options[side].memoryMiB ?? 512) > 2048) {
        throw new HarnessError(`${side} memory must be at most 2048 MiB (the link maps RC RAM by physical address)`, {
          code: 'BAD_TOPOLOGY',
          kind: 'input',
          phase: 'link',
        });
      }
    }
    this.relays = [0, 1].map((linkId) => {
      const relay = new LinkRelay(linkId, options.shm, join(options.dir, `wire-link${linkId}.ndjson`));
      // A failed hot-plug shows up later as "link never came up": say the real reason as it happens.
      relay.on('error-event', (error: Error) => options.log(`link${linkId} hot-plug failed: ${error.message}`));
      return relay;
    }) as unknown as [LinkRelay, LinkRelay];
    const binary = (side: PairSide) => (side.kernel.arch === 'x86_64' ? options.qemu.x86_64 : options.qemu.aarch64);
    const common = { shmDir: options.shm, key: options.key, sharedRam: true, qemuDataDir: options.qemu.dataDir, timeoutScale: options.timeoutScale };
    const rc = (name: (typeof HOSTS)[number], linkId: number) =>
      new Guest({
        ...common,
        name,
        arch: options[name].kernel.arch,
        kernelImage: options[name].kernel.image,
        initramfs: options[name].image.initramfs,
        runDir: join(options.dir, name),
        memoryMiB: options[name].memoryMiB ?? 512,
        qemuBinary: binary(options[name]),
        extraArgs: rcLinkArgs(linkId, this.relays[linkId]!.socketPath.rc),
        extraCmdline: options.extraCmdline?.[name],
      });
    this.host = rc('host', 0);
    this.host2 = rc('host2', 1);
    this.ep = new Guest({
      ...common,
      name: 'ep',
      arch: options.ep.kernel.arch,
      kernelImage: options.ep.kernel.image,
      initramfs: options.ep.image.initramfs,
      runDir: join(options.dir, 'ep'),
      memoryMiB: options.ep.memoryMiB ?? 512,
      qemuBinary: binary(options.ep),
      extraArgs: [
        ...epLinkArgs(0, this.relays[0].socketPath.ep, this.host.ramFile, 128, BRIDGE_EPC_SLOT[0]),
        ...epLinkArgs(1, this.relays[1].socketPath.ep, this.host2.ramFile, 128, BRIDGE_EPC_SLOT[1]),
      ],
      extraCmdline: options.extraCmdline?.ep,
    });
  }

  /** Relays, then both RCs (they create the RAM files the EP maps), then the EP; all three boot at once. */
  async start(): Promise<void> {
    const { log } = this.options;
    await makePrivateDir(this.options.dir);
    await makePrivateDir(this.options.shm);
    for (const relay of this.relays) await relay.listen();
    await this.host.start();
    await this.host2.start();
    await this.ep.start();
    this.relays.forEach((relay, linkId) => {
      const guest = linkId === 0 ? this.host : this.host2;
      relay.plugger = new QmpPlugger(guest.qmp!, linkId, this.ep.ramFile, scaleMs(30_000, this.options.timeoutScale));
      const device = linkNames(linkId).device;
      guest.qmp!.on('event', (event) => {
        if (event.event === 'DEVICE_DELETED' && event.data?.device === device) relay.noteUnplugged(`DEVICE_DELETED from ${guest.name}`);
      });
    });
    const [ep, host, host2] = await Promise.all([this.ep.waitReady(), this.host.waitReady(), this.host2.waitReady()]);
    const s = (ms: number) => (ms / 1000).toFixed(1);
    log(`ep up in ${s(ep.sshMs)} s, host up in ${s(host.sshMs)} s, host2 up in ${s(host2.sshMs)} s`);
    await this.loadEpcDriver();
  }

  /** Loads our EPC driver in the EP and checks that both controllers are there under their slot names. */
  async loadEpcDriver(): Promise<void> {
    // pci-epf-ntb takes BARs 0, 1, 2.. in order and ntb_hw_epf expects exactly that: all six by default.
    await this.ep.exec(`modprobe vepc ${this.options.epcParams ?? 'free_bars=0x3f'}`.trim(), { check: true, timeoutMs: scaleMs(30_000, this.options.timeoutScale) });
    const listing = await this.ep.exec('ls /sys/kernel/config/pci_ep/controllers/', { check: true });
    const names = listing.stdout.split(/\s+/).filter(Boolean);
    const missing = this.epcNames.filter((name) => !names.includes(name));
    if (missing.length > 0) {
      throw new HarnessError(`expected the endpoint controllers ${this.epcNames.join(' and ')} (link 0, link 1) in the EP, missing ${missing.join(', ')}`, {
        code: 'EPC_MISSING',
        kind: 'infra',
        phase: 'link',
        guest: 'ep',
        excerpt: `controllers: ${names.join(' ') || '(none)'}\n${this.ep.console.tail(15)}`,
      });
    }
  }

  /** Every QEMU and both relays gone; safe after a failed or partial start and when called twice. */
  async stop(): Promise<void> {
    const results = await Promise.allSettled([this.ep.stop(), this.host.stop(), this.host2.stop()]);
    await Promise.allSettled(this.relays.map((relay) => relay.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
