import { join } from 'node:path';
import { consoleBridge } from '../detect/console-bridge.ts';
import { resolveKernel } from '../scenario/kernels.ts';
import type { Cell } from '../scenario/matrix.ts';
import type { BootedCell } from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import { LinkedPair } from '../topology/pair.ts';
import type { SshKey } from '../guest/keys.ts';
import type { Emitter } from '../events.ts';
import type { RunDirs } from '../util/rundir.ts';
import type { CellKernels } from '../results/model.ts';
import type { ArtifactStore, BootArtifacts } from './artifacts.ts';
import { cellKernel } from './cell-kernels.ts';
import { cellTimeoutScale, scaleMs } from '../util/timeouts.ts';
import { bootBridge } from './boot-bridge.ts';

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
  const specs = { ep: resolveKernel(scenario, cell.ep), host: resolveKernel(scenario, cell.host) };
  // QEMU builds alongside the kernels; its failure is raised below, after the kernels are reported.
  const linkQemu = store.linkQemu();
  linkQemu.catch(() => undefined);
  const builds = await Promise.allSettled([store.guest(specs.ep, topology.ep.arch, topology.ep.packages), store.guest(specs.host, topology.host.arch, topology.host.packages)]);
  // Every result names its kernels, also when one side's build failed and the cell never booted.
  const kernels: CellKernels = {};
  if (builds[0].status === 'fulfilled') kernels.ep = cellKernel(specs.ep, builds[0].value.kernel);
  if (builds[1].status === 'fulfilled') kernels.host = cellKernel(specs.host, builds[1].value.kernel);
  // A bridge's host2 boots the host's kernel: the matrix's host axis names both hosts' kernel.
  if (topology.layout === 'bridge' && kernels.host) kernels.host2 = kernels.host;
  emitter.emit({ kind: 'kernels', cell: cell.id, kernels });
  const failed = builds.find((b) => b.status === 'rejected');
  if (failed) throw failed.reason;
  const [ep, host] = builds.map((b) => (b as PromiseFulfilledResult<BootArtifacts>).value) as [BootArtifacts, BootArtifacts];
  const qemu = await linkQemu;
  if (topology.layout === 'bridge') {
    return bootBridge(cell, options, { ep, host, qemu });
  }
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
  // Per guest: QEMU start to the init's ready line, and to the first SSH command (results.json phases).
  for (const guest of [pair.ep, pair.host]) {
    if (!guest.bootTimes) continue;
    emitter.emit({ kind: 'phase', cell: cell.id, guest: guest.name, phase: 'boot-ready', status: 'end', durationMs: guest.bootTimes.readyMs });
    emitter.emit({ kind: 'phase', cell: cell.id, guest: guest.name, phase: 'boot-ssh', status: 'end', durationMs: guest.bootTimes.sshMs });
  }
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
      kernels: { ep: ep.kernel, host: host.kernel },
      pause: async (side, paused) => {
        const guest = side === 'ep' ? pair.ep : pair.host;
        await guest.qmp?.execute(paused ? 'stop' : 'cont');
      },
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
      const stopping = Date.now();
      await pair.stop();
      emitter.emit({ kind: 'phase', cell: cell.id, phase: 'teardown', status: 'end', durationMs: Date.now() - stopping });
    },
  };
}
