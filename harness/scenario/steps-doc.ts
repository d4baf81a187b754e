/**
 * The "Steps and their checks" table of scenarios/README.md, generated from the step registry so the
 * README cannot drift from what the harness runs (`ntbh steps`; a unit test compares the two).
 */
import { COMMON_CHECKS } from './checks.ts';
import { BASE_FIELDS, type CheckDef } from './steps/define.ts';
import { SETUP, STEP_ENTRIES } from './steps/index.ts';

function checkList(checks: Record<string, CheckDef>, lead?: string): string {
  const items = Object.entries(checks).map(([name, c]) => `\`${name}\` (${c.spec}${c.note ? `; ${c.note}` : ''})`);
  return `${lead ? `${lead}: ` : ''}${items.join(', ')}`;
}

export function stepsTable(): string {
  const rows = [
    '| step | checks (default spec) |',
    '|---|---|',
    `| *(setup)* | ${checkList(SETUP.checks)} |`,
    ...STEP_ENTRIES.map((e) => {
      const fields = Object.keys(e.schema.shape).filter((k) => k !== 'type' && !BASE_FIELDS.includes(k));
      const docs = 'docs' in e ? e.docs : undefined;
      const params = fields.length ? ` {${fields.join(', ')}${docs?.params ? `; ${docs.params}` : ''}}` : '';
      return `| \`${e.type}\`${params} | ${checkList(e.checks, docs?.lead)} |`;
    }),
    `| any step | ${checkList(COMMON_CHECKS)} |`,
  ];
  return `${rows.join('\n')}\n`;
}
