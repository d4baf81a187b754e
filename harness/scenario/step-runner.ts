/**
 * Runs one step inside its frame: kmsg begin/end markers and taint reads on both guests, a console
 * mark for splats, a time budget, then judgement of every measurement and of the splats. A step that
 * throws keeps what it measured so far and gets an ERROR check; the cell goes on.
 */
import { HarnessError, isHarnessError } from '../errors.ts';
import { stepMarker } from '../ntb/markers.ts';
import { judge } from './expect.ts';
import type { Rig } from './rig.ts';
import { judgeSplats, taintFlags, type Splat, type TaintChange, type TaintUnknown } from './splats.ts';
import { worst } from './status.ts';
import { Out } from './steps/util.ts';
import type { CheckResult, Measurement, StepResult, Value } from './types.ts';
import { matchCondition } from './when.ts';

export interface StepSpec {
  id: string;
  type: string;
  when?: Parameters<typeof matchCondition>[0];
}

function errorText(error: unknown): string {
  if (isHarnessError(error)) return [error.message, error.excerpt?.split('\n').slice(-3).join(' | ')].filter(Boolean).join(' — ');
  return (error as Error)?.message ?? String(error);
}

async function withBudget<T>(promise: Promise<T>, ms: number, stepId: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HarnessError(`step ${stepId} did not finish within ${Math.round(ms / 1000)} s`, { code: 'STEP_TIMEOUT', kind: 'infra', phase: 'step' })), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes the marker on both guests; per side the taint value, or why it could not be read. */
async function markers(rig: Rig, which: 'begin' | 'end', stepId: string): Promise<Record<string, number | string>> {
  const taint: Record<string, number | string> = {};
  for (const side of ['ep', 'host'] as const) {
    // A failed read is not "no taint": it becomes an ERROR check (judgeSplats) with this reason.
    taint[side] = await stepMarker(rig.guest(side), which, stepId, rig.ms(15_000)).then(
      (value) => (Number.isInteger(value) ? value : `/proc/sys/kernel/tainted ${which === 'begin' ? 'before' : 'after'} the step was not a number`),
      (error: unknown) => `the ${which}-of-step marker and taint read failed: ${errorText(error)}`,
    );
  }
  return taint;
}

export interface StepOutcome {
  result: StepResult;
  error?: unknown;
}

export async function runStep(rig: Rig, step: StepSpec, budgetSeconds: number, body: (out: Out) => Promise<void>): Promise<StepOutcome> {
  const { ctx, scenario, cellId } = rig;
  const started = Date.now();
  ctx.emit({ kind: 'step-start', cell: cellId, step: step.id, type: step.type });

  const when = matchCondition(step.when, rig.caps);
  if ('unknown' in when || !when.match) {
    const message = 'unknown' in when ? `cannot decide whether to run: ${when.unknown}` : 'skipped: the cell does not match the step\'s `when`';
    const result: StepResult = { id: step.id, type: step.type, status: 'unknown' in when ? 'ERROR' : 'SKIP', durationMs: 0, values: {}, checks: [], splats: [], message };
    ctx.emit({ kind: 'step-end', cell: cellId, step: result });
    return { result };
  }

  const taintBefore = await markers(rig, 'begin', step.id);
  const consoleMark = ctx.consoleMark();
  const measurements: Measurement[] = [];
  let error: unknown;
  try {
    await withBudget(body(new Out(measurements)), rig.ms(budgetSeconds * 1000), step.id);
  } catch (caught) {
    error = caught;
  }
  const taintAfter = await markers(rig, 'end', step.id);
  // Splats that could not be collected are an ERROR with the reason, never "no splats".
  const gaps: string[] = [];
  let splats: Splat[] = [];
  try {
    splats = await ctx.splatsSince(consoleMark, step.id);
  } catch (caught) {
    gaps.push(`reading the consoles failed: ${errorText(caught)}`);
  }
  gaps.push(...(ctx.splatGaps?.(consoleMark, step.id) ?? []));

  const judgeCtx = { expectations: scenario.expect, caps: rig.caps, params: rig.params };
  const checks: CheckResult[] = measurements.map((m) => judge(m, step, judgeCtx));
  const taint: Record<string, TaintChange & { flags: string }> = {};
  const taintJudged: Record<string, TaintChange | TaintUnknown> = {};
  for (const side of ['ep', 'host'] as const) {
    const [before, after] = [taintBefore[side]!, taintAfter[side]!];
    const name = rig.guest(side).name;
    if (typeof before === 'string' || typeof after === 'string') {
      taintJudged[name] = { error: [before, after].filter((v) => typeof v === 'string').join('; ') };
    } else if (before !== after) {
      taint[name] = { before, after, flags: taintFlags(after) };
      taintJudged[name] = { before, after };
    }
  }
  const splatJudgement = judgeSplats(step.id, splats, scenario.splats, rig.caps, taintJudged, gaps);
  checks.push(...splatJudgement.checks);
  if (error !== undefined) checks.push({ id: 'step', check: 'step', status: 'ERROR', value: null, message: errorText(error) });

  for (const check of checks) ctx.emit({ kind: 'check', cell: cellId, step: step.id, check });
  for (const splat of splatJudgement.records) ctx.emit({ kind: 'splat', cell: cellId, step: step.id, splat });

  const values: Record<string, Value> = {};
  for (const check of checks) values[check.id] = check.value;
  const result: StepResult = {
    id: step.id,
    type: step.type,
    status: checks.length > 0 ? worst(checks.map((c) => c.status)) : 'PASS',
    durationMs: Date.now() - started,
    values,
    checks,
    splats: splatJudgement.records,
    ...(Object.keys(taint).length ? { taint } : {}),
    ...(error !== undefined ? { message: errorText(error) } : {}),
  };
  ctx.emit({ kind: 'step-end', cell: cellId, step: result });
  return { result, error };
}
