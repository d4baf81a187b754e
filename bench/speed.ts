/**
 * Issue-11 speed figures against their targets, measured in one run on this machine:
 *   - x86_64 boot to SSH inside a cell (the host guest: IOMMU, link devices, shared RAM) / the same
 *     kernel and image booted bare (our QEMU, no IOMMU, no link), median of 3 — target ≤ 1.5
 *   - the main job (doorbell-interop 3×3), warm: wall time / 150 s, and each cell / 15 s
 *   - with --cold: the main job against an empty NTBH_CACHE / 25 min
 * Per-phase timings come from results.json (`cells[].phases`). With --baseline DIR, the new run is
 * compared check by check with an earlier results directory (`ntbh compare`), so a speed-up that
 * changed an outcome shows.
 * Run: npx tsx bench/speed.ts [--results DIR] [--parallel N] [--cold] [--baseline DIR] [--skip-matrix]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootSingle } from '../harness/guest/single.ts';
import { builtinVariants } from '../harness/kernel/variants.ts';
import { buildLinkQemu } from '../harness/qemu/build.ts';
import { runCommand } from '../harness/run/command.ts';
import type { CellResult, RunResult } from '../harness/results/model.ts';
import { progress } from '../harness/util/log.ts';
import { repoRoot } from '../harness/util/paths.ts';
import { makeRunDirs } from '../harness/util/rundir.ts';
import { installSignalHandlers, teardownAll } from '../harness/util/teardown.ts';

const TARGETS = { bootRatio: 1.5, matrixS: 150, cellS: 15, coldS: 25 * 60 };

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : NaN;
}

/** The bare baseline: the cell's x86_64 kernel and image under our QEMU, nothing but SSH. */
async function bareBootMs(): Promise<number> {
  const qemu = await buildLinkQemu(progress);
  const run = await makeRunDirs('bench-bare');
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { guest } = await bootSingle({
      arch: 'x86_64',
      spec: builtinVariants.new!,
      run,
      log: progress,
      name: `bare-${i}`,
      iommu: false,
      qemuBinary: qemu.x86_64,
      qemuDataDir: qemu.dataDir,
    });
    times.push(guest.bootTimes!.sshMs);
    await guest.stop();
  }
  return median(times);
}

function phase(cell: CellResult, name: string, guest?: RegExp): number {
  return cell.phases?.find((p) => p.name === name && (!guest || guest.test(p.guest ?? '')))?.ms ?? NaN;
}

async function readRun(dir: string): Promise<RunResult> {
  return JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as RunResult;
}

/** The main job as a child process against an empty cache: wall seconds. */
async function coldMainJob(): Promise<number> {
  const cache = await mkdtemp(join(tmpdir(), 'ntbh-cold-'));
  const started = Date.now();
  try {
    const code = await new Promise<number>((resolve) => {
      const child = spawn('node', [join(repoRoot, 'bin', 'ntbh.js'), 'run', 'scenarios/doorbell-interop.yaml', '--results', join(cache, 'results')], {
        cwd: repoRoot,
        env: { ...process.env, NTBH_CACHE: cache },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('exit', (status) => resolve(status ?? 2));
    });
    if (code > 1) throw new Error(`the cold main job ended with exit ${code}`);
    return (Date.now() - started) / 1000;
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  installSignalHandlers();
  const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
  const rows: [string, string, string, string][] = [];
  const row = (label: string, value: number, target: number, unit: string) =>
    rows.push([label, `${fmt(value)} ${unit}`, `${fmt(target)} ${unit}`, `${fmt(value / target, 2)}${value <= target ? '' : '  (over target)'}`]);

  const bare = await bareBootMs();
  if (!process.argv.includes('--skip-matrix')) {
    const results = arg('--results') ?? (await mkdtemp(join(repoRoot, 'results', 'bench-speed-')));
    const started = Date.now();
    const parallel = Number(arg('--parallel') ?? process.env.NTBH_PARALLEL ?? 1);
    const exitCode = await runCommand(join(repoRoot, 'scenarios', 'doorbell-interop.yaml'), { results, parallel, timeoutScale: 1, log: progress });
    const wallS = (Date.now() - started) / 1000;
    const run = await readRun(results);
    row(`main job warm (${run.cells.length} cells, ${parallel} at a time, exit ${exitCode}) wall`, wallS, TARGETS.matrixS, 's');
    const cellS = run.cells.map((c) => c.durationMs / 1000);
    row('cell, median', median(cellS), TARGETS.cellS, 's');
    row('cell, slowest', Math.max(...cellS), TARGETS.cellS, 's');
    const hostBoot = median(run.cells.map((c) => phase(c, 'boot-ssh', /host|x86/)));
    rows.push(['x86_64 boot to SSH in a cell / bare (ms)', `${fmt(hostBoot, 0)} / ${fmt(bare, 0)}`, `${TARGETS.bootRatio}`, fmt(hostBoot / bare, 2)]);
    const baseline = arg('--baseline');
    // With a baseline, each phase side by side with the baseline's: where the time went, and where it was saved.
    const before = baseline ? await readRun(baseline) : undefined;
    process.stdout.write(`\nwhere a cell's time goes (median over cells, s${before ? '; before → now' : ''}):\n`);
    const names = [...new Set(run.cells.flatMap((c) => (c.phases ?? []).filter((p) => !p.guest).map((p) => p.name)))];
    const medianOf = (cells: CellResult[], name: string) => median(cells.map((c) => phase(c, name) / 1000));
    for (const name of names) {
      const now = fmt(medianOf(run.cells, name), 2);
      process.stdout.write(`  ${name.padEnd(28)} ${before ? `${fmt(medianOf(before.cells, name), 2).padStart(6)} → ` : ''}${now}\n`);
    }
    if (before) process.stdout.write(`  ${'cell'.padEnd(28)} ${fmt(median(before.cells.map((c) => c.durationMs / 1000)), 2).padStart(6)} → ${fmt(median(cellS), 2)}\n`);
    if (baseline) {
      process.stdout.write(`\ncompared check by check with ${baseline}:\n`);
      await new Promise<void>((resolve) => {
        spawn('node', [join(repoRoot, 'bin', 'ntbh.js'), 'compare', baseline, results], { cwd: repoRoot, stdio: 'inherit' }).on('exit', () => resolve());
      });
    }
  } else {
    rows.push(['x86_64 bare boot to SSH (ms)', fmt(bare, 0), '', '']);
  }
  if (process.argv.includes('--cold')) row('main job cold (empty NTBH_CACHE) wall', await coldMainJob(), TARGETS.coldS, 's');

  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write('\nspeed (one run; value / target, ≤ 1 meets it)\n');
  for (const [label, value, target, ratio] of rows) process.stdout.write(`  ${label.padEnd(width)}  ${value.padStart(14)}  target ${target.padStart(9)}  ratio ${ratio}\n`);
  await teardownAll();
}

main().catch(async (error) => {
  process.stderr.write(`${(error as Error)?.stack ?? error}\n`);
  await teardownAll();
  process.exit(2);
});
