// Parsers behind the netdev steps: ntb_transport's per-QP debugfs stats and the db_vector_mask probes.
import t from 'tap';
import { activeQps, parseQpStats, parseVectorMasks } from '../../harness/scenario/steps/netdev.ts';

// The shape 6.12's ntb_transport prints (debugfs_read): a blank line, a title, "name - \tvalue" lines;
// an empty file for a QP whose link is not up.
const stats = (rx: number, tx: number) =>
  `\nNTB QP stats:\n\nrx_bytes - \t${rx * 1500}\nrx_pkts - \t${rx}\nrx_memcpy - \t${rx}\nrx_ring_empty - 3\n\ntx_bytes - \t${tx * 1500}\ntx_pkts - \t${tx}\ntx_ring_full - \t0\n`;

t.test('QP stats per qp directory; an empty file (QP link down) counts as a QP with zeros', async (t) => {
  const text = `== /sys/kernel/debug/ntb_transport/0000:01:00.0/qp0/stats\n${stats(10, 12)}== /sys/kernel/debug/ntb_transport/0000:01:00.0/qp1/stats\n`;
  const parsed = parseQpStats(text);
  t.equal(parsed.size, 2);
  t.same(parsed.get(0), { rx_pkts: 10, tx_pkts: 12, rx_bytes: 15000, tx_bytes: 18000 });
  t.same(parsed.get(1), { rx_pkts: 0, tx_pkts: 0, rx_bytes: 0, tx_bytes: 0 });
  t.equal(parseQpStats('').size, 0, 'no ntb_transport: no QPs');
});

t.test('active QPs: the mask of those whose counter grew', async (t) => {
  const before = parseQpStats(`== /x/qp0/stats\n${stats(10, 0)}== /x/qp1/stats\n${stats(5, 0)}== /x/qp2/stats\n`);
  const after = parseQpStats(`== /x/qp0/stats\n${stats(90, 0)}== /x/qp1/stats\n${stats(5, 0)}== /x/qp2/stats\n${stats(1, 0)}`);
  t.equal(activeQps(before, after, 'rx_pkts'), 0b101);
  t.equal(activeQps(after, after, 'rx_pkts'), 0, 'nothing moved');
});

t.test('db_vector_mask probes: entry and return paired per task, distinct answers per vector', async (t) => {
  const trace = [
    '# tracer: nop',
    '          <idle>-0       [000] d.h2.   100.1: db_event: (ntb_db_event+0x0/0x60 [ntb]) vec=0',
    '          <idle>-0       [000] d.h2.   100.1: vmask: (ntb_epf_db_vector_mask+0x0/0x40 [ntb_hw_epf]) vec=0',
    '     ksoftirqd/0-12      [000] d.s1.   100.1: vmask: (ntb_epf_db_vector_mask+0x0/0x40 [ntb_hw_epf]) vec=3',
    '          <idle>-0       [000] d.h2.   100.1: vmask_ret: (ntb_transport_doorbell_callback+0x30/0xa0 [ntb_transport] <- ntb_epf_db_vector_mask) mask=1',
    '     ksoftirqd/0-12      [000] d.s1.   100.2: vmask_ret: (ntb_transport_doorbell_callback+0x30/0xa0 [ntb_transport] <- ntb_epf_db_vector_mask) mask=8',
    '          <idle>-0       [000] d.h2.   100.3: vmask: (ntb_epf_db_vector_mask+0x0/0x40 [ntb_hw_epf]) vec=0',
    '          <idle>-0       [000] d.h2.   100.3: vmask_ret: (ntb_transport_doorbell_callback+0x30/0xa0 [ntb_transport] <- ntb_epf_db_vector_mask) mask=1',
    '   an orphan return is ignored: x-1 [000] .... 1.0: vmask_ret: (f) mask=7',
  ].join('\n');
  const masks = parseVectorMasks(trace);
  t.same([...masks.entries()], [
    [0, [1]],
    [3, [8]],
  ]);
});
