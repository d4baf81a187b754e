import { Command, Option } from 'commander';
import { errorCodesMarkdown } from './error-codes.ts';
import { HarnessError, isHarnessError } from './errors.ts';
import { ensureSetup } from './setup/setup.ts';
import { buildKernel } from './kernel/build.ts';
import { parseKernelSource } from './kernel/source.ts';
import { builtinVariants } from './kernel/variants.ts';
import type { Arch, KernelSpec } from './kernel/spec.ts';
import { installSignalHandlers, teardownAll } from './util/teardown.ts';
import { progress } from './util/log.ts';
import { makeRunDirs } from './util/rundir.ts';
import { harnessTimeoutScale } from './util/timeouts.ts';
import { bootSingle } from './guest/single.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCommand } from './run/command.ts';
import { registerLiveCommands } from './run/live-cli.ts';
import { bisectCommand } from './bisect/command.ts';
import { registerNightlyCommands } from './compare/cli.ts';
import { loadScenario } from './scenario/load.ts';
import { formatMatrix } from './scenario/matrix.ts';
import { scenarioJsonSchema } from './scenario/schema.ts';
import { stepsTable } from './scenario/steps-doc.ts';

const program = new Command('ntbh')
  .description('QEMU-backed integration harness for the Linux EPF NTB pair (pci-epf-vntb <-> ntb_hw_epf)')
  .showHelpAfterError()
  // Options after a subcommand's positional arguments belong to the guest command (ntbh ssh DIR uname -a).
  .enablePositionalOptions();

program
  .command('setup')
  .description('install the Debian packages the harness needs (idempotent; needs root)')
  .option('--force', 're-check everything')
  .action(async (opts: { force?: boolean }) => {
    await ensureSetup({ log: progress, force: opts.force });
    progress('setup complete');
  });

const kernel = program.command('kernel').description('kernel builds');
kernel
  .command('build')
  .description('build (or fetch from the cache) a kernel for one arch')
  .addOption(new Option('--arch <arch>', 'target architecture').choices(['x86_64', 'arm64']).default('x86_64'))
  .option('--variant <name>', 'a built-in variant: old, stock, new, stock-6.1')
  .option('--source <source>', 'debian:<ver> | git:<url>@<ref> | path:<tree>')
  .option('--name <name>', 'variant name for a custom source', 'custom')
  .option('--patches <set...>', 'patch sets (kernel-patches/<name> or a directory)', [])
  .option('--fragment <file...>', 'extra config fragments', [])
  .option('-j, --jobs <n>', 'parallel make jobs', (v) => Number(v))
  .action(async (opts: { arch: Arch; variant?: string; source?: string; name: string; patches: string[]; fragment: string[]; jobs?: number }) => {
    await ensureSetup({ log: progress });
    const spec = kernelSpecFromOptions(opts);
    const { buildWithProgress } = await import('./report/progress.ts');
    const artifact = await buildWithProgress(`${spec.name}/${opts.arch}`, (onProgress) => buildKernel(spec, opts.arch, { log: progress, jobs: opts.jobs, progress: onProgress }));
    process.stdout.write(
      `${JSON.stringify({ dir: artifact.dir, image: artifact.image, release: artifact.release, cached: artifact.cached, durationsMs: artifact.metadata.durationsMs }, null, 2)}\n`,
    );
  });

kernel
  .command('sources')
  .description('list the kernel series the configured Debian suites offer (for --source debian:X.Y)')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const { listAvailable } = await import('./kernel/debian.ts');
    const series = await listAvailable(progress);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(series, null, 2)}\n`);
      return;
    }
    const cell = (c?: { version: string; suites: string[] }) => (c ? `${c.version} (${c.suites.join(', ')})` : '-');
    const rows = [['series', 'linux-source-X.Y (Debian tree)', 'linux source package (upstream tarball)'], ...series.map((s) => [s.series, cell(s.binary), cell(s.source)])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
  });

const guestCommand = (name: string, description: string) =>
  program
    .command(name)
    .description(description)
    .addOption(new Option('--arch <arch>', 'guest architecture').choices(['x86_64', 'arm64']).default('x86_64'))
    .option('--variant <name>', 'kernel variant (old, stock, new, stock-6.1)', 'stock')
    .option('--source <source>', 'kernel source instead of a variant: debian:<ver> | git:<url>@<ref> | path:<tree>')
    .option('--name <name>', 'variant name for a custom source', 'custom')
    .option('--patches <set...>', 'extra patch sets', [])
    .option('--fragment <file...>', 'extra config fragments', [])
    .option('--results <dir>', 'where to keep the run artifacts')
    .option('--append <args>', 'extra kernel command line');

guestCommand('boot', 'boot one guest and keep it up until Ctrl-C (prints how to ssh in)')
  .option('--check', 'boot, run uname -r over SSH, then stop (no waiting)')
  .action(async (opts: GuestCliOptions & { check?: boolean }) => {
    const { guest, run } = await bootFromOptions(opts, 'boot');
    const uname = await guest.exec('uname -r', { check: true });
    progress(`uname -r: ${uname.stdout.trim()} (${uname.durationMs} ms over SSH)`);
    const sshCommand = `ssh -i ${join(run.dir, 'ssh', 'id_ed25519')} -p ${guest.sshPort} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1`;
    await writeFile(join(run.dir, 'ssh-command'), `${sshCommand}\n`);
    process.stdout.write(`${JSON.stringify({ guest: guest.name, sshPort: guest.sshPort, bootTimes: guest.bootTimes, release: uname.stdout.trim(), ssh: sshCommand, artifacts: run.dir })}\n`);
    if (opts.check) return;
    progress(`guest is up. Get in with:\n  ${sshCommand}\n  (or: npx ntbh ssh ${run.dir})  — Ctrl-C stops it`);
    const exit = await guest.waitExit();
    progress(`guest ${guest.name} exited (${exit.signal ?? `code ${exit.code}`})`);
  });

guestCommand('exec', 'boot one guest, run a command over SSH, print its output, stop')
  .passThroughOptions()
  .argument('<command...>', 'command to run in the guest')
  .action(async (command: string[], opts: GuestCliOptions) => {
    const { guest } = await bootFromOptions(opts, 'exec');
    const result = await guest.exec(command.join(' '), { timeoutMs: 300_000 });
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    process.exitCode = result.exitCode === 0 ? 0 : 1;
  });

// ssh (ntbh boot's guest and pairs), up, wire, step, reproduce: harness/run/live-cli.ts.
registerLiveCommands(program);

interface GuestCliOptions {
  arch: Arch;
  variant: string;
  source?: string;
  name: string;
  patches: string[];
  fragment: string[];
  results?: string;
  append?: string;
}

async function bootFromOptions(opts: GuestCliOptions, what: string) {
  await ensureSetup({ log: progress });
  const spec = kernelSpecFromOptions({ ...opts, variant: opts.source ? undefined : opts.variant });
  const run = await makeRunDirs(`${what}-${opts.arch}`, opts.results);
  const { guest } = await bootSingle({
    arch: opts.arch,
    spec,
    run,
    log: progress,
    timeoutScale: timeoutScale(),
    extraCmdline: opts.append ? opts.append.split(/\s+/) : [],
  });
  return { guest, run };
}

/** NTBH_TIMEOUT_SCALE (harness/util/timeouts.ts owns timeout scaling). */
export function timeoutScale(): number {
  return harnessTimeoutScale();
}

/** NTBH_PARALLEL: cells at a time when --parallel is not given (a positive integer; default 1). */
function parallelCells(): number {
  const raw = process.env.NTBH_PARALLEL;
  if (!raw) return 1;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new HarnessError(`NTBH_PARALLEL must be a positive integer, not "${raw}"`, { code: 'BAD_OPTIONS', kind: 'input', phase: 'setup' });
  return value;
}

function kernelSpecFromOptions(opts: { variant?: string; source?: string; name: string; patches: string[]; fragment: string[] }): KernelSpec {
  if (opts.variant) {
    const base = builtinVariants[opts.variant];
    if (!base) throw new HarnessError(`unknown variant "${opts.variant}"`, { code: 'BAD_VARIANT', kind: 'input', phase: 'kernel-build', excerpt: `Known: ${Object.keys(builtinVariants).join(', ')}` });
    return { ...base, patches: [...base.patches, ...opts.patches], fragments: [...base.fragments, ...opts.fragment] };
  }
  const source = parseKernelSource(opts.source ?? 'debian:6.12');
  return { name: opts.name, source, patches: opts.patches, fragments: opts.fragment };
}

program
  .command('run')
  .description('run a scenario: every matrix cell boots an EP/host pair through the link')
  .argument('<scenario>', 'scenario YAML file')
  .option('--results <dir>', 'results directory (default results/<run id>)')
  .option('--strict', 'XPASS (an expected failure that passed) fails the run')
  .option('--cell <id...>', 'run only these cells')
  .option('--ep <kernel>', 'EP kernel for a single cell: a variant name or a source (debian:7.2, git:<repo>@<ref>, path:<tree>); host defaults to stock')
  .option('--host <kernel>', 'host kernel for a single cell: a variant name or a source; EP defaults to stock')
  .option('--shard <i/n>', 'run the i-th of n stable subsets of the cells (merge them with ntbh merge)')
  .option('--known-issues <file>', 'YAML of triaged failures: a matching FAIL is reported as XFAIL with its reason')
  .option('--parallel <n>', 'cells to run at the same time (default: $NTBH_PARALLEL or 1)', (v) => Number(v))
  .action(async (file: string, opts: { results?: string; strict?: boolean; cell?: string[]; ep?: string; host?: string; shard?: string; knownIssues?: string; parallel?: number }) => {
    process.exitCode = await runCommand(file, { ...opts, parallel: opts.parallel ?? parallelCells(), timeoutScale: timeoutScale(), log: progress });
  });

// compare, merge, shards, export: harness/compare/cli.ts.
registerNightlyCommands(program);

program
  .command('bisect')
  .description("find the first commit of a kernel tree that changes a scenario's outcome (git bisect with the scenario as the oracle)")
  .requiredOption('--tree <repo>', 'the git repository to bisect (never modified: the bisect runs in a private clone)')
  .requiredOption('--good <ref>', 'a commit without the change (with --fixed: the newer, fixed end)')
  .requiredOption('--bad <ref>', 'a commit with the change (with --fixed: the older, broken end)')
  .addOption(new Option('--side <side>', 'which guest runs the bisected kernel').choices(['ep', 'host']).makeOptionMandatory())
  .requiredOption('--scenario <file>', 'scenario whose steps judge each commit (its matrix is replaced by one cell)')
  .option('--cell-peer <kernel>', "the other side's kernel: a variant name or a source", 'stock')
  .option('--check <step.check>', 'only this check decides (PASS/XFAIL/XPASS good, FAIL bad; with --fixed: PASS/XPASS fixed, FAIL/XFAIL broken)')
  .option('--fixed', 'look for the first commit that fixes the behaviour instead of the first that breaks it')
  .option('--results <dir>', 'where bisect.json and one results directory per step go')
  .action(async (opts: { tree: string; good: string; bad: string; side: 'ep' | 'host'; scenario: string; cellPeer: string; check?: string; fixed?: boolean; results?: string }) => {
    const { exitCode, dir } = await bisectCommand({ ...opts, peer: opts.cellPeer, timeoutScale: timeoutScale(), log: progress });
    progress(`bisect log and steps: ${join(dir, 'bisect.json')}`);
    process.exitCode = exitCode;
  });

program
  .command('report')
  .description("write a run's report.html again from its results.json (and events.ndjson)")
  .argument('<run-dir>', 'the results directory of a run')
  .action(async (dir: string) => {
    const { regenerateReport } = await import('./report/html.ts');
    process.stdout.write(`${await regenerateReport(dir)}\n`);
  });

program
  .command('matrix')
  .description("print a scenario's expanded cells and their kernels")
  .argument('<scenario>', 'scenario YAML file')
  .action(async (file: string) => {
    process.stdout.write(`${formatMatrix(await loadScenario(file))}\n`);
  });

program
  .command('schema')
  .description('print the scenario JSON Schema (for editor completion and validation)')
  .action(() => {
    process.stdout.write(`${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
  });

program
  .command('steps')
  .description('print the "Steps and their checks" Markdown table, generated from the step registry')
  .action(() => {
    process.stdout.write(stepsTable());
  });

program
  .command('errors')
  .description('print the error-code catalogue as Markdown (docs/error-codes.md)')
  .action(() => {
    process.stdout.write(errorCodesMarkdown());
  });

async function main(): Promise<void> {
  installSignalHandlers();
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    process.exitCode = report(error);
  } finally {
    await teardownAll();
  }
}

function report(error: unknown): number {
  if (isHarnessError(error)) {
    process.stderr.write(`${error.describe()}\n`);
    return error.exitCode;
  }
  process.stderr.write(`ntbh: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
  return 2;
}

await main();
