/**
 * The control socket of a live pair (`ntbh up`): `<run>/control.sock`, 0600, one JSON request per
 * line and one JSON response line each. `ntbh step` connects to it; the `up` process runs the step
 * on its pair (one request at a time) and answers with the step's result.
 *
 *   {"op":"ping"}                 → {"ok":true,"result":{"cell":…,"steps":[…]}}
 *   {"op":"step","step":"<id>"}   → {"ok":true,"result":<StepResult>} | {"ok":false,"error":{code,message}}
 */
import { rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { z } from 'zod';
import { HarnessError, isHarnessError } from '../errors.ts';
import { checkedSocketPath, makePrivate } from '../util/rundir.ts';

export const CONTROL_SOCKET = 'control.sock';
/** A request line longer than this is refused (the protocol's lines are tiny). */
export const MAX_REQUEST_BYTES = 4096;

export const controlRequest = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('ping') }),
  z.strictObject({ op: z.literal('step'), step: z.string().min(1).max(200) }),
]);
export type ControlRequest = z.infer<typeof controlRequest>;

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string; excerpt?: string } };

export interface ControlHandlers {
  ping(): Promise<unknown> | unknown;
  step(id: string): Promise<unknown>;
}

/** Parses one request line; a malformed one is a HarnessError(CONTROL_BAD_REQUEST). */
export function parseRequest(line: string): ControlRequest {
  let data: unknown;
  try {
    data = JSON.parse(line);
  } catch {
    throw new HarnessError('control request is not JSON', { code: 'CONTROL_BAD_REQUEST', kind: 'input', phase: 'step', excerpt: line.slice(0, 200) });
  }
  const parsed = controlRequest.safeParse(data);
  if (!parsed.success) {
    throw new HarnessError(`bad control request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ')}`, {
      code: 'CONTROL_BAD_REQUEST',
      kind: 'input',
      phase: 'step',
    });
  }
  return parsed.data;
}

/** Answers one request line through the handlers; never throws. */
export async function answer(line: string, handlers: ControlHandlers): Promise<ControlResponse> {
  try {
    const request = parseRequest(line);
    const result = request.op === 'ping' ? await handlers.ping() : await handlers.step(request.step);
    return { ok: true, result };
  } catch (error) {
    if (isHarnessError(error)) return { ok: false, error: { code: error.code, message: error.message, ...(error.excerpt ? { excerpt: error.excerpt } : {}) } };
    return { ok: false, error: { code: 'INTERNAL', message: (error as Error)?.message ?? String(error) } };
  }
}

/**
 * Serves the socket until close(). Requests from all connections run one at a time, in arrival order:
 * two steps must never drive the same guests at once.
 */
export async function serveControl(path: string, handlers: ControlHandlers): Promise<{ close(): Promise<void> }> {
  checkedSocketPath(path);
  await rm(path, { force: true });
  let queue: Promise<unknown> = Promise.resolve();
  const server: Server = createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES && !buffer.includes('\n')) {
        socket.end(`${JSON.stringify({ ok: false, error: { code: 'CONTROL_BAD_REQUEST', message: `request longer than ${MAX_REQUEST_BYTES} bytes` } })}\n`);
        return;
      }
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (!line.trim()) continue;
        queue = queue.then(async () => {
          const response = await answer(line, handlers);
          if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  // Node binds through the umask: the socket drives the guests, so it is the user's alone.
  await makePrivate(path);
  return {
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}

/** Sends one request and waits for its response line. */
export function sendRequest(path: string, request: ControlRequest, timeoutMs: number): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new HarnessError(`no answer from the live pair within ${Math.round(timeoutMs / 1000)} s`, { code: 'CONTROL_TIMEOUT', kind: 'infra', phase: 'step' }));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buffer.slice(0, newline)) as ControlResponse);
      } catch (error) {
        reject(error);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const gone = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      reject(
        new HarnessError(gone ? `no live pair answers on ${path} (is \`ntbh up\` still running?)` : `control socket ${path}: ${error.message}`, {
          code: gone ? 'NO_LIVE_PAIR' : 'CONTROL_FAILED',
          kind: gone ? 'input' : 'infra',
          phase: 'step',
        }),
      );
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!buffer.includes('\n')) reject(new HarnessError('the live pair closed the control connection without answering', { code: 'CONTROL_FAILED', kind: 'infra', phase: 'step' }));
    });
  });
}
