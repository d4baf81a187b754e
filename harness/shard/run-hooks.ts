/**
 * What `ntbh run --shard i/n --known-issues FILE` adds to a run, kept out of run/command.ts: the
 * shard's cells, the record merge reads (shard.json), and the known-issues judgement of each cell.
 */
import { applyKnownIssues, loadKnownIssues } from '../compare/known-issues.ts';
import type { Cell } from '../scenario/matrix.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { CellResult } from '../results/model.ts';
import { parseShard, selectShard } from './select.ts';
import { writeShardRecord } from './merge.ts';

export interface NightlyRun {
  cells: Cell[];
  /** For runScenario's adjustCell: known issues applied to each finished cell. */
  adjustCell?: (cell: CellResult) => CellResult;
  /** Called with the results directory once it exists. */
  record(dir: string): Promise<void>;
}

/** Checks the options (bad input fails before anything is built) and returns the run's cells and hooks. */
export async function nightlyRun(scenario: Scenario, cells: Cell[], options: { shard?: string; knownIssues?: string; log: (line: string) => void }): Promise<NightlyRun> {
  const known = options.knownIssues ? await loadKnownIssues(options.knownIssues) : undefined;
  const shard = options.shard ? parseShard(options.shard) : undefined;
  const selected = shard ? selectShard(cells, scenario, shard) : cells;
  if (shard) options.log(`shard ${shard.index}/${shard.count}: ${selected.length} of ${cells.length} cell(s)${selected.length ? `: ${selected.map((c) => c.id).join(' ')}` : ''}`);
  if (known) options.log(`known issues: ${known.issues.length} entr${known.issues.length === 1 ? 'y' : 'ies'} from ${known.file}`);
  return {
    cells: selected,
    ...(known ? { adjustCell: (cell: CellResult) => applyKnownIssues(cell, scenario.name, known) } : {}),
    async record(dir) {
      if (!shard) return;
      await writeShardRecord(dir, {
        schemaVersion: 1,
        scenario: scenario.name,
        ...(scenario.file ? { file: scenario.file } : {}),
        shard,
        cells: cells.map(({ id, ep, host }) => ({ id, ep, host })),
        selected: selected.map((c) => c.id),
        steps: scenario.steps.map((s) => ({ id: s.id, type: s.type })),
      });
    },
  };
}
