/**
 * Runs one step inside its frame: kmsg begin/end markers and taint reads on both guests, a console
 * mark for splats, a time budget (over it, the step is aborted and its guest commands killed), then
 * judgement of every measurement and of the splats. A step that throws keeps what it measured so far
 * and gets an ERROR check; the cell goes on unless the step left commands it could not stop.
 */
import { HarnessError, isHarnessError } from '../errors.ts';
import { stepMarker } from '../ntb/markers.ts';
import { judge } from './expect.ts';
import type { Rig } from './rig.ts';
import { judgeSplats, taintFlags, type Splat, type TaintChange, type TaintUnknown } from './splats.ts';
import { worst } from '../results/status.ts';
import { runInScope, StepScope } from './step-scope.ts';
import { Out } from './steps/util.ts';
import type { CheckResult, Measurement, StepResult, Value } from '../results/model.ts';
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

function oneLine(command: string): string {
  const line = command.trim().split('\n')[0] ?? '';
  return line.length > 100 ? `${line.slice(0, 97)}...` : line;
}

/**
 * Runs the body in `scope` against its time budget. When the budget runs out the scope is aborted
 * with a STEP_TIMEOUT that says what was running where: in-flight guest commands reject at once and
 * are killed, and the body's later guest commands fail without running.
 */
async function withBudget(scope: StepScope, body: () => Promise<void>, ms: number, stepId: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const now = Date.now();
      const running = [...scope.running].map((r) => `${r.guest}: $ ${oneLine(r.command)} (running ${((now - r.startedAt) / 1000).toFixed(1)} s)`);
      const what = running.length ? `stopped while running ${running.join('; ')}` : 'no guest command was running';
      const reason = new HarnessError(`step ${stepId} did not finish within ${Math.round(ms / 1000)} s; ${what}`, {
        code: 'STEP_TIMEOUT',
        kind: 'infra',
        phase: 'step',
        guest: [...scope.running][0]?.guest,
      });
      scope.abort(reason);
      reject(reason);
    }, ms);
  });
  try {
    await Promise.race([runInScope(scope, body), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** After an abort: how stopping the step's guest commands went; `unclean` if something may still run. */
async function cleanupAfterAbort(rig: Rig, scope: StepScope): Promise<{ note: string; unclean?: string }> {
  const outcomes = await scope.settle(rig.ms(30_000));
  if (outcomes.length === 0) return { note: '' };
  const failed = outcomes.filter((o) => !o.ok);
  const note = outcomes.map((o) => `${o.guest}: ${o.detail}`).join('; ');
  if (failed.length === 0) return { note };
  const unclean = `step ${scope.stepId} timed out and its commands could not be stopped (${failed.map((o) => `${o.guest}: $ ${oneLine(o.command)}: ${o.detail}`).join('; ')}); the guest is in an unknown state`;
  return { note, unclean };
}

/** Writes the marker on every guest of the cell; per guest name the taint value, or why it could not be read. */
async function markers(rig: Rig, which: 'begin' | 'end', stepId: string): Promise<Record<string, number | string>> {
  const taint: Record<string, number | string> = {};
  for (const guest of rig.guests()) {
    // A failed read is not "no taint": it becomes an ERROR check (judgeSplats) with this reason.
    taint[guest.name] = await stepMarker(guest, which, stepId, rig.ms(15_000)).then(
      (value) => (Number.isInteger(value) ? value : `/proc/sys/kernel/tainted ${which === 'begin' ? 'before' : 'after'} the step was not a number`),
      (error: unknown) => `the ${which}-of-step marker and taint read failed: ${errorText(error)}`,
    );
  }
  return taint;
}

export interface StepOutcome {
  result: StepResult;
  error?: unknown;
  /** Set when a timed-out step left commands that could not be stopped: the cell must not go on. */
  unclean?: string;
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
  const scope = new StepScope(step.id);
  // The body writes its own list, copied once it is over: an abandoned body adding later is ignored.
  const own: Measurement[] = [];
  try {
    await withBudget(scope, () => body(new Out(own)), rig.ms(budgetSeconds * 1000), step.id);
  } catch (caught) {
    error = caught;
  }
  measurements.push(...own.map((m) => (m.label ? { ...m, label: rig.relabel(m.label) } : m)));
  let cleanupNote = '';
  let unclean: string | undefined;
  if (scope.signal.aborted) ({ note: cleanupNote, unclean } = await cleanupAfterAbort(rig, scope));
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
  for (const { name } of rig.guests()) {
    const [before, after] = [taintBefore[name]!, taintAfter[name]!];
    if (typeof before === 'string' || typeof after === 'string') {
      taintJudged[name] = { error: [before, after].filter((v) => typeof v === 'string').join('; ') };
    } else if (before !== after) {
      taint[name] = { before, after, flags: taintFlags(after) };
      taintJudged[name] = { before, after };
    }
  }
  const splatJudgement = judgeSplats(step.id, splats, scenario.splats, rig.caps, taintJudged, gaps);
  checks.push(...splatJudgement.checks);
  const errorMessage = error === undefined ? undefined : [errorText(error), unclean ?? cleanupNote].filter(Boolean).join(' — ');
  if (errorMessage !== undefined) checks.push({ id: 'step', check: 'step', status: 'ERROR', value: null, message: errorMessage });

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
    ...(errorMessage !== undefined ? { message: errorMessage } : {}),
  };
  ctx.emit({ kind: 'step-end', cell: cellId, step: result });
  return { result, error, ...(unclean ? { unclean } : {}) };
}
