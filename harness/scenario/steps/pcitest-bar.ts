/** pcitest-bar: pcitest's BAR test for every BAR the host sees. */
import { z } from 'zod';
import { barNumber } from '../schema-parts.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { pcitestBar } from './pcitest.ts';

const schema = stepSchema('pcitest-bar', { bars: z.union([z.literal('all'), z.array(barNumber).min(1)]).default('all') }, '`pcitest -b n` for every BAR the host sees');
export type PcitestBarStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-test'],
  checks: {
    ok: { spec: 'true', doc: '`pcitest -b n` printed OKAY', note: 'per BAR' },
  },
  run: pcitestBar,
  budget: () => 300,
  docs: { params: '`all` or a list' },
});
