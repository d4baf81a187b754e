// End-to-end: a step that hangs in a real guest (real kernel, QEMU under TCG, dropbear, busybox) is
// stopped when its budget runs out: the remote processes are gone and stop writing, and the step's
// later commands never run. One booted guest plays both sides; the step runner only needs two guests.
import t from 'tap';
import { ensureSetup } from '../../harness/setup/setup.ts';
import { bootSingle } from '../../harness/guest/single.ts';
import type { Guest } from '../../harness/guest/guest.ts';
import type { CleanupOutcome } from '../../harness/guest/types.ts';
import { builtinVariants } from '../../harness/kernel/variants.ts';
import { createEmitter } from '../../harness/events.ts';
import type { LinkWitness } from '../../harness/link/types.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import { Rig } from '../../harness/scenario/rig.ts';
import { runStep } from '../../harness/scenario/step-runner.ts';
import { makeRunDirs } from '../../harness/util/rundir.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const scenario = parseScenario(['name: step-timeout', 'matrix: {ep: [stock], host: [stock]}', 'function: {type: pci-epf-vntb}', 'steps:', '  - {id: hang, type: link-up}'].join('\n'), 'step-timeout.yaml');
// Not under test here: runStep reads neither the link nor the consoles' splats beyond this.
const link: LinkWitness = { linkId: 0, linkUp: true, msiCounts: () => new Map(), msiDeliveries: () => [], mark: () => ({ index: 0 }), events: () => [] };

/** Processes whose command line matches `pattern` (busybox has no pgrep: read /proc). */
async function processes(guest: Guest, pattern: string): Promise<string[]> {
  const script = `for d in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $d/cmdline 2>/dev/null); s=$(cut -d' ' -f3 $d/stat 2>/dev/null); case "$c" in *'${pattern}'*) [ "$s" != Z ] && echo "\${d#/proc/} $c";; esac; done`;
  const result = await guest.exec(script, { check: true, timeoutMs: 30_000 });
  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.includes('/proc/[0-9]')); // the scanning shell itself
}

async function size(guest: Guest, file: string): Promise<number> {
  return Number((await guest.exec(`stat -c %s ${file}`, { check: true, timeoutMs: 30_000 })).stdout.trim());
}

t.before(() => ensureSetup({ log }));
t.teardown(() => teardownAll());

let guest: Guest;
t.before(async () => {
  const run = await makeRunDirs('e2e-step-timeout');
  guest = (await bootSingle({ arch: 'x86_64', spec: builtinVariants.stock!, run, log })).guest;
});
t.teardown(() => guest?.stop());

t.test('a step over its 3 s budget is stopped in the guest', async (t) => {
  const emitter = createEmitter();
  const ctx = { ep: guest, host: guest, link, emit: (e: Parameters<typeof emitter.emit>[0]) => emitter.emit(e), consoleMark: () => 0, splatsSince: async () => [], timeoutScale: 1 };
  const rig = new Rig(ctx, scenario, 'single');
  await guest.exec('rm -f /tmp/grow /tmp/after-abort', { check: true });

  let inFlight: unknown;
  let later: unknown;
  let bodyDone!: () => void;
  const bodyFinished = new Promise<void>((resolve) => (bodyDone = resolve));
  const started = Date.now();
  const { result, unclean } = await runStep(rig, { id: 'hang', type: 'link-up' }, 3, async () => {
    // A background sleeper and a loop appending every 100 ms: a hung step's leftovers.
    inFlight = await rig.ep.exec('sleep 600 & while :; do date >> /tmp/grow; sleep 0.1; done').catch((e: unknown) => e);
    // The abandoned body carries on: its next command must not reach the guest.
    later = await rig.ep.exec('touch /tmp/after-abort').catch((e: unknown) => e);
    bodyDone();
  });
  const elapsed = Date.now() - started;
  await bodyFinished;

  t.equal(result.status, 'ERROR', 'the step is ERROR');
  t.match(result.message, /step hang did not finish within 3 s; stopped while running x86_64: \$ sleep 600 & while :; do date >> \/tmp\/grow/, 'the message says what was running where');
  t.match(result.message, /x86_64: killed its process group \d+/, 'and that it was killed');
  t.equal(unclean, undefined, 'the guest is clean: the cell could go on');
  t.match(inFlight, { code: 'STEP_TIMEOUT', guest: 'x86_64', phase: 'exec' }, 'the in-flight exec rejected with STEP_TIMEOUT');
  t.match(later, { code: 'STEP_TIMEOUT' }, 'the later exec failed too');
  t.ok(elapsed < 3000 + 15_000, `runStep returned after ${elapsed} ms (markers and the kill included)`);

  // The next "step": over SSH, nothing of the hung command is left and the file stopped growing.
  t.same(await processes(guest, 'sleep 600'), [], 'no `sleep 600` left');
  t.same(await processes(guest, '/tmp/grow'), [], 'no loop left');
  const first = await size(guest, '/tmp/grow');
  t.ok(first > 0, `the loop had written ${first} bytes`);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(await size(guest, '/tmp/grow'), first, 'the file stopped growing');
  const after = await guest.exec('test -e /tmp/after-abort');
  t.equal(after.exitCode, 1, 'the abandoned body\'s later command never ran');
});

t.test('a command over its own timeout is killed too, and stderr carries only its own output', async (t) => {
  let cleanup: Promise<CleanupOutcome> | undefined;
  const pending = guest.exec('sleep 700', { timeoutMs: 4000, onCleanup: (outcome) => (cleanup = outcome) }).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 1000));
  t.equal((await processes(guest, 'sleep 700')).length, 1, 'while it runs, the probe sees it (the probe can fail)');
  const error = await pending;
  t.match(error, { code: 'EXEC_TIMEOUT', guest: 'x86_64' });
  t.ok(cleanup, 'a cleanup was started');
  t.match(await cleanup, { ok: true, detail: /killed its process group \d+/ });
  t.same(await processes(guest, 'sleep 700'), [], 'no `sleep 700` left');

  const plain = await guest.exec('echo out; echo err >&2; exit 3');
  t.same([plain.stdout, plain.stderr, plain.exitCode], ['out\n', 'err\n', 3], 'the wrapper\'s process-group line is not in stderr; the exit code is the command\'s');
  const stdin = await guest.exec('cat', { stdin: 'fed through stdin' });
  t.equal(stdin.stdout, 'fed through stdin', 'stdin still reaches the command');
});
