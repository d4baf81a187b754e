/**
 * `git bisect` in a private bare clone of the user's repository (their work tree, index and refs are
 * never touched): `--no-checkout` moves BISECT_HEAD only, the oracle builds from the commit id.
 */
import { rm } from 'node:fs/promises';
import { HarnessError } from '../errors.ts';
import { run } from '../util/proc.ts';

export interface Terms {
  /** The older behaviour (git's "good"; "broken" for a first-fixed bisect). */
  old: string;
  /** The newer behaviour (git's "bad"; "fixed"). */
  new: string;
}

export type BisectState =
  | { kind: 'test'; commit: string; left: string }
  | { kind: 'found'; commit: string }
  /** Only skipped commits are left: the change is one of these. */
  | { kind: 'inconclusive'; candidates: string[] };

const fail = (message: string, cause: unknown, kind: 'input' | 'infra' = 'infra') =>
  new HarnessError(message, { code: 'BISECT_GIT', kind, phase: 'scenario', cause, excerpt: (cause as HarnessError)?.excerpt });

export class GitBisect {
  constructor(
    readonly gitDir: string,
    readonly terms: Terms,
  ) {}

  private git(args: string[]) {
    return run('git', ['--git-dir', this.gitDir, ...args], { phase: 'scenario', code: 'BISECT_GIT' });
  }

  /** Clones `repo` (hard-linked objects for a local path) to `gitDir`. */
  static async clone(repo: string, gitDir: string, terms: Terms): Promise<GitBisect> {
    // Twice: a gc running in the user's repository can pack loose objects away under a local clone.
    for (let attempt = 1; ; attempt++) {
      await rm(gitDir, { recursive: true, force: true });
      const cloned = await run('git', ['clone', '--bare', '--quiet', repo, gitDir], { phase: 'scenario', code: 'BISECT_GIT' }).catch((cause) => {
        if (attempt >= 2) throw fail(`cannot clone ${repo} for bisecting`, cause, 'input');
        return null;
      });
      if (cloned) return new GitBisect(gitDir, terms);
    }
  }

  /** A ref of the user's repository → commit id (their refs, not the clone's: HEAD is theirs). */
  static async resolve(repo: string, ref: string): Promise<string> {
    const result = await run('git', ['-C', repo, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { phase: 'scenario' }).catch(() => null);
    const commit = result?.stdout.trim();
    if (!commit) throw new HarnessError(`${ref} is not a commit of ${repo}`, { code: 'BISECT_BAD_REF', kind: 'input', phase: 'scenario' });
    return commit;
  }

  async subject(commit: string): Promise<string> {
    return (await this.git(['log', '-1', '--format=%s', commit])).stdout.trim();
  }

  async start(oldCommit: string, newCommit: string): Promise<BisectState> {
    const out = await this.git(['bisect', 'start', '--no-checkout', `--term-old=${this.terms.old}`, `--term-new=${this.terms.new}`, newCommit, oldCommit]).catch((cause) => {
      throw fail(`git bisect cannot start from ${this.terms.old} ${oldCommit.slice(0, 12)} to ${this.terms.new} ${newCommit.slice(0, 12)}`, cause, 'input');
    });
    return this.state(out.stdout);
  }

  async mark(term: 'old' | 'new' | 'skip', commit: string): Promise<BisectState> {
    const word = term === 'skip' ? 'skip' : this.terms[term];
    // git bisect skip exits non-zero when only skipped commits are left; its output still says so.
    const out = await run('git', ['--git-dir', this.gitDir, 'bisect', word, commit], { phase: 'scenario', code: 'BISECT_GIT' }).catch((error: HarnessError) => {
      if (/only 'skip'ped commits left/.test(error.excerpt ?? '')) return { stdout: error.excerpt ?? '' };
      throw fail(`git bisect ${word} ${commit.slice(0, 12)} failed`, error);
    });
    return this.state(out.stdout);
  }

  async log(): Promise<string> {
    return (await this.git(['bisect', 'log'])).stdout;
  }

  /** Where the bisect stands, from git's own output (BISECT_HEAD when there is a commit to test). */
  private async state(output: string): Promise<BisectState> {
    const found = /^([0-9a-f]{40}) is the first \S+ commit/m.exec(output);
    if (found) return { kind: 'found', commit: found[1]! };
    if (/only 'skip'ped commits left/.test(output)) {
      return { kind: 'inconclusive', candidates: [...output.matchAll(/^([0-9a-f]{40})$/gm)].map((m) => m[1]!) };
    }
    const commit = (await this.git(['rev-parse', '--verify', 'BISECT_HEAD'])).stdout.trim();
    const left = /Bisecting: (.*)/.exec(output)?.[1] ?? '';
    return { kind: 'test', commit, left };
  }
}
