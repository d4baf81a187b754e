/**
 * The run's typed event stream: a union keyed on `kind`, so every reporter's switch is checked by the
 * compiler. The infrastructure emits `phase` events (boot, ssh, link, ...); the executor the rest.
 * Every event is also written to events.ndjson by the ndjson reporter.
 */
import type { CellKernels, CellResult, CheckResult, RunResult, SplatRecord, StepResult } from './results/model.ts';

export interface CellRef {
  id: string;
  ep: string;
  host: string;
}

export type HarnessEvent =
  | { kind: 'run-start'; scenario: string; file?: string; cells: CellRef[]; strict: boolean }
  | { kind: 'cell-start'; cell: CellRef }
  | {
      kind: 'phase';
      cell?: string;
      guest?: string;
      /** boot, ssh, link, kernel-build, modules, probe, function-setup, teardown, ... */
      phase: string;
      status: 'start' | 'end' | 'error';
      durationMs?: number;
      message?: string;
    }
  /** The kernels a cell is about to boot, from the kernel cache's metadata. */
  | { kind: 'kernels'; cell: string; kernels: CellKernels }
  | { kind: 'capabilities'; cell: string; guest: string; values: Record<string, boolean>; unknown: Record<string, string>; release?: string }
  | { kind: 'step-start'; cell: string; step: string; type: string }
  | { kind: 'check'; cell: string; step: string; check: CheckResult }
  | { kind: 'splat'; cell: string; step?: string; splat: SplatRecord }
  | { kind: 'step-end'; cell: string; step: StepResult }
  | { kind: 'cell-end'; cell: CellResult }
  | { kind: 'run-end'; run: RunResult }
  | { kind: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string; cell?: string; guest?: string }
  /** A long job between its phase start and end (a kernel build's objects), about once a second; not kept in events.ndjson. */
  | {
      kind: 'progress';
      phase: string;
      guest?: string;
      cell?: string;
      /** Units done so far, and the expected total when a previous run knew it. */
      done: number;
      unit: string;
      total?: number;
      elapsedMs: number;
      /** Time left by the estimate, and what the estimate comes from ("this work tree"). */
      remainingMs?: number;
      basis?: string;
    };

export type EventKind = HarnessEvent['kind'];
/** An event as delivered: with the wall-clock time it was emitted. */
export type Stamped<E extends HarnessEvent = HarnessEvent> = E & { time: string };
export type Listener = (event: Stamped) => void;

export interface Emitter {
  emit(event: HarnessEvent): void;
  /** Subscribes; returns the unsubscribe function. */
  on(listener: Listener): () => void;
}

/** A synchronous emitter: a reporter that throws is reported on stderr once and unsubscribed, never stops the run. */
export function createEmitter(now: () => Date = () => new Date()): Emitter {
  const listeners = new Set<Listener>();
  return {
    emit(event) {
      const stamped = { ...event, time: now().toISOString() } as Stamped;
      for (const listener of [...listeners]) {
        try {
          listener(stamped);
        } catch (error) {
          listeners.delete(listener);
          process.stderr.write(`ntbh: a reporter failed on a ${event.kind} event and was detached: ${(error as Error)?.message ?? error}\n`);
        }
      }
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
