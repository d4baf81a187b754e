/**
 * Reads a run back from its results.json (a results directory or the file itself) as the RunResult the
 * reporters take: compare, merge and the exports work on finished runs, never on live ones.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { RESULTS_SCHEMA_VERSION } from '../report/json.ts';
import type { CellResult, RunResult, StepResult } from '../results/model.ts';

/** `path` is a results directory or a results.json; returns the file's path. */
export async function resultsFile(path: string): Promise<string> {
  const info = await stat(path).catch((cause) => {
    throw new HarnessError(`no results at ${path}`, { code: 'RESULTS_NOT_FOUND', kind: 'input', phase: 'report', cause });
  });
  return info.isDirectory() ? join(path, 'results.json') : path;
}

export async function readRun(path: string): Promise<RunResult> {
  const file = await resultsFile(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new HarnessError(`no results.json in ${path} (did the run finish?)`, { code: 'RESULTS_NOT_FOUND', kind: 'input', phase: 'report', cause });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new HarnessError(`${file} is not JSON`, { code: 'RESULTS_INVALID', kind: 'input', phase: 'report', cause });
  }
  return fromResultsJson(data, file);
}

/** The inverse of report/json.ts's resultsJson: restores the fields it leaves out when empty. */
export function fromResultsJson(data: unknown, file = 'results.json'): RunResult {
  const json = data as Partial<RunResult> & { schemaVersion?: number };
  const bad = (what: string) => new HarnessError(`${file}: ${what}`, { code: 'RESULTS_INVALID', kind: 'input', phase: 'report' });
  if (!json || typeof json !== 'object') throw bad('not an object');
  if (json.schemaVersion !== RESULTS_SCHEMA_VERSION) throw bad(`schemaVersion ${String(json.schemaVersion)}, this harness reads ${RESULTS_SCHEMA_VERSION}`);
  if (typeof json.scenario !== 'string' || !Array.isArray(json.cells) || !json.totals || !json.interop) throw bad('missing scenario, cells, totals or interop');
  const cells = json.cells.map((cell: CellResult): CellResult => {
    if (typeof cell?.id !== 'string' || !Array.isArray(cell.steps)) throw bad('a cell without id or steps');
    return { ...cell, steps: cell.steps.map((step: StepResult) => ({ ...step, checks: step.checks ?? [], splats: step.splats ?? [], values: step.values ?? {} })) };
  });
  return {
    scenario: json.scenario,
    ...(json.file ? { file: json.file } : {}),
    status: json.status!,
    strict: json.strict ?? false,
    exitCode: json.exitCode ?? 0,
    startedAt: json.startedAt ?? new Date(0).toISOString(),
    durationMs: json.durationMs ?? 0,
    totals: json.totals,
    interop: json.interop,
    cells,
    ...(json.message ? { message: json.message } : {}),
  };
}
