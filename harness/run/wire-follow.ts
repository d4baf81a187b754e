/**
 * `ntbh wire <run>`: follows a cell's wire.ndjson (the relay's trace of every link message) as it
 * grows, printing each message and the per-vector MSI counters whenever they change. Works on a live
 * pair (`ntbh up`, a running `ntbh run`) and on a finished run (--once prints what is there).
 */
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WireEvent } from '../link/types.ts';

/** Carriage return and erase-line: the terminal's status line is rewritten in place. */
const CLEAR_LINE = '\r\x1b[K';

/** MSI outcomes per host vector, as the relay recorded them. */
export class WireCounters {
  readonly delivered = new Map<number, number>();
  /** Not delivered, by result (masked, msi-disabled, not-plugged, ...), per vector. */
  readonly refused = new Map<string, Map<number, number>>();
  linkUp = false;

  /** Returns true when a counter changed. */
  add(event: WireEvent): boolean {
    if (event.type === 'PLUGGED') this.linkUp = true;
    if (event.type === 'UNPLUGGED') this.linkUp = false;
    if (event.type !== 'MSI' || typeof event.vector !== 'number') return event.type === 'PLUGGED' || event.type === 'UNPLUGGED';
    const vector = event.vector;
    if (event.result === 'delivered') {
      this.delivered.set(vector, (this.delivered.get(vector) ?? 0) + 1);
    } else {
      const result = String(event.result);
      const counts = this.refused.get(result) ?? new Map<number, number>();
      counts.set(vector, (counts.get(vector) ?? 0) + 1);
      this.refused.set(result, counts);
    }
    return true;
  }

  /** One line: `link up; MSI delivered v0=2 v3=1; masked v5=1`. */
  format(): string {
    const list = (counts: Map<number, number>) =>
      [...counts.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([v, n]) => `v${v}=${n}`)
        .join(' ');
    const parts = [`link ${this.linkUp ? 'up' : 'down'}`, `MSI delivered ${this.delivered.size ? list(this.delivered) : '(none)'}`];
    for (const [result, counts] of [...this.refused.entries()].sort()) parts.push(`${result} ${list(counts)}`);
    return parts.join('; ');
  }
}

/** A trace event as one short line: time, direction, type, fields. */
export function formatWireEvent(event: WireEvent): string {
  const { t, link: _link, from, type, to, ...fields } = event;
  const arrow = from === 'relay' ? (to ? `relay→${String(to)}` : 'relay') : `${from}→relay`;
  const rest = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return `${(t / 1000).toFixed(3).padStart(9)}s  ${arrow.padEnd(11)} ${type}${rest ? ` ${rest}` : ''}`;
}

export interface FollowOptions {
  /** Print what is there and return, instead of following. */
  once?: boolean;
  /** Print only the counters, not each message. */
  quiet?: boolean;
  write: (text: string) => void;
  /** Stops following when aborted. */
  signal?: AbortSignal;
  pollMs?: number;
  /** A terminal: the counters are one status line kept below the messages and rewritten in place. */
  tty?: boolean;
}

/** Reads `path` from the start and keeps reading what is appended; returns the final counters. */
export async function followWire(path: string, options: FollowOptions): Promise<WireCounters> {
  const counters = new WireCounters();
  const handle = await open(path, 'r');
  let position = 0;
  let partial = '';
  const buffer = Buffer.alloc(64 * 1024);
  /** The status line currently on the terminal (tty mode), '' when none. */
  let status = '';
  try {
    for (;;) {
      let changed = false;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        partial += buffer.subarray(0, bytesRead).toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          let event: WireEvent;
          try {
            event = JSON.parse(line) as WireEvent;
          } catch {
            continue;
          }
          if (!options.quiet) options.write(`${status ? CLEAR_LINE : ''}${formatWireEvent(event)}\n`);
          if (!options.quiet) status = '';
          changed = counters.add(event) || changed;
        }
      }
      if (options.tty && !options.once) {
        // Redrawn after each batch of messages (they cleared it) and whenever it changed.
        const line = `rings: ${counters.format()}`;
        if (line !== status) options.write(`${CLEAR_LINE}${line}`);
        status = line;
      } else if (changed || options.once) {
        options.write(`rings: ${counters.format()}\n`);
      }
      if (options.once || options.signal?.aborted) {
        if (status) options.write('\n');
        return counters;
      }
      await sleep(options.pollMs ?? 250, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) {
        if (status) options.write('\n');
        return counters;
      }
    }
  } finally {
    await handle.close();
  }
}
