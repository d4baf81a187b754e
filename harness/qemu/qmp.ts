import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HarnessError } from '../errors.ts';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** A QMP client over QEMU's UNIX socket: commands by id, events on 'event'. */
export class QmpClient extends EventEmitter {
  private socket: Socket | null = null;
  private buffer = '';
  private nextId = 1;
  private waiting = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly log: string[] = [];

  constructor(
    readonly path: string,
    readonly guest: string,
  ) {
    super();
  }

  /** Connects (retrying while QEMU creates the socket) and negotiates capabilities. */
  async connect(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.socket = await new Promise<Socket>((resolve, reject) => {
          const socket = connect(this.path, () => resolve(socket));
          socket.once('error', reject);
        });
        break;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new HarnessError(`QMP socket ${this.path} did not accept connections`, { code: 'QMP_CONNECT', kind: 'infra', phase: 'boot', guest: this.guest, cause: error });
        }
        await sleep(50);
      }
    }
    const greeting = new Promise<void>((resolve) => this.once('greeting', resolve));
    this.socket.on('data', (chunk) => this.receive(chunk.toString()));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      for (const pending of this.waiting.values()) pending.reject(new Error('QMP connection closed'));
      this.waiting.clear();
      this.socket = null;
      this.emit('close');
    });
    await greeting;
    await this.execute('qmp_capabilities');
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new HarnessError(`QMP ${command}: not connected`, { code: 'QMP_CLOSED', kind: 'infra', phase: 'link', guest: this.guest }));
    const id = `ntbh-${this.nextId++}`;
    const message = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id });
    this.log.push(`-> ${message}`);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new HarnessError(`QMP ${command} got no answer in ${timeoutMs} ms`, { code: 'QMP_TIMEOUT', kind: 'infra', phase: 'link', guest: this.guest }));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(
            error instanceof HarnessError
              ? error
              : new HarnessError(`QMP ${command} failed: ${error.message}`, { code: 'QMP_ERROR', kind: 'infra', phase: 'link', guest: this.guest, excerpt: message }),
          );
        },
      });
      socket.write(`${message}\n`);
    });
  }

  /** Resolves with the first event named `name` that satisfies `filter`. */
  waitEvent(name: string, filter: (event: QmpEvent) => boolean = () => true, timeoutMs = 30_000): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (event: QmpEvent) => {
        if (event.event !== name || !filter(event)) return;
        clearTimeout(timer);
        this.off('event', onEvent);
        resolve(event);
      };
      const timer = setTimeout(() => {
        this.off('event', onEvent);
        reject(new HarnessError(`QMP event ${name} did not arrive in ${timeoutMs} ms`, { code: 'QMP_TIMEOUT', kind: 'infra', phase: 'link', guest: this.guest }));
      }, timeoutMs);
      this.on('event', onEvent);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (!line) continue;
      this.log.push(`<- ${line}`);
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in message) this.emit('greeting', message);
      else if ('event' in message) this.emit('event', message as unknown as QmpEvent);
      else if (typeof message.id === 'string' && this.waiting.has(message.id)) {
        const pending = this.waiting.get(message.id)!;
        this.waiting.delete(message.id);
        if ('error' in message) {
          const error = message.error as { class?: string; desc?: string };
          pending.reject(new Error(`${error.class ?? 'Error'}: ${error.desc ?? 'unknown'}`));
        } else pending.resolve(message.return);
      }
    }
  }
}
