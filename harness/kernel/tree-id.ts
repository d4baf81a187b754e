/**
 * Content identity of a user's kernel tree (a `path:` source), so the kernel cache rebuilds exactly
 * when the tree changes:
 *   - a git work tree: `path:<dir>@<commit>`, plus `+dirty:<hash>` over the tracked changes
 *     (`git diff HEAD --binary`) and the untracked, non-ignored files (names and content);
 *   - any other tree (e.g. Debian's linux-source unpacked): `path:<dir>@tree:<hash>` over every file's
 *     relative path, type, exec bit, size and content. A stat cache (path → size, mtime, inode, sha256)
 *     kept in the ntbh cache means only files whose stat changed are read again, like git's index.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, readFile, readlink, realpath, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { cachePath } from '../util/paths.ts';
import { run } from '../util/proc.ts';
import { sha256, short } from '../util/hash.ts';

export interface TreeIdentity {
  /** The spec users see and results.json records; also the cache identity. */
  id: string;
  kind: 'git' | 'content';
  commit?: string;
  /** Hash of the uncommitted state, absent for a clean git tree. */
  dirty?: string;
  /** Content hash of a non-git tree. */
  tree?: string;
  /** How the content identity was computed (for logs and measurements). */
  stats?: { files: number; hashed: number; bytesHashed: number; ms: number };
}

/** Identity of the tree at `dir` (absolute): git state when `dir` is the top of a git work tree with a commit. */
export async function treeIdentity(dir: string, options: { statCache?: string } = {}): Promise<TreeIdentity> {
  const real = await realpath(dir);
  const git = await gitIdentity(dir, real);
  return git ?? contentIdentity(dir, options);
}

async function git(dir: string, args: string[]): Promise<string | null> {
  const result = await run('git', ['-C', dir, ...args], { phase: 'kernel-build', code: 'KERNEL_TREE_GIT' }).catch(() => null);
  return result ? result.stdout : null;
}

async function gitIdentity(dir: string, real: string): Promise<TreeIdentity | null> {
  // Only the top of a work tree: a kernel unpacked inside some other repository is not identified by it.
  const top = (await git(dir, ['rev-parse', '--show-toplevel']))?.trim();
  if (!top || (await realpath(top).catch(() => top)) !== real) return null;
  const commit = (await git(dir, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']))?.trim();
  if (!commit) return null;
  // Refresh the index's stat data first (as git status does), or a copied tree makes diff read every file.
  await git(dir, ['update-index', '-q', '--refresh']);
  const diff = await run('git', ['-C', dir, 'diff', 'HEAD', '--binary', '--no-ext-diff', '--no-textconv'], { phase: 'kernel-build', code: 'KERNEL_TREE_GIT' });
  const untracked = await untrackedFiles(dir);
  let id = `path:${dir}@${commit}`;
  let dirty: string | undefined;
  if (diff.stdout.length > 0 || untracked.length > 0) {
    const h = createHash('sha256');
    h.update(`diff\0${Buffer.byteLength(diff.stdout)}\0`).update(diff.stdout);
    for (const name of untracked) {
      const entry = await fileRecord(join(dir, name));
      h.update(`untracked\0${name}\0${entry}\0`);
    }
    dirty = short(h.digest('hex'));
    id += `+dirty:${dirty}`;
  }
  return { id, kind: 'git', commit, ...(dirty ? { dirty } : {}) };
}

/**
 * Untracked files that may be sources. Debian's linux-source appends "/*" to the top-level .gitignore
 * (its packaging ignores everything at the top), which hides every new file from git's ignore rules;
 * in such a tree every untracked file counts except editor and build litter (the tree is unconfigured,
 * so there should be no build output).
 */
async function untrackedFiles(dir: string): Promise<string[]> {
  const gitignore = await readFile(join(dir, '.gitignore'), 'utf8').catch(() => '');
  const catchAll = gitignore.split('\n').some((line) => /^\/?\*\s*$/.test(line));
  const args = catchAll ? ['ls-files', '--others', '-z'] : ['ls-files', '--others', '--exclude-standard', '-z'];
  const out = await run('git', ['-C', dir, ...args], { phase: 'kernel-build', code: 'KERNEL_TREE_GIT' });
  const names = out.stdout.split('\0').filter(Boolean);
  return (catchAll ? names.filter((name) => !LITTER.test(name)) : names).sort();
}

const LITTER = /(^|\/)(\.[^/]*\.sw[po]|[^/]*~|\.#[^/]*|[^/]*\.(o|ko|a|cmd|mod|mod\.c|orig|rej)|modules\.order|Module\.symvers)$/;

/** "<type> <size> <sha256>" of one path, for untracked files (symlinks by their target). */
async function fileRecord(path: string): Promise<string> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return `link ${sha256(await readlink(path))}`;
  if (!st.isFile()) return 'other';
  return `${st.mode & 0o111 ? 'exec' : 'file'} ${st.size} ${sha256(await readFile(path))}`;
}

/** One stat-cache entry: what the file looked like when its content hash was taken. */
type CacheEntry = [size: number, mtimeNs: string, ino: number, sha: string];

interface StatCache {
  version: 1;
  dir: string;
  files: Record<string, CacheEntry>;
}

/** Where the stat cache of `dir` lives (one file per tree path). */
export function statCachePath(dir: string): string {
  return cachePath('tree-id', `${short(sha256(dir))}.json`);
}

/** Files changed within this window of the walk may change again in the same mtime tick: never cache them. */
const RACY_NS = 2_000_000_000n;

async function contentIdentity(dir: string, options: { statCache?: string }): Promise<TreeIdentity> {
  const started = Date.now();
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const cacheFile = options.statCache ?? statCachePath(dir);
  const old = await loadCache(cacheFile, dir);
  const next: StatCache = { version: 1, dir, files: {} };
  const entries: { rel: string; record: string }[] = [];

  // Synchronous fs calls with a yield every few ms: ~10x faster than one promise per file on a
  // 90k-file tree, and the event loop (progress output, timers) still runs.
  let lastYield = Date.now();
  const breathe = async () => {
    if (Date.now() - lastYield < 20) return;
    await new Promise((resolve) => setImmediate(resolve));
    lastYield = Date.now();
  };
  let bytesHashed = 0;
  let hashed = 0;
  // Directories sorted so the hash does not depend on readdir order; .git is never content.
  const walk = async (rel: string): Promise<void> => {
    const names = readdirSync(join(dir, rel)).sort();
    for (const name of names) {
      await breathe();
      const childRel = rel ? `${rel}/${name}` : name;
      const full = join(dir, childRel);
      const st = lstatSync(full, { bigint: true });
      if (st.isDirectory()) {
        if (name === '.git') continue;
        await walk(childRel);
      } else if (st.isSymbolicLink()) {
        entries.push({ rel: childRel, record: `link ${sha256(readlinkSync(full))}` });
      } else if (st.isFile()) {
        const size = Number(st.size);
        const kind = (st.mode & 0o111n) !== 0n ? 'exec' : 'file';
        const cached = old?.files[childRel];
        let sha: string;
        if (cached && cached[0] === size && cached[1] === String(st.mtimeNs) && cached[2] === Number(st.ino)) {
          sha = cached[3];
          next.files[childRel] = cached;
        } else {
          sha = sha256(readFileSync(full));
          bytesHashed += size;
          hashed++;
          if (startNs - st.mtimeNs > RACY_NS) next.files[childRel] = [size, String(st.mtimeNs), Number(st.ino), sha];
        }
        entries.push({ rel: childRel, record: `${kind} ${size} ${sha}` });
      }
    }
  };
  try {
    await walk('');
  } catch (cause) {
    throw new HarnessError(`cannot read the kernel tree ${dir}`, { code: 'KERNEL_TREE_UNREADABLE', kind: 'input', phase: 'kernel-build', cause, excerpt: String((cause as Error)?.message ?? cause) });
  }

  const h = createHash('sha256');
  for (const entry of entries) h.update(`${entry.rel}\0${entry.record}\0`);
  const tree = short(h.digest('hex'));
  await saveCache(cacheFile, next);
  return {
    id: `path:${dir}@tree:${tree}`,
    kind: 'content',
    tree,
    stats: { files: entries.length, hashed, bytesHashed, ms: Date.now() - started },
  };
}

async function loadCache(file: string, dir: string): Promise<StatCache | null> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as StatCache;
    return parsed.version === 1 && parsed.dir === dir ? parsed : null;
  } catch {
    return null; // absent or torn: hash everything
  }
}

async function saveCache(file: string, cache: StatCache): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(cache), { mode: 0o600 });
  await rename(tmp, file);
}
