import { EventEmitter } from 'node:events';
import { classify, messageOf, normalizeTitle, titleOf, type SplatPattern } from './patterns.ts';

export interface Splat {
  guest: string;
  kind: string;
  /** The first line with run-to-run noise removed (normalizeTitle): equal for the same splat across runs. */
  title: string;
  /** The first line as printed, without its timestamp. */
  rawTitle: string;
  fatal: boolean;
  /** The matching line and the lines after it. */
  excerpt: string;
  /** The step whose kmsg begin marker was the last one seen before the splat, if any. */
  step?: string;
  /** Index of the console line that matched. */
  line: number;
  at: number;
}

export interface ConsoleMark {
  line: number;
  splats: number;
}

const stepBegin = /ntbh: begin step (\S+)/;
const stepEnd = /ntbh: end step (\S+)/;

/**
 * Watches one guest's console line by line: keeps every line, recognises splats from the pattern
 * table, and attributes each to the step whose kmsg markers enclose it.
 */
export class ConsoleMonitor extends EventEmitter {
  readonly lines: string[] = [];
  readonly splats: Splat[] = [];
  private partial = '';
  private currentStep: string | undefined;
  private pending: { splat: Splat; pattern: SplatPattern; remaining: number }[] = [];
  lastOutputAt = Date.now();

  constructor(readonly guest: string) {
    super();
  }

  push(chunk: string): void {
    this.lastOutputAt = Date.now();
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.line(line.replace(/\r$/, ''));
  }

  /** Flushes a last line without a newline (at QEMU exit). */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    this.pending = [];
  }

  mark(): ConsoleMark {
    return { line: this.lines.length, splats: this.splats.length };
  }

  splatsSince(mark: ConsoleMark): Splat[] {
    return this.splats.slice(mark.splats);
  }

  textSince(mark: ConsoleMark): string {
    return this.lines.slice(mark.line).join('\n');
  }

  tail(count = 40): string {
    return this.lines.slice(-count).join('\n');
  }

  private line(line: string): void {
    const index = this.lines.length;
    this.lines.push(line);
    const message = messageOf(line);
    const begin = stepBegin.exec(message);
    if (begin) this.currentStep = begin[1];
    if (stepEnd.test(message)) this.currentStep = undefined;
    this.emit('line', line);

    // Open splats keep collecting their excerpt until their context is full or their trace ends.
    for (const entry of this.pending) {
      entry.splat.excerpt += `\n${line}`;
      entry.remaining = /---\[ end (?:trace|Kernel panic)/.test(message) ? 0 : entry.remaining - 1;
    }
    this.pending = this.pending.filter((entry) => entry.remaining > 0);

    const pattern = classify(line);
    if (!pattern) return;
    const rawTitle = titleOf(line);
    const splat: Splat = {
      guest: this.guest,
      kind: pattern.kind,
      title: normalizeTitle(rawTitle),
      rawTitle,
      fatal: pattern.fatal,
      excerpt: line,
      step: this.currentStep,
      line: index,
      at: Date.now(),
    };
    this.splats.push(splat);
    // Reported at once (a quiet console must not hold a splat back); the excerpt keeps growing.
    this.emit('splat', splat);
    if (pattern.fatal) this.emit('fatal', splat);
    this.pending.push({ splat, pattern, remaining: pattern.context });
  }
}
