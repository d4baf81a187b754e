/**
 * Both directions at once (observe.ts eachDirection, bothSettled) and the batched scratchpad reads and
 * writes (ntb-tool.ts), the last ones in a real shell over files standing in for debugfs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ExecResult, GuestExec } from '../../harness/guest/types.ts';
import { NtbTool, parseSpadWrites } from '../../harness/ntb/ntb-tool.ts';
import { bothSettled, DIRECTIONS_SIDE_BY_SIDE, eachDirection, mayRingWhileWatching, type Direction } from '../../harness/scenario/steps/observe.ts';
import type { Rig } from '../../harness/scenario/rig.ts';
import { Out, sleep } from '../../harness/scenario/steps/util.ts';
import type { Measurement } from '../../harness/results/model.ts';

t.test('eachDirection runs the directions at the same time and records them in direction order', async (t) => {
  const list: Measurement[] = [{ check: 'before', value: 1 }];
  const out = new Out(list);
  const running = new Set<Direction>();
  let overlap = false;
  await eachDirection(out, ['host-to-ep', 'ep-to-host'], async (direction, o) => {
    running.add(direction);
    // host→EP is slower: its measurements come in after the first of EP→host's.
    for (let n = 0; n < 3; n++) {
      if (running.size === 2) overlap = true;
      await sleep(direction === 'host-to-ep' ? 15 : 5);
      o.add('db', n, { label: `${direction} ${n}` });
    }
    o.unavailable('vector', 'none', { label: `${direction} end` });
    running.delete(direction);
  }, { inTurn: false });
  t.ok(overlap, 'both directions were running at once');
  t.same(
    list.map((m) => m.label ?? m.check),
    ['before', 'host-to-ep 0', 'host-to-ep 1', 'host-to-ep 2', 'host-to-ep end', 'ep-to-host 0', 'ep-to-host 1', 'ep-to-host 2', 'ep-to-host end'],
  );
});

t.test('eachDirection lets every direction finish, keeps what they saw, then rethrows the first failure', async (t) => {
  const list: Measurement[] = [];
  let otherFinished = false;
  await t.rejects(
    eachDirection(new Out(list), ['host-to-ep', 'ep-to-host'], async (direction, o) => {
      if (direction === 'host-to-ep') {
        o.add('db', 1, { label: 'seen before the failure' });
        throw new Error('SSH lost');
      }
      await sleep(20);
      o.add('db', 2, { label: 'other direction' });
      otherFinished = true;
    }, { inTurn: false }),
    /SSH lost/,
  );
  t.ok(otherFinished, 'the other direction was not left running');
  t.same(
    list.map((m) => m.label),
    ['seen before the failure', 'other direction'],
  );
});

t.test('eachDirection in turn (the default while DIRECTIONS_SIDE_BY_SIDE is off): one direction ends before the next starts', async (t) => {
  for (const options of [{ inTurn: true }, DIRECTIONS_SIDE_BY_SIDE ? undefined : {}]) {
    if (!options) continue;
    const seen: string[] = [];
    await eachDirection(
      new Out([]),
      ['host-to-ep', 'ep-to-host'],
      async (direction) => {
        seen.push(`${direction} start`);
        await sleep(direction === 'host-to-ep' ? 15 : 1);
        seen.push(`${direction} end`);
      },
      options,
    );
    t.same(seen, ['host-to-ep start', 'host-to-ep end', 'ep-to-host start', 'ep-to-host end'], JSON.stringify(options));
  }
});

t.test('rings to a host whose doorbell handler sleeps in hard-irq context go before the watch', async (t) => {
  const rig = (caps: Record<string, boolean>) => ({ caps, isHost: (side: string) => side === 'host' }) as unknown as Rig;
  t.equal(mayRingWhileWatching(rig({ 'host.epf_irq_ctx': false }), 'host'), false, 'H5 missing: in turn toward the host');
  t.equal(mayRingWhileWatching(rig({ 'host.epf_irq_ctx': false }), 'ep'), true, 'the EP takes doorbells by polling: no IRQ handler involved');
  t.equal(mayRingWhileWatching(rig({ 'host.epf_irq_ctx': true }), 'host'), true);
  t.equal(mayRingWhileWatching(rig({}), 'host'), true, 'unknown capability: nothing known to avoid');
});

t.test('bothSettled waits for both before it rethrows', async (t) => {
  let slowDone = false;
  const slow = sleep(20).then(() => {
    slowDone = true;
    return 1;
  });
  await t.rejects(bothSettled(Promise.reject(new Error('ring failed')), slow), /ring failed/);
  t.ok(slowDone, 'the watch had ended before the failure was reported');
  t.same(await bothSettled(Promise.resolve('a'), Promise.resolve(2)), ['a', 2]);
});

/** A guest that runs commands in a local /bin/sh. */
function localGuest(): GuestExec {
  return {
    name: 'local',
    async exec(command): Promise<ExecResult> {
      try {
        const stdout = execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        return { command, stdout, stderr: '', exitCode: 0, durationMs: 1 };
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string; status?: number };
        return { command, stdout: e.stdout ?? '', stderr: e.stderr ?? '', exitCode: e.status ?? 1, durationMs: 1 };
      }
    },
  };
}

t.test('writePeerSpads writes every scratchpad in one script and reports each refused write', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-spad-'));
  mkdirSync(join(dir, 'peer0'));
  // spad1 is a directory: writing it fails like a refused debugfs write.
  mkdirSync(join(dir, 'peer0', 'spad1'));
  let calls = 0;
  const guest = localGuest();
  const counting: GuestExec = { name: guest.name, exec: (c, o) => (calls++, guest.exec(c, o)) };
  const tool = new NtbTool(counting, dir);
  const results = await tool.writePeerSpads([0x6e010000, 0x6e010101, 0x6e010202]);
  t.equal(calls, 1, 'one round trip');
  t.same(results[0], { ok: true });
  t.equal(results[1]!.ok, false);
  t.match(results[1]!.error, /spad1|Is a directory|cannot create/, 'the shell said why');
  t.same(results[2], { ok: true }, 'a refused write does not stop the rest');
  t.equal(readFileSync(join(dir, 'peer0', 'spad2'), 'utf8').trim(), '0x6e010202');
});

t.test('readSpads reads every scratchpad in one script, in index order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-spad-'));
  writeFileSync(join(dir, 'spad0'), '0x6e020000\n');
  writeFileSync(join(dir, 'spad1'), '0\n');
  const tool = new NtbTool(localGuest(), dir);
  t.same(await tool.readSpads(2), [0x6e020000, 0]);
  t.same(await tool.readSpads(0), []);
  await t.rejects(tool.readSpads(3), /command failed/, 'a missing scratchpad is an error, not a zero');
});

t.test('parseSpadWrites: a write with no line printed is a failure', async (t) => {
  t.same(parseSpadWrites('0 0 \n2 1 sh: write error: Invalid argument\n', 3), [
    { ok: true },
    { ok: false, error: 'no result printed' },
    { ok: false, error: 'sh: write error: Invalid argument' },
  ]);
});
