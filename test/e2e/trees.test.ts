// Users' own kernel trees end to end, on a real git repository made from Debian's 6.12 source:
// base + (a) a documentation change, (b) a pci-epf-vntb db_valid_mask change, (c) another doc change.
// Checks path: identities on its work tree, a git: build of commit (b), and `ntbh bisect` naming (b).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildKernel } from '../../harness/kernel/build.ts';
import { resolveSource } from '../../harness/kernel/source.ts';
import { treeIdentity } from '../../harness/kernel/tree-id.ts';
import { bisectCommand } from '../../harness/bisect/command.ts';
import { variantNameForSource } from '../../harness/run/adhoc.ts';
import { cachePath, repoRoot } from '../../harness/util/paths.ts';
import { sha256, short } from '../../harness/util/hash.ts';
import { withLock } from '../../harness/util/lock.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);
t.teardown(() => teardownAll());

/** Bump when the commits below change: the cached repository is keyed by it. */
const RECIPE = '1';
const VNTB = 'drivers/pci/endpoint/functions/pci-epf-vntb.c';
const OLD_MASK = '\treturn BIT_ULL(ntb_ndev(ntb)->db_count) - 1;\n';
const NEW_MASK = '\t/* Slots 0 (link) and 1 (reserved) are not doorbells */\n\treturn BIT_ULL(ntb_ndev(ntb)->db_count - 2) - 1;\n';

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=ntbh test', '-c', 'user.email=ntbh@localhost', '-c', 'core.looseCompression=1', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }).trim();

/** Writes a new file in place of `path`: the work tree is hard-linked to the cached source, which must stay pristine. */
async function replaceFile(path: string, edit: (text: string) => string): Promise<void> {
  const text = await readFile(path, 'utf8');
  await rm(path);
  await writeFile(path, edit(text));
}

interface TestRepo {
  dir: string;
  commits: { base: string; a: string; b: string; c: string };
}

/** The repository, made once per Debian source version and recipe (git add of ~87k files is the cost). */
async function testRepo(): Promise<TestRepo> {
  const pristine = await resolveSource({ kind: 'debian', version: '6.12' }, log);
  const dir = cachePath('test-repos', `vntb-bisect-${short(sha256(`${pristine.id}\0${RECIPE}`))}`);
  await mkdir(cachePath('test-repos'), { recursive: true });
  await withLock(dir, async () => {
    if (existsSync(join(dir, '.git'))) return;
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    const started = Date.now();
    // Hard links: git only reads the files; every edit below replaces a file instead of writing into it.
    execFileSync('cp', ['-al', pristine.dir, tmp]);
    git(tmp, 'init', '-q', '-b', 'main');
    // No background auto-gc: it repacks ~87k loose objects for minutes, racing the clones below.
    git(tmp, 'config', 'gc.auto', '0');
    // Debian's tree carries upstream's .gitignore (dotfiles and the like): add everything regardless.
    git(tmp, '-c', 'core.excludesFile=', 'add', '-f', '-A', '.');
    git(tmp, 'commit', '-q', '-m', `Debian ${pristine.label}`);
    const added = Date.now() - started;
    await replaceFile(join(tmp, 'Documentation/PCI/endpoint/pci-vntb-howto.rst'), (text) => `${text}\n.. ntbh test: an unrelated documentation change\n`);
    git(tmp, 'commit', '-q', '-am', 'Documentation: PCI: vntb howto: an unrelated note');
    await replaceFile(join(tmp, VNTB), (text) => {
      if (!text.includes(OLD_MASK)) throw new Error(`${VNTB} has no "${OLD_MASK.trim()}" to change`);
      return text.replace(OLD_MASK, NEW_MASK);
    });
    git(tmp, 'commit', '-q', '-am', 'PCI: endpoint: pci-epf-vntb: Exclude the link and reserved slots from db_valid_mask');
    await replaceFile(join(tmp, 'Documentation/PCI/endpoint/pci-ntb-howto.rst'), (text) => `${text}\n.. ntbh test: another unrelated note\n`);
    git(tmp, 'commit', '-q', '-am', 'Documentation: PCI: ntb howto: another unrelated note');
    await rename(tmp, dir);
    log(`made the test repository in ${Math.round((Date.now() - started) / 1000)} s (cp -al + git add + base commit ${Math.round(added / 1000)} s): ${dir}`);
  });
  const [base, a, b, c] = git(dir, 'rev-list', '--reverse', 'main').split('\n');
  return { dir, commits: { base: base!, a: a!, b: b!, c: c! } };
}

const repo = await testRepo();
t.comment(`repository ${repo.dir}: base ${repo.commits.base.slice(0, 12)}, b ${repo.commits.b.slice(0, 12)}`);

t.test('path: on the repository work tree: stable, dirty after an edit, dirty after an untracked file', async (t) => {
  const file = join(repo.dir, 'drivers/ntb/hw/epf/ntb_hw_epf.c');
  const untracked = join(repo.dir, 'drivers/ntb/ntbh-untracked.c');
  t.teardown(async () => {
    git(repo.dir, 'checkout', '-q', '--', 'drivers/ntb/hw/epf/ntb_hw_epf.c');
    await rm(untracked, { force: true });
  });
  let started = Date.now();
  const clean = await resolveSource({ kind: 'path', path: repo.dir }, log);
  t.comment(`clean identity in ${Date.now() - started} ms: ${clean.id}`);
  t.equal(clean.id, `path:${repo.dir}@${repo.commits.c}`, 'a clean tree is its commit');
  t.equal((await resolveSource({ kind: 'path', path: repo.dir }, log)).id, clean.id, 'stable across resolutions');

  await replaceFile(file, (text) => `${text}\n/* ntbh test edit */\n`);
  started = Date.now();
  const edited = await resolveSource({ kind: 'path', path: repo.dir }, log);
  t.comment(`dirty identity in ${Date.now() - started} ms: ${edited.id}`);
  t.match(edited.id, new RegExp(`^path:${repo.dir}@${repo.commits.c}\\+dirty:[0-9a-f]{16}$`), 'an edit makes it dirty');

  await writeFile(untracked, '/* untracked */\n');
  const withUntracked = await resolveSource({ kind: 'path', path: repo.dir }, log);
  t.not(withUntracked.id, edited.id, 'an untracked file changes it');
});

t.test('path: on a non-git copy: a content identity, stable, changed by an edit', async (t) => {
  const copy = await mkdtemp(join(cachePath('test-repos'), 'plain-'));
  t.teardown(() => rm(copy, { recursive: true, force: true }));
  const pristine = await resolveSource({ kind: 'debian', version: '6.12' }, log);
  execFileSync('cp', ['-al', `${pristine.dir}/.`, copy]);
  const timings: string[] = [];
  const first = await treeIdentity(copy);
  timings.push(`first ${first.stats?.ms} ms (${first.stats?.hashed} files read)`);
  const second = await treeIdentity(copy);
  timings.push(`second ${second.stats?.ms} ms (${second.stats?.hashed} read)`);
  t.match(first.id, /@tree:[0-9a-f]{16}$/);
  t.equal(second.id, first.id, 'stable');
  t.equal(second.stats?.hashed, 0, 'the stat cache spares every read');
  await replaceFile(join(copy, VNTB), (text) => `${text}\n/* edit */\n`);
  const edited = await treeIdentity(copy);
  timings.push(`after one edit ${edited.stats?.ms} ms (${edited.stats?.hashed} read)`);
  t.not(edited.id, first.id, 'an edit changes it');
  t.comment(`fingerprint of ${first.stats?.files} files: ${timings.join(', ')}`);
  await rm((await import('../../harness/kernel/tree-id.ts')).statCachePath(copy), { force: true });
});

t.test('git: builds the arm64 EP kernel of commit (b) from the repository', async (t) => {
  const source = { kind: 'git' as const, url: repo.dir, ref: repo.commits.b };
  const started = Date.now();
  const kernel = await buildKernel({ name: variantNameForSource(source), source, patches: [], fragments: [] }, 'arm64', { log, jobs: 2 });
  t.comment(`arm64 kernel of ${repo.commits.b.slice(0, 12)} ${kernel.cached ? 'from the cache' : 'built'} in ${Math.round((Date.now() - started) / 1000)} s; durations ${JSON.stringify(kernel.metadata.durationsMs)}`);
  t.equal(kernel.metadata.source.id, `git:${repo.commits.b}`, 'the cache key is the commit');
  t.ok(existsSync(kernel.image), 'an Image');
  const src = await resolveSource(source, log);
  t.match(await readFile(join(src.dir, VNTB), 'utf8'), /db_count - 2\) - 1;/, "the extracted tree is commit (b)'s");
});

t.test('ntbh bisect --fixed names commit (b) as the first with the spec db_valid_mask', async (t) => {
  const results = await mkdtemp(join(repoRoot, 'results', 'e2e-bisect-'));
  const { exitCode, report, dir } = await bisectCommand({
    tree: repo.dir,
    bad: repo.commits.base,
    good: repo.commits.c,
    fixed: true,
    side: 'ep',
    scenario: join(repoRoot, 'test', 'fixtures', 'scenarios', 'bisect-db-valid-mask.yaml'),
    check: 'db-valid-mask.db_valid_mask',
    results,
    timeoutScale: 1,
    log,
  });
  t.comment(`bisect in ${Math.round(report.durationMs / 1000)} s: ${report.steps.map((s) => `${s.commit.slice(0, 12)} ${s.verdict} (${Math.round(s.durationMs / 1000)} s; ${s.reason})`).join('; ')}`);
  t.equal(exitCode, 0);
  t.equal(report.result?.commit, repo.commits.b, 'the first fixed commit is (b)');
  t.match(report.result?.subject, /db_valid_mask/);
  t.ok(report.steps.length >= 1 && report.steps.every((s) => s.verdict !== 'skip'), 'no step was skipped');
  for (const step of report.steps) {
    const expected = step.commit === repo.commits.a ? 'broken' : 'fixed';
    t.equal(step.verdict, expected, `${step.commit.slice(0, 12)} ${step.subject}: ${expected}`);
    t.ok(existsSync(join(step.results, 'results.json')), 'each step keeps its results');
  }
  const saved = JSON.parse(await readFile(join(dir, 'bisect.json'), 'utf8'));
  t.equal(saved.result.commit, repo.commits.b, 'bisect.json records it');
  t.notOk(existsSync(join(dir, 'repo.git')), 'the private clone is gone');
  t.equal(git(repo.dir, 'rev-parse', 'HEAD'), repo.commits.c, "the user's repository is untouched");
  t.equal(git(repo.dir, 'status', '--porcelain'), '', 'and clean');
});
