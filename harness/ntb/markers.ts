/**
 * Step markers in the kernel log ("ntbh: begin step <id>" / "ntbh: end step <id>"), which the console
 * monitor uses to pin a splat to the step that caused it, and /proc/sys/kernel/tainted around each step.
 */
import type { GuestExec } from '../guest/types.ts';
import { sq } from './shell.ts';

/** Writes the marker and reads the taint in one round trip; returns the taint (NaN if unreadable). */
export async function stepMarker(guest: GuestExec, which: 'begin' | 'end', stepId: string, timeoutMs = 30_000): Promise<number> {
  // <5> (notice) so that the console prints it whatever the default message level.
  const result = await guest.exec(`echo ${sq(`<5>ntbh: ${which} step ${stepId}`)} > /dev/kmsg; cat /proc/sys/kernel/tainted`, { timeoutMs });
  // An empty answer is not taint 0: only a plain number counts.
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  return /^\d+$/.test(last) ? Number(last) : Number.NaN;
}
