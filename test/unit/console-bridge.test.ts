import t from 'tap';
import { ConsoleMonitor } from '../../harness/detect/console.ts';
import { consoleBridge } from '../../harness/detect/console-bridge.ts';

t.test('splats of a step, waiting for its end marker to reach the console', async (t) => {
  const ep = new ConsoleMonitor('ep');
  const host = new ConsoleMonitor('host');
  const bridge = consoleBridge([ep, host], 2_000);
  ep.push('[   40.000001] ntbh: begin step pingpong\n');
  host.push('[   40.000002] ntbh: begin step pingpong\n');
  const mark = bridge.consoleMark();
  ep.push('[   41.102934] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585\n');
  ep.push('[   41.103311] in_atomic(): 1, irqs_disabled(): 128, non_block: 0, pid: 0, name: swapper/0\n');
  host.push('[   45.000000] ntbh: end step pingpong\n');
  // The EP's end marker is still in flight when the executor asks.
  setTimeout(() => ep.push('[   45.000003] ntbh: end step pingpong\n'), 100);
  const started = Date.now();
  const splats = await bridge.splatsSince(mark, 'pingpong');
  t.ok(Date.now() - started >= 80, 'waited for the EP console');
  t.equal(splats.length, 1);
  t.equal(splats[0]!.guest, 'ep');
  t.equal(splats[0]!.kind, 'sleeping-in-atomic');
  t.equal(splats[0]!.step, 'pingpong', 'the console monitor attributes it by the kmsg markers');
});

t.test('a console that never shows the marker costs at most the wait', async (t) => {
  const ep = new ConsoleMonitor('ep');
  const bridge = consoleBridge([ep], 150);
  const mark = bridge.consoleMark();
  const started = Date.now();
  t.same(await bridge.splatsSince(mark, 'x'), []);
  t.ok(Date.now() - started < 1_000);
});

t.test('splatGaps names the consoles that never showed the end marker', async (t) => {
  const ep = new ConsoleMonitor('ep');
  const host = new ConsoleMonitor('host');
  const bridge = consoleBridge([ep, host], 100);
  const mark = bridge.consoleMark();
  host.push('[   45.000000] ntbh: end step s1\n');
  await bridge.splatsSince(mark, 's1');
  t.same(bridge.splatGaps(mark, 's1'), ["the end-of-step marker never reached ep's console (within 0 s)"]);
  ep.push('[   45.000001] ntbh: end step s1\n');
  t.same(bridge.splatGaps(mark, 's1'), [], 'complete once both consoles showed it');
});
