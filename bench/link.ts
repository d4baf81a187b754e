/**
 * Link benchmarks, reported as ratios measured in one run on one machine (absolute numbers under TCG
 * say more about the machine than about the link):
 *   - memory-window throughput (ntb_perf, each direction) / the same guests' own memory bandwidth
 *   - MSI delivery latency on the wire (relay: RAISE_IRQ → IRQ_RESULT) / one SSH command round trip
 *   - hot-plug link-up (START → function realized) / one QMP round trip
 *   - linked-pair boot / single-guest boot
 * Run: npx tsx bench/link.ts [--results DIR]
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
import type { Guest } from '../harness/guest/guest.ts';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** MB/s of a 1 GiB copy inside the guest, timed by the guest's own clock (/proc/uptime). */
async function guestCopyMBps(guest: Guest): Promise<number> {
  const result = await guest.exec('cut -d" " -f1 /proc/uptime; dd if=/dev/zero of=/dev/null bs=1M count=1024 2>/dev/null; cut -d" " -f1 /proc/uptime', {
    check: true,
    timeoutMs: 300_000,
  });
  const [start, end] = result.stdout.trim().split('\n').map(Number);
  if (!(start! >= 0) || !(end! > start!)) throw new Error(`cannot time the copy: ${result.stdout}`);
  return 1024 * 1048576 / (end! - start!) / 1e6;
}

async function median(n: number, fn: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push(await fn());
  return values.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

async function main(): Promise<void> {
  installSignalHandlers();
  const resultsArg = process.argv.indexOf('--results');
  const results = resultsArg > 0 ? process.argv[resultsArg + 1]! : await mkdtemp(join(repoRoot, 'results', 'bench-link-'));

  // Baselines from single guests of the same kernels.
  const run = await makeRunDirs('bench-baseline');
  const rows: [string, string, string][] = [];
  const baselines: Record<string, { bootMs: number; copyMBps: number; sshMs: number; qmpMs: number }> = {};
  for (const arch of ['x86_64', 'arm64'] as const) {
    const { guest } = await bootSingle({ arch, spec: builtinVariants.new!, run, log: progress, name: `baseline-${arch}` });
    const copyMBps = await median(3, () => guestCopyMBps(guest));
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
    baselines[arch] = { bootMs: guest.bootTimes!.sshMs, copyMBps, sshMs, qmpMs };
    await guest.stop();
  }

  const exitCode = await runCommand(join(repoRoot, 'bench', 'link-bench.yaml'), { results, timeoutScale: 1, log: progress });
  const resultsJson = JSON.parse(await readFile(join(results, 'results.json'), 'utf8'));
  const cell = resultsJson.cells[0];
  const cellDir = join(results, (await readdir(results)).find((name) => name.startsWith('ep-'))!);
  const wire = (await readFile(join(cellDir, 'wire.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
  const latencies = wire.filter((e) => e.type === 'MSI' && e.result === 'delivered' && typeof e.latencyMs === 'number').map((e) => e.latencyMs as number).sort((a, b) => a - b);
  const plugged = wire.filter((e) => e.type === 'PLUGGED').map((e) => e.ms as number);
  const perf = cell.steps.find((s: { id: string }) => s.id === 'perf')?.values ?? {};
  const events = (await readFile(join(results, 'events.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
  const boot = events.find((e) => e.kind === 'phase' && e.phase === 'boot' && e.status === 'end');

  const x86 = baselines.x86_64!;
  const arm = baselines.arm64!;
  const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
  rows.push(['ntb_perf host→EP (MB/s) / host guest copy (MB/s)', `${perf['mbps[host-to-ep]']} / ${fmt(x86.copyMBps, 0)}`, fmt(perf['mbps[host-to-ep]'] / x86.copyMBps, 3)]);
  rows.push(['ntb_perf EP→host (MB/s) / EP guest copy (MB/s)', `${perf['mbps[ep-to-host]']} / ${fmt(arm.copyMBps, 0)}`, fmt(perf['mbps[ep-to-host]'] / arm.copyMBps, 3)]);
  rows.push([`MSI latency on the wire p50 (ms, n=${latencies.length}) / SSH round trip to host (ms)`, `${fmt(percentile(latencies, 0.5), 3)} / ${fmt(x86.sshMs, 1)}`, fmt(percentile(latencies, 0.5) / x86.sshMs, 4)]);
  rows.push(['MSI latency on the wire p90 (ms) / SSH round trip (ms)', `${fmt(percentile(latencies, 0.9), 3)} / ${fmt(x86.sshMs, 1)}`, fmt(percentile(latencies, 0.9) / x86.sshMs, 4)]);
  rows.push(['hot-plug START→realized (ms) / QMP round trip (ms)', `${fmt(plugged[0] ?? NaN, 1)} / ${fmt(x86.qmpMs, 2)}`, fmt((plugged[0] ?? NaN) / x86.qmpMs, 2)]);
  const pairBoot = Number(/host (\d+) ms/.exec(boot?.message ?? '')?.[1]);
  rows.push(['linked pair: host boot to SSH (ms) / single host boot (ms)', `${pairBoot} / ${fmt(x86.bootMs, 0)}`, fmt(pairBoot / x86.bootMs, 2)]);

  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`\nlink benchmark (one run; ratios are what to compare across machines)\n`);
  for (const [name, raw, ratio] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${raw.padStart(18)}  ratio ${ratio}\n`);
  process.stdout.write(`  scenario status ${resultsJson.status}; artifacts ${results}\n`);
  process.exitCode = exitCode;
}

try {
  await main();
} finally {
  await teardownAll();
}
