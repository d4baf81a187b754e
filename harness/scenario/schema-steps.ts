/** The typed steps a scenario lists. Each step's checks are in checks.ts; its code in steps/. */
import { z } from 'zod';
import { condition, expression, barNumber } from './schema-parts.ts';

const both = z.enum(['ep-to-host', 'host-to-ep', 'both']);

/** Fields every step has. */
const base = {
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'step ids are lower-case letters, digits, "_" and "-"')
    .optional()
    .describe('unique within the scenario; defaults to the type'),
  when: condition.optional().describe('run only in cells whose capabilities match; SKIP elsewhere'),
  timeout: z.number().positive().optional().describe('seconds, before timeout_scale'),
};

const step = <T extends string, S extends z.ZodRawShape>(type: T, shape: S, doc: string) =>
  z.strictObject({ type: z.literal(type), ...base, ...shape }).describe(doc);

export const stepSchemas = [
  step('link-up', {}, 'enable the NTB link with ntb_tool on both sides and wait for peer0/link = Y'),
  step('db-valid-mask', {}, "read ntb_tool's db_valid_mask on both sides"),
  step(
    'doorbell-sweep',
    {
      direction: both.default('both'),
      bits: expression.default('mask(min(Nh, Ne) - 2)').describe('mask of the bits to ring one at a time'),
    },
    "ring each bit, wait for the receiver's db, check db/vector/vector mask/MSI index/wire, clear it, check",
  ),
  step(
    'doorbell-multi',
    { direction: z.literal('ep-to-host').default('ep-to-host'), bits: expression.describe('mask rung in one peer_db write, e.g. "bit(0) | bit(3)"') },
    'ring several bits from the EP at once',
  ),
  step('doorbell-zero', { direction: both.default('both') }, 'write `s 0` to peer_db (no bit set) and check nothing is delivered'),
  step(
    'doorbell-clear',
    {
      direction: both.default('both'),
      bits: expression.default('bit(0) | bit(1)').describe('bits rung one after the other'),
      clear: expression.default('bit(0)').describe('bits then cleared'),
    },
    'check that db accumulates bits and db clear clears only the given bits',
  ),
  step('spad', { direction: both.default('both'), count: z.number().int().min(1).max(64).optional().describe('default: every spad') }, 'write peer scratchpads on one side, read them on the other'),
  step(
    'mw',
    {
      direction: both.default('both'),
      size: z.number().int().positive().default(4096),
      index: z.number().int().min(0).max(3).default(0),
    },
    'set up memory window translation with ntb_tool and compare data written on one side and read on the other',
  ),
  step(
    'perf',
    {
      direction: both.default('both'),
      total_order: z.number().int().min(10).max(30).default(20),
      chunk_order: z.number().int().min(10).max(30).default(16),
      use_dma: z.boolean().default(false),
      max_mw_size: z.number().int().positive().optional(),
    },
    'run ntb_perf (throughput recorded; a timeout is a hang)',
  ),
  step(
    'pingpong-atomic',
    { duration: z.number().positive().default(5).describe('seconds'), delay_ms: z.number().int().min(0).default(10) },
    'run ntb_pingpong on both sides: its hrtimer rings the peer doorbell under a spinlock on the EP',
  ),
  step('link-cycle', { times: z.number().int().min(1).max(20).default(2) }, 'EP `echo 0 > start` / `echo 1 > start`; the host sees the function leave and return'),
  step('pcitest-bar', { bars: z.union([z.literal('all'), z.array(barNumber).min(1)]).default('all') }, '`pcitest -b n` for every BAR the host sees'),
  step(
    'pcitest-msi',
    { vectors: z.union([z.literal('all'), z.array(z.number().int().min(1).max(32)).min(1)]).default('all') },
    '`pcitest -m n` for every MSI vector the function offers, with relay and /proc/interrupts witnesses',
  ),
  step(
    'pcitest-rw',
    {
      sizes: z.array(z.number().int().positive()).min(1).default([1, 1024, 65536]),
      ops: z.array(z.enum(['read', 'write', 'copy'])).min(1).default(['read', 'write', 'copy']),
    },
    '`pcitest -r/-w/-c -s size`',
  ),
] as const;

export const stepSchema = z.discriminatedUnion('type', stepSchemas);
export type Step = z.output<typeof stepSchema> & { id: string };
export type StepType = Step['type'];
export const STEP_TYPES: readonly string[] = stepSchemas.map((s) => s.shape.type.value);
