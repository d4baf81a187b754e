/**
 * results.json: the machine-readable result. Top-level `status`; `cells[]` each with id, ep, host,
 * kernels (per side: release, source, sourceId, sha256, name, arch, key, ...), status and steps[]
 * (id, status, values = measured, checks with expected/known); capabilities, params, durationMs,
 * message; phases (where the cell's time went: boot, per-guest boot-ready/boot-ssh, setup parts, each
 * step, teardown); the interop groups; totals and the exit code.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResult } from '../results/model.ts';

export const RESULTS_SCHEMA_VERSION = 1;

export function resultsJson(run: RunResult): Record<string, unknown> {
  return {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    scenario: run.scenario,
    ...(run.file ? { file: run.file } : {}),
    status: run.status,
    exitCode: run.exitCode,
    strict: run.strict,
    startedAt: run.startedAt,
    durationMs: run.durationMs,
    totals: run.totals,
    interop: run.interop,
    cells: run.cells.map((cell) => ({
      id: cell.id,
      ep: cell.ep,
      host: cell.host,
      kernels: cell.kernels ?? {},
      ...(cell.guests ? { guests: cell.guests } : {}),
      ...(cell.sides ? { sides: cell.sides } : {}),
      status: cell.status,
      durationMs: cell.durationMs,
      ...(cell.message ? { message: cell.message } : {}),
      capabilities: cell.capabilities,
      params: cell.params,
      ...(cell.phases ? { phases: cell.phases } : {}),
      steps: cell.steps.map((step) => ({
        id: step.id,
        type: step.type,
        status: step.status,
        durationMs: step.durationMs,
        ...(step.message ? { message: step.message } : {}),
        values: step.values,
        checks: step.checks,
        ...(step.splats.length ? { splats: step.splats } : {}),
        ...(step.taint ? { taint: step.taint } : {}),
      })),
    })),
  };
}

/** Written to a temporary name and renamed, so a reader never sees half a file. */
export async function writeResultsJson(dir: string, run: RunResult): Promise<string> {
  const path = join(dir, 'results.json');
  await writeFile(`${path}.tmp`, `${JSON.stringify(resultsJson(run), null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}
