/** perf: ntb_perf between the two sides; under TCG a functional check, a timeout is a hang. */
import { z } from 'zod';
import { perf } from './clients.ts';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';

const schema = stepSchema(
  'perf',
  {
    direction: direction.default('both'),
    total_order: z.number().int().min(10).max(30).default(20),
    chunk_order: z.number().int().min(10).max(30).default(16),
    use_dma: z.boolean().default(false),
    max_mw_size: z.number().int().positive().optional(),
  },
  'run ntb_perf (throughput recorded; a timeout is a hang)',
);
export type PerfStep = StepOf<typeof schema>;

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    completed: { spec: 'true', doc: 'ntb_perf run finished within the timeout (no hang)' },
    mbps: { spec: 'value > 0', doc: 'ntb_perf throughput, MBytes/s (a functional check under TCG)' },
  },
  run: perf,
  // The step's `timeout` is ntb_perf's hang limit; the budget leaves room for both directions.
  budget: (s) => 2 * (s.timeout ?? 300) + 120,
  ownTimeout: true,
  docs: { params: 'timeout = the hang limit' },
});
