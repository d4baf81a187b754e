// End-to-end: real kernels, real images, real QEMU guests under TCG, real SSH.
import t from 'tap';
import { execa } from 'execa';
import { mkdtemp, writeFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureSetup } from '../../harness/setup/setup.ts';
import { bootSingle } from '../../harness/guest/single.ts';
import { builtinVariants } from '../../harness/kernel/variants.ts';
import { defaultExtraModules } from '../../harness/kernel/build.ts';
import { makeRunDirs } from '../../harness/util/rundir.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { HarnessError } from '../../harness/errors.ts';
import { teardownAll } from '../../harness/util/teardown.ts';
import type { Splat } from '../../harness/detect/console.ts';
import type { Arch } from '../../harness/kernel/spec.ts';
import { probeCapabilities } from '../../harness/ntb/capabilities.ts';
import { probeCapabilitiesFromBuild } from '../../harness/ntb/build-facts.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

/** QEMU processes whose command line mentions `marker` (a run's private directory). */
async function qemuProcessesMentioning(marker: string): Promise<string[]> {
  const { stdout } = await execa('pgrep', ['-a', '-f', 'qemu-system'], { reject: false });
  return stdout.split('\n').filter((line) => line.includes(marker));
}

function waitSplat(guest: { console: NodeJS.EventEmitter }, kind: string, timeoutMs: number): Promise<Splat> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${kind} splat within ${timeoutMs} ms`)), timeoutMs);
    const onSplat = (splat: Splat) => {
      if (splat.kind !== kind) return;
      clearTimeout(timer);
      guest.console.off('splat', onSplat);
      resolve(splat);
    };
    guest.console.on('splat', onSplat);
  });
}

// The selftest module (it provokes real splats) is built only into this test's kernels.
const withSelftest = [...defaultExtraModules(), join(repoRoot, 'test', 'modules', 'ntbh-selftest')];

t.before(() => ensureSetup({ log }));
// Run-level cleanups (tmpfs scratch directories) registered by the harness.
t.teardown(() => teardownAll());

for (const arch of ['x86_64', 'arm64'] as Arch[]) {
  t.test(`${arch}: default kernel boots to SSH, splats are caught, a panic is reported within 5 s`, async (t) => {
    const run = await makeRunDirs(`e2e-boot-${arch}`);
    const { guest, kernel } = await bootSingle({ arch, spec: builtinVariants.stock!, run, log, extraModules: withSelftest });
    t.teardown(() => guest.stop());
    t.comment(`boot to SSH: ${guest.bootTimes?.sshMs} ms (ready line ${guest.bootTimes?.readyMs} ms)`);

    const uname = await guest.exec('uname -r', { check: true });
    t.equal(uname.stdout.trim(), kernel.release, 'uname -r over SSH is the kernel we built');

    // Capabilities decided from the kernel's build (System.map, config, .ko files) equal the ones probed in
    // the guest, with the role's driver loaded as the setup step loads it.
    const side = arch === 'arm64' ? 'ep' : 'host';
    await guest.exec(`modprobe ${side === 'ep' ? 'pci-epf-vntb' : 'ntb_hw_epf'}`, { check: true });
    const inGuest = await probeCapabilities(guest, side);
    const fromBuild = await probeCapabilitiesFromBuild(kernel, guest, side);
    t.ok(fromBuild, 'the build answers the probes');
    t.same(fromBuild?.values, inGuest.values, `${side} capabilities from the build equal the in-guest probe's`);
    t.same(fromBuild?.unknown, inGuest.unknown, 'and so do the undecided ones');
    t.ok(Object.keys(inGuest.values).length > 5, 'several capabilities were decided');
    const failing = await guest.exec('exit 3');
    t.equal(failing.exitCode, 3, 'exit codes come back');
    // Longer than dropbear's command line (9000 bytes, past which it ends the connection): sent on stdin.
    const long = ['n=0', ...Array.from({ length: 1500 }, (_, i) => `n=$((n+${i})) # ${'.'.repeat(8)}`), 'echo "$n"', 'exit 4'].join('\n');
    const longRan = await guest.exec(long);
    t.same([longRan.exitCode, longRan.stdout.trim()], [4, String((1500 * 1499) / 2)], `a ${long.length}-byte script runs whole in the guest`);
    const withInput = await guest.exec(`cat${' '.repeat(10_000)}`, { stdin: 'fed\n', check: true });
    t.equal(withInput.stdout, 'fed\n', 'a long command with input of its own reads it');
    t.equal((await guest.exec('echo still-here', { check: true })).stdout.trim(), 'still-here', 'and the connection still answers');

    // Real splats from a real kernel, attributed to the step that caused them by kmsg markers.
    await guest.exec('modprobe ntbh_selftest', { check: true });
    const warn = waitSplat(guest, 'warning', 20_000);
    await guest.exec('echo "ntbh: begin step provoke-warn" > /dev/kmsg; echo warn > /sys/kernel/debug/ntbh_selftest/trigger; echo "ntbh: end step provoke-warn" > /dev/kmsg', { check: true });
    const warning = await warn;
    t.match(warning.title, /^WARNING: .*ntbh_selftest/, 'WARN detected');
    t.equal(warning.step, 'provoke-warn', 'WARN attributed to its step');
    const atomic = waitSplat(guest, 'sleeping-in-atomic', 20_000);
    await guest.exec('echo atomic > /sys/kernel/debug/ntbh_selftest/trigger', { check: true });
    t.match((await atomic).title, /sleeping function called from invalid context/, 'sleeping in atomic context detected');
    const tainted = await guest.exec('cat /proc/sys/kernel/tainted', { check: true });
    t.not(Number(tainted.stdout.trim()), 0, 'the WARN tainted the kernel');

    // Keep this console as a fixture candidate for the pattern tests.
    await mkdir(join(run.dir, 'fixtures'), { recursive: true });
    await writeFile(join(run.dir, 'fixtures', `${arch}-splats.log`), guest.console.lines.join('\n'));

    const started = Date.now();
    const error = await guest.exec('echo c > /proc/sysrq-trigger', { timeoutMs: 60_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    t.ok(error instanceof HarnessError, 'the panic surfaces as a harness error');
    const harnessError = error as HarnessError;
    t.equal(harnessError.code, 'GUEST_PANIC');
    t.equal(harnessError.kind, 'test', 'a panic is the kernel failing, not the harness');
    t.ok(elapsed < 5000, `reported in ${elapsed} ms (< 5 s)`);
    t.match(harnessError.excerpt ?? '', /Kernel panic - not syncing/, 'the console excerpt comes with it');
    t.match(harnessError.excerpt ?? '', /sysrq/i, 'the excerpt shows what triggered it');

    await guest.stop();
    t.same(await qemuProcessesMentioning(run.shm), [], 'no QEMU survives the guest');
  });
}

t.test('a guest whose console goes silent is reported as such, early, and torn down', async (t) => {
  const run = await makeRunDirs('e2e-silent-arm64');
  const started = Date.now();
  // console=tty0 on a machine without a VT: the kernel and the init print nothing on the serial line.
  const error = await bootSingle({ arch: 'arm64', spec: builtinVariants.stock!, run, log, extraCmdline: ['console=tty0', 'quiet'] }).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(error, { code: 'BOOT_NO_OUTPUT', kind: 'infra', phase: 'boot', guest: 'arm64' });
  t.ok(Date.now() - started < 40_000, 'reported by the silence watchdog, well before the 60 s deadline');
  await teardownAll();
  t.same(await qemuProcessesMentioning(run.shm), [], 'the silent guest was stopped');
});

t.test('Ctrl-C on `ntbh boot` ends the guest and leaves nothing behind', async (t) => {
  const results = await mkdtemp(join(repoRoot, 'results', 'e2e-interrupt-'));
  const shmBefore = new Set(await readdir('/dev/shm'));
  const child = execa('node', [join(repoRoot, 'bin', 'ntbh.js'), 'boot', '--arch', 'x86_64', '--results', results], { reject: false, all: true });
  let output = '';
  child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 600_000;
  while (!/guest is up/.test(output) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
  t.match(output, /guest is up/, 'the guest came up');
  // The guest's QEMU command line names its initrd under the results directory: that is our marker.
  t.ok((await qemuProcessesMentioning(results)).length === 1, 'one QEMU running before the interrupt');
  child.kill('SIGINT');
  const result = await child;
  t.equal(result.exitCode, 130, 'exit code 130 after SIGINT');
  t.same(await qemuProcessesMentioning(results), [], 'no QEMU process survives the interrupted run');
  const shmAfter = (await readdir('/dev/shm')).filter((name) => !shmBefore.has(name));
  t.same(shmAfter, [], 'nothing left in /dev/shm');
});
