/**
 * The known-issues file: failures a maintainer has triaged, so a nightly run or a comparison reports
 * them as known (XFAIL, with the reason and a link) instead of as news. `intermittent: true` marks a
 * flaky check: its flips between runs are not regressions. Errors are `file:line:col` like scenarios.
 *
 *   issues:
 *     - cell: "ep-old__*"                 # glob on the cell id (default *)
 *       check: "perf.completed[*]"        # glob on <step>.<check id> (default *)
 *       reason: ntb_perf times out on old vntb under TCG
 *       link: https://bugzilla.kernel.org/...
 *       intermittent: true
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { HarnessError } from '../errors.ts';
import { locate, positionOf, renderPosition } from '../scenario/position.ts';
import type { CellResult, CheckResult, Status, StepResult } from '../results/model.ts';
import { worst } from '../results/status.ts';
import { globMatch } from './glob.ts';

const statusList = z.union([z.enum(['FAIL', 'ERROR']), z.array(z.enum(['FAIL', 'ERROR'])).min(1)]);

const issueSchema = z
  .strictObject({
    scenario: z.string().min(1).optional(),
    cell: z.string().min(1).optional(),
    check: z.string().min(1).optional(),
    /** Only an unexpected-splat check whose every splat title matches (a glob on "guest: title"). */
    splat: z.string().min(1).optional(),
    status: statusList.default('FAIL'),
    reason: z.string().min(1),
    link: z.string().min(1).optional(),
    intermittent: z.boolean().default(false),
  })
  // An entry naming nothing would turn every failure of every run into a known one.
  .refine((issue) => issue.cell !== undefined || issue.check !== undefined || issue.splat !== undefined, { message: "an entry needs a 'cell', 'check' or 'splat' pattern" })
  .transform((issue) => ({ ...issue, cell: issue.cell ?? '*', check: issue.check ?? '*' }));

const fileSchema = z.strictObject({ issues: z.array(issueSchema) });

export type KnownIssue = z.output<typeof issueSchema> & { where: string };

export interface KnownIssues {
  file: string;
  issues: KnownIssue[];
}

export function parseKnownIssues(source: string, file = '<known-issues>'): KnownIssues {
  if (source.startsWith('\uFEFF')) source = source.slice(1);
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const render = (offset: number, message: string) => {
    const pos = positionOf(lineCounter, offset);
    return { ...pos, text: renderPosition(file, source, pos, message), message };
  };
  const invalid = (problems: ReturnType<typeof render>[]) =>
    new HarnessError(`invalid known-issues file ${file}: ${problems[0]!.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`, {
      code: 'KNOWN_ISSUES_INVALID',
      kind: 'input',
      phase: 'report',
      excerpt: problems
        .slice(0, 20)
        .map((p) => p.text)
        .join('\n'),
    });
  if (doc.errors.length > 0) throw invalid(doc.errors.map((e) => render(e.pos[0], `YAML ${e.code}: ${e.message.split('\n')[0]}`)));
  const data = doc.toJS({ maxAliasCount: 100 }) ?? { issues: [] };
  const result = fileSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : undefined;
      const located = locate(doc, issue.path, { key: keys?.[0] });
      const message =
        keys !== undefined
          ? `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`
          : issue.code === 'invalid_type' && located.missing.length > 0
            ? `missing required key '${String(located.missing[located.missing.length - 1])}'`
            : issue.message.replace(/^Invalid input: /, '');
      return render(located.offset, message);
    });
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw invalid(problems);
  }
  const issues = result.data.issues.map((issue, i) => {
    const pos = positionOf(lineCounter, locate(doc, ['issues', i]).offset);
    return { ...issue, where: `${file}:${pos.line}:${pos.col}` };
  });
  return { file, issues };
}

export async function loadKnownIssues(file: string): Promise<KnownIssues> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (cause) {
    throw new HarnessError(`cannot read known-issues file ${file}`, { code: 'KNOWN_ISSUES_NOT_FOUND', kind: 'input', phase: 'report', cause });
  }
  return parseKnownIssues(source, file);
}

function statuses(issue: KnownIssue): Status[] {
  return Array.isArray(issue.status) ? issue.status : [issue.status];
}

/** Where a status sits: the cell, `<step>.<check id>` (or `<step>` for a step without checks), the scenario. */
export interface Subject {
  scenario: string;
  cell: string;
  check: string;
  /** An unexpected-splat check's splats ("guest: title"). */
  splats?: string[];
}

/** The entry that covers `subject`, whatever its status (compare asks about intermittent flips). */
export function findIssue(known: KnownIssues | undefined, subject: Subject): KnownIssue | undefined {
  return known?.issues.find(
    (issue) =>
      (issue.scenario === undefined || globMatch(issue.scenario, subject.scenario)) &&
      globMatch(issue.cell, subject.cell) &&
      globMatch(issue.check, subject.check) &&
      (issue.splat === undefined || (subject.splats !== undefined && subject.splats.length > 0 && subject.splats.every((s) => globMatch(issue.splat!, s)))),
  );
}

export const KNOWN_PREFIX = 'known issue: ';

function knownMessage(issue: KnownIssue, original: string | undefined): string {
  return `${KNOWN_PREFIX}${issue.reason}${issue.link ? ` (${issue.link})` : ''}${original ? ` — was: ${original}` : ''}`;
}

function unexpectedSplats(check: CheckResult): string[] | undefined {
  return check.id === 'splats[unexpected]' && Array.isArray(check.value) ? check.value.map(String) : undefined;
}

/** A FAIL (or the entry's statuses) that an entry covers becomes XFAIL with the entry's reason. */
function judge(check: CheckResult, subject: Subject, known: KnownIssues): CheckResult {
  const issue = findIssue(known, subject);
  if (!issue || !statuses(issue).includes(check.status)) return check;
  return { ...check, status: 'XFAIL', message: knownMessage(issue, check.message) };
}

/**
 * A cell with the known issues applied: covered checks (and steps without checks) become XFAIL, step
 * and cell statuses are recomputed the way the executor computes them.
 */
export function applyKnownIssues(cell: CellResult, scenario: string, known: KnownIssues | undefined): CellResult {
  if (!known || known.issues.length === 0) return cell;
  let changed = false;
  const steps = cell.steps.map((step): StepResult => {
    if (step.checks.length === 0) {
      const judged = judge({ id: step.id, check: step.id, status: step.status, value: null, message: step.message }, { scenario, cell: cell.id, check: step.id }, known);
      if (judged.status === step.status) return step;
      changed = true;
      return { ...step, status: judged.status, message: judged.message };
    }
    const checks = step.checks.map((check) => judge(check, { scenario, cell: cell.id, check: `${step.id}.${check.id}`, splats: unexpectedSplats(check) }, known));
    if (checks.every((c, i) => c === step.checks[i])) return step;
    changed = true;
    // The step's status is the worst of its checks (step-runner.ts) unless it was set otherwise.
    const derived = step.status === worst(step.checks.map((c) => c.status));
    return { ...step, checks, status: derived ? worst(checks.map((c) => c.status)) : step.status };
  });
  if (!changed) return cell;
  return { ...cell, steps, status: worst(steps.map((s) => s.status)) };
}
