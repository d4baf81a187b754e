/** spad: scratchpads written on one side, read on the other. */
import { z } from 'zod';
import { spad } from './data.ts';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';

const schema = stepSchema(
  'spad',
  { direction: direction.default('both'), count: z.number().int().min(1).max(64).optional().describe('default: every spad') },
  'write peer scratchpads on one side, read them on the other',
);
export type SpadStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    spad: { spec: 'w', doc: 'scratchpad k read on the receiver after the writer wrote w into peer0/spad<k>', note: 'the value written into peer0/spad k' },
  },
  run: spad,
  budget: () => 300,
});
