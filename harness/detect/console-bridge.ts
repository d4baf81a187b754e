/**
 * CellContext's console half, over the console monitors of both guests (harness/detect/console.ts):
 * a mark is the pair of per-guest marks; splatsSince() first waits, bounded, for the step's
 * "ntbh: end step <id>" kmsg line to reach each console, so a splat still in flight is not missed.
 */
import type { Splat } from './console.ts';

/** The part of ConsoleMonitor the bridge needs. */
export interface ConsoleLike<M> {
  readonly guest: string;
  readonly lines: readonly string[];
  mark(): M;
  splatsSince(mark: M): Splat[];
}

export interface ConsoleBridge {
  consoleMark(): unknown;
  splatsSince(mark: unknown, stepId: string): Promise<Splat[]>;
  /** Consoles that have not shown the step's end marker since `mark`: their splat list may be incomplete. */
  splatGaps(mark: unknown, stepId: string): string[];
}

export function consoleBridge<M extends { line: number }>(consoles: ConsoleLike<M>[], waitMs: number, pollMs = 20): ConsoleBridge {
  const sawEnd = (console: ConsoleLike<M>, from: number, stepId: string) => console.lines.slice(from).some((line) => line.includes(`ntbh: end step ${stepId}`));
  return {
    consoleMark: () => consoles.map((console) => console.mark()),
    async splatsSince(mark, stepId) {
      const marks = mark as M[];
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline && !consoles.every((console, i) => sawEnd(console, marks[i]!.line, stepId))) {
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
      return consoles.flatMap((console, i) => console.splatsSince(marks[i]!));
    },
    splatGaps(mark, stepId) {
      const marks = mark as M[];
      return consoles
        .filter((console, i) => !sawEnd(console, marks[i]!.line, stepId))
        .map((console) => `the end-of-step marker never reached ${console.guest}'s console (within ${Math.round(waitMs / 1000)} s)`);
    },
  };
}
