/**
 * The bisect oracle: one scenario run's results → the commit's verdict, with `git bisect run`'s exit
 * codes (0 = old term, 1 = new term, 125 = skip).
 *
 * Regression bisect (terms good/bad): any FAIL → bad; otherwise PASS, XFAIL and XPASS → good (XFAIL is
 * behaviour the scenario expects of that kernel, so it is no regression).
 * First-fixed bisect (`--fixed`, terms broken/fixed): every judged check PASS or XPASS (the spec
 * behaviour) → fixed; any FAIL or XFAIL (a known old behaviour still showing) → broken.
 * In both: an ERROR (build failure, boot failure, lost guest), or nothing judged at all → skip.
 */
import type { RunResult, Status } from '../results/model.ts';

export type Verdict = 'old' | 'new' | 'skip';

export interface OracleOptions {
  /** `<step id>.<check>`: only that check decides. */
  check?: string;
  fixed: boolean;
}

export interface OracleResult {
  verdict: Verdict;
  /** git bisect run's convention. */
  code: 0 | 1 | 125;
  /** The statuses that decided, and why. */
  reason: string;
  statuses: Status[];
}

/** The statuses an oracle looks at: one check's (all its labels), or every check and check-less step. */
export function relevantStatuses(run: Pick<RunResult, 'cells'>, check?: string): Status[] {
  const statuses: Status[] = [];
  for (const cell of run.cells) {
    if (check) {
      const dot = check.lastIndexOf('.');
      const [stepId, name] = [check.slice(0, dot), check.slice(dot + 1)];
      const step = cell.steps.find((s) => s.id === stepId);
      if (!step) {
        // The cell never got to the step (boot or build failure): that is an error, not a verdict.
        if (cell.status === 'ERROR') statuses.push('ERROR');
        continue;
      }
      const checks = step.checks.filter((c) => c.check === name || c.id === name);
      if (checks.length > 0) statuses.push(...checks.map((c) => c.status));
      else if (step.status === 'ERROR') statuses.push('ERROR');
      continue;
    }
    if (cell.steps.length === 0) statuses.push(cell.status);
    for (const step of cell.steps) {
      if (step.checks.length > 0) statuses.push(...step.checks.map((c) => c.status));
      else statuses.push(step.status);
    }
  }
  return statuses;
}

export function judgeRun(run: Pick<RunResult, 'cells'>, options: OracleOptions): OracleResult {
  const statuses = relevantStatuses(run, options.check);
  const count = (s: Status) => statuses.filter((x) => x === s).length;
  const summary = (['PASS', 'FAIL', 'XFAIL', 'XPASS', 'ERROR', 'SKIP'] as Status[])
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`)
    .join(', ');
  const what = options.check ? `${options.check}: ${summary || 'not observed'}` : summary || 'nothing judged';
  const result = (verdict: Verdict, why: string): OracleResult => ({ verdict, code: verdict === 'old' ? 0 : verdict === 'new' ? 1 : 125, reason: `${why} (${what})`, statuses });

  if (options.fixed) {
    // FAIL or XFAIL is a decided "still broken", even when another check errored.
    if (count('FAIL') + count('XFAIL') > 0) return result('old', 'broken');
    if (count('ERROR') > 0) return result('skip', 'error');
    if (count('PASS') + count('XPASS') === 0) return result('skip', 'nothing judged');
    return result('new', 'fixed');
  }
  if (count('FAIL') > 0) return result('new', 'bad');
  if (count('ERROR') > 0) return result('skip', 'error');
  if (count('PASS') + count('XFAIL') + count('XPASS') === 0) return result('skip', 'nothing judged');
  return result('old', 'good');
}
