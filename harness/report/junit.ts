/**
 * JUnit XML for CI dashboards: a <testsuite> per cell (plus one for the interop property) with the
 * cell's kernels as <properties> (ep.release, ep.source, ...), a <testcase> per check. FAIL → <failure>, ERROR → <error> (infrastructure), SKIP → <skipped>, XFAIL → <skipped
 * type="xfail"> (pytest's convention), XPASS → passed, or <failure> under --strict. ANSI sequences and
 * XML-invalid characters are stripped.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CellKernels, CheckResult, RunResult, Status } from '../results/model.ts';
import { showValue, xmlEscape } from './format.ts';

interface Case {
  classname: string;
  name: string;
  status: Status;
  message?: string;
  detail?: string;
  timeSec?: number;
}

function outcome(c: Case, strict: boolean): string {
  const message = xmlEscape(c.message ?? c.status);
  const body = c.detail ? xmlEscape(c.detail) : '';
  switch (c.status) {
    case 'FAIL':
      return `<failure message="${message}" type="FAIL">${body}</failure>`;
    case 'ERROR':
      return `<error message="${message}" type="ERROR">${body}</error>`;
    case 'SKIP':
      return `<skipped message="${message}"/>`;
    case 'XFAIL':
      return `<skipped message="${message}" type="xfail"/>`;
    case 'XPASS':
      return strict ? `<failure message="${message}" type="XPASS">${body}</failure>` : `<system-out>XPASS: ${message}</system-out>`;
    case 'PASS':
      return '';
  }
}

function checkCase(classname: string, check: CheckResult): Case {
  const detail = [`value: ${showValue(check.value)}`, check.expected !== undefined ? `expected: ${showValue(check.expected)}` : '', check.known !== undefined ? `known: ${showValue(check.known)}` : '']
    .filter(Boolean)
    .join('\n');
  return { classname, name: check.id, status: check.status, message: check.message, detail };
}

/** Each side's kernel as testsuite properties: which release and source a cell's verdicts are about. */
function kernelProperties(kernels: CellKernels | undefined): string[] {
  const props = (['ep', 'host'] as const).flatMap((side) => {
    const k = kernels?.[side];
    if (!k) return [];
    const entries: [string, string | undefined][] = [
      ['release', k.release],
      ['kernel', k.name],
      ['arch', k.arch],
      ['source', k.source],
      ['source_id', k.sourceId],
      ['sha256', k.sha256],
      ['patches', k.patches.join(',') || undefined],
      ['key', k.key],
    ];
    return entries.filter(([, v]) => v !== undefined).map(([key, value]) => `      <property name="${side}.${key}" value="${xmlEscape(value!)}"/>`);
  });
  return props.length ? ['    <properties>', ...props, '    </properties>'] : [];
}

function suite(name: string, cases: Case[], strict: boolean, timeSec: number, properties: string[] = []): string {
  const count = (pred: (c: Case) => boolean) => cases.filter(pred).length;
  const failures = count((c) => c.status === 'FAIL' || (strict && c.status === 'XPASS'));
  const errors = count((c) => c.status === 'ERROR');
  const skipped = count((c) => c.status === 'SKIP' || c.status === 'XFAIL');
  const body = cases.map((c) => {
    const inner = outcome(c, strict);
    const time = c.timeSec !== undefined ? ` time="${c.timeSec.toFixed(3)}"` : '';
    const open = `    <testcase classname="${xmlEscape(c.classname)}" name="${xmlEscape(c.name)}"${time}`;
    return inner ? `${open}>${inner}</testcase>` : `${open}/>`;
  });
  return [`  <testsuite name="${xmlEscape(name)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${timeSec.toFixed(3)}">`, ...properties, ...body, '  </testsuite>'].join('\n');
}

export function renderJunit(run: RunResult): string {
  const suites = run.cells.map((cell) => {
    const cases = cell.steps.flatMap((step): Case[] => {
      const classname = `${run.scenario}.${cell.id}.${step.id}`;
      if (step.checks.length === 0) return [{ classname, name: step.id, status: step.status, message: step.message, timeSec: step.durationMs / 1000 }];
      return step.checks.map((check) => checkCase(classname, check));
    });
    return suite(`${run.scenario}/${cell.id}`, cases, run.strict, cell.durationMs / 1000, kernelProperties(cell.kernels));
  });
  if (run.interop.groups.length > 0) {
    const cases = run.interop.groups.map((g): Case => ({ classname: `${run.scenario}.interop.${g.direction}`, name: `${g.receiver}-${g.variant}`, status: g.status, message: g.message }));
    suites.push(suite(`${run.scenario}/interop`, cases, run.strict, 0));
  }
  const all = run.totals;
  const failures = all.FAIL + (run.strict ? all.XPASS : 0);
  const tests = Object.values(all).reduce((a, b) => a + b, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xmlEscape(run.scenario)}" tests="${tests}" failures="${failures}" errors="${all.ERROR}" skipped="${all.SKIP + all.XFAIL}" time="${(run.durationMs / 1000).toFixed(3)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}

export async function writeJunit(dir: string, run: RunResult): Promise<string> {
  const path = join(dir, 'junit.xml');
  await writeFile(path, renderJunit(run));
  return path;
}
