import t from 'tap';
import { ExprError, exprNames, parseExpr } from '../../harness/scenario/expr.ts';
import { evalExpr, isPredicate, valuesEqual } from '../../harness/scenario/expr-eval.ts';

const env = { Nh: 16, Ne: 16, N: 16, i: 3, B: 0x29, value: 5 };

t.test('the doorbell formulas', async (t) => {
  t.equal(evalExpr('mask(Nh - 2)', env), 0x3fff);
  t.equal(evalExpr('mask(Nh - 1)', env), 0x7fff);
  t.equal(evalExpr('mask(Ne)', env), 0xffff);
  t.equal(evalExpr('bit(i)', env), 8);
  t.equal(evalExpr('bit(i + 1)', env), 16);
  t.equal(evalExpr('i + 3', env), 6);
  t.equal(evalExpr('mask(min(Nh, Ne) - 2)', env), 0x3fff);
  t.equal(evalExpr('lowest(B)', env), 1);
  t.equal(evalExpr('lsb(B)', env), 0);
  t.equal(evalExpr('msb(B)', env), 5);
  t.equal(evalExpr('popcount(B)', env), 3);
  t.same(evalExpr('bits(B)', env), [0, 3, 5]);
  t.same(evalExpr('bits(B) + 2', env), [2, 5, 7], 'a list plus a number shifts every item');
  t.same(evalExpr('[lsb(B) + 2]', env), [2]);
  t.equal(evalExpr('(B << 1) & (mask(32) ^ 1)', env), 0x52);
  t.equal(evalExpr('0x3fff | 0b1_0000_0000_0000_0000', env), 0x13fff);
  t.equal(evalExpr('none', env), null);
  t.equal(evalExpr('lsb(0)', env), null, 'no set bit: none');
});

t.test('bit operations are exact beyond 32 bits', async (t) => {
  t.equal(evalExpr('mask(40)', env), 2 ** 40 - 1);
  t.equal(evalExpr('bit(40) | bit(0)', env), 2 ** 40 + 1);
  t.equal(evalExpr('msb(bit(45))', env), 45);
  t.throws(() => evalExpr('mask(60)', env), ExprError, 'beyond 53 bits is refused, not rounded');
});

t.test('predicates read `value`', async (t) => {
  t.equal(evalExpr('value > 0', env), true);
  t.equal(evalExpr('value >= 4 && value <= 32', env), true);
  t.equal(evalExpr('value == 16 || !(value < 3)', env), true);
  // A measured rate below 1 (ntb_perf through a slow path) still compares.
  t.equal(evalExpr('value > 0', { ...env, value: 0.75 }), true);
  t.equal(evalExpr('value >= 1', { ...env, value: 0.75 }), false);
  t.throws(() => evalExpr('value > 0', { ...env, value: true }), /comparison operand must be a number/);
  t.ok(isPredicate(parseExpr('value > 0')));
  t.notOk(isPredicate(parseExpr('mask(N - 2)')));
  t.same(
    exprNames(parseExpr('bit(i) | mask(Nh)')).map((n) => n.name),
    ['i', 'Nh'],
  );
});

t.test('errors carry the column', async (t) => {
  const at = (source: string, offset: number, message: RegExp) => {
    try {
      evalExpr(source, env);
      t.fail(`${source} should fail`);
    } catch (error) {
      t.ok(error instanceof ExprError, `${source}: ExprError`);
      t.equal((error as ExprError).offset, offset, `${source}: column ${offset}`);
      t.match((error as ExprError).message, message);
    }
  };
  at('bit(i', 5, /expected ',' or '\)'/);
  at('bit(i) |', 8, /expected a value/);
  at('j + 1', 0, /'j' is not defined/);
  at('nosuch(1)', 0, /unknown function 'nosuch'/);
  at('mask(1, 2)', 0, /takes 1 argument/);
  at('1 < 2 < 3', 6, /cannot be chained/);
  at('i $ 2', 2, /unexpected character/);
  at('i / 0', 2, /division by zero/);
  at('true + 1', 5, /must be an integer/);
  at('value && true', 6, /needs booleans/);
});

t.test('nothing is evaluated as JavaScript', async (t) => {
  t.throws(() => evalExpr('process.exit(1)', env), ExprError);
  t.throws(() => evalExpr('constructor', env), /not defined/);
  t.throws(() => evalExpr('"a"', env), ExprError);
});

t.test('deep equality of measured values', async (t) => {
  t.ok(valuesEqual([2, 5], [2, 5]));
  t.notOk(valuesEqual([2, 5], [5, 2]));
  t.notOk(valuesEqual(2, [2]));
  t.ok(valuesEqual(null, null));
  t.notOk(valuesEqual(0, null));
});

t.test('names never reach Object.prototype', async (t) => {
  t.throws(() => evalExpr('constructor', {}), /not defined/);
  t.throws(() => evalExpr('toString(1)', {}), /unknown function 'toString'/);
  t.throws(() => evalExpr('__proto__', {}), /not defined/);
});
