import { execFileSync } from 'node:child_process';
import { arch } from 'node:os';
import t from 'tap';
import { buildMwcopy, median, parseMwcopy, parsePerfWindow, windowRegions } from '../../bench/mw.ts';

t.test('mwcopy lines become rates per target and pattern; other lines are ignored', async (t) => {
  const text = [
    'mwcopy target=ram layout=any pattern=io bytes=33554432 usecs=1000 mbps=33554.4',
    'mwcopy target=ram layout=any pattern=io bytes=33554432 usecs=2000 mbps=16777.2',
    'mwcopy target=ram layout=congruent pattern=io bytes=33554432 usecs=8000 mbps=4194.3',
    'mwcopy: window 0xfe800000 is /sys/bus/pci/devices/0000:01:00.0/resource4 + 0x0',
    'mwcopy target=window layout=any pattern=libc bytes=33554432 usecs=4000 mbps=8388.6',
    'mwcopy target=window layout=any pattern=sse bytes=1 usecs=1 mbps=1.0',
  ].join('\n');
  const rates = parseMwcopy(text);
  t.same(rates, { ram: { io: [33554.4, 16777.2] }, 'ram-congruent': { io: [4194.3] }, window: { libc: [8388.6] } });
  t.equal(median([3, 1, 2]), 2);
  t.ok(Number.isNaN(median(undefined)));
});

t.test("ntb_perf's info gives the window it writes into", async (t) => {
  const info = [
    'Port 0 (0), Global index 1:',
    '\tLink status: up',
    '\tOut buffer addr 0x0000000000000000',
    '\tOut buff phys addr 0x0000000010100000',
    '\tOut buffer size 0x0000000000100000',
  ].join('\n');
  t.same(parsePerfWindow(info), { phys: '0x0000000010100000', size: 0x100000 });
  t.equal(parsePerfWindow(info.replace('0x0000000010100000', '0x0000000000000000')), undefined, 'an unset window is none');
  t.equal(parsePerfWindow('Test status: idle'), undefined);
});

t.test('the link regions of info mtree -f, once each', async (t) => {
  const mtree = [
    'FlatView #0',
    '  00000000fe000000-00000000fe0fffff (prio 1, ram): peer-ram @0000000004a00000',
    '  00000000fe100000-00000000fe10ffff (prio 1, i/o): vepc-function.bar2',
    '  0000000040000000-000000005fffffff (prio 0, ram): mach-virt.ram',
    'FlatView #1',
    '  00000000fe000000-00000000fe0fffff (prio 1, ram): peer-ram @0000000004a00000',
  ].join('\n');
  t.same(windowRegions(mtree), ['00000000fe000000-00000000fe0fffff (prio 1, ram): peer-ram @0000000004a00000', '00000000fe100000-00000000fe10ffff (prio 1, i/o): vepc-function.bar2']);
});

t.test('mwcopy builds for both guest arches and copies on this machine', async (t) => {
  const x86 = await buildMwcopy('x86_64');
  await buildMwcopy('arm64');
  if (arch() !== 'x64') {
    t.comment('not an x86_64 machine: the x86_64 build cannot run here');
    return;
  }
  const out = execFileSync(x86, ['-t', '2', '-r', '1', 'ram'], { encoding: 'utf8' });
  const rates = parseMwcopy(out);
  for (const pattern of ['io', 'u64', 'libc'] as const) t.ok((rates.ram?.[pattern]?.[0] ?? 0) > 0, `${pattern} copies into RAM`);
  const congruent = parseMwcopy(execFileSync(x86, ['-A', '-t', '2', '-r', '1', '-p', 'io', 'ram'], { encoding: 'utf8' }));
  t.ok((congruent['ram-congruent']?.io?.[0] ?? 0) > 0, 'and with source and destination congruent');
  t.throws(() => execFileSync(x86, ['-s', '1000', 'ram'], { stdio: 'pipe' }), 'a size that chunks do not tile is refused');
});
