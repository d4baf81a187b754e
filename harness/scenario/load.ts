/**
 * Reads a scenario: YAML (positions kept) → zod → Scenario. Every problem, syntax or schema, comes back
 * as one HarnessError(SCENARIO_INVALID) whose excerpt lists `file:line:col: message` with the line and a caret.
 */
import { readFile } from 'node:fs/promises';
import { isAlias, isCollection, isPair, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { HarnessError } from '../errors.ts';
import { locate, positionOf, renderPosition } from './position.ts';
import { scenarioSchema, type Scenario } from './schema.ts';

export interface ScenarioProblem {
  line: number;
  col: number;
  message: string;
  /** The rendered problem: position, message, source line, caret. */
  text: string;
}

interface FlatIssue {
  path: PropertyKey[];
  message: string;
  code: string;
  keys?: string[];
  params?: Record<string, unknown>;
}

/** How bad a union branch's issues are; the least bad branch is the one the user most likely meant. */
function branchScore(issues: z.core.$ZodIssue[]): number {
  return issues.reduce((score, issue) => {
    if (issue.path.length === 0 && (issue.code === 'invalid_type' || issue.code === 'invalid_union')) return score + 100;
    if (issue.code === 'unrecognized_keys') return score + 10 * issue.keys.length;
    return score + 1;
  }, 0);
}

function flatten(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): FlatIssue[] {
  return issues.flatMap((issue): FlatIssue[] => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0 && !('discriminator' in issue && issue.discriminator)) {
      const best = [...issue.errors].sort((a, b) => branchScore(a) - branchScore(b))[0]!;
      return flatten(best, path);
    }
    const flat: FlatIssue = { path, message: issue.message, code: issue.code };
    if (issue.code === 'unrecognized_keys') flat.keys = issue.keys;
    if (issue.code === 'custom') flat.params = issue.params;
    return [flat];
  });
}

function describeIssue(issue: FlatIssue, missing: (string | number)[]): string {
  if (issue.code === 'invalid_type' && missing.length > 0) return `missing required key '${String(missing[missing.length - 1])}'`;
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys!.length > 1 ? 's' : ''} ${issue.keys!.map((k) => `'${k}'`).join(', ')}`;
  return issue.message.replace(/^Invalid input: /, '');
}

function invalid(file: string, problems: ScenarioProblem[]): HarnessError {
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return new HarnessError(`invalid scenario ${file}: ${first.message}${more}`, {
    code: 'SCENARIO_INVALID',
    kind: 'input',
    phase: 'scenario',
    excerpt: problems
      .slice(0, 20)
      .map((p) => p.text)
      .join('\n'),
  });
}

/** Aliases yaml may expand in one document; a scenario needs a handful, a "billion laughs" needs millions. */
export const MAX_ALIAS_COUNT = 100;

/** Nodes a value stands for once its aliases are expanded (memoized per anchored node; a cycle counts once). */
function expandedSize(doc: Document, node: unknown, memo: Map<unknown, number>, active: Set<unknown>): number {
  if (isAlias(node)) node = node.resolve(doc);
  if (!node || typeof node !== 'object') return 1;
  const known = memo.get(node);
  if (known !== undefined) return known;
  if (active.has(node)) return 1;
  active.add(node);
  let size = 1;
  if (isCollection(node)) {
    for (const item of node.items) size += isPair(item) ? expandedSize(doc, item.key, memo, active) + expandedSize(doc, item.value, memo, active) : expandedSize(doc, item, memo, active);
  }
  active.delete(node);
  memo.set(node, size);
  return size;
}

/** Where yaml gave up expanding aliases: the first alias of the largest expansion, and how large it was. */
function worstAlias(doc: Document): { offset: number; source: string; size: number } {
  const memo = new Map<unknown, number>();
  let worst = { offset: 0, source: '', size: -1 };
  visit(doc, {
    Alias(_key, alias) {
      const size = expandedSize(doc, alias, memo, new Set());
      if (size > worst.size) worst = { offset: (alias as Node).range?.[0] ?? 0, source: alias.source, size };
    },
  });
  return worst;
}

/** Parses and validates scenario text; `file` is only used in messages. */
export function parseScenario(source: string, file = '<scenario>'): Scenario {
  // A UTF-8 byte order mark is not content: drop it so line 1's columns match what an editor shows.
  if (source.startsWith('\uFEFF')) source = source.slice(1);
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problem = (offset: number, message: string): ScenarioProblem => {
    const pos = positionOf(lineCounter, offset);
    return { ...pos, message, text: renderPosition(file, source, pos, message) };
  };

  if (doc.errors.length > 0) {
    throw invalid(
      file,
      doc.errors.map((error) => problem(error.pos[0], `YAML ${error.code}: ${error.message.split('\n')[0]}`)),
    );
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // yaml refuses documents whose aliases expand too far ("billion laughs"); say where, as bad input.
    if (!(error instanceof ReferenceError)) throw error;
    const worst = worstAlias(doc);
    const what = worst.size > 0 ? `alias *${worst.source} expands to ${worst.size} nodes` : 'aliases';
    throw invalid(file, [problem(worst.offset, `YAML ${what}: ${error.message} (at most ${MAX_ALIAS_COUNT} alias expansions)`)]);
  }
  const result = scenarioSchema.safeParse(data);
  if (result.success) return { ...result.data, file };

  const problems = flatten(result.error.issues).map((issue) => {
    const params = issue.params ?? {};
    const offset = typeof params.offset === 'number' ? params.offset : undefined;
    const located = locate(doc, issue.path, { key: issue.keys?.[0], atKey: params.atKey === true, offset });
    return problem(located.offset, describeIssue(issue, located.missing));
  });
  // Source order reads best: the user fixes the file top to bottom.
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  throw invalid(file, problems);
}

export async function loadScenario(file: string): Promise<Scenario> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (cause) {
    throw new HarnessError(`cannot read scenario ${file}`, { code: 'SCENARIO_NOT_FOUND', kind: 'input', phase: 'scenario', cause });
  }
  return parseScenario(source, file);
}
