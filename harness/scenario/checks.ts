/**
 * The checks each step type produces and the spec each defaults to, as the step registry declares them
 * (steps/). The schema uses this table to reject `expect` keys that name no check, the executor to judge
 * a check the scenario did not declare. Specs are expressions (expr.ts); one that reads `value` is a
 * predicate, any other an expected value.
 */
import type { CheckDef } from './steps/define.ts';
import { SETUP, STEP_ENTRIES } from './steps/index.ts';

export type { CheckDef };

type Catalogue = Record<string, Record<string, CheckDef>>;

/** Step type → its checks, read off the registry entries. */
export const CHECKS: Catalogue = Object.fromEntries([SETUP, ...STEP_ENTRIES].map((e) => [e.type, e.checks]));

/** Checks every step may produce, whatever its type. */
export const COMMON_CHECKS: Record<string, CheckDef> = {
  splats: { spec: '[]', doc: 'kernel splats seen on the consoles during the step (judged by `splats:`)', note: 'judged by `splats:`' },
  taint: { spec: 'true', doc: 'no new taint flag (W, D, L, ...) without a splat explaining it', note: 'no new W/D/L/B/M taint without a splat' },
};

export function checkDef(stepType: string, check: string): CheckDef | undefined {
  const own = <T>(table: Record<string, T> | undefined, key: string) => (table && Object.hasOwn(table, key) ? table[key] : undefined);
  return own(own(CHECKS, stepType), check) ?? own(COMMON_CHECKS, check);
}

/** Parameter names expressions may read, besides the scenario's own `params`. */
export const BUILTIN_PARAMS: Record<string, string> = {
  Nh: 'MSI vectors the host driver got',
  Ne: "vntb's configured db_count",
  N: 'Nh when the observation is on the host, Ne on the EP',
  i: 'the doorbell bit rung (doorbell-sweep)',
  B: 'the bits rung (doorbell-multi, doorbell-clear)',
  C: 'the bits cleared (doorbell-clear)',
  R: 'B without C (doorbell-clear)',
  k: 'scratchpad index',
  w: 'value written (spad)',
  n: 'BAR or MSI number (pcitest)',
  size: 'transfer size in bytes',
  class_code: 'configured 24-bit class code',
  value: 'the measured value (makes the expression a predicate)',
};
