/** pcitest-rw: read, write and copy transfers of the given sizes. */
import { z } from 'zod';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { pcitestRw } from './pcitest.ts';

const schema = stepSchema(
  'pcitest-rw',
  {
    sizes: z.array(z.number().int().positive()).min(1).default([1, 1024, 65536]),
    ops: z.array(z.enum(['read', 'write', 'copy'])).min(1).default(['read', 'write', 'copy']),
  },
  '`pcitest -r/-w/-c -s size`',
);
export type PcitestRwStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-test'],
  checks: {
    ok: { spec: 'true', doc: '`pcitest -r/-w/-c -s size` printed OKAY', note: 'per op and size' },
    witness_agree: { spec: 'true', doc: "relay's per-vector counts equal the /proc/interrupts deltas over the step" },
  },
  run: pcitestRw,
  budget: (s) => 120 * s.sizes.length,
});
