/**
 * Runs one step inside its frame: kmsg begin/end markers and taint reads on both guests, a console
 * mark for splats, a time budget, then judgement of every measurement and of the splats. A step that
 * throws keeps what it measured so far and gets an ERROR check; the cell goes on.
 */
import { HarnessError, isHarnessError } from '../errors.ts';
import { stepMarker } from '../ntb/markers.ts';
import { judge } from './expect.ts';
import type { Rig } from './rig.ts';
import { judgeSplats, taintFlags, type TaintChange } from './splats.ts';
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

async function markers(rig: Rig, which: 'begin' | 'end', stepId: string): Promise<Record<string, number>> {
  const taint: Record<string, number> = {};
  for (const side of ['ep', 'host'] as const) {
    // A guest that stopped answering is reported by the step itself; the markers are best effort.
    taint[side] = await stepMarker(rig.guest(side), which, stepId, rig.ms(15_000)).catch(() => Number.NaN);
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
  const splats = await ctx.splatsSince(consoleMark, step.id).catch(() => []);

  const judgeCtx = { expectations: scenario.expect, caps: rig.caps, params: rig.params };
  const checks: CheckResult[] = measurements.map((m) => judge(m, step, judgeCtx));
  const taint: Record<string, TaintChange & { flags: string }> = {};
  for (const side of ['ep', 'host'] as const) {
    const [before, after] = [taintBefore[side]!, taintAfter[side]!];
    if (Number.isInteger(before) && Number.isInteger(after) && before !== after) taint[rig.guest(side).name] = { before, after, flags: taintFlags(after) };
  }
  const splatJudgement = judgeSplats(step.id, splats, scenario.splats, rig.caps, taint);
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
