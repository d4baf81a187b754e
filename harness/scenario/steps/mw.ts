/** mw: memory window translation set up with ntb_tool, data compared across it. docs/ntb-tool.md */
import { z } from 'zod';
import { mw } from './data.ts';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';

const schema = stepSchema(
  'mw',
  {
    direction: direction.default('both'),
    size: z.number().int().positive().default(4096),
    index: z.number().int().min(0).max(3).default(0),
  },
  'set up memory window translation with ntb_tool and compare data written on one side and read on the other',
);
export type MwStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    hex_trans: {
      spec: 'true',
      doc: "the sender's ntb_tool accepts peer_mw_trans in its documented form `0xADDR:SIZE` (ntb_tool's usage comment, ntb_test.sh)",
      note: "the sender's ntb_tool accepts `peer_mw_trans` in its documented form `0xADDR:SIZE`; the detail has the exact write and errno (docs/ntb-tool.md)",
    },
    match: {
      spec: 'true',
      doc: 'data written through one side of the window read back identical on the other (mapped as decimal `ADDR:SIZE`)',
      note: 'both ways through the window mapped as decimal `ADDR:SIZE`, which every release accepts',
    },
  },
  run: mw,
  budget: () => 300,
  docs: { lead: 'per direction' },
});
