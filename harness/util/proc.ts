import { createWriteStream } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { HarnessError, type Phase } from '../errors.ts';
import { onTeardown } from './teardown.ts';

export interface RunOptions {
  phase: Phase;
  guest?: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Append stdout+stderr here as it comes. */
  logFile?: string;
  timeoutMs?: number;
  input?: string;
  /** How to pick the lines shown on failure (default: the last 25 lines). */
  excerpt?: (output: string) => string;
  /** Error code on failure. */
  code?: string;
  /** stdout+stderr as it comes (progress meters). */
  onOutput?: (chunk: string) => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  all: string;
  durationMs: number;
}

/** Runs a command to completion; a failure becomes a HarnessError carrying the output's telling lines. */
export async function run(file: string, args: string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : null;
  log?.write(`\n$ ${[file, ...args].join(' ')}\n`);
  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    all: true,
    reject: false,
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : undefined,
    timeout: options.timeoutMs,
    maxBuffer: 512 * 1024 * 1024,
    killSignal: 'SIGKILL',
  });
  const untrack = onTeardown(`${file}`, () => {
    child.kill('SIGKILL');
  });
  if (log) child.all?.on('data', (chunk: Buffer) => log.write(chunk));
  if (options.onOutput) child.all?.on('data', (chunk: Buffer) => options.onOutput!(chunk.toString()));
  const result = await child;
  untrack();
  await new Promise<void>((resolve) => (log ? log.end(resolve) : resolve()));
  const all = String(result.all ?? '');
  if (result.failed) {
    const what = result.timedOut ? `timed out after ${options.timeoutMs} ms` : `exited with ${result.exitCode ?? result.signal}`;
    throw new HarnessError(`${[file, ...args.slice(0, 6)].join(' ')}${args.length > 6 ? ' …' : ''} ${what}`, {
      code: options.code ?? 'COMMAND_FAILED',
      kind: 'infra',
      phase: options.phase,
      guest: options.guest,
      excerpt: (options.excerpt ?? tailLines)(all),
      artifacts: options.logFile,
    });
  }
  return { stdout: String(result.stdout), stderr: String(result.stderr), all, durationMs: Date.now() - started };
}

export function tailLines(text: string, count = 25): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/** Compiler/linker errors first (with a line of context), else the tail. */
export function compilerErrors(text: string): string {
  const lines = text.split('\n');
  const picked: string[] = [];
  lines.forEach((line, index) => {
    if (/\b(error|Error \d+|undefined reference|fatal error)\b/.test(line) && !/^\s*\$ /.test(line)) {
      if (index > 0 && /In function|In file included/.test(lines[index - 1]!)) picked.push(lines[index - 1]!);
      picked.push(line);
      const next = lines[index + 1];
      if (next !== undefined && /^\s+\d*\s*\|/.test(next)) picked.push(next, lines[index + 2] ?? '');
    }
  });
  return picked.length > 0 ? picked.slice(0, 40).join('\n') : tailLines(text, 30);
}

/**
 * Starts a long-lived process that dies with the harness: `setpriv --pdeathsig KILL` makes the kernel
 * kill it if we die without cleaning up (even by SIGKILL), and the teardown registry kills it on any
 * orderly exit.
 */
export function spawnTied(file: string, args: string[], options: { cwd?: string; name: string }): ResultPromise<{ reject: false; buffer: false; stdin: 'pipe' }> {
  const child = execa('setpriv', ['--pdeathsig', 'KILL', '--', file, ...args], {
    cwd: options.cwd,
    reject: false,
    buffer: false,
    stdin: 'pipe',
    cleanup: true,
  });
  const untrack = onTeardown(options.name, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await child.catch(() => undefined);
    clearTimeout(timer);
  });
  void child.finally(untrack);
  return child;
}
