/**
 * Compares two finished runs check by check: what regressed, what got fixed, what appeared or went
 * away, which splats are new, which steps got slower or faster. Known issues are applied to both runs
 * first, so a triaged failure is XFAIL on both sides and never reads as news.
 */
import { normalizeTitle } from '../detect/patterns.ts';
import type { CellResult, RunResult, Status } from '../results/model.ts';
import { applyKnownIssues, findIssue, type KnownIssue, type KnownIssues } from './known-issues.ts';

const PASSING: Status[] = ['PASS', 'XFAIL', 'XPASS'];
const FAILING: Status[] = ['FAIL', 'ERROR'];

export type ChangeKind =
  /** PASS/XFAIL/XPASS → FAIL/ERROR: exits 1. */
  | 'regression'
  /** FAIL/ERROR → PASS/XPASS. */
  | 'fixed'
  /** XFAIL → PASS/XPASS: a kernel gained the fix for a known behaviour. */
  | 'gained-fix'
  /** A flip of a check a known-issues entry marks intermittent. */
  | 'intermittent'
  /** Anything else (PASS → XFAIL, FAIL → ERROR, → SKIP, ...). */
  | 'changed';

export interface StatusChange {
  kind: ChangeKind;
  cell: string;
  /** `<step>.<check id>`, `<step>` for a step without checks, `interop.<...>` for an interop group. */
  check: string;
  base: Status;
  new: Status;
  /** The new run's message (the failure text, the known issue). */
  message?: string;
  issue?: { reason: string; link?: string; where: string };
}

export interface Presence {
  cell: string;
  /** Missing for a whole cell. */
  check?: string;
  status: Status;
}

export interface SplatChange {
  /** Normalized title (harness/detect/patterns.ts). */
  title: string;
  guest: string;
  /** Where it showed: "cell step". */
  where: string[];
  expected: boolean;
}

export interface TimingChange {
  cell: string;
  step: string;
  baseMs: number;
  newMs: number;
  /** (new - base) / base. */
  ratio: number;
}

export interface Comparison {
  base: RunSummary;
  new: RunSummary;
  changes: StatusChange[];
  newCells: Presence[];
  missingCells: Presence[];
  newChecks: Presence[];
  missingChecks: Presence[];
  newSplats: SplatChange[];
  goneSplats: SplatChange[];
  timing: TimingChange[];
  /** How many checks were compared and kept their status. */
  unchanged: number;
  regressions: number;
  exitCode: 0 | 1;
}

export interface RunSummary {
  scenario: string;
  startedAt: string;
  status: Status;
  totals: Record<Status, number>;
  cells: number;
}

export interface CompareOptions {
  known?: KnownIssues;
  /** Report a step whose duration changed by more than this fraction (0.5 = 50%). */
  timingThreshold?: number;
  /** ... and by at least this many milliseconds (short steps are noisy). */
  timingMinMs?: number;
}

/** Every status of a run keyed `cell \0 check`, in the run's order. */
function statusesOf(run: RunResult): Map<string, { cell: string; check: string; status: Status; message?: string }> {
  const out = new Map<string, { cell: string; check: string; status: Status; message?: string }>();
  for (const cell of run.cells) {
    for (const step of cell.steps) {
      if (step.checks.length === 0) out.set(`${cell.id}\0${step.id}`, { cell: cell.id, check: step.id, status: step.status, message: step.message });
      for (const check of step.checks) out.set(`${cell.id}\0${step.id}.${check.id}`, { cell: cell.id, check: `${step.id}.${check.id}`, status: check.status, message: check.message });
    }
  }
  for (const g of run.interop.groups) {
    const check = `interop.${g.step ? `${g.step}.` : ''}${g.direction}.${g.receiver}-${g.variant}`;
    out.set(`interop\0${check}`, { cell: 'interop', check, status: g.status, message: g.message });
  }
  return out;
}

function classify(base: Status, now: Status): ChangeKind {
  if (PASSING.includes(base) && FAILING.includes(now)) return 'regression';
  if (FAILING.includes(base) && (now === 'PASS' || now === 'XPASS')) return 'fixed';
  if (base === 'XFAIL' && (now === 'PASS' || now === 'XPASS')) return 'gained-fix';
  return 'changed';
}

function splatsOf(run: RunResult): Map<string, SplatChange> {
  const out = new Map<string, SplatChange>();
  for (const cell of run.cells) {
    for (const step of cell.steps) {
      for (const splat of step.splats) {
        // Normalized again: results written by an older harness may carry noisier titles.
        const title = normalizeTitle(splat.title);
        const key = `${splat.guest}\0${title}`;
        const entry = out.get(key) ?? { title, guest: splat.guest, where: [], expected: true };
        entry.where.push(`${cell.id} ${step.id}`);
        entry.expected &&= splat.expected;
        out.set(key, entry);
      }
    }
  }
  return out;
}

function timingOf(base: CellResult, now: CellResult, options: Required<Pick<CompareOptions, 'timingThreshold' | 'timingMinMs'>>): TimingChange[] {
  const out: TimingChange[] = [];
  for (const step of now.steps) {
    const before = base.steps.find((s) => s.id === step.id);
    // Steps that did not run (SKIP, ERROR before starting) have no meaningful duration.
    if (!before || before.durationMs <= 0 || step.durationMs <= 0) continue;
    const delta = step.durationMs - before.durationMs;
    if (Math.abs(delta) < options.timingMinMs || Math.abs(delta) / before.durationMs <= options.timingThreshold) continue;
    out.push({ cell: now.id, step: step.id, baseMs: before.durationMs, newMs: step.durationMs, ratio: delta / before.durationMs });
  }
  // Infrastructure phases (boot, per-guest boot, teardown, ...) when both runs recorded them; steps are above.
  const phases = (cell: CellResult) => {
    const sums = new Map<string, number>();
    for (const p of cell.phases ?? []) if (!p.name.startsWith('step:')) sums.set(`phase ${p.name}${p.guest ? ` ${p.guest}` : ''}`, (sums.get(`phase ${p.name}${p.guest ? ` ${p.guest}` : ''}`) ?? 0) + p.ms);
    return sums;
  };
  const before = phases(base);
  for (const [name, ms] of phases(now)) {
    const old = before.get(name);
    if (!old || old <= 0 || ms <= 0) continue;
    const delta = ms - old;
    if (Math.abs(delta) < options.timingMinMs || Math.abs(delta) / old <= options.timingThreshold) continue;
    out.push({ cell: now.id, step: name, baseMs: old, newMs: ms, ratio: delta / old });
  }
  return out;
}

function summary(run: RunResult): RunSummary {
  return { scenario: run.scenario, startedAt: run.startedAt, status: run.status, totals: run.totals, cells: run.cells.length };
}

function issueRef(issue: KnownIssue | undefined): StatusChange['issue'] {
  return issue ? { reason: issue.reason, ...(issue.link ? { link: issue.link } : {}), where: issue.where } : undefined;
}

export function compareRuns(baseRun: RunResult, newRun: RunResult, options: CompareOptions = {}): Comparison {
  const known = options.known;
  const withKnown = (run: RunResult): RunResult => ({ ...run, cells: run.cells.map((cell) => applyKnownIssues(cell, run.scenario, known)) });
  const base = withKnown(baseRun);
  const now = withKnown(newRun);
  const before = statusesOf(base);
  const after = statusesOf(now);
  const baseCells = new Set(base.cells.map((c) => c.id));
  const newCells = new Set(now.cells.map((c) => c.id));

  const changes: StatusChange[] = [];
  const newChecks: Presence[] = [];
  const missingChecks: Presence[] = [];
  let unchanged = 0;
  for (const [key, entry] of after) {
    const old = before.get(key);
    if (!old) {
      // A whole new cell is reported once, as a cell.
      if (entry.cell === 'interop' || baseCells.has(entry.cell)) newChecks.push({ cell: entry.cell, check: entry.check, status: entry.status });
      continue;
    }
    if (old.status === entry.status) {
      unchanged++;
      continue;
    }
    const issue = findIssue(known, { scenario: now.scenario, cell: entry.cell, check: entry.check });
    const kind: ChangeKind = issue?.intermittent ? 'intermittent' : classify(old.status, entry.status);
    changes.push({ kind, cell: entry.cell, check: entry.check, base: old.status, new: entry.status, ...(entry.message ? { message: entry.message } : {}), ...(issue ? { issue: issueRef(issue) } : {}) });
  }
  for (const [key, entry] of before) {
    if (!after.has(key) && (entry.cell === 'interop' || newCells.has(entry.cell))) missingChecks.push({ cell: entry.cell, check: entry.check, status: entry.status });
  }

  const baseSplats = splatsOf(base);
  const newSplats = splatsOf(now);
  const timingOptions = { timingThreshold: options.timingThreshold ?? 0.5, timingMinMs: options.timingMinMs ?? 2000 };
  const timing = now.cells.flatMap((cell) => {
    const old = base.cells.find((c) => c.id === cell.id);
    return old ? timingOf(old, cell, timingOptions) : [];
  });
  const regressions = changes.filter((c) => c.kind === 'regression').length;
  return {
    base: summary(baseRun),
    new: summary(newRun),
    changes,
    newCells: now.cells.filter((c) => !baseCells.has(c.id)).map((c) => ({ cell: c.id, status: c.status })),
    missingCells: base.cells.filter((c) => !newCells.has(c.id)).map((c) => ({ cell: c.id, status: c.status })),
    newChecks,
    missingChecks,
    newSplats: [...newSplats].filter(([key]) => !baseSplats.has(key)).map(([, s]) => s),
    goneSplats: [...baseSplats].filter(([key]) => !newSplats.has(key)).map(([, s]) => s),
    timing,
    unchanged,
    regressions,
    exitCode: regressions > 0 ? 1 : 0,
  };
}
