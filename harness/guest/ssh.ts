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

/** One connection of a guest's pool; `busy` while a command (or a cleanup) runs on it. */
interface Pooled {
  client: Client;
  busy: boolean;
}

/**
 * At most this many connections per guest. The guests' dropbear (bookworm's 2022.83) races between
 * channels of one connection (upstream mkj/dropbear#321, fixed in 2024.86): a command that exits while
 * another channel is between its open and its exec request makes dropbear close that channel (the exec is
 * refused, "Unable to exec") or die on an assertion, taking the connection with it. dropbear serves each
 * connection from a process of its own, so one command per connection at a time cannot meet that race.
 */
export const MAX_CONNECTIONS = 4;

/**
 * SSH connections to one guest, kept open (a fresh `ssh` costs ~175 ms under TCG) and each running one
 * command at a time: a command takes an idle connection, or opens one more (up to MAX_CONNECTIONS), or
 * waits for one. Every command runs in a process group of its own (abort.ts), so one that is abandoned —
 * its timeout, or its step's AbortSignal — is killed (from another connection), not left running. Any
 * connection that drops while the session is open marks the guest lost: later commands fail with SSH_LOST.
 */
export class SshSession implements GuestExec {
  private pool: Pooled[] = [];
  private opening = 0;
  private waiters: ((entry: Pooled | undefined) => void)[] = [];
  private closed = false;
  private lost = false;
  private connectTimeoutMs = 10_000;

  constructor(
    readonly name: string,
    private readonly config: { port: number; privateKey: string; defaultTimeoutMs: number; killTimeoutMs?: number },
  ) {}

  /** Opens the first connection (again, after a failed attempt: earlier ones are closed). */
  async connect(timeoutMs: number): Promise<void> {
    for (const entry of this.pool.splice(0)) entry.client.end();
    this.lost = false;
    this.connectTimeoutMs = timeoutMs;
    const client = await this.open(timeoutMs);
    this.pool.push({ client, busy: false });
  }

  private async open(timeoutMs: number): Promise<Client> {
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
      const index = this.pool.findIndex((entry) => entry.client === client);
      if (index < 0) return;
      this.pool.splice(index, 1);
      if (this.closed) return;
      this.lost = true;
      for (const waiter of this.waiters.splice(0)) waiter(undefined);
    });
    return client;
  }

  get connected(): boolean {
    return !this.closed && !this.lost && this.pool.length > 0;
  }

  private lostError(command: string): HarnessError {
    return new HarnessError(`no SSH connection to ${this.name}`, { code: 'SSH_LOST', kind: 'infra', phase: 'exec', guest: this.name, excerpt: `command: ${command}` });
  }

  /** A connection for one command: an idle one, a new one, or the next one released. */
  private async lease(command: string, waitMs?: number): Promise<Pooled> {
    if (!this.connected) throw this.lostError(command);
    const idle = this.pool.find((entry) => !entry.busy);
    if (idle) {
      idle.busy = true;
      return idle;
    }
    if (this.pool.length + this.opening < MAX_CONNECTIONS) {
      this.opening++;
      try {
        const entry = { client: await this.open(this.connectTimeoutMs), busy: true };
        if (this.closed) {
          entry.client.end();
          throw this.lostError(command);
        }
        this.pool.push(entry);
        return entry;
      } catch (error) {
        // The guest answers on the connections it has: wait for one of those instead.
        if (!this.connected) throw error;
      } finally {
        this.opening--;
      }
    }
    const entry = await new Promise<Pooled | undefined>((resolve, reject) => {
      const waiter = (got: Pooled | undefined) => {
        clearTimeout(timer);
        resolve(got);
      };
      // A cleanup must not wait forever behind commands that hang: it gives up after waitMs.
      const timer = waitMs === undefined ? undefined : setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`all ${MAX_CONNECTIONS} connections to ${this.name} stayed busy for ${waitMs} ms`));
      }, waitMs);
      this.waiters.push(waiter);
    });
    if (!entry) throw this.lostError(command);
    return entry;
  }

  private release(entry: Pooled): void {
    if (!this.pool.includes(entry)) return;
    const next = this.waiters.shift();
    if (next) next(entry);
    else entry.busy = false;
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { signal } = options;
    if (signal?.aborted) throw abortedExecError(this.name, command, signal);
    const sent = commandLine(command);
    if (sent.stdin !== undefined && options.stdin !== undefined) return this.execUploaded(command, options);
    const entry = await this.lease(command);
    if (signal?.aborted) {
      this.release(entry);
      throw abortedExecError(this.name, command, signal);
    }
    const client = entry.client;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.release(entry);
    };
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
          release();
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
          // An abandoned command's channel closes once it was killed: the connection is free only then.
          release();
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
  private async rawExec(command: string, timeoutMs: number, stdin?: string): Promise<{ stdout: string; exitCode: number }> {
    const entry = await this.lease(command, timeoutMs);
    return new Promise((resolve, reject) => {
      entry.client.exec(command, (error, channel) => {
        if (error) {
          this.release(entry);
          return reject(error);
        }
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
          this.release(entry);
          resolve({ stdout, exitCode });
        });
        channel.end(stdin);
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const entry of this.pool.splice(0)) entry.client.end();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
