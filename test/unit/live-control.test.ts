// The live pair's control protocol (harness/run/control.ts) over a real UNIX socket with stand-in
// handlers, and the wire follower's counters (harness/run/wire-follow.ts) on a growing trace file.
import t from 'tap';
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HarnessError } from '../../harness/errors.ts';
import { answer, parseRequest, sendRequest, serveControl } from '../../harness/run/control.ts';
import { cellDirOf, sshPortOf, stepExitCode } from '../../harness/run/live.ts';
import { followWire, formatWireEvent, WireCounters } from '../../harness/run/wire-follow.ts';
import type { StepResult } from '../../harness/results/model.ts';

t.test('requests are validated', async (t) => {
  t.same(parseRequest('{"op":"ping"}'), { op: 'ping' });
  t.same(parseRequest('{"op":"step","step":"doorbell"}'), { op: 'step', step: 'doorbell' });
  for (const bad of ['nope', '{"op":"exec","cmd":"rm -rf /"}', '{"op":"step"}', '{"op":"step","step":"x","extra":1}', '[]']) {
    t.throws(() => parseRequest(bad), { code: 'CONTROL_BAD_REQUEST' }, bad);
  }
  const handlers = { ping: () => 'pong', step: async () => { throw new HarnessError('no step', { code: 'NO_SUCH_STEP', kind: 'input', phase: 'step', excerpt: 'steps: a b' }); } };
  t.same(await answer('{"op":"ping"}', handlers), { ok: true, result: 'pong' });
  t.same(await answer('{"op":"step","step":"q"}', handlers), { ok: false, error: { code: 'NO_SUCH_STEP', message: 'no step', excerpt: 'steps: a b' } });
  t.same(await answer('{', handlers), { ok: false, error: { code: 'CONTROL_BAD_REQUEST', message: 'control request is not JSON', excerpt: '{' } });
});

t.test('the socket: 0600, answers, runs one request at a time, removed on close', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'control-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'control.sock');
  const previous = process.umask(0);
  let running = 0;
  let overlapped = false;
  const order: string[] = [];
  const server = await serveControl(path, {
    ping: () => ({ cell: 'c', steps: ['a', 'b'] }),
    step: async (id) => {
      running++;
      if (running > 1) overlapped = true;
      order.push(`start ${id}`);
      await sleep(id === 'slow' ? 150 : 10);
      order.push(`end ${id}`);
      running--;
      return { id, status: 'PASS' };
    },
  });
  process.umask(previous);
  t.equal((await stat(path)).mode & 0o777, 0o600, 'socket is 0600 even under umask 0');

  t.same(await sendRequest(path, { op: 'ping' }, 5000), { ok: true, result: { cell: 'c', steps: ['a', 'b'] } });
  const [slow, fast] = await Promise.all([sendRequest(path, { op: 'step', step: 'slow' }, 5000), sleep(20).then(() => sendRequest(path, { op: 'step', step: 'fast' }, 5000))]);
  t.same(slow, { ok: true, result: { id: 'slow', status: 'PASS' } });
  t.same(fast, { ok: true, result: { id: 'fast', status: 'PASS' } });
  t.notOk(overlapped, 'two steps never run at once');
  t.same(order, ['start slow', 'end slow', 'start fast', 'end fast']);

  // A raw client sending garbage gets an error line, and the server stays up.
  const raw = await new Promise<string>((resolve) => {
    const socket = createConnection(path, () => socket.write('not json\n'));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) {
        socket.end();
        resolve(text);
      }
    });
  });
  t.match(JSON.parse(raw), { ok: false, error: { code: 'CONTROL_BAD_REQUEST' } });
  t.same(await sendRequest(path, { op: 'ping' }, 5000), { ok: true, result: { cell: 'c', steps: ['a', 'b'] } }, 'still serving');

  await server.close();
  t.notOk(existsSync(path), 'socket removed');
  await t.rejects(sendRequest(path, { op: 'ping' }, 5000), { code: 'NO_LIVE_PAIR' }, 'no pair: a clear error');
});

t.test('a step\'s exit code follows its checks', async (t) => {
  const step = (statuses: string[], status = 'PASS') => ({ id: 's', type: 't', status, durationMs: 0, values: {}, splats: [], checks: statuses.map((s, i) => ({ id: `c${i}`, check: 'c', status: s, value: null })) }) as StepResult;
  t.equal(stepExitCode(step(['PASS', 'XFAIL'])), 0);
  t.equal(stepExitCode(step(['PASS', 'FAIL', 'ERROR'])), 1);
  t.equal(stepExitCode(step(['ERROR'])), 2);
  t.equal(stepExitCode(step([], 'SKIP')), 0);
});

t.test('ssh port from a recorded QEMU command line; the cell of a run', async (t) => {
  t.equal(sshPortOf('qemu -netdev user,id=net0,hostfwd=tcp:127.0.0.1:39359-:22 -device x'), 39359);
  t.equal(sshPortOf('qemu -nodefaults'), undefined);
  const run = await mkdtemp(join(tmpdir(), 'live-run-'));
  t.teardown(() => rm(run, { recursive: true, force: true }));
  await t.rejects(cellDirOf(run), { code: 'NO_SUCH_CELL' });
  await writeFile(join(run, 'results.json'), '{}');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(run, 'ep-a__host-b', 'ep'), { recursive: true });
  t.equal(await cellDirOf(run), join(run, 'ep-a__host-b'), 'the only cell');
  await mkdir(join(run, 'ep-c__host-d', 'ep'), { recursive: true });
  await t.rejects(cellDirOf(run), { code: 'NO_SUCH_CELL', message: /2 cells/ });
  // A matrix run in progress: the cell whose EP QEMU has not exited yet (no qemu.stderr).
  for (const cell of ['ep-a__host-b', 'ep-c__host-d']) await writeFile(join(run, cell, 'ep', 'qemu.cmdline'), 'qemu\n');
  await writeFile(join(run, 'ep-a__host-b', 'ep', 'qemu.stderr'), '');
  t.equal(await cellDirOf(run), join(run, 'ep-c__host-d'), 'the running cell');
  await writeFile(join(run, 'ep-c__host-d', 'ep', 'qemu.stderr'), '');
  await t.rejects(cellDirOf(run), { code: 'NO_SUCH_CELL' }, 'none running: ask');
  t.equal(await cellDirOf(run, 'ep-c__host-d'), join(run, 'ep-c__host-d'), '--cell');
  await writeFile(join(run, 'live.json'), JSON.stringify({ cell: 'ep-c__host-d' }));
  t.equal(await cellDirOf(run), join(run, 'ep-c__host-d'), "live.json's cell");
});

t.test('wire counters and the follower', async (t) => {
  const counters = new WireCounters();
  counters.add({ t: 1, link: 0, from: 'relay', type: 'PLUGGED', ms: 3 });
  counters.add({ t: 2, link: 0, from: 'relay', type: 'MSI', number: 1, vector: 0, result: 'delivered' });
  counters.add({ t: 3, link: 0, from: 'relay', type: 'MSI', number: 1, vector: 0, result: 'delivered' });
  counters.add({ t: 4, link: 0, from: 'relay', type: 'MSI', number: 4, vector: 3, result: 'delivered' });
  counters.add({ t: 5, link: 0, from: 'relay', type: 'MSI', number: 6, vector: 5, result: 'masked' });
  t.equal(counters.format(), 'link up; MSI delivered v0=2 v3=1; masked v5=1');
  t.equal(formatWireEvent({ t: 1500, link: 0, from: 'ep', type: 'RAISE_IRQ', seq: 4, irqType: 2, number: 3 }), '    1.500s  ep→relay    RAISE_IRQ seq=4 irqType=2 number=3');

  const dir = await mkdtemp(join(tmpdir(), 'wire-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const trace = join(dir, 'wire.ndjson');
  const line = (e: object) => `${JSON.stringify({ link: 0, ...e })}\n`;
  await writeFile(trace, line({ t: 1, from: 'relay', type: 'PLUGGED' }));
  let out = '';
  const abort = new AbortController();
  const following = followWire(trace, { signal: abort.signal, pollMs: 20, write: (text) => (out += text) });
  await sleep(100);
  t.match(out, /^rings: link up; MSI delivered \(none\)$/m);
  // A line arriving in two pieces is read once whole.
  const half = line({ t: 2, from: 'relay', type: 'MSI', number: 2, vector: 1, result: 'delivered' });
  await appendFile(trace, half.slice(0, 20));
  await sleep(100);
  t.notMatch(out, /v1=1/, 'half a line is not an event');
  await appendFile(trace, half.slice(20));
  await sleep(100);
  t.match(out, /^rings: link up; MSI delivered v1=1$/m, 'the counter follows the file as it grows');
  abort.abort();
  const final = await following;
  t.equal(final.delivered.get(1), 1);

  let once = '';
  await followWire(trace, { once: true, quiet: true, write: (text) => (once += text) });
  t.equal(once, 'rings: link up; MSI delivered v1=1\n', '--once --quiet: the counters only');
});

t.test('wire on a terminal: the counters are one status line redrawn in place', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wire-tty-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const trace = join(dir, 'wire.ndjson');
  const line = (e: object) => `${JSON.stringify({ link: 0, ...e })}\n`;
  await writeFile(trace, line({ t: 1, from: 'relay', type: 'PLUGGED' }));
  let out = '';
  const abort = new AbortController();
  const following = followWire(trace, { signal: abort.signal, pollMs: 20, tty: true, write: (text) => (out += text) });
  await sleep(100);
  t.match(out, /PLUGGED\n\r\x1b\[Krings: link up; MSI delivered \(none\)$/, 'status line after the messages, no newline');
  const drawn = out.length;
  await sleep(100);
  t.equal(out.length, drawn, 'not redrawn while nothing changes');
  await appendFile(trace, line({ t: 2, from: 'relay', type: 'MSI', number: 2, vector: 1, result: 'delivered' }));
  await sleep(100);
  t.match(out.slice(drawn), /^\r\x1b\[K\s+0\.002s\s+relay\s+MSI number=2 vector=1 result=delivered\n\r\x1b\[Krings: link up; MSI delivered v1=1$/, 'the message replaces the status line, which is drawn again below it');
  abort.abort();
  await following;
  t.ok(out.endsWith('v1=1\n'), 'the status line is ended on exit');
});
