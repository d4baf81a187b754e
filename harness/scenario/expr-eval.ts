/** Evaluation of the expectation language (see expr.ts for the grammar). */
import { ExprError, exprNames, parseExpr, type Expr } from './expr.ts';

export type ExprValue = number | boolean | null | number[];
export type ExprEnv = Readonly<Record<string, ExprValue | undefined>>;

type Fn = { arity: [number, number]; apply: (args: ExprValue[], pos: number) => ExprValue; doc: string };

function finite(value: ExprValue, pos: number, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ExprError(`${what} must be a number, got ${show(value)}`, pos);
  return value;
}

function int(value: ExprValue, pos: number, what = 'argument'): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ExprError(`${what} must be an integer, got ${show(value)}`, pos);
  return value;
}

function nonNegative(value: ExprValue, pos: number): bigint {
  const n = int(value, pos);
  if (n < 0) throw new ExprError(`bit operations need a non-negative integer, got ${n}`, pos);
  return BigInt(n);
}

function safe(value: bigint, pos: number): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ExprError('result does not fit in 53 bits', pos);
  return Number(value);
}

function setBits(x: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; x > 0n; i++, x >>= 1n) if (x & 1n) out.push(i);
  return out;
}

/** The whole function table; adding one here is the only way to extend the language. */
export const FUNCTIONS: Readonly<Record<string, Fn>> = {
  mask: { arity: [1, 1], doc: 'mask(n) = 2^n - 1 (bits 0..n-1)', apply: ([n], p) => safe((1n << nonNegative(n!, p)) - 1n, p) },
  bit: { arity: [1, 1], doc: 'bit(i) = 2^i', apply: ([i], p) => safe(1n << nonNegative(i!, p), p) },
  bits: { arity: [1, 1], doc: 'bits(x) = list of set bit positions, ascending', apply: ([x], p) => setBits(nonNegative(x!, p)) },
  lowest: { arity: [1, 1], doc: 'lowest(x) = x with only its lowest set bit kept', apply: ([x], p) => safe(nonNegative(x!, p) & -nonNegative(x!, p), p) },
  lsb: { arity: [1, 1], doc: 'lsb(x) = position of the lowest set bit (none for 0)', apply: ([x], p) => setBits(nonNegative(x!, p))[0] ?? null },
  msb: { arity: [1, 1], doc: 'msb(x) = position of the highest set bit (none for 0)', apply: ([x], p) => setBits(nonNegative(x!, p)).at(-1) ?? null },
  popcount: { arity: [1, 1], doc: 'popcount(x) = number of set bits', apply: ([x], p) => setBits(nonNegative(x!, p)).length },
  min: { arity: [1, 16], doc: 'min(a, b, ...)', apply: (args, p) => Math.min(...args.map((a) => int(a, p))) },
  max: { arity: [1, 16], doc: 'max(a, b, ...)', apply: (args, p) => Math.max(...args.map((a) => int(a, p))) },
  len: {
    arity: [1, 1],
    doc: 'len(list) = number of items',
    apply: ([list], p) => {
      if (!Array.isArray(list)) throw new ExprError(`len() needs a list, got ${show(list!)}`, p);
      return list.length;
    },
  },
};

export function show(value: ExprValue | undefined): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'none';
  if (Array.isArray(value)) return `[${value.map((v) => show(v)).join(', ')}]`;
  if (typeof value === 'number' && value > 9) return `${value} (0x${value.toString(16)})`;
  return String(value);
}

export function valuesEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => valuesEqual(v, b[i]));
  return a === b;
}

function arithmetic(op: string, a: number, b: number, pos: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
    case '%':
      if (b === 0) throw new ExprError('division by zero', pos);
      return op === '/' ? Math.trunc(a / b) : a % b;
    default:
      throw new ExprError(`unknown operator ${op}`, pos);
  }
}

function bitwise(op: string, a: bigint, b: bigint, pos: number): number {
  if ((op === '<<' || op === '>>') && b > 64n) throw new ExprError('shift count above 64', pos);
  const result = op === '|' ? a | b : op === '&' ? a & b : op === '^' ? a ^ b : op === '<<' ? a << b : a >> b;
  return safe(result, pos);
}

function binary(expr: Extract<Expr, { type: 'binary' }>, env: ExprEnv): ExprValue {
  const { op, pos } = expr;
  if (op === '&&' || op === '||') {
    const left = evaluate(expr.left, env);
    if (typeof left !== 'boolean') throw new ExprError(`'${op}' needs booleans, got ${show(left)}`, pos);
    if (op === '&&' ? !left : left) return left;
    const right = evaluate(expr.right, env);
    if (typeof right !== 'boolean') throw new ExprError(`'${op}' needs booleans, got ${show(right)}`, pos);
    return right;
  }
  const left = evaluate(expr.left, env);
  const right = evaluate(expr.right, env);
  if (op === '==') return valuesEqual(left, right);
  if (op === '!=') return !valuesEqual(left, right);
  if (op === '<' || op === '<=' || op === '>' || op === '>=') {
    // Measured rates (ntb_perf's MB/s, kbit/s) are not whole numbers: comparisons take any finite number.
    const a = finite(left, pos, 'comparison operand');
    const b = finite(right, pos, 'comparison operand');
    return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  }
  if (['|', '&', '^', '<<', '>>'].includes(op)) return bitwise(op, nonNegative(left, pos), nonNegative(right, pos), pos);
  // A list plus a number shifts every item: `bits(B) + 2` is the list of wire slots of B.
  if (Array.isArray(left) && (op === '+' || op === '-')) return left.map((item) => arithmetic(op, item, int(right, pos), pos));
  return arithmetic(op, int(left, pos, 'operand'), int(right, pos, 'operand'), pos);
}

export function evaluate(expr: Expr, env: ExprEnv): ExprValue {
  switch (expr.type) {
    case 'num':
    case 'bool':
      return expr.value;
    case 'none':
      return null;
    case 'name': {
      // Own properties only: `constructor` must not reach Object.prototype.
      const value = Object.hasOwn(env, expr.name) ? env[expr.name] : undefined;
      if (value === undefined) throw new ExprError(`'${expr.name}' is not defined here`, expr.pos);
      return value;
    }
    case 'list':
      return expr.items.map((item) => int(evaluate(item, env), item.pos, 'list item'));
    case 'unary': {
      const value = evaluate(expr.arg, env);
      if (expr.op === '!') {
        if (typeof value !== 'boolean') throw new ExprError(`'!' needs a boolean, got ${show(value)}`, expr.pos);
        return !value;
      }
      return -int(value, expr.pos, 'operand');
    }
    case 'binary':
      return binary(expr, env);
    case 'call': {
      const fn = Object.hasOwn(FUNCTIONS, expr.name) ? FUNCTIONS[expr.name] : undefined;
      if (!fn) throw new ExprError(`unknown function '${expr.name}'`, expr.pos);
      const [lo, hi] = fn.arity;
      if (expr.args.length < lo || expr.args.length > hi) throw new ExprError(`${expr.name}() takes ${lo === hi ? lo : `${lo}..${hi}`} argument(s)`, expr.pos);
      return fn.apply(
        expr.args.map((arg) => evaluate(arg, env)),
        expr.pos,
      );
    }
  }
}

/** Parses and evaluates in one go (tests and one-off uses). */
export function evalExpr(source: string, env: ExprEnv): ExprValue {
  return evaluate(parseExpr(source), env);
}

/** True when the expression reads the measured `value`, i.e. is a predicate rather than an expected value. */
export function isPredicate(expr: Expr): boolean {
  return exprNames(expr).some((use) => use.name === 'value');
}
