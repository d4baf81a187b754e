/** The CLI of reproducer bundles and live pairs: reproduce, up, ssh, wire, step. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { execa } from 'execa';
import { HarnessError } from '../errors.ts';
import type { StepResult } from '../results/model.ts';
import { progress } from '../util/log.ts';
import { harnessTimeoutScale } from '../util/timeouts.ts';
import { CONTROL_SOCKET, sendRequest } from './control.ts';
import { cellDirOf, formatStep, guestSsh, stepExitCode, upCommand } from './live.ts';
import { reproduce } from './reproduce.ts';
import { followWire } from './wire-follow.ts';

export function registerLiveCommands(program: Command): void {
  program
    .command('reproduce')
    .description("rerun the cell of a reproducer bundle (<run>/<cell>/bundle, or the cell's directory) and compare its statuses")
    .argument('<bundle>', 'the bundle directory (or the cell directory holding bundle/)')
    .option('--results <dir>', 'results directory of the rerun (default results/<run id>)')
    .action(async (dir: string, opts: { results?: string }) => {
      const outcome = await reproduce(dir, { results: opts.results, timeoutScale: harnessTimeoutScale(), log: progress });
      process.exitCode = outcome.exitCode;
    });

  program
    .command('up')
    .description("boot one cell's pair (function configured, drivers bound, link up) and keep it up until Ctrl-C")
    .argument('<scenario>', 'scenario YAML file')
    .option('--cell <id>', 'the cell (default: the first)')
    .option('--ep <kernel>', 'EP kernel: a variant name or a source (makes the single cell, as for ntbh run)')
    .option('--host <kernel>', 'host kernel: a variant name or a source')
    .option('--results <dir>', 'run directory (default results/<run id>)')
    .action(async (file: string, opts: { cell?: string; ep?: string; host?: string; results?: string }) => {
      process.exitCode = await upCommand(file, { ...opts, timeoutScale: harnessTimeoutScale(), log: progress });
    });

  program
    .command('ssh')
    .description('get into a guest: `ntbh ssh <run> ep|host [cmd...]` for a pair (ntbh up, a running ntbh run), `ntbh ssh <dir> [cmd...]` for ntbh boot')
    .passThroughOptions()
    .option('--cell <id>', 'the cell, when the run has several')
    .argument('<run-dir>', 'the run directory')
    .argument('[command...]', 'ep or host (pairs), then the command to run instead of a shell')
    .action(async (runDir: string, command: string[], opts: { cell?: string }) => {
      // A single guest of `ntbh boot` left its ssh command behind.
      const saved = (await readFile(join(runDir, 'ssh-command'), 'utf8').catch(() => '')).trim();
      let argv: string[];
      if (saved && command[0] !== 'ep' && command[0] !== 'host') {
        argv = [...saved.split(' '), ...command];
      } else {
        const side = command[0];
        if (side !== 'ep' && side !== 'host') {
          throw new HarnessError(`say which guest: ntbh ssh ${runDir} ep|host [cmd...]`, { code: 'NO_GUEST', kind: 'input', phase: 'ssh' });
        }
        argv = [...(await guestSsh(runDir, side, opts.cell)), ...command.slice(1)];
      }
      const result = await execa(argv[0]!, argv.slice(1), { stdio: 'inherit', reject: false });
      process.exitCode = result.exitCode ?? 1;
    });

  program
    .command('wire')
    .description("follow a cell's link trace (wire.ndjson): every message and the per-vector MSI counters, live")
    .option('--cell <id>', 'the cell, when the run has several')
    .option('--once', 'print what is recorded and exit')
    .option('--quiet', 'print only the counters')
    .argument('<run-dir>', 'the run directory')
    .action(async (runDir: string, opts: { cell?: string; once?: boolean; quiet?: boolean }) => {
      const path = join(await cellDirOf(runDir, opts.cell), 'wire.ndjson');
      if (!existsSync(path)) throw new HarnessError(`no link trace at ${path} (has the pair started?)`, { code: 'NO_WIRE_TRACE', kind: 'input', phase: 'link' });
      const abort = new AbortController();
      // Ctrl-C ends the follow quietly (the teardown handler has nothing of ours to stop).
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      await followWire(path, { once: opts.once, quiet: opts.quiet, signal: abort.signal, tty: process.stdout.isTTY === true, write: (text) => void process.stdout.write(text) });
    });

  program
    .command('step')
    .description('run one of the scenario\'s steps on the live pair of `ntbh up` and print its checks')
    .argument('<run-dir>', 'the run directory of `ntbh up`')
    .argument('[step]', 'the step id (without it: list the live cell\'s steps)')
    .option('--json', 'print the step result as JSON')
    .action(async (runDir: string, stepId: string | undefined, opts: { json?: boolean }) => {
      if (stepId === undefined) {
        const ping = await sendRequest(join(runDir, CONTROL_SOCKET), { op: 'ping' }, 30_000);
        if (!ping.ok) throw new HarnessError(ping.error.message, { code: ping.error.code, kind: 'infra', phase: 'step' });
        const live = ping.result as { cell: string; steps: string[] };
        process.stdout.write(`${live.cell}: ${live.steps.join(' ')}\n`);
        return;
      }
      // The up process scales the step's own budget; this only guards against a hung pair.
      const response = await sendRequest(join(runDir, CONTROL_SOCKET), { op: 'step', step: stepId }, 3 * 3600_000);
      if (!response.ok) throw new HarnessError(response.error.message, { code: response.error.code, kind: 'input', phase: 'step', excerpt: response.error.excerpt });
      const result = response.result as StepResult;
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatStep(result)}\n`);
      process.exitCode = stepExitCode(result);
    });
}
