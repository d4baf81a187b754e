import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { GuestExec } from '../../harness/guest/types.ts';
import { NtbTool, parseWaitDb } from '../../harness/ntb/ntb-tool.ts';
import { parseSections } from '../../harness/scenario/steps/observe.ts';

t.test('parseSections splits batched output at its markers and keeps empty sections', async (t) => {
  const text = 'noise before\n@@ntbh:baseline\n0x0\n@@ntbh:kmsg\n@@ntbh:irq\n  CPU0\n 24: 1 IR-PCI-MSI ntb_epf\n';
  const sections = parseSections(text);
  t.same([...sections.keys()], ['baseline', 'kmsg', 'irq']);
  t.equal(sections.get('baseline'), '0x0');
  t.equal(sections.get('kmsg'), '');
  t.match(sections.get('irq'), /ntb_epf/);
});

t.test('waitDbScript settles on a changed db and reports it, in a real shell', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-db-'));
  writeFileSync(join(dir, 'db'), '0x8\n');
  const tool = new NtbTool({ name: 'local' } as GuestExec, dir);
  const script = tool.waitDbScript(0, 200, 3, true);
  const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  t.same(parseWaitDb(out), { value: 8, changed: true });
  writeFileSync(join(dir, 'db'), '0\n');
  const quiet = execFileSync('/bin/sh', ['-c', tool.waitDbScript(0, 50, 3, false)], { encoding: 'utf8' });
  t.same(parseWaitDb(quiet), { value: 0, changed: false }, 'an unchanged db (kernel prints "0") is not a change');
});

t.test("waitDbScript's quiet window is measured on the guest's clock, not counted in polls", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-db-'));
  writeFileSync(join(dir, 'db'), '0\n');
  const tool = new NtbTool({ name: 'local' } as GuestExec, dir);
  const started = Date.now();
  execFileSync('/bin/sh', ['-c', tool.waitDbScript(0, 500, 3, false)], { encoding: 'utf8' });
  const took = Date.now() - started;
  t.ok(took >= 400, `watched the whole window (${took} ms)`);
  t.ok(took < 2000, `and not much longer (${took} ms)`);
});

t.test('a quiet window also makes its minimum number of reads, however short the window', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-db-'));
  writeFileSync(join(dir, 'db'), '0\n');
  const tool = new NtbTool({ name: 'local' } as GuestExec, dir);
  // A read that logs itself: `cat` is found on PATH first, so every poll leaves a line.
  const bin = mkdtempSync(join(tmpdir(), 'ntbh-bin-'));
  writeFileSync(join(bin, 'cat'), `#!/bin/sh\necho read >> ${join(dir, 'reads')}\nexec /bin/cat "$@"\n`, { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const out = execFileSync('/bin/sh', ['-c', tool.waitDbScript(0, 1, 3, false, 7)], { encoding: 'utf8', env });
  t.same(parseWaitDb(out), { value: 0, changed: false });
  const reads = execFileSync('/bin/sh', ['-c', `/bin/cat ${join(dir, 'reads')}`], { encoding: 'utf8' }).trim().split('\n');
  t.equal(reads.length, 7, 'a 1 ms window still read db 7 times');
});
