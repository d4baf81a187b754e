/** link-cycle: stop and start the EP function; works for either function. */
import { z } from 'zod';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { linkCycle } from './link.ts';

const schema = stepSchema('link-cycle', { times: z.number().int().min(1).max(20).default(2) }, 'EP `echo 0 > start` / `echo 1 > start`; the host sees the function leave and return');
export type LinkCycleStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb', 'pci-epf-test'],
  checks: {
    host_gone: { spec: 'true', doc: 'the host saw the function leave after `echo 0 > start`' },
    wire_down: { spec: 'true', doc: 'the relay reported the link down' },
    host_back: { spec: 'true', doc: 'the host saw the function return after `echo 1 > start`' },
    driver_bound: { spec: 'true', doc: 'the host driver bound again' },
    wire_up: { spec: 'true', doc: 'the relay reported the link up again' },
  },
  run: linkCycle,
  budget: (s) => 150 * s.times,
  docs: { lead: 'per cycle' },
});
