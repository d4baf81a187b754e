// The splat pattern table against consoles captured from real guests of this harness (see
// test/fixtures/consoles/README.md for how each was produced).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleMonitor } from '../../harness/detect/console.ts';
import { classify } from '../../harness/detect/patterns.ts';
import { repoRoot } from '../../harness/util/paths.ts';

function monitor(name: string, guest = 'g'): ConsoleMonitor {
  const text = readFileSync(join(repoRoot, 'test', 'fixtures', 'consoles', name), 'utf8');
  const console = new ConsoleMonitor(guest);
  // Feed it the way QEMU's stdout arrives: arbitrary chunk boundaries.
  for (let at = 0; at < text.length; at += 173) console.push(text.slice(at, at + 173));
  console.end();
  return console;
}

t.test('clean boots and clean doorbell runs have no splat (the "panic=-1" on the command line is not one)', async (t) => {
  for (const name of ['x86_64-host-clean-doorbell-interop.log', 'arm64-ep-clean-doorbell-interop.log']) {
    t.same(monitor(name).splats, [], name);
  }
});

for (const arch of ['x86_64', 'arm64']) {
  t.test(`${arch}: WARN, sleeping in atomic context and a sysrq panic, in order, each with its excerpt`, async (t) => {
    const console = monitor(`${arch}-warn-atomic-sysrq-panic.log`, arch);
    t.same(console.splats.map((s) => s.kind), ['warning', 'sleeping-in-atomic', 'panic']);
    const [warning, atomic, panic] = console.splats;
    t.match(warning!.title, /^WARNING: CPU: \d+ PID: \d+ at .*ntbh_selftest\.c:\d+ selftest_trigger_write/);
    t.equal(warning!.step, 'provoke-warn', 'the WARN sits between its step markers');
    t.match(warning!.excerpt, /Call trace:|Call Trace:/i, 'the excerpt carries the backtrace');
    t.equal(atomic!.step, undefined, 'the atomic splat came after the step ended');
    t.match(atomic!.excerpt, /in_atomic\(\): 1/);
    t.ok(panic!.fatal, 'a panic is fatal');
    t.match(panic!.title, /sysrq triggered crash/);
    t.notOk(warning!.fatal || atomic!.fatal, 'WARN and BUG are not fatal');
  });
}

t.test('old vntb + ntb_pingpong on the EP: the atomic-context BUG attributed to the pingpong step', async (t) => {
  const console = monitor('arm64-ep-old-vntb-pingpong-atomic.log', 'ep');
  t.ok(console.splats.length >= 1);
  t.ok(console.splats.every((s) => s.kind === 'sleeping-in-atomic' && s.step === 'pingpong'));
  t.match(console.splats[0]!.excerpt, /vntb_epf_peer_db_set|pci_epc_raise_irq/, 'the excerpt names the culprit');
});

t.test('old ntb_hw_epf: pci_irq_vector() in its hard-irq handler splats on the host', async (t) => {
  const console = monitor('x86_64-host-old-epf-irq-atomic.log', 'host');
  t.ok(console.splats.length >= 1);
  t.ok(console.splats.every((s) => s.kind === 'sleeping-in-atomic'));
  t.match(console.splats[0]!.excerpt, /ntb_epf_vec_isr|pci_irq_vector|msi_get_virq/);
});

t.test('look-alikes are not splats', async (t) => {
  for (const line of [
    '[    1.0] ODEBUG: object is on stack, but not annotated',
    '[    0.0] Kernel command line: console=ttyS0 panic=-1',
    '[    2.0] ntbh: begin step warn-me',
    '[    3.0] pci 0000:01:00.0: BAR 4: assigned',
  ]) {
    t.equal(classify(line), undefined, line);
  }
  t.equal(classify('[   5.5] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2')?.kind, 'kasan');
  t.equal(classify('[   5.5] Unable to handle kernel NULL pointer dereference at virtual address 0')?.kind, 'arm64-fault');
  t.equal(classify('[   5.5] INFO: task kworker/0:1:12 blocked for more than 120 seconds.')?.kind, 'hung-task');
  t.equal(classify('[   5.5] WARNING: possible circular locking dependency detected')?.kind, 'lockdep');
});
