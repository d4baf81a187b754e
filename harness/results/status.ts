/**
 * Status aggregation, KCIDB-style "worst wins": FAIL > ERROR > XPASS > XFAIL > PASS > SKIP.
 *
 * - A FAIL outranks an ERROR: a real finding matters more than an incomplete run (KCIDB orders them so).
 * - XPASS (a known old-kernel behaviour did not show) is reported and outranks PASS, but is not a failure
 *   unless `strict`; under `strict` it ranks and exits like a FAIL.
 * - XFAIL counts as a pass for the exit code: the scenario said the kernel would behave that way.
 * - SKIP only wins when nothing else happened.
 */
import type { Status } from './model.ts';

const RANK: Record<Status, number> = { FAIL: 6, ERROR: 5, XPASS: 4, XFAIL: 3, PASS: 2, SKIP: 1 };

export interface StatusOptions {
  strict?: boolean;
}

function rank(status: Status, options: StatusOptions): number {
  return status === 'XPASS' && options.strict ? RANK.FAIL + 0.5 : RANK[status];
}

export function worst(statuses: Iterable<Status>, options: StatusOptions = {}): Status {
  let result: Status = 'SKIP';
  for (const status of statuses) if (rank(status, options) > rank(result, options)) result = status;
  return result;
}

export function countStatuses(statuses: Iterable<Status>): Record<Status, number> {
  const totals: Record<Status, number> = { PASS: 0, FAIL: 0, XFAIL: 0, XPASS: 0, ERROR: 0, SKIP: 0 };
  for (const status of statuses) totals[status]++;
  return totals;
}

/** 0 pass (XFAIL included), 1 a test failed (or XPASS under strict), 2 infrastructure error/incomplete. 3 is bad input, raised before a run. */
export function exitCodeFor(statuses: Iterable<Status>, options: StatusOptions = {}): 0 | 1 | 2 {
  const totals = countStatuses(statuses);
  if (totals.FAIL > 0 || (options.strict && totals.XPASS > 0)) return 1;
  if (totals.ERROR > 0) return 2;
  return 0;
}

/** Counts as success for a CI dashboard. */
export function isPassing(status: Status, options: StatusOptions = {}): boolean {
  return status === 'PASS' || status === 'XFAIL' || status === 'SKIP' || (status === 'XPASS' && !options.strict);
}
