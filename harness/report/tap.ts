/**
 * TAP 14: a subtest per cell (a `# kernels:` comment names its releases), a subtest per step, a test
 * point per check. XFAIL is `not ok # TODO` (an expected failure), XPASS `ok # TODO` (a TODO that
 * passed), SKIP `ok # SKIP`; FAIL and ERROR are `not ok` with a YAML diagnostic (message, expected,
 * known, got, severity).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckResult, RunResult, Status } from '../results/model.ts';
import { isPassing } from '../results/status.ts';
import { cleanText, kernelText, showValue } from './format.ts';

function oneLine(text: string): string {
  // '#' would start a directive inside a description.
  return cleanText(text).replace(/\s+/g, ' ').replace(/#/g, '\\#').trim();
}

function yamlString(text: string): string {
  return JSON.stringify(cleanText(text));
}

function point(n: number, status: Status, description: string, reason: string | undefined, strict: boolean): string {
  const why = reason ? ` ${oneLine(reason)}` : '';
  switch (status) {
    case 'PASS':
      return `ok ${n} - ${description}`;
    case 'SKIP':
      return `ok ${n} - ${description} # SKIP${why}`;
    case 'XFAIL':
      return `not ok ${n} - ${description} # TODO${why}`;
    case 'XPASS':
      return strict ? `not ok ${n} - ${description} (XPASS)` : `ok ${n} - ${description} # TODO${why}`;
    case 'FAIL':
    case 'ERROR':
      return `not ok ${n} - ${description}`;
  }
}

function diagnostic(check: CheckResult, indent: string): string[] {
  if (check.status !== 'FAIL' && check.status !== 'ERROR' && check.status !== 'XPASS') return [];
  const lines = [`message: ${yamlString(check.message ?? check.status)}`, `severity: ${check.status === 'ERROR' ? 'error' : 'fail'}`];
  if (check.expected !== undefined) lines.push(`expected: ${yamlString(showValue(check.expected))}`);
  if (check.known !== undefined) lines.push(`known: ${yamlString(showValue(check.known))}`);
  lines.push(`got: ${yamlString(showValue(check.value))}`);
  return [`${indent}  ---`, ...lines.map((l) => `${indent}  ${l}`), `${indent}  ...`];
}

export function renderTap(run: RunResult): string {
  const out = ['TAP version 14'];
  const strict = { strict: run.strict };
  const top = run.cells.length + (run.interop.groups.length > 0 ? 1 : 0);
  out.push(`1..${top}`);
  run.cells.forEach((cell, c) => {
    out.push(`# Subtest: ${cell.id}`, `    1..${cell.steps.length}`);
    const kernels = (['ep', 'host'] as const).filter((side) => cell.kernels?.[side]).map((side) => `${side} ${kernelText(cell.kernels![side]!)}`);
    if (kernels.length) out.push(`    # kernels: ${oneLine(kernels.join('; '))}`);
    cell.steps.forEach((step, s) => {
      out.push(`    # Subtest: ${step.id}`, `        1..${step.checks.length}`);
      step.checks.forEach((check, k) => {
        out.push(`        ${point(k + 1, check.status, oneLine(check.id), check.message, run.strict)}`, ...diagnostic(check, '        '));
      });
      const passing = isPassing(step.status, strict);
      out.push(`    ${passing ? 'ok' : 'not ok'} ${s + 1} - ${step.id}${step.status === 'SKIP' ? ` # SKIP ${oneLine(step.message ?? '')}` : ''}`);
    });
    out.push(`${isPassing(cell.status, strict) ? 'ok' : 'not ok'} ${c + 1} - ${cell.id}${cell.message ? ` (${oneLine(cell.message)})` : ''}`);
  });
  if (run.interop.groups.length > 0) {
    out.push('# Subtest: interop', `    1..${run.interop.groups.length}`);
    run.interop.groups.forEach((g, i) => {
      out.push(`    ${point(i + 1, g.status, `${g.direction} receiver ${g.receiver} ${g.variant}`, g.message, run.strict)}`);
    });
    out.push(`${isPassing(run.interop.status, strict) ? 'ok' : 'not ok'} ${top} - interop`);
  }
  return `${out.join('\n')}\n`;
}

export async function writeTap(dir: string, run: RunResult): Promise<string> {
  const path = join(dir, 'results.tap');
  await writeFile(path, renderTap(run));
  return path;
}
