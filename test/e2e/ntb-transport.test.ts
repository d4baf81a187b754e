// ntb_transport + ntb_netdev through the real link, one representative cell each (6.12 new kernels,
// which the suite builds anyway): scenarios/ntb-transport.yaml on new/new (private network with SSH
// each way, ping, checksummed transfers, per-QP doorbell vectors and db_vector_mask answers), then
// scenarios/faults.yaml (relay MSI faults, a host stopped mid-transfer, a short soak), then
// scenarios/link-cut.yaml (the link cut during a one-way host→EP stream, ntb_netdev recovering), and no
// process left. scenarios/link-cut-race.yaml (the upstream tx-timer race that panics the EP) is not here.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

interface Check { id: string; check: string; status: string; value: unknown; message?: string; detail?: string }
interface Results {
  status: string;
  cells: { id: string; status: string; steps: { id: string; status: string; checks?: Check[] }[] }[];
}

function problems(results: Results): string[] {
  return results.cells.flatMap((cell) =>
    cell.steps.flatMap((step) =>
      (step.checks ?? []).filter((c) => !['PASS', 'XFAIL', 'SKIP'].includes(c.status)).map((c) => `${cell.id} ${step.id}.${c.id}: ${c.status} ${c.message ?? ''}`),
    ),
  );
}

function checks(results: Results, step: string, check: string): Check[] {
  return results.cells[0]!.steps.find((s) => s.id === step)?.checks?.filter((c) => c.check === check) ?? [];
}

/** Processes whose command line names this run's directory (ssh -i) or a QEMU socket of its guests. */
async function leftovers(dir: string, cell: string): Promise<string[]> {
  const needles = [dir];
  for (const guest of ['ep', 'host']) {
    const cmdline = await readFile(join(dir, cell, guest, 'qemu.cmdline'), 'utf8').catch(() => '');
    const qmp = /unix:([^,\s']+)/.exec(cmdline)?.[1];
    if (qmp) needles.push(qmp);
  }
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => needles.some((n) => line.includes(n)) && !line.includes('ps -eo'));
}

async function runCell(scenario: string, cell: string): Promise<{ dir: string; exitCode: number; results: Results }> {
  const dir = await mkdtemp(join(repoRoot, 'results', `e2e-${scenario}-`));
  const exitCode = await runCommand(join(repoRoot, 'scenarios', `${scenario}.yaml`), { results: dir, cell: [cell], timeoutScale: 1, log });
  return { dir, exitCode, results: JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results };
}

t.teardown(() => teardownAll());

t.test('ntb-transport new/new: SSH between the guests, netdev both ways, QP 0 on vector 0 only', async (t) => {
  const { dir, exitCode, results } = await runCell('ntb-transport', 'ep-new__host-new');
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), [], 'no failing check, no unexpected splat');
  for (const c of checks(results, 'peers', 'ssh')) t.equal(c.status, 'PASS', `ssh ${c.id}`);
  for (const c of checks(results, 'transfer', 'match')) t.equal(c.status, 'PASS', `transfer ${c.id} intact`);
  const rates = checks(results, 'transfer', 'kbit_s');
  t.equal(rates.length, 2, 'a throughput each way');
  for (const c of rates) t.comment(`${c.id}: ${String(c.value)} kbit/s`);
  // On new kernels QP 0's doorbells arrive on vector 0 and db_vector_mask(0) names QP 0 alone.
  const vectors = checks(results, 'transfer', 'vectors');
  t.equal(vectors.length, 2);
  for (const c of vectors) t.same([c.status, c.value], ['PASS', [0]], `vectors ${c.id}`);
  const masks = checks(results, 'transfer', 'vector_mask');
  t.ok(masks.length >= 2, 'a db_vector_mask answer on each receiver');
  for (const c of masks) t.same([c.status, c.value], ['PASS', 1], `vector_mask ${c.id}`);
  t.equal(exitCode, 0, 'ntbh run exits 0');
  t.same(await leftovers(dir, 'ep-new__host-new'), [], 'no QEMU or SSH process of the run is left');
});

t.test('faults new/new: MSI drop/delay/duplicate seen exactly, netdev recovers from a stopped host, soak clean', async (t) => {
  const { dir, exitCode, results } = await runCell('faults', 'ep-new__host-new');
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), [], 'no failing check, no unexpected splat');
  const trace = (await readFile(join(dir, results.cells[0]!.id, 'wire.ndjson'), 'utf8').catch(() => '')).split('\n').filter((l) => l.includes('"FAULT"'));
  t.equal(trace.length, 3 + 2 + 2, 'wire.ndjson records every injected fault (3 drops, 2 duplicates, 2 delays)');
  for (const step of ['drop', 'duplicate', 'delay']) t.equal(checks(results, step, 'recovered')[0]?.status, 'PASS', `${step}: the next ring is normal`);
  t.equal(checks(results, 'stop-host', 'transfer_survived')[0]?.status, 'PASS', 'a transfer cut by stopping the host finishes intact after cont');
  for (const check of ['lost', 'duplicated']) t.equal(checks(results, 'soak', check)[0]?.value, 0, `soak: ${check} MSIs`);
  t.ok(Number(checks(results, 'soak', 'coalesced')[0]?.value) >= 0, 'soak: merged interrupts reported');
  t.comment(`soak: ${JSON.stringify(checks(results, 'soak', 'msis')[0]?.detail ?? '')}`);
  t.equal(exitCode, 0, 'ntbh run exits 0');
  t.same(await leftovers(dir, 'ep-new__host-new'), [], 'no QEMU or SSH process of the run is left');
});

t.test('link-cut new/new: the link cut mid-stream, ntb_netdev back after the reload, intact both ways', async (t) => {
  const { dir, exitCode, results } = await runCell('link-cut', 'ep-new__host-new');
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), [], 'no failing check, no unexpected splat');
  t.equal(checks(results, 'cut', 'traffic_during')[0]?.status, 'PASS', 'frames were arriving on the EP when the link went down');
  t.equal(checks(results, 'cut', 'receiver_tx')[0]?.value, 0, 'the EP sent nothing around the cut (its transmit queue idle: the upstream race cannot fire)');
  for (const check of ['host_gone', 'wire_down', 'host_back', 'driver_bound', 'wire_up']) t.equal(checks(results, 'cut', check)[0]?.status, 'PASS', check);
  t.same(checks(results, 'cut', 'netdev_without_reload').map((c) => [c.status, c.value]), [['PASS', false]], 'released ntb_transport makes no interface for the re-plugged device by itself');
  t.same(checks(results, 'cut', 'carrier').map((c) => c.status), ['PASS', 'PASS'], 'carrier back on both sides');
  t.same(checks(results, 'cut', 'match').map((c) => c.status), ['PASS', 'PASS'], 'a transfer each way after the cut arrives intact');
  t.equal(exitCode, 0, 'ntbh run exits 0');
  t.same(await leftovers(dir, 'ep-new__host-new'), [], 'no QEMU or SSH process of the run is left');
});
