import { join } from 'node:path';
import { createEmitter } from '../events.ts';
import { attachReporters } from '../report/index.ts';
import { loadScenario } from '../scenario/load.ts';
import { expandMatrix } from '../scenario/matrix.ts';
import { runScenario } from '../scenario/run.ts';
import { HarnessError } from '../errors.ts';
import { ensureSetup } from '../setup/setup.ts';
import { makeRunKey } from '../guest/keys.ts';
import { makeRunDirs } from '../util/rundir.ts';
import { adHocScenario } from './adhoc.ts';
import { ArtifactStore } from './artifacts.ts';
import { bootCell } from './boot-cell.ts';
import { nightlyRun } from '../shard/run-hooks.ts';
import { attachBundleWriter } from './bundle.ts';

export interface RunCommandOptions {
  results?: string;
  strict?: boolean;
  cell?: string[];
  /** Ad-hoc kernels (a variant name or a source) replacing the matrix by one cell; see adhoc.ts. */
  ep?: string;
  host?: string;
  /** `i/n`: run the i-th of n stable subsets of the cells (harness/shard/select.ts). */
  shard?: string;
  /** A known-issues file: matching failures are reported as known (XFAIL) with their reason. */
  knownIssues?: string;
  /** Cells run at the same time (default 1). Each cell is two guests that mostly wait on each other. */
  parallel?: number;
  timeoutScale: number;
  log: (line: string) => void;
}

/** `ntbh run <scenario>`: every cell booted through the link, reports written, the exit code returned. */
export async function runCommand(file: string, options: RunCommandOptions): Promise<number> {
  let scenario = await loadScenario(file);
  if (options.ep !== undefined || options.host !== undefined) {
    if (options.cell?.length) {
      throw new HarnessError('--cell cannot be combined with --ep/--host (they make the single cell)', { code: 'BAD_OPTIONS', kind: 'input', phase: 'scenario' });
    }
    scenario = adHocScenario(scenario, { ep: options.ep, host: options.host });
  }
  let cells = expandMatrix(scenario);
  if (options.cell?.length) {
    cells = cells.filter((cell) => options.cell!.includes(cell.id));
    if (cells.length === 0) {
      throw new HarnessError(`no cell matches ${options.cell.join(', ')}`, {
        code: 'NO_SUCH_CELL',
        kind: 'input',
        phase: 'scenario',
        excerpt: `cells: ${expandMatrix(scenario).map((c) => c.id).join(' ')}`,
      });
    }
  }
  const nightly = await nightlyRun(scenario, cells, options);
  cells = nightly.cells;
  await ensureSetup({ log: options.log });
  const run = await makeRunDirs(scenario.name.replace(/[^\w.-]+/g, '-'), options.results);
  await nightly.record(run.dir);
  const emitter = createEmitter();
  const reporters = await attachReporters(emitter, { dir: run.dir });
  const key = await makeRunKey(join(run.dir, 'ssh'));
  const store = new ArtifactStore(emitter, options.log);
  // Each cell's reproducer bundle (<run>/<cell>/bundle/, harness/run/bundle.ts), written as it ends.
  const bundles = attachBundleWriter(emitter, { scenario, run, store, log: options.log });
  options.log(`run ${run.id}: ${cells.length} cell(s); artifacts in ${run.dir}`);
  const result = await runScenario(
    scenario,
    (cell) => bootCell(cell, { scenario, run, key, store, emitter, timeoutScale: options.timeoutScale, log: options.log }),
    { emitter, strict: options.strict, cells, adjustCell: nightly.adjustCell, concurrency: options.parallel },
  );
  await bundles.close();
  const written = await reporters.close();
  options.log(`results: ${written.filter((p) => p.endsWith('results.json')).join('') || run.dir}`);
  return result.exitCode;
}
