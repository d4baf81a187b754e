import t from 'tap';
import { judge, type JudgeContext } from '../../harness/scenario/expect.ts';
import type { Expectation } from '../../harness/scenario/schema.ts';
import type { Measurement } from '../../harness/results/model.ts';

const sweepDb: Expectation = {
  spec: 'bit(i)',
  known: [
    { when: { on: 'ep', ep: { vntb_zero_based_vectors: false } }, value: 'bit(i + 1)', xfail: 'old vntb shifts bits' },
    { when: { on: 'host', host: { epf_bitmask_db: false } }, value: 'i + 3', xfail: 'old host stores the number' },
  ],
  skip: [],
};

const newCaps = { 'ep.vntb_zero_based_vectors': true, 'host.epf_bitmask_db': true };
const oldCaps = { 'ep.vntb_zero_based_vectors': false, 'host.epf_bitmask_db': false };

function ctx(caps: Record<string, boolean>, expectations: Record<string, string | Expectation> = { 'sweep.db': sweepDb }): JudgeContext {
  return { expectations, caps, params: { Nh: 16, Ne: 16 } };
}

const step = { id: 'sweep', type: 'doorbell-sweep' };
const m = (value: Measurement['value'], on: 'ep' | 'host' = 'ep', extra: Partial<Measurement> = {}): Measurement => ({ check: 'db', on, label: `host-to-ep bit 3`, params: { i: 3 }, value, ...extra });

t.test('PASS: matches the spec and no known failure applies', async (t) => {
  const r = judge(m(8), step, ctx(newCaps));
  t.equal(r.status, 'PASS');
  t.equal(r.id, 'db[host-to-ep bit 3]');
  t.equal(r.expected, 8);
});

t.test('FAIL: spec not met and no known failure applies, with expected and actual', async (t) => {
  const r = judge(m(16), step, ctx(newCaps));
  t.equal(r.status, 'FAIL');
  t.equal(r.message, 'expected 8, got 16 (0x10)');
});

t.test('XFAIL: a known failure applies and its value was observed', async (t) => {
  const r = judge(m(16), step, ctx(oldCaps));
  t.equal(r.status, 'XFAIL');
  t.equal(r.known, 16);
  t.equal(r.message, 'old vntb shifts bits');
  const host = judge(m(6, 'host'), step, ctx(oldCaps));
  t.equal(host.status, 'XFAIL', '`on` picks the known entry of the observing side');
  t.equal(host.message, 'old host stores the number');
});

t.test('XPASS: a known failure applies but the spec was observed', async (t) => {
  const r = judge(m(8), step, ctx(oldCaps));
  t.equal(r.status, 'XPASS');
  t.match(r.message, /matches the spec although a known failure applies \(old vntb shifts bits\)/);
});

t.test('FAIL: a known failure applies but neither value was observed', async (t) => {
  const r = judge(m(0), step, ctx(oldCaps));
  t.equal(r.status, 'FAIL');
  t.equal(r.message, 'expected 8 (spec) or 16 (0x10) (known), got 0');
});

t.test('SKIP when the observation was impossible, ERROR when observing failed', async (t) => {
  t.equal(judge(m(null, 'ep', { unavailable: 'no dyndbg' }), step, ctx(newCaps)).status, 'SKIP');
  const e = judge(m(null, 'ep', { error: 'ssh lost' }), step, ctx(newCaps));
  t.equal(e.status, 'ERROR');
  t.equal(e.message, 'ssh lost');
});

t.test('an undecidable capability makes the check ERROR, not a guess', async (t) => {
  const r = judge(m(16), step, ctx({ 'host.epf_bitmask_db': true }));
  t.equal(r.status, 'ERROR');
  t.match(r.message, /ep\.vntb_zero_based_vectors could not be probed/);
});

t.test('built-in specs apply when the scenario declares none', async (t) => {
  const vm = judge({ check: 'db_valid_mask', on: 'host', value: 0x3fff }, { id: 'masks', type: 'db-valid-mask' }, ctx(newCaps, {}));
  t.equal(vm.status, 'PASS', 'mask(N - 2) with N = Nh on the host');
  const perf = judge({ check: 'mbps', value: 0 }, { id: 'perf', type: 'perf' }, ctx(newCaps, {}));
  t.equal(perf.status, 'FAIL', 'predicate value > 0');
  t.equal(perf.expected, 'value > 0');
});

t.test('a shorthand string expectation is a spec; vector_kprobe falls back to vector', async (t) => {
  const context = ctx(oldCaps, {
    'sweep.vector': { spec: 'i', known: [{ when: { ep: { vntb_zero_based_vectors: false } }, value: 'i + 2', xfail: 'old vector' }], skip: [] },
    'setup.msi_vectors': 'value == 16',
  });
  t.equal(judge({ check: 'vector_kprobe', on: 'ep', params: { i: 1 }, value: 3 }, step, context).status, 'XFAIL');
  t.equal(judge({ check: 'msi_vectors', value: 16 }, { id: 'setup', type: 'setup' }, context).status, 'PASS');
  t.equal(judge({ check: 'msi_vectors', value: 1 }, { id: 'setup', type: 'setup' }, context).status, 'FAIL');
});

t.test('lists, none and skip entries', async (t) => {
  const multi = { id: 'multi', type: 'doorbell-multi' };
  const context = ctx(
    { 'ep.vntb_deferred_raise': false },
    {
      'multi.msi_index': { spec: 'bits(B) + 2', known: [{ when: { ep: { vntb_deferred_raise: false } }, value: '[lsb(B) + 2]', xfail: 'lowest only' }], skip: [] },
      'multi.wire': { known: [], skip: [{ when: { ep: { vntb_deferred_raise: false } }, reason: 'not interesting here' }] },
    },
  );
  t.equal(judge({ check: 'msi_index', on: 'host', params: { B: 0x29 }, value: [2] }, multi, context).status, 'XFAIL');
  t.equal(judge({ check: 'msi_index', on: 'host', params: { B: 0x29 }, value: [2, 5, 7] }, multi, context).status, 'XPASS');
  const skipped = judge({ check: 'wire', on: 'host', params: { B: 0x29 }, value: [2] }, multi, context);
  t.equal(skipped.status, 'SKIP');
  t.equal(skipped.message, 'not interesting here');
  const zero = judge({ check: 'vector', on: 'ep', value: null }, { id: 'zero', type: 'doorbell-zero' }, ctx(newCaps, {}));
  t.equal(zero.status, 'PASS', 'none matches no event');
});

t.test('details are appended to the message', async (t) => {
  const r = judge({ check: 'ring_ok', on: 'host', value: false, detail: 'sh: write error: Invalid argument' }, step, ctx(newCaps, {}));
  t.equal(r.status, 'FAIL');
  t.equal(r.message, 'expected true, got false — sh: write error: Invalid argument');
});
