import t from 'tap';
import { z } from 'zod';
import { KCIDB_PATH, kcidbExport, pathComponent } from '../../harness/report/kcidb.ts';
import { renderMarkdownSummary } from '../../harness/report/markdown.ts';
import { parseScenario } from '../../harness/scenario/load.ts';
import { cellError } from '../../harness/scenario/execute.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { buildRunResult } from '../../harness/scenario/run.ts';
import type { CellKernel, CellResult, CheckResult, Status } from '../../harness/results/model.ts';

// KCIDB I/O schema v5 as docs/kcidb.md describes it: required fields, id and origin patterns, the
// status enum, dotted paths; no null anywhere; no property outside the schema's lists.
const origin = z.string().regex(/^[a-z0-9_]+$/);
const oid = z.string().regex(/^[a-z0-9_]+:[^\0]*$/);
const status = z.enum(['FAIL', 'ERROR', 'MISS', 'PASS', 'DONE', 'SKIP']);
const checkout = z.strictObject({ id: oid, origin, comment: z.string().optional(), git_commit_hash: z.string().regex(/^[0-9a-f]{40}$/).optional(), git_repository_url: z.string().regex(/^https:\/\//).optional(), valid: z.boolean().optional(), misc: z.record(z.string(), z.unknown()).optional() });
const build = z.strictObject({ id: oid, origin, checkout_id: oid, architecture: z.string().regex(/^[a-z0-9_]*$/).optional(), config_name: z.string().optional(), comment: z.string().optional(), status: status.optional(), misc: z.record(z.string(), z.unknown()).optional() });
const test = z.strictObject({
  id: oid,
  origin,
  build_id: oid,
  path: z.string().regex(KCIDB_PATH),
  status,
  duration: z.number().optional(),
  environment: z.strictObject({ comment: z.string().optional(), misc: z.record(z.string(), z.unknown()).optional() }).optional(),
  log_url: z.string().url().optional(),
  log_excerpt: z.string().max(16384).optional(),
  misc: z.record(z.string(), z.unknown()).optional(),
});
const issue = z.strictObject({ id: oid, version: z.number().int().min(0), origin, comment: z.string().optional(), report_url: z.string().url().optional(), culprit: z.strictObject({ code: z.boolean().optional(), tool: z.boolean().optional(), harness: z.boolean().optional() }).optional() });
const incident = z.strictObject({ id: oid, origin, issue_id: oid, issue_version: z.number().int().min(0), build_id: oid.optional(), test_id: oid.optional(), present: z.boolean().optional() });
const kcidb = z.strictObject({ version: z.strictObject({ major: z.literal(5), minor: z.number().int().min(0).max(3) }), checkouts: z.array(checkout), builds: z.array(build), tests: z.array(test), issues: z.array(issue), incidents: z.array(incident) });

const scenario = parseScenario(['name: kcidb-test', 'matrix: {ep: [old, new], host: [stock]}', 'function: {type: pci-epf-vntb}', 'steps:', '  - {id: link, type: link-up}', '  - {id: sweep, type: doorbell-sweep, direction: host-to-ep, bits: bit(0)}'].join('\n'));

const kernel = (side: 'ep' | 'host', name: string): CellKernel => ({ release: '6.12.117', source: 'debian:6.12', sourceId: 'debian:linux-source-6.12=6.12.117-1~deb12u1', package: 'linux-source-6.12', version: '6.12.117-1~deb12u1', sha256: 'ab'.repeat(32), name, arch: side === 'ep' ? 'arm64' : 'x86_64', patches: name === 'stock' ? [] : [name], fragments: [], key: `${side}-${name}-key` });
const check = (id: string, status: Status, on: 'ep' | 'host', message?: string): CheckResult => ({ id, check: id.split('[')[0]!, status, on, value: 1, ...(message ? { message } : {}) });

const old: CellResult = {
  id: 'ep-old__host-stock',
  ep: 'old',
  host: 'stock',
  kernels: { ep: kernel('ep', 'old'), host: kernel('host', 'stock') },
  status: 'XFAIL',
  durationMs: 1,
  capabilities: {},
  params: {},
  steps: [
    { id: 'setup', type: 'setup', status: 'PASS', durationMs: 5000, values: {}, checks: [check('driver_bound', 'PASS', 'host')], splats: [] },
    { id: 'link', type: 'link-up', status: 'ERROR', durationMs: 100, values: {}, checks: [check('link[ep]', 'ERROR', 'ep', 'ssh lost')], splats: [] },
    { id: 'sweep', type: 'doorbell-sweep', status: 'XFAIL', durationMs: 100, values: {}, checks: [{ ...check('db[host-to-ep bit 0]', 'XFAIL', 'ep', 'old vntb shifts bits (https://example.org/b/1) — bit 0 read as 1'), params: { i: 0 } }], splats: [] },
  ],
};
const cells = expandMatrix(scenario);
// The new EP's kernel never built: every step ERROR, "not run".
const unbuilt = cellError(cells[1]!, scenario, new Error('kernel build failed'));
const run = buildRunResult(scenario, [old, unbuilt], { startedAt: new Date('2026-11-30T02:00:00Z'), durationMs: 1000 });

t.test('the export validates against the KCIDB v5 shape, references resolve', async (t) => {
  const data = kcidbExport(run, { artifactsUrl: 'https://ci.example.org/runs/42/' });
  const parsed = kcidb.safeParse(data);
  t.ok(parsed.success, parsed.success ? 'valid' : JSON.stringify(parsed.error.issues.slice(0, 3)));
  const ids = (list: Record<string, unknown>[]) => new Set(list.map((x) => x.id));
  const builds = ids(data.builds);
  const checkouts = ids(data.checkouts);
  const tests = ids(data.tests);
  t.equal(tests.size, data.tests.length, 'test ids are unique');
  t.ok(data.builds.every((b) => checkouts.has(b.checkout_id) || b.checkout_id === 'ntbh:checkout:unknown'), 'builds name exported checkouts');
  t.ok(data.tests.every((x) => builds.has(x.build_id)), 'tests name exported builds');
  t.ok(data.incidents.every((i) => tests.has(i.test_id) && data.issues.some((x) => x.id === i.issue_id)), 'incidents name tests and issues');
  t.equal(data.checkouts.length, 2, 'a checkout per source and patch set: Debian 6.12 as is, and with the old patches');
});

t.test('statuses and paths as KCIDB defines them', async (t) => {
  const data = kcidbExport(run);
  const byPath = (cell: string, path: string) => data.tests.find((x) => (x.misc as { cell: string }).cell === cell && x.path === path);
  t.equal(byPath('ep-old__host-stock', 'ntbh.kcidb-test.setup.driver_bound')?.status, 'PASS');
  t.equal(byPath('ep-old__host-stock', 'ntbh.kcidb-test.link.link.ep')?.status, 'ERROR', 'an error inside a step that ran');
  const xfail = byPath('ep-old__host-stock', 'ntbh.kcidb-test.sweep.db.host-to-ep_bit_0')!;
  t.equal(xfail.status, 'FAIL', 'XFAIL: the code is faulty');
  t.equal((xfail.misc as { ntbh_status: string }).ntbh_status, 'XFAIL');
  t.equal(data.issues.length, 1);
  t.match(data.issues[0], { comment: 'old vntb shifts bits (https://example.org/b/1)', report_url: 'https://example.org/b/1', culprit: { code: true } });
  t.match(data.incidents[0], { test_id: xfail.id, present: true });
  t.equal(xfail.build_id, 'ntbh:build:arm64:ep-old-key', "the check's guest's build");
  t.equal((xfail.misc as { peer_build_id: string }).peer_build_id, 'ntbh:build:x86_64:host-stock-key');
  const missed = data.tests.filter((x) => (x.misc as { cell: string }).cell === 'ep-new__host-stock');
  t.same([...new Set(missed.map((x) => x.status))], ['MISS'], 'a cell that never ran: MISS');
  t.ok(data.tests.every((x) => KCIDB_PATH.test(x.path as string)));
  t.equal(pathComponent('host-to-ep bit 3'), 'host-to-ep_bit_3');
  t.equal(pathComponent('any: BUG at x.c'), 'any_BUG_at_x_c');
  t.equal(pathComponent('...'), '_');
  t.throws(() => kcidbExport(run, { origin: 'Bad Origin' }), { code: 'BAD_OPTIONS' });
  t.equal(kcidbExport(run, { artifactsUrl: 'https://ci.example.org/r/' }).tests[0]!.log_url, 'https://ci.example.org/r/ep-old__host-stock/ep/console.log'.replace('/ep/', '/host/'), 'log of the guest that observed');
});

t.test('summary.md: verdict, matrix, problems, expected failures', async (t) => {
  const md = renderMarkdownSummary(run);
  t.match(md, /^## 💥 ERROR ntbh kcidb-test/);
  t.match(md, '| cell | ep | host | setup | link | sweep | cell |');
  t.match(md, '| ep-old__host-stock | old 6.12.117 | stock 6.12.117 | ✅ | 💥 | ☑️ | ');
  t.match(md, '### Problems');
  t.match(md, '`link.link[ep]`: ssh lost');
  t.match(md, '<details><summary>Expected failures: 1 known behaviour</summary>');
  t.match(md, '`sweep.db`: old vntb shifts bits (https://example.org/b/1) — 1 cell');
  t.notMatch(md, /\n\| [^\n]*<script/, 'no raw HTML from messages');
});
