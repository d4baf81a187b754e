// Nightly CI end to end: two cells of the doorbell-interop matrix (stock and new EP, stock host; 6.12
// kernels the suite already builds) as one run, then as two shards merged with `ntbh merge`; the merged
// directory must carry the same status for every check and interop group. Then `ntbh compare` between
// the single run and a copy with one passing check turned FAIL must exit 1 and name it, and a
// known-issues entry for that check must turn it into a known failure (exit 0).
import t from 'tap';
import { cp, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const scenario = join(repoRoot, 'scenarios', 'doorbell-interop.yaml');
const cells = ['ep-stock__host-stock', 'ep-new__host-stock'];
const ntbh = (...args: string[]) => execa('node', [join(repoRoot, 'bin', 'ntbh.js'), ...args], { cwd: repoRoot, reject: false, env: { NO_COLOR: '1' } });

interface Results {
  exitCode: number;
  totals: Record<string, number>;
  interop: { groups: { direction: string; receiver: string; variant: string; status: string }[] };
  cells: { id: string; status: string; steps: { id: string; status: string; checks: { id: string; status: string }[] }[] }[];
}

const readResults = async (dir: string) => JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;

/** Every status of a run, keyed so two runs can be compared line by line. */
function statuses(results: Results): string[] {
  const out: string[] = [];
  for (const cell of results.cells) {
    out.push(`${cell.id} = ${cell.status}`);
    for (const step of cell.steps) {
      out.push(`${cell.id} ${step.id} = ${step.status}`);
      for (const check of step.checks) out.push(`${cell.id} ${step.id}.${check.id} = ${check.status}`);
    }
  }
  for (const g of results.interop.groups) out.push(`interop ${g.direction} ${g.receiver}-${g.variant} = ${g.status}`);
  return out;
}

t.teardown(() => teardownAll());

t.test('two shards merged equal the single run check for check; compare names a regression', async (t) => {
  const root = await mkdtemp(join(repoRoot, 'results', 'e2e-shards-'));
  t.comment(`artifacts: ${root}`);
  const single = join(root, 'single');
  const singleExit = await runCommand(scenario, { results: single, cell: cells, timeoutScale: 1, log });
  const shardDirs = [join(root, 'shard-1'), join(root, 'shard-2')];
  for (const [i, dir] of shardDirs.entries()) {
    await runCommand(scenario, { results: dir, cell: cells, shard: `${i + 1}/2`, timeoutScale: 1, log });
    const record = JSON.parse(await readFile(join(dir, 'shard.json'), 'utf8')) as { selected: string[] };
    t.equal(record.selected.length, 1, `shard ${i + 1}/2 ran one cell (${record.selected.join(' ')})`);
  }

  const merged = join(root, 'merged');
  const merge = await ntbh('merge', ...shardDirs, '--results', merged);
  t.comment(merge.stdout.split('\n').slice(-4).join('\n'));
  const base = await readResults(single);
  const together = await readResults(merged);
  t.same(statuses(together), statuses(base), 'every cell, step, check and interop group has the same status');
  t.ok(together.interop.groups.some((g) => g.receiver === 'host' && g.status !== 'SKIP'), 'the host receiver was compared across both EP senders');
  t.same(together.totals, base.totals, 'same totals');
  t.equal(together.exitCode, base.exitCode, 'same exit code');
  t.equal(merge.exitCode, singleExit, 'ntbh merge exits as the single run did');
  for (const file of ['junit.xml', 'results.tap', 'summary.md', 'kcidb.json', 'events.ndjson', ...cells.map((c) => join(c, 'ep', 'console.log'))]) {
    t.ok(await stat(join(merged, file)).then(() => true, () => false), `merged ${file}`);
  }

  const same = await ntbh('compare', single, merged, '--format', 'json');
  const sameJson = JSON.parse(same.stdout) as { changes: unknown[]; newChecks: unknown[]; missingChecks: unknown[] };
  t.equal(same.exitCode, 0, 'compare single vs merged: exit 0');
  t.same([sameJson.changes, sameJson.newChecks, sameJson.missingChecks], [[], [], []], 'compare single vs merged: no status changes');

  // One check that passed, turned FAIL in a copy of the single run.
  const broken = join(root, 'broken');
  await cp(single, broken, { recursive: true });
  const data = JSON.parse(await readFile(join(broken, 'results.json'), 'utf8')) as Results;
  const cell = data.cells.find((c) => c.steps.some((s) => s.checks.some((k) => k.status === 'PASS')))!;
  const step = cell.steps.find((s) => s.checks.some((k) => k.status === 'PASS'))!;
  const check = step.checks.find((k) => k.status === 'PASS')!;
  check.status = 'FAIL';
  await writeFile(join(broken, 'results.json'), JSON.stringify(data));
  const name = `${cell.id} ${step.id}.${check.id}`;

  const compare = await ntbh('compare', single, broken);
  t.equal(compare.exitCode, 1, 'compare exits 1 on a regression');
  t.match(compare.stdout, 'regressions (1)', 'one regression');
  t.match(compare.stdout, `${name}: PASS → FAIL`, `names ${name}`);

  const known = join(root, 'known-issues.yaml');
  await writeFile(known, `issues:\n  - cell: "${cell.id}"\n    check: "${step.id}.${check.id.replace(/[*?]/g, '?')}"\n    reason: broken on purpose by the e2e test\n`);
  const triaged = await ntbh('compare', single, broken, '--known-issues', known, '--format', 'markdown');
  t.equal(triaged.exitCode, 0, 'with the known-issues entry the FAIL is known, not a regression');
  t.match(triaged.stdout, 'known issue: broken on purpose', 'the reason is shown');
  t.notMatch(triaged.stdout, /regressions \(/, 'no regression section');
});
