// The pci-epf-ntb bridge as a scenario (topology: bridge), end to end: `ntbh run` boots three real guests
// (stock 6.12: an arm64 EP with two controllers, two x86_64 hosts) through two real links, and
//  1. the cell passes (XFAIL where 6.12's ntb_hw_epf is known to differ), with results naming the three
//     guests, host2's checks labelled as such, and each host's link traced on its own;
//  2. Ctrl-C in the middle of a run leaves no QEMU, relay or SSH process and no scratch behind.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { repoRoot } from '../../harness/util/paths.ts';

const ntbh = join(repoRoot, 'bin', 'ntbh.js');
const SCENARIO = join(repoRoot, 'scenarios', 'epf-ntb-bridge.yaml');
const CELL = 'ep-stock__host-stock';
const log = (line: string) => process.stderr.write(`  ${line}\n`);

interface Check {
  id: string;
  check: string;
  status: string;
  on?: string;
  value: unknown;
}
interface Results {
  exitCode: number;
  cells: {
    id: string;
    status: string;
    guests?: string[];
    sides?: Record<string, string>;
    kernels: Record<string, { release?: string }>;
    params: Record<string, number>;
    steps: { id: string; status: string; checks: Check[] }[];
  }[];
}

/** Processes whose command line mentions `needle` (not ps itself). */
async function processesMentioning(needle: string): Promise<string[]> {
  const ps = await execa('ps', ['-eo', 'pid,args', '--no-headers']);
  return ps.stdout.split('\n').filter((line) => line.includes(needle) && !/\bps -eo\b/.test(line));
}

t.test('the bridge cell passes with three guests named in its results', async (t) => {
  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-bridge-'));
  t.comment(`artifacts: ${dir}`);
  const run = await execa(process.execPath, [ntbh, 'run', SCENARIO, '--cell', CELL, '--results', dir], { cwd: repoRoot, reject: false, all: true });
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  const cell = results.cells[0]!;
  const notOk = cell.steps.flatMap((s) => s.checks.filter((c) => !['PASS', 'XFAIL'].includes(c.status)).map((c) => `${s.id} ${c.id}=${JSON.stringify(c.value)} ${c.status}`));
  t.equal(run.exitCode, 0, `ntbh run exits 0 (${notOk.join('; ') || 'all checks PASS or XFAIL'})${run.exitCode ? `\n${run.all?.slice(-3000)}` : ''}`);
  t.same(cell.guests, ['ep', 'host', 'host2'], 'three guests');
  t.same(cell.sides, { ep: 'host2', host: 'host' }, "the steps' ep side is host2");
  t.match(cell.kernels.host2?.release ?? '', /^6\.12\./, 'host2 boots the host kernel');

  const setup = cell.steps.find((s) => s.id === 'setup')!;
  for (const host of ['host', 'host2']) {
    t.equal(setup.checks.find((c) => c.id === `driver_bound[${host}]`)?.status, 'PASS', `ntb_hw_epf bound on ${host}`);
  }
  t.ok(cell.params.Nh! >= 2 && cell.params.Ne! >= 2, `MSI vectors: host ${cell.params.Nh}, host2 ${cell.params.Ne}`);

  // Every bit both ways, observed on the receiving host and, on its own link, by the relay.
  const sweep = cell.steps.find((s) => s.id === 'sweep')!;
  const bits = Math.min(cell.params.Nh!, cell.params.Ne!) - 2;
  for (const direction of ['host-to-host2', 'host2-to-host']) {
    const db = sweep.checks.filter((c) => c.id.startsWith(`db[${direction} bit `));
    t.equal(db.length, bits, `${direction}: ${bits} single-bit rings`);
    t.ok(db.every((c) => c.status === 'PASS'), `${direction}: each bit arrived as itself`);
    const wire = sweep.checks.filter((c) => c.id.startsWith(`wire[${direction} bit `));
    t.equal(wire.length, bits, `${direction}: the receiver's link witnessed every ring`);
    t.ok(wire.every((c) => c.status === 'PASS'), `${direction}: on the expected vector`);
  }

  const cellDir = join(dir, CELL);
  for (const guest of ['ep', 'host', 'host2']) {
    t.ok(existsSync(join(cellDir, guest, 'qemu.cmdline')), `${guest}'s QEMU command line is kept`);
    t.ok(existsSync(join(cellDir, guest, 'console.log')), `${guest}'s console is kept`);
  }
  for (const link of ['wire-link0.ndjson', 'wire-link1.ndjson']) {
    const trace = (await readFile(join(cellDir, link), 'utf8')).split('\n').filter(Boolean);
    t.ok(trace.some((line) => /"type":"MEM_WRITE"/.test(line)), `${link}: the doorbells crossed as the EP's MSI writes`);
  }
  const html = await readFile(join(dir, 'report.html'), 'utf8');
  t.match(html, /host2-to-host bit 0/, 'the report names host2');
});

t.test('Ctrl-C in the middle of a bridge run leaves nothing behind', async (t) => {
  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-bridge-int-'));
  const child = spawn(process.execPath, [ntbh, 'run', SCENARIO, '--cell', CELL, '--results', dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
  }
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Interrupt once all three guests run and a step is under way.
  const deadline = Date.now() + 15 * 60_000;
  while (!/step (link|sweep)/.test(text) && Date.now() < deadline && child.exitCode === null) await sleep(200);
  t.match(text, /step (link|sweep)/, 'the cell got to its steps');
  const shm = await scratchOf(join(dir, CELL));
  t.ok(shm, `scratch directory ${shm}`);
  t.ok((await processesMentioning(shm!)).length >= 3, 'three QEMUs ran on the scratch');
  child.kill('SIGINT');
  t.equal(await Promise.race([exit, sleep(120_000, undefined, { ref: false }).then(() => 'timeout')]), 130, 'ntbh run exits 130 on Ctrl-C');
  await sleep(500);
  t.same(await processesMentioning(dir), [], 'no process left that names the run');
  t.same(await processesMentioning(shm!), [], 'no QEMU left on the scratch');
  t.notOk(existsSync(shm!), 'scratch directory removed');
  log(text.split('\n').slice(-5).join('\n'));
});

/** The cell's tmpfs scratch, from the host's QEMU command line (its RAM file lives there). */
async function scratchOf(cellDir: string): Promise<string | undefined> {
  for (let i = 0; i < 100 && !existsSync(join(cellDir, 'host', 'qemu.cmdline')); i++) await sleep(100);
  const cmdline = await readFile(join(cellDir, 'host', 'qemu.cmdline'), 'utf8').catch(() => '');
  return /mem-path=(\S+)\/host\.ram/.exec(cmdline)?.[1] ?? (await readdir(cellDir).then(() => undefined));
}
