/**
 * A live pair: `ntbh up <scenario> [--cell ID]` boots one cell's pair as `ntbh run` does (same
 * builders, same boot, same setup step: the function configured, the drivers bound, the link up) and
 * keeps it up until Ctrl-C. The run directory has `ntbh run`'s layout (<run>/<cell>/{ep,host}/,
 * wire.ndjson, ssh/, events.ndjson) plus live.json and control.sock, so `ntbh ssh`, `ntbh wire` and
 * `ntbh step` find their way in (harness/run/control.ts).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { createEmitter } from '../events.ts';
import { Guest } from '../guest/guest.ts';
import { makeRunKey } from '../guest/keys.ts';
import { ndjsonReporter } from '../report/ndjson.ts';
import { loadScenario } from '../scenario/load.ts';
import { expandMatrix } from '../scenario/matrix.ts';
import { Rig } from '../scenario/rig.ts';
import { exitCodeFor } from '../results/status.ts';
import { runStep } from '../scenario/step-runner.ts';
import { SETUP, stepImpl } from '../scenario/steps/index.ts';
import type { CheckResult, Side, StepResult } from '../results/model.ts';
import { ensureSetup } from '../setup/setup.ts';
import { makeRunDirs } from '../util/rundir.ts';
import { onTeardown } from '../util/teardown.ts';
import { adHocScenario } from './adhoc.ts';
import { ArtifactStore } from './artifacts.ts';
import { bootCell } from './boot-cell.ts';
import { CONTROL_SOCKET, serveControl } from './control.ts';

export const LIVE_FILE = 'live.json';

export interface LiveInfo {
  pid: number;
  scenario: string;
  cell: string;
  control: string;
  guests: Record<Side, { sshPort: number; release?: string }>;
  steps: string[];
}

export interface UpOptions {
  cell?: string;
  ep?: string;
  host?: string;
  results?: string;
  timeoutScale: number;
  log: (line: string) => void;
  write?: (text: string) => void;
}

/** One check as a line: status, id, value and what was expected. */
export function formatCheck(step: string, check: CheckResult): string {
  const value = JSON.stringify(check.value);
  const expected = check.expected !== undefined ? ` expected ${JSON.stringify(check.expected)}` : '';
  const known = check.known !== undefined ? ` known ${JSON.stringify(check.known)}` : '';
  return `  ${check.status.padEnd(5)}  ${step}.${check.id} = ${value}${expected}${known}${check.message ? ` — ${check.message}` : ''}`;
}

export function formatStep(result: StepResult): string {
  const lines = [`${result.id} (${result.type}): ${result.status} in ${(result.durationMs / 1000).toFixed(1)} s${result.message ? ` — ${result.message}` : ''}`];
  for (const check of result.checks) lines.push(formatCheck(result.id, check));
  for (const splat of result.splats) lines.push(`  splat on ${splat.guest}: ${splat.title}${splat.expected ? ' (expected)' : ''}`);
  return lines.join('\n');
}

/** The exit code a step's checks give (0 pass incl. XFAIL, 1 fail, 2 error). */
export function stepExitCode(result: StepResult): number {
  return exitCodeFor(result.checks.length ? result.checks.map((c) => c.status) : [result.status]);
}

/** `ntbh up`: resolves only when a guest goes away (Ctrl-C ends the process through the teardown). */
export async function upCommand(file: string, options: UpOptions): Promise<number> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  let scenario = await loadScenario(file);
  if (options.ep !== undefined || options.host !== undefined) {
    if (options.cell) throw new HarnessError('--cell cannot be combined with --ep/--host (they make the single cell)', { code: 'BAD_OPTIONS', kind: 'input', phase: 'scenario' });
    scenario = adHocScenario(scenario, { ep: options.ep, host: options.host });
  }
  const cells = expandMatrix(scenario);
  const cell = options.cell ? cells.find((c) => c.id === options.cell) : cells[0];
  if (!cell) {
    throw new HarnessError(`no cell ${options.cell} in ${scenario.name}`, { code: 'NO_SUCH_CELL', kind: 'input', phase: 'scenario', excerpt: `cells: ${cells.map((c) => c.id).join(' ')}` });
  }
  if (!options.cell && cells.length > 1) options.log(`${scenario.name} has ${cells.length} cells; bringing up the first, ${cell.id} (choose with --cell)`);
  await ensureSetup({ log: options.log });
  const run = await makeRunDirs(`up-${scenario.name.replace(/[^\w.-]+/g, '-')}`, options.results);
  const emitter = createEmitter();
  const ndjson = ndjsonReporter(run.dir);
  const offNdjson = emitter.on(ndjson.listener);
  onTeardown('events.ndjson', async () => {
    offNdjson();
    await ndjson.close();
  });
  const key = await makeRunKey(join(run.dir, 'ssh'));
  const store = new ArtifactStore(emitter, options.log);
  options.log(`up ${run.id}: cell ${cell.id}; artifacts in ${run.dir}`);

  const booted = await bootCell(cell, { scenario, run, key, store, emitter, timeoutScale: options.timeoutScale, log: options.log });
  onTeardown(`pair ${cell.id}`, () => booted.dispose());
  const rig = new Rig(booted.ctx, scenario, cell.id);
  const setup = await runStep(rig, { id: 'setup', type: 'setup' }, SETUP.budget, (out) => SETUP.run(rig, out));
  write(`${formatStep(setup.result)}\n`);
  const bound = setup.result.checks.find((c) => c.check === 'driver_bound')?.value === true;
  if (!bound) options.log('the function is not bound on the host: the pair stays up for a look, steps will likely fail');
  if (bound && scenario.function.type === 'pci-epf-vntb') {
    // The NTB link as the link-up step brings it: ntb_tool on both sides, link enabled, peer seen.
    await rig.linkedTools().then(
      () => options.log('NTB link up on both sides (ntb_tool loaded)'),
      (error: unknown) => options.log(`the NTB link did not come up: ${(error as Error)?.message ?? error}`),
    );
  }

  const guests = { ep: booted.ctx.ep, host: booted.ctx.host };
  if (!(guests.ep instanceof Guest) || !(guests.host instanceof Guest)) throw new HarnessError('the cell runner did not hand out QEMU guests', { code: 'INTERNAL', kind: 'infra', phase: 'boot' });
  const [ep, host] = [guests.ep, guests.host];
  const steps = scenario.steps.map((s) => s.id);
  const control = await serveControl(join(run.dir, CONTROL_SOCKET), {
    ping: () => ({ cell: cell.id, steps }),
    step: async (id: string) => {
      const step = scenario.steps.find((s) => s.id === id);
      if (!step) throw new HarnessError(`no step '${id}' in ${scenario.name}`, { code: 'NO_SUCH_STEP', kind: 'input', phase: 'step', excerpt: `steps: ${steps.join(' ')}` });
      const impl = stepImpl(step);
      const outcome = await runStep(rig, step, impl.budgetSeconds, (out) => impl.run(rig, out));
      write(`${formatStep(outcome.result)}\n`);
      return outcome.result;
    },
  });
  onTeardown('control socket', () => control.close());
  const releases = await Promise.all([ep, host].map((g) => g.exec('uname -r', { timeoutMs: rig.ms(15_000) }).then((r) => r.stdout.trim(), () => undefined)));
  const info: LiveInfo = {
    pid: process.pid,
    scenario: scenario.name,
    cell: cell.id,
    control: CONTROL_SOCKET,
    guests: { ep: { sshPort: ep.sshPort, release: releases[0] }, host: { sshPort: host.sshPort, release: releases[1] } },
    steps,
  };
  await writeFile(join(run.dir, LIVE_FILE), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  onTeardown('live.json', () => rm(join(run.dir, LIVE_FILE), { force: true }));

  write(
    [
      `pair up: cell ${cell.id} (ep ${info.guests.ep.release ?? '?'}, host ${info.guests.host.release ?? '?'}); run directory ${run.dir}`,
      `  npx ntbh ssh ${run.dir} ep|host [cmd...]    a shell or one command in a guest`,
      ...(['ep', 'host'] as const).map((side) => `  ${sshArgv(run.dir, info.guests[side].sshPort).join(' ')}    (${side})`),
      `  npx ntbh wire ${run.dir}                  the link's messages and per-vector MSI counters, live`,
      `  npx ntbh step ${run.dir} <step>           one of: ${steps.join(' ')}`,
      'Ctrl-C stops both guests and the relay.',
      '',
    ].join('\n'),
  );
  // Registered last, so it runs first on Ctrl-C: guests stopped by the teardown are no news.
  let stopping = false;
  onTeardown('up: stopping', () => {
    stopping = true;
  });
  const gone = await Promise.race([ep.waitExit().then(() => 'ep'), host.waitExit().then(() => 'host')]);
  if (!stopping) options.log(`the ${gone} guest exited; stopping the pair`);
  return 2;
}

/** The ssh client's argv for a guest of a run (key from <run>/ssh/). */
export function sshArgv(runDir: string, port: number): string[] {
  return ['ssh', '-i', join(runDir, 'ssh', 'id_ed25519'), '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1'];
}

/** The forwarded SSH port in a recorded QEMU command line. */
export function sshPortOf(cmdline: string): number | undefined {
  const match = /hostfwd=tcp:127\.0\.0\.1:(\d+)-:22/.exec(cmdline);
  return match ? Number(match[1]) : undefined;
}

/** The cell directory of a run a guest command is meant for: --cell, live.json's, the only one, or the only one running. */
export async function cellDirOf(runDir: string, cell?: string): Promise<string> {
  if (cell) {
    if (!existsSync(join(runDir, cell))) throw new HarnessError(`${runDir} has no cell ${cell}`, { code: 'NO_SUCH_CELL', kind: 'input', phase: 'ssh' });
    return join(runDir, cell);
  }
  const live = await readFile(join(runDir, LIVE_FILE), 'utf8').then((t) => JSON.parse(t) as LiveInfo, () => undefined);
  if (live) return join(runDir, live.cell);
  const entries = await readdir(runDir, { withFileTypes: true }).catch(() => []);
  const cells = entries.filter((e) => e.isDirectory() && (existsSync(join(runDir, e.name, 'wire.ndjson')) || existsSync(join(runDir, e.name, 'ep')))).map((e) => e.name);
  if (cells.length === 1) return join(runDir, cells[0]!);
  // While `ntbh run` goes through a matrix: the cell whose QEMU still runs (qemu.stderr is written when it exits).
  const running = cells.filter((c) => existsSync(join(runDir, c, 'ep', 'qemu.cmdline')) && !existsSync(join(runDir, c, 'ep', 'qemu.stderr')));
  if (running.length === 1) return join(runDir, running[0]!);
  throw new HarnessError(cells.length === 0 ? `${runDir} has no cell directories (is it a run directory?)` : `${runDir} has ${cells.length} cells: choose one with --cell`, {
    code: 'NO_SUCH_CELL',
    kind: 'input',
    phase: 'ssh',
    ...(cells.length ? { excerpt: `cells: ${cells.join(' ')}` } : {}),
  });
}

/** argv of the ssh client into `side` of the run's (live) cell. */
export async function guestSsh(runDir: string, side: Side, cell?: string): Promise<string[]> {
  const dir = await cellDirOf(runDir, cell);
  const cmdline = await readFile(join(dir, side, 'qemu.cmdline'), 'utf8').catch(() => '');
  const port = sshPortOf(cmdline);
  if (!port) throw new HarnessError(`no ${side} guest recorded in ${dir} (no ${side}/qemu.cmdline with an SSH port)`, { code: 'NO_GUEST', kind: 'input', phase: 'ssh' });
  return sshArgv(runDir, port);
}
