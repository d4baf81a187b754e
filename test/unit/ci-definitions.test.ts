// The CI definitions users copy (ci/): they parse, and every `ntbh` command and option they call
// exists in the CLI (asked through `ntbh <command> --help`, the real program).
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { parseKnownIssues } from '../../harness/compare/known-issues.ts';
import { repoRoot } from '../../harness/util/paths.ts';

type Json = Record<string, unknown>;
const load = (name: string) => parse(readFileSync(join(repoRoot, 'ci', name), 'utf8'), { uniqueKeys: true }) as Json;

/** Every shell line of the file's jobs that calls ntbh. */
function ntbhCalls(scripts: string[]): string[][] {
  return scripts
    .flatMap((s) => s.split('\n'))
    .map((line) => /npx ntbh (.*)$/.exec(line)?.[1])
    .filter((rest): rest is string => rest !== undefined)
    .map((rest) => rest.split(/\s+/));
}

const helpCache = new Map<string, string>();
async function help(command: string[]): Promise<string> {
  const key = command.join(' ');
  if (!helpCache.has(key)) {
    const result = await execa('node', [join(repoRoot, 'bin', 'ntbh.js'), ...command, '--help'], { reject: false, cwd: repoRoot });
    helpCache.set(key, result.exitCode === 0 ? result.stdout : '');
  }
  return helpCache.get(key)!;
}

async function checkCalls(t: Test, calls: string[][]): Promise<void> {
  for (const call of calls) {
    const command = call[0] === 'export' ? call.slice(0, 2) : call.slice(0, 1);
    const text = await help(command);
    t.not(text, '', `ntbh ${command.join(' ')} exists`);
    for (const option of call.filter((word) => word.startsWith('--'))) t.match(text, new RegExp(`(^|\\s)${option}[ ,=<]`, 'm'), `ntbh ${command.join(' ')} ${option}`);
  }
}

t.test('GitHub Actions workflow: shard matrix, cache by inputs, merge, step summary, JUnit', async (t) => {
  const wf = load('github-actions.yml');
  const jobs = wf.jobs as Record<string, Json>;
  const shard = jobs.shard!;
  const merge = jobs.merge!;
  const shards = ((shard.strategy as Json).matrix as Json).shard as number[];
  t.same(shards, Array.from({ length: shards.length }, (_, i) => i + 1), 'shards are 1..n');
  const steps = (job: Json) => job.steps as Json[];
  const runs = (job: Json) => steps(job).flatMap((s) => (typeof s.run === 'string' ? [s.run] : []));
  const cache = steps(shard).find((s) => String(s.uses).startsWith('actions/cache'))!;
  const key = String((cache.with as Json).key);
  for (const input of ['kernel-configs/**', 'kernel-patches/**', 'link/**', 'scenarios/']) t.match(key, input, `cache key hashes ${input}`);
  t.equal((cache.with as Json).path, '${{ env.NTBH_CACHE }}');
  t.match(runs(shard).join('\n'), '--shard ${{ matrix.shard }}/${{ strategy.job-total }}');
  t.equal(merge.needs, 'shard');
  t.equal(merge.if, 'always()', 'merge runs when a shard failed');
  t.match(runs(merge).join('\n'), /summary\.md >> "\$GITHUB_STEP_SUMMARY"/);
  t.ok(steps(merge).some((s) => String(s.uses).startsWith('actions/upload-artifact') && String((s.with as Json).path).endsWith('junit.xml')), 'JUnit uploaded');
  const calls = ntbhCalls([...runs(shard), ...runs(merge)]);
  t.same(calls.map((c) => c[0]).sort(), ['compare', 'merge', 'run']);
  await checkCalls(t, calls);
});

t.test('GitLab CI: parallel shards, merge, JUnit report', async (t) => {
  const ci = load('gitlab-ci.yml');
  const shard = ci['ntbh-shard'] as Json;
  const merge = ci['ntbh-merge'] as Json;
  t.type(shard.parallel, 'number');
  t.match((shard.script as string[]).join('\n'), '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"');
  t.same((merge.needs as Json[])[0], { job: 'ntbh-shard', artifacts: true });
  t.equal(merge.when, 'always');
  t.equal(((merge.artifacts as Json).reports as Json).junit, 'merged/junit.xml');
  t.ok((ci.stages as string[]).indexOf(String(shard.stage)) < (ci.stages as string[]).indexOf(String(merge.stage)));
  const calls = ntbhCalls([...(shard.script as string[]), ...(merge.script as string[])]);
  t.same(calls.map((c) => c[0]).sort(), ['merge', 'run']);
  await checkCalls(t, calls);
});

t.test('the known-issues file the definitions point at loads', async (t) => {
  const text = readFileSync(join(repoRoot, 'ci', 'known-issues.yaml'), 'utf8');
  t.same(parseKnownIssues(text, 'ci/known-issues.yaml').issues, []);
  // Its commented example is valid too, uncommented.
  const example = text
    .split('\n')
    .filter((l) => /^# {1,3}(issues:|- |\w+:)/.test(l) || /^# {5}/.test(l))
    .map((l) => l.replace(/^# /, ''))
    .join('\n');
  t.equal(parseKnownIssues(example, 'example').issues.length, 1);
});
