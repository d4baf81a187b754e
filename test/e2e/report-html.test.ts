// report.html of a real run, opened in a real browser: ntb-bringup (stock 6.12 EP and host, one cell)
// runs through the link, then Debian's Chromium loads the page headless. The page must load without
// a console message or script error, its DOM must show the matrix grid with the run's cells and
// statuses and the doorbell table, and a screenshot is kept in the run's results directory.
import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { regenerateReport } from '../../harness/report/html.ts';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

interface Results {
  cells: { id: string; status: string; steps: { id: string; type: string }[] }[];
}

/**
 * Headless Chromium on a file: --dump-dom prints the DOM after load (scripts have run), and with
 * --enable-logging=stderr every console message and uncaught exception is an `INFO:CONSOLE:<line>]` line
 * on stderr. Root needs --no-sandbox. A private profile directory, removed afterwards.
 */
async function chromium(file: string, extra: string[]): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  const profile = await mkdtemp(join(tmpdir(), 'ntbh-chromium-'));
  try {
    const result = await execa(
      'chromium',
      ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0', ...extra, pathToFileURL(file).href],
      { reject: false, timeout: 120_000, killSignal: 'SIGTERM', stdin: 'ignore' },
    );
    // Nothing of that browser may outlive it.
    const left = await execa('pgrep', ['-f', profile], { reject: false });
    for (const pid of left.stdout.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode };
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The page's own console output and uncaught errors, as Chromium logs them. */
function consoleLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /:CONSOLE[:(]\d+\)?\]|Uncaught /.test(line));
}

t.teardown(() => teardownAll());

t.test('the detector sees a broken page (so a clean page means something)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ntbh-broken-'));
  const page = join(dir, 'broken.html');
  // The report's own error trap, then a script that throws.
  const { ERROR_TRAP } = await import('../../harness/report/html-assets.ts');
  await writeFile(page, `<!DOCTYPE html><html><head><script>${ERROR_TRAP}</script></head><body><pre id="js-errors"></pre><script>console.error('boom');undefinedFunction();</script></body></html>`);
  const result = await chromium(page, ['--dump-dom']);
  t.equal(result.exitCode, 0, 'chromium --headless runs as root with --no-sandbox');
  t.match(result.stdout, /data-js-errors="1"/, 'the trap wrote the error into the DOM');
  t.match(result.stdout, /undefinedFunction is not defined/);
  const lines = consoleLines(result.stderr);
  t.ok(lines.some((l) => l.includes('"boom"')), 'console.error is detected');
  t.ok(lines.some((l) => l.includes('Uncaught ReferenceError')), 'an uncaught exception is detected');
  await rm(dir, { recursive: true, force: true });
});

t.test('report.html of a real ntb-bringup run loads in headless Chromium and shows the matrix', async (t) => {
  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-report-html-'));
  t.comment(`artifacts: ${dir}`);
  await runCommand(join(repoRoot, 'scenarios', 'ntb-bringup.yaml'), { results: dir, timeoutScale: 1, log });
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  const report = join(dir, 'report.html');
  t.ok(existsSync(report), 'the run wrote report.html next to results.json');
  const written = await readFile(report, 'utf8');

  const page = await chromium(report, ['--dump-dom']);
  t.equal(page.exitCode, 0);
  t.same(consoleLines(page.stderr), [], 'no console message, no uncaught error');
  const dom = page.stdout;
  t.notMatch(dom, /data-js-errors=/, 'the error trap caught nothing');
  t.match(dom, new RegExp(`<html lang="en" data-ready="${results.cells.length}">`), 'the page script ran to its end and counted the grid');

  // The grid: one coloured cell per result cell, each with the cell's status.
  const gridCells = [...dom.matchAll(/<td class="cell s-(\w+)" data-cell="([^"]+)" data-status="(\w+)">/g)].map((m) => ({ id: m[2], status: m[3], colour: m[1] }));
  t.same(
    gridCells,
    results.cells.map((c) => ({ id: c.id, status: c.status, colour: c.status })),
    'the grid shows every cell with its status',
  );
  for (const cell of results.cells) {
    t.match(dom, new RegExp(`<details class="cell"( open)? id="cell-${cell.id}" data-status="${cell.status}">`), `${cell.id} opens to its section`);
    for (const step of cell.steps) t.ok(dom.includes(`id="cell-${cell.id}--${step.id}"`), `${cell.id}: step ${step.id} listed`);
    t.ok(dom.includes(`href="${cell.id}/ep/console.log"`) && dom.includes(`href="${cell.id}/host/console.log"`), `${cell.id}: both consoles linked`);
    t.ok(existsSync(join(dir, cell.id, 'ep', 'console.log')), 'the linked console exists');
  }
  // ntb-bringup rings bit 0 each way: the doorbell table has both rows.
  t.match(dom, /<table class="db">/);
  t.match(dom, /<td>host-to-ep<\/td><td>0<\/td><td>ep<\/td>/);
  t.match(dom, /<td>ep-to-host<\/td><td>0<\/td><td>host<\/td>/);
  t.match(dom, /<div class="bar"/, 'timing bars');

  const shot = join(dir, 'report.png');
  const screenshot = await chromium(report, [`--screenshot=${shot}`, '--window-size=1400,1600']);
  t.equal(screenshot.exitCode, 0);
  t.same(consoleLines(screenshot.stderr), []);
  await chmod(shot, 0o600); // run data stays private (Chromium writes 0644)
  const png = await readFile(shot);
  t.equal(png.subarray(1, 4).toString(), 'PNG', `screenshot kept: ${shot}`);
  t.ok((await stat(shot)).size > 20_000, 'the screenshot has content (a blank page is a few kB)');

  // `ntbh report` rebuilds the same page from the files the run left.
  await regenerateReport(dir);
  t.equal(await readFile(report, 'utf8'), written, 'regenerated report.html is identical');
});
