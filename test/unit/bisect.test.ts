// The bisect oracle (results → verdict) and the bisect loop on a real git repository, with the
// per-commit scenario run replaced by a function that writes results.json from the commit's content.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bisectCommand } from '../../harness/bisect/command.ts';
import { judgeRun, relevantStatuses } from '../../harness/bisect/oracle.ts';
import type { CellResult, CheckResult, Status, StepResult } from '../../harness/results/model.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const check = (name: string, status: Status, label?: string): CheckResult => ({ id: label ? `${name}[${label}]` : name, check: name, status, value: 0 });
const step = (id: string, checks: CheckResult[], status: Status = 'PASS'): StepResult => ({ id, type: id, status, durationMs: 1, values: {}, checks, splats: [] });
const cell = (steps: StepResult[], status: Status = 'PASS'): CellResult => ({ id: 'c', ep: 'e', host: 'h', status, durationMs: 1, capabilities: {}, params: {}, steps });
const runOf = (...steps: StepResult[]) => ({ cells: [cell(steps)] });

t.test('regression bisect: FAIL is bad; PASS, XFAIL, XPASS are good; ERROR skips', async (t) => {
  const opts = { fixed: false };
  t.match(judgeRun(runOf(step('a', [check('x', 'PASS'), check('y', 'XFAIL')])), opts), { verdict: 'old', code: 0 });
  t.match(judgeRun(runOf(step('a', [check('x', 'XPASS')])), opts), { verdict: 'old', code: 0 });
  t.match(judgeRun(runOf(step('a', [check('x', 'PASS'), check('y', 'FAIL')])), opts), { verdict: 'new', code: 1 });
  t.match(judgeRun(runOf(step('a', [check('x', 'FAIL'), check('y', 'ERROR')])), opts), { verdict: 'new' }, 'a FAIL decides even next to an ERROR');
  t.match(judgeRun(runOf(step('a', [check('x', 'PASS')]), step('b', [], 'ERROR')), opts), { verdict: 'skip', code: 125 });
  t.match(judgeRun({ cells: [cell([], 'ERROR')] }, opts), { verdict: 'skip', code: 125 }, 'a cell that never booted (build failure) skips');
  t.match(judgeRun(runOf(step('a', [check('x', 'SKIP')])), opts), { verdict: 'skip', reason: /nothing judged/ });
});

t.test('first-fixed bisect: PASS/XPASS fixed; XFAIL and FAIL broken', async (t) => {
  const opts = { fixed: true };
  t.match(judgeRun(runOf(step('a', [check('x', 'PASS'), check('y', 'XPASS')])), opts), { verdict: 'new', code: 1, reason: /^fixed/ });
  t.match(judgeRun(runOf(step('a', [check('x', 'PASS'), check('y', 'XFAIL')])), opts), { verdict: 'old', code: 0, reason: /^broken/ }, 'a known old behaviour is not fixed');
  t.match(judgeRun(runOf(step('a', [check('x', 'FAIL')])), opts), { verdict: 'old' });
  t.match(judgeRun(runOf(step('a', [check('x', 'PASS'), check('y', 'ERROR')])), opts), { verdict: 'skip' });
});

t.test('--check: only that check decides, over all its labels', async (t) => {
  const run = runOf(step('link', [check('link_up', 'FAIL')]), step('db-valid-mask', [check('db_valid_mask', 'PASS', 'host'), check('db_valid_mask', 'XFAIL', 'ep')]));
  t.same(relevantStatuses(run, 'db-valid-mask.db_valid_mask'), ['PASS', 'XFAIL']);
  t.match(judgeRun(run, { check: 'db-valid-mask.db_valid_mask', fixed: false }), { verdict: 'old', reason: /db-valid-mask\.db_valid_mask: 1 PASS, 1 XFAIL/ });
  t.match(judgeRun(run, { check: 'db-valid-mask.db_valid_mask', fixed: true }), { verdict: 'old' });
  t.match(judgeRun(run, { fixed: false }), { verdict: 'new' }, 'without --check the link FAIL decides');
  t.match(judgeRun(run, { check: 'db-valid-mask.nope', fixed: false }), { verdict: 'skip', reason: /not observed/ });
  t.match(judgeRun({ cells: [cell([], 'ERROR')] }, { check: 'db-valid-mask.db_valid_mask', fixed: false }), { verdict: 'skip', reason: /error/ });
});

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { encoding: 'utf8' }).trim();

/** A repository whose file `mask` holds the behaviour; commit `n` changes it to `new`. */
async function makeRepo(t: { teardown(fn: () => unknown): void }, subjects: string[], changeAt: number, brokenAt?: number): Promise<{ dir: string; commits: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'ntbh-bisect-repo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  git(dir, 'init', '-q', '-b', 'main');
  let value = 'old';
  const commits: string[] = [];
  for (const [i, subject] of subjects.entries()) {
    if (i === changeAt) value = 'new';
    await writeFile(join(dir, 'mask'), i === brokenAt ? 'unbuildable' : value);
    await writeFile(join(dir, 'n'), String(i));
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', subject);
    commits.push(git(dir, 'rev-parse', 'HEAD'));
  }
  return { dir, commits };
}

/** Stands in for one scenario run: reads the commit's `mask` through git and writes results.json. */
function fakeRun(repo: string, calls: string[]) {
  return async (_file: string, o: { results: string; ep: string; host: string }) => {
    const commit = /^git:.*@([0-9a-f]{40})$/.exec(o.ep.startsWith('git:') ? o.ep : o.host)![1]!;
    calls.push(commit);
    const mask = git(repo, 'show', `${commit}:mask`);
    if (mask === 'unbuildable') throw Object.assign(new Error('make failed'), { code: 'KERNEL_BUILD_FAILED' });
    await mkdir(o.results, { recursive: true });
    const status: Status = mask === 'new' ? 'PASS' : 'XFAIL';
    await writeFile(join(o.results, 'results.json'), JSON.stringify({ cells: [cell([step('db-valid-mask', [check('db_valid_mask', status, 'ep')])])] }));
    return 0;
  };
}

const scenario = join(repoRoot, 'test', 'fixtures', 'scenarios', 'bisect-db-valid-mask.yaml');

t.test('the loop: --fixed finds the first fixed commit, keeps one result dir per step, leaves the repo alone', async (t) => {
  const { dir, commits } = await makeRepo(t, ['base', 'a', 'b', 'c', 'd', 'e', 'f'], 4);
  const results = await mkdtemp(join(tmpdir(), 'ntbh-bisect-out-'));
  t.teardown(() => rm(results, { recursive: true, force: true }));
  const calls: string[] = [];
  const { exitCode, report } = await bisectCommand({
    tree: dir,
    bad: 'main~6',
    good: 'main',
    fixed: true,
    side: 'ep',
    scenario,
    check: 'db-valid-mask.db_valid_mask',
    results,
    timeoutScale: 1,
    log: () => undefined,
    runStep: fakeRun(dir, calls),
  });
  t.equal(exitCode, 0);
  t.same(report.result, { commit: commits[4], subject: 'd' });
  t.same(report.terms, { old: 'broken', new: 'fixed' });
  t.equal(report.old.commit, commits[0]);
  t.ok(calls.length <= 3, `log2 steps (${calls.length})`);
  for (const s of report.steps) t.equal(s.verdict, commits.indexOf(s.commit) >= 4 ? 'fixed' : 'broken');
  const saved = JSON.parse(await readFile(join(results, 'bisect.json'), 'utf8'));
  t.equal(saved.result.commit, commits[4]);
  t.match(saved.log, /git bisect start/);
  t.equal(git(dir, 'rev-parse', 'HEAD'), commits[6], 'HEAD untouched');
  t.equal(git(dir, 'status', '--porcelain'), '', 'no bisect state in the user repository');
  t.throws(() => git(dir, 'rev-parse', '--verify', '-q', 'refs/bisect/fixed'), 'no refs/bisect in the user repository');
});

t.test('the loop: a regression bisect, an unbuildable commit skipped', async (t) => {
  // Regression: "new" is bad here. Commit 3 cannot be built (skip, 125).
  const { dir, commits } = await makeRepo(t, ['base', 'a', 'b', 'c', 'd'], 2, 3);
  const results = await mkdtemp(join(tmpdir(), 'ntbh-bisect-out-'));
  t.teardown(() => rm(results, { recursive: true, force: true }));
  const run = fakeRun(dir, []);
  const hosts: string[] = [];
  // The fake's "new" gives PASS; make the regression a FAIL by flipping through a wrapper.
  const runStep = async (file: string, o: { results: string; ep: string; host: string }) => {
    hosts.push(o.host);
    await run(file, o);
    const path = join(o.results, 'results.json');
    await writeFile(path, (await readFile(path, 'utf8')).replaceAll('"PASS"', '"FAIL"'));
    return 1;
  };
  const { exitCode, report } = await bisectCommand({ tree: dir, good: commits[0]!, bad: 'main', side: 'host', scenario, results, timeoutScale: 1, log: () => undefined, runStep });
  t.equal(exitCode, 0, JSON.stringify(report.steps));
  t.equal(report.result?.commit, commits[2], 'first bad is b');
  const skipped = report.steps.filter((s) => s.verdict === 'skip');
  for (const s of skipped) t.match(s, { commit: commits[3], code: 125, reason: /make failed/ });
  t.ok(hosts.every((h) => h.startsWith(`git:${dir}@`)), 'the bisected side is the host');
});

t.test('only skipped commits left: inconclusive, exit 2, candidates listed', async (t) => {
  const { dir, commits } = await makeRepo(t, ['base', 'a', 'b'], 1, 1);
  const results = await mkdtemp(join(tmpdir(), 'ntbh-bisect-out-'));
  t.teardown(() => rm(results, { recursive: true, force: true }));
  const { exitCode, report } = await bisectCommand({ tree: dir, bad: 'main~2', good: 'main', fixed: true, side: 'ep', scenario, results, timeoutScale: 1, log: () => undefined, runStep: fakeRun(dir, []) });
  t.equal(exitCode, 2);
  t.equal(report.result, null);
  t.same(report.candidates?.map((c) => c.commit).sort(), [commits[1], commits[2]].sort());
});

t.test('bad input is refused before any step', async (t) => {
  const { dir } = await makeRepo(t, ['base', 'a'], 1);
  const base = { tree: dir, good: 'main', bad: 'main~1', side: 'ep' as const, scenario, timeoutScale: 1, log: () => undefined, runStep: async () => { throw new Error('must not run'); } };
  await t.rejects(bisectCommand({ ...base, good: 'no-such-ref' }), { code: 'BISECT_BAD_REF', kind: 'input' });
  await t.rejects(bisectCommand({ ...base, check: 'nostep.db_valid_mask' }), { code: 'BAD_OPTIONS', kind: 'input' });
  await t.rejects(bisectCommand({ ...base, peer: 'no-such-variant' }), { code: 'BAD_VARIANT', kind: 'input' });
  await t.rejects(bisectCommand({ ...base, scenario: '/nonexistent.yaml' }), { code: 'SCENARIO_NOT_FOUND' });
});
