/**
 * Host→EP doorbell latency, interrupt-driven (vepc's embedded doorbell) vs polled (vntb's 5 ms work),
 * on the same kernels (Debian 7.2 EP, stock 6.12 host), as ratios measured in one invocation.
 *
 * ntb_pingpong runs on both sides with delay_ms 0: each doorbell received is answered at once. The
 * relay's clock (independent of both guests) times it on the wire:
 *   - round trip = interval between consecutive EP→host MSIs (RAISE_IRQ from the EP), both modes;
 *     polled / interrupt is the headline ratio (the EP→host leg is the same code in both);
 *   - in interrupt mode only, the host→EP leg = host's DOORBELL write → the EP's next RAISE_IRQ (the
 *     EP's IRQ, vntb's handler, ntb_pingpong and vntb's deferred raise); in polling mode the host's
 *     write lands in EP RAM and is invisible on the wire, so that leg is round trip − the EP→host leg.
 * Run: npx tsx bench/doorbell.ts [--results DIR]   (boots two pairs; hold the heavy-work lock)
 */
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../harness/run/command.ts';
import { repoRoot } from '../harness/util/paths.ts';
import { installSignalHandlers, teardownAll } from '../harness/util/teardown.ts';
import { progress } from '../harness/util/log.ts';
import { legs, percentile, type ModeFigures, type Wire } from './doorbell-legs.ts';

async function runMode(mode: ModeFigures['mode'], results: string): Promise<ModeFigures> {
  const template = await readFile(join(repoRoot, 'bench', 'doorbell-bench.yaml'), 'utf8');
  const dir = join(results, mode);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'doorbell-bench.yaml');
  await writeFile(file, mode === 'interrupt' ? template : template.replace('epc_params: doorbell=1', 'epc_params: doorbell=0'), { mode: 0o600 });
  await runCommand(file, { results: join(dir, 'run'), timeoutScale: 1, log: progress });
  const run = join(dir, 'run');
  const resultsJson = JSON.parse(await readFile(join(run, 'results.json'), 'utf8'));
  const cellDir = join(run, (await readdir(run)).find((name) => name.startsWith('ep-'))!);
  const wire = (await readFile(join(cellDir, 'wire.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Wire);
  const step = resultsJson.cells[0]?.steps.find((s: { id: string }) => s.id === 'pingpong');
  const pings = step?.checks?.find((c: { id: string }) => c.id === 'pings')?.value ?? null;
  return { mode, status: resultsJson.status, pings, ...legs(wire) };
}

async function main(): Promise<void> {
  installSignalHandlers();
  const at = process.argv.indexOf('--results');
  const results = at > 0 ? process.argv[at + 1]! : await mkdtemp(join(repoRoot, 'results', 'bench-doorbell-'));
  const irq = await runMode('interrupt', results);
  const poll = await runMode('polling', results);
  const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
  const rt = (m: ModeFigures, p: number) => percentile(m.roundTripsMs, p);
  const out = [
    '',
    'host→EP doorbell latency, interrupt (embedded doorbell) vs polling (vntb 5 ms work); relay clock, ms',
    `  interrupt: ${irq.pings} pings, ${irq.roundTripsMs.length} round trips, ${irq.doorbells} DOORBELL writes on the wire; status ${irq.status}`,
    `  polling:   ${poll.pings} pings, ${poll.roundTripsMs.length} round trips, ${poll.doorbells} DOORBELL writes on the wire; status ${poll.status}`,
    `  round trip p50: polling ${fmt(rt(poll, 0.5))} / interrupt ${fmt(rt(irq, 0.5))}   ratio ${fmt(rt(poll, 0.5) / rt(irq, 0.5))}`,
    `  round trip p90: polling ${fmt(rt(poll, 0.9))} / interrupt ${fmt(rt(irq, 0.9))}   ratio ${fmt(rt(poll, 0.9) / rt(irq, 0.9))}`,
    `  interrupt mode legs p50: host→EP ${fmt(percentile(irq.hostToEpMs, 0.5))}, EP→host ${fmt(percentile(irq.epToHostMs, 0.5))}`,
    `  polling host→EP p50 (round trip − interrupt-mode EP→host p50): ${fmt(rt(poll, 0.5) - percentile(irq.epToHostMs, 0.5))}`,
    `  host→EP ratio polling / interrupt (p50): ${fmt((rt(poll, 0.5) - percentile(irq.epToHostMs, 0.5)) / percentile(irq.hostToEpMs, 0.5))}`,
    `  artifacts ${results}`,
    '',
  ];
  process.stdout.write(out.join('\n'));
  await writeFile(join(results, 'doorbell-bench.json'), JSON.stringify({ interrupt: irq, polling: poll }, null, 2), { mode: 0o600 });
}

try {
  await main();
} finally {
  await teardownAll();
}
