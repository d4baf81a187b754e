/**
 * The tiny expression language of scenario expectations: integers, booleans, `none`, lists, named
 * parameters, arithmetic/bitwise/comparison/logical operators and a fixed table of functions.
 * It is parsed, never `eval`ed. Evaluation lives in expr-eval.ts.
 *
 *   expr    := or
 *   or      := and ('||' and)*            and := cmp ('&&' cmp)*
 *   cmp     := bitor (('=='|'!='|'<'|'<='|'>'|'>=') bitor)?
 *   bitor   := bitxor ('|' bitxor)*        bitxor := bitand ('^' bitand)*
 *   bitand  := shift ('&' shift)*          shift := sum (('<<'|'>>') sum)*
 *   sum     := prod (('+'|'-') prod)*      prod := unary (('*'|'/'|'%') unary)*
 *   unary   := ('-'|'!') unary | primary
 *   primary := number | true | false | none | name | name '(' args ')' | '[' args ']' | '(' expr ')'
 */
export type Expr =
  | { type: 'num'; value: number; pos: number }
  | { type: 'bool'; value: boolean; pos: number }
  | { type: 'none'; pos: number }
  | { type: 'name'; name: string; pos: number }
  | { type: 'call'; name: string; args: Expr[]; pos: number }
  | { type: 'list'; items: Expr[]; pos: number }
  | { type: 'unary'; op: '-' | '!'; arg: Expr; pos: number }
  | { type: 'binary'; op: string; left: Expr; right: Expr; pos: number };

/** A syntax or evaluation error; `offset` is the 0-based column inside the expression text. */
export class ExprError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ExprError';
  }
}

interface Token {
  kind: 'num' | 'name' | 'op' | 'end';
  text: string;
  pos: number;
}

const OPERATORS = ['==', '!=', '<=', '>=', '<<', '>>', '&&', '||', '<', '>', '+', '-', '*', '/', '%', '|', '&', '^', '!', '(', ')', '[', ']', ','];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < source.length) {
    const rest = source.slice(pos);
    const space = /^\s+/.exec(rest);
    if (space) {
      pos += space[0].length;
      continue;
    }
    const num = /^(0x[0-9a-fA-F_]+|0b[01_]+|[0-9][0-9_]*)(?![A-Za-z0-9_])/.exec(rest);
    if (num) {
      tokens.push({ kind: 'num', text: num[0], pos });
      pos += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (name) {
      tokens.push({ kind: 'name', text: name[0], pos });
      pos += name[0].length;
      continue;
    }
    const op = OPERATORS.find((candidate) => rest.startsWith(candidate));
    if (!op) throw new ExprError(`unexpected character '${rest[0]}'`, pos);
    tokens.push({ kind: 'op', text: op, pos });
    pos += op.length;
  }
  tokens.push({ kind: 'end', text: '', pos: source.length });
  return tokens;
}

/** Binary operator levels, loosest first; each level is left-associative except comparisons. */
const LEVELS: string[][] = [['||'], ['&&'], ['==', '!=', '<', '<=', '>', '>='], ['|'], ['^'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/', '%']];
const COMPARISON_LEVEL = 2;

class Parser {
  private index = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    return this.tokens[this.index++]!;
  }

  private expect(text: string): Token {
    const token = this.next();
    if (token.text !== text) throw new ExprError(`expected '${text}' but found ${describe(token)}`, token.pos);
    return token;
  }

  parseAll(): Expr {
    const expr = this.level(0);
    const token = this.peek();
    if (token.kind !== 'end') throw new ExprError(`unexpected ${describe(token)}`, token.pos);
    return expr;
  }

  private level(depth: number): Expr {
    if (depth >= LEVELS.length) return this.unary();
    let left = this.level(depth + 1);
    for (;;) {
      const token = this.peek();
      if (token.kind !== 'op' || !LEVELS[depth]!.includes(token.text)) return left;
      this.next();
      const right = this.level(depth + 1);
      left = { type: 'binary', op: token.text, left, right, pos: token.pos };
      // `a < b < c` reads like maths but would compare a boolean: refuse it.
      if (depth === COMPARISON_LEVEL && LEVELS[depth]!.includes(this.peek().text)) {
        throw new ExprError('comparisons cannot be chained; use &&', this.peek().pos);
      }
    }
  }

  private unary(): Expr {
    const token = this.peek();
    if (token.kind === 'op' && (token.text === '-' || token.text === '!')) {
      this.next();
      return { type: 'unary', op: token.text, arg: this.unary(), pos: token.pos };
    }
    return this.primary();
  }

  private args(close: string): Expr[] {
    const items: Expr[] = [];
    if (this.peek().text === close) {
      this.next();
      return items;
    }
    for (;;) {
      items.push(this.level(0));
      const token = this.next();
      if (token.text === close) return items;
      if (token.text !== ',') throw new ExprError(`expected ',' or '${close}' but found ${describe(token)}`, token.pos);
    }
  }

  private primary(): Expr {
    const token = this.next();
    if (token.kind === 'num') return { type: 'num', value: parseNumber(token), pos: token.pos };
    if (token.kind === 'name') {
      if (token.text === 'true' || token.text === 'false') return { type: 'bool', value: token.text === 'true', pos: token.pos };
      if (token.text === 'none') return { type: 'none', pos: token.pos };
      if (this.peek().text === '(') {
        this.next();
        return { type: 'call', name: token.text, args: this.args(')'), pos: token.pos };
      }
      return { type: 'name', name: token.text, pos: token.pos };
    }
    if (token.text === '[') return { type: 'list', items: this.args(']'), pos: token.pos };
    if (token.text === '(') {
      const inner = this.level(0);
      this.expect(')');
      return inner;
    }
    throw new ExprError(`expected a value but found ${describe(token)}`, token.pos);
  }
}

function describe(token: Token): string {
  return token.kind === 'end' ? 'the end of the expression' : `'${token.text}'`;
}

function parseNumber(token: Token): number {
  const text = token.text.replace(/_/g, '');
  const value = text.startsWith('0b') ? parseInt(text.slice(2), 2) : Number(text);
  if (!Number.isSafeInteger(value)) throw new ExprError(`number ${token.text} is too large`, token.pos);
  return value;
}

/** Parses `source`; throws ExprError with the offending column. */
export function parseExpr(source: string): Expr {
  return new Parser(tokenize(source)).parseAll();
}

/** Every parameter name an expression reads, for load-time validation. */
export function exprNames(expr: Expr): Array<{ name: string; pos: number }> {
  switch (expr.type) {
    case 'name':
      return [{ name: expr.name, pos: expr.pos }];
    case 'call':
    case 'list':
      return (expr.type === 'call' ? expr.args : expr.items).flatMap(exprNames);
    case 'unary':
      return exprNames(expr.arg);
    case 'binary':
      return [...exprNames(expr.left), ...exprNames(expr.right)];
    default:
      return [];
  }
}

/** Every function an expression calls, for load-time validation. */
export function exprCalls(expr: Expr): Array<{ name: string; arity: number; pos: number }> {
  switch (expr.type) {
    case 'call':
      return [{ name: expr.name, arity: expr.args.length, pos: expr.pos }, ...expr.args.flatMap(exprCalls)];
    case 'list':
      return expr.items.flatMap(exprCalls);
    case 'unary':
      return exprCalls(expr.arg);
    case 'binary':
      return [...exprCalls(expr.left), ...exprCalls(expr.right)];
    default:
      return [];
  }
}
