import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stripAnsi from 'strip-ansi';
import { createEmitter } from '../../harness/events.ts';
import { attachReporters } from '../../harness/report/index.ts';
import { loadScenario } from '../../harness/scenario/load.ts';
import { expandMatrix, type Cell } from '../../harness/scenario/matrix.ts';
import { buildRunResult } from '../../harness/scenario/run.ts';
import type { CellResult, CheckResult, RunResult, Status, StepResult } from '../../harness/results/model.ts';
import { mergeRuns, writeShardRecord } from '../../harness/shard/merge.ts';
import { parseShard, planShards, selectShard } from '../../harness/shard/select.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const interop = await loadScenario(join(repoRoot, 'scenarios', 'doorbell-interop.yaml'));
const releases = await loadScenario(join(repoRoot, 'scenarios', 'release-interop.yaml'));

t.test('parseShard: i/n with 1 <= i <= n, anything else is bad input', async (t) => {
  t.same(parseShard('2/4'), { index: 2, count: 4 });
  t.same(parseShard(' 1/1 '), { index: 1, count: 1 });
  for (const bad of ['0/2', '3/2', '1/0', '2', 'a/b', '1/2/3', '-1/2']) t.throws(() => parseShard(bad), { code: 'BAD_SHARD' }, bad);
});

t.test('every cell in exactly one shard, for any shard count; the same plan every time', async (t) => {
  for (const scenario of [interop, releases]) {
    const cells = expandMatrix(scenario);
    for (let n = 1; n <= cells.length + 2; n++) {
      const plan = planShards(cells, scenario, n);
      t.equal(plan.shards.length, n);
      const ids = plan.shards.flatMap((s) => s.cells.map((c) => c.id));
      t.same([...ids].sort(), cells.map((c) => c.id).sort(), `${scenario.name} n=${n}: each cell once`);
      const sizes = plan.shards.map((s) => s.cells.length);
      t.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${scenario.name} n=${n}: balanced ${sizes.join('/')}`);
      // Stable: recomputed (as every CI job does) and from a shuffled copy of the input, the same split.
      t.same(planShards(expandMatrix(scenario), scenario, n), plan);
      for (let i = 1; i <= n; i++) t.same(selectShard(cells, scenario, { index: i, count: n }).map((c) => c.id), plan.shards[i - 1]!.cells.map((c) => c.id));
    }
  }
});

t.test('cells that share kernels stay together', async (t) => {
  // doorbell-interop 3x3 in 3 shards: each shard one EP kernel (and the host variants share one tree).
  const plan = planShards(expandMatrix(interop), interop, 3);
  for (const shard of plan.shards) t.equal(new Set(shard.cells.map((c) => c.ep)).size, 1, `one EP kernel: ${shard.cells.map((c) => c.id).join(' ')}`);
  // release-interop 4x4 in 4 shards: grouping by host means one x86_64 tree per shard (x86 builds cost most).
  const rel = planShards(expandMatrix(releases), releases, 4);
  t.equal(rel.groupedBy, 'host');
  for (const shard of rel.shards) t.equal(new Set(shard.cells.map((c) => c.host)).size, 1, `one host kernel: ${shard.cells.map((c) => c.id).join(' ')}`);
  // In 2 shards no kernel tree is split when it need not be: each shard has two host releases.
  const two = planShards(expandMatrix(releases), releases, 2);
  for (const shard of two.shards) t.equal(new Set(shard.cells.map((c) => c.host)).size, 2);
  // Cutting the matrix in its own order (EP-major) costs more: every shard would build all four x86_64 trees.
  const cells = expandMatrix(releases);
  const matrixOrder = [0, 1, 2, 3].map((i) => cells.slice(i * 4, i * 4 + 4));
  const cost = (shards: Cell[][]) => shards.reduce((sum, cs) => sum + planShards(cs, releases, 1).shards[0]!.cost, 0);
  t.ok(cost(rel.shards.map((s) => s.cells)) < cost(matrixOrder), `cheaper than the matrix order (${cost(rel.shards.map((s) => s.cells))} < ${cost(matrixOrder)} min)`);
});

// ---- merge: shards written by the real reporters, merged, compared with the single run's files ----

const check = (id: string, status: Status, value: CheckResult['value'], message?: string): CheckResult => ({ id, check: id.split('[')[0]!, status, value, ...(message ? { message } : {}) });
const step = (id: string, type: string, checks: CheckResult[], durationMs = 1000): StepResult => ({ id, type, status: checks.length ? (checks.some((c) => c.status === 'FAIL') ? 'FAIL' : checks.some((c) => c.status === 'XFAIL') ? 'XFAIL' : 'PASS') : 'PASS', durationMs, values: {}, checks, splats: [] });

/** A doorbell-interop cell: the old EP shifts host doorbells (XFAIL), and the new host on the old EP sees a different vector (an interop FAIL). */
function cellResult(cell: Cell): CellResult {
  const epDb = cell.ep === 'old' ? 2 : 1;
  const hostVector = cell.host === 'new' && cell.ep === 'old' ? 3 : 1;
  const steps = [
    step('setup', 'setup', [check('driver_bound', 'PASS', true)]),
    step('link', 'link-up', [check('link[ep]', 'PASS', true)]),
    step('sweep', 'doorbell-sweep', [
      { ...check('db[host-to-ep bit 0]', cell.ep === 'old' ? 'XFAIL' : 'PASS', epDb, cell.ep === 'old' ? 'old vntb shifts bits — bit 0 read as bit 1' : undefined), params: { i: 0 } },
      { ...check('vector[ep-to-host bit 0]', 'PASS', hostVector), params: { i: 0 } },
    ]),
    step('perf', 'perf', [check('completed[ep-to-host]', cell.id === 'ep-new__host-old' ? 'FAIL' : 'PASS', cell.id !== 'ep-new__host-old')]),
  ];
  return { id: cell.id, ep: cell.ep, host: cell.host, status: steps.some((s) => s.status === 'FAIL') ? 'FAIL' : 'PASS', durationMs: 30_000, capabilities: {}, params: {}, steps };
}

async function writeRun(dir: string, run: RunResult, events: boolean): Promise<string> {
  await mkdir(dir, { recursive: true });
  let out = '';
  let at = new Date(run.startedAt);
  const emitter = createEmitter(() => at);
  const reporters = await attachReporters(emitter, { dir, write: (text) => (out += text), color: false });
  emitter.emit({ kind: 'run-start', scenario: run.scenario, file: run.file, cells: run.cells.map(({ id, ep, host }) => ({ id, ep, host })), strict: run.strict });
  if (events) {
    for (const cell of run.cells) {
      at = new Date(at.getTime() + 1000);
      emitter.emit({ kind: 'cell-end', cell });
    }
  }
  at = new Date(Date.parse(run.startedAt) + run.durationMs);
  emitter.emit({ kind: 'run-end', run });
  await reporters.close();
  return out;
}

t.test('merge: results.json, junit.xml, results.tap, summary.md, kcidb.json and the summary equal the single run', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ntbh-merge-'));
  const all = expandMatrix(interop);
  const results = all.map(cellResult);
  const start = Date.parse('2026-11-30T02:00:00Z');
  const single = buildRunResult(interop, results, { startedAt: new Date(start), durationMs: 300_000 });
  t.equal(single.interop.status, 'FAIL', 'the fixture has an interop difference to carry over');
  t.equal(single.exitCode, 1);
  const singleOut = await writeRun(join(root, 'single'), single, false);

  // Three shards as `ntbh run --shard i/3` would write them (back to back, so the merged span is the single run's).
  const plan = planShards(all, interop, 3);
  const dirs: string[] = [];
  let offset = 0;
  for (const [i, shard] of plan.shards.entries()) {
    const dir = join(root, `shard-${i + 1}`);
    const subset = results.filter((r) => shard.cells.some((c) => c.id === r.id));
    const part = buildRunResult(interop, subset, { startedAt: new Date(start + offset), durationMs: 100_000 });
    offset += 100_000;
    await writeRun(dir, part, true);
    await writeShardRecord(dir, { schemaVersion: 1, scenario: interop.name, file: interop.file, shard: { index: i + 1, count: 3 }, cells: all.map(({ id, ep, host }) => ({ id, ep, host })), selected: shard.cells.map((c) => c.id), steps: interop.steps.map((s) => ({ id: s.id, type: s.type })) });
    // A console log in each cell directory, which the merged directory must keep.
    for (const cell of shard.cells) {
      await mkdir(join(dir, cell.id, 'ep'), { recursive: true });
      await writeFile(join(dir, cell.id, 'ep', 'console.log'), `console of ${cell.id}\n`);
    }
    dirs.push(dir);
  }
  let mergedOut = '';
  const merged = await mergeRuns([...dirs].reverse(), { out: join(root, 'merged'), write: (text) => (mergedOut += text), color: false });
  t.equal(merged.run.exitCode, single.exitCode);
  for (const file of ['results.json', 'junit.xml', 'results.tap', 'summary.md', 'kcidb.json']) {
    t.equal(readFileSync(join(root, 'merged', file), 'utf8'), readFileSync(join(root, 'single', file), 'utf8'), `${file} equal`);
  }
  const summaryOf = (text: string) => stripAnsi(text).slice(stripAnsi(text).indexOf(`\n${interop.name}: `));
  t.equal(summaryOf(mergedOut), summaryOf(singleOut), 'terminal summary equal');
  t.match(mergedOut, /ep-old__host-old/, 'cell lines replayed from the shards');
  for (const cell of all) t.equal(readFileSync(join(root, 'merged', cell.id, 'ep', 'console.log'), 'utf8'), `console of ${cell.id}\n`);
  const events = readFileSync(join(root, 'merged', 'events.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; time: string });
  t.same(events.map((e) => e.kind), ['run-start', ...all.map(() => 'cell-end'), 'run-end'], 'events: one run-start, the shards\' events, one run-end');
  t.same(events.map((e) => e.time), [...events.map((e) => e.time)].sort(), 'in time order');

  await t.rejects(mergeRuns(dirs, { out: join(root, 'merged'), write: () => {} }), { code: 'MERGE_TARGET_EXISTS' }, 'never merges into old results');
  await t.rejects(mergeRuns([dirs[0]!, dirs[0]!], { out: join(root, 'dup'), write: () => {} }), { code: 'MERGE_DUPLICATE_CELL' });

  // A shard whose job died: its cells are ERROR (as unbootable cells), the run exits 1 (FAILs elsewhere) with them counted.
  const partial = await mergeRuns(dirs.slice(0, 2), { out: join(root, 'partial'), write: () => {}, log: () => {} });
  const lost = plan.shards[2]!.cells.map((c) => c.id);
  for (const id of lost) {
    const cell = partial.run.cells.find((c) => c.id === id)!;
    t.equal(cell.status, 'ERROR', `${id} ERROR`);
    t.match(cell.message, /MERGE_SHARD_MISSING.*shard 3\/3/);
  }
  t.same(partial.run.cells.map((c) => c.id), all.map((c) => c.id), 'matrix order kept');
});
