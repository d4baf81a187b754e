// Orchestration of setupEpfNtb against a scripted EP shell (the real configfs is exercised by
// test/e2e/bridge-link.test.ts): what is written where, in which order, and what a refusal becomes.
import t from 'tap';
import { setupEpfNtb } from '../../harness/ntb/epf-ntb.ts';
import { HarnessError } from '../../harness/errors.ts';
import type { ExecOptions, ExecResult, GuestExec } from '../../harness/guest/types.ts';
import { epcNameForSlot, epLinkArgs } from '../../harness/link/hotplug.ts';
import { BRIDGE_EPC_SLOT } from '../../harness/topology/bridge.ts';

const FUNC = '/sys/kernel/config/pci_ep/functions/pci_epf_ntb/func1';

class ScriptedEp implements GuestExec {
  readonly name = 'ep';
  readonly commands: string[] = [];
  constructor(private readonly answer: (command: string) => Partial<ExecResult> | undefined) {}
  async exec(command: string, _options?: ExecOptions): Promise<ExecResult> {
    this.commands.push(command);
    const a = this.answer(command) ?? {};
    return { command, stdout: a.stdout ?? '', stderr: a.stderr ?? '', exitCode: a.exitCode ?? 0, durationMs: 1 };
  }
  writes(): string[] {
    return this.commands.filter((c) => c.startsWith('echo ')).map((c) => c.replace(/'/g, ''));
  }
}

const fn = { vendorid: 0x104c, deviceid: 0xb00d, baseclass_code: 0x05, subclass_code: 0, db_count: 4, spad_count: 64, mws: [0x100000, 0x200000] };
const epcs = ['0000:00:10.0', '0000:00:11.0'] as const;

function healthy(command: string): Partial<ExecResult> | undefined {
  if (command.startsWith('ls /sys/kernel/config/pci_ep/controllers/')) return { stdout: `${epcs[0]}\n${epcs[1]}\n` };
  if (command.includes('db_count" ] && echo')) return { stdout: `${FUNC}/pci_epf_ntb.0/\n` };
  if (command.startsWith('dmesg')) return { stdout: 'pci_epf_ntb pci_epf_ntb.0: some kernel line' };
  return undefined;
}

t.test('writes the header, then db/spad counts, num_mws before mwN, links primary then secondary, starts both', async (t) => {
  const ep = new ScriptedEp(healthy);
  const setup = await setupEpfNtb(ep, fn, epcs);
  t.same(setup.refused, []);
  t.ok(setup.started);
  t.equal(setup.ntbDir, `${FUNC}/pci_epf_ntb.0`);
  t.same(setup.written, ['vendorid=0x104c', 'deviceid=0xb00d', 'baseclass_code=0x5', 'subclass_code=0x0', 'db_count=4', 'spad_count=64', 'num_mws=2', 'mw1=0x100000', 'mw2=0x200000']);
  const links = ep.commands.filter((c) => c.includes('ln -s'));
  t.match(links[0], /controllers\/0000:00:10\.0.*func1\/primary\//, 'primary = the controller of host (link 0)');
  t.match(links[1], /controllers\/0000:00:11\.0.*func1\/secondary\//, 'secondary = the controller of host2 (link 1)');
  const starts = ep.writes().filter((w) => w.endsWith('/start'));
  t.same(starts, [`echo 1 > /sys/kernel/config/pci_ep/controllers/${epcs[0]}/start`, `echo 1 > /sys/kernel/config/pci_ep/controllers/${epcs[1]}/start`]);
  t.ok(ep.commands.findIndex((c) => c.includes('ln -s')) > ep.commands.findIndex((c) => c.includes('/mw2')), 'attributes before binding');
});

t.test('a refused attribute is an observation; a refused binding throws EPF_NTB_BIND with the EP dmesg', async (t) => {
  const refusing = new ScriptedEp((c) => (c.includes('/spad_count') && c.startsWith('echo') ? { exitCode: 1, stderr: 'sh: write error: Invalid argument' } : healthy(c)));
  const setup = await setupEpfNtb(refusing, fn, epcs);
  t.same(setup.refused, ['spad_count=64: sh: write error: Invalid argument']);

  const unbindable = new ScriptedEp((c) => (c.includes('/secondary/') ? { exitCode: 1, stderr: 'ln: Invalid argument' } : healthy(c)));
  const error = await setupEpfNtb(unbindable, fn, epcs).catch((e: unknown) => e);
  t.ok(error instanceof HarnessError);
  t.match(error, { code: 'EPF_NTB_BIND', kind: 'test', guest: 'ep' });
  t.match((error as HarnessError).message, /secondary interface on 0000:00:11\.0: ln: Invalid argument/);
  t.match((error as HarnessError).excerpt, /EP dmesg[\s\S]*some kernel line/);
  t.notOk(unbindable.commands.some((c) => c.endsWith('/start')), 'nothing started after a failed binding');
});

t.test('a missing controller or the same one twice is EPF_NTB_NO_CONTROLLER', async (t) => {
  const one = new ScriptedEp((c) => (c.startsWith('ls /sys/kernel/config/pci_ep/controllers/') ? { stdout: `${epcs[0]}\n` } : healthy(c)));
  t.match(await setupEpfNtb(one, fn, epcs).catch((e: unknown) => e), { code: 'EPF_NTB_NO_CONTROLLER' });
  t.match(await setupEpfNtb(new ScriptedEp(healthy), fn, [epcs[0], epcs[0]]).catch((e: unknown) => e), { code: 'EPF_NTB_NO_CONTROLLER' });
});

t.test('the trio pins each vepc to a slot, which names its EPC', async (t) => {
  t.same(BRIDGE_EPC_SLOT.map(epcNameForSlot), ['0000:00:10.0', '0000:00:11.0']);
  t.match(epLinkArgs(1, '/s/l1.sock', '/s/host2.ram', 128, BRIDGE_EPC_SLOT[1]).join(' '), /vepc,id=link1-epc,.*link-id=1,peer-ram=\/s\/host2\.ram,aperture-size=128M,addr=0x11$/);
  t.notMatch(epLinkArgs(0, '/s/l0.sock', '/s/host.ram').join(' '), /addr=/, 'a pair keeps automatic placement');
  t.throws(() => epcNameForSlot(0x20), RangeError);
});
