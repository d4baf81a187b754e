/** The typed steps a scenario lists, assembled from the step registry (steps/index.ts). */
import { z } from 'zod';
import { STEP_ENTRIES } from './steps/index.ts';

type Entries = typeof STEP_ENTRIES;
// A mapped tuple keeps each schema's own type, so the union below stays discriminated and typed.
type SchemasOf<T extends readonly unknown[]> = { -readonly [K in keyof T]: T[K] extends { schema: infer S } ? S : never };
type Schemas = SchemasOf<Entries>;

export const stepSchemas = STEP_ENTRIES.map((e) => e.schema) as unknown as Schemas;

export const stepSchema = z.discriminatedUnion('type', stepSchemas);
export type Step = z.output<typeof stepSchema> & { id: string };
export type StepType = Step['type'];
export const STEP_TYPES: readonly string[] = STEP_ENTRIES.map((e) => e.type);
