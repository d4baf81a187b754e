/** `ntbh compare` output: terminal text, Markdown (a CI comment) or JSON. */
import { cleanText, colors, duration, paintStatus, type Colors } from '../report/format.ts';
import type { Status } from '../results/model.ts';
import type { ChangeKind, Comparison, StatusChange } from './diff.ts';

export type CompareFormat = 'terminal' | 'markdown' | 'json';

const SECTIONS: { kind: ChangeKind; title: string }[] = [
  { kind: 'regression', title: 'regressions' },
  { kind: 'fixed', title: 'fixed' },
  { kind: 'gained-fix', title: 'known behaviour gone (a kernel gained the fix)' },
  { kind: 'intermittent', title: 'intermittent (known flaky, not a regression)' },
  { kind: 'changed', title: 'other status changes' },
];

function oneLine(text: string | undefined, max = 300): string {
  const line = cleanText(text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

function why(change: StatusChange): string {
  // A known FAIL's message already names its issue (known-issues.ts); an intermittent flip's does not.
  const named = change.message?.startsWith('known issue: ') ?? false;
  const issue = change.issue && !named ? ` [known: ${change.issue.reason}${change.issue.link ? ` ${change.issue.link}` : ''}]` : '';
  const message = change.message ? ` — ${oneLine(change.message)}` : '';
  return `${message}${issue}`;
}

function pct(ratio: number): string {
  return `${ratio > 0 ? '+' : ''}${Math.round(ratio * 100)}%`;
}

function headline(cmp: Comparison): string {
  const counts = SECTIONS.map(({ kind, title }) => [title.split(' (')[0], cmp.changes.filter((c) => c.kind === kind).length] as const).filter(([, n]) => n > 0);
  const extra = [
    ['new cells', cmp.newCells.length],
    ['missing cells', cmp.missingCells.length],
    ['new checks', cmp.newChecks.length],
    ['missing checks', cmp.missingChecks.length],
    ['new splats', cmp.newSplats.length],
  ] as const;
  const parts = [...counts, ...extra.filter(([, n]) => n > 0)].map(([name, n]) => `${name}: ${n}`);
  return parts.length ? parts.join(', ') : `no changes (${cmp.unchanged} statuses compared)`;
}

export function renderTerminal(cmp: Comparison, color: boolean): string {
  const c: Colors = colors(color);
  const st = (s: Status) => paintStatus(s, c);
  const lines = [
    c.bold(`compare ${cmp.base.scenario} ${cmp.base.startedAt} (${st(cmp.base.status)}) → ${cmp.new.scenario} ${cmp.new.startedAt} (${st(cmp.new.status)})`),
    headline(cmp),
    '',
  ];
  if (cmp.base.scenario !== cmp.new.scenario) lines.push(c.yellow(`note: different scenarios (${cmp.base.scenario} vs ${cmp.new.scenario})`), '');
  for (const { kind, title } of SECTIONS) {
    const rows = cmp.changes.filter((ch) => ch.kind === kind);
    if (rows.length === 0) continue;
    lines.push(c.bold(`${title} (${rows.length})`));
    for (const ch of rows) lines.push(`  ${ch.cell} ${ch.check}: ${st(ch.base)} → ${st(ch.new)}${why(ch)}`);
    lines.push('');
  }
  const presence = (title: string, rows: Comparison['newCells']) => {
    if (rows.length === 0) return;
    lines.push(c.bold(`${title} (${rows.length})`), ...rows.map((r) => `  ${r.cell}${r.check ? ` ${r.check}` : ''}: ${st(r.status)}`), '');
  };
  presence('new cells', cmp.newCells);
  presence('missing cells', cmp.missingCells);
  presence('new checks', cmp.newChecks);
  presence('missing checks', cmp.missingChecks);
  if (cmp.newSplats.length) {
    lines.push(c.bold(`new splats (${cmp.newSplats.length})`));
    for (const s of cmp.newSplats) lines.push(`  ${s.guest}: ${oneLine(s.title)}${s.expected ? c.dim(' (expected by the scenario)') : ''} — ${s.where.join(', ')}`);
    lines.push('');
  }
  if (cmp.goneSplats.length) lines.push(c.bold(`splats gone (${cmp.goneSplats.length})`), ...cmp.goneSplats.map((s) => `  ${s.guest}: ${oneLine(s.title)}`), '');
  if (cmp.timing.length) {
    lines.push(c.bold(`timing (${cmp.timing.length} steps beyond the threshold)`));
    for (const t of cmp.timing) lines.push(`  ${t.cell} ${t.step}: ${duration(t.baseMs)} → ${duration(t.newMs)} (${pct(t.ratio)})`);
    lines.push('');
  }
  lines.push(cmp.regressions > 0 ? c.red(c.bold(`${cmp.regressions} regression(s): exit 1`)) : c.green('no regressions'), '');
  return lines.join('\n');
}

function md(text: string): string {
  return oneLine(text).replace(/\|/g, '\\|').replace(/</g, '&lt;');
}

export function renderMarkdown(cmp: Comparison): string {
  const out = [
    `### ntbh compare: ${md(cmp.new.scenario)}`,
    '',
    `Base ${md(cmp.base.startedAt)} (**${cmp.base.status}**) → new ${md(cmp.new.startedAt)} (**${cmp.new.status}**): ${md(headline(cmp))}.`,
    '',
  ];
  for (const { kind, title } of SECTIONS) {
    const rows = cmp.changes.filter((ch) => ch.kind === kind);
    if (rows.length === 0) continue;
    out.push(`#### ${kind === 'regression' ? ':x: ' : ''}${title} (${rows.length})`, '', '| cell | check | base | new | note |', '|---|---|---|---|---|');
    for (const ch of rows.slice(0, 100)) out.push(`| ${md(ch.cell)} | \`${md(ch.check)}\` | ${ch.base} | ${ch.new} | ${md(why(ch).replace(/^ — /, ''))} |`);
    if (rows.length > 100) out.push(`| … | ${rows.length - 100} more | | | |`);
    out.push('');
  }
  const presence = (title: string, rows: Comparison['newCells']) => {
    if (rows.length === 0) return;
    out.push(`#### ${title} (${rows.length})`, '', ...rows.slice(0, 100).map((r) => `- ${md(r.cell)}${r.check ? ` \`${md(r.check)}\`` : ''}: ${r.status}`), '');
  };
  presence('New cells', cmp.newCells);
  presence('Missing cells', cmp.missingCells);
  presence('New checks', cmp.newChecks);
  presence('Missing checks', cmp.missingChecks);
  if (cmp.newSplats.length) out.push(`#### New splats (${cmp.newSplats.length})`, '', ...cmp.newSplats.map((s) => `- ${s.guest}: \`${md(s.title)}\`${s.expected ? ' (expected)' : ''} — ${md(s.where.join(', '))}`), '');
  if (cmp.goneSplats.length) out.push(`#### Splats gone (${cmp.goneSplats.length})`, '', ...cmp.goneSplats.map((s) => `- ${s.guest}: \`${md(s.title)}\``), '');
  if (cmp.timing.length) {
    out.push(`#### Timing (${cmp.timing.length})`, '', '| cell | step | base | new | change |', '|---|---|---|---|---|');
    for (const t of cmp.timing) out.push(`| ${md(t.cell)} | ${md(t.step)} | ${duration(t.baseMs)} | ${duration(t.newMs)} | ${pct(t.ratio)} |`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

export function renderComparison(cmp: Comparison, format: CompareFormat, color = false): string {
  if (format === 'json') return `${JSON.stringify(cmp, null, 2)}\n`;
  if (format === 'markdown') return renderMarkdown(cmp);
  return renderTerminal(cmp, color);
}
