import t from 'tap';
import { summarize } from '../../bench/netdev.ts';

const check = (id: string, value: unknown, message?: string) => ({ id, check: id.replace(/\[.*$/, ''), status: 'PASS', value, message });

t.test('netdev throughput is set against the same cell\'s ntb_perf, per direction and QP count', async (t) => {
  const { lines, figures } = summarize({
    status: 'PASS',
    cells: [
      {
        id: 'ep-new__host-new',
        status: 'PASS',
        steps: [
          { id: 'perf', type: 'perf', status: 'PASS', checks: [check('mbps[host-to-ep]', 100), check('mbps[ep-to-host]', 50)] },
          { id: 'up1', type: 'netdev-up', status: 'PASS', checks: [check('qp_count[ep]', 1), check('qp_count[host]', 1)] },
          {
            id: 'transfer1',
            type: 'netdev-transfer',
            status: 'PASS',
            checks: [check('match[host-to-ep]', true), check('kbit_s[host-to-ep]', 40000), check('match[ep-to-host]', false), check('kbit_s[ep-to-host]', 100000)],
          },
        ],
      },
    ],
  });
  t.same(
    figures.map((f) => [f.direction, f.qps, f.ratio, f.intact]),
    [
      ['host-to-ep', 1, 0.05, true],
      ['ep-to-host', 1, 0.25, false],
    ],
    '1 MB/s = 8000 kbit/s; the ratio is netdev over ntb_perf',
  );
  t.match(lines.join('\n'), /ep-to-host: 100000 kbit\/s \(NOT intact\)/);
});

t.test('a soak row carries the relay and host counters and the coalesced share', async (t) => {
  const { lines, figures } = summarize({
    status: 'PASS',
    cells: [
      {
        id: 'c',
        status: 'PASS',
        steps: [
          {
            id: 'soak',
            type: 'netdev-soak',
            status: 'PASS',
            checks: [
              check('iterations', 10, '10 in 60 s'),
              check('failed_iterations', 0),
              check('kbit_s', 20000),
              check('msis', 200, 'raised 2:200; delivered 2:200; host irqs 2:190'),
              check('lost', 0),
              check('duplicated', 0),
              check('coalesced', 10),
            ],
          },
        ],
      },
    ],
  });
  t.same([figures[0]!.lost, figures[0]!.duplicated, figures[0]!.coalesced], [0, 0, 10]);
  t.match(lines.join('\n'), /coalesced 10 \(5\.0 % of delivered\)/);
  t.match(lines.join('\n'), /host irqs 2:190/);
});
