/**
 * A KCIDB-style export of a run (kcidb.json, `ntbh export kcidb`), shaped after KCIDB I/O schema v5
 * (docs/kcidb.md): checkouts (a kernel source identity with its patch sets), builds (a kernel as built,
 * per arch), tests (one per check, dotted `path`, KCIDB status) and, for our expected failures, issues
 * with incidents linking them to the tests that showed them.
 *
 * Statuses: PASS → PASS; FAIL → FAIL; XFAIL → FAIL plus an incident of the known issue (the code is
 * faulty, and known to be); XPASS → PASS; ERROR inside a step → ERROR; a step that never ran because the
 * harness could not get the cell going → MISS; SKIP → SKIP. DONE is not produced: every check judges.
 */
import { createHash } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import type { CellKernel, CellResult, CheckResult, RunResult, Side, Status, StepResult } from '../results/model.ts';
import { cleanText } from './format.ts';

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;
/** KCIDB's path: dot-separated components of [a-zA-Z0-9_-]. */
export const KCIDB_PATH = /^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$/;
export const KCIDB_ORIGIN = /^[a-z0-9_]+$/;
const EXCERPT_MAX = 16384;

type Obj = Record<string, unknown>;

export interface KcidbData {
  version: { major: number; minor: number };
  checkouts: Obj[];
  builds: Obj[];
  tests: Obj[];
  issues: Obj[];
  incidents: Obj[];
}

export interface KcidbOptions {
  /** The submitting CI system's name (KCIDB origin). */
  origin?: string;
  /** Where the results directory is published: console logs get URLs. */
  artifactsUrl?: string;
}

function hash(text: string, length = 24): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** One path component: runs of anything KCIDB does not allow become "_". */
export function pathComponent(text: string): string {
  return text.replace(/[^a-zA-Z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || '_';
}

/** `db[host-to-ep bit 3]` → ["db", "host-to-ep_bit_3"]. */
function checkComponents(check: CheckResult): string[] {
  const label = check.id.startsWith(`${check.check}[`) && check.id.endsWith(']') ? check.id.slice(check.check.length + 1, -1) : check.id === check.check ? '' : check.id;
  return [pathComponent(check.check), ...(label ? [pathComponent(label)] : [])];
}

function excerpt(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const clean = cleanText(text).replace(/\0/g, '');
  return clean.length > EXCERPT_MAX ? clean.slice(0, EXCERPT_MAX) : clean;
}

/** A step that never ran because the cell never got going (boot, build, a lost guest): the harness's miss. */
function notRun(step: StepResult, cell: CellResult): boolean {
  const bare = (s: StepResult) => s.checks.length === 0 && s.status === 'ERROR';
  // A cell that could not boot has only bare ERROR steps (execute.ts cellError), its setup included.
  return bare(step) && ((step.message ?? '').startsWith('not run') || cell.steps.every(bare));
}

export function kcidbStatus(status: Status, missed = false): KcidbStatus {
  switch (status) {
    case 'PASS':
    case 'XPASS':
      return 'PASS';
    case 'FAIL':
    case 'XFAIL':
      return 'FAIL';
    case 'ERROR':
      return missed ? 'MISS' : 'ERROR';
    case 'SKIP':
      return 'SKIP';
  }
}

export function kcidbExport(run: RunResult, options: KcidbOptions = {}): KcidbData {
  const origin = options.origin ?? 'ntbh';
  if (!KCIDB_ORIGIN.test(origin)) throw new HarnessError(`KCIDB origin "${origin}" must match [a-z0-9_]+`, { code: 'BAD_OPTIONS', kind: 'input', phase: 'report' });
  const runId = `${run.scenario}:${run.startedAt}`;
  const id = (...parts: string[]) => `${origin}:${parts.join(':')}`;
  const root = ['ntbh', pathComponent(run.scenario)];
  const url = (path: string) => (options.artifactsUrl ? `${options.artifactsUrl.replace(/\/+$/, '')}/${path.split('/').map(encodeURIComponent).join('/')}` : undefined);

  const checkouts = new Map<string, Obj>();
  const builds = new Map<string, Obj>();
  const issues = new Map<string, Obj>();
  const tests: Obj[] = [];
  const incidents: Obj[] = [];

  const checkoutOf = (kernel: CellKernel): string => {
    const key = id('checkout', hash(`${kernel.sourceId}\0${kernel.patches.join('\0')}`));
    if (!checkouts.has(key)) {
      const commit = /\b[0-9a-f]{40}\b/.exec(kernel.sourceId)?.[0];
      const repo = /^git:(https:\/\/[^@\s]+)@/.exec(kernel.source)?.[1];
      checkouts.set(key, {
        id: key,
        origin,
        comment: `${kernel.sourceId}${kernel.patches.length ? ` + ${kernel.patches.join(' + ')}` : ''}`,
        ...(commit ? { git_commit_hash: commit } : {}),
        ...(commit && repo ? { git_repository_url: repo } : {}),
        valid: true,
        misc: { source: kernel.source, source_id: kernel.sourceId, patches: kernel.patches, ...(kernel.package ? { package: kernel.package, version: kernel.version, file: kernel.file, sha256: kernel.sha256 } : {}) },
      });
    }
    return key;
  };

  /** The build a side of a cell booted; a side whose kernel was never built gets a build of its own, without status. */
  const buildOf = (cell: CellResult, side: Side): string => {
    const kernel = cell.kernels?.[side];
    if (!kernel) {
      const key = id(runId, cell.id, side, 'unbuilt');
      if (!builds.has(key)) builds.set(key, { id: key, origin, checkout_id: id('checkout', 'unknown'), comment: `${side} kernel "${cell[side]}" of ${cell.id}: not built`, misc: { variant: cell[side] } });
      return key;
    }
    const key = id('build', kernel.arch, kernel.key);
    if (!builds.has(key)) {
      builds.set(key, {
        id: key,
        origin,
        checkout_id: checkoutOf(kernel),
        architecture: kernel.arch,
        config_name: ['tinyconfig', 'ntbh', ...kernel.fragments].join('+'),
        comment: `${kernel.name} ${kernel.release}`,
        status: 'PASS',
        misc: { variant: kernel.name, release: kernel.release, cache_key: kernel.key, fragments: kernel.fragments },
      });
    }
    return key;
  };

  const issueOf = (reason: string, link?: string): string => {
    const key = id('issue', hash(`${run.scenario}\0${reason}`));
    if (!issues.has(key)) issues.set(key, { id: key, version: 0, origin, comment: reason, ...(link && /^https?:\/\//.test(link) ? { report_url: link } : {}), culprit: { code: true } });
    return key;
  };

  for (const cell of run.cells) {
    const environment = {
      comment: `${cell.id}: ${(['ep', 'host'] as const).map((s) => `${s} ${cell.kernels?.[s]?.release ?? cell[s]}`).join(', ')}`,
      misc: { cell: cell.id, ep: cell.ep, host: cell.host },
    };
    for (const step of cell.steps) {
      const missed = notRun(step, cell);
      const subjects: { check?: CheckResult; status: Status; message?: string; side: Side; components: string[] }[] = step.checks.length
        ? step.checks.map((check) => ({ check, status: check.status, message: check.message, side: check.on ?? 'ep', components: checkComponents(check) }))
        : [{ status: step.status, message: step.message, side: 'ep', components: [] }];
      for (const subject of subjects) {
        const side = subject.side;
        const testId = id(runId, cell.id, step.id, subject.check?.id ?? '');
        const peer: Side = side === 'ep' ? 'host' : 'ep';
        const log = url(`${cell.id}/${side}/console.log`);
        const message = excerpt(subject.message);
        tests.push({
          id: testId,
          origin,
          build_id: buildOf(cell, side),
          path: [...root, pathComponent(step.id), ...subject.components].join('.'),
          status: kcidbStatus(subject.status, missed),
          ...(subject.check ? {} : { duration: step.durationMs / 1000 }),
          environment,
          ...(message ? { log_excerpt: message } : {}),
          ...(log ? { log_url: log } : {}),
          misc: {
            ntbh_status: subject.status,
            cell: cell.id,
            step: step.id,
            ...(subject.check ? { check: subject.check.id, value: subject.check.value, ...(subject.check.expected !== undefined ? { expected: subject.check.expected } : {}), ...(subject.check.known !== undefined ? { known: subject.check.known } : {}) } : {}),
            peer_build_id: buildOf(cell, peer),
          },
        });
        if (subject.status === 'XFAIL') {
          // The reason without the per-check evidence after " — " (as the terminal summary groups them).
          const reason = cleanText(subject.message ?? 'expected failure').split(' — ')[0]!;
          const link = /\((https?:\/\/[^)\s]+)\)/.exec(reason)?.[1];
          const issue = issueOf(reason, link);
          incidents.push({ id: id('incident', hash(`${testId}\0${issue}`)), origin, issue_id: issue, issue_version: 0, test_id: testId, build_id: buildOf(cell, side), present: true });
        }
      }
    }
  }

  for (const group of run.interop.groups) {
    const cell = run.cells.find((c) => c[group.receiver] === group.variant);
    const message = excerpt(group.message);
    tests.push({
      id: id(runId, 'interop', group.step ?? '', group.direction, group.receiver, group.variant),
      origin,
      build_id: cell ? buildOf(cell, group.receiver) : id(runId, 'interop', 'unbuilt'),
      path: [...root, 'interop', ...(group.step ? [pathComponent(group.step)] : []), pathComponent(group.direction)].join('.'),
      status: kcidbStatus(group.status),
      environment: { comment: `${group.receiver} ${group.variant} receiving from ${group.senders.join(', ')}`, misc: { receiver: group.receiver, variant: group.variant, senders: group.senders } },
      ...(message ? { log_excerpt: message } : {}),
      misc: { ntbh_status: group.status },
    });
  }

  return { version: { ...KCIDB_VERSION }, checkouts: [...checkouts.values()], builds: [...builds.values()], tests, issues: [...issues.values()], incidents };
}

export async function writeKcidb(dir: string, run: RunResult): Promise<string> {
  const path = join(dir, 'kcidb.json');
  // Compact: written with every run and several hundred tests per cell; `ntbh export kcidb` pretty-prints.
  await writeFile(`${path}.tmp`, `${JSON.stringify(kcidbExport(run))}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}
