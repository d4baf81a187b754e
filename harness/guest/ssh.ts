import { Client, type ConnectConfig } from 'ssh2';
import { HarnessError } from '../errors.ts';
import type { ExecOptions, ExecResult, GuestExec } from './types.ts';

/**
 * One SSH connection per guest, kept open: every exec is a channel on it (a fresh `ssh` costs
 * ~175 ms under TCG).
 */
export class SshSession implements GuestExec {
  private client: Client | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly config: { port: number; privateKey: string; defaultTimeoutMs: number },
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
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect(options);
    }).catch((error: Error) => {
      client.end();
      throw new HarnessError(`SSH to ${this.name} failed: ${error.message}`, { code: 'SSH_CONNECT', kind: 'infra', phase: 'ssh', guest: this.name, cause: error });
    });
    client.on('error', () => undefined);
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
    if (!client || this.closed) {
      return Promise.reject(
        new HarnessError(`no SSH connection to ${this.name}`, { code: 'SSH_LOST', kind: 'infra', phase: 'exec', guest: this.name, excerpt: `command: ${command}` }),
      );
    }
    const timeoutMs = options.timeoutMs ?? this.config.defaultTimeoutMs;
    const started = Date.now();
    return new Promise<ExecResult>((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) {
          reject(new HarnessError(`exec on ${this.name} failed: ${error.message}`, { code: 'SSH_EXEC', kind: 'infra', phase: 'exec', guest: this.name, cause: error }));
          return;
        }
        let stdout = '';
        let stderr = '';
        let exitCode: number | null = null;
        const timer = setTimeout(() => {
          channel.close();
          reject(
            new HarnessError(`command timed out after ${timeoutMs} ms on ${this.name}`, {
              code: 'EXEC_TIMEOUT',
              kind: 'infra',
              phase: 'exec',
              guest: this.name,
              excerpt: `$ ${command}\n${stdout.slice(-2000)}${stderr.slice(-2000)}`,
            }),
          );
        }, timeoutMs);
        channel.on('data', (data: Buffer) => (stdout += data.toString()));
        channel.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
        channel.on('exit', (code: number | null, signal?: string) => {
          exitCode = code ?? (signal ? 128 : 255);
        });
        channel.on('close', () => {
          clearTimeout(timer);
          if (exitCode === null) {
            // No exit status: the connection went away under the command (a dying guest, usually).
            reject(new HarnessError(`SSH channel to ${this.name} closed without an exit status`, { code: 'SSH_LOST', kind: 'infra', phase: 'exec', guest: this.name, excerpt: `$ ${command}` }));
            return;
          }
          const result = { command, stdout, stderr, exitCode: exitCode ?? 255, durationMs: Date.now() - started };
          if (options.check && result.exitCode !== 0) {
            reject(
              new HarnessError(`command failed on ${this.name} (exit ${result.exitCode}): ${command.slice(0, 120)}`, {
                code: 'EXEC_FAILED',
                kind: 'infra',
                phase: 'exec',
                guest: this.name,
                excerpt: `${stdout}${stderr}`.trim().split('\n').slice(-20).join('\n'),
              }),
            );
          } else resolve(result);
        });
        if (options.stdin !== undefined) channel.end(options.stdin);
        else channel.end();
      });
    });
  }

  close(): void {
    this.closed = true;
    this.client?.end();
    this.client = null;
  }
}
