import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { Guest } from '../guest/guest.ts';
import type { SshKey } from '../guest/keys.ts';
import { LinkRelay } from '../link/relay.ts';
import { QmpPlugger, epLinkArgs, linkNames, rcLinkArgs } from '../link/hotplug.ts';
import { GUEST_NET, guestNetArgs } from '../qemu/command.ts';
import { checkedSocketPath } from '../util/rundir.ts';
import type { QemuBuild } from '../qemu/build.ts';
import type { KernelArtifact } from '../kernel/build.ts';
import type { GuestImage } from '../image/build.ts';
import { makePrivate, makePrivateDir } from '../util/rundir.ts';
import { scaleMs } from '../util/timeouts.ts';

export interface PairSide {
  kernel: KernelArtifact;
  image: GuestImage;
  memoryMiB?: number;
}

export interface PairOptions {
  /** Kept artifacts of this pair (console logs, wire trace, QEMU command lines). */
  dir: string;
  /** tmpfs scratch for RAM files and sockets. */
  shm: string;
  key: SshKey;
  ep: PairSide;
  host: PairSide;
  qemu: QemuBuild;
  timeoutScale: number;
  log: (line: string) => void;
  extraCmdline?: { ep?: string[]; host?: string[] };
  /** Module parameters for the EPC driver (e.g. free_bars=0x3f). */
  epcParams?: string;
}

/**
 * Two guests joined by one link: the RC ("host") with a PCIe root port waiting for the function,
 * and the EP with our EPC device. The relay runs here, in the harness.
 */
export class LinkedPair {
  readonly relay: LinkRelay;
  /** The guests' own network sockets (one bound by each QEMU). */
  private readonly guestNetSockets: string[];
  readonly ep: Guest;
  readonly host: Guest;
  /** The EPC's name under /sys/kernel/config/pci_ep/controllers, once the driver is loaded. */
  epcName = '';

  constructor(private readonly options: PairOptions) {
    const linkId = 0;
    this.relay = new LinkRelay(linkId, options.shm, join(options.dir, 'wire.ndjson'));
    // A failed hot-plug shows up later as "link never came up": say the real reason as it happens.
    this.relay.on('error-event', (error: Error) => options.log(`link${linkId} hot-plug failed: ${error.message}`));
    const binary = (side: PairSide) => (side.kernel.arch === 'x86_64' ? options.qemu.x86_64 : options.qemu.aarch64);
    // The guests' own network (command.ts guestNetArgs): each QEMU binds one socket, sends to the other.
    const gnet = { ep: checkedSocketPath(join(options.shm, 'gnet-ep.sock')), host: checkedSocketPath(join(options.shm, 'gnet-host.sock')) };
    this.guestNetSockets = [gnet.ep, gnet.host];
    const common = { shmDir: options.shm, key: options.key, sharedRam: true, qemuDataDir: options.qemu.dataDir, timeoutScale: options.timeoutScale };
    this.host = new Guest({
      ...common,
      name: 'host',
      arch: options.host.kernel.arch,
      kernelImage: options.host.kernel.image,
      initramfs: options.host.image.initramfs,
      runDir: join(options.dir, 'host'),
      memoryMiB: options.host.memoryMiB ?? 512,
      qemuBinary: binary(options.host),
      extraArgs: [...rcLinkArgs(linkId, this.relay.socketPath.rc), ...guestNetArgs(gnet.host, gnet.ep, GUEST_NET.host)],
      extraCmdline: options.extraCmdline?.host,
    });
    // The host's RAM must stay below q35's 2 GiB split: the link maps it by physical address.
    if ((options.host.memoryMiB ?? 512) > 2048) {
      throw new HarnessError('host memory must be at most 2048 MiB (the link maps RC RAM by physical address)', {
        code: 'BAD_TOPOLOGY',
        kind: 'input',
        phase: 'link',
      });
    }
    this.ep = new Guest({
      ...common,
      name: 'ep',
      arch: options.ep.kernel.arch,
      kernelImage: options.ep.kernel.image,
      initramfs: options.ep.image.initramfs,
      runDir: join(options.dir, 'ep'),
      memoryMiB: options.ep.memoryMiB ?? 512,
      qemuBinary: binary(options.ep),
      extraArgs: [...epLinkArgs(linkId, this.relay.socketPath.ep, this.host.ramFile), ...guestNetArgs(gnet.ep, gnet.host, GUEST_NET.ep)],
      extraCmdline: options.extraCmdline?.ep,
    });
  }

  /** Relay first, then the RC (it creates the RAM file the EP maps), then the EP; both boot at once. */
  async start(): Promise<void> {
    const { log } = this.options;
    await makePrivateDir(this.options.dir);
    await makePrivateDir(this.options.shm);
    await this.relay.listen();
    await this.host.start();
    await this.ep.start();
    // QEMU binds the guest-network sockets through the umask (by now: QMP answers after netdevs exist).
    for (const socket of this.guestNetSockets) await makePrivate(socket);
    this.relay.plugger = new QmpPlugger(this.host.qmp!, this.relay.linkId, this.ep.ramFile, scaleMs(30_000, this.options.timeoutScale));
    const device = linkNames(this.relay.linkId).device;
    this.host.qmp!.on('event', (event) => {
      if (event.event === 'DEVICE_DELETED' && event.data?.device === device) this.relay.noteUnplugged('DEVICE_DELETED from the RC');
    });
    const [host, ep] = await Promise.all([this.host.waitReady(), this.ep.waitReady()]);
    log(`host up in ${(host.sshMs / 1000).toFixed(1)} s, ep up in ${(ep.sshMs / 1000).toFixed(1)} s`);
    await this.loadEpcDriver();
  }

  /** Loads our EPC driver in the EP and finds the controller it registered. */
  async loadEpcDriver(): Promise<void> {
    await this.ep.exec(`modprobe vepc ${this.options.epcParams ?? ''}`.trim(), { check: true, timeoutMs: 30_000 });
    const listing = await this.ep.exec('ls /sys/kernel/config/pci_ep/controllers/', { check: true });
    const names = listing.stdout.split(/\s+/).filter(Boolean);
    if (names.length !== 1) {
      throw new HarnessError(`expected one endpoint controller in the EP, found ${names.length}`, {
        code: 'EPC_MISSING',
        kind: 'infra',
        phase: 'link',
        guest: 'ep',
        excerpt: `${listing.stdout}\n${this.ep.console.tail(15)}`,
      });
    }
    this.epcName = names[0]!;
  }

  async stop(): Promise<void> {
    await Promise.all([this.ep.stop(), this.host.stop()]);
    await this.relay.close();
  }
}
