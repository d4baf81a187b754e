import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilityTable } from '../../harness/ntb/capability-table.ts';
import { decideCapabilities, parseFacts, probeScript } from '../../harness/ntb/capabilities.ts';
import { parseDoorbellEvents } from '../../harness/ntb/dyndbg.ts';
import { expandCounts, parseInterrupts, singleOrList, vectorDeltas } from '../../harness/ntb/interrupts.ts';
import { parseDbEventTrace } from '../../harness/ntb/kprobe.ts';
import { parseMwTrans } from '../../harness/ntb/mw.ts';
import { parseFunctions, parseResource } from '../../harness/ntb/pci.ts';
import { parsePcitest } from '../../harness/ntb/pcitest.ts';
import { parsePerfRun } from '../../harness/ntb/perf.ts';
import { parseKernelInt, pollScript, sq } from '../../harness/ntb/shell.ts';

const captured = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/captured', name), 'utf8');

t.test('ntb_tool dynamic-debug doorbell lines (and not ntb_perf\'s)', async (t) => {
  const all = parseDoorbellEvents(captured('dmesg-ntb-tool.txt'));
  t.same(all, [
    { vector: 3, mask: 0x3fff, bits: 0x8 },
    { vector: 0, mask: 0x1, bits: 0x1 },
    { vector: 3, mask: 0x8, bits: 0x9 },
    { vector: 5, mask: 0x20, bits: 0x29 },
    { vector: 1, mask: 0, bits: 0 },
  ]);
  const afterMark = captured('dmesg-ntb-tool.txt').split('ntbh-mark-4242-8')[1]!;
  t.same(
    parseDoorbellEvents(afterMark).map((e) => e.vector),
    [0, 3, 5, 1],
    'slicing at a marker keeps only what followed',
  );
});

t.test('/proc/interrupts on a q35 guest with interrupt remapping', async (t) => {
  const irqs = parseInterrupts(captured('proc-interrupts-x86-ir.txt'));
  t.same(irqs.get(27), { irq: 27, total: 2, chip: 'IR-PCI-MSI-0000:01:00.0    0-edge', actions: ['ntb_epf'] });
  t.same(irqs.get(9)!.actions, ['acpi'], 'fasteoi lines parse too');
  t.same(irqs.get(42)!.actions, ['ntb_epf']);
  t.notOk(irqs.has(Number.NaN), 'NMI/LOC rows are not IRQs');
  const msi = Array.from({ length: 16 }, (_, i) => 27 + i);
  const deltas = vectorDeltas(irqs, parseInterrupts(captured('proc-interrupts-x86-ir-after.txt')), msi);
  t.same([...deltas], [
    [0, 1],
    [5, 1],
  ]);
  t.same(expandCounts(new Map([[5, 2], [2, 1]])), [2, 5, 5]);
  t.equal(singleOrList([7]), 7);
  t.equal(singleOrList([]), null);
  t.same(singleOrList([7, 2]), [2, 7]);
});

t.test('/proc/interrupts on arm64 (two CPUs, Edge/Level column, shared action list)', async (t) => {
  const irqs = parseInterrupts(captured('proc-interrupts-arm64.txt'));
  t.equal(irqs.get(41)!.total, 2, 'counts summed over CPUs');
  t.same(irqs.get(40)!.actions, ['pci-endpoint-test.0']);
  t.same(irqs.get(11)!.actions, ['arch_timer']);
});

t.test('pcitest output', async (t) => {
  const results = parsePcitest(captured('pcitest.txt'));
  t.same(
    results.map((r) => [r.test, r.size, r.result, r.ok]),
    [
      ['BAR0', undefined, 'OKAY', true],
      ['BAR1', undefined, 'NOT OKAY', false],
      ['BAR2', undefined, 'TEST FAILED', false],
      ['SET IRQ TYPE TO MSI', undefined, 'OKAY', true],
      ['MSI1', undefined, 'OKAY', true],
      ['MSI16', undefined, 'NOT OKAY', false],
      ['READ', 1, 'OKAY', true],
      ['WRITE', 1024, 'OKAY', true],
      ['COPY', 1048576, 'TEST FAILED', false],
    ],
  );
});

t.test('ntb_perf run statistics', async (t) => {
  t.same(parsePerfRun(captured('ntb-perf-run.txt')), [
    { thread: 0, bytes: 1048576, usecs: 52341, mbps: 20.034 },
    { thread: 1, error: -5 },
  ]);
  // Below 1 MB/s the driver prints 0: the figure comes from bytes and usecs instead.
  t.same(parsePerfRun('0: copied 1048576 bytes in 1443000 usecs, 0 MBytes/s\n'), [{ thread: 0, bytes: 1048576, usecs: 1443000, mbps: 0.727 }]);
});

t.test('kprobe trace of ntb_db_event', async (t) => {
  t.same(parseDbEventTrace(captured('kprobe-trace.txt')), [2, 0]);
});

t.test("ntb_tool's mw_trans read", async (t) => {
  t.same(parseMwTrans(captured('ntb-tool-mw-trans.txt')), { dmaAddress: 0x4a40000n, size: 0x1000 });
  t.equal(parseMwTrans('Inbound MW 0\n'), undefined);
});

t.test('kernel integers: %#llx prints 0 without 0x', async (t) => {
  t.equal(parseKernelInt('0\n'), 0);
  t.equal(parseKernelInt('0x3fff'), 0x3fff);
  t.equal(parseKernelInt('16'), 16);
  t.throws(() => parseKernelInt('Y'));
});

t.test('sysfs: PCI functions and BARs', async (t) => {
  t.same(parseFunctions('0000:01:00.0 0x050000 ntb_hw_epf\n0000:02:00.0 0x050000 -\nnoise\n', 0x1957, 0x0809), [
    { bdf: '0000:01:00.0', vendor: 0x1957, device: 0x0809, class: 0x050000, driver: 'ntb_hw_epf' },
    { bdf: '0000:02:00.0', vendor: 0x1957, device: 0x0809, class: 0x050000, driver: undefined },
  ]);
  const resource = [
    '0x00000000fe000000 0x00000000fe000fff 0x0000000000040200',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x00000000fe100000 0x00000000fe1fffff 0x0000000000140204',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x0000000800000000 0x00000008000fffff 0x000000000014220c',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
  ].join('\n');
  t.same(parseResource(resource), [0, 2, 4]);
});

t.test('capability probes: one script, facts, derived capabilities', async (t) => {
  const table = capabilityTable();
  const script = probeScript([...table.values()].filter((d) => d.side === 'host').map((d) => d.probe));
  t.match(script, /grep -x -F .*-e 'ntb_epf_db_vector_count'/);
  t.match(script, /-name 'ntb_hw_epf\.ko\*'/);
  t.match(script, /zcat \/proc\/config\.gz/);

  // Debian 6.12 as shipped: the host backport's warning is in the module, db_vector ops are not.
  const stockHost = parseFacts(
    ['uname:6.12.117', 'kallsyms:1', 'sym:__might_sleep', 'config-gz:1', 'cfg:CONFIG_DEBUG_ATOMIC_SLEEP=y', 'modfile:ntb_hw_epf', 'str:ntb_hw_epf:0', 'str:ntb_hw_epf:1', 'path:/sys/kernel/debug/dynamic_debug/control'].join('\n'),
  );
  const host = decideCapabilities(table, 'host', stockHost);
  t.same(host.values, {
    'host.debug_atomic_sleep': true,
    'host.dyndbg': true,
    'host.kprobe_events': false,
    'host.epf_reserved_slot_warning': true,
    'host.epf_db_vector_ops': false,
    'host.epf_zero_based_vectors': true,
    'host.epf_irq_ctx': true,
    'host.epf_bitmask_db': true,
  });
  t.equal(host.release, '6.12.117');

  // A new EP: the series' symbols are in kallsyms.
  const newEp = parseFacts(['kallsyms:1', 'sym:vntb_epf_peer_db_work', 'sym:vntb_epf_db_vector_count', 'sym:vntb_epf_db_vector_mask'].join('\n'));
  const ep = decideCapabilities(table, 'ep', newEp);
  t.equal(ep.values['ep.vntb_deferred_raise'], true);
  t.equal(ep.values['ep.vntb_db_vector_ops'], true);
  t.equal(ep.values['ep.vntb_zero_based_vectors'], true, 'the vector ops decide before anything is observed');
  t.equal(ep.values['ep.debug_atomic_sleep'], false, 'no config.gz: the fallback symbol decides');

  // Nothing readable: unknown, with the reason, rather than a wrong false.
  const blind = decideCapabilities(table, 'host', parseFacts(''));
  t.equal(blind.values['host.epf_zero_based_vectors'], undefined);
  t.match(blind.unknown['host.epf_db_vector_ops'], /kallsyms is not readable/);
  t.match(blind.unknown['host.epf_reserved_slot_warning'], /no ntb_hw_epf\.ko/);
});

t.test('a scenario can add or override probes', async (t) => {
  const table = capabilityTable({ 'ep.vntb_zero_based_vectors': { module_string: { module: 'pci-epf-vntb', strings: ['legacy MSI doorbell offset'] } } });
  const facts = parseFacts('modfile:pci-epf-vntb\nstr:pci-epf-vntb:0\nkallsyms:1\n');
  t.equal(decideCapabilities(table, 'ep', facts).values['ep.vntb_zero_based_vectors'], true);
});

t.test('shell helpers', async (t) => {
  t.equal(sq("it's"), `'it'\\''s'`);
  const script = pollScript('cat /x', '[ "$v" = Y ]', 100, 10);
  t.match(script, /while \[ \$n -lt 10 \]/);
  t.match(script, /\[ "\$v" = Y \]$/, 'the exit status is the condition');
});
