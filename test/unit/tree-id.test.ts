// Content identity of path: trees (git and non-git) and the git: mirror following a moved branch,
// on small real trees and repositories made in a temp dir.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSource } from '../../harness/kernel/source.ts';
import { treeIdentity } from '../../harness/kernel/tree-id.ts';

const cache = await mkdtemp(join(tmpdir(), 'ntbh-tree-id-cache-'));
process.env.NTBH_CACHE = cache;
t.teardown(() => rm(cache, { recursive: true, force: true }));

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { encoding: 'utf8' }).trim();

/** A tiny "kernel tree": enough files for the source checks, with old mtimes so the stat cache may keep them. */
async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'drivers', 'ntb'), { recursive: true });
  const files: Record<string, string> = { Makefile: 'VERSION = 6\nPATCHLEVEL = 12\n', Kconfig: 'mainmenu "x"\n', 'drivers/ntb/ntb.c': 'int x;\n', 'scripts.sh': '#!/bin/sh\n' };
  const old = new Date(Date.now() - 3600_000);
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), content);
    await utimes(join(dir, name), old, old);
  }
}

async function scratch(t: { teardown(fn: () => unknown): void }, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `ntbh-${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('git tree: commit when clean, +dirty over tracked changes and untracked files', async (t) => {
  const dir = await scratch(t, 'git-tree');
  await makeTree(dir);
  git(dir, 'init', '-q');
  await writeFile(join(dir, '.gitignore'), '*.o\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'base');
  const head = git(dir, 'rev-parse', 'HEAD');

  const clean = await treeIdentity(dir);
  t.equal(clean.id, `path:${dir}@${head}`, 'a clean tree is its commit, no suffix');
  t.equal((await treeIdentity(dir)).id, clean.id, 'stable');

  await writeFile(join(dir, 'drivers/ntb/ntb.c'), 'int y;\n');
  const edited = await treeIdentity(dir);
  t.match(edited.id, new RegExp(`^path:${dir}@${head}\\+dirty:[0-9a-f]{16}$`), 'an edit makes it dirty');
  t.equal((await treeIdentity(dir)).id, edited.id, 'dirty identity is stable');

  await writeFile(join(dir, 'drivers/ntb/new.c'), 'int z;\n');
  const untracked = await treeIdentity(dir);
  t.not(untracked.id, edited.id, 'an untracked file changes it');
  await writeFile(join(dir, 'drivers/ntb/new.c'), 'int w;\n');
  t.not((await treeIdentity(dir)).id, untracked.id, "an untracked file's content is covered");
  await writeFile(join(dir, 'drivers/ntb/new.c'), 'int z;\n');
  t.equal((await treeIdentity(dir)).id, untracked.id, 'same content, same identity');

  await writeFile(join(dir, 'drivers/ntb/ntb.o'), 'junk');
  t.equal((await treeIdentity(dir)).id, untracked.id, 'ignored files do not count');

  git(dir, 'checkout', '-q', '--', 'drivers/ntb/ntb.c');
  await rm(join(dir, 'drivers/ntb/new.c'));
  t.equal((await treeIdentity(dir)).id, clean.id, 'back to clean, back to the commit');

  await writeFile(join(dir, 'Kconfig'), 'mainmenu "y"\n');
  git(dir, 'commit', '-qam', 'next');
  t.equal((await treeIdentity(dir)).id, `path:${dir}@${git(dir, 'rev-parse', 'HEAD')}`, 'a new commit is a new identity');
});

t.test("git tree from Debian's linux-source: its top-level \"/*\" ignore rule does not hide new files", async (t) => {
  const dir = await scratch(t, 'debian-git-tree');
  await makeTree(dir);
  await writeFile(join(dir, '.gitignore'), '*.o\n# Debian packaging\n/*\n!/debian/\n');
  git(dir, 'init', '-q');
  git(dir, '-c', 'core.excludesFile=', 'add', '-f', '-A', '.');
  git(dir, 'commit', '-qm', 'base');
  const clean = await treeIdentity(dir);
  t.notMatch(clean.id, /dirty/);
  await writeFile(join(dir, 'drivers/ntb/new.c'), 'int n;\n');
  const untracked = await treeIdentity(dir);
  t.match(untracked.id, /\+dirty:/, 'a new source file counts although .gitignore hides it');
  await writeFile(join(dir, 'drivers/ntb/new.o'), 'obj');
  await writeFile(join(dir, 'drivers/ntb/.new.c.swp'), 'swap');
  t.equal((await treeIdentity(dir)).id, untracked.id, 'editor and build litter does not');
});

t.test('non-git tree: content fingerprint, stat cache re-reads only what changed', async (t) => {
  const dir = await scratch(t, 'plain-tree');
  await makeTree(dir);
  const first = await treeIdentity(dir);
  t.match(first.id, new RegExp(`^path:${dir}@tree:[0-9a-f]{16}$`));
  t.equal(first.stats?.hashed, 4, 'first pass reads every file');
  const second = await treeIdentity(dir);
  t.equal(second.id, first.id, 'stable');
  t.equal(second.stats?.hashed, 0, 'second pass reads nothing');

  // Same size, new content: the stat (mtime) changed, so the file is read again.
  await writeFile(join(dir, 'drivers/ntb/ntb.c'), 'int y;\n');
  const edited = await treeIdentity(dir);
  t.not(edited.id, first.id, 'an edit changes it');
  t.equal(edited.stats?.hashed, 1, 'only the edited file is read');

  await writeFile(join(dir, 'drivers/ntb/ntb.c'), 'int x;\n');
  t.equal((await treeIdentity(dir)).id, first.id, 'content, not mtimes: restoring the text restores the identity');

  await chmod(join(dir, 'scripts.sh'), 0o755);
  t.not((await treeIdentity(dir)).id, first.id, 'the exec bit counts');
  await chmod(join(dir, 'scripts.sh'), 0o644);

  await writeFile(join(dir, 'new.c'), '');
  t.not((await treeIdentity(dir)).id, first.id, 'a new (even empty) file counts');
  await rm(join(dir, 'new.c'));

  await mkdir(join(dir, '.git'));
  await writeFile(join(dir, '.git', 'junk'), 'x');
  t.equal((await treeIdentity(dir)).id, first.id, 'a .git directory that is no repository is not content');
});

t.test('a tree inside another repository, or in a repository without commits, gets a content identity', async (t) => {
  const outer = await scratch(t, 'outer');
  git(outer, 'init', '-q');
  const inner = join(outer, 'linux');
  await makeTree(inner);
  t.match((await treeIdentity(inner)).id, /@tree:/, 'not identified by the outer repository');
  const empty = await scratch(t, 'empty-repo');
  await makeTree(empty);
  git(empty, 'init', '-q');
  t.match((await treeIdentity(empty)).id, /@tree:/, 'no HEAD yet');
});

t.test('resolveSource path: uses the identity; a configured tree is refused', async (t) => {
  const dir = await scratch(t, 'resolve-path');
  await makeTree(dir);
  const lines: string[] = [];
  const resolved = await resolveSource({ kind: 'path', path: dir }, (line) => lines.push(line));
  t.equal(resolved.id, (await treeIdentity(dir)).id);
  t.equal(resolved.label, resolved.id, 'the label is the identity users see');
  t.ok(resolved.external);
  t.match(lines.join('\n'), /fingerprinted .* 4 files/);
  await writeFile(join(dir, '.config'), 'CONFIG_X=y\n');
  await t.rejects(resolveSource({ kind: 'path', path: dir }, () => undefined), { code: 'KERNEL_TREE_NOT_CLEAN', kind: 'input' });
});

t.test('git: a local non-bare repository; the cache key is the commit; a moved branch is fetched', async (t) => {
  const repo = await scratch(t, 'git-src');
  await makeTree(repo);
  git(repo, 'init', '-q');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'base');
  git(repo, 'tag', 'v1');
  const base = git(repo, 'rev-parse', 'HEAD');

  const first = await resolveSource({ kind: 'git', url: repo, ref: 'main' }, () => undefined);
  t.equal(first.id, `git:${base}`);
  t.equal(await readFile(join(first.dir, 'drivers/ntb/ntb.c'), 'utf8'), 'int x;\n');
  t.notOk(first.external, 'an extracted copy, never the user tree');

  await writeFile(join(repo, 'drivers/ntb/ntb.c'), 'int moved;\n');
  git(repo, 'commit', '-qam', 'on top');
  const next = git(repo, 'rev-parse', 'HEAD');
  const moved = await resolveSource({ kind: 'git', url: repo, ref: 'main' }, () => undefined);
  t.equal(moved.id, `git:${next}`, 'the branch resolves to the new commit');
  t.equal(await readFile(join(moved.dir, 'drivers/ntb/ntb.c'), 'utf8'), 'int moved;\n');

  t.equal((await resolveSource({ kind: 'git', url: repo, ref: 'v1' }, () => undefined)).id, `git:${base}`, 'tags resolve');
  t.equal((await resolveSource({ kind: 'git', url: repo, ref: base }, () => undefined)).dir, first.dir, 'a commit id shares the extracted tree');

  git(repo, 'checkout', '-qb', 'topic');
  await writeFile(join(repo, 'Kconfig'), 'mainmenu "topic"\n');
  git(repo, 'commit', '-qam', 'topic');
  const topic = await resolveSource({ kind: 'git', url: repo, ref: 'topic' }, () => undefined);
  t.equal(topic.id, `git:${git(repo, 'rev-parse', 'HEAD')}`, 'a new branch is fetched too');

  await t.rejects(resolveSource({ kind: 'git', url: repo, ref: 'no-such-ref' }, () => undefined), { code: 'KERNEL_GIT_REF', kind: 'input' });
});
