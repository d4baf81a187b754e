/**
 * Judging the splats of one step against the scenario's `splats:` entries.
 *   a splat no applicable entry expects                 → FAIL (an unexpected splat fails the run)
 *   an entry applies (`when`) and its splat appeared    → XFAIL: the known bug reproduced
 *   an entry applies but its splat did not appear       → XPASS: the known bug did not reproduce
 *     (the kernel may be fixed after all, or the trigger missed; visible, fails only under --strict)
 *   an entry's `requires` is unmet (e.g. no CONFIG_DEBUG_ATOMIC_SLEEP) → SKIP: nothing to observe
 *   no entry applies and nothing appeared               → PASS (the spec: no splat)
 * An `optional` entry (or one for "*", every step) only excuses its splat: a rate-limited report may
 * land in any step or none, so its absence is neither XPASS nor worth a PASS row.
 * New serious taint flags with no splat on that console are a FAIL too: the console missed something.
 * Not knowing is an ERROR, never a silent pass: splats that could not be collected (a console that never
 * showed the step's end marker, a failing read) and a taint that could not be read each get an ERROR
 * check with the reason, and no absence is claimed (no PASS, no XPASS) for that step.
 */
import type { ExpectedSplat } from './schema.ts';
import type { CheckResult, SplatRecord } from '../results/model.ts';
import { matchCondition, type Capabilities } from './when.ts';

/** What the console monitor reports; harness/detect/console.ts's Splat has this shape. */
export interface Splat {
  guest: string;
  /** Normalized (harness/detect/patterns.ts normalizeTitle). */
  title: string;
  /** As printed; optional for callers that only have a title. */
  rawTitle?: string;
  kind: string;
  excerpt: string;
  step?: string;
}

export interface TaintChange {
  before: number;
  after: number;
}

/** A guest whose /proc/sys/kernel/tainted could not be read around the step, and why. */
export interface TaintUnknown {
  error: string;
}

const TAINT_LETTERS = 'PFSRMBUDAWCIOELKXTNJ';
/** Flags a kernel sets when something went wrong at run time (not O/E from loading modules). */
const SERIOUS = ['M', 'B', 'D', 'W', 'L'];

export function taintFlags(value: number): string {
  return [...TAINT_LETTERS].filter((_, bit) => value & (1 << bit)).join('');
}

export function newSeriousTaint(change: TaintChange): string {
  const added = change.after & ~change.before;
  return [...taintFlags(added)].filter((flag) => SERIOUS.includes(flag)).join('');
}

function matchesEntry(splat: Splat, entry: ExpectedSplat): boolean {
  return (entry.guest === undefined || entry.guest === splat.guest) && (splat.title.includes(entry.pattern) || splat.excerpt.includes(entry.pattern));
}

export interface SplatJudgement {
  checks: CheckResult[];
  records: SplatRecord[];
}

/** Whether the entry is about this step: by id, in a list of ids, or "*" for every step. */
function covers(entry: ExpectedSplat, stepId: string): boolean {
  const ids = typeof entry.step === 'string' ? [entry.step] : entry.step;
  return ids.includes('*') || ids.includes(stepId);
}

/** Entries that promise a splat in this very step; only those make an absent splat an XPASS or a clean step a PASS row. */
function firm(entry: ExpectedSplat, stepId: string): boolean {
  const ids = typeof entry.step === 'string' ? [entry.step] : entry.step;
  return !entry.optional && ids.includes(stepId);
}

/**
 * `taint` has, per guest, the change (only when the value changed) or why it could not be read;
 * `problems` says why the splat list may be incomplete.
 */
export function judgeSplats(
  stepId: string,
  splats: Splat[],
  entries: ExpectedSplat[],
  caps: Capabilities,
  taint: Record<string, TaintChange | TaintUnknown> = {},
  problems: string[] = [],
): SplatJudgement {
  const complete = problems.length === 0;
  const mine = entries.filter((entry) => covers(entry, stepId));
  const applies = (entry: ExpectedSplat) => {
    const when = matchCondition(entry.when, caps);
    return 'match' in when && when.match;
  };
  const records: SplatRecord[] = splats.map((splat) => ({
    guest: splat.guest,
    title: splat.title,
    ...(splat.rawTitle !== undefined ? { rawTitle: splat.rawTitle } : {}),
    kind: splat.kind,
    excerpt: splat.excerpt,
    expected: mine.some((entry) => applies(entry) && matchesEntry(splat, entry)),
  }));
  const checks: CheckResult[] = [];

  for (const entry of mine) {
    const label = `${entry.guest ?? 'any'}: ${entry.pattern}`;
    const seen = splats.filter((splat) => matchesEntry(splat, entry)).map((s) => s.title);
    const base = { id: `splats[${label}]`, check: 'splats', value: seen };
    const requires = matchCondition(entry.requires, caps);
    const when = matchCondition(entry.when, caps);
    if ('unknown' in requires || 'unknown' in when) {
      checks.push({ ...base, status: 'ERROR', message: `cannot decide: ${'unknown' in requires ? requires.unknown : (when as { unknown: string }).unknown}` });
    } else if (!requires.match) {
      checks.push({ ...base, status: 'SKIP', message: `precondition for "${entry.pattern}" not met in this cell` });
    } else if (when.match) {
      if (seen.length > 0) checks.push({ ...base, status: 'XFAIL', message: entry.xfail });
      else if (firm(entry, stepId) && complete) checks.push({ ...base, status: 'XPASS', message: `the known splat "${entry.pattern}" did not appear (${entry.xfail})` });
    } else if (seen.length === 0 && firm(entry, stepId) && complete) {
      checks.push({ ...base, status: 'PASS', expected: [] });
    }
    // A splat seen where its entry does not apply is reported as unexpected below.
  }

  const unexpected = records.filter((record) => !record.expected);
  if (unexpected.length > 0) {
    checks.push({
      id: 'splats[unexpected]',
      check: 'splats',
      value: unexpected.map((r) => `${r.guest}: ${r.title}`),
      expected: [],
      status: 'FAIL',
      message: `unexpected splat${unexpected.length > 1 ? 's' : ''}: ${unexpected.map((r) => `${r.guest}: ${r.title}`).join('; ')}`,
    });
  }

  if (!complete) {
    checks.push({ id: 'splats[collect]', check: 'splats', value: null, status: 'ERROR', message: `splats of this step may be missing: ${problems.join('; ')}` });
  }

  for (const [guest, change] of Object.entries(taint)) {
    if ('error' in change) {
      checks.push({ id: `taint[${guest}]`, check: 'taint', value: null, status: 'ERROR', message: `cannot check ${guest}'s taint: ${change.error}` });
      continue;
    }
    const flags = newSeriousTaint(change);
    if (!flags || splats.some((splat) => splat.guest === guest)) continue;
    checks.push({
      id: `taint[${guest}]`,
      check: 'taint',
      value: change.after,
      expected: change.before,
      status: 'FAIL',
      message: `${guest} kernel newly tainted ${flags} but no splat was seen on its console`,
    });
  }
  return { checks, records };
}
