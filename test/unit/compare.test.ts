import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareRuns } from '../../harness/compare/diff.ts';
import { parseKnownIssues } from '../../harness/compare/known-issues.ts';
import { renderComparison } from '../../harness/compare/render.ts';
import { fromResultsJson, readRun } from '../../harness/compare/results.ts';
import { resultsJson } from '../../harness/report/json.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import { buildRunResult } from '../../harness/scenario/run.ts';
import type { CellResult, CheckResult, RunResult, SplatRecord, Status, StepResult } from '../../harness/results/model.ts';

const scenario = parseScenario(['name: cmp', 'matrix: {ep: [old, new], host: [stock]}', 'function: {type: pci-epf-vntb}', 'steps:', '  - {id: link, type: link-up}', '  - {id: perf, type: perf}'].join('\n'));

const check = (id: string, status: Status, message?: string): CheckResult => ({ id, check: id.split('[')[0]!, status, value: status === 'PASS', ...(message ? { message } : {}) });

function step(id: string, checks: CheckResult[], durationMs = 1000, splats: SplatRecord[] = []): StepResult {
  const rank: Status[] = ['SKIP', 'PASS', 'XFAIL', 'XPASS', 'ERROR', 'FAIL'];
  const status = checks.reduce<Status>((w, c) => (rank.indexOf(c.status) > rank.indexOf(w) ? c.status : w), checks.length ? 'SKIP' : 'PASS');
  return { id, type: id, status, durationMs, values: {}, checks, splats };
}

function cell(id: string, steps: StepResult[]): CellResult {
  const [ep, host] = id.replace('ep-', '').split('__host-') as [string, string];
  return { id, ep, host, status: 'PASS', durationMs: 10_000, capabilities: {}, params: {}, steps };
}

const run = (cells: CellResult[]): RunResult => buildRunResult(scenario, cells, { startedAt: new Date('2026-11-30T02:00:00Z'), durationMs: 60_000 });

const splat = (title: string, expected = false): SplatRecord => ({ guest: 'ep', title, kind: 'warn', excerpt: title, expected });

const base = run([
  cell('ep-old__host-stock', [
    step('link', [check('link[ep]', 'PASS'), check('link[host]', 'PASS')]),
    step('perf', [check('completed[ep-to-host]', 'XFAIL', 'old vntb hangs'), check('completed[host-to-ep]', 'FAIL', 'timeout'), check('gone', 'PASS')], 10_000),
  ]),
  cell('ep-new__host-stock', [step('link', [check('link[ep]', 'PASS'), check('link[host]', 'PASS')], 1000, [splat('WARNING: CPU: 0 PID: 12 at drivers/ntb/x.c:10 foo+0x1c/0x40')]), step('perf', [check('completed[ep-to-host]', 'PASS')])]),
  cell('ep-gone__host-stock', [step('link', [check('link[ep]', 'PASS')])]),
]);

const now = run([
  cell('ep-old__host-stock', [
    step('link', [check('link[ep]', 'FAIL', 'link down'), check('link[host]', 'ERROR', 'ssh lost')]),
    step('perf', [check('completed[ep-to-host]', 'PASS'), check('completed[host-to-ep]', 'PASS'), check('added', 'FAIL')], 30_000),
  ]),
  // The same splat, another PID and CPU: not new. A second one is.
  cell('ep-new__host-stock', [step('link', [check('link[ep]', 'PASS'), check('link[host]', 'PASS')], 1000, [splat('WARNING: CPU: 1 PID: 977 at drivers/ntb/x.c:10 foo+0x20/0x40'), splat('BUG: sleeping function called from invalid context at mm/slab.c:1')]), step('perf', [check('completed[ep-to-host]', 'PASS')])]),
  cell('ep-added__host-stock', [step('link', [check('link[ep]', 'PASS')])]),
]);

t.test('statuses: regressions, fixes, gained fixes, new and missing cells and checks', async (t) => {
  const cmp = compareRuns(base, now);
  const kinds = Object.fromEntries(cmp.changes.map((c) => [`${c.cell} ${c.check}`, `${c.kind} ${c.base}->${c.new}`]));
  t.same(kinds, {
    'ep-old__host-stock link.link[ep]': 'regression PASS->FAIL',
    'ep-old__host-stock link.link[host]': 'regression PASS->ERROR',
    'ep-old__host-stock perf.completed[ep-to-host]': 'gained-fix XFAIL->PASS',
    'ep-old__host-stock perf.completed[host-to-ep]': 'fixed FAIL->PASS',
  });
  t.equal(cmp.regressions, 2);
  t.equal(cmp.exitCode, 1);
  t.same(cmp.newCells, [{ cell: 'ep-added__host-stock', status: 'PASS' }]);
  t.same(cmp.missingCells, [{ cell: 'ep-gone__host-stock', status: 'PASS' }]);
  t.same(cmp.newChecks, [{ cell: 'ep-old__host-stock', check: 'perf.added', status: 'FAIL' }]);
  t.same(cmp.missingChecks, [{ cell: 'ep-old__host-stock', check: 'perf.gone', status: 'PASS' }]);
  t.same(cmp.newSplats.map((s) => s.title), ['BUG: sleeping function called from invalid context at mm/slab.c:1'], 'the WARN with other CPU/PID/offset is the same splat');
  t.same(cmp.goneSplats, []);
  t.same(cmp.timing.map((x) => `${x.cell} ${x.step} ${x.baseMs}->${x.newMs}`), ['ep-old__host-stock perf 10000->30000'], 'only the step beyond 50% and 2 s');
  t.same(compareRuns(base, now, { timingThreshold: 3 }).timing, [], 'threshold is an option');
  // Phases recorded by the runner (boot, teardown) are compared too; step phases are the steps above.
  const withPhases = (run: RunResult, bootMs: number): RunResult => ({ ...run, cells: run.cells.map((c) => ({ ...c, phases: [{ name: 'boot', ms: bootMs }, { name: 'step:link', ms: 99_999 }] })) });
  const slowBoot = compareRuns(withPhases(base, 4000), withPhases(now, 9000), { timingThreshold: 1 });
  t.same(slowBoot.timing.filter((x) => x.step.startsWith('phase ')).map((x) => `${x.cell} ${x.step} ${x.baseMs}->${x.newMs}`), ['ep-old__host-stock phase boot 4000->9000', 'ep-new__host-stock phase boot 4000->9000']);
  t.equal(compareRuns(base, base).exitCode, 0, 'a run against itself');
  t.equal(compareRuns(base, base).unchanged, compareRuns(base, base).unchanged);
  t.same(compareRuns(base, base).changes, []);
});

t.test('known issues: a covered FAIL is known on both sides; intermittent flips are not regressions', async (t) => {
  const known = parseKnownIssues(
    [
      'issues:',
      '  - cell: "ep-old__*"',
      '    check: "link.link[ep]"',
      '    reason: vntb link flaps under TCG',
      '    link: https://example.org/bug/1',
      '  - check: "link.link[host]"',
      '    status: [FAIL, ERROR]',
      '    reason: ssh drops on a loaded machine',
      '    intermittent: true',
    ].join('\n'),
    'known.yaml',
  );
  const cmp = compareRuns(base, now, { known });
  const byCheck = Object.fromEntries(cmp.changes.map((c) => [c.check, c]));
  t.equal(byCheck['link.link[ep]']!.kind, 'changed', 'PASS -> known FAIL is no regression');
  t.equal(byCheck['link.link[ep]']!.new, 'XFAIL');
  t.match(byCheck['link.link[ep]']!.message, /^known issue: vntb link flaps under TCG \(https:\/\/example.org\/bug\/1\) — was: link down/);
  t.equal(byCheck['link.link[host]']!.kind, 'intermittent');
  t.equal(byCheck['link.link[host]']!.issue!.where, 'known.yaml:6:5');
  t.equal(cmp.regressions, 0);
  t.equal(cmp.exitCode, 0);
});

t.test('output: terminal, Markdown and JSON name the regression', async (t) => {
  const cmp = compareRuns(base, now);
  const text = renderComparison(cmp, 'terminal', false);
  t.match(text, 'regressions (2)');
  t.match(text, 'ep-old__host-stock link.link[ep]: PASS → FAIL — link down');
  t.match(text, '2 regression(s): exit 1');
  t.match(text, 'new splats (1)');
  t.match(text, 'ep-old__host-stock perf: 10 s → 30 s (+200%)');
  const md = renderComparison(cmp, 'markdown');
  t.match(md, '#### :x: regressions (2)');
  t.match(md, '| ep-old__host-stock | `link.link[ep]` | PASS | FAIL | link down |');
  const json = JSON.parse(renderComparison(cmp, 'json')) as { regressions: number; changes: unknown[] };
  t.equal(json.regressions, 2);
  t.equal(json.changes.length, 4);
});

t.test('results.json read back equals the run (a directory or the file)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-cmp-'));
  writeFileSync(join(dir, 'results.json'), JSON.stringify(resultsJson(base)));
  // Written again, the run read back gives the same results.json (what merge and the exports rely on).
  t.same(resultsJson(await readRun(dir)), resultsJson(base));
  t.same(resultsJson(await readRun(join(dir, 'results.json'))), resultsJson(base));
  t.same((await readRun(dir)).cells[0]!.steps[0]!.splats, [], 'fields results.json leaves out come back empty');
  await t.rejects(readRun(join(dir, 'nope')), { code: 'RESULTS_NOT_FOUND' });
  writeFileSync(join(dir, 'bad.json'), '{"schemaVersion": 99}');
  await t.rejects(readRun(join(dir, 'bad.json')), { code: 'RESULTS_INVALID' });
  t.throws(() => fromResultsJson({ schemaVersion: 1, scenario: 'x' }), { code: 'RESULTS_INVALID' });
});
