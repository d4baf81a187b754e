/** pcitest-msi: every MSI vector, with the relay and /proc/interrupts as witnesses. */
import { z } from 'zod';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { pcitestMsi } from './pcitest.ts';

const schema = stepSchema(
  'pcitest-msi',
  { vectors: z.union([z.literal('all'), z.array(z.number().int().min(1).max(32)).min(1)]).default('all') },
  '`pcitest -m n` for every MSI vector the function offers, with relay and /proc/interrupts witnesses',
);
export type PcitestMsiStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-test'],
  checks: {
    ok: { spec: 'true', doc: '`pcitest -m n` printed OKAY' },
    wire: { spec: 'n - 1', doc: 'host vector index the relay delivered' },
    irq: { spec: 'n - 1', doc: 'host vector index whose /proc/interrupts count rose' },
    witness_agree: { spec: 'true', doc: "relay's per-vector counts equal the /proc/interrupts deltas" },
  },
  run: pcitestMsi,
  budget: () => 600,
  docs: { lead: 'per n', params: '`all` or a list' },
});
