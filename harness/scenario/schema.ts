/**
 * The scenario format: the single source of truth for validation, TypeScript types and the JSON Schema
 * editors use (scenarioJsonSchema()). Cross-references are checked here too, so every mistake comes back
 * with a path the loader turns into file:line:col.
 */
import { z } from 'zod';
import { BUILTIN_CAPABILITIES } from '../ntb/capability-table.ts';
import { BUILTIN_PARAMS, checkDef } from './checks.ts';
import { exprCalls, exprNames, parseExpr } from './expr.ts';
import { FUNCTIONS } from './expr-eval.ts';
import { BUILTIN_KERNELS } from './kernels.ts';
import { expandMatrix } from './matrix.ts';
import { condition, epfFunction, expression, guestTopology, kernelVariant, probe, variantName, type Condition } from './schema-parts.ts';
import { stepSchema, type Step } from './schema-steps.ts';
import { stepEntry } from './steps/index.ts';
import { stepApplies } from './steps/define.ts';

const knownValue = z.strictObject({
  when: condition,
  value: expression.describe('what kernels matching `when` are known to show'),
  xfail: z.string().min(1).describe('why: an expected failure, reported XFAIL when observed'),
});

const expectation = z.union([
  expression,
  z.strictObject({
    spec: expression.optional().describe('what the spec says; defaults to the check\'s built-in spec'),
    known: z.array(knownValue).default([]),
    skip: z.array(z.strictObject({ when: condition, reason: z.string().min(1) })).default([]),
  }),
]);

const expectedSplat = z.strictObject({
  step: z.union([z.string(), z.array(z.string()).min(1)]).describe('id(s) of the step(s) the splat is attributed to; "*" for any step'),
  guest: z.enum(['ep', 'host']).optional(),
  pattern: z.string().min(1).describe('substring of the splat title or excerpt'),
  when: condition.optional().describe('cells where the splat is expected (XFAIL); elsewhere it is a FAIL'),
  requires: condition.optional().describe('preconditions for the splat to be observable; SKIP when unmet'),
  optional: z.boolean().default(false).describe('the splat may or may not appear (rate-limited reports): its absence is no XPASS'),
  xfail: z.string().min(1),
});

const matrix = z.strictObject({
  ep: z.array(variantName).min(1).describe('EP kernel variants'),
  host: z.array(variantName).min(1).describe('host kernel variants'),
  include: z.array(z.strictObject({ ep: variantName, host: variantName })).default([]),
  exclude: z.array(z.strictObject({ ep: variantName.optional(), host: variantName.optional() })).default([]),
});

const baseScenario = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'scenario names are lower-case letters, digits, "_" and "-"'),
  description: z.string().optional(),
  kernels: z.record(variantName, kernelVariant).default({}).describe('variants besides (or overriding) the built-in old, stock, new'),
  topology: z
    .preprocess(
      // `topology: bridge` is short for `topology: {layout: bridge}`.
      (value) => (typeof value === 'string' ? { layout: value } : value),
      z.strictObject({
      layout: z
        .enum(['pair', 'bridge'])
        .default('pair')
        .describe('pair: an EP guest and a host joined by one link; bridge: an EP guest with two controllers, each linked to its own host (pci-epf-ntb between host and host2)'),
      ep: guestTopology('arm64').prefault({}),
      host: guestTopology('x86_64').prefault({}),
      timeout_scale: z.number().positive().default(1).describe('multiplies every timeout, on top of the harness\'s TCG scale'),
      epc_params: z
        .string()
        .regex(/^[\w=,. -]*$/, 'module parameters: name=value separated by spaces')
        .default('')
        .describe('parameters for our EPC driver in the EP (e.g. "free_bars=0x3f" offers all six BARs; the default 0/2/4 is the i.MX8-like layout vntb needs)'),
      }),
    )
    .prefault({}),
  matrix,
  function: epfFunction,
  capabilities: z.record(z.string().regex(/^(ep|host)\.[a-z0-9_]+$/, 'capability keys are ep.<name> or host.<name>'), probe).default({}),
  params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.number().int()).default({}),
  steps: z.array(stepSchema).min(1),
  expect: z.record(z.string(), expectation).default({}).describe('keyed by <step id>.<check>'),
  splats: z.array(expectedSplat).default([]),
});

type Raw = z.output<typeof baseScenario>;
type Ctx = z.RefinementCtx;
type Path = (string | number)[];

function checkCondition(cond: Condition | undefined, path: Path, caps: Set<string>, ctx: Ctx): void {
  for (const side of ['ep', 'host'] as const) {
    for (const name of Object.keys(cond?.[side] ?? {})) {
      if (!caps.has(`${side}.${name}`)) ctx.addIssue({ code: 'custom', message: `unknown capability ${side}.${name}`, path: [...path, side, name], params: { atKey: true } });
    }
  }
}

function checkExpression(text: string, path: Path, params: Set<string>, ctx: Ctx): void {
  let expr;
  try {
    expr = parseExpr(text);
  } catch {
    return; // already reported by the field itself
  }
  for (const use of exprNames(expr)) {
    if (!params.has(use.name)) ctx.addIssue({ code: 'custom', message: `unknown parameter '${use.name}' (known: ${[...params].join(', ')})`, path, params: { offset: use.pos } });
  }
  for (const call of exprCalls(expr)) {
    const fn = Object.hasOwn(FUNCTIONS, call.name) ? FUNCTIONS[call.name] : undefined;
    if (!fn) ctx.addIssue({ code: 'custom', message: `unknown function '${call.name}' (known: ${Object.keys(FUNCTIONS).join(', ')})`, path, params: { offset: call.pos } });
    else if (call.arity < fn.arity[0] || call.arity > fn.arity[1]) ctx.addIssue({ code: 'custom', message: `${call.name}() takes ${fn.arity[0]}..${fn.arity[1]} argument(s)`, path, params: { offset: call.pos } });
  }
}

function crossCheck(s: Raw, ctx: Ctx): void {
  const caps = new Set([...BUILTIN_CAPABILITIES, ...Object.keys(s.capabilities)]);
  const params = new Set([...Object.keys(BUILTIN_PARAMS), ...Object.keys(s.params)]);
  const variants = new Set([...Object.keys(BUILTIN_KERNELS), ...Object.keys(s.kernels)]);

  for (const axis of ['ep', 'host'] as const) {
    s.matrix[axis].forEach((name, i) => {
      if (!variants.has(name)) ctx.addIssue({ code: 'custom', message: `unknown kernel variant '${name}' (known: ${[...variants].join(', ')})`, path: ['matrix', axis, i] });
    });
  }
  s.matrix.include.forEach((cell, i) => {
    for (const axis of ['ep', 'host'] as const) {
      if (!variants.has(cell[axis])) ctx.addIssue({ code: 'custom', message: `unknown kernel variant '${cell[axis]}'`, path: ['matrix', 'include', i, axis] });
    }
  });
  if (expandMatrix(s).length === 0) {
    const product = s.matrix.ep.length * s.matrix.host.length;
    ctx.addIssue({ code: 'custom', message: `the excludes remove all ${product} cell${product === 1 ? '' : 's'} of the matrix: nothing would run`, path: ['matrix', 'exclude'], params: { atKey: true } });
  }

  // A scenario parameter named like a built-in one would silently win over the measured value.
  for (const name of Object.keys(s.params)) {
    if (Object.hasOwn(BUILTIN_PARAMS, name)) {
      ctx.addIssue({ code: 'custom', message: `parameter '${name}' shadows the built-in parameter ${name} (${BUILTIN_PARAMS[name]}); choose another name`, path: ['params', name], params: { atKey: true } });
    }
  }

  // pci-epf-ntb joins two hosts through an EP with two controllers; the other functions have one host.
  const bridged = s.topology.layout === 'bridge';
  if (bridged !== (s.function.type === 'pci-epf-ntb')) {
    const message = bridged
      ? `topology 'bridge' needs function pci-epf-ntb (${s.function.type} serves one host)`
      : `function pci-epf-ntb needs 'topology: bridge' (an EP with two controllers and two hosts)`;
    ctx.addIssue({ code: 'custom', message, path: bridged ? ['topology'] : ['function', 'type'], params: { atKey: true } });
  }

  const stepTypes = new Map<string, string>([['setup', 'setup']]);
  s.steps.forEach((step, i) => {
    const id = step.id ?? step.type;
    if (stepTypes.has(id)) {
      const why = id === 'setup' ? `'setup' is the implicit first step's id` : `duplicate step id '${id}'${step.id ? '' : ' (give each step of the same type an `id`)'}`;
      ctx.addIssue({ code: 'custom', message: why, path: ['steps', i, step.id ? 'id' : 'type'] });
    }
    stepTypes.set(id, step.type);
    checkCondition(step.when, ['steps', i, 'when'], caps, ctx);
    const entry = stepEntry(step.type);
    if (entry && !stepApplies(entry, s.function.type)) {
      ctx.addIssue({ code: 'custom', message: `step type '${step.type}' does not apply to function ${s.function.type}`, path: ['steps', i, 'type'] });
    }
    for (const key of entry?.expressions ?? []) {
      if (key in step) checkExpression((step as Record<string, unknown>)[key] as string, ['steps', i, key], params, ctx);
    }
  });

  for (const [key, exp] of Object.entries(s.expect)) {
    const dot = key.lastIndexOf('.');
    const [stepId, check] = [key.slice(0, dot), key.slice(dot + 1)];
    const type = stepTypes.get(stepId);
    if (dot < 1 || !type) {
      ctx.addIssue({ code: 'custom', message: `expect key '${key}' must be <step id>.<check> of a listed step (steps: ${[...stepTypes.keys()].join(', ')})`, path: ['expect', key], params: { atKey: true } });
      continue;
    }
    if (!checkDef(type, check)) {
      ctx.addIssue({ code: 'custom', message: `step '${stepId}' (${type}) has no check '${check}'`, path: ['expect', key], params: { atKey: true } });
    }
    const values = params;
    if (typeof exp === 'string') {
      checkExpression(exp, ['expect', key], values, ctx);
      continue;
    }
    if (exp.spec !== undefined) checkExpression(exp.spec, ['expect', key, 'spec'], values, ctx);
    exp.known.forEach((known, i) => {
      checkCondition(known.when, ['expect', key, 'known', i, 'when'], caps, ctx);
      checkExpression(known.value, ['expect', key, 'known', i, 'value'], values, ctx);
    });
    exp.skip.forEach((skip, i) => checkCondition(skip.when, ['expect', key, 'skip', i, 'when'], caps, ctx));
  }

  s.splats.forEach((splat, i) => {
    const named = typeof splat.step === 'string' ? [splat.step] : splat.step;
    named.forEach((id, k) => {
      const path = typeof splat.step === 'string' ? ['splats', i, 'step'] : ['splats', i, 'step', k];
      if (id !== '*' && !stepTypes.has(id)) ctx.addIssue({ code: 'custom', message: `unknown step '${id}'`, path });
    });
    checkCondition(splat.when, ['splats', i, 'when'], caps, ctx);
    checkCondition(splat.requires, ['splats', i, 'requires'], caps, ctx);
  });
}

export const scenarioSchema = baseScenario.superRefine(crossCheck).transform((s) => ({
  ...s,
  steps: s.steps.map((step) => ({ ...step, id: step.id ?? step.type })) as Step[],
}));

export type Scenario = z.output<typeof scenarioSchema> & { file?: string };
export type Expectation = Exclude<Raw['expect'][string], string>;
export type ExpectedSplat = Raw['splats'][number];
export type Matrix = Raw['matrix'];

/** JSON Schema (draft 2020-12) of the scenario files, for editor completion and validation. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(baseScenario, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
