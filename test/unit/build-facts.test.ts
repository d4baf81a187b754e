import t from 'tap';
import { binaryHasString, kallsymsNames, parseConfig, parseRuntime, runtimeScript } from '../../harness/ntb/build-facts.ts';

t.test('kallsymsNames keeps what /proc/kallsyms would list', async (t) => {
  const lines = ['ffffffff81000000 T _stext', 'ffffffff81001000 t vntb_epf_peer_db_work', 'ffffffff82000000 D some_data', '                 U ntb_db_event', '0000000000000010 W weak_fn'].join('\n');
  const want = new Set(['vntb_epf_peer_db_work', 'some_data', 'ntb_db_event', 'weak_fn', 'absent']);
  t.same([...kallsymsNames(lines, false, want)].sort(), ['vntb_epf_peer_db_work', 'weak_fn'], 'text symbols only without KALLSYMS_ALL; undefined ones never');
  t.same([...kallsymsNames(lines, true, want)].sort(), ['some_data', 'vntb_epf_peer_db_work', 'weak_fn'], 'every defined symbol with KALLSYMS_ALL');
});

t.test('binaryHasString matches within NUL- and newline-separated strings, as tr + grep -F in the guest', async (t) => {
  const binary = Buffer.concat([Buffer.from('\x7fELF\0\0'), Buffer.from('DB count %d out of range (%d - %d)\n\0'), Buffer.from('%llu:%zu\0')]);
  t.ok(binaryHasString(binary, 'DB count %d out of range (%d - %d)'));
  t.ok(binaryHasString(binary, '%llu:%zu'));
  t.notOk(binaryHasString(binary, 'range (%d - %d)\n'), 'a newline is a separator, as for grep');
  t.notOk(binaryHasString(binary, 'Unexpected doorbell vector'));
});

t.test('the guest-side remainder: release, loaded modules, probed paths', async (t) => {
  const script = runtimeScript([{ path: ['/sys/kernel/tracing/kprobe_events'] }, { kallsyms: ['x'] }]);
  t.match(script, /\/proc\/modules/);
  t.match(script, /kprobe_events/);
  const parsed = parseRuntime('uname:6.12.117\nloaded:pci_epf_vntb\nloaded:ntb\npath:/sys/kernel/tracing/kprobe_events\n');
  t.equal(parsed.release, '6.12.117');
  t.same([...parsed.loaded], ['pci_epf_vntb', 'ntb']);
  t.same([...parsed.paths], ['/sys/kernel/tracing/kprobe_events']);
});

t.test('parseConfig reads CONFIG_X=value lines and skips "is not set"', async (t) => {
  const config = parseConfig('CONFIG_KALLSYMS=y\n# CONFIG_KALLSYMS_ALL is not set\nCONFIG_NTB=m\n');
  t.equal(config.get('CONFIG_KALLSYMS'), 'y');
  t.equal(config.get('CONFIG_NTB'), 'm');
  t.notOk(config.has('CONFIG_KALLSYMS_ALL'));
});
