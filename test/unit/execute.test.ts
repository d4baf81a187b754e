/**
 * Orchestration with fake guests: step framing, error containment, splat attribution, budgets, and
 * what a run does with a cell that cannot boot. Fakes answer shell commands crudely; none of this
 * covers kernel behaviour.
 */
import t from 'tap';
import { createEmitter, type Stamped } from '../../harness/events.ts';
import { HarnessError } from '../../harness/errors.ts';
import type { ExecResult, GuestExec } from '../../harness/guest/types.ts';
import type { LinkWitness } from '../../harness/link/types.ts';
import type { CellContext } from '../../harness/scenario/context.ts';
import { executeCell } from '../../harness/scenario/execute.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { Rig } from '../../harness/scenario/rig.ts';
import { runScenario } from '../../harness/scenario/run.ts';
import type { Splat } from '../../harness/scenario/splats.ts';
import { runStep } from '../../harness/scenario/step-runner.ts';

const scenario = parseScenario(
  [
    'name: fake',
    'matrix: {ep: [old, new], host: [stock]}',
    'function: {type: pci-epf-vntb}',
    'steps:',
    '  - {id: link, type: link-up}',
    '  - {id: pingpong, type: pingpong-atomic, duration: 1}',
    'splats:',
    '  - step: pingpong',
    '    guest: ep',
    '    pattern: "BUG: sleeping function called from invalid context"',
    '    when: {ep: {vntb_deferred_raise: false}}',
    '    xfail: old vntb raises under a spinlock',
  ].join('\n'),
  'fake.yaml',
);

/** Answers every command with `respond` (default: success, empty output, taint 0); records them. */
function fakeGuest(name: string, respond: (command: string) => Partial<ExecResult> | Error = (c) => (c.includes('kernel/tainted') ? { stdout: '0\n' } : {})): GuestExec & { commands: string[] } {
  const commands: string[] = [];
  return {
    name,
    commands,
    async exec(command) {
      commands.push(command);
      const answer = respond(command);
      if (answer instanceof Error) throw answer;
      return { command, stdout: '', stderr: '', exitCode: 0, durationMs: 1, ...answer };
    },
  };
}

const link: LinkWitness = { linkId: 0, linkUp: true, msiCounts: () => new Map(), msiDeliveries: () => [], mark: () => ({ index: 0 }), events: () => [] };

function context(options: { ep?: GuestExec; host?: GuestExec; splats?: Splat[] } = {}): { ctx: CellContext; events: Stamped[] } {
  const emitter = createEmitter();
  const events: Stamped[] = [];
  emitter.on((e) => events.push(e));
  const ctx: CellContext = {
    ep: options.ep ?? fakeGuest('ep'),
    host: options.host ?? fakeGuest('host'),
    link,
    emit: (e) => emitter.emit(e),
    consoleMark: () => 0,
    splatsSince: async () => options.splats ?? [],
    timeoutScale: 1,
  };
  return { ctx, events };
}

const bug: Splat = { guest: 'ep', kind: 'sleeping-in-atomic', title: 'sleeping-in-atomic: BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585', excerpt: '' };

t.test('a step that throws keeps its measurements and gets an ERROR check; markers frame it', async (t) => {
  const ep = fakeGuest('ep', (c) => (c.includes('tainted') ? { stdout: '4096\n' } : {}));
  const { ctx, events } = context({ ep });
  const rig = new Rig(ctx, scenario, 'ep-old__host-stock');
  const { result, error } = await runStep(rig, { id: 'link', type: 'link-up' }, 10, async (out) => {
    out.add('link', true, { on: 'ep', label: 'ep' });
    out.add('link', false, { on: 'host', label: 'host' });
    throw new HarnessError('ssh hiccup', { code: 'EXEC_TIMEOUT', kind: 'infra', phase: 'exec' });
  });
  t.ok(error);
  t.same(
    result.checks.map((c) => [c.id, c.status]),
    [
      ['link[ep]', 'PASS'],
      ['link[host]', 'FAIL'],
      ['step', 'ERROR'],
    ],
  );
  t.equal(result.status, 'FAIL', 'a FAIL outranks the ERROR');
  t.same(result.values, { 'link[ep]': true, 'link[host]': false, step: null });
  t.match(ep.commands[0], /ntbh: begin step link.*\/dev\/kmsg; cat \/proc\/sys\/kernel\/tainted/);
  t.match(ep.commands.at(-1), /ntbh: end step link/);
  t.same(
    events.map((e) => e.kind),
    ['step-start', 'check', 'check', 'check', 'step-end'],
  );
});

t.test('splats are judged per step: expected on an old EP, unexpected on a new one', async (t) => {
  for (const [deferred, status] of [
    [false, 'XFAIL'],
    [true, 'FAIL'],
  ] as const) {
    const { ctx, events } = context({ splats: [bug] });
    const rig = new Rig(ctx, scenario, 'cell');
    rig.caps = { 'ep.vntb_deferred_raise': deferred };
    const { result } = await runStep(rig, { id: 'pingpong', type: 'pingpong-atomic' }, 10, async (out) => out.add('pings', 3, { on: 'ep' }));
    t.equal(result.status, status, `deferred raise ${deferred}: ${status}`);
    t.equal(result.splats.length, 1);
    t.equal(result.splats[0]!.expected, !deferred);
    t.ok(events.some((e) => e.kind === 'splat'), 'a splat event');
  }
});

t.test('a step whose `when` does not match is SKIP and does not run', async (t) => {
  const { ctx } = context();
  const rig = new Rig(ctx, scenario, 'cell');
  rig.caps = { 'ep.vntb_deferred_raise': true };
  let ran = false;
  const { result } = await runStep(rig, { id: 'x', type: 'link-up', when: { ep: { vntb_deferred_raise: false } } }, 10, async () => {
    ran = true;
  });
  t.equal(result.status, 'SKIP');
  t.notOk(ran);
});

t.test('a step over its budget is ERROR (STEP_TIMEOUT)', async (t) => {
  const { ctx } = context();
  const rig = new Rig(ctx, scenario, 'cell');
  const { result } = await runStep(rig, { id: 'slow', type: 'link-up' }, 0.05, () => new Promise((resolve) => setTimeout(resolve, 2_000)));
  t.equal(result.status, 'ERROR');
  t.match(result.message, /did not finish within 0 s/);
});

t.test('executeCell: a setup that cannot find the EPC is ERROR, later steps SKIP, the cell ends cleanly', async (t) => {
  const { ctx, events } = context();
  const cell = expandMatrix(scenario)[0]!;
  const result = await executeCell(ctx, cell, scenario);
  t.equal(result.status, 'ERROR');
  t.same(
    result.steps.map((s) => [s.id, s.status]),
    [
      ['setup', 'ERROR'],
      ['link', 'SKIP'],
      ['pingpong', 'SKIP'],
    ],
  );
  t.match(result.steps[0]!.message, /no endpoint controller/);
  t.equal(events[0]!.kind, 'cell-start');
  t.equal(events.at(-1)!.kind, 'cell-end');
});

t.test('executeCell: a guest that stops answering ends the cell with ERROR steps', async (t) => {
  const lost = new HarnessError('no SSH connection to ep', { code: 'SSH_LOST', kind: 'infra', phase: 'exec', guest: 'ep' });
  const { ctx } = context({ ep: fakeGuest('ep', () => lost) });
  const result = await executeCell(ctx, expandMatrix(scenario)[0]!, scenario);
  t.same(
    result.steps.map((s) => s.status),
    ['ERROR', 'ERROR', 'ERROR'],
  );
  t.equal(result.message, 'the ep guest stopped answering');
});

t.test('runScenario: a cell that cannot boot is an ERROR cell; the run goes on and exits 2', async (t) => {
  const emitter = createEmitter();
  const kinds: string[] = [];
  emitter.on((e) => kinds.push(e.kind));
  const run = await runScenario(
    scenario,
    async (cell) => {
      if (cell.ep === 'old') throw new HarnessError('kernel build failed', { code: 'KERNEL_BUILD', kind: 'infra', phase: 'kernel-build' });
      return { ctx: context().ctx, dispose: async () => undefined };
    },
    { emitter },
  );
  t.same(
    run.cells.map((c) => [c.id, c.status]),
    [
      ['ep-old__host-stock', 'ERROR'],
      ['ep-new__host-stock', 'ERROR'],
    ],
  );
  t.equal(run.cells[0]!.message, 'KERNEL_BUILD: kernel build failed');
  t.equal(run.exitCode, 2);
  t.equal(kinds[0], 'run-start');
  t.equal(kinds.at(-1), 'run-end');
  t.equal(kinds.filter((k) => k === 'cell-end').length, 2);
});

t.test('a taint that cannot be read is an ERROR check with the reason, not a skipped check', async (t) => {
  const ep = fakeGuest('ep', (c) => (c.includes('end step') ? new HarnessError('ssh: connection reset', { code: 'EXEC_FAILED', kind: 'infra', phase: 'exec' }) : { stdout: '0\n' }));
  const host = fakeGuest('host', () => ({ stdout: '' }));
  const { ctx } = context({ ep, host });
  const rig = new Rig(ctx, scenario, 'cell');
  const { result } = await runStep(rig, { id: 'link', type: 'link-up' }, 10, async (out) => out.add('link', true, { on: 'ep', label: 'ep' }));
  t.equal(result.status, 'ERROR');
  const byId = new Map(result.checks.map((c) => [c.id, c]));
  t.equal(byId.get('taint[ep]')?.status, 'ERROR');
  t.match(byId.get('taint[ep]')?.message, /end-of-step marker and taint read failed: ssh: connection reset/);
  t.equal(byId.get('taint[host]')?.status, 'ERROR', 'an empty answer is not taint 0');
  t.match(byId.get('taint[host]')?.message, /not a number/);
});

t.test('splats that cannot be collected are an ERROR with the reason, not "no splats"', async (t) => {
  const { ctx } = context();
  ctx.splatsSince = async () => {
    throw new Error('console stream closed');
  };
  const rig = new Rig(ctx, scenario, 'cell');
  rig.caps = { 'ep.vntb_deferred_raise': false };
  const { result } = await runStep(rig, { id: 'pingpong', type: 'pingpong-atomic' }, 10, async (out) => out.add('pings', 3, { on: 'ep' }));
  t.equal(result.status, 'ERROR');
  const collect = result.checks.find((c) => c.id === 'splats[collect]');
  t.match(collect?.message, /reading the consoles failed: console stream closed/);
  t.notOk(result.checks.some((c) => c.status === 'XPASS'), 'an expected splat is not declared absent when nothing could be read');

  const gap = context();
  gap.ctx.splatGaps = () => ["the end-of-step marker never reached ep's console (within 5 s)"];
  const { result: gapped } = await runStep(new Rig(gap.ctx, scenario, 'cell'), { id: 'link', type: 'link-up' }, 10, async () => undefined);
  t.equal(gapped.status, 'ERROR');
  t.match(gapped.checks.find((c) => c.id === 'splats[collect]')?.message, /never reached ep's console/);
});
