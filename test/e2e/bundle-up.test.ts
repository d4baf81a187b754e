// Reproducer bundles and the live pair, end to end with real guests through the real link:
//  1. one real cell (ntb-bringup, stock 6.12 on both sides) runs; its bundle is moved out of the run
//     directory and reproduce.sh reruns the cell from there, with the same statuses check for check;
//  2. `ntbh up` keeps that cell's pair up: `ntbh ssh` reaches both guests, `ntbh step` rings a doorbell
//     on the live pair, `ntbh wire` shows the MSIs as they arrive, and Ctrl-C leaves no process behind.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';
import type { BundleManifest } from '../../harness/run/bundle.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const ntbh = join(repoRoot, 'bin', 'ntbh.js');
const SCENARIO = join(repoRoot, 'scenarios', 'ntb-bringup.yaml');
const CELL = 'ep-stock__host-stock';

interface Results {
  exitCode: number;
  cells: { id: string; status: string; kernels: Record<string, { release: string; sha256?: string; key: string }>; steps: { id: string; status: string; checks: { id: string; status: string }[] }[] }[];
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Processes whose command line mentions `needle` (not ps itself). */
async function processesMentioning(needle: string): Promise<string[]> {
  const ps = await execa('ps', ['-eo', 'pid,args', '--no-headers']);
  return ps.stdout.split('\n').filter((line) => line.includes(needle) && !/\bps -eo\b/.test(line));
}

/** Collects a child's stdout and resolves when it matches. */
function waitOutput(child: ChildProcess, buffer: { text: string }, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(buffer.text);
      if (match) {
        cleanup();
        resolve(match);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${pattern} within ${timeoutMs / 1000} s; output so far:\n${buffer.text.slice(-3000)}`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`process exited (${code}) before ${pattern}; output:\n${buffer.text.slice(-3000)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', check);
    child.on('exit', onExit);
    check();
  });
}

function spawnCollecting(args: string[]): { child: ChildProcess; out: { text: string } } {
  const child = spawn(process.execPath, [ntbh, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => (out.text += chunk));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => log(chunk.trimEnd()));
  return { child, out };
}

t.teardown(() => teardownAll());

t.test('a cell\'s bundle, moved to another directory, reproduces the cell\'s statuses', async (t) => {
  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-bundle-'));
  t.comment(`artifacts: ${dir}`);
  await runCommand(SCENARIO, { results: dir, cell: [CELL], timeoutScale: 1, log });
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  const cell = results.cells.find((c) => c.id === CELL)!;
  t.ok(cell, 'the cell ran');

  const bundle = join(dir, CELL, 'bundle');
  for (const file of ['bundle.json', 'scenario.yaml', 'expected.json', 'reproduce.sh', 'qemu/ep.cmdline', 'qemu/host.cmdline', 'kernels/ep/config', 'kernels/ep/metadata.json', 'kernels/host/config']) {
    t.ok(existsSync(join(bundle, file)), `bundle has ${file}`);
  }
  const manifest = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as BundleManifest;
  t.equal(manifest.kernels.ep?.sha256, cell.kernels.ep?.sha256, 'EP source sha256 recorded');
  t.equal(manifest.kernels.host?.key, cell.kernels.host?.key, 'host kernel key recorded');
  t.ok(manifest.qemu?.key && manifest.qemu.dsc, `QEMU build ${manifest.qemu?.dsc}`);
  for (const file of await filesUnder(bundle)) {
    t.notOk((await readFile(file, 'utf8')).includes(dir), `${file.slice(bundle.length + 1)} names no path in the run directory`);
  }

  // Out of the checkout: reproduce.sh must find the harness through NTBH_HOME.
  const away = await mkdtemp(join(tmpdir(), 'ntbh-moved-'));
  t.teardown(() => rm(away, { recursive: true, force: true }));
  const moved = join(away, 'bundle');
  await rename(bundle, moved);
  const rerun = await mkdtemp(join(repoRoot, 'results', 'e2e-reproduce-'));
  const result = await execa('sh', [join(moved, 'reproduce.sh'), '--results', rerun], { cwd: away, env: { NTBH_HOME: repoRoot }, reject: false, all: true });
  t.comment(result.all.split('\n').filter((l) => /^(tools:|inputs:|  (same|DIFFERS) |REPRODUCED|NOT REPRODUCED|\d+ check)/.test(l)).join('\n'));
  const outcome = JSON.parse(await readFile(join(rerun, 'reproduce.json'), 'utf8')) as { reproduced: boolean; differences: unknown[]; exitCode: number };
  t.same(outcome.differences, [], 'every check has its recorded status');
  t.ok(outcome.reproduced, 'REPRODUCED');
  t.match(result.stdout, /REPRODUCED: cell/);
  t.equal(result.exitCode, manifest.expected.exitCode, `reproduce.sh exits as the cell did (${manifest.expected.exitCode})`);
});

t.test('ntbh up: ssh into both guests, a doorbell step on the live pair, wire shows it, Ctrl-C leaves nothing', async (t) => {
  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-up-'));
  t.comment(`artifacts: ${dir}`);
  const up = spawnCollecting(['up', SCENARIO, '--cell', CELL, '--results', dir]);
  let upExited = false;
  up.child.on('exit', () => (upExited = true));
  t.teardown(() => {
    if (!upExited) up.child.kill('SIGKILL');
  });
  await waitOutput(up.child, up.out, /^pair up: cell (\S+)/m, 20 * 60_000);
  const live = JSON.parse(await readFile(join(dir, 'live.json'), 'utf8')) as { guests: Record<string, { release: string }>; steps: string[] };
  t.equal(statSync(join(dir, 'control.sock')).mode & 0o777, 0o600, 'control socket is 0600');

  for (const side of ['ep', 'host']) {
    const uname = await execa(process.execPath, [ntbh, 'ssh', dir, side, 'uname', '-r'], { cwd: repoRoot, reject: false });
    t.equal(uname.exitCode, 0, `ntbh ssh ${side} uname -r exits 0`);
    t.match(uname.stdout.trim(), /^6\.12\./, `${side} runs 6.12 (${uname.stdout.trim()})`);
    t.equal(uname.stdout.trim(), live.guests[side]!.release, `${side} release as live.json says`);
  }

  const wire = spawnCollecting(['wire', dir]);
  await waitOutput(wire.child, wire.out, /^rings: /m, 120_000);
  // Only what the wire shows after the step started counts.
  const before = wire.out.text.length;
  const sinceStep = { get text() { return wire.out.text.slice(before); } };
  const step = await execa(process.execPath, [ntbh, 'step', dir, 'doorbell'], { cwd: repoRoot, reject: false, all: true });
  t.comment(step.stdout);
  t.equal(step.exitCode, 0, 'the doorbell step passes on the live pair (PASS/XFAIL)');
  t.match(step.stdout, /doorbell \(doorbell-sweep\): (PASS|XFAIL)/);
  t.match(step.stdout, /doorbell\.db/, 'its checks are printed');
  const rings = await waitOutput(wire.child, sinceStep, /^rings: link up; MSI delivered (v\d+=\d+.*)$/m, 60_000);
  t.pass(`wire shows the rings: ${rings[1]}`);
  t.match(sinceStep.text, /RAISE_IRQ/, 'and the messages');
  wire.child.kill('SIGINT');
  await new Promise((resolve) => wire.child.once('exit', resolve));

  const list = await execa(process.execPath, [ntbh, 'step', dir], { cwd: repoRoot, reject: false });
  t.equal(list.stdout.trim(), `${CELL}: ${live.steps.join(' ')}`, 'ntbh step without a step lists them');
  const bad = await execa(process.execPath, [ntbh, 'step', dir, 'no-such-step'], { cwd: repoRoot, reject: false, all: true });
  t.equal(bad.exitCode, 3, 'an unknown step is bad input');
  t.match(bad.all, /NO_SUCH_STEP/);

  // Ctrl-C: QEMU (both), the relay, SSH sessions and the control socket all go.
  const hostCmdline = await readFile(join(dir, CELL, 'host', 'qemu.cmdline'), 'utf8');
  const shm = /mem-path=(\S+)\/[^/]+\/host\.ram/.exec(hostCmdline)?.[1];
  t.ok(shm, `scratch directory ${shm}`);
  const pid = up.child.pid!;
  const exit = new Promise<number | null>((resolve) => up.child.once('exit', (code) => resolve(code)));
  up.child.kill('SIGINT');
  t.equal(await exit, 130, 'ntbh up exits 130 on Ctrl-C');
  await sleep(500);
  t.same(await processesMentioning(dir), [], 'no process left that belongs to the run');
  t.same(await processesMentioning(shm!), [], 'no QEMU left on the run\'s scratch');
  const children = (await execa('ps', ['-o', 'pid,args', '--no-headers', '--ppid', String(pid)], { reject: false })).stdout.trim();
  t.equal(children, '', 'no child of the up process left');
  t.notOk(existsSync(join(dir, 'control.sock')), 'control socket removed');
  t.notOk(existsSync(join(dir, 'live.json')), 'live.json removed');
  t.notOk(existsSync(shm!), 'scratch directory removed');
});
