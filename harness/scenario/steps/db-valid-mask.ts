/** db-valid-mask: what each side's NTB core says its valid doorbells are. */
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { dbValidMask } from './link.ts';

const schema = stepSchema('db-valid-mask', {}, "read ntb_tool's db_valid_mask on both sides");
export type DbValidMaskStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    db_valid_mask: { spec: 'mask(N - 2)', doc: "ntb_tool's db_valid_mask on this side (N = Nh on the host, Ne on the EP)", note: 'per side' },
  },
  run: dbValidMask,
  budget: () => 60,
});
