import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmitter, type HarnessEvent } from '../../harness/events.ts';
import { buildMeter, estimateBuild, isObjectLine, previousBuilds, remainingMs, type PreviousBuild } from '../../harness/kernel/build-progress.ts';
import { attachProgress, ProgressBoard, progressDetail, progressListener } from '../../harness/report/progress.ts';
import { progress } from '../../harness/util/log.ts';
import type { StepResult } from '../../harness/results/model.ts';

/** A clock the test moves, and a stream that keeps what was written. */
function rig(live = false) {
  let ms = Date.parse('2026-11-30T10:00:00Z');
  const out: string[] = [];
  const stream = { write: (s: string) => out.push(s), columns: 60, isTTY: live };
  const now = () => ms;
  const board = new ProgressBoard({ stream, live, now, heartbeatMs: 30_000, redrawMs: 0 });
  const emitter = createEmitter(() => new Date(ms));
  emitter.on(progressListener(board, now));
  return {
    board,
    out,
    text: () => out.join(''),
    advance: (s: number) => (ms += s * 1000),
    emit: (e: HarnessEvent) => emitter.emit(e),
  };
}

const step = (id: string, status: StepResult['status'], durationMs: number): StepResult => ({ id, type: id, status, durationMs, values: {}, checks: [], splats: [] });
const cells = [
  { id: 'ep-old__host-new', ep: 'old', host: 'new' },
  { id: 'ep-new__host-new', ep: 'new', host: 'new' },
];
const cellResult = (id: string) => ({ id, ep: 'x', host: 'y', status: 'PASS' as const, durationMs: 1, capabilities: {}, params: {}, steps: [] });

t.test('plain lines for a log: state changes, a heartbeat for long jobs, no escape codes', async (t) => {
  const r = rig(false);
  r.emit({ kind: 'run-start', scenario: 'doorbell-interop', cells, strict: false });
  // A cache hit is silent; a real build shows a heartbeat and its end.
  r.emit({ kind: 'phase', phase: 'kernel-build', guest: 'old/arm64', status: 'start' });
  r.emit({ kind: 'phase', phase: 'kernel-build', guest: 'old/arm64', status: 'end', durationMs: 20 });
  r.emit({ kind: 'phase', phase: 'kernel-build', guest: 'new/x86_64', status: 'start' });
  r.advance(1);
  r.emit({ kind: 'progress', phase: 'kernel-build', guest: 'new/x86_64', done: 40, unit: 'objects', total: 2100, elapsedMs: 1000, remainingMs: 659_000, basis: 'this work tree' });
  r.advance(30);
  r.emit({ kind: 'progress', phase: 'kernel-build', guest: 'new/x86_64', done: 700, unit: 'objects', total: 2100, elapsedMs: 31_000, remainingMs: 62_000, basis: 'this work tree' });
  r.advance(59);
  r.emit({ kind: 'phase', phase: 'kernel-build', guest: 'new/x86_64', status: 'end', durationMs: 90_000 });
  r.emit({ kind: 'phase', cell: 'ep-old__host-new', phase: 'boot', status: 'start' });
  r.advance(5);
  r.emit({ kind: 'phase', cell: 'ep-old__host-new', phase: 'boot', status: 'end', durationMs: 5000 });
  r.emit({ kind: 'phase', cell: 'ep-old__host-new', guest: 'ep', phase: 'boot-ssh', status: 'end', durationMs: 1100 });
  r.emit({ kind: 'cell-start', cell: cells[0]! });
  r.emit({ kind: 'step-start', cell: 'ep-old__host-new', step: 'setup', type: 'setup' });
  r.emit({ kind: 'phase', cell: 'ep-old__host-new', phase: 'modules', status: 'end', durationMs: 2000 });
  r.advance(15);
  r.emit({ kind: 'step-end', cell: 'ep-old__host-new', step: step('setup', 'PASS', 15_000) });
  r.emit({ kind: 'step-start', cell: 'ep-old__host-new', step: 'sweep', type: 'doorbell-sweep' });
  r.advance(40);
  r.emit({ kind: 'step-end', cell: 'ep-old__host-new', step: step('sweep', 'XFAIL', 40_000) });
  r.emit({ kind: 'cell-end', cell: cellResult('ep-old__host-new') });
  r.emit({ kind: 'log', level: 'warn', cell: 'ep-new__host-new', message: 'stopping the pair failed: \u001b[31mgone\u001b[0m' });
  r.emit({ kind: 'run-end', run: {} as never });
  t.equal(
    r.text(),
    [
      '10:00:00 run doorbell-interop: 0/2 cells',
      '10:00:31 kernel new/x86_64: 700/~2100 objects, ~1m02s left (by this work tree\'s last build) [31 s]',
      '10:01:30 kernel new/x86_64: done in 1m30s',
      '10:01:30 cell 1/2 ep-old__host-new: booting the pair',
      '10:01:35 cell 1/2 ep-old__host-new: booted in 5 s [5 s]',
      '10:01:50 cell 1/2 ep-old__host-new: step setup PASS in 15 s [20 s]',
      '10:02:30 cell 1/2 ep-old__host-new: step sweep XFAIL in 40 s [1m00s]',
      '10:02:30 run doorbell-interop: 1/2 cells, ~2m30s left [2m30s]',
      '10:02:30 ep-new__host-new: stopping the pair failed: gone',
      '',
    ].join('\n'),
  );
  t.notOk(r.text().includes('\u001b'), 'no ANSI codes in a log');
});

t.test('QEMU: ninja knows its total, so no ~', async (t) => {
  t.equal(progressDetail({ kind: 'progress', phase: 'qemu-build', done: 812, total: 2450, unit: 'build steps', elapsedMs: 120_000, remainingMs: 240_000 }), '812/2450 build steps, ~4m00s left');
});

t.test('a failed build says so with its message', async (t) => {
  const r = rig(false);
  r.emit({ kind: 'phase', phase: 'qemu-build', status: 'start' });
  r.advance(3);
  r.emit({ kind: 'phase', phase: 'qemu-build', status: 'error', durationMs: 3000, message: 'ninja exited with 1' });
  t.equal(r.text(), '10:00:03 QEMU with the link devices: failed after 3 s: ninja exited with 1\n');
});

t.test('live lines on a terminal: one per job, redrawn in place around ordinary output', async (t) => {
  const r = rig(true);
  r.emit({ kind: 'run-start', scenario: 'ntb-bringup', cells: [cells[0]!], strict: false });
  r.emit({ kind: 'phase', phase: 'kernel-build', guest: 'stock/arm64', status: 'start' });
  r.advance(12);
  r.emit({ kind: 'progress', phase: 'kernel-build', guest: 'stock/arm64', done: 321, unit: 'objects', elapsedMs: 12_000 });
  t.same(r.board.lines(), ['run ntb-bringup  0/1 cells  12 s', 'kernel stock/arm64  321 objects  12 s']);
  r.out.length = 0;
  r.board.print('building out-of-tree module link/epc-driver');
  const written = r.text();
  t.ok(written.startsWith('\u001b[2A\r\u001b[J'), 'the two live lines are cleared first');
  t.match(written, /building out-of-tree module link\/epc-driver\n/);
  t.match(written, /kernel stock\/arm64  321 objects  12 s\n$/, 'and drawn again below');
  // Lines never wrap: a wrapped line would break the next clear.
  r.emit({ kind: 'progress', phase: 'kernel-build', guest: 'stock/arm64', done: 1, unit: 'objects', elapsedMs: 1, remainingMs: 3_600_000, basis: 'a rather long explanation of where this estimate came from' });
  t.ok(r.board.lines().every((l) => l.length < 60));
  r.out.length = 0;
  r.board.stop();
  t.equal(r.text(), '\u001b[2A\r\u001b[J', 'stop leaves no live line behind');
});

t.test('attachProgress routes the harness progress lines through the board, then gives them back', async (t) => {
  const out: string[] = [];
  const emitter = createEmitter();
  const attached = attachProgress(emitter, { stream: { write: (s: string) => out.push(s) }, live: false });
  progress('\u001b[2msetup: apt-get update\u001b[22m');
  emitter.emit({ kind: 'run-start', scenario: 's', cells: [], strict: false });
  attached.stop();
  t.match(out[0], /^\d\d:\d\d:\d\d setup: apt-get update\n$/);
  t.match(out[1], /run s: 0\/0 cells/);
  const before = out.length;
  emitter.emit({ kind: 'run-start', scenario: 's', cells: [], strict: false });
  t.equal(out.length, before, 'detached from the emitter');
});

t.test('object lines: kbuild quiet output', async (t) => {
  t.ok(isObjectLine('  CC      init/main.o'));
  t.ok(isObjectLine('  CC [M]  drivers/ntb/ntb_transport.o'));
  t.ok(isObjectLine('  AS      arch/x86/entry/entry_64.o'));
  t.notOk(isObjectLine('  LD      vmlinux.o'), 'links are not compiles');
  t.notOk(isObjectLine('  HOSTCC  scripts/basic/fixdep'));
  t.notOk(isObjectLine('drivers/ntb/hw/epf/ntb_hw_epf.c:12: warning: CC unused'));
  let clock = 0;
  const seen: number[] = [];
  const meter = buildMeter({ arch: 'x86_64', sourceId: 's', workTree: 'w', incremental: false }, undefined, (p) => seen.push(p.objects), { now: () => clock, everyMs: 1000 });
  meter.onOutput('  CC      a.o\n  CC    ');
  clock = 500;
  meter.onOutput('  b.o\n  LD      c.o\n');
  clock = 1500;
  meter.onOutput('  CC [M]  d.o\n');
  t.same(seen, [1, 3], 'lines split across chunks count once; reports at most once a second');
  t.same(meter.metadata(), { workTree: 'w', objects: 3, incremental: false });
});

const prev = (over: Partial<PreviousBuild> & { build: number }): PreviousBuild => ({
  arch: 'x86_64',
  builtAt: '2026-11-30T08:00:00Z',
  source: { id: 'debian:linux-source-6.12=6.12.117-1~deb12u1' },
  durationsMs: { build: over.build, config: 5000 },
  ...over,
});

t.test('estimate: the same work tree first, the same kind of build (cold or incremental)', async (t) => {
  const cold = { arch: 'x86_64', sourceId: 'debian:linux-source-6.12=6.12.117-1~deb12u1', workTree: 'w1', incremental: false };
  const warm = { ...cold, incremental: true };
  const history = [
    prev({ build: 660_000, workTree: 'w1', incremental: false, objects: 2100, builtAt: '2026-11-30T08:00:00Z' }),
    prev({ build: 15_000, workTree: 'w1', incremental: true, objects: 4, builtAt: '2026-11-30T09:00:00Z' }),
    prev({ build: 12_000, workTree: 'w1', incremental: true, objects: 3, builtAt: '2026-11-30T09:30:00Z' }),
    prev({ build: 400_000, workTree: 'w1', incremental: false, arch: 'arm64' }),
  ];
  t.same(estimateBuild(history, cold), { ms: 660_000, objects: 2100, basis: 'this work tree' });
  t.same(estimateBuild(history, warm), { ms: 12_000, objects: 3, basis: 'this work tree' }, 'the latest incremental build');
  // A new work tree (configs changed): the slowest build of the same source and arch, old metadata included.
  const old = [prev({ build: 640_000 }), prev({ build: 14_000 }), prev({ build: 700_000, source: { id: 'debian:linux-source-7.2=7.2.13-1' } })];
  t.same(estimateBuild(old, { ...cold, workTree: 'w2' }), { ms: 640_000, basis: 'this source' });
  t.equal(estimateBuild(old, { ...warm, workTree: 'w2' }), undefined, 'an incremental build with no history of its own: no guess');
  t.equal(estimateBuild([], cold), undefined);
});

t.test('time left: by objects when both builds counted them, else by the clock', async (t) => {
  const estimate = { ms: 600_000, objects: 2000, basis: 'this work tree' };
  t.equal(remainingMs({ objects: 500, elapsedMs: 60_000, estimate }), 180_000, 'ccache made it fast: 500 objects a minute');
  t.equal(remainingMs({ objects: 10, elapsedMs: 5_000, estimate }), 595_000, 'too early for a rate');
  t.equal(remainingMs({ objects: 10, elapsedMs: 700_000, estimate: { ms: 600_000, basis: 'this source' } }), 0);
  t.equal(remainingMs({ objects: 10, elapsedMs: 1 }), undefined);
});

t.test('previous builds come from the cached kernels metadata.json (broken ones skipped)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ntbh-kernels-'));
  mkdirSync(join(root, 'x86_64-stock-abc'));
  writeFileSync(join(root, 'x86_64-stock-abc', 'metadata.json'), JSON.stringify(prev({ build: 1000, workTree: 'w' })));
  mkdirSync(join(root, 'x86_64-new-def.tmp-1'));
  writeFileSync(join(root, 'x86_64-new-def.tmp-1', 'metadata.json'), '{"half');
  mkdirSync(join(root, 'arm64-old-123'));
  const builds = await previousBuilds(root);
  t.equal(builds.length, 1);
  t.equal(builds[0]!.workTree, 'w');
  t.same(await previousBuilds(join(root, 'missing')), []);
});
