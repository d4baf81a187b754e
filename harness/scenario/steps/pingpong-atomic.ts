/** pingpong-atomic: ntb_pingpong rings the peer from an hrtimer, i.e. in atomic context on the EP. */
import { z } from 'zod';
import { pingpong } from './clients.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';

const schema = stepSchema(
  'pingpong-atomic',
  { duration: z.number().positive().default(5).describe('seconds'), delay_ms: z.number().int().min(0).default(10) },
  'run ntb_pingpong on both sides: its hrtimer rings the peer doorbell under a spinlock on the EP',
);
export type PingpongStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    pings: { spec: 'value > 0', doc: 'ntb_pingpong count on the EP after the run' },
  },
  run: pingpong,
  budget: (s) => s.duration + 120,
});
