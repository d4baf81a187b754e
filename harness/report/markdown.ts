/**
 * summary.md: the run in GitHub-flavoured Markdown for a CI comment or $GITHUB_STEP_SUMMARY — the
 * verdict, the matrix (cells × steps), the kernels, the interop groups, the problems and the expected
 * failures (folded). Kept under GitHub's comment limit by capping the long lists.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResult, Status } from '../results/model.ts';
import { cleanText, duration, kernelText, showValue } from './format.ts';

const ICON: Record<Status, string> = { PASS: '✅', XFAIL: '☑️', XPASS: '❗', FAIL: '❌', ERROR: '💥', SKIP: '⏭️' };
const MAX_ROWS = 60;

function md(text: string, max = 240): string {
  const line = cleanText(text).replace(/\s+/g, ' ').trim();
  const cut = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  return cut.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function badge(status: Status): string {
  return `${ICON[status]} ${status}`;
}

export function renderMarkdownSummary(run: RunResult): string {
  const t = run.totals;
  const totals = (['PASS', 'XFAIL', 'XPASS', 'FAIL', 'ERROR', 'SKIP'] as Status[]).filter((s) => t[s] > 0).map((s) => `${t[s]} ${s}`).join(', ') || 'none';
  const out = [
    `## ${badge(run.status)} ntbh ${md(run.scenario)}`,
    '',
    `${run.cells.length} cell${run.cells.length === 1 ? '' : 's'} in ${duration(run.durationMs)}, started ${run.startedAt}. Checks: ${totals}. Exit ${run.exitCode}${run.strict ? ' (strict: XPASS fails)' : ''}.`,
    '',
  ];

  const steps = [...new Set(run.cells.flatMap((c) => c.steps.map((s) => s.id)))];
  if (run.cells.length) {
    out.push(`| cell | ep | host | ${steps.map((s) => md(s)).join(' | ')} | cell |`, `|${'---|'.repeat(steps.length + 4)}`);
    for (const cell of run.cells) {
      const kernel = (side: 'ep' | 'host') => md(cell.kernels?.[side] ? `${cell[side]} ${cell.kernels[side]!.release}` : cell[side]);
      const statuses = steps.map((id) => {
        const step = cell.steps.find((s) => s.id === id);
        return step ? ICON[step.status] : '';
      });
      out.push(`| ${md(cell.id)} | ${kernel('ep')} | ${kernel('host')} | ${statuses.join(' | ')} | ${badge(cell.status)} |`);
    }
    out.push('', `${(Object.keys(ICON) as Status[]).map((s) => `${ICON[s]} ${s}`).join(' · ')}`, '');
  }

  if (run.interop.groups.length) {
    out.push(`**Interop** ${badge(run.interop.status)} — a receiver observes a single-bit ring the same whatever the sender:`, '');
    for (const g of run.interop.groups) out.push(`- ${g.step ? `${md(g.step)}: ` : ''}${g.direction}, ${g.receiver} ${md(g.variant)} from ${md(g.senders.join(', '))}: ${badge(g.status)}${g.message && g.status !== 'PASS' ? ` — ${md(g.message, 400)}` : ''}`);
    out.push('');
  }

  const problems: string[] = [];
  for (const cell of run.cells) {
    if (cell.message && cell.status === 'ERROR') problems.push(`- ${badge('ERROR')} **${md(cell.id)}**: ${md(cell.message)}`);
    for (const step of cell.steps) {
      for (const check of step.checks.filter((c) => c.status === 'FAIL' || c.status === 'ERROR' || c.status === 'XPASS')) {
        const got = check.status === 'FAIL' && !(check.message ?? '').includes('got ') ? ` (got \`${md(showValue(check.value), 80)}\`)` : '';
        problems.push(`- ${badge(check.status)} ${md(cell.id)} \`${md(`${step.id}.${check.id}`)}\`: ${md(check.message ?? '')}${got}`);
      }
      if (step.checks.length === 0 && (step.status === 'FAIL' || step.status === 'ERROR') && !cell.message) problems.push(`- ${badge(step.status)} ${md(cell.id)} \`${md(step.id)}\`: ${md(step.message ?? '')}`);
    }
  }
  if (problems.length) {
    out.push(`### Problems (${problems.length})`, '', ...problems.slice(0, MAX_ROWS));
    if (problems.length > MAX_ROWS) out.push(`- … ${problems.length - MAX_ROWS} more in results.json`);
    out.push('');
  }

  const xfails = new Map<string, Set<string>>();
  for (const cell of run.cells) {
    for (const step of cell.steps) {
      for (const check of step.checks.filter((c) => c.status === 'XFAIL')) {
        const key = `\`${md(`${step.id}.${check.check}`)}\`: ${md(cleanText(check.message ?? '').split(' — ')[0]!)}`;
        xfails.set(key, (xfails.get(key) ?? new Set()).add(cell.id));
      }
    }
  }
  if (xfails.size) {
    out.push(`<details><summary>Expected failures: ${xfails.size} known behaviour${xfails.size === 1 ? '' : 's'}</summary>`, '');
    for (const [key, cells] of [...xfails].slice(0, MAX_ROWS)) out.push(`- ${key} — ${cells.size} cell${cells.size === 1 ? '' : 's'}`);
    out.push('', '</details>', '');
  }

  const kernels = new Map<string, string>();
  for (const cell of run.cells) for (const side of ['ep', 'host'] as const) {
    const k = cell.kernels?.[side];
    if (k) kernels.set(`${side} ${k.name} ${k.key}`, `- ${side} **${md(k.name)}**: ${md(kernelText(k))}${k.sourceId !== k.source ? ` (${md(k.sourceId)})` : ''}`);
  }
  if (kernels.size) out.push('<details><summary>Kernels</summary>', '', ...kernels.values(), '', '</details>', '');
  return `${out.join('\n')}\n`;
}

export async function writeMarkdownSummary(dir: string, run: RunResult): Promise<string> {
  const path = join(dir, 'summary.md');
  await writeFile(`${path}.tmp`, renderMarkdownSummary(run));
  await rename(`${path}.tmp`, path);
  return path;
}
