/**
 * A step's abort scope. The step runner runs each step body inside a StepScope (AsyncLocalStorage,
 * so it follows the body through every await, including objects cached across steps such as an
 * NtbTool); the Rig's guests pass the scope's AbortSignal to every exec. When the budget runs out
 * the runner aborts the scope: in-flight execs reject at once, their remote commands are killed,
 * and any exec the abandoned body still tries fails without running.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { HarnessError } from '../errors.ts';
import { abortedExecError } from '../guest/abort.ts';
import type { CleanupOutcome, ExecOptions, ExecResult, GuestExec } from '../guest/types.ts';

export interface InFlight {
  guest: string;
  command: string;
  startedAt: number;
}

export class StepScope {
  private readonly controller = new AbortController();
  /** Guest commands of this step running now. */
  readonly running = new Set<InFlight>();
  private readonly cleanups: Promise<CleanupOutcome>[] = [];

  constructor(readonly stepId: string) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: HarnessError): void {
    this.controller.abort(reason);
  }

  addCleanup(outcome: Promise<CleanupOutcome>): void {
    this.cleanups.push(outcome);
  }

  /** Waits up to `timeoutMs` for the cleanups the abort started; returns every outcome (late ones as not ok). */
  async settle(timeoutMs: number): Promise<CleanupOutcome[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    try {
      return await Promise.all(
        this.cleanups.map(async (cleanup) => {
          const outcome = await Promise.race([cleanup, late]);
          return outcome === 'late' ? { guest: '?', command: '?', ok: false, detail: `stopping a command took more than ${timeoutMs} ms` } : outcome;
        }),
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

const current = new AsyncLocalStorage<StepScope>();

export function runInScope<T>(scope: StepScope, body: () => Promise<T>): Promise<T> {
  return current.run(scope, body);
}

/**
 * `inner` seen from a step: each exec carries the calling step's signal (none outside a step), is
 * listed as in flight while it runs, and rejects the moment the step is aborted even if `inner`
 * ignored the signal.
 */
export function scopedGuest(inner: GuestExec): GuestExec {
  return {
    get name() {
      return inner.name;
    },
    exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
      const scope = current.getStore();
      if (!scope) return inner.exec(command, options);
      const { signal } = scope;
      if (signal.aborted) return Promise.reject(abortedExecError(inner.name, command, signal));
      const entry: InFlight = { guest: inner.name, command, startedAt: Date.now() };
      scope.running.add(entry);
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(abortedExecError(inner.name, command, signal));
        signal.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      const run = inner.exec(command, {
        ...options,
        signal,
        onCleanup: (outcome) => {
          scope.addCleanup(outcome);
          options.onCleanup?.(outcome);
        },
      });
      return Promise.race([run, aborted]).finally(() => {
        scope.running.delete(entry);
        signal.removeEventListener('abort', onAbort!);
      });
    },
  };
}
