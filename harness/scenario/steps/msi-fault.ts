/**
 * msi-fault: the relay drops, delays or duplicates the next `count` MSIs of one doorbell bit's host
 * vector (harness/link/faults.ts) while the EP rings that bit through ntb_tool; the host must see
 * exactly what the relay delivered, and the next ring after the faults must arrive normally.
 */
import { z } from 'zod';
import { HarnessError } from '../../errors.ts';
import type { Rig } from '../rig.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { resetDb, ringAndObserve, type RingObservation } from './observe.ts';
import { bit, type Out } from './util.ts';

const schema = stepSchema(
  'msi-fault',
  {
    action: z.enum(['drop', 'delay', 'duplicate']),
    bit: z.number().int().min(0).max(29).default(0).describe('doorbell bit the EP rings; its host vector is bit + 2'),
    count: z.number().int().min(1).max(64).default(3).describe('MSIs the fault applies to'),
    delay_ms: z.number().int().min(1).max(60_000).default(500).describe('delay: how long the relay holds each MSI; duplicate: the gap before the copy'),
  },
  'make the relay drop, delay or duplicate the next N MSIs of one vector while the EP rings it; the host must see exactly what was delivered',
);
export type MsiFaultStep = StepOf<typeof schema>;

/** MSIs per ring the relay should deliver under each action. */
const PER_RING = { drop: 0, delay: 1, duplicate: 2 } as const;

function count(list: number[] | undefined, vector: number): number {
  return (list ?? []).filter((v) => v === vector).length;
}

function agree(o: RingObservation): boolean {
  const sorted = (l: number[] | undefined) => [...(l ?? [])].sort((a, b) => a - b).join(',');
  return o.msiVectors !== undefined && o.wireVectors !== undefined && sorted(o.msiVectors) === sorted(o.wireVectors);
}

async function msiFault(rig: Rig, step: MsiFaultStep, out: Out): Promise<void> {
  const faults = rig.link.faults;
  if (!faults) throw new HarnessError('this link cannot inject faults (no relay fault plan)', { code: 'FAULTS_UNSUPPORTED', kind: 'input', phase: 'step' });
  const tools = await rig.linkedTools();
  const vector = step.bit + 2;
  const n = PER_RING[step.action];
  const expectDb = step.action === 'drop' ? 0 : bit(step.bit);
  await resetDb(tools.host);
  const mark = rig.link.mark();
  faults.arm({ vector, action: step.action, count: step.count, delayMs: step.delay_ms });
  try {
    for (let r = 1; r <= step.count; r++) {
      const label = `${step.action} ring ${r}`;
      // A duplicate's copy comes delay_ms after the first MSI, which already set db: keep watching past it.
      const settlePolls = step.action === 'duplicate' ? Math.ceil(step.delay_ms / 10) + 20 : undefined;
      const o = await ringAndObserve(rig, tools, 'ep-to-host', bit(step.bit), { expectChange: step.action !== 'drop', settlePolls });
      const detail = `wire ${JSON.stringify(o.wireVectors ?? null)}, host irqs ${JSON.stringify(o.msiVectors ?? null)}, ntb_db_event ${JSON.stringify(o.kprobeVectors ?? null)}`;
      out.add('ring_ok', o.ringOk, { on: 'ep', label, detail: o.ringError });
      out.add('wire', count(o.wireVectors, vector), { on: 'host', label, params: { n }, detail });
      out.add('irqs', count(o.msiVectors, vector), { on: 'host', label, params: { n }, detail });
      out.add('receiver_agrees', agree(o), { on: 'host', label, detail });
      out.add('db', o.db, { on: 'host', label, params: { B: expectDb } });
      await resetDb(tools.host);
    }
  } finally {
    faults.disarm();
  }
  const traced = rig.link.events(mark).filter((e) => e.type === 'FAULT' && e.vector === vector && e.action === step.action).length;
  out.add('traced', traced, { params: { n: step.count }, detail: `${traced} FAULT events in wire.ndjson` });

  // The faults are used up: the next ring must look like any other.
  const o = await ringAndObserve(rig, tools, 'ep-to-host', bit(step.bit));
  const clean = o.ringOk && o.db === bit(step.bit) && count(o.wireVectors, vector) === 1 && agree(o);
  out.add('recovered', clean, { on: 'host', detail: `db ${o.db}, wire ${JSON.stringify(o.wireVectors ?? null)}, host irqs ${JSON.stringify(o.msiVectors ?? null)}` });
  await resetDb(tools.host);
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    ring_ok: { spec: 'true', doc: "the EP's ntb_tool accepted the ring" },
    wire: { spec: 'n', doc: 'MSIs of the vector the relay delivered for this ring (n: 0 drop, 1 delay, 2 duplicate)' },
    irqs: { spec: 'n', doc: "the host's /proc/interrupts delta on the vector for this ring" },
    receiver_agrees: { spec: 'true', doc: 'the host received exactly the vectors the relay delivered, no more, no fewer' },
    db: { spec: 'B', doc: "the host's db after the ring (B: 0 when dropped, else bit(bit))" },
    traced: { spec: 'n', doc: 'FAULT events the relay recorded for this vector and action (n: count)' },
    recovered: { spec: 'true', doc: 'with the faults used up, the next ring arrives once, on its vector, and sets its bit' },
  },
  run: msiFault,
  budget: (s) => 120 + 60 * (s.count + 1) + (s.action === 'drop' ? 0 : (s.delay_ms / 1000) * (s.count + 1)),
  docs: { lead: 'per faulted ring' },
});
