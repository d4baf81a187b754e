/**
 * report.html: one self-contained page per run (inline CSS and JS, nothing fetched at view time) for
 * people: the matrix as a coloured grid, each cell opening to its steps and checks, a per-vector
 * doorbell table for each sweep, splat excerpts with the step that saw them, links to the cell's
 * consoles and QEMU files, and a timing bar per cell. Rendered from results.json (plus the boot
 * phases of events.ndjson when results.json has no `phases`), so `ntbh report <dir>` regenerates it.
 * Everything from a guest or a scenario is escaped: kernel logs are full of `<`.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { HarnessError } from '../errors.ts';
import type { Stamped } from '../events.ts';
import type { CellResult, CheckResult, RunResult, SplatRecord, Status, StepResult, Value } from '../results/model.ts';
import { STATUSES } from '../results/model.ts';
import { cleanText, duration, kernelText } from './format.ts';
import { BOOT_COLOR, CSS, ERROR_TRAP, SCRIPT, SEGMENT_COLORS, SETUP_COLOR, STATUS_COLORS } from './html-assets.ts';
import { resultsJson } from './json.ts';

/** A stretch of a cell's time, as the timing bar draws it. */
export interface Phase {
  name: string;
  ms: number;
  /** The step the phase happened in (setup's modules, probe, ...); none for boot and teardown. */
  step?: string;
  /** An outer phase after the last step (teardown). */
  afterSteps?: boolean;
}

/** results.json's `cells[].phases` entry: flat, in order (boot, per-guest boot times, a step's phases, step:<id>, teardown). */
export interface RecordedPhase {
  name: string;
  ms: number;
  guest?: string;
}

/** A cell as results.json has it, with `phases` when the run recorded them. */
export interface ReportCell extends Omit<CellResult, 'phases'> {
  phases?: RecordedPhase[];
}

export interface ReportRun extends Omit<RunResult, 'cells'> {
  cells: ReportCell[];
}

export interface HtmlOptions {
  /** Per cell id: files in the cell's directory, relative to the run directory (links). */
  files?: Record<string, string[]>;
  /** Per cell id: phases seen in the event stream, used when the cell has no `phases` of its own. */
  eventPhases?: Record<string, Phase[]>;
}

// ---------------------------------------------------------------------------------------------
// Escaping and small helpers

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text and attribute values: ANSI sequences and control characters dropped, markup characters escaped. */
export function esc(text: unknown): string {
  return cleanText(String(text ?? '')).replace(/[&<>"']/g, (ch) => ENTITIES[ch]!);
}

/** A DOM id for a cell: its id is made of variant names, but nothing from a scenario is trusted. */
export function cellAnchor(id: string): string {
  return `cell-${id.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

function hrefOf(path: string): string {
  return esc(path.split('/').map(encodeURIComponent).join('/'));
}

function badge(status: Status | string, text: string = status): string {
  const known = (STATUSES as readonly string[]).includes(status) ? status : 'SKIP';
  return `<span class="st s-${known}">${esc(text)}</span>`;
}

/** Doorbell registers and masks read best in hex, indices in decimal. */
function fmtValue(check: string, value: Value | undefined): string {
  if (value === undefined) return '';
  if (value === null) return 'none';
  if (typeof value === 'number') return /(^db|mask)/.test(check) && Number.isInteger(value) && value >= 0 ? `0x${value.toString(16)}` : String(value);
  if (Array.isArray(value)) return `[${value.map((v) => fmtValue(check, v)).join(', ')}]`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function countStatuses(statuses: Status[]): Partial<Record<Status, number>> {
  const counts: Partial<Record<Status, number>> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

/** Every verdict a cell carries: its checks, and the status of each step that produced none. */
function cellStatuses(cell: CellResult): Status[] {
  return cell.steps.flatMap((step) => (step.checks.length ? step.checks.map((c) => c.status) : [step.status]));
}

function countsText(counts: Partial<Record<Status, number>>, order: readonly Status[] = STATUSES): string {
  return order
    .filter((s) => counts[s])
    .map((s) => `${counts[s]} ${s}`)
    .join(' · ');
}

// ---------------------------------------------------------------------------------------------
// results.json in, with defaults for what older files or failed cells leave out

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** results.json (parsed) as a ReportRun; throws BAD_RESULTS when it is not one. */
export function reportRunFromJson(json: unknown, source = 'results.json'): ReportRun {
  const top = asObject(json);
  if (!top || !Array.isArray(top.cells) || typeof top.scenario !== 'string') {
    throw new HarnessError(`${source} is not a results file (no scenario and cells)`, { code: 'BAD_RESULTS', kind: 'input', phase: 'report' });
  }
  const cells = (top.cells as unknown[]).map((raw): ReportCell => {
    const c = asObject(raw) ?? {};
    const steps = (Array.isArray(c.steps) ? c.steps : []).map((rawStep): StepResult => {
      const s = asObject(rawStep) ?? {};
      return {
        id: String(s.id ?? '?'),
        type: String(s.type ?? ''),
        status: (s.status as Status) ?? 'ERROR',
        durationMs: Number(s.durationMs ?? 0),
        values: (asObject(s.values) ?? {}) as Record<string, Value>,
        checks: (Array.isArray(s.checks) ? s.checks : []) as CheckResult[],
        splats: (Array.isArray(s.splats) ? s.splats : []) as SplatRecord[],
        ...(s.taint ? { taint: s.taint as StepResult['taint'] } : {}),
        ...(s.message !== undefined ? { message: String(s.message) } : {}),
      };
    });
    const phases = Array.isArray(c.phases)
      ? (c.phases as unknown[]).flatMap((p) => {
          const o = asObject(p);
          return o && typeof o.name === 'string' && Number.isFinite(Number(o.ms)) ? [{ name: o.name, ms: Number(o.ms), ...(typeof o.guest === 'string' ? { guest: o.guest } : {}) }] : [];
        })
      : undefined;
    return {
      id: String(c.id ?? '?'),
      ep: String(c.ep ?? ''),
      host: String(c.host ?? ''),
      kernels: (asObject(c.kernels) ?? {}) as CellResult['kernels'],
      status: (c.status as Status) ?? 'ERROR',
      durationMs: Number(c.durationMs ?? 0),
      capabilities: (asObject(c.capabilities) ?? {}) as Record<string, boolean>,
      params: (asObject(c.params) ?? {}) as Record<string, number>,
      steps,
      ...(c.message !== undefined ? { message: String(c.message) } : {}),
      ...(phases ? { phases } : {}),
    };
  });
  const interop = asObject(top.interop);
  const totals = asObject(top.totals) ?? {};
  return {
    scenario: top.scenario,
    ...(typeof top.file === 'string' ? { file: top.file } : {}),
    status: (top.status as Status) ?? 'ERROR',
    strict: top.strict === true,
    exitCode: Number(top.exitCode ?? 2),
    startedAt: String(top.startedAt ?? ''),
    durationMs: Number(top.durationMs ?? 0),
    totals: Object.fromEntries(STATUSES.map((s) => [s, Number(totals[s] ?? 0)])) as Record<Status, number>,
    interop: { status: (interop?.status as Status) ?? 'SKIP', groups: (Array.isArray(interop?.groups) ? interop.groups : []) as RunResult['interop']['groups'] },
    cells,
    ...(typeof top.message === 'string' ? { message: top.message } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Timing

export interface Segment {
  name: string;
  ms: number;
  color: string;
}

/**
 * results.json's flat phase list as bar phases: `step:<id>` closes a step, the phases recorded
 * since the previous one happened inside it (setup's modules, probe, ...); boot comes before the
 * steps and what follows the last step (teardown) after them. Per-guest phases ran side by side
 * within boot and are left to the legend.
 */
export function phasesFromRecorded(recorded: RecordedPhase[]): Phase[] {
  const out: Phase[] = [];
  let pending: Phase[] = [];
  let stepsSeen = false;
  for (const p of recorded) {
    if (p.guest) continue;
    const step = /^step:(.+)$/.exec(p.name)?.[1];
    if (step !== undefined) {
      out.push(...pending.map((q) => ({ ...q, step })));
      pending = [];
      stepsSeen = true;
    } else if (/^boot\b/.test(p.name) && !stepsSeen) out.push({ name: p.name, ms: p.ms });
    else pending.push({ name: p.name, ms: p.ms });
  }
  return [...out, ...pending.map((q) => ({ ...q, afterSteps: true }))];
}

/**
 * A cell's timing: its recorded phases when results.json has them, else the phases of the event
 * stream, else its steps alone. Outer phases (boot) come first; then each step, split into the
 * phases it reported and the rest of its time; then what came after the steps (teardown).
 */
export function timingSegments(cell: ReportCell, eventPhases: Phase[] = [], colorOf: (name: string) => string = palette()): Segment[] {
  const phases = cell.phases?.length ? phasesFromRecorded(cell.phases) : eventPhases;
  const list: Phase[] = phases.filter((p) => !p.step && !p.afterSteps);
  for (const step of cell.steps) {
    const inner = phases.filter((p) => p.step === step.id);
    const innerMs = inner.reduce((a, p) => a + p.ms, 0);
    list.push(...inner.map((p) => ({ name: `${step.id}: ${p.name}`, ms: p.ms })));
    const rest = step.durationMs - innerMs;
    if (rest > 0) list.push({ name: inner.length ? `${step.id}: rest` : step.id, ms: rest });
  }
  list.push(...phases.filter((p) => p.afterSteps));
  return list.filter((p) => p.ms > 0).map((p) => ({ name: p.name, ms: p.ms, color: colorOf(p.name) }));
}

/** Colours by segment name, the same in every cell of a page: boot grey, setup dark blue, the rest in turn. */
export function palette(): (name: string) => string {
  const given = new Map<string, string>();
  return (name) => {
    if (/^boot\b/.test(name)) return BOOT_COLOR;
    if (name === 'setup' || name === 'setup: rest') return SETUP_COLOR;
    let color = given.get(name);
    if (!color) {
      color = SEGMENT_COLORS[given.size % SEGMENT_COLORS.length]!;
      given.set(name, color);
    }
    return color;
  };
}

function bar(segments: Segment[], scaleMs: number): string {
  const total = segments.reduce((a, s) => a + s.ms, 0);
  const spans = segments
    .map((s) => `<span style="width:${((100 * s.ms) / Math.max(1, scaleMs)).toFixed(2)}%;background:${s.color}" title="${esc(`${s.name}: ${duration(s.ms)}`)}"></span>`)
    .join('');
  return `<div class="bar" title="${esc(duration(total))}">${spans}</div>`;
}

function legend(segments: Segment[]): string {
  return `<div class="legend meta">${segments.map((s) => `<span class="key" style="background:${s.color}"></span>${esc(s.name)} ${esc(duration(s.ms))}`).join(' ')}</div>`;
}

// ---------------------------------------------------------------------------------------------
// The doorbell table: one row per (direction, bit), one column per observation

const DB_COLUMNS = ['ring_ok', 'db', 'vector', 'vector_kprobe', 'vector_mask', 'msi_index', 'wire', 'db_after_clear'];
// host-to-ep / ep-to-host; a bridge names its sides after the hosts (host-to-host2, host2-to-host).
const RING_LABEL = /^([a-z0-9]+-to-[a-z0-9]+) bit (\d+)$/;

export interface DoorbellRow {
  direction: string;
  bit: number;
  receiver?: string;
  checks: Map<string, CheckResult>;
}

/** Rows of a step whose checks are labelled `<direction> bit <i>` (doorbell-sweep), in ring order. */
export function doorbellRows(step: StepResult, sides: Partial<Record<string, string>> = {}): DoorbellRow[] {
  const rows = new Map<string, DoorbellRow>();
  for (const check of step.checks) {
    const label = /\[(.*)\]$/.exec(check.id)?.[1];
    const m = label ? RING_LABEL.exec(label) : null;
    if (!m) continue;
    const key = `${m[1]} ${m[2]}`;
    let row = rows.get(key);
    if (!row) {
      row = { direction: m[1]!, bit: Number(check.params?.i ?? m[2]), checks: new Map() };
      rows.set(key, row);
    }
    if (check.check !== 'ring_ok' && check.on) row.receiver = sides[check.on] ?? check.on;
    row.checks.set(check.check, check);
  }
  return [...rows.values()];
}

function doorbellTable(step: StepResult, sides: Partial<Record<string, string>> = {}): string {
  const rows = doorbellRows(step, sides);
  if (rows.length === 0) return '';
  const present = new Set(rows.flatMap((r) => [...r.checks.keys()]));
  const columns = [...DB_COLUMNS.filter((c) => present.has(c)), ...[...present].filter((c) => !DB_COLUMNS.includes(c)).sort()];
  const head = `<tr><th>direction</th><th>bit</th><th>receiver</th>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = rows.map((row) => {
    const cells = columns.map((name) => {
      const check = row.checks.get(name);
      if (!check) return '<td class="meta">–</td>';
      const observed = fmtValue(name, check.value);
      const expected = check.expected !== undefined ? fmtValue(name, check.expected) : undefined;
      const notes = [expected !== undefined && expected !== observed ? `exp ${expected}` : '', check.known !== undefined ? `known ${fmtValue(name, check.known)}` : ''].filter(Boolean).join(', ');
      const title = [check.status, check.message ?? ''].filter(Boolean).join(': ');
      return `<td class="t-${esc(check.status)}" title="${esc(title)}">${esc(observed)}${notes ? `<small>${esc(notes)}</small>` : ''}</td>`;
    });
    return `<tr><td>${esc(row.direction)}</td><td>${row.bit}</td><td>${esc(row.receiver ?? '')}</td>${cells.join('')}</tr>`;
  });
  return [
    `<p class="meta">Per vector: what the receiver observed for each single-bit ring, coloured by the check's verdict; <em>exp</em> is the expectation, <em>known</em> the documented behaviour of an older kernel (XFAIL).</p>`,
    `<table class="db">${head}${body.join('')}</table>`,
  ].join('');
}

// ---------------------------------------------------------------------------------------------
// Sections

/** What a reader came for: failed, broken and unexpectedly passing cells and steps start open. */
const OPEN: Status[] = ['FAIL', 'ERROR', 'XPASS'];

function checksTable(step: StepResult): string {
  if (step.checks.length === 0) return '';
  const rows = step.checks.map(
    (c) =>
      `<tr class="r-${esc(c.status)}"><td>${badge(c.status)}</td><td class="mono">${esc(c.id)}</td><td class="v">${esc(fmtValue(c.check, c.value))}</td><td class="v">${c.expected !== undefined ? esc(fmtValue(c.check, c.expected)) : ''}</td><td class="v">${c.known !== undefined ? esc(fmtValue(c.check, c.known)) : ''}</td><td class="msg">${esc(c.message ?? '')}</td></tr>`,
  );
  return `<table class="checks"><tr><th>status</th><th>check</th><th>value</th><th>expected</th><th>known</th><th>message</th></tr>${rows.join('')}</table>`;
}

function taintTable(step: StepResult): string {
  if (!step.taint) return '';
  const rows = Object.entries(step.taint).map(([guest, t]) => `<tr><td>${esc(guest)}</td><td>${t.before}</td><td>${t.after}</td><td>${esc(t.flags)}</td></tr>`);
  return `<p>Kernel taint changed:</p><table><tr><th>guest</th><th>before</th><th>after</th><th>flags</th></tr>${rows.join('')}</table>`;
}

function stepSection(step: StepResult, cellId: string, sides: Partial<Record<string, string>> = {}): string {
  const counts = countsText(countStatuses(step.checks.map((c) => c.status)));
  const splats = step.splats.length ? ` · ${step.splats.length} splat${step.splats.length === 1 ? '' : 's'}` : '';
  const summary = `${badge(step.status)} <b>${esc(step.id)}</b> <span class="meta">${esc(step.type)} · ${esc(duration(step.durationMs))}${counts ? ` · ${esc(counts)}` : ''}${esc(splats)}</span>`;
  const body = [
    step.message ? `<p class="msg">${esc(step.message)}</p>` : '',
    doorbellTable(step, sides),
    checksTable(step),
    taintTable(step),
  ].join('');
  return `<details class="step"${OPEN.includes(step.status) ? ' open' : ''} id="${esc(`${cellAnchor(cellId)}--${step.id.replace(/[^A-Za-z0-9_.-]/g, '_')}`)}"><summary>${summary}</summary>${body || '<p class="meta">no checks</p>'}</details>`;
}

function splatSection(cell: CellResult): string {
  const splats = cell.steps.flatMap((step) => step.splats.map((splat) => ({ step: step.id, splat })));
  if (splats.length === 0) return '';
  const items = splats.map(
    ({ step, splat }) =>
      `<details class="splat"><summary>${badge(splat.expected ? 'XFAIL' : 'FAIL', splat.expected ? 'expected' : 'unexpected')} ${esc(splat.guest)}: ${esc(splat.title)} <span class="meta">${esc(splat.kind)} · in step ${esc(step)}</span></summary><pre>${esc(splat.excerpt)}</pre></details>`,
  );
  return `<h4>Splats</h4>${items.join('')}`;
}

function filesSection(files: string[] | undefined): string {
  if (!files?.length) return '';
  return `<p>Artifacts: ${files.map((f) => `<a href="${hrefOf(f)}">${esc(f.split('/').slice(1).join('/') || f)}</a>`).join(' · ')}</p>`;
}

/** What the setup probed in each guest: the expectations' `known` entries key on these. */
function capabilitiesLine(cell: CellResult): string {
  const caps = Object.entries(cell.capabilities);
  if (caps.length === 0) return '';
  const list = (value: boolean) => caps.filter(([, v]) => v === value).map(([k]) => esc(k)).join(', ') || 'none';
  return `<details class="caps"><summary class="meta">capabilities (${caps.length})</summary><p class="meta">present: ${list(true)}</p><p class="meta">absent: ${list(false)}</p></details>`;
}

/** Per-guest phases (each guest's boot to ready and to SSH): they overlap, so they are listed, not drawn. */
function guestPhases(cell: ReportCell): string {
  const perGuest = (cell.phases ?? []).filter((p) => p.guest);
  if (perGuest.length === 0) return '';
  return `<p class="meta">per guest: ${perGuest.map((p) => `${esc(p.name)} ${esc(p.guest)} ${esc(duration(p.ms))}`).join(', ')}</p>`;
}

function cellSection(cell: ReportCell, options: HtmlOptions, segments: Segment[]): string {
  const counts = countsText(countStatuses(cellStatuses(cell)));
  const summary = `${badge(cell.status)} ${esc(cell.id)} <span class="meta">${esc(duration(cell.durationMs))}${counts ? ` · ${esc(counts)}` : ''}</span>`;
  const kernelRows = (cell.kernels?.host2 ? (['ep', 'host', 'host2'] as const) : (['ep', 'host'] as const)).flatMap((side) => {
    const k = cell.kernels?.[side];
    if (!k) return [`<tr><td>${side}</td><td colspan="3" class="meta">${esc(side === 'ep' ? cell.ep : cell.host)}: not built</td></tr>`];
    return [`<tr><td>${side}</td><td>${esc(k.name)}</td><td>${esc(kernelText(k))}</td><td class="mono">${esc(k.sourceId)}</td></tr>`];
  });
  const params = Object.entries(cell.params);
  return [
    `<details class="cell"${OPEN.includes(cell.status) ? ' open' : ''} id="${esc(cellAnchor(cell.id))}" data-status="${esc(cell.status)}"><summary>${summary}</summary>`,
    cell.message ? `<p class="msg">${badge(cell.status)} ${esc(cell.message)}</p>` : '',
    `<table>${kernelRows.join('')}</table>`,
    params.length ? `<p class="meta">params: ${params.map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ')}</p>` : '',
    capabilitiesLine(cell),
    filesSection(options.files?.[cell.id]),
    segments.length ? `<h4>Timing</h4>${bar(segments, segments.reduce((a, s) => a + s.ms, 0))}${legend(segments)}${guestPhases(cell)}` : '',
    `<h4>Steps</h4>`,
    cell.steps.map((step) => stepSection(step, cell.id, cell.sides ?? {})).join(''),
    splatSection(cell),
    '</details>',
  ].join('\n');
}

/** The matrix: EP variants down, host variants across, in the order the cells ran. */
function gridSection(run: ReportRun): string {
  const eps = [...new Set(run.cells.map((c) => c.ep))];
  const hosts = [...new Set(run.cells.map((c) => c.host))];
  const variantLabel = (side: 'ep' | 'host', name: string) => {
    const k = run.cells.find((c) => (side === 'ep' ? c.ep : c.host) === name)?.kernels?.[side];
    return `${esc(name)}${k ? `<br><span class="meta">${esc(k.release)} ${esc(k.arch)}</span>` : ''}`;
  };
  const head = `<tr><th class="axis">EP ↓ · host →</th>${hosts.map((h) => `<th>${variantLabel('host', h)}</th>`).join('')}</tr>`;
  const rows = eps.map((ep) => {
    const tds = hosts.map((host) => {
      const cell = run.cells.find((c) => c.ep === ep && c.host === host);
      if (!cell) return '<td class="none">·</td>';
      const counts = countStatuses(cellStatuses(cell));
      const notable = countsText(counts, ['FAIL', 'ERROR', 'XPASS', 'XFAIL', 'SKIP']);
      return `<td class="cell s-${esc(cell.status)}" data-cell="${esc(cell.id)}" data-status="${esc(cell.status)}"><a href="#${esc(cellAnchor(cell.id))}" title="${esc(cell.id)}">${esc(cell.status)}<span class="count">${esc(duration(cell.durationMs))}${notable ? ` · ${esc(notable)}` : ''}</span></a></td>`;
    });
    return `<tr><th>${variantLabel('ep', ep)}</th>${tds.join('')}</tr>`;
  });
  return `<table class="grid">${head}${rows.join('')}</table>`;
}

function timingSection(run: ReportRun, segmentsOf: Map<string, Segment[]>): string {
  const totals = run.cells.map((c) => (segmentsOf.get(c.id) ?? []).reduce((a, s) => a + s.ms, 0));
  const scale = Math.max(1, ...totals);
  const rows = run.cells.map(
    (cell, i) =>
      `<tr><td><a href="#${esc(cellAnchor(cell.id))}">${esc(cell.id)}</a></td><td style="width:70%">${bar(segmentsOf.get(cell.id) ?? [], scale)}</td><td class="meta">${esc(duration(totals[i]!))}</td></tr>`,
  );
  // Every segment name once, in the order first seen (a name has one colour on the whole page).
  const names = new Map<string, string>();
  for (const segments of segmentsOf.values()) for (const s of segments) if (!names.has(s.name)) names.set(s.name, s.color);
  const key = `<div class="legend meta">${[...names].map(([name, color]) => `<span class="key" style="background:${color}"></span>${esc(name)}`).join(' ')}</div>`;
  return `<table class="grid-bars">${rows.join('')}</table>${key}<p class="meta">Bars share one scale; hover a segment for its name and duration; each cell's section has its own figures.</p>`;
}

function interopSection(run: ReportRun): string {
  if (run.interop.groups.length === 0) return '';
  const rows = run.interop.groups.map(
    (g) =>
      `<tr class="r-${esc(g.status)}"><td>${badge(g.status)}</td><td>${esc(g.step ?? '')}</td><td>${esc(g.direction)}</td><td>${esc(g.receiver)} ${esc(g.variant)}</td><td>${esc(g.senders.join(', '))}</td><td class="msg">${esc(g.message ?? '')}</td></tr>`,
  );
  return [
    `<h2 id="interop">Interop ${badge(run.interop.status)}</h2>`,
    '<p class="meta">A receiver must observe a single-bit ring the same whatever the sender.</p>',
    `<table><tr><th>status</th><th>step</th><th>direction</th><th>receiver</th><th>senders</th><th>message</th></tr>${rows.join('')}</table>`,
  ].join('');
}

/** Every splat of the run, the same title in the same cell and step counted once. */
function splatIndex(run: ReportRun): string {
  const groups = new Map<string, { cell: string; step: string; splat: SplatRecord; count: number }>();
  for (const cell of run.cells) {
    for (const step of cell.steps) {
      for (const splat of step.splats) {
        const key = [cell.id, step.id, splat.guest, splat.title, splat.expected].join('\u0000');
        const entry = groups.get(key) ?? { cell: cell.id, step: step.id, splat, count: 0 };
        entry.count++;
        groups.set(key, entry);
      }
    }
  }
  if (groups.size === 0) return '';
  const total = [...groups.values()].reduce((a, g) => a + g.count, 0);
  const rows = [...groups.values()].map(
    ({ cell, step, splat, count }) =>
      `<tr><td>${badge(splat.expected ? 'XFAIL' : 'FAIL', splat.expected ? 'expected' : 'unexpected')}</td><td><a href="#${esc(cellAnchor(cell))}">${esc(cell)}</a></td><td>${esc(step)}</td><td>${esc(splat.guest)}</td><td>${esc(splat.title)}</td><td>${count}</td></tr>`,
  );
  return `<h2 id="splats">Splats (${total})</h2><table><tr><th></th><th>cell</th><th>step</th><th>guest</th><th>title</th><th>times</th></tr>${rows.join('')}</table>`;
}

export function renderReportHtml(run: ReportRun, options: HtmlOptions = {}): string {
  const colorOf = palette();
  const segmentsOf = new Map(run.cells.map((cell) => [cell.id, timingSegments(cell, options.eventPhases?.[cell.id], colorOf)]));
  const totals = STATUSES.filter((s) => run.totals[s]).map((s) => badge(s, `${run.totals[s]} ${s}`)).join(' ');
  const tints = Object.entries(STATUS_COLORS)
    .map(([s, c]) => `.t-${s}{background:${c.bg}33}`)
    .join('');
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`${run.scenario}: ${run.status}`)} — ntbh report</title>`,
    `<script>${ERROR_TRAP}</script>`,
    `<style>${CSS}${tints}</style>`,
    '</head>',
    '<body>',
    `<h1>${esc(run.scenario)} ${badge(run.status)}</h1>`,
    `<p class="meta">${run.file ? `${esc(run.file)} · ` : ''}started ${esc(run.startedAt)} · ${esc(duration(run.durationMs))} · ${run.cells.length} cell${run.cells.length === 1 ? '' : 's'} · exit ${esc(run.exitCode)}${run.strict ? ' · strict (XPASS fails)' : ''}</p>`,
    `<p class="totals">checks: ${totals || '<span class="meta">none</span>'}</p>`,
    run.message ? `<p class="msg">${esc(run.message)}</p>` : '',
    '<pre id="js-errors" hidden></pre>',
    '<h2 id="matrix">Matrix</h2>',
    gridSection(run),
    '<h2 id="timing">Timing</h2>',
    timingSection(run, segmentsOf),
    interopSection(run),
    splatIndex(run),
    '<h2 id="cells">Cells</h2>',
    '<p class="toolbar"><button id="expand-all" type="button">expand all</button><button id="collapse-all" type="button">collapse all</button><button id="hide-pass" type="button">hide passing checks</button></p>',
    run.cells.map((cell) => cellSection(cell, options, segmentsOf.get(cell.id) ?? [])).join('\n'),
    '<p class="meta">Written by ntbh; regenerate with <code>ntbh report &lt;results dir&gt;</code>. Statuses: PASS, XFAIL (a known behaviour of the kernel under test), XPASS, FAIL, ERROR (infrastructure), SKIP.</p>',
    `<script>${SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Files

/** Each cell's artifacts (console logs, QEMU command lines, wire trace), relative to the run directory. */
export async function cellFiles(dir: string, cellIds: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const id of cellIds) {
    const root = join(dir, id);
    if (!existsSync(root)) continue;
    const found: string[] = [];
    const walk = async (path: string, depth: number): Promise<void> => {
      for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
        const full = join(path, entry.name);
        if (entry.isDirectory() && depth < 2) await walk(full, depth + 1);
        else if (entry.isFile()) found.push(relative(dir, full));
      }
    };
    await walk(root, 0);
    // Consoles first: they are what a reader of a failure opens.
    out[id] = found.sort((a, b) => Number(!a.endsWith('console.log')) - Number(!b.endsWith('console.log')) || a.localeCompare(b));
  }
  return out;
}

/**
 * Phases with a cell and a duration, from events (live or events.ndjson), per cell in order; each
 * names the step that was running (a step-start before it), so the timing bar does not count the
 * setup step's own phases twice.
 */
export function phasesFromEvents(events: Iterable<Partial<Stamped>>): Record<string, Phase[]> {
  const out: Record<string, Phase[]> = {};
  const running = new Map<string, string>();
  const ended = new Set<string>();
  for (const e of events) {
    if (e.kind === 'step-start') {
      const s = e as Extract<Stamped, { kind: 'step-start' }>;
      running.set(s.cell, s.step);
    } else if (e.kind === 'step-end') {
      running.delete((e as Extract<Stamped, { kind: 'step-end' }>).cell);
    } else if (e.kind === 'cell-end') {
      const id = (e as Extract<Stamped, { kind: 'cell-end' }>).cell.id;
      running.delete(id);
      ended.add(id);
    } else if (e.kind === 'phase') {
      const p = e as Extract<Stamped, { kind: 'phase' }>;
      // Per-guest phases ran side by side inside another phase: they would count twice.
      if (!p.cell || p.guest || p.status === 'start' || p.durationMs === undefined) continue;
      const step = running.get(p.cell);
      (out[p.cell] ??= []).push({ name: p.phase, ms: p.durationMs, ...(step ? { step } : ended.has(p.cell) ? { afterSteps: true } : {}) });
    }
  }
  return out;
}

export async function writeReportHtml(dir: string, run: ReportRun, eventPhases: Record<string, Phase[]> = {}): Promise<string> {
  const path = join(dir, 'report.html');
  const html = renderReportHtml(run, { files: await cellFiles(dir, run.cells.map((c) => c.id)), eventPhases });
  await writeFile(`${path}.tmp`, html, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return path;
}

export interface HtmlReporter {
  listener: (event: Stamped) => void;
  /** Writes report.html for the run that ended (none if no run-end came); call when the run's files are all written. */
  write(): Promise<string | undefined>;
}

/**
 * The reporter: collects the cells' phases as they happen and keeps the run-end; the page is
 * written on write(), after the run's other writers (the cells' bundles) are done, so its links
 * name every file a later `ntbh report` would find.
 */
export function htmlReporter(dir: string): HtmlReporter {
  const events: Stamped[] = [];
  let run: ReportRun | undefined;
  return {
    listener: (event) => {
      if ((event.kind === 'phase' && event.cell) || event.kind === 'step-start' || event.kind === 'step-end' || event.kind === 'cell-end') events.push(event);
      // Through results.json's shape, so a regenerated report is the same page.
      if (event.kind === 'run-end') run = reportRunFromJson(JSON.parse(JSON.stringify(resultsJson(event.run))));
    },
    write: async () => (run ? writeReportHtml(dir, run, phasesFromEvents(events)) : undefined),
  };
}

/** `ntbh report <dir>`: report.html again from results.json and events.ndjson. */
export async function regenerateReport(dir: string): Promise<string> {
  const resultsPath = join(dir, 'results.json');
  const text = await readFile(resultsPath, 'utf8').catch(() => {
    throw new HarnessError(`${dir} has no results.json`, { code: 'NO_RESULTS', kind: 'input', phase: 'report', excerpt: 'Give the results directory of a run (results/<run id>).' });
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new HarnessError(`${resultsPath} is not valid JSON: ${(error as Error).message}`, { code: 'BAD_RESULTS', kind: 'input', phase: 'report' });
  }
  const run = reportRunFromJson(json, resultsPath);
  const events = (await readFile(join(dir, 'events.ndjson'), 'utf8').catch(() => ''))
    .split('\n')
    .flatMap((line) => {
      try {
        return line.trim() ? [JSON.parse(line) as Stamped] : [];
      } catch {
        return []; // a run killed mid-write leaves half a line
      }
    });
  return writeReportHtml(dir, run, phasesFromEvents(events));
}
