// End-to-end through the real link: our QEMU devices, our EPC driver in an arm64 EP guest, the
// unmodified endpoint functions and host drivers, booted from real kernels. Each scenario runs as
// `ntbh run` does and its results.json is checked.
import t from 'tap';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

interface Results {
  status: string;
  cells: { id: string; status: string; steps: { id: string; status: string; values: Record<string, unknown>; checks?: { id: string; status: string; message?: string }[] }[] }[];
  interop?: { status: string };
}

async function runScenario(file: string, cells?: string[]): Promise<{ exitCode: number; results: Results; dir: string }> {
  const dir = await mkdtemp(join(repoRoot, 'results', `e2e-${file.replace(/\W+/g, '-')}-`));
  const exitCode = await runCommand(join(repoRoot, 'scenarios', file), { results: dir, cell: cells, timeoutScale: 1, log });
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  return { exitCode, results, dir };
}

/** Every check that is neither PASS nor XFAIL, for a readable failure message. */
function problems(results: Results): string[] {
  return results.cells.flatMap((cell) =>
    cell.steps.flatMap((step) =>
      (step.checks ?? []).filter((c) => !['PASS', 'XFAIL', 'SKIP'].includes(c.status)).map((c) => `${cell.id} ${step.id}.${c.id}: ${c.status} ${c.message ?? ''}`),
    ),
  );
}

t.teardown(() => teardownAll());

t.test('pci-epf-test through the link: BARs, every MSI vector, read/write/copy all pass', async (t) => {
  const { exitCode, results, dir } = await runScenario('pci-epf-test.yaml');
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), [], 'no failing check');
  t.equal(results.status, 'PASS');
  t.equal(exitCode, 0);
  const msi = results.cells[0]!.steps.find((s) => s.id === 'msi');
  t.ok(msi && msi.status === 'PASS', 'MSI per vector, relay counts equal /proc/interrupts deltas');
});

t.test('NTB bring-up on stock kernels: link, spads, doorbells, memory windows, link down/up twice', async (t) => {
  const { exitCode, results, dir } = await runScenario('ntb-bringup.yaml');
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), [], 'no failing check (stock vntb quirks are declared XFAIL)');
  t.equal(exitCode, 0);
});

t.test('interop slice: new/new meets the strict spec, old/old reproduces the defects, mixed pairs deliver', async (t) => {
  const cells = ['ep-new__host-new', 'ep-old__host-old', 'ep-old__host-new'];
  const { exitCode, results, dir } = await runScenario('doorbell-interop.yaml', cells);
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), [], 'no unexpected result');
  const byId = new Map(results.cells.map((c) => [c.id, c]));
  t.equal(byId.get('ep-new__host-new')?.status, 'PASS', 'new/new passes the strict spec');
  const oldOld = byId.get('ep-old__host-old');
  t.equal(oldOld?.status, 'XFAIL', 'old/old shows the known defects as expected failures');
  t.equal(exitCode, 0);
});

t.test('atomic-context reproducer: an old EP splats in the pingpong step, a new EP does not', async (t) => {
  const { exitCode, results, dir } = await runScenario('atomic-context.yaml');
  t.comment(`artifacts: ${dir}`);
  t.same(problems(results), []);
  t.equal(exitCode, 0);
});
