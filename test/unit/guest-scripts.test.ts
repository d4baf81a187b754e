/**
 * The shell the step library sends to guests, run here under /bin/sh against files in a temp
 * directory: the syntax and the polling logic, not the kernel behaviour (that needs the real pair).
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecOptions, ExecResult, GuestExec } from '../../harness/guest/types.ts';
import { capabilityTable } from '../../harness/ntb/capability-table.ts';
import { moduleStringsScript, parseFacts, probeScript } from '../../harness/ntb/capabilities.ts';
import { NtbTool } from '../../harness/ntb/ntb-tool.ts';
import { pollScript } from '../../harness/ntb/shell.ts';

/** A GuestExec that runs commands with the local /bin/sh. */
function localGuest(name = 'local'): GuestExec & { commands: string[] } {
  const commands: string[] = [];
  return {
    name,
    commands,
    exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
      commands.push(command);
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', command]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => {
          child.kill();
          reject(Object.assign(new Error('timeout'), { code: 'EXEC_TIMEOUT' }));
        }, options.timeoutMs ?? 30_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ command, stdout, stderr, exitCode: code ?? 255, durationMs: Date.now() - started });
        });
      });
    },
  };
}

function toolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-tool-'));
  mkdirSync(join(dir, 'peer0'));
  writeFileSync(join(dir, 'db'), '0\n');
  writeFileSync(join(dir, 'peer0', 'link'), 'N\n');
  for (const i of [0, 1, 2]) writeFileSync(join(dir, `spad${i}`), '0\n');
  return dir;
}

t.test('waitDb sees a change made while it polls, and waits for it to settle', async (t) => {
  const dir = toolDir();
  const tool = new NtbTool(localGuest(), dir);
  setTimeout(() => writeFileSync(join(dir, 'db'), '0x8\n'), 150);
  setTimeout(() => writeFileSync(join(dir, 'db'), '0x28\n'), 200);
  const result = await tool.waitDb(0, 3_000, 15);
  t.same(result, { value: 0x28, changed: true });
});

t.test('waitDb gives up after its timeout with the baseline, and a quiet watch never stops early', async (t) => {
  const dir = toolDir();
  const tool = new NtbTool(localGuest(), dir);
  const started = Date.now();
  t.same(await tool.waitDb(0, 300), { value: 0, changed: false });
  t.ok(Date.now() - started >= 250, 'it waited');
  setTimeout(() => writeFileSync(join(dir, 'db'), '0x1\n'), 100);
  t.same(await tool.waitDb(0, 400, 3, false), { value: 1, changed: true }, 'watching: reports the change at the end');
});

t.test('ntb_tool writes and reads', async (t) => {
  const dir = toolDir();
  const guest = localGuest();
  const tool = new NtbTool(guest, dir);
  t.same(await tool.ringPeer(0x4), { ok: true });
  t.equal(readFileSync(join(dir, 'peer_db'), 'utf8'), 's 0x4\n');
  await tool.clearDb(0xffffffff);
  t.equal(readFileSync(join(dir, 'db'), 'utf8'), 'c 0xffffffff\n');
  t.equal(await tool.spadCount(), 3);
  setTimeout(() => writeFileSync(join(dir, 'peer0', 'link'), 'Y\n'), 100);
  t.equal(await tool.waitPeerLink(2_000), true);
  const refused = await new NtbTool(guest, join(dir, 'missing')).ringPeer(1);
  t.equal(refused.ok, false, 'a refused write is returned, not thrown');
});

t.test('pollScript exits with the condition', async (t) => {
  const guest = localGuest();
  t.equal((await guest.exec(pollScript('echo Y', '[ "$v" = Y ]', 100))).exitCode, 0);
  const no = await guest.exec(pollScript('echo N', '[ "$v" = Y ]', 100));
  t.equal(no.exitCode, 1);
  t.equal(no.stdout.trim(), 'N');
});

t.test('the capability probe script runs under sh and yields facts', async (t) => {
  const table = capabilityTable();
  const script = probeScript([...table.values()].map((d) => d.probe));
  const check = spawnSync('/bin/sh', ['-n', '-c', script]);
  t.equal(check.status, 0, `sh -n: ${check.stderr}`);
  const result = await localGuest().exec(script);
  t.equal(result.exitCode, 0);
  t.match(parseFacts(result.stdout).release ?? '', /\S/, 'uname -r came back');
});

t.test('module string probes see text between NUL bytes, compressed or not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-ko-'));
  const ko = join(dir, 'ntb_hw_epf.ko');
  writeFileSync(ko, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1]), Buffer.from('\0\x016ntb_epf %s: Unexpected reserved doorbell slot IRQ received\n\0ntb_epf_peer_db_set\0')]));
  spawnSync('gzip', ['-k', ko]);
  const guest = localGuest();
  for (const file of [ko, `${ko}.gz`]) {
    const out = await guest.exec(moduleStringsScript(`'${file}'`, 'ntb_hw_epf', ['Unexpected doorbell vector', 'Unexpected reserved doorbell slot IRQ received']));
    t.equal(out.stdout.trim(), 'str:ntb_hw_epf:1', `${file}: only the string that is there`);
  }
});
