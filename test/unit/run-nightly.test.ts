// `ntbh run --shard i/n --known-issues FILE` as the runner sees it: the shard's cells, shard.json, and
// known issues judged on every finished cell before it is reported (cell-end events, results, exit code).
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HarnessError } from '../../harness/errors.ts';
import { createEmitter } from '../../harness/events.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { runScenario } from '../../harness/scenario/run.ts';
import { nightlyRun } from '../../harness/shard/run-hooks.ts';

const scenario = parseScenario(['name: nightly', 'matrix: {ep: [old, new], host: [stock, new]}', 'function: {type: pci-epf-vntb}', 'steps:', '  - {id: link, type: link-up}'].join('\n'), 'nightly.yaml');

t.test('a shard runs its cells, records shard.json, and known issues turn matching failures into XFAIL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-nightly-'));
  const known = join(dir, 'known.yaml');
  // Cells that cannot boot are ERROR in every step; an entry for ERROR on the old EP's cells covers them.
  writeFileSync(known, 'issues:\n  - cell: "ep-old__*"\n    status: ERROR\n    reason: old EP kernel does not build here\n    link: https://example.org/7\n');
  const cells = expandMatrix(scenario);
  const nightly = await nightlyRun(scenario, cells, { shard: '1/2', knownIssues: known, log: () => {} });
  t.same(nightly.cells.map((c) => c.id), ['ep-old__host-stock', 'ep-old__host-new'], 'shard 1/2 of an ep × host matrix: the old EP\'s cells');
  await nightly.record(dir);
  const record = JSON.parse(readFileSync(join(dir, 'shard.json'), 'utf8')) as { shard: unknown; cells: unknown[]; selected: string[]; steps: unknown[] };
  t.same(record.shard, { index: 1, count: 2 });
  t.equal(record.cells.length, 4);
  t.same(record.selected, ['ep-old__host-stock', 'ep-old__host-new']);
  t.same(record.steps, [{ id: 'link', type: 'link-up' }]);

  const emitter = createEmitter();
  const ends: { id: string; status: string }[] = [];
  emitter.on((e) => void (e.kind === 'cell-end' && ends.push({ id: e.cell.id, status: e.cell.status })));
  const run = await runScenario(
    scenario,
    async () => {
      throw new HarnessError('kernel old/arm64 failed to build', { code: 'KERNEL_BUILD', kind: 'infra', phase: 'kernel-build' });
    },
    { emitter, cells: nightly.cells, adjustCell: nightly.adjustCell },
  );
  t.same(ends, [
    { id: 'ep-old__host-stock', status: 'XFAIL' },
    { id: 'ep-old__host-new', status: 'XFAIL' },
  ], 'cell-end events carry the judged cells');
  t.equal(run.exitCode, 0, 'known errors do not fail the run');
  t.equal(run.totals.XFAIL, 4);
  t.match(run.cells[0]!.steps[0]!.message, /^known issue: old EP kernel does not build here \(https:\/\/example.org\/7\) — was: KERNEL_BUILD/);

  // Without the file the same run is an infrastructure error.
  const plain = await nightlyRun(scenario, cells, { shard: '1/2', log: () => {} });
  t.equal(plain.adjustCell, undefined);
  const raw = await runScenario(scenario, async () => {
    throw new HarnessError('kernel old/arm64 failed to build', { code: 'KERNEL_BUILD', kind: 'infra', phase: 'kernel-build' });
  }, { emitter: createEmitter(), cells: plain.cells, adjustCell: plain.adjustCell });
  t.equal(raw.exitCode, 2);
  await t.rejects(nightlyRun(scenario, cells, { shard: '3/2', log: () => {} }), { code: 'BAD_SHARD' });
  await t.rejects(nightlyRun(scenario, cells, { knownIssues: join(dir, 'nope.yaml'), log: () => {} }), { code: 'KNOWN_ISSUES_NOT_FOUND' });
});
