/** doorbell-clear: db accumulates rung bits and `c` clears only the given ones. */
import { expression } from '../schema-parts.ts';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';
import { doorbellClear } from './doorbell.ts';

const schema = stepSchema(
  'doorbell-clear',
  {
    direction: direction.default('both'),
    bits: expression.default('bit(0) | bit(1)').describe('bits rung one after the other'),
    clear: expression.default('bit(0)').describe('bits then cleared'),
  },
  'check that db accumulates bits and db clear clears only the given bits',
);
export type DoorbellClearStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    db_before_clear: { spec: 'B', doc: "receiver's db after ringing each bit of B, one ring at a time" },
    db_after_clear: { spec: 'R', doc: "receiver's db after `c C` (R = B without C)", note: 'R = B without C' },
  },
  run: doorbellClear,
  budget: () => 120,
  expressions: ['bits', 'clear'],
});
