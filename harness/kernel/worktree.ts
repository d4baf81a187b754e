import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { run } from '../util/proc.ts';
import type { PatchFile } from './patches.ts';

/**
 * A work tree is a hard-linked copy of a pristine source plus one O= build directory. Switching
 * variants restores only the files the previous patches touched and applies the new ones, so make
 * rebuilds just those files: a variant differing in two drivers costs seconds, not minutes.
 */
export interface WorkTree {
  src: string;
  build: string;
}

interface AppliedState {
  patches: string[];
  touched: string[];
}

export async function prepareWorkTree(root: string, pristine: string, log: (line: string) => void): Promise<WorkTree> {
  const src = join(root, 'src');
  const build = join(root, 'build');
  if (!existsSync(join(src, 'Makefile'))) {
    log('making a hard-linked work copy of the source');
    await rm(src, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    await run('cp', ['-al', pristine, `${src}.tmp`], { phase: 'kernel-build', code: 'KERNEL_WORKTREE' });
    await run('mv', [`${src}.tmp`, src], { phase: 'kernel-build', code: 'KERNEL_WORKTREE' });
  }
  await mkdir(build, { recursive: true });
  return { src, build };
}

/** Brings the work tree's sources to exactly pristine + `patches`. */
export async function applyPatches(root: string, tree: WorkTree, pristine: string, patches: PatchFile[], logFile: string, log: (line: string) => void): Promise<void> {
  const statePath = join(root, 'applied.json');
  const state: AppliedState = existsSync(statePath) ? JSON.parse(await readFile(statePath, 'utf8')) : { patches: [], touched: [] };
  const wanted = patches.map((patch) => patch.sha256);
  if (JSON.stringify(state.patches) === JSON.stringify(wanted)) return;

  // Mark the tree unknown while it is between states: an interrupted switch is redone from scratch.
  await writeFile(statePath, JSON.stringify({ patches: ['<switching>'], touched: [...new Set([...state.touched, ...patches.flatMap((p) => p.files)])] }));
  for (const file of state.touched) await restoreFile(tree.src, pristine, file);
  // Break the hard links of files about to be patched so the pristine tree is never modified.
  for (const file of patches.flatMap((patch) => patch.files)) await restoreFile(tree.src, pristine, file);
  for (const patch of patches) {
    log(`applying ${patch.path.split('/').slice(-2).join('/')}`);
    await run('patch', ['-p1', '--forward', '--no-backup-if-mismatch', '-r', '-', '-i', patch.path], {
      cwd: tree.src,
      phase: 'kernel-build',
      code: 'KERNEL_PATCH_FAILED',
      logFile,
    });
  }
  await writeFile(statePath, JSON.stringify({ patches: wanted, touched: [...new Set(patches.flatMap((p) => p.files))] }));
}

async function restoreFile(src: string, pristine: string, file: string): Promise<void> {
  const target = join(src, file);
  const original = join(pristine, file);
  await rm(target, { force: true });
  if (existsSync(original)) {
    await mkdir(dirname(target), { recursive: true });
    // A copy (not a link) with a fresh mtime: make must rebuild whatever used the patched version.
    await copyFile(original, target);
  } else if (!target.startsWith(src)) {
    throw new HarnessError(`refusing to touch ${target}`, { code: 'KERNEL_WORKTREE', kind: 'infra', phase: 'kernel-build' });
  }
}
