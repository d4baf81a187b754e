/**
 * Link benchmarks, reported as ratios measured in one run on one machine (absolute numbers under TCG
 * say more about the machine than about the link):
 *   - memory-window throughput (ntb_perf, each direction) / the same copy into the same guest's RAM
 *     (bench/mw.ts: one more linked pair, bench/tools/mwcopy in both guests; docs/mw-throughput.md)
 *   - MSI delivery latency on the wire (relay: RAISE_IRQ → IRQ_RESULT) / one SSH command round trip
 *   - hot-plug link-up (START → function realized) / one QMP round trip
 *   - linked-pair boot / single-guest boot
 * Run: npx tsx bench/link.ts [--results DIR] [--mw-only]
 */
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runCommand } from '../harness/run/command.ts';
import { bootSingle } from '../harness/guest/single.ts';
import { builtinVariants } from '../harness/kernel/variants.ts';
import { makeRunDirs } from '../harness/util/rundir.ts';
import { repoRoot } from '../harness/util/paths.ts';
import { installSignalHandlers, teardownAll } from '../harness/util/teardown.ts';
import { progress } from '../harness/util/log.ts';
import { measureWindows, median as mid, type MwResult, type Pattern, type Target } from './mw.ts';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

async function median(n: number, fn: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push(await fn());
  return values.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

/**
 * Rows for the memory windows, each sender against its own RAM: ntb_perf / the same instruction pattern
 * into RAM (the target ratio), the window / RAM with the same pattern (what the link costs), and the
 * patterns against each other in RAM (what the guest CPU's emulation costs).
 */
function windowRows(mw: MwResult, fmt: (n: number, digits?: number) => string): [string, string, string][] {
  const rows: [string, string, string][] = [];
  const name = { host: `host→EP (${mw.arch.host})`, ep: `EP→host (${mw.arch.ep})` };
  const rate = (side: 'ep' | 'host', target: Target, pattern: Pattern) => mid(mw.rates[side][target]?.[pattern]);
  const row = (label: string, a: number, b: number) => rows.push([label, `${fmt(a, 0)} / ${fmt(b, 0)}`, fmt(a / b, 3)]);
  for (const side of ['host', 'ep'] as const) {
    row(`${name[side]} ntb_perf MB/s / RAM copy, memcpy_toio pattern (io)`, mw.perf[side] ?? NaN, rate(side, 'ram', 'io'));
    row(`${name[side]} ntb_perf MB/s / RAM copy, libc memcpy`, mw.perf[side] ?? NaN, rate(side, 'ram', 'libc'));
    for (const pattern of ['io', 'libc'] as const) row(`${name[side]} mwcopy ${pattern}: window / RAM`, rate(side, 'window', pattern), rate(side, 'ram', pattern));
    row(`${name[side]} RAM copy: io / libc`, rate(side, 'ram', 'io'), rate(side, 'ram', 'libc'));
    row(`${name[side]} RAM copy: io / u64`, rate(side, 'ram', 'io'), rate(side, 'ram', 'u64'));
    row(`${name[side]} mwcopy io, source and destination congruent (as ntb_perf's) / any: RAM`, rate(side, 'ram-congruent', 'io'), rate(side, 'ram', 'io'));
    row(`${name[side]} mwcopy io, congruent / any: window`, rate(side, 'window-congruent', 'io'), rate(side, 'window', 'io'));
    row(`${name[side]} ntb_perf MB/s / window copy, io, congruent`, mw.perf[side] ?? NaN, rate(side, 'window-congruent', 'io'));
    row(`${name[side]} ntb_perf MB/s / dd memset (the former baseline)`, mw.perf[side] ?? NaN, mw.memset[side] ?? NaN);
    row(`${name[side]} ntb_perf MB/s, 1 MiB chunks / 64 KiB chunks`, mw.perfBigChunks[side] ?? NaN, mw.perf[side] ?? NaN);
    row(`${name[side]} ntb_perf MB/s, 1 MiB in all / ${mw.mib} MiB in all`, mw.perfOneMiB[side] ?? NaN, mw.perf[side] ?? NaN);
  }
  return rows;
}

function printRows(rows: [string, string, string][]): void {
  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`\nlink benchmark (one run; ratios are what to compare across machines)\n`);
  for (const [name, raw, ratio] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${raw.padStart(18)}  ratio ${ratio}\n`);
}

function printRegions(mw: MwResult): void {
  for (const side of ['host', 'ep'] as const) process.stdout.write(`  ${side} QEMU, link regions (info mtree -f):\n${mw.regions[side].map((line) => `    ${line}\n`).join('')}`);
}

async function main(): Promise<void> {
  installSignalHandlers();
  const resultsArg = process.argv.indexOf('--results');
  const results = resultsArg > 0 ? process.argv[resultsArg + 1]! : await mkdtemp(join(repoRoot, 'results', 'bench-link-'));

  const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
  if (process.argv.includes('--mw-only')) {
    // Only the memory-window section (its own linked pair): for looking into window throughput.
    const mw = await measureWindows({ mib: 32, passes: 3, results: join(results, 'mw'), timeoutScale: 1, log: progress });
    printRows(windowRows(mw, fmt));
    printRegions(mw);
    return;
  }

  // Baselines from single guests of the same kernels.
  const run = await makeRunDirs('bench-baseline');
  const rows: [string, string, string][] = [];
  const baselines: Record<string, { bootMs: number; sshMs: number; qmpMs: number }> = {};
  for (const arch of ['x86_64', 'arm64'] as const) {
    const { guest } = await bootSingle({ arch, spec: builtinVariants.new!, run, log: progress, name: `baseline-${arch}` });
    const sshMs = await median(9, async () => {
      const t0 = performance.now();
      await guest.exec('true', { check: true });
      return performance.now() - t0;
    });
    const qmpMs = await median(9, async () => {
      const t0 = performance.now();
      await guest.qmp!.execute('query-status');
      return performance.now() - t0;
    });
    baselines[arch] = { bootMs: guest.bootTimes!.sshMs, sshMs, qmpMs };
    await guest.stop();
  }

  const exitCode = await runCommand(join(repoRoot, 'bench', 'link-bench.yaml'), { results, timeoutScale: 1, log: progress });
  const resultsJson = JSON.parse(await readFile(join(results, 'results.json'), 'utf8'));
  const cellDir = join(results, (await readdir(results)).find((name) => name.startsWith('ep-'))!);
  const wire = (await readFile(join(cellDir, 'wire.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
  const latencies = wire.filter((e) => e.type === 'MSI' && e.result === 'delivered' && typeof e.latencyMs === 'number').map((e) => e.latencyMs as number).sort((a, b) => a - b);
  const plugged = wire.filter((e) => e.type === 'PLUGGED').map((e) => e.ms as number);
  const events = (await readFile(join(results, 'events.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
  const boot = events.find((e) => e.kind === 'phase' && e.phase === 'boot' && e.status === 'end');

  const x86 = baselines.x86_64!;
  rows.push([`MSI latency on the wire p50 (ms, n=${latencies.length}) / SSH round trip to host (ms)`, `${fmt(percentile(latencies, 0.5), 3)} / ${fmt(x86.sshMs, 1)}`, fmt(percentile(latencies, 0.5) / x86.sshMs, 4)]);
  rows.push(['MSI latency on the wire p90 (ms) / SSH round trip (ms)', `${fmt(percentile(latencies, 0.9), 3)} / ${fmt(x86.sshMs, 1)}`, fmt(percentile(latencies, 0.9) / x86.sshMs, 4)]);
  rows.push(['hot-plug START→realized (ms) / QMP round trip (ms)', `${fmt(plugged[0] ?? NaN, 1)} / ${fmt(x86.qmpMs, 2)}`, fmt((plugged[0] ?? NaN) / x86.qmpMs, 2)]);
  const pairBoot = Number(/host (\d+) ms/.exec(boot?.message ?? '')?.[1]);
  rows.push(['linked pair: host boot to SSH (ms) / single host boot (ms)', `${pairBoot} / ${fmt(x86.bootMs, 0)}`, fmt(pairBoot / x86.bootMs, 2)]);

  // Memory windows: a linked pair of its own, ntb_perf and mwcopy side by side in the same guests.
  const mw = await measureWindows({ mib: 32, passes: 3, results: join(results, 'mw'), timeoutScale: 1, log: progress }).catch((error: unknown) => {
    printRows(rows); // what was measured before the window pair failed
    throw error;
  });
  rows.unshift(...windowRows(mw, fmt));

  printRows(rows);
  printRegions(mw);
  process.stdout.write(`  scenario status ${resultsJson.status}; artifacts ${results}\n`);
  process.exitCode = exitCode;
}

try {
  await main();
} finally {
  await teardownAll();
}
