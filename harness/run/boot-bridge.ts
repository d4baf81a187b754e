/**
 * Boots a bridge cell (topology: bridge): the EP guest with two controllers between `host` and `host2`,
 * through BridgeTrio. The executor's NTB sides are the two hosts: `host`, and `host2` as the side the
 * steps call "ep"; the EP guest is ctx.bridge.ep, marked, watched for splats and stopped like the others.
 */
import { join } from 'node:path';
import { consoleBridge } from '../detect/console-bridge.ts';
import type { Cell } from '../scenario/matrix.ts';
import type { BootedCell } from '../scenario/run.ts';
import { BridgeTrio } from '../topology/bridge.ts';
import type { QemuBuild } from '../qemu/build.ts';
import type { BootArtifacts } from './artifacts.ts';
import type { CellBootOptions } from './boot-cell.ts';
import { cellTimeoutScale, scaleMs } from '../util/timeouts.ts';

export async function bootBridge(cell: Cell, options: CellBootOptions, built: { ep: BootArtifacts; host: BootArtifacts; qemu: QemuBuild }): Promise<BootedCell> {
  const { scenario, emitter } = options;
  const topology = scenario.topology;
  const trio = new BridgeTrio({
    dir: join(options.run.dir, cell.id),
    shm: join(options.run.shm, cell.id),
    key: options.key,
    ep: { ...built.ep, memoryMiB: topology.ep.memory },
    host: { ...built.host, memoryMiB: topology.host.memory },
    host2: { ...built.host, memoryMiB: topology.host.memory },
    qemu: built.qemu,
    timeoutScale: cellTimeoutScale(options.timeoutScale, topology.timeout_scale),
    epcParams: topology.epc_params,
    log: (line) => options.log(`${cell.id}: ${line}`),
  });
  const started = Date.now();
  emitter.emit({ kind: 'phase', cell: cell.id, phase: 'boot', status: 'start' });
  try {
    await trio.start();
  } catch (error) {
    emitter.emit({ kind: 'phase', cell: cell.id, phase: 'boot', status: 'error', durationMs: Date.now() - started, message: (error as Error).message });
    await trio.stop();
    throw error;
  }
  const guests = [trio.ep, trio.host, trio.host2];
  emitter.emit({ kind: 'phase', cell: cell.id, phase: 'boot', status: 'end', durationMs: Date.now() - started, message: guests.map((g) => `${g.name} ${g.bootTimes?.sshMs} ms`).join(', ') + ' to SSH' });
  for (const guest of guests) {
    if (!guest.bootTimes) continue;
    emitter.emit({ kind: 'phase', cell: cell.id, guest: guest.name, phase: 'boot-ready', status: 'end', durationMs: guest.bootTimes.readyMs });
    emitter.emit({ kind: 'phase', cell: cell.id, guest: guest.name, phase: 'boot-ssh', status: 'end', durationMs: guest.bootTimes.sshMs });
  }
  // Console order = rig.guests(): the bridge EP, host, host2.
  const consoles = consoleBridge(guests.map((g) => g.console), scaleMs(5000, options.timeoutScale));
  let firstMark = true;
  const consoleMark = () => {
    const marks = consoles.consoleMark() as { line: number; splats: number }[];
    if (!firstMark) return marks;
    // Setup's mark starts at the beginning of every console: boot-time splats are judged with setup.
    firstMark = false;
    return marks.map(() => ({ line: 0, splats: 0 }));
  };
  const [toHost, toHost2] = trio.relays;
  return {
    ctx: {
      ep: trio.host2,
      host: trio.host,
      link: toHost,
      bridge: { ep: trio.ep, epcNames: trio.epcNames, links: { host: toHost, ep: toHost2 } },
      emit: (event) => emitter.emit(event),
      consoleMark,
      splatsSince: consoles.splatsSince,
      splatGaps: consoles.splatGaps,
      timeoutScale: options.timeoutScale,
      // Capabilities are read per NTB side: both sides are hosts booting the host's kernel.
      kernels: { ep: built.host.kernel, host: built.host.kernel },
      pause: async (side, paused) => {
        const guest = side === 'ep' ? trio.host2 : trio.host;
        await guest.qmp?.execute(paused ? 'stop' : 'cont');
      },
      aborted: () => {
        for (const guest of guests) {
          if (!guest.running) return `${guest.name} is gone (QEMU exited)`;
          const fatal = guest.console.splats.find((splat) => splat.fatal);
          if (fatal) return `${guest.name}: ${fatal.title}`;
        }
        return undefined;
      },
    },
    dispose: async () => {
      emitter.emit({ kind: 'phase', cell: cell.id, phase: 'teardown', status: 'start' });
      const stopping = Date.now();
      await trio.stop();
      emitter.emit({ kind: 'phase', cell: cell.id, phase: 'teardown', status: 'end', durationMs: Date.now() - stopping });
    },
  };
}
