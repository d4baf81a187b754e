/**
 * netdev-soak: repeat ping and a checksummed transfer both ways for a duration or a number of
 * iterations, reporting per-iteration failures and rates; over the whole soak the relay's counters
 * (MSIs the EP raised, MSIs delivered) and the host's /proc/interrupts must agree vector by vector:
 * nothing lost, nothing duplicated.
 */
import { z } from 'zod';
import { readInterrupts, vectorDeltas } from '../../ntb/interrupts.ts';
import type { Measurement } from '../../results/model.ts';
import type { Rig } from '../rig.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { NTB_ADDR, netdevState } from './netdev.ts';
import { transferOnce } from './netdev-transfer.ts';
import { Out, sleep } from './util.ts';

const schema = stepSchema(
  'netdev-soak',
  {
    duration: z.number().positive().default(600).describe('seconds of wall time to keep starting iterations'),
    iterations: z.number().int().positive().optional().describe('stop after this many iterations (whichever comes first)'),
    size: z.number().int().min(4096).max(64 << 20).default(1 << 20).describe('bytes per transfer, each way'),
    port: z.number().int().min(1024).max(65535).default(5203),
  },
  'repeat ping + transfer both ways for a duration/count; per-iteration failures and rates; relay and host IRQ counters must show no MSI lost or duplicated',
);
export type NetdevSoakStep = StepOf<typeof schema>;

interface Tally {
  raised: Map<number, number>;
  delivered: Map<number, number>;
  other: Map<string, number>;
}

/** EP raises and their outcomes since a mark, per host vector. */
function tally(rig: Rig, mark: ReturnType<Rig['link']['mark']>): Tally {
  const raised = new Map<number, number>();
  for (const e of rig.link.events(mark)) {
    if (e.from === 'ep' && e.type === 'RAISE_IRQ' && e.irqType === 2) raised.set(Number(e.number) - 1, (raised.get(Number(e.number) - 1) ?? 0) + 1);
  }
  const delivered = new Map<number, number>();
  const other = new Map<string, number>();
  for (const d of rig.link.msiDeliveries(mark)) {
    if (d.result === 'delivered') delivered.set(d.vector, (delivered.get(d.vector) ?? 0) + 1);
    else other.set(d.result, (other.get(d.result) ?? 0) + 1);
  }
  return { raised, delivered, other };
}

function diff(a: Map<number, number>, b: Map<number, number>): number {
  let sum = 0;
  for (const v of new Set([...a.keys(), ...b.keys()])) sum += Math.max(0, (a.get(v) ?? 0) - (b.get(v) ?? 0));
  return sum;
}

const show = (m: Map<number, number>) => [...m].sort(([a], [b]) => a - b).map(([v, n]) => `${v}:${n}`).join(' ') || 'none';

async function netdevSoak(rig: Rig, step: NetdevSoakStep, out: Out): Promise<void> {
  netdevState(rig);
  const irqBefore = await readInterrupts(rig.host);
  const mark = rig.link.mark();
  const started = Date.now();
  const failures: string[] = [];
  const rates: number[] = [];
  let n = 0;
  while (Date.now() - started < step.duration * 1000 && (step.iterations === undefined || n < step.iterations)) {
    n++;
    const scratch = new Out([] as Measurement[]);
    for (const [from, to] of [['host', 'ep'], ['ep', 'host']] as const) {
      const ping = await rig.guest(from).exec(`ping -c 1 -w ${Math.ceil(rig.ms(5_000) / 1000)} ${NTB_ADDR[to]}`, { timeoutMs: rig.ms(20_000) });
      if (ping.exitCode !== 0) failures.push(`#${n} ping ${from}→${to}`);
    }
    for (const dir of ['host-to-ep', 'ep-to-host'] as const) {
      try {
        await transferOnce(rig, { size: step.size, port: step.port }, dir, scratch);
      } catch (error) {
        failures.push(`#${n} transfer ${dir}: ${(error as Error).message}`);
      }
    }
    for (const m of scratch.list) {
      if (m.check === 'match' && m.value !== true) failures.push(`#${n} transfer ${m.label}: ${m.detail ?? 'mismatch'}`);
      if (m.check === 'kbit_s' && typeof m.value === 'number') rates.push(m.value);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  // In-flight MSIs settle: the relay answers each raise once the RC device reports it.
  await sleep(rig.ms(2_000));
  const t = tally(rig, mark);
  const host = vectorDeltas(irqBefore, await readInterrupts(rig.host), rig.msiIrqs);
  const failedIterations = new Set(failures.map((f) => f.split(' ')[0])).size;
  out.add('iterations', n, { detail: `${n} in ${seconds.toFixed(0)} s (${((n * 60) / seconds).toFixed(2)}/min)` });
  out.add('failed_iterations', failedIterations, { detail: failures.slice(0, 20).join('; ') || undefined });
  const avg = rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : 0;
  out.add('kbit_s', Math.round(avg), { detail: `mean of ${rates.length} transfers, min ${Math.min(...rates)}, max ${Math.max(...rates)}` });
  const counters = `raised ${show(t.raised)}; delivered ${show(t.delivered)}; host irqs ${show(host)}; other outcomes ${[...t.other].map(([r, c]) => `${r}:${c}`).join(' ') || 'none'}`;
  out.add('msis', [...t.delivered.values()].reduce((a, b) => a + b, 0), { detail: counters });
  // Lost: raised by the EP but not delivered into the host.
  out.add('lost', diff(t.raised, t.delivered), { detail: counters });
  // Duplicated: delivered more often than raised, or counted by the host more often than delivered.
  out.add('duplicated', diff(t.delivered, t.raised) + diff(host, t.delivered), { detail: counters });
  // Delivered but not counted: an MSI that reaches the host's interrupt controller while the same
  // vector is still pending merges with it (one pending bit per vector). Doorbell bits accumulate in
  // db, so the receiver still sees every doorbell; this is the rate of merged interrupts, not a loss.
  out.add('coalesced', diff(t.delivered, host), { detail: counters });
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    iterations: { spec: 'value > 0', doc: 'iterations run (ping both ways + transfer both ways each)' },
    failed_iterations: { spec: '0', doc: 'iterations with a failed ping or a transfer that did not arrive intact' },
    kbit_s: { spec: 'value > 0', doc: 'mean transfer throughput, kbit/s' },
    msis: { spec: 'value > 0', doc: 'EP→host MSIs the relay delivered during the soak' },
    lost: { spec: '0', doc: 'MSIs raised by the EP but not delivered into the host (relay counters, per vector)' },
    duplicated: { spec: '0', doc: 'MSIs delivered more often than raised, or counted by the host more often than delivered (per vector)' },
    coalesced: {
      spec: 'value >= 0',
      doc: "MSIs delivered but not counted in the host's /proc/interrupts: merged with a still-pending one of the same vector (a rate, not a loss: db bits accumulate)",
    },
  },
  run: netdevSoak,
  budget: (s) => s.duration + 900,
});
