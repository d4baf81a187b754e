// The splat pattern table against consoles captured from real guests of this harness (see
// test/fixtures/consoles/README.md for how each was produced).
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleMonitor } from '../../harness/detect/console.ts';
import { classify, normalizeTitle, splatPatterns } from '../../harness/detect/patterns.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const corpus = join(repoRoot, 'test', 'fixtures', 'consoles');

function monitor(name: string, guest = 'g'): ConsoleMonitor {
  const text = readFileSync(join(corpus, name), 'utf8');
  const console = new ConsoleMonitor(guest);
  // Feed it the way QEMU's stdout arrives: arbitrary chunk boundaries.
  for (let at = 0; at < text.length; at += 173) console.push(text.slice(at, at + 173));
  console.end();
  return console;
}

// Like syzkaller's pkg/report tests: every captured console has a sidecar listing the splats it must yield.
t.test('corpus: every captured console yields exactly the splats its .expected.json lists', async (t) => {
  const logs = readdirSync(corpus).filter((name) => name.endsWith('.log'));
  t.ok(logs.length >= 6, `${logs.length} consoles in the corpus`);
  for (const name of logs) {
    const sidecar = join(corpus, name.replace(/\.log$/, '.expected.json'));
    let expected: { splats: { kind: string; title: string; step: string | null }[] };
    try {
      expected = JSON.parse(readFileSync(sidecar, 'utf8'));
    } catch (error) {
      t.fail(`${name}: no readable sidecar ${sidecar} (${(error as Error).message})`);
      continue;
    }
    const got = monitor(name).splats.map((s) => ({ kind: s.kind, title: s.title, step: s.step ?? null }));
    t.same(got, expected.splats, name);
  }
});

t.test('corpus: the same splat from two architectures and two runs has one normalized title', async (t) => {
  const titles = (name: string) => monitor(name).splats.map((s) => s.title);
  t.same(titles('x86_64-warn-atomic-sysrq-panic.log'), titles('arm64-warn-atomic-sysrq-panic.log'), 'PIDs and offsets differ, titles do not');
  const raw = monitor('x86_64-warn-atomic-sysrq-panic.log').splats[0]!;
  t.match(raw.rawTitle, /^WARNING: CPU: 0 PID: \d+ at .*selftest_trigger_write\+0x[0-9a-f]+\/0x[0-9a-f]+ \[ntbh_selftest\]$/, 'the raw title is kept');
});

t.test('the table order does not matter: shuffled tables classify every line alike', async (t) => {
  const lines = [
    ...readdirSync(corpus)
      .filter((name) => name.endsWith('.log'))
      .flatMap((name) => readFileSync(join(corpus, name), 'utf8').split('\n')),
    // Synthetic one-liners for patterns no captured console has yet (see the unit tests below).
    'BUG: KCSAN: data-race in foo / bar',
    'BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2',
    'BUG: using smp_processor_id() in preemptible [00000000] code: sh/123',
    'BUG: kernel NULL pointer dereference, address: 0000000000000010',
    'WARNING: possible circular locking dependency detected',
    'watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]',
  ];
  const baseline = lines.map((line) => classify(line)?.kind);
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const orders = [[...splatPatterns].reverse(), ...Array.from({ length: 5 }, () => [...splatPatterns].sort(() => random() - 0.5))];
  for (const table of orders) {
    t.same(lines.map((line) => classify(line, table)?.kind), baseline, `order ${table.map((p) => p.kind).slice(0, 4).join(',')}...`);
  }
});

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
    t.match(warning!.title, /^WARNING: at .*ntbh_selftest\.c:\d+ selftest_trigger_write \[ntbh_selftest\]$/);
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

// Synthetic single lines, one pattern each: kinds no captured console in the corpus shows yet.
t.test('unit: specific BUG kinds win over the generic BUG', async (t) => {
  t.equal(classify('[  9.1] BUG: KCSAN: data-race in ntb_foo / ntb_bar')?.kind, 'kcsan');
  t.equal(classify('[  9.1] BUG: using smp_processor_id() in preemptible [00000000] code: sh/123')?.kind, 'preemptible-cpu-access');
  t.equal(classify('[  9.1] BUG: using __this_cpu_read() in preemptible [00000000] code: sh/123')?.kind, 'preemptible-cpu-access');
  t.equal(classify('[  9.1] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!')?.kind, 'workqueue-lockup');
  t.equal(classify('[  9.1] BUG: Bad page state in process sh  pfn:4a2b1')?.kind, 'bug');
  t.equal(classify('[  9.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]')?.kind, 'soft-lockup');
});

t.test('unit: normalizeTitle takes out PIDs, CPUs, addresses, offsets, durations and numbered task names', async (t) => {
  const cases: [string, string][] = [
    ['[   12.345678] WARNING: CPU: 1 PID: 4242 at drivers/ntb/hw/epf/ntb_hw_epf.c:377 ntb_epf_vec_isr+0x1c/0x40 [ntb_hw_epf]', 'WARNING: at drivers/ntb/hw/epf/ntb_hw_epf.c:377 ntb_epf_vec_isr [ntb_hw_epf]'],
    ['BUG: using smp_processor_id() in preemptible [00000000] code: kworker/u8:2/77', 'BUG: using smp_processor_id() in preemptible [00000000] code: kworker/N'],
    ['INFO: task kworker/0:1:12 blocked for more than 120 seconds.', 'INFO: task kworker/N blocked for more than N seconds.'],
    ['INFO: task sh:123 blocked for more than 122 seconds.', 'INFO: task sh blocked for more than N seconds.'],
    ['watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [swapper/3:0]', 'watchdog: BUG: soft lockup - CPU#N stuck for Ns! [swapper/N]'],
    ['Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010', 'Unable to handle kernel NULL pointer dereference at virtual address ADDR'],
    ['BUG: KASAN: slab-out-of-bounds in vntb_epf_peer_db_set+0x94/0x148 [pci_epf_vntb]', 'BUG: KASAN: slab-out-of-bounds in vntb_epf_peer_db_set [pci_epf_vntb]'],
    ['BUG: sleeping function called from invalid context at ../src/kernel/locking/mutex.c:283', 'BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283'],
    ['general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] SMP', 'general protection fault, probably for non-canonical address ADDR: 0000 [#1] SMP'],
  ];
  for (const [raw, normalized] of cases) t.equal(normalizeTitle(raw), normalized, raw);
  t.equal(normalizeTitle('WARNING: at drivers/i2c/busses/i2c-foo.c:12 foo'), 'WARNING: at drivers/i2c/busses/i2c-foo.c:12 foo', 'paths with digits are left alone');
});
