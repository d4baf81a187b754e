/**
 * A kprobe on ntb_db_event(ntb, vector): sees the vector on either side whatever the NTB client.
 * Defined as ntbh/db_event with `vec=$arg2:s32`; read from the trace buffer and cleared per ring.
 */
import type { GuestExec } from '../guest/types.ts';
import { run } from './shell.ts';

const EVENT = 'ntbh/db_event';

/** Finds tracefs (mounted by the guest init at /sys/kernel/tracing; older layouts under debugfs). */
export const TRACING = 't=/sys/kernel/tracing; [ -e $t/kprobe_events ] || t=/sys/kernel/debug/tracing';

/** Defines and enables the probe; false when the kernel refuses (no KPROBE_EVENTS, no arg access). */
export async function enableDbEventProbe(guest: GuestExec): Promise<{ ok: boolean; error?: string }> {
  const script = [
    TRACING,
    `grep -q '${EVENT} ' $t/kprobe_events 2>/dev/null || echo 'p:${EVENT} ntb_db_event vec=$arg2:s32' >> $t/kprobe_events || exit 1`,
    'echo 1 > $t/events/ntbh/db_event/enable || exit 1',
    'echo 1 > $t/tracing_on',
    'echo > $t/trace',
  ].join('\n');
  const result = await guest.exec(script);
  return result.exitCode === 0 ? { ok: true } : { ok: false, error: result.stderr.trim() || `exit ${result.exitCode}` };
}

export const clearTraceScript = `${TRACING}; echo > $t/trace`;
export const readTraceScript = `${TRACING}; cat $t/trace`;

export async function clearTrace(guest: GuestExec): Promise<void> {
  await run(guest, clearTraceScript);
}

/** Vectors recorded since the last clear, in order. */
export async function readDbEventVectors(guest: GuestExec): Promise<number[]> {
  return parseDbEventTrace(await run(guest, readTraceScript));
}

/** Trace lines look like: "kworker/0:1-30 [000] d..1.  12.3: db_event: (ntb_db_event+0x0/0x30 [ntb]) vec=2". */
export function parseDbEventTrace(text: string): number[] {
  const vectors: number[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !/\bdb_event:/.test(line)) continue;
    const m = /\bvec=(-?\d+)/.exec(line);
    if (m) vectors.push(Number(m[1]));
  }
  return vectors;
}
