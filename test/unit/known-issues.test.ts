import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { globMatch } from '../../harness/compare/glob.ts';
import { applyKnownIssues, loadKnownIssues, parseKnownIssues } from '../../harness/compare/known-issues.ts';
import type { CellResult } from '../../harness/results/model.ts';

/** The excerpt's first `file:line:col: message` line. */
function problem(source: string): string {
  try {
    parseKnownIssues(source, 'ki.yaml');
  } catch (error) {
    return ((error as { code: string; excerpt: string }).code + ' ' + (error as { excerpt: string }).excerpt.split('\n')[0]);
  }
  return 'no error';
}

t.test('loading errors point at file:line:col', async (t) => {
  t.equal(problem('issues:\n  - check: a\n    reason: x\n    cel: "*"\n'), "KNOWN_ISSUES_INVALID ki.yaml:4:5: unknown key 'cel'");
  t.equal(problem('issues:\n  - cell: "*"\n    check: a.b\n'), "KNOWN_ISSUES_INVALID ki.yaml:2:5: missing required key 'reason'");
  t.equal(problem('issues:\n  - check: a\n    reason: x\n    intermittent: sometimes\n'), 'KNOWN_ISSUES_INVALID ki.yaml:4:19: expected boolean, received string');
  t.equal(problem('issues:\n  - check: a\n    reason: x\n    status: PASS\n'), 'KNOWN_ISSUES_INVALID ki.yaml:4:13: ' + problemMessage('issues:\n  - check: a\n    reason: x\n    status: PASS\n'));
  t.match(problem('issues:\n  - reason: [x\n'), /^KNOWN_ISSUES_INVALID ki\.yaml:\d+:\d+: YAML /);
  t.match(problemAll('issue: []\n'), "ki.yaml:1:1: unknown key 'issue'");
  t.equal(problem('# nothing yet\n'), 'no error', 'a file with only comments has no issues');
  t.equal(problem('issues: []\n'), 'no error', 'an empty list is fine');
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-ki-'));
  await t.rejects(loadKnownIssues(join(dir, 'missing.yaml')), { code: 'KNOWN_ISSUES_NOT_FOUND' });
  t.equal(problem('issues:\n  - reason: everything\n'), "KNOWN_ISSUES_INVALID ki.yaml:2:5: an entry needs a 'cell', 'check' or 'splat' pattern");
  writeFileSync(join(dir, 'k.yaml'), 'issues:\n  - reason: r\n    cell: ep-old__host-old\n');
  const loaded = await loadKnownIssues(join(dir, 'k.yaml'));
  t.match(loaded.issues[0], { cell: 'ep-old__host-old', check: '*', status: 'FAIL', intermittent: false, where: `${join(dir, 'k.yaml')}:2:5` });
});

/** Every `file:line:col` line of the excerpt. */
function problemAll(source: string): string {
  try {
    parseKnownIssues(source, 'ki.yaml');
  } catch (error) {
    return (error as { excerpt: string }).excerpt;
  }
  return 'no error';
}

/** zod's own wording for a bad enum, whatever version: only the position is ours to test. */
function problemMessage(source: string): string {
  try {
    parseKnownIssues(source, 'ki.yaml');
  } catch (error) {
    return (error as { excerpt: string }).excerpt.split('\n')[0]!.replace(/^ki\.yaml:\d+:\d+: /, '');
  }
  return '';
}

t.test('globs: * and ? only; brackets and dots are literal', async (t) => {
  t.ok(globMatch('sweep.db[host-to-ep bit *]', 'sweep.db[host-to-ep bit 12]'));
  t.notOk(globMatch('sweep.db[host-to-ep bit *]', 'sweep.dbx[host-to-ep bit 12]'));
  t.ok(globMatch('ep-old__*', 'ep-old__host-new'));
  t.notOk(globMatch('ep-old__*', 'ep-new__host-old'));
  t.ok(globMatch('link.link[??]', 'link.link[ep]'));
  t.notOk(globMatch('a.b', 'aXb'), 'a dot is a dot');
});

t.test('applyKnownIssues: FAIL → XFAIL with the reason; steps and cell recomputed; splat entries', async (t) => {
  const known = parseKnownIssues(
    [
      'issues:',
      '  - check: "perf.completed[*]"',
      '    reason: perf hangs',
      '  - check: "*.splats[unexpected]"',
      '    splat: "ep: WARNING:*drivers/ntb/*"',
      '    reason: known ntb WARN',
      '  - scenario: other',
      '    check: "link"',
      '    reason: not this scenario',
    ].join('\n'),
  );
  const cell: CellResult = {
    id: 'ep-old__host-new',
    ep: 'old',
    host: 'new',
    status: 'FAIL',
    durationMs: 1,
    capabilities: {},
    params: {},
    steps: [
      { id: 'link', type: 'link-up', status: 'FAIL', durationMs: 1, values: {}, checks: [], splats: [], message: 'boom' },
      {
        id: 'perf',
        type: 'perf',
        status: 'FAIL',
        durationMs: 1,
        values: {},
        splats: [],
        checks: [
          { id: 'completed[ep-to-host]', check: 'completed', status: 'FAIL', value: false, message: 'no result' },
          { id: 'splats[unexpected]', check: 'splats', status: 'FAIL', value: ['ep: WARNING: at drivers/ntb/hw/epf/x.c:1 f'], message: 'unexpected splat' },
        ],
      },
      {
        id: 'sweep',
        type: 'doorbell-sweep',
        status: 'FAIL',
        durationMs: 1,
        values: {},
        splats: [],
        checks: [{ id: 'splats[unexpected]', check: 'splats', status: 'FAIL', value: ['ep: WARNING: at drivers/ntb/x.c:1 f', 'host: BUG: other'], message: 'unexpected splats' }],
      },
    ],
  };
  const judged = applyKnownIssues(cell, 'doorbell-interop', known);
  const perf = judged.steps[1]!;
  t.same(perf.checks.map((c) => c.status), ['XFAIL', 'XFAIL']);
  t.equal(perf.checks[0]!.message, 'known issue: perf hangs — was: no result');
  t.equal(perf.status, 'XFAIL', 'the step is the worst of its checks again');
  t.equal(judged.steps[2]!.checks[0]!.status, 'FAIL', 'a splat entry covers a splat check only when every splat matches');
  t.equal(judged.steps[0]!.status, 'FAIL', 'an entry for another scenario does not apply');
  t.equal(judged.status, 'FAIL');
  t.equal(applyKnownIssues(cell, 'other', known).steps[0]!.status, 'XFAIL', 'a step without checks is matched by its id');
  t.equal(applyKnownIssues(cell, 'x', undefined), cell, 'no file: the cell as it was');
  t.equal(cell.steps[1]!.checks[0]!.status, 'FAIL', 'the input is not modified');
});
