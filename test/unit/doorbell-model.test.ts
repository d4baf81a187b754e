/**
 * The doorbell steps and the expectations of doorbell-interop.yaml (old/stock/new) and
 * release-interop.yaml (6.12, 6.1, 7.1.8, 7.2.13) against a model of the pair written from
 * docs/doorbells.md. Every variant gets the capabilities its real modules classify as
 * (test/fixtures/captured/releases/: the releases and our old/new builds), plus the db_valid_mask the
 * model shows for the observed ones. This checks that the scenarios' spec
 * and known values agree with the documented behaviour and that the steps measure what the
 * expectations talk about. It is a model, not the kernel: the real behaviour is what the QEMU runs show.
 */
import t from 'tap';
import { join } from 'node:path';
import { releaseCaps } from '../fixtures/captured/releases/facts.ts';
import { createEmitter } from '../../harness/events.ts';
import type { ExecResult, GuestExec } from '../../harness/guest/types.ts';
import type { LinkWitness } from '../../harness/link/types.ts';
import { NtbTool } from '../../harness/ntb/ntb-tool.ts';
import { evaluateInterop } from '../../harness/scenario/interop.ts';
import { loadScenario } from '../../harness/scenario/load.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { Rig } from '../../harness/scenario/rig.ts';
import { runStep } from '../../harness/scenario/step-runner.ts';
import { stepImpl } from '../../harness/scenario/steps/index.ts';
import type { CellResult, Side } from '../../harness/results/model.ts';

const Nh = 16;
const Ne = 16;
const mask = (n: number) => 2 ** n - 1;

/** docs/doorbells.md's EP rows that shape what a cell sees: E1-E3 (zeroBased), E4/E5 (deferred), E8. */
interface EpFeatures {
  zeroBased: boolean;
  deferred: boolean;
  vectorOps: boolean;
}
const PRE: EpFeatures = { zeroBased: false, deferred: false, vectorOps: false };
const EP_71: EpFeatures = { zeroBased: true, deferred: true, vectorOps: false };
const SERIES: EpFeatures = { zeroBased: true, deferred: true, vectorOps: true };
/** Host rows: `old` lacks H1-H6, `stock` (6.1/6.12/7.1.8) lacks H6, `new` (7.2+) has all. */
type HostKind = 'old' | 'stock' | 'new';

interface Variant {
  ep: EpFeatures;
  host: HostKind;
  /** The module fixtures (test/fixtures/captured/releases/<name>-<module>.txt) its capabilities come from. */
  fixtures: Record<Side, string>;
}
const VARIANTS: Record<string, Variant> = {
  old: { ep: PRE, host: 'old', fixtures: { ep: '6.12.117', host: 'ours-old-6.12' } },
  stock: { ep: PRE, host: 'stock', fixtures: { ep: '6.12.117', host: '6.12.117' } },
  new: { ep: SERIES, host: 'new', fixtures: { ep: 'ours-new-6.12', host: 'ours-new-6.12' } },
  'r6.12': { ep: PRE, host: 'stock', fixtures: { ep: '6.12.117', host: '6.12.117' } },
  'r6.1': { ep: PRE, host: 'stock', fixtures: { ep: '6.1.192', host: '6.1.192' } },
  'r7.1': { ep: EP_71, host: 'stock', fixtures: { ep: '7.1.8', host: '7.1.8' } },
  'r7.2': { ep: SERIES, host: 'new', fixtures: { ep: '7.2.13', host: '7.2.13' } },
};

/** The pair as docs/doorbells.md describes it. */
class PairModel {
  db: Record<Side, number> = { ep: 0, host: 0 };
  log: Record<Side, string[]> = { ep: [], host: [] };
  irq = new Array<number>(Nh).fill(0);
  wire: number[] = [];
  constructor(
    readonly ep: EpFeatures,
    readonly hostV: HostKind,
  ) {}

  validMask(side: Side): number {
    if (side === 'ep') return this.ep.zeroBased ? mask(Ne - 2) : mask(Ne);
    return this.hostV === 'old' ? mask(Nh - 1) : mask(Nh - 2);
  }

  vectorMask(side: Side, v: number): number {
    if (side === 'ep') return this.ep.vectorOps ? (v < Ne - 2 ? 2 ** v : 0) : this.validMask('ep');
    return this.hostV === 'new' ? (v < Nh - 2 ? 2 ** v : 0) : this.validMask('host');
  }

  event(side: Side, vector: number): void {
    this.log[side].push(`[    1.000000] ntb_tool 0000:01:00.0: doorbell vec ${vector} mask ${hex(this.vectorMask(side, vector))} bits ${hex(this.db[side])}`);
  }

  /** Host peer_db_set (H7): the lowest set bit only, to slot b+2 (slot 1 for 0); the EP polls up to Ne-1. */
  hostRing(bits: number): { ok: boolean; error?: string } {
    const slot = bits === 0 ? 1 : lsb(bits) + 2;
    if (slot > Nh - 1) return { ok: false, error: 'write error: Invalid argument' };
    if (slot >= Ne) return { ok: true };
    if (this.ep.zeroBased) {
      // E2: the poll starts at slot 2; slot 1 is never read and nothing is logged.
      if (slot === 1) return { ok: true };
      this.db.ep |= 2 ** (slot - 2);
      this.event('ep', slot - 2);
    } else {
      this.db.ep |= 2 ** (slot - 1);
      this.event('ep', slot);
    }
    return { ok: true };
  }

  /** EP peer_db_set: pre-series raises the lowest bit (slot 1 for 0); E4/E5 every bit of B ∩ valid, nothing for 0. */
  epRing(bits: number): { ok: boolean; error?: string } {
    const slots = this.ep.deferred ? setBits(bits & this.validMask('ep')).map((b) => b + 2) : [bits === 0 ? 1 : lsb(bits) + 2];
    for (const index of slots) this.hostMsi(index);
    return { ok: true };
  }

  hostMsi(index: number): void {
    this.wire.push(index);
    this.irq[index]!++;
    if (index === 0) return;
    if (this.hostV === 'old') {
      this.db.host = index + 1;
      this.event('host', index);
      return;
    }
    if (index === 1 || index - 2 >= Nh - 2) return;
    this.db.host |= 2 ** (index - 2);
    this.event('host', index - 2);
  }

  clear(side: Side, bits: number): void {
    this.db[side] = side === 'host' && this.hostV === 'old' ? 0 : this.db[side] & ~bits;
  }

  interrupts(): string {
    return ['           CPU0', ...this.irq.map((count, v) => ` ${27 + v}: ${String(count).padStart(10)}  IR-PCI-MSI-0000:01:00.0   ${v}-edge      ntb_epf`)].join('\n');
  }
}

const hex = (n: number) => (n === 0 ? '0' : `0x${n.toString(16)}`);
const lsb = (n: number) => setBits(n)[0]!;
function setBits(n: number): number[] {
  return Array.from({ length: 32 }, (_, i) => i).filter((i) => Math.floor(n / 2 ** i) % 2 === 1);
}

class ModelTool extends NtbTool {
  constructor(
    private readonly model: PairModel,
    private readonly side: Side,
    guest: GuestExec,
  ) {
    super(guest, `/sys/kernel/debug/ntb_tool/${side}`);
  }
  override async db() {
    return this.model.db[this.side];
  }
  override async dbValidMask() {
    return this.model.validMask(this.side);
  }
  override async clearDb(bits: number) {
    this.model.clear(this.side, bits);
  }
  override async ringPeer(bits: number) {
    return this.side === 'host' ? this.model.hostRing(bits) : this.model.epRing(bits);
  }
  override async waitDb(baseline: number) {
    const value = this.model.db[this.side];
    return { value, changed: value !== baseline };
  }
}

/**
 * The batched scripts the doorbell steps send (harness/scenario/steps/observe.ts: sections marked
 * `@@ntbh:<name>`), run against the model line by line: clears, db reads, kmsg markers, the db wait
 * loop (settled at once: the model is synchronous), the kernel log since a marker, /proc/interrupts.
 */
function runBatch(model: PairModel, side: Side, script: string): string {
  const out: string[] = [];
  const lines = script.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    const section = /^echo '(@@ntbh:[\w-]+)'$/.exec(line);
    const clear = /^echo 'c (0x[0-9a-f]+)' > '?[^']*\/db'?$/.exec(line);
    const mark = /ntbh-mark-\d+-\d+/.exec(line)?.[0];
    if (section) out.push(section[1]!);
    else if (clear) model.clear(side, Number(clear[1]));
    else if (/^cat '[^']*\/db'$/.test(line)) out.push(hex(model.db[side]));
    else if (line.includes('/dev/kmsg') && mark) model.log[side].push(`[    1.000000] ${mark}`);
    else if (line.startsWith('f=') && line.includes('/db')) {
      const baseline = Number(/last='(0x[0-9a-f]+)'/.exec(line)![1]);
      while (lines[n] !== 'echo "$last $changed"') n++;
      out.push(`${hex(model.db[side]) === '0' ? '0x0' : hex(model.db[side])} ${model.db[side] !== baseline ? 1 : 0}`);
    } else if (line.startsWith('dmesg') && mark) {
      const log = model.log[side];
      out.push(...log.slice(log.findIndex((l) => l.endsWith(mark))));
    } else if (line === 'cat /proc/interrupts') out.push(model.interrupts());
  }
  return `${out.join('\n')}\n`;
}

function modelGuest(model: PairModel, side: Side): GuestExec {
  return {
    name: side,
    async exec(command): Promise<ExecResult> {
      const ok = (stdout = ''): ExecResult => ({ command, stdout, stderr: '', exitCode: 0, durationMs: 1 });
      if (command.includes('@@ntbh:')) return ok(runBatch(model, side, command));
      const reset = /^echo 'c (0x[0-9a-f]+)' > '([^']*\/db)' && cat '[^']*\/db'$/.exec(command);
      if (reset) {
        model.clear(side, Number(reset[1]));
        return ok(hex(model.db[side]));
      }
      const token = /ntbh-mark-\d+-\d+/.exec(command)?.[0];
      if (command.includes('/dev/kmsg') && token) {
        model.log[side].push(`[    1.000000] ${token}`);
        return ok();
      }
      if (command.includes('/proc/sys/kernel/tainted')) return ok('0\n');
      if (command.startsWith('dmesg') && token) {
        const lines = model.log[side];
        return ok(lines.slice(lines.findIndex((l) => l.endsWith(token))).join('\n'));
      }
      if (command === 'cat /proc/interrupts') return ok(model.interrupts());
      return ok();
    },
  };
}

/** What the variant's real modules classify as, with the db_valid_mask the model shows as the observation. */
function capsOf(name: string, side: Side, model: PairModel): Record<string, boolean> {
  return releaseCaps(VARIANTS[name]!.fixtures[side], side, { Ne, Nh }, model.validMask(side));
}

async function runCell(scenario: Awaited<ReturnType<typeof loadScenario>>, epV: string, hostV: string): Promise<CellResult> {
  const model = new PairModel(VARIANTS[epV]!.ep, VARIANTS[hostV]!.host);
  const guests = { ep: modelGuest(model, 'ep'), host: modelGuest(model, 'host') };
  const link: LinkWitness = {
    linkId: 0,
    linkUp: true,
    mark: () => ({ index: model.wire.length }),
    msiCounts: (since) => model.wire.slice(since?.index ?? 0).reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<number, number>()),
    msiDeliveries: () => [],
    events: () => [],
  };
  const emitter = createEmitter();
  const ctx = { ...guests, link, emit: emitter.emit, consoleMark: () => 0, splatsSince: async () => [], timeoutScale: 1 };
  const tools = { ep: new ModelTool(model, 'ep', guests.ep), host: new ModelTool(model, 'host', guests.host) };
  const rig = new (class extends Rig {
    override async tool(side: Side) {
      return tools[side];
    }
    override async linkedTools() {
      return tools;
    }
  })(ctx, scenario, `ep-${epV}__host-${hostV}`);
  rig.caps = { ...capsOf(epV, 'ep', model), ...capsOf(hostV, 'host', model) };
  rig.params = { Nh, Ne };
  rig.observe = { ep: { dyndbg: true, kprobe: false }, host: { dyndbg: true, kprobe: false } };
  rig.msiIrqs = Array.from({ length: Nh }, (_, v) => 27 + v);
  const steps = [];
  for (const step of scenario.steps.filter((s) => ['db-valid-mask', 'doorbell-sweep', 'doorbell-zero', 'doorbell-clear', 'doorbell-multi'].includes(s.type))) {
    const impl = stepImpl(step);
    steps.push((await runStep(rig, step, 60, (out) => impl.run(rig, out))).result);
  }
  return { id: rig.cellId, ep: epV, host: hostV, status: 'PASS', durationMs: 0, capabilities: rig.caps, params: rig.params, steps };
}

t.test('doorbell-interop.yaml agrees with the documented behaviour of every pairing', async (t) => {
  const scenario = await loadScenario(join(import.meta.dirname, '../../scenarios/doorbell-interop.yaml'));
  const cells: CellResult[] = [];
  for (const cell of expandMatrix(scenario)) cells.push(await runCell(scenario, cell.ep, cell.host));

  for (const cell of cells) {
    const bad = cell.steps.flatMap((s) => s.checks.filter((c) => !['PASS', 'XFAIL'].includes(c.status)).map((c) => `${s.id} ${c.id} ${c.status}: ${c.message}`));
    t.same(bad, [], `${cell.id}: only PASS and XFAIL`);
  }
  const all = (id: string) => cells.find((c) => c.id === id)!.steps.flatMap((s) => s.checks);
  t.ok(all('ep-new__host-new').every((c) => c.status === 'PASS'), 'the whole series on both sides: all PASS');
  t.ok(all('ep-old__host-new').some((c) => c.status === 'XFAIL' && c.id.startsWith('db[host-to-ep')), 'an old EP: its host-to-ep db is a known failure');
  t.equal(all('ep-new__host-old').filter((c) => c.id.startsWith('db[ep-to-host bit') && c.status === 'XFAIL').length, 14, 'an old host: db is a number, for each of the 14 bits');
  const sweep = all('ep-stock__host-stock').filter((c) => c.id.startsWith('db[host-to-ep'));
  t.same(
    sweep.slice(0, 2).map((c) => c.value),
    [2, 4],
    'stock EP: host bit i arrives as bit i+1',
  );

  const interop = evaluateInterop(['sweep'], cells);
  t.equal(interop.status, 'PASS', 'a receiver sees the same from every sender');
  t.equal(interop.groups.length, 6);
});

t.test('the interop check would catch a sender-dependent misdelivery', async (t) => {
  const scenario = await loadScenario(join(import.meta.dirname, '../../scenarios/doorbell-interop.yaml'));
  const good = await runCell(scenario, 'old', 'new');
  const broken = await runCell(scenario, 'new', 'new');
  // A new EP that (hypothetically) dropped the legacy offset would ring slot b+1: the host would see bit i-1.
  for (const step of broken.steps) {
    for (const check of step.checks) if (check.id.startsWith('vector[ep-to-host bit') && typeof check.value === 'number' && check.value > 0) check.value -= 1;
  }
  const interop = evaluateInterop(['sweep'], [good, broken]);
  t.equal(interop.status, 'FAIL');
  t.match(interop.groups.find((g) => g.receiver === 'host')!.message, /bit 1 vector: ep old → 1, ep new → 0/);
});

t.test('ntb-bringup.yaml: its doorbell expectations agree with stock kernels', async (t) => {
  const scenario = await loadScenario(join(import.meta.dirname, '../../scenarios/ntb-bringup.yaml'));
  const cell = await runCell(scenario, 'stock', 'stock');
  const checks = cell.steps.flatMap((s) => s.checks);
  t.ok(checks.length > 20, 'the doorbell steps ran');
  t.same(
    checks.filter((c) => !['PASS', 'XFAIL'].includes(c.status)).map((c) => `${c.id}: ${c.message}`),
    [],
  );
});

t.test('release-interop.yaml runs doorbell-interop.yaml steps, expectations and splats', async (t) => {
  const releases = await loadScenario(join(import.meta.dirname, '../../scenarios/release-interop.yaml'));
  const interop = await loadScenario(join(import.meta.dirname, '../../scenarios/doorbell-interop.yaml'));
  // The mw step has its own owner and release-specific checks; everything else must not drift apart.
  const notMw = <T extends { type?: string }>(steps: T[]) => steps.filter((s) => s.type !== 'mw');
  t.same(notMw(releases.steps), notMw(interop.steps), 'steps');
  const expectations = (s: typeof interop) => Object.fromEntries(Object.entries(s.expect).filter(([key]) => !key.startsWith('mw.')));
  t.same(expectations(releases), expectations(interop), 'expectations');
  t.same(releases.splats, interop.splats, 'splats');
  t.same(releases.function, interop.function, 'function');
});

t.test('release-interop.yaml agrees with docs/doorbells.md for every pair of releases', async (t) => {
  const scenario = await loadScenario(join(import.meta.dirname, '../../scenarios/release-interop.yaml'));
  const cells: CellResult[] = [];
  for (const cell of expandMatrix(scenario)) cells.push(await runCell(scenario, cell.ep, cell.host));
  t.equal(cells.length, 16);
  for (const cell of cells) {
    const bad = cell.steps.flatMap((s) => s.checks.filter((c) => !['PASS', 'XFAIL'].includes(c.status)).map((c) => `${s.id} ${c.id} ${c.status}: ${c.message}`));
    t.same(bad, [], `${cell.id}: only PASS and XFAIL`);
  }
  const checks = (id: string) => cells.find((c) => c.id === id)!.steps.flatMap((s) => s.checks);
  const xfails = (id: string) => checks(id).filter((c) => c.status === 'XFAIL');
  t.ok(checks('ep-r7.2__host-r7.2').every((c) => c.status === 'PASS'), 'the merged series on both sides: all PASS');

  // 7.1.8 EP: only the missing db_vector_mask is known; the core hands out db_valid_mask = mask(Ne-2).
  const ep71 = xfails('ep-r7.1__host-r7.2');
  t.ok(ep71.length > 0 && ep71.every((c) => c.id.startsWith('vector_mask[host-to-ep')), '7.1.8 EP next to a 7.2 host: only the vector mask');
  t.same([...new Set(ep71.map((c) => c.value))], [mask(Ne - 2)]);
  t.match(ep71[0]!.message ?? '', /7\.1\.x vntb has no db_vector_mask/);

  // A host ringing `s 0` writes slot 1: a 7.x EP silently never sees it (the spec), a 6.x EP reports bit 0.
  const zeroOn = (id: string) => checks(id).find((c) => c.id.startsWith('db[host-to-ep'))!;
  t.equal(checks('ep-r7.2__host-r6.12').find((c) => c.id === 'db[host-to-ep]')?.status, 'PASS', '7.2 EP: slot 1 not seen');
  t.equal(zeroOn('ep-r6.12__host-r7.2').status, 'XFAIL', '6.12 EP: host bit 0 arrives as bit 1');

  // 6.1/6.12/7.1.8 host: only db_vector_mask differs from the spec.
  const host = xfails('ep-r7.2__host-r7.1');
  t.ok(host.length > 0 && host.every((c) => c.id.startsWith('vector_mask[ep-to-host')), '7.1.8 host: only the vector mask');

  const result = evaluateInterop(['sweep'], cells);
  t.equal(result.status, 'PASS', 'a receiver release sees the same from every sender release');
  t.equal(result.groups.length, 8, 'four receiver releases on each side');
});

t.test('every XFAIL reason names the releases (or our patch set) it stands for', async (t) => {
  for (const file of ['doorbell-interop.yaml', 'release-interop.yaml']) {
    const scenario = await loadScenario(join(import.meta.dirname, '../../scenarios', file));
    const reasons = [...Object.values(scenario.expect).flatMap((e) => (typeof e === 'string' ? [] : e.known.map((k) => k.xfail))), ...scenario.splats.map((s) => s.xfail ?? '')];
    const unnamed = reasons.filter((r) => !/6\.1\b|6\.12|7\.1|7\.2|our old|upstream/.test(r));
    t.same(unnamed, [], `${file}: ${reasons.length} reasons, each names a release`);
  }
});
