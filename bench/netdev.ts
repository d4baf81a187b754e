/**
 * ntb_netdev figures, measured in one run of bench/netdev-bench.yaml (new/new): TCP throughput over
 * ntb_netdev each way with 1 and 2 queue pairs, ntb_perf's raw window throughput in the same pair, their
 * ratio, and a short soak's per-vector MSI counts (raised by the EP, delivered by the link, counted by
 * the host). `--from DIR` prints the same table from an earlier run instead (a bench run, or any run
 * with netdev-transfer / netdev-soak steps, e.g. scenarios/soak.yaml's 10 minutes).
 * Run: npm run bench:netdev [-- --soak SECONDS] [--results DIR] [--from DIR]
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../harness/util/paths.ts';

interface Check {
  id: string;
  check: string;
  status: string;
  value: unknown;
  message?: string | null;
}
interface Step {
  id: string;
  type: string;
  status: string;
  checks?: Check[];
}
interface Results {
  status: string;
  cells: { id: string; status: string; steps: Step[] }[];
}

function args(): { soak: number; results?: string; from?: string } {
  const argv = process.argv.slice(2);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return { soak: Number(value('--soak') ?? 120), results: value('--results'), from: value('--from') };
}

const num = (c: Check | undefined) => (typeof c?.value === 'number' ? c.value : undefined);
const find = (step: Step | undefined, id: string) => step?.checks?.find((c) => c.id === id);
const fmt = (n: number | undefined, digits = 0) => (n === undefined ? '—' : n.toFixed(digits));
const DIRS = ['host-to-ep', 'ep-to-host'] as const;

/** The table rows for one cell: every netdev-transfer step against the cell's ntb_perf, and every soak. */
export function summarize(results: Results): { lines: string[]; figures: Record<string, unknown>[] } {
  const lines: string[] = [];
  const figures: Record<string, unknown>[] = [];
  for (const cell of results.cells) {
    lines.push(`cell ${cell.id}: ${cell.status}`);
    const perf = cell.steps.find((s) => s.type === 'perf');
    // ntb_perf reports MBytes/s (10^6 bytes); netdev-transfer kbit/s (10^3 bits): 1 MB/s = 8000 kbit/s.
    const perfKbit = Object.fromEntries(DIRS.map((d) => [d, num(find(perf, `mbps[${d}]`)) !== undefined ? num(find(perf, `mbps[${d}]`))! * 8000 : undefined]));
    if (perf) lines.push(`  ntb_perf (raw window): ${DIRS.map((d) => `${d} ${fmt(num(find(perf, `mbps[${d}]`)))} MB/s`).join(', ')}`);
    let qps: number | undefined;
    for (const step of cell.steps) {
      if (step.type === 'netdev-up') qps = Math.max(...(step.checks ?? []).filter((c) => c.check === 'qp_count').map((c) => Number(c.value)));
      if (step.type === 'netdev-transfer') {
        for (const d of DIRS) {
          const kbit = num(find(step, `kbit_s[${d}]`));
          if (kbit === undefined) continue;
          const intact = find(step, `match[${d}]`)?.value === true;
          const ratio = kbit !== undefined && perfKbit[d] ? kbit / perfKbit[d]! : undefined;
          lines.push(
            `  ${step.id} (${qps ?? '?'} QP${qps === 1 ? '' : 's'}) ${d}: ${kbit} kbit/s${intact ? '' : ' (NOT intact)'}` +
              (ratio !== undefined ? `, netdev / ntb_perf ${fmt(ratio, 3)}` : ''),
          );
          figures.push({ cell: cell.id, step: step.id, qps, direction: d, kbit_s: kbit, intact, ntb_perf_kbit_s: perfKbit[d], ratio });
        }
      }
      if (step.type === 'netdev-soak') {
        const it = find(step, 'iterations');
        const row = {
          cell: cell.id,
          step: step.id,
          iterations: num(it),
          failed_iterations: num(find(step, 'failed_iterations')),
          kbit_s: num(find(step, 'kbit_s')),
          msis: num(find(step, 'msis')),
          lost: num(find(step, 'lost')),
          duplicated: num(find(step, 'duplicated')),
          coalesced: num(find(step, 'coalesced')),
          counters: find(step, 'msis')?.message ?? '',
        };
        const share = row.msis && row.coalesced !== undefined ? ` (${fmt((100 * row.coalesced) / row.msis, 1)} % of delivered)` : '';
        lines.push(
          `  ${step.id}: ${it?.message ?? `${row.iterations} iterations`}, failed ${fmt(row.failed_iterations)}, mean ${fmt(row.kbit_s)} kbit/s; ` +
            `MSIs delivered ${fmt(row.msis)}, lost ${fmt(row.lost)}, duplicated ${fmt(row.duplicated)}, coalesced ${fmt(row.coalesced)}${share}`,
          `    per host vector: ${row.counters}`,
        );
        figures.push(row);
      }
    }
  }
  return { lines, figures };
}

async function main(): Promise<void> {
  const { soak, results: given, from } = args();
  let dir = from;
  let exitCode = 0;
  if (!dir) {
    dir = given ?? (await mkdtemp(join(repoRoot, 'results', 'bench-netdev-')));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // The soak's length is the one knob: a copy of the scenario with it set, kept with the results.
    const yaml = (await readFile(join(repoRoot, 'bench', 'netdev-bench.yaml'), 'utf8')).replace(/^(\s+duration:) \d+$/m, `$1 ${soak}`);
    const scenario = join(dir, 'netdev-bench.yaml');
    await writeFile(scenario, yaml, { mode: 0o600 });
    const child = await execa('node', [join(repoRoot, 'bin', 'ntbh.js'), 'run', scenario, '--results', join(dir, 'run')], {
      cwd: repoRoot,
      reject: false,
      stdout: ['pipe', { file: join(dir, 'run.log') }],
      stderr: ['pipe', { file: join(dir, 'run.log') }],
    });
    exitCode = child.exitCode ?? 2;
    dir = join(dir, 'run');
  }
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  const { lines, figures } = summarize(results);
  if (!from) await writeFile(join(dir, 'bench-netdev.json'), JSON.stringify({ measuredAt: new Date().toISOString(), status: results.status, figures }, null, 2), { mode: 0o600 });
  process.stdout.write(`${lines.join('\n')}\nrun: ${results.status} (${dir})\n`);
  process.exitCode = exitCode;
}

if (process.argv[1]?.endsWith('netdev.ts')) await main();
