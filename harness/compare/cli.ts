/**
 * Nightly-CI commands: compare two runs, merge shards, show a shard plan, export a run. Registered on
 * the main program by harness/cli.ts with one call.
 */
import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { HarnessError } from '../errors.ts';
import { progress } from '../util/log.ts';
import { loadScenario } from '../scenario/load.ts';
import { expandMatrix } from '../scenario/matrix.ts';
import { kcidbExport } from '../report/kcidb.ts';
import { mergeRuns } from '../shard/merge.ts';
import { planShards } from '../shard/select.ts';
import { compareRuns } from './diff.ts';
import { loadKnownIssues } from './known-issues.ts';
import { renderComparison, type CompareFormat } from './render.ts';
import { readRun } from './results.ts';

function number(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new HarnessError(`${name} must be a non-negative number, got "${value}"`, { code: 'BAD_OPTIONS', kind: 'input', phase: 'report' });
    return n;
  };
}

const tty = () => process.stdout.isTTY === true && !process.env.NO_COLOR;

export function registerNightlyCommands(program: Command): void {
  program
    .command('compare')
    .description('compare two runs (results directories or results.json): regressions, fixes, new/missing cells and checks, new splats, timing; exit 1 on a regression')
    .argument('<base>', 'the earlier run (e.g. last night)')
    .argument('<new>', 'the run to judge')
    .addOption(new Option('--format <format>', 'output format').choices(['terminal', 'markdown', 'json']).default('terminal'))
    .option('--known-issues <file>', 'YAML of triaged failures and intermittent checks')
    .option('--timing-threshold <percent>', 'report steps whose duration changed by more than this', number('--timing-threshold'), 50)
    .option('--timing-min <ms>', '... and by at least this many milliseconds', number('--timing-min'), 2000)
    .option('--output <file>', 'write the report to a file instead of stdout')
    .action(async (base: string, now: string, opts: { format: CompareFormat; knownIssues?: string; timingThreshold: number; timingMin: number; output?: string }) => {
      const known = opts.knownIssues ? await loadKnownIssues(opts.knownIssues) : undefined;
      const comparison = compareRuns(await readRun(base), await readRun(now), { known, timingThreshold: opts.timingThreshold / 100, timingMinMs: opts.timingMin });
      const text = renderComparison(comparison, opts.format, !opts.output && tty());
      if (opts.output) await writeFile(opts.output, text);
      else process.stdout.write(text);
      process.exitCode = comparison.exitCode;
    });

  program
    .command('merge')
    .description("merge the results directories of a sharded run (ntbh run --shard i/n) into one, as a single run's")
    .argument('<dirs...>', 'the shards\' results directories')
    .requiredOption('--results <dir>', 'the merged results directory (created; must be empty)')
    .action(async (dirs: string[], opts: { results: string }) => {
      // A `write` of our own: no live progress board replaying the shards' events as if they ran now.
      const { run, dir } = await mergeRuns(dirs, { out: opts.results, log: progress, write: (text) => void process.stdout.write(text) });
      progress(`merged ${dirs.length} result director${dirs.length === 1 ? 'y' : 'ies'} (${run.cells.length} cells) into ${dir}`);
      process.exitCode = run.exitCode;
    });

  program
    .command('shards')
    .description('print how --shard i/n splits a scenario\'s cells, and the kernels each shard builds')
    .argument('<scenario>', 'scenario YAML file')
    .requiredOption('-n, --count <n>', 'number of shards', number('--count'))
    .option('--cell <id...>', 'only these cells (as ntbh run --cell)')
    .action(async (file: string, opts: { count: number; cell?: string[] }) => {
      const scenario = await loadScenario(file);
      const cells = expandMatrix(scenario).filter((c) => !opts.cell?.length || opts.cell.includes(c.id));
      const plan = planShards(cells, scenario, Math.max(1, Math.floor(opts.count)));
      const lines = [`${scenario.name}: ${cells.length} cells in ${plan.shards.length} shards, grouped by the ${plan.groupedBy} kernel`];
      plan.shards.forEach((shard, i) => {
        lines.push(`shard ${i + 1}/${plan.shards.length}: ${shard.cells.length} cells, ~${Math.round(shard.cost)} min of cold builds`);
        lines.push(`  cells:   ${shard.cells.map((c) => c.id).join(' ') || '-'}`);
        lines.push(`  kernels: ${shard.kernels.join('; ') || '-'}`);
      });
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  const exporter = program.command('export').description('export a finished run for other systems');
  exporter
    .command('kcidb')
    .description('KCIDB-style JSON (checkouts, builds, tests with KCIDB statuses and dotted paths) of a run')
    .argument('<run>', 'results directory or results.json')
    .option('--origin <name>', 'the submitting CI system (KCIDB origin: [a-z0-9_]+)', 'ntbh')
    .option('--artifacts-url <url>', 'where the results directory is published: logs become URLs')
    .option('--output <file>', 'write to a file instead of stdout')
    .action(async (path: string, opts: { origin: string; artifactsUrl?: string; output?: string }) => {
      const data = kcidbExport(await readRun(path), { origin: opts.origin, artifactsUrl: opts.artifactsUrl });
      const text = `${JSON.stringify(data, null, 2)}\n`;
      if (opts.output) await writeFile(opts.output, text);
      else process.stdout.write(text);
    });
}
