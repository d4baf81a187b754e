/** doorbell-multi: several bits in one peer_db write, EP to host. */
import { z } from 'zod';
import { expression } from '../schema-parts.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { doorbellMulti } from './doorbell.ts';
import { ringChecks } from './ring-checks.ts';

const schema = stepSchema(
  'doorbell-multi',
  { direction: z.literal('ep-to-host').default('ep-to-host'), bits: expression.describe('mask rung in one peer_db write, e.g. "bit(0) | bit(3)"') },
  'ring several bits from the EP at once',
);
export type DoorbellMultiStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    ...ringChecks,
    db: { spec: 'B', doc: "host's db after the EP rang all bits of B at once" },
    vectors: { spec: 'bits(B)', doc: 'vectors passed to ntb_db_event on the host, sorted' },
    msi_index: { spec: 'bits(B) + 2', doc: 'host MSI vector indices that fired, sorted' },
    wire: { spec: 'bits(B) + 2', doc: 'host vector indices the relay delivered, sorted' },
    db_after_clear: { spec: '0', doc: "host's db after `c B`" },
  },
  run: doorbellMulti,
  budget: () => 120,
  expressions: ['bits'],
  docs: { lead: 'EP→host at once' },
});
