/**
 * ntb_perf: loaded on both sides, one side writes the peer index to `run` (blocks until done) and
 * `cat run` prints "    Peer 0 test statistics:" then "N: copied B bytes in U usecs, R MBytes/s".
 * The run's timeout is the hang detector.
 */
import type { GuestExec } from '../guest/types.ts';
import { pollScript, run, sq } from './shell.ts';

export const PERF_ROOT = '/sys/kernel/debug/ntb_perf';

export interface PerfThread {
  thread: number;
  bytes?: number;
  usecs?: number;
  mbps?: number;
  /** Negative errno when the thread failed. */
  error?: number;
}

export function parsePerfRun(text: string): PerfThread[] {
  const threads: PerfThread[] = [];
  for (const line of text.split('\n')) {
    const ok = /^\s*(\d+): copied (\d+) bytes in (\d+) usecs, (\d+) MBytes\/s/.exec(line);
    if (ok) {
      // The driver prints bytes/usecs rounded down to a whole MB/s: below 1 MB/s (a TCG guest copying
      // through a slow path) that reads 0. Recompute it from the same two numbers, to the kB/s.
      const [bytes, usecs] = [Number(ok[2]), Number(ok[3])];
      const mbps = usecs > 0 ? Math.round((bytes / usecs) * 1000) / 1000 : Number(ok[4]);
      threads.push({ thread: Number(ok[1]), bytes, usecs, mbps });
      continue;
    }
    const failed = /^\s*(\d+): error status (-?\d+)/.exec(line);
    if (failed) threads.push({ thread: Number(failed[1]), error: Number(failed[2]) });
  }
  return threads;
}

export async function perfDir(guest: GuestExec, timeoutMs: number): Promise<string | undefined> {
  const result = await guest.exec(pollScript(`ls ${PERF_ROOT} 2>/dev/null | head -n 1`, '[ -n "$v" ]', timeoutMs, 50), { timeoutMs: timeoutMs + 30_000 });
  const name = result.stdout.trim();
  return result.exitCode === 0 && name ? `${PERF_ROOT}/${name}` : undefined;
}

export interface PerfOutcome {
  completed: boolean;
  threads: PerfThread[];
  /** The raw `run` read, or why the run could not start. */
  output: string;
  durationMs: number;
}

/**
 * Starts a run toward peer 0. `echo 0 > run` fails with ENOLINK until both sides have exchanged their
 * windows, so it is retried until `readyMs`; the run itself gets `runMs` before it counts as a hang.
 */
export async function runPerf(guest: GuestExec, dir: string, readyMs: number, runMs: number): Promise<PerfOutcome> {
  const started = Date.now();
  const tries = Math.max(1, Math.ceil(readyMs / 200));
  const script = [`n=0; until echo 0 > ${sq(`${dir}/run`)} 2>/tmp/ntbh-perf.err; do`, `  n=$((n+1)); [ $n -ge ${tries} ] && { cat /tmp/ntbh-perf.err; exit 3; }`, '  sleep 0.2', 'done', `cat ${sq(`${dir}/run`)}`].join('\n');
  try {
    const result = await guest.exec(script, { timeoutMs: readyMs + runMs });
    const output = `${result.stdout}${result.stderr}`.trim();
    const threads = parsePerfRun(result.stdout);
    return { completed: result.exitCode === 0 && threads.length > 0, threads, output, durationMs: Date.now() - started };
  } catch (error) {
    // An EXEC_TIMEOUT here is the hang the check is about; anything else is the infrastructure's.
    if ((error as { code?: string }).code === 'EXEC_TIMEOUT') return { completed: false, threads: [], output: `no result within ${runMs} ms: hang`, durationMs: Date.now() - started };
    throw error;
  }
}

export async function perfInfo(guest: GuestExec, dir: string): Promise<string> {
  return run(guest, `cat ${sq(`${dir}/info`)} 2>&1 || true`);
}
