/** doorbell-zero: a peer_db write with no bit set must deliver nothing. */
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';
import { doorbellZero } from './doorbell.ts';
import { ringChecks } from './ring-checks.ts';

const schema = stepSchema('doorbell-zero', { direction: direction.default('both') }, 'write `s 0` to peer_db (no bit set) and check nothing is delivered');
export type DoorbellZeroStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    ...ringChecks,
    db: { spec: '0', doc: "receiver's db after the sender wrote `s 0`" },
    vector: { spec: 'none', doc: 'vector passed to ntb_db_event on the receiver (none expected)' },
    vector_kprobe: { spec: 'none', doc: 'the same, seen by the kprobe' },
    vector_mask: { spec: 'none', doc: 'db_vector_mask(vector) of a (spurious) event' },
    msi_index: { spec: 'none', doc: 'host MSI vector index that fired; host receiver only', note: 'host receiver' },
    wire: { spec: 'none', doc: 'host vector index the relay delivered; EP-to-host only', note: 'EP→host' },
  },
  run: doorbellZero,
  budget: () => 120,
  docs: { lead: '`s 0`' },
});
