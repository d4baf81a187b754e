/** doorbell-sweep: every bit of a mask, one ring at a time; the interop evaluation compares its cells. */
import { expression } from '../schema-parts.ts';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';
import { doorbellSweep } from './doorbell.ts';
import { ringChecks } from './ring-checks.ts';

const schema = stepSchema(
  'doorbell-sweep',
  {
    direction: direction.default('both'),
    bits: expression.default('mask(min(Nh, Ne) - 2)').describe('mask of the bits to ring one at a time'),
  },
  "ring each bit, wait for the receiver's db, check db/vector/vector mask/MSI index/wire, clear it, check",
);
export type DoorbellSweepStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    ...ringChecks,
    db: { spec: 'bit(i)', doc: "receiver's db after bit i was rung" },
    vector: { spec: 'i', doc: 'vector passed to ntb_db_event on the receiver (ntb_tool dynamic debug)' },
    vector_kprobe: { spec: 'i', doc: 'vector passed to ntb_db_event on the receiver (kprobe)', note: "falls back to `vector`'s expectation" },
    vector_mask: { spec: 'bit(i)', doc: 'db_vector_mask(vector) as ntb_tool logged it' },
    msi_index: { spec: 'i + 2', doc: 'host MSI vector index that fired (/proc/interrupts delta); host receiver only', note: 'host receiver' },
    wire: { spec: 'i + 2', doc: 'host vector index the relay delivered; EP-to-host only', note: 'EP→host' },
    db_after_clear: { spec: '0', doc: "receiver's db after `c bit(i)`" },
  },
  run: doorbellSweep,
  budget: () => 900,
  expressions: ['bits'],
  // A single-bit ring's wire slot does not depend on the sender's version: receivers must agree.
  interop: { param: 'i', ignore: ['ring_ok'] },
  docs: { lead: 'per bit i' },
});
