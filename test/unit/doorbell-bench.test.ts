import t from 'tap';
import { legs, percentile } from '../../bench/doorbell-legs.ts';

const ev = (t: number, from: string, type: string) => ({ t, from, type });

t.test('interrupt mode: round trips between EP raises, host→EP from each DOORBELL to the next raise', async (t) => {
  const wire = [ev(0, 'ep', 'RAISE_IRQ'), ev(1, 'rc', 'IRQ_RESULT'), ev(3, 'rc', 'DOORBELL'), ev(7, 'ep', 'RAISE_IRQ'), ev(9, 'rc', 'DOORBELL'), ev(12, 'ep', 'RAISE_IRQ')];
  const out = legs(wire);
  t.same(out.roundTripsMs, [7, 5]);
  t.same(out.hostToEpMs, [4, 3]);
  t.same(out.epToHostMs, [3, 2]);
  t.equal(out.doorbells, 2);
});

t.test('polling mode: no DOORBELL on the wire, round trips only', async (t) => {
  const out = legs([ev(0, 'ep', 'RAISE_IRQ'), ev(20, 'ep', 'RAISE_IRQ'), ev(50, 'ep', 'RAISE_IRQ')]);
  t.same(out.roundTripsMs, [20, 30]);
  t.same(out.hostToEpMs, []);
  t.equal(out.doorbells, 0);
  t.equal(percentile(out.roundTripsMs, 0.5), 30);
  t.ok(Number.isNaN(percentile([], 0.5)));
});
