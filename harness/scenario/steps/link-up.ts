/** link-up: enable the NTB link on both sides and wait for the peer. */
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { linkUp } from './link.ts';

const schema = stepSchema('link-up', {}, 'enable the NTB link with ntb_tool on both sides and wait for peer0/link = Y');
export type LinkUpStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    link: { spec: 'true', doc: "ntb_tool's peer0/link reads Y on this side", note: 'per side' },
    wire_link: { spec: 'true', doc: 'the relay reports the RC function plugged' },
  },
  run: linkUp,
  budget: () => 120,
});
