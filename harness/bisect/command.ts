/**
 * `ntbh bisect`: finds the first commit of a kernel tree that changes a scenario's outcome. One side of
 * the cell (ep or host) is built from each commit (`git:<tree>@<commit>`), the other side is a fixed
 * peer variant; the scenario's single cell is the oracle (oracle.ts). The loop drives `git bisect`
 * itself in a private clone, so every step keeps its own results directory and log.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HarnessError, isHarnessError } from '../errors.ts';
import { adHocScenario } from '../run/adhoc.ts';
import { runCommand } from '../run/command.ts';
import { loadScenario } from '../scenario/load.ts';
import { repoRoot } from '../util/paths.ts';
import type { RunResult } from '../results/model.ts';
import { GitBisect, type BisectState, type Terms } from './git.ts';
import { judgeRun, type OracleResult } from './oracle.ts';

export interface BisectOptions {
  tree: string;
  good: string;
  bad: string;
  side: 'ep' | 'host';
  scenario: string;
  /** The other side's kernel (a variant name or a source); default stock. */
  peer?: string;
  /** `<step id>.<check>`: only this check decides. */
  check?: string;
  /** Look for the first commit that fixes (good after bad) instead of the first that breaks. */
  fixed?: boolean;
  results?: string;
  timeoutScale: number;
  log: (line: string) => void;
  /** Runs one step's scenario (default runCommand); tests replace it to drive the loop without guests. */
  runStep?: (scenario: string, options: { results: string; ep: string; host: string }) => Promise<number>;
}

export interface BisectStep {
  index: number;
  commit: string;
  subject: string;
  verdict: string;
  code: 0 | 1 | 125;
  reason: string;
  durationMs: number;
  results: string;
}

export interface BisectReport {
  tree: string;
  side: 'ep' | 'host';
  peer: string;
  scenario: string;
  check?: string;
  mode: 'first-bad' | 'first-fixed';
  terms: Terms;
  /** The two ends as given and as commits. */
  old: { ref: string; commit: string };
  new: { ref: string; commit: string };
  steps: BisectStep[];
  /** The first commit with the new behaviour, when found. */
  result: { commit: string; subject: string } | null;
  /** When only skipped commits are left: the change is one of these. */
  candidates?: { commit: string; subject: string }[];
  durationMs: number;
  log: string;
}

const SAFE_CHECK = /^[\w.-]+\.[\w]+$/;

export async function bisectCommand(options: BisectOptions): Promise<{ exitCode: number; report: BisectReport; dir: string }> {
  const started = Date.now();
  const tree = resolve(options.tree);
  const peer = options.peer ?? 'stock';
  const fixed = options.fixed ?? false;
  const terms: Terms = fixed ? { old: 'broken', new: 'fixed' } : { old: 'good', new: 'bad' };
  // In a first-fixed bisect the older end is the bad one: --bad <old> --good <new>.
  const oldRef = fixed ? options.bad : options.good;
  const newRef = fixed ? options.good : options.bad;

  // Validate everything before the first (expensive) step: the scenario, the check, the peer, the refs.
  const scenario = await loadScenario(options.scenario);
  if (options.check) validateCheck(scenario, options.check);
  const probe = `git:${tree}@${'0'.repeat(40)}`;
  adHocScenario(scenario, options.side === 'ep' ? { ep: probe, host: peer } : { ep: peer, host: probe });
  const oldCommit = await GitBisect.resolve(tree, oldRef);
  const newCommit = await GitBisect.resolve(tree, newRef);

  const dir = resolve(options.results ?? join(repoRoot, 'results', `bisect-${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const bisect = await GitBisect.clone(tree, join(dir, 'repo.git'), terms);
  const report: BisectReport = {
    tree,
    side: options.side,
    peer,
    scenario: resolve(options.scenario),
    ...(options.check ? { check: options.check } : {}),
    mode: fixed ? 'first-fixed' : 'first-bad',
    terms,
    old: { ref: oldRef, commit: oldCommit },
    new: { ref: newRef, commit: newCommit },
    steps: [],
    result: null,
    durationMs: 0,
    log: '',
  };
  const save = async () => {
    report.durationMs = Date.now() - started;
    await writeFile(join(dir, 'bisect.json'), `${JSON.stringify(report, null, 2)}\n`, { mode: 0o600 });
  };

  const runStep = options.runStep ?? ((file, o) => runCommand(file, { results: o.results, ep: o.ep, host: o.host, timeoutScale: options.timeoutScale, log: options.log }));
  options.log(`bisecting ${tree} (${options.side}) for the first ${terms.new} commit: ${terms.old} ${oldRef} (${oldCommit.slice(0, 12)}), ${terms.new} ${newRef} (${newCommit.slice(0, 12)}); results in ${dir}`);
  let state: BisectState = await bisect.start(oldCommit, newCommit);
  while (state.kind === 'test') {
    const commit = state.commit;
    const index = report.steps.length + 1;
    const subject = await bisect.subject(commit);
    options.log(`step ${index}: ${commit.slice(0, 12)} ${subject} (${state.left})`);
    const results = join(dir, 'steps', `${String(index).padStart(2, '0')}-${commit.slice(0, 12)}`);
    const stepStarted = Date.now();
    const source = `git:${tree}@${commit}`;
    const outcome = await oracle(resolve(options.scenario), results, options.side === 'ep' ? { ep: source, host: peer } : { ep: peer, host: source }, runStep, { check: options.check, fixed });
    const verdict = outcome.verdict === 'skip' ? 'skip' : terms[outcome.verdict];
    report.steps.push({ index, commit, subject, verdict, code: outcome.code, reason: outcome.reason, durationMs: Date.now() - stepStarted, results });
    options.log(`step ${index}: ${commit.slice(0, 12)} is ${verdict} — ${outcome.reason} (${Math.round((Date.now() - stepStarted) / 1000)} s)`);
    await save();
    state = await bisect.mark(outcome.verdict, commit);
  }

  report.log = await bisect.log().catch(() => '');
  let exitCode = 0;
  if (state.kind === 'found') {
    report.result = { commit: state.commit, subject: await bisect.subject(state.commit) };
    options.log(`first ${terms.new} commit: ${state.commit} ${report.result.subject}`);
  } else {
    report.candidates = await Promise.all(state.candidates.map(async (commit) => ({ commit, subject: await bisect.subject(commit) })));
    options.log(`inconclusive: only skipped commits are left; the first ${terms.new} commit is one of:\n${report.candidates.map((c) => `  ${c.commit} ${c.subject}`).join('\n')}`);
    exitCode = 2;
  }
  await save();
  // The clone's objects are hard links into the user's repository: nothing worth keeping in results.
  await rm(bisect.gitDir, { recursive: true, force: true });
  return { exitCode, report, dir };
}

function validateCheck(scenario: Awaited<ReturnType<typeof loadScenario>>, check: string): void {
  const dot = check.lastIndexOf('.');
  const stepId = check.slice(0, dot);
  if (!SAFE_CHECK.test(check) || !(stepId === 'setup' || scenario.steps.some((s) => s.id === stepId))) {
    throw new HarnessError(`--check ${check}: not <step id>.<check> of ${scenario.name}`, {
      code: 'BAD_OPTIONS',
      kind: 'input',
      phase: 'scenario',
      excerpt: `steps: setup ${scenario.steps.map((s) => s.id).join(' ')}`,
    });
  }
}

/** One commit: run the cell, read its results.json, judge. Any error on the way is a skip (125). */
async function oracle(
  file: string,
  results: string,
  kernels: { ep: string; host: string },
  runStep: NonNullable<BisectOptions['runStep']>,
  options: { check?: string; fixed: boolean },
): Promise<OracleResult> {
  try {
    await runStep(file, { results, ...kernels });
    const run = JSON.parse(await readFile(join(results, 'results.json'), 'utf8')) as RunResult;
    return judgeRun(run, options);
  } catch (error) {
    const message = isHarnessError(error) ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error);
    return { verdict: 'skip', code: 125, reason: `error: ${message}`, statuses: [] };
  }
}
