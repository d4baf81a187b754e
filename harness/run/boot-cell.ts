import { join } from 'node:path';
import { consoleBridge } from '../scenario/console-bridge.ts';
import { resolveKernel } from '../scenario/kernels.ts';
import type { Cell } from '../scenario/matrix.ts';
import type { BootedCell } from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import { LinkedPair } from '../topology/pair.ts';
import type { SshKey } from '../guest/keys.ts';
import type { Emitter } from '../events.ts';
import type { RunDirs } from '../util/rundir.ts';
import type { ArtifactStore } from './artifacts.ts';
import { cellTimeoutScale, scaleMs } from '../util/timeouts.ts';

export interface CellBootOptions {
  scenario: Scenario;
  run: RunDirs;
  key: SshKey;
  store: ArtifactStore;
  emitter: Emitter;
  timeoutScale: number;
  log: (line: string) => void;
}

/** Builds what a cell needs, boots its EP/host pair through the link, and hands the executor a context. */
export async function bootCell(cell: Cell, options: CellBootOptions): Promise<BootedCell> {
  const { scenario, store, emitter } = options;
  const topology = scenario.topology;
  const [qemu, ep, host] = await Promise.all([
    store.linkQemu(),
    store.guest(resolveKernel(scenario, cell.ep), topology.ep.arch),
    store.guest(resolveKernel(scenario, cell.host), topology.host.arch),
  ]);
  const pair = new LinkedPair({
    dir: join(options.run.dir, cell.id),
    shm: join(options.run.shm, cell.id),
    key: options.key,
    ep: { ...ep, memoryMiB: topology.ep.memory },
    host: { ...host, memoryMiB: topology.host.memory },
    qemu,
    timeoutScale: cellTimeoutScale(options.timeoutScale, topology.timeout_scale),
    epcParams: topology.epc_params,
    log: (line) => options.log(`${cell.id}: ${line}`),
  });
  const started = Date.now();
  emitter.emit({ kind: 'phase', cell: cell.id, phase: 'boot', status: 'start' });
  try {
    await pair.start();
  } catch (error) {
    emitter.emit({ kind: 'phase', cell: cell.id, phase: 'boot', status: 'error', durationMs: Date.now() - started, message: (error as Error).message });
    await pair.stop();
    throw error;
  }
  emitter.emit({ kind: 'phase', cell: cell.id, phase: 'boot', status: 'end', durationMs: Date.now() - started, message: `host ${pair.host.bootTimes?.sshMs} ms, ep ${pair.ep.bootTimes?.sshMs} ms to SSH` });
  const consoles = consoleBridge([pair.ep.console, pair.host.console], scaleMs(5000, options.timeoutScale));
  // The first mark (the setup step's) starts at the beginning of both consoles, so a splat during
  // boot or while the link came up is judged with setup instead of going unreported.
  let firstMark = true;
  const consoleMark = () => {
    const marks = consoles.consoleMark() as { line: number; splats: number }[];
    if (!firstMark) return marks;
    firstMark = false;
    return marks.map(() => ({ line: 0, splats: 0 }));
  };
  return {
    ctx: {
      ep: pair.ep,
      host: pair.host,
      link: pair.relay,
      emit: (event) => emitter.emit(event),
      consoleMark,
      splatsSince: consoles.splatsSince,
      splatGaps: consoles.splatGaps,
      timeoutScale: options.timeoutScale,
      aborted: () => {
        for (const guest of [pair.ep, pair.host]) {
          if (!guest.running) return `${guest.name} is gone (QEMU exited)`;
          const fatal = guest.console.splats.find((splat) => splat.fatal);
          if (fatal) return `${guest.name}: ${fatal.title}`;
        }
        return undefined;
      },
    },
    dispose: async () => {
      emitter.emit({ kind: 'phase', cell: cell.id, phase: 'teardown', status: 'start' });
      await pair.stop();
      emitter.emit({ kind: 'phase', cell: cell.id, phase: 'teardown', status: 'end' });
    },
  };
}
