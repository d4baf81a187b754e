import t from 'tap';
import { evaluateInterop } from '../../harness/scenario/interop.ts';
import type { CellResult, CheckResult, Status } from '../../harness/results/model.ts';

/** A sweep step's checks as the executor produces them, from per-bit receiver observations. */
function sweep(direction: 'host-to-ep' | 'ep-to-host', bits: number[], observe: (i: number) => Record<string, unknown>): CheckResult[] {
  return bits.flatMap((i) =>
    Object.entries(observe(i)).map(([check, value]): CheckResult => ({ id: `${check}[${direction} bit ${i}]`, check, status: 'PASS', value: value as never, params: { i } })),
  );
}

function cell(ep: string, host: string, checks: CheckResult[], status: Status = 'PASS'): CellResult {
  return {
    id: `ep-${ep}__host-${host}`,
    ep,
    host,
    status,
    durationMs: 1,
    capabilities: {},
    params: {},
    steps: [{ id: 'sweep', type: 'doorbell-sweep', status, durationMs: 1, values: {}, checks, splats: [] }],
  };
}

// What docs/doorbells.md says each receiver sees for bit i, whatever the sender.
const oldEpRx = (i: number) => ({ db: 2 ** (i + 1), vector: i + 2, db_after_clear: 2 ** (i + 1), ring_ok: true });
const newEpRx = (i: number) => ({ db: 2 ** i, vector: i, db_after_clear: 0, ring_ok: true });
const stockHostRx = (i: number) => ({ db: 2 ** i, vector: i, msi_index: i + 2, wire: i + 2, ring_ok: true });
const bits = [0, 1, 13];

t.test('receivers that observe the same from every sender: PASS per group', async (t) => {
  const cells = ['old', 'stock', 'new'].flatMap((host) => [
    cell('old', host, [...sweep('host-to-ep', bits, oldEpRx)]),
    cell('new', host, [...sweep('host-to-ep', bits, newEpRx)]),
  ]);
  const result = evaluateInterop(['sweep'], cells);
  t.equal(result.status, 'PASS');
  t.same(
    result.groups.map((g) => [g.direction, g.receiver, g.variant, g.status, g.senders.join(',')]),
    [
      ['host-to-ep', 'ep', 'old', 'PASS', 'old,stock,new'],
      ['host-to-ep', 'ep', 'new', 'PASS', 'old,stock,new'],
    ],
  );
});

t.test('a receiver that sees a new sender differently: FAIL naming the bit and the senders', async (t) => {
  const misdelivering = (i: number) => ({ ...stockHostRx(i), vector: i === 13 ? 15 : i });
  const cells = [cell('old', 'stock', sweep('ep-to-host', bits, stockHostRx)), cell('new', 'stock', sweep('ep-to-host', bits, misdelivering))];
  const result = evaluateInterop(['sweep'], cells);
  t.equal(result.status, 'FAIL');
  const group = result.groups[0]!;
  t.equal(group.receiver, 'host');
  t.equal(group.variant, 'stock');
  t.match(group.message, /host stock observes differently by sender: bit 13 vector: ep old → 13, ep new → 15/);
});

t.test('sender-side results and unobserved checks are not compared', async (t) => {
  const refused = sweep('ep-to-host', [0], () => ({ ring_ok: false, db: 1, vector: 0 }));
  const skipped: CheckResult = { id: 'msi_index[ep-to-host bit 0]', check: 'msi_index', status: 'SKIP', value: null };
  const cells = [cell('old', 'new', sweep('ep-to-host', [0], () => ({ ring_ok: true, db: 1, vector: 0, msi_index: 2 }))), cell('new', 'new', [...refused, skipped])];
  t.equal(evaluateInterop(['sweep'], cells).status, 'PASS');
});

t.test('fewer than two senders observed: SKIP; no sweep step: no groups', async (t) => {
  const one = evaluateInterop(['sweep'], [cell('new', 'new', sweep('host-to-ep', bits, newEpRx))]);
  t.equal(one.status, 'SKIP');
  t.equal(one.groups.length, 1);
  const none = evaluateInterop([], [cell('new', 'new', [])]);
  t.same(none, { status: 'SKIP', groups: [] });
  const skippedStep = evaluateInterop(['sweep'], [cell('new', 'new', sweep('host-to-ep', bits, newEpRx), 'SKIP'), cell('new', 'old', sweep('host-to-ep', bits, newEpRx))]);
  t.equal(skippedStep.groups[0]!.status, 'SKIP', 'a skipped step contributes nothing');
});

t.test('each group names the step it compared, so two ringing steps do not read as one receiver twice', async (t) => {
  const twoSteps = (ep: string): CellResult => {
    const base = cell(ep, 'stock', sweep('host-to-ep', bits, newEpRx));
    return { ...base, steps: [base.steps[0]!, { ...base.steps[0]!, id: 'sweep-again' }] };
  };
  const result = evaluateInterop(['sweep', 'sweep-again'], [twoSteps('new'), twoSteps('old')].map((c, k) => ({ ...c, ep: 'new', host: k ? 'old' : 'stock' })));
  t.same(
    result.groups.map((g) => `${g.step} ${g.receiver} ${g.variant} ${g.status}`),
    ['sweep ep new PASS', 'sweep-again ep new PASS'],
  );
});
