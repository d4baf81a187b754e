import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { HarnessError } from '../errors.ts';
import { cachePath } from '../util/paths.ts';
import { run } from '../util/proc.ts';
import { sha256, short } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';
import type { KernelSource, ResolvedSource } from './spec.ts';
import { parseDebianRequest, resolveDebianSource } from './debian.ts';
import { treeIdentity } from './tree-id.ts';
import { extractOnce } from './extract.ts';

export function parseKernelSource(text: string): KernelSource {
  const debian = /^debian:(.+)$/.exec(text);
  if (debian && parseDebianRequest(debian[1]!)) return { kind: 'debian', version: debian[1]! };
  const git = /^git:(.+)@([^@]+)$/.exec(text);
  if (git) return { kind: 'git', url: git[1]!, ref: git[2]! };
  if (text.startsWith('path:')) return { kind: 'path', path: resolve(text.slice(5)) };
  throw new HarnessError(`unknown kernel source "${text}"`, {
    code: 'BAD_KERNEL_SOURCE',
    kind: 'input',
    phase: 'kernel-build',
    excerpt: 'Use debian:X.Y[.Z] or debian:X.Y=<Debian version> (e.g. debian:7.2), git:<url-or-path>@<ref>, or path:<kernel tree>.',
  });
}

export function describeSource(source: KernelSource): string {
  if (source.kind === 'debian') return `debian:${source.version}`;
  if (source.kind === 'git') return `git:${source.url}@${source.ref}`;
  return `path:${source.path}`;
}

export async function resolveSource(source: KernelSource, log: (line: string) => void): Promise<ResolvedSource> {
  if (source.kind === 'debian') return resolveDebian(source.version, log);
  if (source.kind === 'git') return resolveGit(source.url, source.ref, log);
  return resolvePath(source.path, log);
}

async function resolveDebian(version: string, log: (line: string) => void): Promise<ResolvedSource> {
  return resolveDebianSource(version, log);
}

async function resolveGit(url: string, ref: string, log: (line: string) => void): Promise<ResolvedSource> {
  // A local repository (bare or not) is named by its absolute path, so ./linux and /src/linux share a mirror.
  const remote = existsSync(url) ? resolve(url) : url;
  const mirror = cachePath('git', `${short(sha256(remote))}.git`);
  const revParse = async () =>
    (await run('git', ['--git-dir', mirror, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { phase: 'kernel-build' }).catch(() => null))?.stdout.trim() || null;
  await mkdir(cachePath('git'), { recursive: true });
  await withLock(mirror, async () => {
    if (!existsSync(mirror)) {
      log(`cloning ${remote}`);
      // For a local path, clone hard-links the objects: seconds even for a whole kernel history.
      await run('git', ['clone', '--bare', '--quiet', remote, mirror], { phase: 'kernel-build', code: 'KERNEL_GIT' });
    }
    // A full commit id already in the mirror cannot move; anything else (a branch, a tag) may have.
    if (/^[0-9a-f]{40}$/.test(ref) && (await revParse())) return;
    await run('git', ['--git-dir', mirror, 'fetch', '--quiet', '--prune', remote, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*', '+refs/remotes/*:refs/remotes/*'], {
      phase: 'kernel-build',
      code: 'KERNEL_GIT',
    }).catch((error) => log(`warning: could not fetch ${remote} (${(error as Error).message}); using the cached mirror`));
  });
  const commit = await revParse();
  if (!commit) {
    throw new HarnessError(`${ref} is not a commit in ${remote}`, {
      code: 'KERNEL_GIT_REF',
      kind: 'input',
      phase: 'kernel-build',
      excerpt: `Give a branch, tag or commit of ${remote} (the harness fetches its branches, tags and remote-tracking branches).`,
    });
  }
  const id = `git:${commit}`;
  const dir = cachePath('src', `git-${commit.slice(0, 16)}`);
  await extractOnce(dir, log, `checking out ${ref} (${commit.slice(0, 12)})`, async (tmp) => {
    await run('sh', ['-c', 'git --git-dir "$1" archive --format=tar "$2" | tar -x -C "$3"', 'sh', mirror, commit, tmp], {
      phase: 'kernel-build',
      code: 'KERNEL_GIT',
    });
    return tmp;
  });
  return { id, dir, external: false, label: `${remote} ${ref} (${commit.slice(0, 12)})` };
}

async function resolvePath(path: string, log: (line: string) => void): Promise<ResolvedSource> {
  const dir = isAbsolute(path) ? path : resolve(path);
  if (!existsSync(join(dir, 'Makefile')) || !existsSync(join(dir, 'Kconfig'))) {
    throw new HarnessError(`${dir} is not a kernel source tree`, { code: 'BAD_KERNEL_SOURCE', kind: 'input', phase: 'kernel-build' });
  }
  if (existsSync(join(dir, '.config'))) {
    throw new HarnessError(`${dir} has been configured in place; out-of-tree builds need a clean tree`, {
      code: 'KERNEL_TREE_NOT_CLEAN',
      kind: 'input',
      phase: 'kernel-build',
      excerpt: `Run "make mrproper" in ${dir}, or pass a git: source instead.`,
    });
  }
  // A local tree changes under us: its identity is its content (git state, or a fingerprint of every file).
  const identity = await treeIdentity(dir);
  if (identity.stats) {
    const s = identity.stats;
    log(`fingerprinted ${dir}: ${s.files} files, ${s.hashed} read (${Math.round(s.bytesHashed / 1e6)} MB) in ${(s.ms / 1000).toFixed(1)} s`);
  }
  return { id: identity.id, dir, external: true, label: identity.id };
}
