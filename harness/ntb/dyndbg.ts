/**
 * The vector passed to ntb_db_event, as ntb_tool's doorbell callback logs it with dynamic debug:
 *   "ntb_tool 0000:01:00.0: doorbell vec 2 mask 0x3fff bits 0x4"
 * A unique marker written to /dev/kmsg before each ring lets us read only the lines that followed it.
 */
import type { GuestExec } from '../guest/types.ts';
import { parseKernelInt, pollScript, run, sq } from './shell.ts';

export interface DoorbellEvent {
  vector: number;
  /** db_vector_mask(vector) */
  mask: number;
  /** db_read() at the time of the event */
  bits: number;
}

const DOORBELL_LINE = /\bdoorbell vec (-?\d+) mask (0x[0-9a-fA-F]+|0) bits (0x[0-9a-fA-F]+|0)\b/;

export function parseDoorbellEvents(text: string): DoorbellEvent[] {
  const events: DoorbellEvent[] = [];
  for (const line of text.split('\n')) {
    const m = DOORBELL_LINE.exec(line);
    if (m) events.push({ vector: Number(m[1]), mask: parseKernelInt(m[2]!), bits: parseKernelInt(m[3]!) });
  }
  return events;
}

/** Turns on ntb_tool's pr_debug/dev_dbg lines (needs the module loaded and CONFIG_DYNAMIC_DEBUG). */
export async function enableToolDebug(guest: GuestExec): Promise<boolean> {
  const result = await guest.exec(
    "c=/sys/kernel/debug/dynamic_debug/control; [ -e $c ] || c=/proc/dynamic_debug/control; echo 'module ntb_tool +p' > $c",
  );
  return result.exitCode === 0;
}

let counter = 0;

/** A token unique in this harness process, for markScript/sinceScript. */
export function newMarkToken(): string {
  return `ntbh-mark-${process.pid}-${++counter}`;
}

/** Writes `token` into the kernel log, to slice dmesg from. */
export function markScript(token: string): string {
  return `echo ${sq(`<5>${token}`)} > /dev/kmsg`;
}

/** Writes a marker into the kernel log; returns the token to slice dmesg from. */
export async function kmsgMark(guest: GuestExec): Promise<string> {
  const token = newMarkToken();
  await run(guest, markScript(token));
  return token;
}

/** `dmesg` from the marker line on. */
export function sinceScript(token: string): string {
  return `dmesg | sed -n ${sq(`/${token}$/,$p`)}`;
}

export async function kernelLogSince(guest: GuestExec, token: string): Promise<string> {
  return run(guest, sinceScript(token));
}

/**
 * Waits (up to `timeoutMs`) until at least `atLeast` doorbell lines followed the marker, then returns
 * all of them. Dev_dbg lines trail the db update by microseconds, but under TCG by more.
 */
export async function doorbellEventsSince(guest: GuestExec, token: string, atLeast: number, timeoutMs: number): Promise<DoorbellEvent[]> {
  if (atLeast > 0) {
    await guest.exec(pollScript(`${sinceScript(token)} | grep -c 'doorbell vec'`, `[ "$v" -ge ${atLeast} ]`, timeoutMs, 20), { timeoutMs: timeoutMs + 30_000 });
  }
  return parseDoorbellEvents(await kernelLogSince(guest, token));
}
