/**
 * Attaches every reporter to a run's event stream: progress and the terminal summary, and in the results directory
 * events.ndjson (as events arrive), results.json, junit.xml, results.tap, summary.md, kcidb.json and report.html (at run-end).
 */
import { mkdir } from 'node:fs/promises';
import type { Emitter } from '../events.ts';
import type { RunResult } from '../results/model.ts';
import { htmlReporter } from './html.ts';
import { writeResultsJson } from './json.ts';
import { writeJunit } from './junit.ts';
import { writeKcidb } from './kcidb.ts';
import { writeMarkdownSummary } from './markdown.ts';
import { ndjsonReporter } from './ndjson.ts';
import { attachProgress } from './progress.ts';
import { summaryReporter } from './summary.ts';
import { writeTap } from './tap.ts';

export interface ReporterOptions {
  /** Results directory; created if missing. */
  dir: string;
  /** Terminal output (default: process.stdout). */
  write?: (text: string) => void;
  color?: boolean;
}

export interface AttachedReporters {
  /** Waits for the files of the run-end event and closes events.ndjson; returns the written paths. */
  close(): Promise<string[]>;
}

export async function attachReporters(emitter: Emitter, options: ReporterOptions): Promise<AttachedReporters> {
  await mkdir(options.dir, { recursive: true });
  // The CLI's run (no `write` given): progress on stderr, the summary written around its live lines.
  const live = options.write ? undefined : attachProgress(emitter);
  const write = options.write ?? ((text: string) => (live ? live.board.around(() => process.stdout.write(text)) : void process.stdout.write(text)));
  const color = options.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR);
  const ndjson = ndjsonReporter(options.dir);
  const pending: Promise<string>[] = [];
  const html = htmlReporter(options.dir);
  const offs = [
    emitter.on(ndjson.listener),
    emitter.on(summaryReporter({ write, color })),
    emitter.on((event) => {
      if (event.kind !== 'run-end') return;
      const run: RunResult = event.run;
      pending.push(writeResultsJson(options.dir, run), writeJunit(options.dir, run), writeTap(options.dir, run), writeMarkdownSummary(options.dir, run), writeKcidb(options.dir, run));
    }),
    emitter.on(html.listener),
  ];
  return {
    async close() {
      live?.stop();
      const paths = await Promise.all(pending);
      // Last: its links list the cells' files, bundles included.
      const page = await html.write();
      if (page) paths.push(page);
      offs.forEach((off) => off());
      await ndjson.close();
      return [ndjson.path, ...paths];
    },
  };
}
