/** Small helpers over GuestExec: quoting, checked commands, sysfs/debugfs reads and writes. */
import { HarnessError } from '../errors.ts';
import type { ExecOptions, ExecResult, GuestExec } from '../guest/types.ts';
import { scaleMs } from '../util/timeouts.ts';

/** Quotes for /bin/sh: single quotes, with embedded ones closed and escaped. */
export function sq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export interface Timeouts {
  /** Multiplies every guest-side timeout (TCG is ~13x slower than hardware). */
  scale: number;
}

export function scaled(ms: number, timeouts: Timeouts): number {
  return scaleMs(ms, timeouts.scale);
}

/** Runs a command that must succeed; a non-zero exit becomes a HarnessError carrying stderr. */
export async function run(guest: GuestExec, command: string, options: ExecOptions = {}): Promise<string> {
  const result = await guest.exec(command, options);
  if (result.exitCode !== 0) throw commandFailed(guest, result);
  return result.stdout;
}

export function commandFailed(guest: GuestExec, result: ExecResult, what?: string): HarnessError {
  const output = [result.stderr.trim(), result.stdout.trim()].filter(Boolean).join('\n');
  return new HarnessError(`${what ?? `command failed (exit ${result.exitCode})`}: ${firstLine(result.command)}`, {
    code: 'GUEST_COMMAND_FAILED',
    kind: 'infra',
    phase: 'step',
    guest: guest.name,
    excerpt: output.split('\n').slice(-12).join('\n') || undefined,
  });
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

/** Reads a sysfs/debugfs file, trimmed. */
export async function readText(guest: GuestExec, path: string, options: ExecOptions = {}): Promise<string> {
  return (await run(guest, `cat ${sq(path)}`, options)).trim();
}

/** Writes `value` the way a user would (`echo value > path`); returns the failure text instead of throwing. */
export async function tryWrite(guest: GuestExec, path: string, value: string, options: ExecOptions = {}): Promise<{ ok: boolean; error?: string }> {
  const result = await guest.exec(`echo ${sq(value)} > ${sq(path)}`, options);
  if (result.exitCode === 0) return { ok: true };
  return { ok: false, error: result.stderr.trim() || `exit ${result.exitCode}` };
}

export async function write(guest: GuestExec, path: string, value: string, options: ExecOptions = {}): Promise<void> {
  const result = await tryWrite(guest, path, value, options);
  if (!result.ok) {
    throw new HarnessError(`writing ${value} to ${path} failed: ${result.error}`, { code: 'GUEST_WRITE_FAILED', kind: 'infra', phase: 'step', guest: guest.name });
  }
}

/** Parses what the kernel prints with %#llx / %#x / %d ("0" has no 0x prefix under %#). */
export function parseKernelInt(text: string): number {
  const trimmed = text.trim();
  if (!/^(0x[0-9a-fA-F]+|-?[0-9]+)$/.test(trimmed)) throw new Error(`not an integer: ${JSON.stringify(trimmed)}`);
  const big = BigInt(trimmed);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`integer too large: ${trimmed}`);
  return Number(big);
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

/**
 * A guest-side polling loop: runs `probe` into $v until the shell `condition` (reading $v) holds, every
 * `intervalMs`, for at most `timeoutMs`. One SSH round trip instead of one per poll. Prints the last $v;
 * exits 0 when the condition held.
 */
export function pollScript(probe: string, condition: string, timeoutMs: number, intervalMs = 10): string {
  const tries = Math.max(1, Math.ceil(timeoutMs / intervalMs));
  const sleep = (intervalMs / 1000).toFixed(3);
  return [`n=0; v=$(${probe})`, `while [ $n -lt ${tries} ] && ! ( ${condition} ); do sleep ${sleep}; n=$((n+1)); v=$(${probe}); done`, 'echo "$v"', condition].join('\n');
}

/** Waits in the host process, for conditions only the harness can see (the relay's link state). */
export async function waitFor(condition: () => boolean, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return true;
}
