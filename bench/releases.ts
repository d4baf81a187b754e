/**
 * What a matrix over real releases costs, cold and warm, measured in one invocation on one machine:
 *   - each scenario's wall time with the cache as it is (warm: kernels, images and QEMU already built)
 *   - with --cold, the same run first against an empty NTBH_CACHE (QEMU, every kernel the matrix needs and
 *     the images built from nothing), then again warm against that cache: cold / warm is the ratio
 *   - the share of a cold run spent building each kernel, from the kernels' own metadata.json
 * Run: npx tsx bench/releases.ts [--cold] [--scenario scenarios/release-interop.yaml ...] [--results DIR]
 * A cold run of release-interop builds QEMU plus six kernels: about an hour on 2 cores.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../harness/util/paths.ts';

interface Timed {
  scenario: string;
  cache: 'cold' | 'warm';
  wallS: number;
  exitCode: number;
  results: string;
}

function args(): { cold: boolean; scenarios: string[]; results: string | undefined } {
  const argv = process.argv.slice(2);
  const scenarios: string[] = [];
  let results: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--scenario') scenarios.push(argv[++i]!);
    if (argv[i] === '--results') results = argv[++i];
  }
  return {
    cold: argv.includes('--cold'),
    scenarios: scenarios.length ? scenarios : ['scenarios/release-interop.yaml', 'scenarios/doorbell-interop.yaml'],
    results,
  };
}

/** One `ntbh run` as a child process, so a cold run really starts from nothing but the given cache. */
async function timedRun(scenario: string, cache: 'cold' | 'warm', results: string, env: Record<string, string>): Promise<Timed> {
  const out = join(results, `${basename(scenario, '.yaml')}-${cache}`);
  const started = Date.now();
  const child = await execa('node', [join(repoRoot, 'bin', 'ntbh.js'), 'run', scenario, '--results', out], {
    cwd: repoRoot,
    env,
    reject: false,
    stdout: ['pipe', { file: `${out}.log` }],
    stderr: ['pipe', { file: `${out}.log` }],
  });
  return { scenario, cache, wallS: (Date.now() - started) / 1000, exitCode: child.exitCode ?? 2, results: out };
}

/** Seconds each kernel of a cache took to build (config + compile + modules), from its metadata.json. */
async function kernelBuilds(cache: string): Promise<{ kernel: string; seconds: number }[]> {
  const dir = join(cache, 'kernels');
  if (!existsSync(dir)) return [];
  const rows = [];
  for (const name of (await readdir(dir)).filter((n) => !n.includes('.tmp-'))) {
    const meta = JSON.parse(await readFile(join(dir, name, 'metadata.json'), 'utf8').catch(() => '{}')) as {
      durationsMs?: Record<string, number>;
      release?: string;
    };
    const ms = Object.values(meta.durationsMs ?? {}).reduce((a, b) => a + b, 0);
    rows.push({ kernel: `${name.replace(/-[0-9a-f]{16}$/, '')} ${meta.release ?? ''}`.trim(), seconds: Math.round(ms / 1000) });
  }
  return rows.sort((a, b) => b.seconds - a.seconds);
}

async function main(): Promise<void> {
  const { cold, scenarios, results: given } = args();
  const results = given ?? (await mkdtemp(join(repoRoot, 'results', 'bench-releases-')));
  await mkdir(results, { recursive: true, mode: 0o700 });
  const timings: Timed[] = [];
  const lines: string[] = [];
  for (const scenario of scenarios) {
    if (cold) {
      const cache = await mkdtemp(join(results, 'cache-'));
      const env = { ...process.env, NTBH_CACHE: cache } as Record<string, string>;
      const c = await timedRun(scenario, 'cold', results, env);
      const w = await timedRun(scenario, 'warm', results, env);
      timings.push(c, w);
      lines.push(`${scenario}: cold ${c.wallS.toFixed(0)} s (exit ${c.exitCode}), warm ${w.wallS.toFixed(0)} s (exit ${w.exitCode}), cold/warm ${(c.wallS / w.wallS).toFixed(1)}`);
      for (const k of await kernelBuilds(cache)) lines.push(`  built ${k.kernel}: ${k.seconds} s (${((100 * k.seconds) / c.wallS).toFixed(0)} % of the cold run)`);
      await rm(cache, { recursive: true, force: true });
    } else {
      const w = await timedRun(scenario, 'warm', results, process.env as Record<string, string>);
      timings.push(w);
      lines.push(`${scenario}: warm ${w.wallS.toFixed(0)} s (exit ${w.exitCode})`);
    }
  }
  if (!cold && timings.length > 1) {
    const [a, b] = timings;
    lines.push(`${a!.scenario} / ${b!.scenario} warm: ${(a!.wallS / b!.wallS).toFixed(2)}`);
  }
  await writeFile(join(results, 'bench-releases.json'), JSON.stringify({ measuredAt: new Date().toISOString(), timings }, null, 2));
  process.stdout.write(`${lines.join('\n')}\nresults: ${results}\n`);
  process.exitCode = timings.every((t) => t.exitCode === 0) ? 0 : 1;
}

await main();
