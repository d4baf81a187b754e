/**
 * Progress on long work, from the event stream: kernel builds (objects compiled, time left by the
 * previous build of the same tree), the QEMU build, boots, cells and their steps, the run as a
 * whole. On a terminal, a live line per running job redrawn in place under the ordinary output;
 * elsewhere (CI logs) plain timestamped lines without escape codes: state changes as they happen,
 * and a running job's line every `heartbeatMs`, so a log is never silent for minutes.
 */
import pc from 'picocolors';
import stripAnsi from 'strip-ansi';
import { createEmitter, type Emitter, type HarnessEvent, type Stamped } from '../events.ts';
import type { BuildProgress } from '../kernel/build-progress.ts';
import { remainingMs } from '../kernel/build-progress.ts';
import { setProgressSink } from '../util/log.ts';
import { duration } from './format.ts';

export interface BoardStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface BoardOptions {
  stream: BoardStream;
  /** Live lines redrawn in place (a terminal) or plain timestamped lines (a log). */
  live: boolean;
  /** Milliseconds clock (tests inject one). */
  now?: () => number;
  /** Plain mode: a running job's line at most this often (default 30 s). */
  heartbeatMs?: number;
  /** Live mode: redraw period for the elapsed times (default 1 s; 0: only on changes). */
  redrawMs?: number;
}

interface Job {
  label: string;
  detail: string;
  started: number;
  lastPrinted: number;
}

const SPINNER = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';

export class ProgressBoard {
  private readonly jobs = new Map<string, Job>();
  private readonly now: () => number;
  private readonly heartbeat: number;
  private drawn = 0;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly c: ReturnType<typeof pc.createColors>;

  constructor(private readonly options: BoardOptions) {
    this.now = options.now ?? Date.now;
    this.heartbeat = options.heartbeatMs ?? 30_000;
    this.c = pc.createColors(options.live);
  }

  has(key: string): boolean {
    return this.jobs.has(key);
  }

  /** A job starts; `quiet`: plain mode says nothing until it has run a while (cache hits stay silent). */
  start(key: string, label: string, detail = '', quiet = false): void {
    const t = this.now();
    this.jobs.set(key, { label, detail, started: t, lastPrinted: t });
    if (this.options.live) this.redraw();
    else if (!quiet) this.plain(`${label}${detail ? `: ${detail}` : ''}`);
  }

  /** New detail for a running job; a `milestone` is printed at once in plain mode, a tick only on the heartbeat. */
  update(key: string, detail: string, milestone = false): void {
    const job = this.jobs.get(key);
    if (!job) return;
    job.detail = detail;
    const t = this.now();
    if (this.options.live) this.redraw();
    else if (milestone || t - job.lastPrinted >= this.heartbeat) {
      job.lastPrinted = t;
      this.plain(`${job.label}: ${detail} [${duration(t - job.started)}]`);
    }
  }

  /** The job is over; `text`, when given, stays as an ordinary line. */
  end(key: string, text?: string): void {
    if (!this.jobs.delete(key)) return;
    if (text) this.print(text);
    else if (this.options.live) this.redraw();
  }

  /** An ordinary line (a log line), above the live jobs. */
  print(line: string): void {
    if (!this.options.live) return this.plain(line);
    this.around(() => this.options.stream.write(`${this.c.dim(this.stamp())} ${line}\n`));
  }

  /** Writes that share the terminal (the summary on stdout) happen with the live lines out of the way. */
  around(write: () => void): void {
    if (!this.options.live) return write();
    this.clear();
    write();
    this.draw();
  }

  /** Clears the live lines and forgets the jobs. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.options.live) this.clear();
    this.jobs.clear();
  }

  /** The live lines as they would be drawn (tests). */
  lines(): string[] {
    const t = this.now();
    const width = Math.max(20, (this.options.stream.columns || 100) - 1);
    return [...this.jobs.values()].map((job) => {
      const text = `${job.label}  ${job.detail}  ${duration(t - job.started)}`.replace(/\s+$/, '');
      return stripAnsi(text).slice(0, width - 2);
    });
  }

  private stamp(): string {
    return new Date(this.now()).toISOString().slice(11, 19);
  }

  private plain(line: string): void {
    this.options.stream.write(`${this.stamp()} ${stripAnsi(line)}\n`);
  }

  private clear(): void {
    if (this.drawn > 0) this.options.stream.write(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    const lines = this.lines();
    this.frame = (this.frame + 1) % SPINNER.length;
    if (lines.length) this.options.stream.write(lines.map((l) => `${this.c.cyan(SPINNER[this.frame]!)} ${l}\n`).join(''));
    this.drawn = lines.length;
    const period = this.options.redrawMs ?? 1000;
    if (lines.length && !this.timer && period > 0) {
      this.timer = setInterval(() => this.redraw(), period);
      this.timer.unref();
    } else if (!lines.length && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }
}

/** "1234/~2100 objects, ~3m10s left (by this work tree's last build)", "812/2450 build steps, ~4m left". */
export function progressDetail(event: Extract<HarnessEvent, { kind: 'progress' }>): string {
  const left = event.remainingMs !== undefined ? `, ~${duration(event.remainingMs)} left${event.basis ? ` (by ${event.basis}'s last build)` : ''}` : '';
  // A total from a previous build is an estimate (~); ninja's own is exact.
  return `${event.done}${event.total ? `/${event.basis ? '~' : ''}${event.total}` : ''} ${event.unit}${left}`;
}

const BUILD_LABELS: Record<string, string> = { 'kernel-build': 'kernel', 'qemu-build': 'QEMU with the link devices', 'image-build': 'guest image' };

/** Turns the run's events into jobs on the board. */
export function progressListener(board: ProgressBoard, now: () => number = Date.now): (event: Stamped) => void {
  let total = 0;
  let finished = 0;
  let runStarted = now();
  const index = new Map<string, number>();
  const cellKey = (id: string) => `cell ${id}`;
  const cellLabel = (id: string) => `cell ${index.get(id) ?? '?'}/${total || '?'} ${id}`;
  const cell = (id: string, detail: string, milestone: boolean) => {
    if (board.has(cellKey(id))) board.update(cellKey(id), detail, milestone);
    else board.start(cellKey(id), cellLabel(id), detail);
  };
  const buildKey = (phase: string, guest?: string) => `${phase} ${guest ?? ''}`;
  const buildLabel = (phase: string, guest?: string) => `${BUILD_LABELS[phase] ?? phase}${guest ? ` ${guest}` : ''}`;
  return (event) => {
    switch (event.kind) {
      case 'run-start':
        total = event.cells.length;
        finished = 0;
        runStarted = now();
        event.cells.forEach((c, i) => index.set(c.id, i + 1));
        board.start('run', `run ${event.scenario}`, `0/${total} cells`);
        break;
      case 'phase':
        if (event.cell) {
          // The setup step's own phases (modules, probe, ...) show as the step.
          if (event.phase !== 'boot' || event.guest) break;
          if (event.status === 'start') cell(event.cell, 'booting the pair', false);
          else if (event.status === 'end') cell(event.cell, `booted in ${duration(event.durationMs ?? 0)}`, true);
          else cell(event.cell, `boot failed: ${event.message ?? ''}`, true);
          break;
        }
        if (event.status === 'start') board.start(buildKey(event.phase, event.guest), buildLabel(event.phase, event.guest), 'checking the cache', true);
        else if (event.status === 'end') {
          // A cache hit takes no time: nothing worth a line.
          const ms = event.durationMs ?? 0;
          board.end(buildKey(event.phase, event.guest), ms >= 2000 ? `${buildLabel(event.phase, event.guest)}: done in ${duration(ms)}` : undefined);
        } else board.end(buildKey(event.phase, event.guest), `${buildLabel(event.phase, event.guest)}: failed after ${duration(event.durationMs ?? 0)}: ${event.message ?? ''}`);
        break;
      case 'progress':
        board.update(buildKey(event.phase, event.guest), progressDetail(event));
        break;
      case 'cell-start':
        cell(event.cell.id, 'setup', false);
        break;
      case 'step-start':
        cell(event.cell, `step ${event.step} (${event.type})`, false);
        break;
      case 'step-end':
        cell(event.cell, `step ${event.step.id} ${event.step.status} in ${duration(event.step.durationMs)}`, true);
        break;
      case 'cell-end': {
        board.end(cellKey(event.cell.id));
        finished++;
        const elapsed = now() - runStarted;
        const left = finished < total ? `, ~${duration(Math.round((elapsed / finished) * (total - finished)))} left` : '';
        board.update('run', `${finished}/${total} cells${left}`, true);
        break;
      }
      case 'run-end':
        board.end('run');
        break;
      case 'log':
        if (event.level === 'warn' || event.level === 'error') board.print(`${event.cell ? `${event.cell}: ` : ''}${event.message}`);
        break;
      default:
        break;
    }
  };
}

export interface AttachedProgress {
  board: ProgressBoard;
  stop(): void;
}

/**
 * Progress on stderr for a command's event stream; the harness's progress lines (util/log.ts) go
 * through the same board while it is up, so they never tear a live line.
 */
export function attachProgress(emitter: Emitter, options: Partial<BoardOptions> = {}): AttachedProgress {
  const stream = options.stream ?? process.stderr;
  const live = options.live ?? (stream.isTTY === true && process.env.TERM !== 'dumb' && !process.env.CI);
  const board = new ProgressBoard({ ...options, stream, live });
  const off = emitter.on(progressListener(board, options.now));
  const previous = setProgressSink((line) => board.print(line));
  return {
    board,
    stop() {
      off();
      setProgressSink(previous);
      board.stop();
    },
  };
}

/** buildKernel's progress option as events (for a kernel build outside a run: `ntbh kernel build`). */
export function kernelProgressEvents(emitter: Emitter, guest: string): (p: BuildProgress) => void {
  return (p) =>
    emitter.emit({ kind: 'progress', phase: 'kernel-build', guest, done: p.objects, unit: 'objects', total: p.estimate?.objects, elapsedMs: p.elapsedMs, remainingMs: remainingMs(p), basis: p.estimate?.basis });
}

/** A kernel build outside a run (`ntbh kernel build`): the same live line, from its own events. */
export async function buildWithProgress<T>(guest: string, build: (onProgress: (p: BuildProgress) => void) => Promise<T>): Promise<T> {
  const emitter = createEmitter();
  const attached = attachProgress(emitter);
  const started = Date.now();
  emitter.emit({ kind: 'phase', phase: 'kernel-build', guest, status: 'start' });
  try {
    const result = await build(kernelProgressEvents(emitter, guest));
    emitter.emit({ kind: 'phase', phase: 'kernel-build', guest, status: 'end', durationMs: Date.now() - started });
    return result;
  } catch (error) {
    emitter.emit({ kind: 'phase', phase: 'kernel-build', guest, status: 'error', durationMs: Date.now() - started, message: (error as Error)?.message });
    throw error;
  } finally {
    attached.stop();
  }
}
