import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stripAnsi from 'strip-ansi';
import { HarnessError } from '../../harness/errors.ts';
import { createEmitter } from '../../harness/events.ts';
import type { GuestExec } from '../../harness/guest/types.ts';
import type { KernelArtifact, KernelMetadata } from '../../harness/kernel/build.ts';
import type { LinkWitness } from '../../harness/link/types.ts';
import { attachReporters } from '../../harness/report/index.ts';
import { resultsJson } from '../../harness/report/json.ts';
import { renderJunit } from '../../harness/report/junit.ts';
import { renderSummary } from '../../harness/report/summary.ts';
import { renderTap } from '../../harness/report/tap.ts';
import { cellKernel } from '../../harness/run/cell-kernels.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import type { CellContext } from '../../harness/scenario/context.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { buildRunResult, runScenario } from '../../harness/scenario/run.ts';
import type { CellKernel, CellResult, CheckResult, Status, StepResult } from '../../harness/results/model.ts';

const scenario = parseScenario(
  [
    'name: report-test',
    'matrix: {ep: [old, new], host: [stock, new]}',
    'function: {type: pci-epf-vntb}',
    'steps:',
    '  - {id: link, type: link-up}',
    '  - {id: sweep, type: doorbell-sweep, direction: host-to-ep, bits: bit(0)}',
    '  - {id: perf, type: perf}',
  ].join('\n'),
);

const check = (id: string, status: Status, value: CheckResult['value'], message?: string): CheckResult => ({ id, check: id.split('[')[0]!, status, value, ...(message ? { message } : {}) });
const step = (id: string, checks: CheckResult[], status?: Status): StepResult => ({
  id,
  type: id,
  status: status ?? (checks.some((c) => c.status === 'FAIL') ? 'FAIL' : checks.some((c) => c.status === 'XFAIL') ? 'XFAIL' : 'PASS'),
  durationMs: 1200,
  values: Object.fromEntries(checks.map((c) => [c.id, c.value])),
  checks,
  splats: [],
});

/** Kernels as the runner reports them: Debian 6.12 variants; the `new` EP is Debian's 7.2 (a `kernels:` override), with its download's sha256. */
function kernel(side: 'ep' | 'host', name: string, debian72 = false): CellKernel {
  return {
    release: debian72 ? '7.2.13' : '6.12.117',
    source: debian72 ? 'debian:7.2' : 'debian:6.12',
    sourceId: debian72 ? 'debian:linux-source-7.2=7.2.13-1' : 'debian:linux-source-6.12=6.12.117-1~deb12u1',
    ...(debian72 ? { package: 'linux-source-7.2', version: '7.2.13-1', sha256: 'ab'.repeat(32) } : {}),
    name,
    arch: side === 'ep' ? 'arm64' : 'x86_64',
    patches: ['old', 'new'].includes(name) && !debian72 ? [name] : [],
    fragments: [],
    key: `${side}-${name}-key`,
  };
}

function cell(ep: string, host: string, epDb: number, perfMbps: number): CellResult {
  const steps = [
    step('setup', [check('configured', 'PASS', true), check('msi_vectors', 'PASS', 16)]),
    step('link', [check('link[ep]', 'PASS', true), check('link[host]', 'PASS', true)]),
    step('sweep', [check('db[host-to-ep bit 0]', ep === 'old' ? 'XFAIL' : 'PASS', epDb, ep === 'old' ? 'old vntb shifts bits' : undefined)]),
    step('perf', [check('completed[ep-to-host]', perfMbps > 0 ? 'PASS' : 'FAIL', perfMbps > 0, perfMbps > 0 ? undefined : 'expected true, got false — no result within 300000 ms: hang <&>\u001b[31m\u0007')]),
  ];
  const status = steps.some((s) => s.status === 'FAIL') ? 'FAIL' : steps.some((s) => s.status === 'XFAIL') ? 'XFAIL' : 'PASS';
  return { id: `ep-${ep}__host-${host}`, ep, host, kernels: { ep: kernel('ep', ep, ep === 'new'), host: kernel('host', host) }, status, durationMs: 61_000, capabilities: { 'ep.vntb_zero_based_vectors': ep !== 'old' }, params: { Nh: 16, Ne: 16 }, steps };
}

const cells = [cell('old', 'stock', 2, 20), cell('old', 'new', 2, 21), cell('new', 'stock', 1, 19), cell('new', 'new', 1, 0)];
const run = buildRunResult(scenario, cells, { startedAt: new Date('2026-11-23T12:00:00Z'), durationMs: 250_000 });

t.test('run status and exit code', async (t) => {
  t.equal(run.status, 'FAIL');
  t.equal(run.exitCode, 1);
  t.equal(run.totals.XFAIL, 2);
  t.equal(run.totals.FAIL, 1);
  t.equal(run.interop.status, 'PASS', 'each EP variant sees the same from both hosts');
  const clean = buildRunResult(scenario, cells.slice(0, 3), { startedAt: new Date(), durationMs: 1 });
  t.equal(clean.status, 'XFAIL');
  t.equal(clean.exitCode, 0, 'XFAIL counts as a pass');
});

t.test('results.json has the shape the issue asks for', async (t) => {
  const json = JSON.parse(JSON.stringify(resultsJson(run)));
  t.equal(json.status, 'FAIL');
  t.equal(json.cells.length, 4);
  const c = json.cells[0];
  for (const key of ['id', 'ep', 'host', 'status', 'steps', 'capabilities', 'durationMs']) t.ok(key in c, `cell has ${key}`);
  t.same([c.id, c.ep, c.host, c.status], ['ep-old__host-stock', 'old', 'stock', 'XFAIL']);
  const sweep = c.steps.find((s: { id: string }) => s.id === 'sweep');
  t.same(Object.keys(sweep).slice(0, 3), ['id', 'type', 'status']);
  t.same(sweep.values, { 'db[host-to-ep bit 0]': 2 }, 'measured values keyed by check id');
  t.equal(sweep.checks[0].message, 'old vntb shifts bits');
  t.ok(Array.isArray(json.interop.groups));
  t.same(Object.keys(json.totals).sort(), ['ERROR', 'FAIL', 'PASS', 'SKIP', 'XFAIL', 'XPASS']);
});

t.test('results.json: every cell names its kernels', async (t) => {
  const json = JSON.parse(JSON.stringify(resultsJson(run)));
  t.same(Object.keys(json.cells[0]).slice(0, 5), ['id', 'ep', 'host', 'kernels', 'status']);
  t.same(json.cells[0].kernels.ep, {
    release: '6.12.117',
    source: 'debian:6.12',
    sourceId: 'debian:linux-source-6.12=6.12.117-1~deb12u1',
    name: 'old',
    arch: 'arm64',
    patches: ['old'],
    fragments: [],
    key: 'ep-old-key',
  });
  const r72 = json.cells[2].kernels.ep;
  t.same([r72.release, r72.source, r72.package, r72.version, r72.sha256], ['7.2.13', 'debian:7.2', 'linux-source-7.2', '7.2.13-1', 'ab'.repeat(32)]);
  t.equal(json.cells[2].kernels.host.arch, 'x86_64');
  const unbuilt = JSON.parse(JSON.stringify(resultsJson(buildRunResult(scenario, [{ ...cells[0]!, kernels: undefined }], { startedAt: new Date(), durationMs: 1 }))));
  t.same(unbuilt.cells[0].kernels, {}, 'a cell whose kernels never built still has the field');
});

/** Enough of XML to catch what breaks CI parsers: balanced tags, quoted attributes, no raw & or <. */
function wellFormed(xml: string): string | undefined {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    if (/[<>]|&(?!(amp|lt|gt|quot|apos);)/.test(text)) return `bad text before ${m[0]}: ${text}`;
    last = tag.lastIndex;
    if (m[1]) {
      if (stack.pop() !== m[2]) return `unbalanced </${m[2]}>`;
    } else if (!m[4]) stack.push(m[2]!);
  }
  if (body.slice(last).trim()) return `trailing text ${body.slice(last)}`;
  if (stack.length) return `unclosed ${stack.join(',')}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml)) return 'XML-invalid control characters';
  return undefined;
}

t.test('JUnit: well-formed, failures vs errors, xfail as skipped', async (t) => {
  const xml = renderJunit(run);
  t.equal(wellFormed(xml), undefined);
  t.match(xml, /<testsuites name="report-test" tests="\d+" failures="1" errors="0" skipped="2"/);
  t.match(xml, /<testsuite name="report-test\/ep-new__host-new" tests="6" failures="1"/);
  t.match(xml, /<failure message="expected true, got false — no result within 300000 ms: hang &lt;&amp;&gt;" type="FAIL">/);
  t.match(xml, /<skipped message="old vntb shifts bits" type="xfail"\/>/);
  t.match(xml, /<testsuite name="report-test\/ep-new__host-stock"[^>]*>\n {4}<properties>\n {6}<property name="ep\.release" value="7\.2\.13"\/>/, 'the kernels are the suite properties');
  t.match(xml, /<property name="ep\.sha256" value="(ab){32}"\/>/);
  t.match(xml, /<property name="host\.source_id" value="debian:linux-source-6\.12=6\.12\.117-1~deb12u1"\/>/);
  t.match(xml, /<property name="ep\.patches" value="old"\/>/);
  t.notMatch(xml, /\u001b/, 'ANSI stripped');
  const broken = buildRunResult(scenario, [{ ...cells[0]!, status: 'ERROR', steps: [{ ...cells[0]!.steps[0]!, checks: [], status: 'ERROR', message: 'SSH_LOST: gone' }] }], { startedAt: new Date(), durationMs: 1 });
  t.match(renderJunit(broken), /<error message="SSH_LOST: gone" type="ERROR">/);
});

t.test('TAP 14', async (t) => {
  const tap = renderTap(run);
  t.match(tap, /^TAP version 14\n1\.\.5\n# Subtest: ep-old__host-stock\n {4}1\.\.4\n {4}# kernels: ep 6\.12\.117 arm64, debian:6\.12 \+ old; host 6\.12\.117 x86_64, debian:6\.12\n/);
  t.match(tap, /# Subtest: ep-new__host-new\n {4}1\.\.4\n {4}# kernels: ep 7\.2\.13 arm64, debian:7\.2; host 6\.12\.117 x86_64, debian:6\.12 \+ new\n/);
  t.match(tap, / {8}not ok 1 - db\[host-to-ep bit 0\] # TODO old vntb shifts bits\n/);
  t.match(tap, / {8}not ok 1 - completed\[ep-to-host\]\n {10}---\n {10}message: "expected true, got false/);
  t.match(tap, /\nnot ok 4 - ep-new__host-new\n/);
  t.match(tap, /\nok 1 - ep-old__host-stock\n/, 'a cell with only XFAILs passes');
});

t.test('terminal summary fits 100 columns and names the problems', async (t) => {
  const text = stripAnsi(renderSummary(run, { color: true }));
  for (const line of text.split('\n').filter((l) => !l.startsWith('  FAIL'))) t.ok(line.length <= 100, `≤ 100 columns: ${line}`);
  t.match(text, /cell\s+setup link\s+sweep perf\s+cell/);
  t.match(text, /ep-old__host-stock\s+PASS\s+PASS\s+XFAIL PASS\s+XFAIL/);
  t.match(text, /FAIL\s+ep-new__host-new perf completed\[ep-to-host\]: expected true, got false/);
  t.match(text, /status: FAIL\s+exit 1/);
  t.match(text, /interop PASS/);
  t.match(text, /\nkernels\n  ep   old    6\.12\.117 arm64, debian:6\.12 \+ old  \[debian:linux-source-6\.12=6\.12\.117-1~deb12u1\]\n  host stock  6\.12\.117 x86_64, debian:6\.12  \[/);
  t.match(text, /\n  ep   new    7\.2\.13 arm64, debian:7\.2  \[debian:linux-source-7\.2=7\.2\.13-1\]\n/);
  t.equal(text.match(/^ {2}(ep|host) +\S+ +\d/gm)?.length, 4, 'one line per kernel, not per cell');
  t.notMatch(renderSummary(run, { color: false }), /\u001b/, 'no colour when asked');
});

t.test('attachReporters writes every file from the event stream', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-report-'));
  const emitter = createEmitter();
  let terminal = '';
  const reporters = await attachReporters(emitter, { dir, write: (s) => (terminal += s), color: false });
  emitter.emit({ kind: 'run-start', scenario: 'report-test', cells: cells.map(({ id, ep, host }) => ({ id, ep, host })), strict: false });
  emitter.emit({ kind: 'phase', cell: cells[0]!.id, guest: 'ep', phase: 'boot', status: 'end', durationMs: 1100 });
  for (const c of cells) emitter.emit({ kind: 'cell-end', cell: c });
  emitter.emit({ kind: 'run-end', run });
  const paths = await reporters.close();
  t.same(
    paths.map((p) => p.slice(dir.length + 1)),
    ['events.ndjson', 'results.json', 'junit.xml', 'results.tap', 'summary.md', 'kcidb.json', 'report.html'],
  );
  t.equal([...readFileSync(join(dir, 'report.html'), 'utf8').matchAll(/<td class="cell s-/g)].length, cells.length, 'report.html has the matrix grid');
  const events = readFileSync(join(dir, 'events.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(
    events.map((e) => e.kind),
    ['run-start', 'phase', 'cell-end', 'cell-end', 'cell-end', 'cell-end', 'run-end'],
  );
  t.ok(events.every((e) => typeof e.time === 'string'), 'events are time-stamped');
  t.equal(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).status, 'FAIL');
  t.match(terminal, /FAIL\s+ep-new__host-new \(1m01s\) ep 7\.2\.13, host 6\.12\.117\n/, 'each finished cell names its releases');
});

t.test('a reporter that throws is detached, the run goes on', async (t) => {
  const emitter = createEmitter();
  const seen: string[] = [];
  const stderr = process.stderr.write;
  process.stderr.write = () => true;
  emitter.on(() => {
    throw new Error('broken reporter');
  });
  emitter.on((e) => seen.push(e.kind));
  emitter.emit({ kind: 'log', level: 'info', message: 'a' });
  emitter.emit({ kind: 'log', level: 'info', message: 'b' });
  process.stderr.write = stderr;
  t.same(seen, ['log', 'log']);
});

t.test('runScenario: kernels from the runner, releases from the guests, on every cell result and cell-end', async (t) => {
  const emitter = createEmitter();
  const ends: CellResult[] = [];
  emitter.on((e) => void (e.kind === 'cell-end' && ends.push(e.cell)));
  // Guests that answer the capability probe with their `uname -r` and succeed at everything else.
  const guest = (name: string, release: string): GuestExec => ({
    name,
    async exec(command) {
      const stdout = command.includes('uname:') ? `uname:${release}\nkallsyms:1\n` : command.includes('tainted') ? '0\n' : '';
      return { command, stdout, stderr: '', exitCode: 0, durationMs: 1 };
    },
  });
  const link: LinkWitness = { linkId: 0, linkUp: true, msiCounts: () => new Map(), msiDeliveries: () => [], mark: () => ({ index: 0 }), events: () => [] };
  const result = await runScenario(
    scenario,
    async (c) => {
      const kernels = c.ep === 'old' ? { host: kernel('host', c.host) } : { ep: kernel('ep', c.ep, true), host: kernel('host', c.host) };
      emitter.emit({ kind: 'kernels', cell: c.id, kernels });
      if (c.ep === 'old') throw new HarnessError('kernel old/arm64 failed to build', { code: 'KERNEL_BUILD', kind: 'infra', phase: 'kernel-build' });
      const ctx: CellContext = {
        ep: guest('ep', '7.2.13+guest'),
        host: guest('host', '6.12.117'),
        link,
        emit: () => undefined,
        consoleMark: () => 0,
        splatsSince: async () => [],
        timeoutScale: 1,
      };
      return { ctx, dispose: async () => undefined };
    },
    { emitter, cells: expandMatrix(scenario).filter((c) => c.host === 'stock') },
  );
  const [unbuilt, booted] = result.cells as [CellResult, CellResult];
  t.same(Object.keys(unbuilt.kernels ?? {}), ['host'], 'the side that built is named even though the cell never booted');
  t.equal(unbuilt.status, 'ERROR');
  t.equal(booted.kernels?.ep?.release, '7.2.13+guest', "the release is the guest's own uname -r");
  t.equal(booted.kernels?.ep?.sha256, 'ab'.repeat(32));
  t.equal(booted.kernels?.host?.release, '6.12.117');
  t.same(
    ends.map((c) => [c.id, c.kernels?.ep?.release ?? null, c.kernels?.host?.release]),
    [
      ['ep-old__host-stock', null, '6.12.117'],
      ['ep-new__host-stock', '7.2.13+guest', '6.12.117'],
    ],
    'cell-end events carry them too (the terminal line and events.ndjson)',
  );
});

t.test('cellKernel: from the kernel cache metadata, with and without Debian provenance', async (t) => {
  const metadata = (source: KernelMetadata['source']): KernelArtifact => ({
    key: 'f'.repeat(64),
    dir: '/cache/kernels/arm64-r7.2-ffff',
    arch: 'arm64',
    name: 'r7.2',
    image: '/cache/kernels/arm64-r7.2-ffff/Image',
    modulesRoot: '/cache/kernels/arm64-r7.2-ffff/modules',
    release: '7.2.13',
    metadata: { source } as KernelMetadata,
    cached: true,
  });
  const spec = { name: 'r7.2', source: { kind: 'debian' as const, version: '7.2' }, patches: [], fragments: ['extra.config'] };
  const debian = cellKernel(
    spec,
    metadata({ spec: 'debian:7.2', id: 'debian:linux-source-7.2=7.2.13-1', label: 'debian linux-source-7.2 7.2.13-1', package: 'linux-source-7.2', version: '7.2.13-1', upstream: '7.2.13', file: 'linux-source-7.2_7.2.13-1_all.deb', sha256: 'cd'.repeat(32), suite: 'sid' }),
  );
  t.same(debian, {
    release: '7.2.13',
    source: 'debian:7.2',
    sourceId: 'debian:linux-source-7.2=7.2.13-1',
    package: 'linux-source-7.2',
    version: '7.2.13-1',
    file: 'linux-source-7.2_7.2.13-1_all.deb',
    sha256: 'cd'.repeat(32),
    name: 'r7.2',
    arch: 'arm64',
    patches: [],
    fragments: ['extra.config'],
    key: 'f'.repeat(64),
  });
  const path = cellKernel({ ...spec, name: 'mine', source: { kind: 'path', path: '/src/linux' } }, metadata({ spec: 'path:/src/linux', id: 'path:/src/linux@0123abcd+dirty:99aa', label: '/src/linux' }));
  t.same([path.source, path.sourceId, 'sha256' in path, 'package' in path], ['path:/src/linux', 'path:/src/linux@0123abcd+dirty:99aa', false, false]);
});

t.test('summary: one expected-failure line per reason, whatever evidence each check appended', async (t) => {
  const reason = 'upstream regression: ntb_tool parses peer_mw_trans with %llu:%zu';
  const hex = (label: string, dev: string) => check(`hex_trans[${label}]`, 'XFAIL', false, `${reason} — echo '0x0000000004a40000:4096' > /sys/kernel/debug/ntb_tool/${dev}/peer0/peer_mw_trans0: EINVAL`);
  const mwCell = (ep: string, host: string): CellResult => ({ ...cell(ep, host, 1, 20), steps: [step('mw', [hex('host-to-ep', '0000:01:00.0'), hex('ep-to-host', 'pci-epf-vntb.0')])], status: 'XFAIL' });
  const text = stripAnsi(renderSummary(buildRunResult(scenario, [mwCell('old', 'stock'), mwCell('new', 'stock')], { startedAt: new Date(), durationMs: 1 }), { color: false }));
  const lines = text.split('\n').filter((l) => l.includes('mw.hex_trans'));
  t.equal(lines.length, 1, text);
  t.match(lines[0], /^ {2}XFAIL mw\.hex_trans: upstream regression: ntb_tool parses .*\S — 2 cells, 4 checks$/, 'a long reason is cut, the counts stay');
  t.ok(lines[0]!.length <= 100, `≤ 100 columns: ${lines[0]}`);
});
