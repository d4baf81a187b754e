import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { HarnessError } from '../errors.ts';
import { randomBytes } from 'node:crypto';
import { abortedExecError, commandLine, killGroupScript, PGID_TAG, uploadedScript } from './abort.ts';
import type { CleanupOutcome, ExecOptions, ExecResult, GuestExec } from './types.ts';

/** One command's remote side: its channel, and its process group once the wrapper has said it. */
class RemoteRun {
  channel?: ClientChannel;
  pgid?: number;
  ended = false;
  private head = '';
  private headDone = false;
  private waiters: (() => void)[] = [];

  /** Strips the wrapper's first stderr line (its process group) and returns the command's own stderr. */
  takeStderr(chunk: string): string {
    if (this.headDone) return chunk;
    this.head += chunk;
    const newline = this.head.indexOf('\n');
    if (newline < 0) return '';
    const [line, rest] = [this.head.slice(0, newline), this.head.slice(newline + 1)];
    this.head = '';
    this.headDone = true;
    const pgid = line.startsWith(PGID_TAG) ? Number(line.slice(PGID_TAG.length)) : Number.NaN;
    if (!Number.isSafeInteger(pgid)) return `${line}\n${rest}`;
    this.pgid = pgid;
    this.wake();
    return rest;
  }

  /** The channel closed (or never opened): returns stderr that was held back. */
  end(): string {
    this.ended = true;
    this.headDone = true;
    const held = this.head;
    this.head = '';
    this.wake();
    return held;
  }

  /** Resolves when the process group is known, the command ended, or after `ms`. */
  started(ms: number): Promise<void> {
    if (this.pgid !== undefined || this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/**
 * One SSH connection per guest, kept open: every exec is a channel on it (a fresh `ssh` costs
 * ~175 ms under TCG). Every command runs in a process group of its own (abort.ts), so one that
 * is abandoned — its timeout, or its step's AbortSignal — is killed, not left running.
 */
export class SshSession implements GuestExec {
  private client: Client | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly config: { port: number; privateKey: string; defaultTimeoutMs: number; killTimeoutMs?: number },
  ) {}

  async connect(timeoutMs: number): Promise<void> {
    const client = new Client();
    const options: ConnectConfig = {
      host: '127.0.0.1',
      port: this.config.port,
      username: 'root',
      privateKey: this.config.privateKey,
      readyTimeout: timeoutMs,
      keepaliveInterval: 5000,
      keepaliveCountMax: 6,
      // The host key is the image's; the connection never leaves 127.0.0.1.
      hostVerifier: () => true,
    };
    // ssh2 can emit 'error' more than once (a refused handshake, then "Connection lost before
    // handshake"): without a listener for the later ones Node ends the whole run.
    client.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect(options);
    }).catch((error: Error) => {
      client.end();
      throw new HarnessError(`SSH to ${this.name} failed: ${error.message}`, { code: 'SSH_CONNECT', kind: 'infra', phase: 'ssh', guest: this.name, cause: error });
    });
    client.on('close', () => {
      this.client = null;
    });
    this.client = client;
  }

  get connected(): boolean {
    return this.client !== null;
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const client = this.client;
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortedExecError(this.name, command, signal));
    if (!client || this.closed) {
      return Promise.reject(
        new HarnessError(`no SSH connection to ${this.name}`, { code: 'SSH_LOST', kind: 'infra', phase: 'exec', guest: this.name, excerpt: `command: ${command}` }),
      );
    }
    const sent = commandLine(command);
    if (sent.stdin !== undefined && options.stdin !== undefined) return this.execUploaded(command, options);
    const timeoutMs = options.timeoutMs ?? this.config.defaultTimeoutMs;
    const started = Date.now();
    const remote = new RemoteRun();
    return new Promise<ExecResult>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let exitCode: number | null = null;
      let settled = false;
      const settle = (action: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        action();
      };
      // Abandoned (timeout or abort): reject now; stopping the remote command goes on in the background.
      const abandon = (error: HarnessError) => {
        if (settled) return;
        settle(() => reject(error));
        const cleanup = this.stopRemote(remote, command);
        cleanup.catch(() => undefined);
        options.onCleanup?.(cleanup);
      };
      const timer = setTimeout(
        () =>
          abandon(
            new HarnessError(`command timed out after ${timeoutMs} ms on ${this.name}`, {
              code: 'EXEC_TIMEOUT',
              kind: 'infra',
              phase: 'exec',
              guest: this.name,
              excerpt: `$ ${command}\n${stdout.slice(-2000)}${stderr.slice(-2000)}`,
            }),
          ),
        timeoutMs,
      );
      const onAbort = () => abandon(abortedExecError(this.name, command, signal!, `${stdout.slice(-1000)}${stderr.slice(-1000)}`));
      signal?.addEventListener('abort', onAbort, { once: true });

      client.exec(sent.line, (error, channel) => {
        if (error) {
          remote.end();
          settle(() => reject(new HarnessError(`exec on ${this.name} failed: ${error.message}`, { code: 'SSH_EXEC', kind: 'infra', phase: 'exec', guest: this.name, cause: error })));
          return;
        }
        remote.channel = channel;
        channel.on('data', (data: Buffer) => (stdout += data.toString()));
        channel.stderr.on('data', (data: Buffer) => (stderr += remote.takeStderr(data.toString())));
        channel.on('exit', (code: number | null, signalName?: string) => {
          exitCode = code ?? (signalName ? 128 : 255);
        });
        channel.on('close', () => {
          stderr += remote.end();
          if (exitCode === null) {
            // No exit status: the connection went away under the command (a dying guest, usually).
            settle(() => reject(new HarnessError(`SSH channel to ${this.name} closed without an exit status`, { code: 'SSH_LOST', kind: 'infra', phase: 'exec', guest: this.name, excerpt: `$ ${command}` })));
            return;
          }
          const result = { command, stdout, stderr, exitCode, durationMs: Date.now() - started };
          if (options.check && result.exitCode !== 0) {
            settle(() =>
              reject(
                new HarnessError(`command failed on ${this.name} (exit ${result.exitCode}): ${command.slice(0, 120)}`, {
                  code: 'EXEC_FAILED',
                  kind: 'infra',
                  phase: 'exec',
                  guest: this.name,
                  excerpt: `${stdout}${stderr}`.trim().split('\n').slice(-20).join('\n'),
                }),
              ),
            );
          } else settle(() => resolve(result));
        });
        channel.end(sent.stdin ?? options.stdin);
      });
    });
  }

  /** A command too long for the command line that has input of its own: uploaded as a file, then run. */
  private async execUploaded(command: string, options: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    const script = uploadedScript(`/tmp/ntbh-cmd-${randomBytes(6).toString('hex')}`);
    const timeoutMs = options.timeoutMs ?? this.config.defaultTimeoutMs;
    const upload = await this.rawExec(script.upload, timeoutMs, command).catch((error: Error) => {
      throw new HarnessError(`exec on ${this.name} failed: could not upload a ${command.length}-byte script: ${error.message}`, { code: 'SSH_EXEC', kind: 'infra', phase: 'exec', guest: this.name, cause: error });
    });
    if (upload.exitCode !== 0) {
      throw new HarnessError(`exec on ${this.name} failed: uploading a ${command.length}-byte script exited ${upload.exitCode}`, { code: 'SSH_EXEC', kind: 'infra', phase: 'exec', guest: this.name, excerpt: upload.stdout });
    }
    const ran = await this.exec(script.run, { ...options, check: false, timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)) });
    const result = { ...ran, command, durationMs: Date.now() - started };
    if (options.check && result.exitCode !== 0) {
      throw new HarnessError(`command failed on ${this.name} (exit ${result.exitCode}): ${command.slice(0, 120)}`, {
        code: 'EXEC_FAILED',
        kind: 'infra',
        phase: 'exec',
        guest: this.name,
        excerpt: `${result.stdout}${result.stderr}`.trim().split('\n').slice(-20).join('\n'),
      });
    }
    return result;
  }

  /**
   * Stops an abandoned command: waits (bounded) until its wrapper said its process group, SIGKILLs
   * the group on a channel of its own and checks that nothing of it is left; then closes its channel.
   */
  private async stopRemote(remote: RemoteRun, command: string): Promise<CleanupOutcome> {
    const base = { guest: this.name, command };
    const waitMs = this.config.killTimeoutMs ?? 15_000;
    try {
      await remote.started(waitMs);
      if (remote.pgid === undefined) {
        return remote.ended
          ? { ...base, ok: true, detail: 'the command had not started' }
          : { ...base, ok: false, detail: `the command did not report its process group within ${waitMs} ms; it may still run` };
      }
      const killed = await this.rawExec(killGroupScript(remote.pgid), waitMs);
      if (killed.exitCode === 0) return { ...base, ok: true, detail: `killed its process group ${remote.pgid}` };
      return { ...base, ok: false, detail: `process group ${remote.pgid} survived SIGKILL (${killed.stdout.trim() || `exit ${killed.exitCode}`})` };
    } catch (error) {
      return { ...base, ok: false, detail: `could not kill process group ${remote.pgid ?? '?'}: ${(error as Error).message}` };
    } finally {
      remote.channel?.close();
    }
  }

  /** A command without the wrapper, the timeout or the checks of exec: for the harness's own cleanup. */
  private rawExec(command: string, timeoutMs: number, stdin?: string): Promise<{ stdout: string; exitCode: number }> {
    const client = this.client;
    if (!client || this.closed) return Promise.reject(new Error(`no SSH connection to ${this.name}`));
    return new Promise((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) return reject(error);
        let stdout = '';
        let exitCode = 255;
        const timer = setTimeout(() => {
          channel.close();
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        channel.on('data', (data: Buffer) => (stdout += data.toString()));
        channel.stderr.on('data', () => undefined);
        channel.on('exit', (code: number | null) => (exitCode = code ?? 255));
        channel.on('close', () => {
          clearTimeout(timer);
          resolve({ stdout, exitCode });
        });
        channel.end(stdin);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.client?.end();
    this.client = null;
  }
}
