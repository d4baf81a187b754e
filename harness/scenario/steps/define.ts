/**
 * The shape of a registry entry: everything about one step type in one object (docs/steps.md). The
 * scenario schema, the check catalogue, the executor, the interop evaluation and the README's table
 * are all read off these entries, so a step type cannot be half-registered.
 */
import { z } from 'zod';
import { condition } from '../schema-parts.ts';
import type { Rig } from '../rig.ts';
import type { Out } from './util.ts';

/** One check a step produces: its default spec (an expression, expr.ts) and what it measures. */
export interface CheckDef {
  spec: string;
  doc: string;
  /** Extra words for the README table, after the spec (who observes it, what `true` means). */
  note?: string;
}

export type Fn = 'pci-epf-vntb' | 'pci-epf-test' | 'pci-epf-ntb';

/**
 * Whether a step type can run for a function. pci-epf-ntb's two hosts see the same NTB device API that
 * vntb's pair sees (ntb_hw_epf on a host, ntb_tool, ntb_perf, ntb_transport), so a step written for
 * vntb's NTB runs on the bridge too unless its entry lists the functions it applies to explicitly.
 */
export function stepApplies(entry: { appliesTo: readonly Fn[] }, fn: Fn): boolean {
  if (entry.appliesTo.includes(fn)) return true;
  return fn === 'pci-epf-ntb' && entry.appliesTo.includes('pci-epf-vntb');
}

/** Directions a doorbell or data step can run in. */
export const direction = z.enum(['ep-to-host', 'host-to-ep', 'both']);

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
export const BASE_FIELDS: readonly string[] = Object.keys(base);

/** A step's zod schema: the type literal, the common fields and its own. Strict: unknown keys are errors. */
export const stepSchema = <T extends string, S extends z.ZodRawShape>(type: T, shape: S, doc: string) =>
  z.strictObject({ type: z.literal(type), ...base, ...shape }).describe(doc);

type AnySchema = ReturnType<typeof stepSchema<string, z.ZodRawShape>>;

/** What an implementation receives: the parsed step, its id filled in by the loader. */
export type StepOf<S extends z.ZodType> = z.output<S> & { id: string };

/**
 * Single-bit rings whose receiver observations must not depend on the sender (interop.ts). `param` is
 * the check param naming the bit; `ignore` lists sender-side checks that are no receiver observation.
 */
export interface InteropRule {
  param: string;
  ignore: readonly string[];
}

export interface StepEntry<S extends AnySchema = AnySchema> {
  type: z.output<S>['type'];
  schema: S;
  /** Functions the step makes sense for; the schema rejects it in a scenario for another. */
  appliesTo: readonly Fn[];
  checks: Record<string, CheckDef>;
  run: (rig: Rig, step: StepOf<S>, out: Out) => Promise<void>;
  /** Seconds the step may take before it is abandoned as hung (multiplied by the timeout scale). */
  budget: (step: StepOf<S>) => number;
  /** perf's own `timeout` is ntb_perf's hang limit, not the step's budget. */
  ownTimeout?: boolean;
  /** Fields holding expressions, checked against the known parameters when the scenario loads. */
  expressions?: readonly string[];
  interop?: InteropRule;
  /** README table: the lead before the checks ("per bit i") and a note after the parameters. */
  docs?: { lead?: string; params?: string };
}

export function defineStep<S extends AnySchema>(entry: Omit<StepEntry<S>, 'type'>): StepEntry<S> {
  return { type: entry.schema.shape.type.value as z.output<S>['type'], ...entry };
}
