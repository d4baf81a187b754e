/**
 * Memory windows: the peer_mw_trans write forms, and the mw step judged with the scenarios' own
 * expectations over guests that answer in ntb_tool's formats (captured mw_trans read) and parse
 * peer_mw_trans the way 6.12 ("%lli:%zi") or 7.1.8/7.2 ("%llu:%zu") do (docs/ntb-tool.md).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecResult, GuestExec } from '../../harness/guest/types.ts';
import { capabilityTable } from '../../harness/ntb/capability-table.ts';
import { decideCapabilities, parseFacts } from '../../harness/ntb/capabilities.ts';
import { describeWrite, errnoName, parseMwTrans, peerMwTransValue } from '../../harness/ntb/mw.ts';
import { NtbTool } from '../../harness/ntb/ntb-tool.ts';
import { judge } from '../../harness/scenario/expect.ts';
import { loadScenario } from '../../harness/scenario/load.ts';
import type { Rig } from '../../harness/scenario/rig.ts';
import { mw } from '../../harness/scenario/steps/data.ts';
import { Out } from '../../harness/scenario/steps/util.ts';
import type { Measurement } from '../../harness/results/model.ts';

const root = join(import.meta.dirname, '../..');
const mwTrans = readFileSync(join(root, 'test/fixtures/captured/ntb-tool-mw-trans.txt'), 'utf8');
const window = parseMwTrans(mwTrans)!;

type Release = '6.12' | '7.2';

/**
 * Whether `text` gives sscanf's n == 2 for ntb_tool's format, following lib/vsprintf.c: %lli/%zi take
 * base 0 (0x → hex, leading 0 → octal), %llu/%zu base 10, which reads "0x..." as 0 and stops at 'x'.
 */
function transAccepted(text: string, release: Release): boolean {
  const number = release === '6.12' ? /^\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/ : /^\s*[0-9]+/;
  const first = number.exec(text);
  if (!first) return false;
  const rest = text.slice(first[0].length);
  return rest.startsWith(':') && number.test(rest.slice(1));
}

t.test('the write forms', async (t) => {
  t.same(window, { dmaAddress: 0x4a40000n, size: 0x1000 });
  t.equal(peerMwTransValue(window.dmaAddress, window.size, 'documented'), '0x0000000004a40000:4096', 'as ntb_test.sh writes it: the address as mw_trans prints it');
  t.equal(peerMwTransValue(window.dmaAddress, window.size, 'decimal'), '77856768:4096');
  t.equal(peerMwTransValue(0xfffff000_00000000n, 0x100000, 'decimal'), '18446726481523507200:1048576', 'a 64-bit address stays exact');
  for (const release of ['6.12', '7.2'] as const) {
    t.ok(transAccepted(peerMwTransValue(window.dmaAddress, window.size, 'decimal'), release), `${release} accepts the decimal form`);
    t.ok(transAccepted(peerMwTransValue(window.dmaAddress, 0, 'decimal'), release), `${release} accepts the decimal unmap`);
  }
  t.ok(transAccepted('0x0000000004a40000:4096', '6.12'));
  t.notOk(transAccepted('0x0000000004a40000:4096', '7.2'), '%llu reads 0, then x is not the colon');
  t.notOk(transAccepted('0xADD0BA5E:16384', '7.2'), "the example in ntb_tool's own usage comment");
  t.equal(errnoName('sh: write error: Invalid argument'), 'EINVAL');
  t.equal(errnoName('ash: write error: Cannot allocate memory'), 'ENOMEM');
  t.equal(errnoName('something else'), undefined);
  t.equal(
    describeWrite({ ok: false, value: '0x1:2', file: '/d/peer0/peer_mw_trans0', error: 'sh: write error: Invalid argument', errno: 'EINVAL' }),
    "echo '0x1:2' > /d/peer0/peer_mw_trans0: EINVAL (sh: write error: Invalid argument)",
  );
});

/** One link's worth of ntb_tool: both sides share the receiver's buffer the outbound window maps. */
function fakePair(release: Release) {
  const dir = '/sys/kernel/debug/ntb_tool/0000:01:00.0';
  const writes: { guest: string; file: string; value: string; ok: boolean }[] = [];
  const state = { mapped: new Map<string, bigint>(), buffer: new Map<string, string>(), serial: 0 };
  const guest = (name: string): GuestExec => ({
    name,
    async exec(command: string): Promise<ExecResult> {
      const done = (stdout: string, exitCode = 0, stderr = ''): ExecResult => ({ command, stdout, stderr, exitCode, durationMs: 1 });
      const other = name === 'ep' ? 'host' : 'ep';
      const echo = /^echo '([^']*)' > '([^']*)'$/.exec(command);
      if (echo) {
        const [, value, file] = echo as unknown as [string, string, string];
        if (!file.endsWith('/peer_mw_trans0')) {
          writes.push({ guest: name, file, value, ok: true });
          return done('');
        }
        const ok = transAccepted(value, release);
        writes.push({ guest: name, file, value, ok });
        if (!ok) return done('', 1, 'sh: write error: Invalid argument');
        const [addr, size] = value.split(':') as [string, string];
        if (BigInt(size) === 0n) state.mapped.delete(name);
        else state.mapped.set(name, BigInt(addr));
        return done('');
      }
      if (command === `cat '${dir}/peer0/mw_trans0'`) return done(mwTrans);
      // Writes through peer_mw land in the peer's buffer only when the window maps its DMA address.
      const through = (side: string) => (state.mapped.get(side) === window.dmaAddress ? other : undefined);
      if (command.includes('dd if=/dev/urandom')) {
        const md5 = `${name}-${++state.serial}`;
        const target = command.includes('peer_mw0') ? through(name) : name;
        if (target) state.buffer.set(target, md5);
        return done(`${md5}  -\n`);
      }
      if (command.includes('| md5sum')) {
        const source = command.includes('peer_mw0') ? through(name) : name;
        return done(`${(source && state.buffer.get(source)) ?? 'garbage'}  -\n`);
      }
      return done('', 127, `unexpected command: ${command}`);
    },
  });
  const tools = { ep: new NtbTool(guest('ep'), dir), host: new NtbTool(guest('host'), dir) };
  return { rig: { linkedTools: async () => tools } as unknown as Rig, writes };
}

async function runMw(release: Release, facts: string) {
  const pair = fakePair(release);
  const list: Measurement[] = [];
  const step = { id: 'mw', type: 'mw' as const, direction: 'both' as const, size: 4096, index: 0 };
  await mw(pair.rig, step, new Out(list));
  const table = capabilityTable();
  const caps = { ...decideCapabilities(table, 'ep', parseFacts(facts)).values, ...decideCapabilities(table, 'host', parseFacts(facts)).values };
  return { results: list.map((m) => judge(m, step, { expectations: scenario.expect, caps, params: { Nh: 16, Ne: 16 } })), writes: pair.writes };
}

const scenario = await loadScenario(join(root, 'scenarios/ntb-bringup.yaml'));
const released = (release: Release) => (release === '7.2' ? 'modfile:ntb_tool\nstr:ntb_tool:0\n' : 'modfile:ntb_tool\n');

t.test('7.2: the hex form is its own XFAIL with the write and errno; the data still matches', async (t) => {
  const { results, writes } = await runMw('7.2', released('7.2'));
  const hex = results.filter((r) => r.check === 'hex_trans');
  t.same(
    hex.map((r) => [r.id, r.on, r.status, r.value]),
    [
      ['hex_trans[host-to-ep]', 'host', 'XFAIL', false],
      ['hex_trans[ep-to-host]', 'ep', 'XFAIL', false],
    ],
  );
  t.match(hex[0]!.message, /^upstream regression: ntb_tool parses peer_mw_trans with %llu:%zu/);
  t.match(hex[0]!.message, / — echo '0x0000000004a40000:4096' > \/sys\/kernel\/debug\/ntb_tool\/0000:01:00\.0\/peer0\/peer_mw_trans0: EINVAL \(sh: write error: Invalid argument\)$/);
  t.same(
    results.filter((r) => r.check === 'match').map((r) => r.status),
    ['PASS', 'PASS', 'PASS', 'PASS'],
    'md5 both ways, both directions',
  );
  t.same(
    writes.filter((w) => w.file.endsWith('peer_mw_trans0')).map((w) => `${w.guest} ${w.value} ${w.ok ? 'ok' : 'EINVAL'}`),
    ['host 0x0000000004a40000:4096 EINVAL', 'host 77856768:4096 ok', 'host 77856768:0 ok', 'ep 0x0000000004a40000:4096 EINVAL', 'ep 77856768:4096 ok', 'ep 77856768:0 ok'],
    'the unmap uses the decimal form too, so 7.x really frees the window',
  );
});

t.test('6.12: the hex form passes; without the regression an accepted hex write would be an XPASS', async (t) => {
  const { results } = await runMw('6.12', released('6.12'));
  t.same(
    results.map((r) => `${r.id} ${r.status}`),
    ['hex_trans[host-to-ep] PASS', 'match[host-to-ep peer_mw0→mw0] PASS', 'match[host-to-ep mw0→peer_mw0] PASS', 'hex_trans[ep-to-host] PASS', 'match[ep-to-host peer_mw0→mw0] PASS', 'match[ep-to-host mw0→peer_mw0] PASS'],
  );
  const fixed = await runMw('6.12', released('7.2'));
  t.equal(fixed.results.find((r) => r.check === 'hex_trans')!.status, 'XPASS', 'a module with the %llu format that accepts hex shows up');
});

t.test('without the probe the check cannot be judged (ERROR); without the expectation the refusal is a FAIL', async (t) => {
  const unknown = await runMw('7.2', '');
  const hex = unknown.results.find((r) => r.check === 'hex_trans')!;
  t.equal(hex.status, 'ERROR');
  t.match(hex.message, /cannot choose the expectation: capability host\.ntb_tool_decimal_mw_trans could not be probed/);
  const noExpectation = judge({ check: 'hex_trans', on: 'host', value: false, detail: 'x' }, { id: 'mw', type: 'mw' }, { expectations: {}, caps: {}, params: {} });
  t.equal(noExpectation.status, 'FAIL', 'a scenario without the known entry reports the refusal as a FAIL');
});
