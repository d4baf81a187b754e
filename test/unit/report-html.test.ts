import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stamped } from '../../harness/events.ts';
import {
  cellAnchor,
  cellFiles,
  doorbellRows,
  esc,
  phasesFromEvents,
  palette,
  phasesFromRecorded,
  regenerateReport,
  renderReportHtml,
  reportRunFromJson,
  timingSegments,
  writeReportHtml,
} from '../../harness/report/html.ts';

// A real doorbell-interop results.json cut down to two cells and bits 0-1, with one check made to
// fail with markup in its message, a recorded phase list, and a cell whose boot failed.
const fixturePath = new URL('../fixtures/reports/results.json', import.meta.url);
const fixture = () => JSON.parse(readFileSync(fixturePath, 'utf8')) as Record<string, unknown>;
const run = () => reportRunFromJson(fixture());

const count = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].length;

t.test('the matrix grid has a coloured cell per run cell and a blank for each pair not run', async (t) => {
  const html = renderReportHtml(run());
  // EP old/new/stock down, host old/new across: 3 cells run, 3 combinations not in the run.
  t.equal(count(html, /<td class="cell s-/g), 3);
  t.equal(count(html, /<td class="none">/g), 3);
  t.match(html, /<td class="cell s-XFAIL" data-cell="ep-old__host-old" data-status="XFAIL">/);
  t.match(html, /<td class="cell s-FAIL" data-cell="ep-new__host-new" data-status="FAIL">/);
  t.match(html, /<td class="cell s-ERROR" data-cell="ep-stock__host-old" data-status="ERROR">/);
  // Each grid cell links to its section, which exists once.
  for (const id of ['ep-old__host-old', 'ep-new__host-new', 'ep-stock__host-old']) {
    t.ok(html.includes(`href="#${cellAnchor(id)}"`), `${id} linked from the grid`);
    t.equal(count(html, new RegExp(`<details class="cell"( open)? id="${cellAnchor(id)}"`, 'g')), 1, `${id} has one section`);
  }
  // Failures start open, expected failures closed.
  t.ok(html.includes(`<details class="cell" open id="${cellAnchor('ep-new__host-new')}"`));
  t.ok(html.includes(`<details class="cell" open id="${cellAnchor('ep-stock__host-old')}"`));
  t.ok(html.includes(`<details class="cell" id="${cellAnchor('ep-old__host-old')}"`));
  t.ok(html.includes(`<details class="step" open id="${cellAnchor('ep-new__host-new')}--sweep"`), 'the failing step too');
  // Headers carry the release each variant booted.
  t.match(html, /<th>old<br><span class="meta">6\.12\.117 arm64<\/span><\/th>/);
});

t.test('everything from guests and scenarios is escaped; only our own two scripts run', async (t) => {
  const html = renderReportHtml(run());
  t.notOk(html.includes('<script>alert'), 'a check message cannot inject markup');
  t.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; got 0x4'));
  t.notOk(html.includes('<IRQ>'), 'kernel log lines are escaped');
  t.ok(html.includes('&lt;IRQ&gt;'), 'the splat excerpt is there, escaped');
  t.ok(html.includes('BOOT_TIMEOUT: &lt;ep&gt; console'));
  t.equal(count(html, /<script>/g), 2);
  t.equal(esc('\u001b[31mred\u001b[0m <b>'), 'red &lt;b&gt;', 'ANSI sequences dropped');
  t.equal(esc(`a"b'c&`), 'a&quot;b&#39;c&amp;');
});

t.test('the page needs no network', async (t) => {
  const html = renderReportHtml(run());
  t.notMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
  t.notMatch(html, /<link\b/i);
  t.notMatch(html, /@import|url\(/i);
});

t.test('the doorbell table: a row per direction and bit, observed against expected', async (t) => {
  const r = run();
  const sweep = r.cells.find((c) => c.id === 'ep-old__host-old')!.steps.find((s) => s.id === 'sweep')!;
  const rows = doorbellRows(sweep);
  t.same(
    rows.map((row) => `${row.direction} ${row.bit} ${row.receiver}`),
    ['host-to-ep 0 ep', 'host-to-ep 1 ep', 'ep-to-host 0 host', 'ep-to-host 1 host'],
  );
  t.same([...rows[2]!.checks.keys()], ['ring_ok', 'db', 'vector', 'vector_mask', 'vector_kprobe', 'msi_index', 'wire', 'db_after_clear']);
  t.equal(rows[0]!.checks.get('db')!.value, 2);
  const html = renderReportHtml(r);
  t.equal(count(html, /<table class="db">/g), 2, 'one table per sweep that ran (the ERROR cell has none)');
  // Old vntb reports host bit 0 as bit 1: observed 0x2, expected 0x1, the known old behaviour 0x2.
  t.match(html, /<td class="t-XFAIL" title="XFAIL: pre-series vntb[^"]*">0x2<small>exp 0x1, known 0x2<\/small><\/td>/);
  // Wire and MSI index are vector numbers: decimal.
  t.match(html, /<td class="t-PASS" title="PASS">2<\/td><td class="t-PASS" title="PASS">2<\/td>/);
  // The failing check is red in the table and listed with its values.
  t.match(html, /<td class="t-FAIL" title="FAIL: &lt;script&gt;[^"]*">0x4<small>exp 0x2<\/small><\/td>/);
  t.match(html, /<td class="t-/);
  t.equal(doorbellRows(r.cells[0]!.steps.find((s) => s.id === 'mw')!).length, 0, 'no table for steps that do not ring bits');
});

t.test('splats appear with their step, grouped in the index', async (t) => {
  const html = renderReportHtml(run());
  t.match(html, /<h2 id="splats">Splats \(\d+\)<\/h2>/);
  t.match(html, /host: BUG: sleeping function called from invalid context[^<]*<span class="meta">sleeping-in-atomic · in step sweep<\/span>/);
});

t.test('console logs are linked relative to the run directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-html-'));
  for (const side of ['ep', 'host']) {
    mkdirSync(join(dir, 'ep-old__host-old', side), { recursive: true });
    writeFileSync(join(dir, 'ep-old__host-old', side, 'console.log'), 'x');
    writeFileSync(join(dir, 'ep-old__host-old', side, 'qemu.cmdline'), 'x');
  }
  writeFileSync(join(dir, 'ep-old__host-old', 'wire.ndjson'), '');
  const files = await cellFiles(dir, ['ep-old__host-old', 'ep-new__host-new']);
  t.same(files, {
    'ep-old__host-old': ['ep-old__host-old/ep/console.log', 'ep-old__host-old/host/console.log', 'ep-old__host-old/ep/qemu.cmdline', 'ep-old__host-old/host/qemu.cmdline', 'ep-old__host-old/wire.ndjson'],
  });
  const html = renderReportHtml(run(), { files });
  t.ok(html.includes('<a href="ep-old__host-old/ep/console.log">ep/console.log</a>'));
  const odd = renderReportHtml(run(), { files: { 'ep-old__host-old': ['ep-old__host-old/a b#?.log'] } });
  t.ok(odd.includes('href="ep-old__host-old/a%20b%23%3F.log"'), 'path segments are URL-encoded');
});

t.test('timing: recorded phases split the setup step; per-guest phases are not drawn', async (t) => {
  const r = run();
  const cell = r.cells.find((c) => c.id === 'ep-new__host-new')!;
  const phases = phasesFromRecorded(cell.phases!);
  t.same(phases.slice(0, 3), [
    { name: 'boot', ms: 5000 },
    { name: 'modules', ms: 2000, step: 'setup' },
    { name: 'probe', ms: 4000, step: 'setup' },
  ]);
  t.same(phases.at(-1), { name: 'teardown', ms: 800, afterSteps: true });
  const segments = timingSegments(cell);
  const setup = cell.steps.find((s) => s.id === 'setup')!;
  t.same(
    segments.slice(0, 6).map((s) => [s.name, s.ms]),
    [
      ['boot', 5000],
      ['setup: modules', 2000],
      ['setup: probe', 4000],
      ['setup: function-setup', 1500],
      ['setup: host-bind', 300],
      ['setup: rest', setup.durationMs - 7800],
    ],
  );
  t.equal(segments.at(-1)!.name, 'teardown');
  const stepsMs = cell.steps.reduce((a, s) => a + s.durationMs, 0);
  t.equal(
    segments.reduce((a, s) => a + s.ms, 0),
    5000 + stepsMs + 800,
    'the bar adds up to boot + steps + teardown: nothing counted twice',
  );
  const html = renderReportHtml(r);
  t.ok(html.includes('per guest: boot-ready ep 900 ms, boot-ssh ep 1 s, boot-ssh host 4 s'));
});

t.test('a segment name has one colour on the whole page', async (t) => {
  const r = run();
  const colorOf = palette();
  const [a, b] = r.cells.slice(0, 2).map((cell) => timingSegments(cell, [], colorOf));
  const colour = (segments: typeof a, name: string) => segments!.find((s) => s.name === name)?.color;
  t.ok(colour(a, 'sweep'));
  t.equal(colour(a, 'sweep'), colour(b, 'sweep'), 'sweep is drawn alike in a cell with setup phases and one without');
  t.equal(colour(a, 'perf'), colour(b, 'perf'));
  t.not(colour(a, 'sweep'), colour(a, 'perf'));
});

t.test('timing without recorded phases: the event stream, else the steps alone', async (t) => {
  const r = run();
  const cell = r.cells.find((c) => c.id === 'ep-old__host-old')!;
  t.notOk(cell.phases, 'the fixture cell predates recorded phases');
  t.same(
    timingSegments(cell).map((s) => s.name),
    cell.steps.map((s) => s.id),
  );
  const at = (kind: string, extra: object) => ({ kind, time: '', ...extra }) as unknown as Stamped;
  const events = [
    at('phase', { cell: cell.id, phase: 'boot', status: 'start' }),
    at('phase', { cell: cell.id, phase: 'boot', status: 'end', durationMs: 4000 }),
    at('phase', { cell: cell.id, guest: 'ep', phase: 'boot-ssh', status: 'end', durationMs: 1000 }),
    at('step-start', { cell: cell.id, step: 'setup', type: 'setup' }),
    at('phase', { cell: cell.id, phase: 'modules', status: 'end', durationMs: 3000 }),
    at('step-end', { cell: cell.id, step: { id: 'setup' } }),
    at('cell-end', { cell: { id: cell.id } }),
    at('phase', { cell: cell.id, phase: 'teardown', status: 'end', durationMs: 500 }),
    at('phase', { phase: 'kernel-build', status: 'end', durationMs: 9000 }),
  ];
  const byCell = phasesFromEvents(events);
  t.same(byCell, {
    [cell.id]: [
      { name: 'boot', ms: 4000 },
      { name: 'modules', ms: 3000, step: 'setup' },
      { name: 'teardown', ms: 500, afterSteps: true },
    ],
  });
  const names = timingSegments(cell, byCell[cell.id]).map((s) => s.name);
  t.same(names.slice(0, 3), ['boot', 'setup: modules', 'setup: rest']);
  t.equal(names.at(-1), 'teardown');
});

t.test('written 0600 next to results.json; ntbh report regenerates the same page', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-html-'));
  writeFileSync(join(dir, 'results.json'), JSON.stringify(fixture()));
  const events = [{ kind: 'phase', cell: 'ep-old__host-old', phase: 'boot', status: 'end', durationMs: 4000, time: '' }];
  writeFileSync(join(dir, 'events.ndjson'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n{"kind":"pha`);
  const first = await writeReportHtml(dir, run(), { 'ep-old__host-old': [{ name: 'boot', ms: 4000 }] });
  t.equal(statSync(first).mode & 0o777, 0o600);
  const html = readFileSync(first, 'utf8');
  t.equal(await regenerateReport(dir), first);
  t.equal(readFileSync(first, 'utf8'), html, 'regenerated from results.json + events.ndjson (a torn last line ignored): identical');
  t.ok(html.includes('title="boot: 4 s"'));
});

t.test('a file that is not a results.json is a clear input error', async (t) => {
  t.throws(() => reportRunFromJson({ hello: 1 }), { name: 'HarnessError', code: 'BAD_RESULTS', kind: 'input' });
  const dir = mkdtempSync(join(tmpdir(), 'ntbh-html-'));
  await t.rejects(regenerateReport(dir), { name: 'HarnessError', code: 'NO_RESULTS' });
  writeFileSync(join(dir, 'results.json'), '{');
  await t.rejects(regenerateReport(dir), { name: 'HarnessError', code: 'BAD_RESULTS' });
});
