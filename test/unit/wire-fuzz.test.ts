/**
 * Fuzzes the C reassembly of link messages (link/qemu/hw/vlink-rx.c, what vepc-wire.c runs on
 * every chardev read) with libFuzzer + ASan + UBSan for a bounded number of runs, and proves the
 * harness catches a parser that trusts the length field. Needs clang (a host package: `npx ntbh
 * setup`); without it this test fails and says so.
 */
import t from 'tap';
import { execa } from 'execa';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageReader } from '../../harness/link/wire.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { wireSeeds } from '../../link/qemu/fuzz/seeds.ts';

const fuzzSh = join(repoRoot, 'link', 'qemu', 'fuzz', 'fuzz.sh');
const RUNS = 200_000;

t.test('the seeds are what the relay would send', async (t) => {
  const seeds = wireSeeds();
  const all = seeds.get('all')!;
  const messages = new MessageReader().push(all.subarray(1 + all[0]!));
  t.same(
    messages.map((m) => m.message.type),
    ['HELLO', 'START', 'STOP', 'SET_BAR', 'RAISE_IRQ', 'IRQ_RESULT', 'HOST_CONFIG', 'WINDOW', 'LINK_STATE', 'DOORBELL', 'MEM_WRITE', 'FABRIC_WRITE', 'FABRIC_READ', 'FABRIC_READ_REPLY', 'HOST_CONFIG_ACK'],
  );
  t.ok(seeds.has('bad-magic') && seeds.has('oversized-big'), 'and the streams the device must refuse or skip');
});

t.test(`wire_fuzz: ${RUNS} runs without a crash`, async (t) => {
  const clang = await execa('clang', ['--version'], { reject: false });
  if (clang.exitCode !== 0) {
    t.fail('clang is not installed: run `npx ntbh setup` (Debian packages clang, libclang-rt-14-dev) to build the libFuzzer harness');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ntbh-wire-fuzz-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const started = Date.now();
  const run = await execa('bash', [fuzzSh, dir, `-runs=${RUNS}`, '-max_total_time=300'], { reject: false, all: true });
  const output = run.all ?? '';
  const crashes = (await readdir(dir)).filter((name) => /^(crash|leak|timeout|oom)-/.test(name));
  t.equal(run.exitCode, 0, `fuzz.sh exit ${run.exitCode}${run.exitCode ? `:\n${output.split('\n').slice(-40).join('\n')}` : ''}`);
  t.same(crashes, [], `no crashing input kept in ${dir}`);
  t.match(output, new RegExp(`Done ${RUNS} runs`), 'libFuzzer ran every run');
  t.comment(`${RUNS} runs in ${((Date.now() - started) / 1000).toFixed(1)} s (build included)`);
  const seeds = (await readdir(join(dir, 'corpus'))).filter((name) => name.endsWith('.bin'));
  t.equal(seeds.length, wireSeeds().size, 'started from the seed corpus');
});

t.test('wire_fuzz catches a reader that trusts the length field', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ntbh-wire-fuzz-mutant-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const source = await readFile(join(repoRoot, 'link', 'qemu', 'hw', 'vlink-rx.c'), 'utf8');
  const guard = 'if (rx->length > VLINK_MAX_PAYLOAD) {';
  t.ok(source.includes(guard), 'the length guard the mutant removes is there');
  const mutant = join(dir, 'vlink-rx.c');
  await writeFile(mutant, source.replace(guard, 'if (rx->length > 4 * VLINK_MAX_PAYLOAD) {'));
  const run = await execa('bash', [fuzzSh, join(dir, 'out'), '-runs=100000'], { reject: false, all: true, env: { VLINK_RX_SRC: mutant } });
  t.not(run.exitCode, 0, 'the fuzzer fails');
  t.match(run.all ?? '', /should have been refused|AddressSanitizer/, 'on the oversized message');
});
