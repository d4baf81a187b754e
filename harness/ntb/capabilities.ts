/**
 * Runs the capability probes of capability-table.ts in one guest with a single script (one SSH round
 * trip), after the NTB/EPF modules are loaded so their symbols are in /proc/kallsyms.
 */
import type { GuestExec } from '../guest/types.ts';
import { capabilityTable, type CapabilityDef, type Probe, type ProbeSide } from './capability-table.ts';
import { sq } from './shell.ts';

export interface CapabilityProbeResult {
  /** `<side>.<name>` → true/false; missing when it could not be decided. */
  values: Record<string, boolean>;
  /** `<side>.<name>` → why it is unknown. */
  unknown: Record<string, string>;
  /** `uname -r` of the guest, for the report. */
  release?: string;
}

interface Facts {
  kallsymsReadable: boolean;
  symbols: Set<string>;
  configGz: boolean;
  config: Map<string, string>;
  moduleFiles: Set<string>;
  strings: Set<string>;
  paths: Set<string>;
  release?: string;
}

type Table = Map<string, CapabilityDef & { side: ProbeSide; name: string }>;

function leafProbes(table: Table, side: ProbeSide): Probe[] {
  return [...table.values()].filter((def) => def.side === side).map((def) => def.probe);
}

/** Builds the probe script; its output is `key:value` lines parsed by parseFacts(). */
export function probeScript(probes: Probe[]): string {
  const symbols = new Set<string>();
  const configs = new Set<string>();
  const modules = new Map<string, string[]>();
  const paths = new Set<string>();
  for (const probe of probes) {
    if ('kallsyms' in probe) probe.kallsyms.forEach((s) => symbols.add(s));
    if ('config' in probe) {
      configs.add(probe.config);
      if (probe.symbol) symbols.add(probe.symbol);
    }
    if ('module_string' in probe) modules.set(probe.module_string.module, [...(modules.get(probe.module_string.module) ?? []), ...probe.module_string.strings]);
    if ('path' in probe) probe.path.forEach((p) => paths.add(p));
  }
  const lines = ['echo "uname:$(uname -r)"', '[ -r /proc/kallsyms ] && echo kallsyms:1'];
  if (symbols.size) lines.push(`awk '{print $3}' /proc/kallsyms 2>/dev/null | grep -x -F ${[...symbols].map((s) => `-e ${sq(s)}`).join(' ')} | sort -u | sed 's/^/sym:/'`);
  if (configs.size) {
    const pattern = `^(${[...configs].join('|')})=`;
    lines.push(`if [ -r /proc/config.gz ]; then echo config-gz:1; zcat /proc/config.gz | grep -E ${sq(pattern)} | sed 's/^/cfg:/'; fi`);
  }
  for (const [module, strings] of modules) {
    lines.push(
      `f=$(find /lib/modules/$(uname -r) -name ${sq(`${module}.ko*`)} 2>/dev/null | head -n 1)`,
      `if [ -n "$f" ]; then echo ${sq(`modfile:${module}`)}; ${moduleStringsScript('"$f"', module, strings)}; fi`,
    );
  }
  for (const path of paths) lines.push(`[ -e ${sq(path)} ] && echo ${sq(`path:${path}`)}`);
  lines.push('true');
  return lines.join('\n');
}

/** Prints `str:<module>:<index>` for each string found in the (possibly compressed) module file. */
export function moduleStringsScript(file: string, module: string, strings: string[]): string {
  return [
    `case ${file} in *.xz) d='xz -dc';; *.gz) d='gzip -dc';; *.zst) d='zstd -dc';; *) d=cat;; esac`,
    `$d ${file} > /tmp/ntbh-probe.ko 2>/dev/null`,
    // busybox grep stops at NUL bytes: split the binary into NUL-delimited strings first.
    ...strings.map((text, index) => `tr '\\000' '\\n' < /tmp/ntbh-probe.ko | grep -q -F ${sq(text)} && echo ${sq(`str:${module}:${index}`)}`),
    'rm -f /tmp/ntbh-probe.ko',
  ].join('\n');
}

export function parseFacts(output: string): Facts {
  const facts: Facts = { kallsymsReadable: false, symbols: new Set(), configGz: false, config: new Map(), moduleFiles: new Set(), strings: new Set(), paths: new Set() };
  for (const line of output.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const rest = line.slice(colon + 1).trim();
    if (key === 'uname') facts.release = rest;
    else if (key === 'kallsyms') facts.kallsymsReadable = true;
    else if (key === 'sym') facts.symbols.add(rest);
    else if (key === 'config-gz') facts.configGz = true;
    else if (key === 'cfg') {
      const [name, value] = rest.split('=');
      if (name) facts.config.set(name, value ?? '');
    } else if (key === 'modfile') facts.moduleFiles.add(rest);
    else if (key === 'str') facts.strings.add(rest);
    else if (key === 'path') facts.paths.add(rest);
  }
  return facts;
}

type Decision = boolean | { unknown: string };

function decideLeaf(probe: Probe, facts: Facts): Decision | undefined {
  if ('kallsyms' in probe) {
    if (!facts.kallsymsReadable) return { unknown: '/proc/kallsyms is not readable' };
    return probe.kallsyms.every((s) => facts.symbols.has(s));
  }
  if ('module_string' in probe) {
    const { module, strings } = probe.module_string;
    if (!facts.moduleFiles.has(module)) return { unknown: `no ${module}.ko* under /lib/modules` };
    return strings.some((_, index) => facts.strings.has(`${module}:${index}`));
  }
  if ('config' in probe) {
    if (facts.configGz) return ['y', 'm'].includes(facts.config.get(probe.config) ?? '');
    if (probe.symbol && facts.kallsymsReadable) return facts.symbols.has(probe.symbol);
    return { unknown: `no /proc/config.gz to read ${probe.config} from` };
  }
  if ('path' in probe) return probe.path.some((p) => facts.paths.has(p));
  return undefined;
}

/** Decides every capability of `side` from the facts, derived ones included. Exported for tests. */
export function decideCapabilities(table: Table, side: ProbeSide, facts: Facts): CapabilityProbeResult {
  const decided = new Map<string, Decision>();
  const decide = (key: string, stack: string[]): Decision => {
    const known = decided.get(key);
    if (known !== undefined) return known;
    const def = table.get(key);
    if (!def) return { unknown: `no probe defines ${key}` };
    if (stack.includes(key)) return { unknown: `capability cycle ${[...stack, key].join(' -> ')}` };
    let result = decideLeaf(def.probe, facts);
    if (result === undefined) {
      const names = 'any' in def.probe ? def.probe.any : 'all' in def.probe ? def.probe.all : [];
      const parts = names.map((name) => decide(`${side}.${name}`, [...stack, key]));
      const wanted = 'any' in def.probe;
      if (parts.some((p) => p === wanted)) result = wanted;
      else result = parts.find((p) => typeof p !== 'boolean') ?? !wanted;
    }
    decided.set(key, result);
    return result;
  };
  const out: CapabilityProbeResult = { values: {}, unknown: {}, release: facts.release };
  for (const [key, def] of table) {
    if (def.side !== side) continue;
    const result = decide(key, []);
    if (typeof result === 'boolean') out.values[key] = result;
    else out.unknown[key] = result.unknown;
  }
  return out;
}

export async function probeCapabilities(guest: GuestExec, side: ProbeSide, extra: Record<string, Probe> = {}, timeoutMs = 60_000): Promise<CapabilityProbeResult> {
  const table = capabilityTable(extra);
  const result = await guest.exec(probeScript(leafProbes(table, side)), { timeoutMs });
  return decideCapabilities(table, side, parseFacts(result.stdout));
}
