/**
 * Judging one measurement against the scenario's expectation:
 *   matches the spec, no known failure applies         → PASS
 *   a known failure applies and its value was observed  → XFAIL (the known old-kernel behaviour)
 *   a known failure applies but the spec was observed   → XPASS (visible; fails only under --strict)
 *   anything else                                       → FAIL, with expected and actual in the message
 *   the observation was impossible (no dyndbg, ...)     → SKIP;  the harness failed to observe → ERROR
 */
import { checkDef } from './checks.ts';
import { ExprError, parseExpr } from './expr.ts';
import { evaluate, isPredicate, show, valuesEqual, type ExprEnv, type ExprValue } from './expr-eval.ts';
import type { Expectation } from './schema.ts';
import type { CheckResult, Measurement, Status, Value } from '../results/model.ts';
import { matchCondition, type Capabilities } from './when.ts';

export interface JudgeContext {
  /** The scenario's `expect:` map. */
  expectations: Readonly<Record<string, string | Expectation>>;
  caps: Capabilities;
  /** Cell-level parameters: Nh, Ne, class_code and the scenario's own params. */
  params: Readonly<Record<string, number>>;
}

/** Checks that fall back to another check's expectation when the scenario does not declare their own. */
const FALLBACK: Record<string, string> = { vector_kprobe: 'vector' };

function expectationFor(ctx: JudgeContext, stepId: string, check: string): Expectation | undefined {
  const raw = ctx.expectations[`${stepId}.${check}`] ?? (FALLBACK[check] ? ctx.expectations[`${stepId}.${FALLBACK[check]}`] : undefined);
  if (raw === undefined) return undefined;
  return typeof raw === 'string' ? { spec: raw, known: [], skip: [] } : raw;
}

function asExprValue(value: Value): ExprValue | undefined {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return value as number[];
  return undefined;
}

interface Verdict {
  ok: boolean;
  /** What the expression stands for: its value, or the predicate text. */
  expected: Value;
}

function verdict(text: string, env: ExprEnv, measured: Value): Verdict {
  const expr = parseExpr(text);
  if (isPredicate(expr)) {
    if (env.value === undefined) throw new ExprError(`a predicate cannot judge ${JSON.stringify(measured)}`, 0);
    const result = evaluate(expr, env);
    if (typeof result !== 'boolean') throw new ExprError(`a predicate must give true or false, gave ${show(result)}`, 0);
    return { ok: result, expected: text };
  }
  const expected = evaluate(expr, env);
  return { ok: valuesEqual(expected, measured), expected };
}

function describe(value: Value): string {
  const expr = asExprValue(value);
  return expr === undefined ? JSON.stringify(value) : show(expr);
}

export function checkId(m: Pick<Measurement, 'check' | 'label'>): string {
  return m.label ? `${m.check}[${m.label}]` : m.check;
}

export function judge(m: Measurement, step: { id: string; type: string }, ctx: JudgeContext): CheckResult {
  const base = { id: checkId(m), check: m.check, on: m.on, params: m.params, value: m.value };
  const result = (status: Status, extra: Partial<CheckResult> = {}): CheckResult => {
    const message = [extra.message, m.detail].filter(Boolean).join(' — ') || undefined;
    return { ...base, status, ...extra, ...(message ? { message } : {}) };
  };
  if (m.error) return result('ERROR', { message: m.error });
  if (m.unavailable) return result('SKIP', { message: m.unavailable });

  const exp = expectationFor(ctx, step.id, m.check);
  const spec = exp?.spec ?? checkDef(step.type, m.check)?.spec;
  if (spec === undefined) return result('ERROR', { message: `no spec for check ${m.check} of ${step.type}` });

  const N = m.on === 'host' ? ctx.params.Nh : m.on === 'ep' ? ctx.params.Ne : undefined;
  const env: ExprEnv = { ...ctx.params, N, ...m.params, value: asExprValue(m.value) };

  for (const skip of exp?.skip ?? []) {
    const match = matchCondition(skip.when, ctx.caps, m.on);
    if ('match' in match && match.match) return result('SKIP', { message: skip.reason });
  }

  try {
    const specVerdict = verdict(spec, env, m.value);
    const known = [];
    for (const entry of exp?.known ?? []) {
      const match = matchCondition(entry.when, ctx.caps, m.on);
      if ('unknown' in match) return result('ERROR', { expected: specVerdict.expected, message: `cannot choose the expectation: ${match.unknown}` });
      if (match.match) known.push({ entry, verdict: verdict(entry.value, env, m.value) });
    }
    const expected = specVerdict.expected;
    if (known.length === 0) {
      return specVerdict.ok ? result('PASS', { expected }) : result('FAIL', { expected, message: `expected ${describe(expected)}, got ${describe(m.value)}` });
    }
    if (specVerdict.ok) {
      return result('XPASS', { expected, known: known[0]!.verdict.expected, message: `matches the spec although a known failure applies (${known.map((k) => k.entry.xfail).join('; ')})` });
    }
    const hit = known.find((k) => k.verdict.ok);
    if (hit) return result('XFAIL', { expected, known: hit.verdict.expected, message: hit.entry.xfail });
    const knownText = known.map((k) => describe(k.verdict.expected)).join(' or ');
    return result('FAIL', { expected, known: known[0]!.verdict.expected, message: `expected ${describe(expected)} (spec) or ${knownText} (known), got ${describe(m.value)}` });
  } catch (error) {
    if (error instanceof ExprError) return result('ERROR', { message: `expectation for ${step.id}.${m.check}: ${error.message}` });
    throw error;
  }
}
