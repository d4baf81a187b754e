/**
 * A step that outlives its budget is stopped: the runner's AbortSignal reaches every exec through the
 * Rig (fake guests: this is orchestration), and the shell snippets that stop a remote command work
 * under the busybox the guests run (the host's busybox-static, same package). The real guest case is
 * test/e2e/step-timeout.test.ts.
 */
import t from 'tap';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEmitter, type Stamped } from '../../harness/events.ts';
import { HarnessError } from '../../harness/errors.ts';
import { abortedExecError, killGroupScript, PGID_TAG, wrapCommand } from '../../harness/guest/abort.ts';
import type { CleanupOutcome, ExecOptions, ExecResult, GuestExec } from '../../harness/guest/types.ts';
import type { LinkWitness } from '../../harness/link/types.ts';
import type { CellContext } from '../../harness/scenario/context.ts';
import { executeCell } from '../../harness/scenario/execute.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { Rig } from '../../harness/scenario/rig.ts';
import { runStep } from '../../harness/scenario/step-runner.ts';
import { cellTimeoutScale, harnessTimeoutScale, scaleMs } from '../../harness/util/timeouts.ts';

const scenario = parseScenario(
  ['name: fake', 'matrix: {ep: [stock], host: [stock]}', 'function: {type: pci-epf-vntb}', 'steps:', '  - {id: link, type: link-up}', '  - {id: spad, type: spad}'].join('\n'),
  'fake.yaml',
);

interface Seen {
  command: string;
  signal?: AbortSignal;
}

/**
 * A guest transport: commands containing "hang" never finish on their own; an abort rejects them and
 * reports a cleanup whose outcome is `cleanup` (null: this transport ignores signals altogether).
 */
function fakeGuest(name: string, cleanup: Omit<CleanupOutcome, 'guest' | 'command'> | null = { ok: true, detail: 'killed its process group 42' }) {
  const seen: Seen[] = [];
  const guest: GuestExec = {
    name,
    exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
      seen.push({ command, signal: options.signal });
      const done = { command, stdout: command.includes('tainted') ? '0\n' : '', stderr: '', exitCode: 0, durationMs: 1 };
      if (!/hang/.test(command)) return Promise.resolve(done);
      return new Promise((_, reject) => {
        if (cleanup === null || !options.signal) return;
        options.signal.addEventListener('abort', () => {
          options.onCleanup?.(Promise.resolve({ guest: name, command, ...cleanup }));
          reject(options.signal!.reason);
        });
      });
    },
  };
  return { guest, seen };
}

const link: LinkWitness = { linkId: 0, linkUp: true, msiCounts: () => new Map(), msiDeliveries: () => [], mark: () => ({ index: 0 }), events: () => [] };

function context(ep: GuestExec, host: GuestExec, timeoutScale = 1): { ctx: CellContext; events: Stamped[] } {
  const emitter = createEmitter();
  const events: Stamped[] = [];
  emitter.on((e) => events.push(e));
  return { ctx: { ep, host, link, emit: (e) => emitter.emit(e), consoleMark: () => 0, splatsSince: async () => [], timeoutScale }, events };
}

t.test('over budget: the in-flight exec rejects at once, is cleaned up, and the step says what was running', async (t) => {
  const ep = fakeGuest('ep');
  const host = fakeGuest('host');
  const rig = new Rig(context(ep.guest, host.guest).ctx, scenario, 'cell');
  let inFlight: unknown;
  let rejectedAfterMs = -1;
  const started = Date.now();
  const { result, error, unclean } = await runStep(rig, { id: 'hung', type: 'link-up' }, 0.3, async (out) => {
    out.add('link', true, { on: 'ep', label: 'ep' });
    inFlight = await rig.ep.exec('ring doorbells and hang').catch((e: unknown) => e);
    rejectedAfterMs = Date.now() - started;
  });
  t.ok(Date.now() - started < 2000, `runStep returned after ${Date.now() - started} ms`);
  t.ok(rejectedAfterMs >= 250 && rejectedAfterMs < 1000, `the exec rejected when the budget ran out (${rejectedAfterMs} ms)`);
  t.match(inFlight, { code: 'STEP_TIMEOUT', guest: 'ep', phase: 'exec' }, 'with a STEP_TIMEOUT naming the guest');
  t.match((inFlight as Error).message, /stopped `ring doorbells and hang`/);
  t.match(error, { code: 'STEP_TIMEOUT', phase: 'step', guest: 'ep' });
  t.equal(result.status, 'ERROR');
  t.match(result.message, /step hung did not finish within 0 s; stopped while running ep: \$ ring doorbells and hang \(running 0\.\d s\)/);
  t.match(result.message, /ep: killed its process group 42/, 'the cleanup outcome is in the message');
  t.equal(unclean, undefined, 'a clean kill lets the cell go on');
  t.same(
    result.checks.map((c) => [c.id, c.status]),
    [
      ['link[ep]', 'PASS'],
      ['step', 'ERROR'],
    ],
    'measurements taken before the abort are kept',
  );
  const hung = ep.seen.find((s) => s.command.includes('hang'))!;
  t.ok(hung.signal?.aborted, 'the transport got the step signal, and it is aborted');
  const marker = ep.seen.find((s) => s.command.includes('ntbh: begin step'))!;
  t.equal(marker.signal, undefined, 'the runner\'s own markers run outside the step scope');
});

t.test('an abandoned body: later execs fail at once without reaching the guest, later measurements are dropped', async (t) => {
  const ep = fakeGuest('ep');
  const host = fakeGuest('host');
  const rig = new Rig(context(ep.guest, host.guest).ctx, scenario, 'cell');
  let later: unknown;
  let laterTookMs = -1;
  let bodyDone!: () => void;
  const bodyFinished = new Promise<void>((resolve) => (bodyDone = resolve));
  const { result } = await runStep(rig, { id: 'stubborn', type: 'link-up' }, 0.2, async (out) => {
    // Ignores the rejection and carries on, as a careless step would.
    await rig.host.exec('hang here').catch(() => undefined);
    await sleep(100);
    const before = Date.now();
    later = await rig.host.exec('echo 1 > /sys/kernel/debug/ntb_tool/0000:00:00.0/peer_db').catch((e: unknown) => e);
    laterTookMs = Date.now() - before;
    out.add('link', false, { on: 'host', label: 'host' });
    bodyDone();
  });
  await bodyFinished;
  t.match(later, { code: 'STEP_TIMEOUT', guest: 'host' }, 'the later exec rejects with the step\'s reason');
  t.ok(laterTookMs < 20, `at once (${laterTookMs} ms)`);
  t.notOk(host.seen.some((s) => s.command.includes('peer_db')), 'it never reached the guest');
  t.notOk(result.checks.some((c) => c.id.startsWith('link')), 'a measurement added after the abort is not judged');
});

t.test('a transport that ignores the signal still lets the step end on time', async (t) => {
  const ep = fakeGuest('ep', null);
  const rig = new Rig(context(ep.guest, fakeGuest('host').guest).ctx, scenario, 'cell');
  const started = Date.now();
  let inFlight: unknown;
  const { result, unclean } = await runStep(rig, { id: 'deaf', type: 'link-up' }, 0.2, async () => {
    inFlight = await rig.ep.exec('hang forever').catch((e: unknown) => e);
  });
  t.ok(Date.now() - started < 1500, 'ended on time');
  t.match(inFlight, { code: 'STEP_TIMEOUT' });
  t.equal(result.status, 'ERROR');
  t.equal(unclean, undefined, 'no cleanup was reported, none failed');
});

t.test('a step that finishes in time is not aborted and its execs carry a live signal', async (t) => {
  const ep = fakeGuest('ep');
  const rig = new Rig(context(ep.guest, fakeGuest('host').guest).ctx, scenario, 'cell');
  const { result } = await runStep(rig, { id: 'quick', type: 'link-up' }, 5, async (out) => {
    await rig.ep.exec('cat /sys/kernel/debug/ntb_tool/x/peer0/link');
    out.add('link', true, { on: 'ep', label: 'ep' });
  });
  t.equal(result.status, 'PASS');
  const body = ep.seen.find((s) => s.command.includes('peer0/link'))!;
  t.ok(body.signal && !body.signal.aborted);
});

t.test('executeCell: commands that could not be stopped end the cell with a clear error', async (t) => {
  // Every setup command hangs; the abort's kill reports a survivor (a task in D state, say).
  const ep = fakeGuest('ep', { ok: false, detail: 'process group 77 survived SIGKILL (still running: 77)' });
  const epGuest: GuestExec = {
    name: 'ep',
    exec: (command, options) => ep.guest.exec(/ntbh: (begin|end) step|^true$/.test(command) ? command : `${command} # hang`, options),
  };
  // 600 s setup budget × 0.0005 = 300 ms.
  const { ctx } = context(epGuest, fakeGuest('host').guest, 0.0005);
  const result = await executeCell(ctx, expandMatrix(scenario)[0]!, scenario);
  t.same(
    result.steps.map((s) => [s.id, s.status]),
    [
      ['setup', 'ERROR'],
      ['link', 'ERROR'],
      ['spad', 'ERROR'],
    ],
  );
  t.match(result.message, /step setup timed out and its commands could not be stopped \(ep: \$ .*process group 77 survived SIGKILL.*\); the guest is in an unknown state/);
  t.match(result.steps[1]!.message, /^not run: step setup timed out/);
});

t.test('timeouts: one scale, validated', async (t) => {
  t.equal(harnessTimeoutScale({}), 1);
  t.equal(harnessTimeoutScale({ NTBH_TIMEOUT_SCALE: '2.5' }), 2.5);
  for (const bad of ['0', '-1', 'fast', 'NaN']) t.throws(() => harnessTimeoutScale({ NTBH_TIMEOUT_SCALE: bad }), { code: 'BAD_TIMEOUT_SCALE', kind: 'input' }, `"${bad}" refused`);
  t.equal(cellTimeoutScale(2, 3), 6);
  t.equal(scaleMs(15_000, 0.5), 7500);
  const rig = new Rig(context(fakeGuest('ep').guest, fakeGuest('host').guest, 2).ctx, { ...scenario, topology: { ...scenario.topology, timeout_scale: 1.5 } }, 'cell');
  t.equal(rig.ms(1000), 3000, 'Rig.ms is harness scale × topology scale');
});

t.test('the wrapper and kill script stop a whole process group under busybox sh', async (t) => {
  const busybox = await execa('busybox', ['true'], { reject: false });
  t.equal(busybox.exitCode, 0, 'busybox is installed (busybox-static, a host package: `npx ntbh setup`)');
  if (busybox.exitCode !== 0) return;
  const dir = await mkdtemp(join(tmpdir(), 'ntbh-abort-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'grow');
  // A background sleeper and a loop that appends every 100 ms: what a hung step leaves behind.
  const command = `sleep 600 & while :; do echo x >> ${file}; sleep 0.1; done`;
  // Not a group leader (it is in ours), as dropbear's child is not: setsid must not fork.
  const child = spawn('busybox', ['sh', '-c', wrapCommand(command)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal === 'SIGKILL' ? 137 : null)));
  while (!stderr.includes('\n')) await sleep(20);
  const pgid = Number(stderr.split('\n')[0]!.slice(PGID_TAG.length));
  t.equal(pgid, child.pid, 'the group id printed is the shell\'s pid (setsid did not fork)');
  await sleep(400);
  t.ok((await stat(file)).size > 0, 'the loop runs');
  const killed = await execa('busybox', ['sh', '-c', killGroupScript(pgid)], { reject: false });
  t.equal(killed.exitCode, 0, `kill script: ${killed.stdout}${killed.stderr}`);
  t.equal(await exited, 137, 'the shell died of SIGKILL');
  const size = (await stat(file)).size;
  await sleep(400);
  t.equal((await stat(file)).size, size, 'the file stopped growing');
  const left = await execa('sh', ['-c', `ps -eo pgid=,stat=,args= | awk '$1 == ${pgid} && $2 !~ /^Z/'`]);
  t.equal(left.stdout.trim(), '', 'nothing of the group is left (the background sleep included)');
  t.throws(() => killGroupScript(1), /refusing/, 'never kills group 1');
  t.ok((await readFile(file, 'utf8')).length > 0);
});

t.test('the error an aborted exec rejects with keeps the reason\'s code and kind, and says guest and command', async (t) => {
  const controller = new AbortController();
  controller.abort(new HarnessError('step x did not finish within 3 s', { code: 'STEP_TIMEOUT', kind: 'infra', phase: 'step' }));
  const error = abortedExecError('host', 'cat /sys/kernel/debug/ntb_tool/a/db\nsecond line', controller.signal, 'partial output');
  t.match(error, { code: 'STEP_TIMEOUT', kind: 'infra', phase: 'exec', guest: 'host' });
  t.equal(error.message, 'host: stopped `cat /sys/kernel/debug/ntb_tool/a/db`: step x did not finish within 3 s');
  t.match(error.excerpt, /partial output/);
  const plain = new AbortController();
  plain.abort();
  t.match(abortedExecError('ep', 'true', plain.signal), { code: 'EXEC_ABORTED' }, 'a reason that is not a HarnessError: EXEC_ABORTED');
});
