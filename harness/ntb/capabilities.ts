/**
 * Runs the capability probes of capability-table.ts in one guest with a single script (one SSH round
 * trip), after the NTB/EPF modules are loaded so their symbols are in /proc/kallsyms. Observed
 * capabilities are decided later, from values the Rig reads through ntb_tool (decideObserved).
 */
import type { GuestExec } from '../guest/types.ts';
import { ExprError } from '../scenario/expr.ts';
import { evalExpr, valuesEqual } from '../scenario/expr-eval.ts';
import { capabilityTable, type CapabilityDef, type ObservedValue, type Probe, type ProbeSide } from './capability-table.ts';
import { sq } from './shell.ts';

export interface CapabilityProbeResult {
  /** `<side>.<name>` → true/false; missing when it could not be decided. */
  values: Record<string, boolean>;
  /** `<side>.<name>` → why it is unknown. */
  unknown: Record<string, string>;
  /** `uname -r` of the guest, for the report. */
  release?: string;
}

export interface Facts {
  kallsymsReadable: boolean;
  symbols: Set<string>;
  configGz: boolean;
  config: Map<string, string>;
  moduleFiles: Set<string>;
  strings: Set<string>;
  paths: Set<string>;
  release?: string;
  /** Values observed in the cell (db_valid_mask) and the parameters their expressions see (N, Ne, Nh). */
  observed?: Partial<Record<ObservedValue, number>>;
  params?: Record<string, number>;
}

type Table = Map<string, CapabilityDef & { side: ProbeSide; name: string }>;

export function leafProbes(table: Table, side: ProbeSide): Probe[] {
  return [...table.values()].filter((def) => def.side === side).map((def) => def.probe);
}

/** Every module's probe strings, deduplicated in table order: the script numbers them per module. */
export function moduleStringLists(probes: Probe[]): Map<string, string[]> {
  const modules = new Map<string, string[]>();
  for (const probe of probes) {
    if (!('module_string' in probe)) continue;
    const list = modules.get(probe.module_string.module) ?? [];
    for (const text of probe.module_string.strings) if (!list.includes(text)) list.push(text);
    modules.set(probe.module_string.module, list);
  }
  return modules;
}

/** The values `side` must observe for its capabilities (empty: nothing to read). */
export function observedValues(table: Table, side: ProbeSide): ObservedValue[] {
  const values = new Set<ObservedValue>();
  for (const def of table.values()) if (def.side === side && 'observed' in def.probe) values.add(def.probe.observed.value);
  return [...values];
}

/** Builds the probe script; its output is `key:value` lines parsed by parseFacts(). */
export function probeScript(probes: Probe[]): string {
  const symbols = new Set<string>();
  const configs = new Set<string>();
  const modules = moduleStringLists(probes);
  const paths = new Set<string>();
  for (const probe of probes) {
    if ('kallsyms' in probe) probe.kallsyms.forEach((s) => symbols.add(s));
    if ('config' in probe) {
      configs.add(probe.config);
      if (probe.symbol) symbols.add(probe.symbol);
    }
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
    // busybox grep stops at NUL bytes: split the binary into NUL-delimited strings, once per module
    // (every string is then a grep over text; a TCG guest pays for each pass over the binary).
    `$d ${file} 2>/dev/null | tr '\\000' '\\n' > /tmp/ntbh-probe.txt`,
    ...strings.map((text, index) => `grep -q -F ${sq(text)} /tmp/ntbh-probe.txt && echo ${sq(`str:${module}:${index}`)}`),
    'rm -f /tmp/ntbh-probe.txt',
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

function decideObservation(probe: Extract<Probe, { observed: unknown }>, facts: Facts): Decision {
  const { value: name, when_true, when_false } = probe.observed;
  const value = facts.observed?.[name];
  if (value === undefined) return { unknown: `${name} not observed yet (read through ntb_tool after setup)` };
  try {
    const env = facts.params ?? {};
    if (valuesEqual(value, evalExpr(when_true, env))) return true;
    if (valuesEqual(value, evalExpr(when_false, env))) return false;
  } catch (error) {
    if (error instanceof ExprError) return { unknown: `${name}: ${error.message}` };
    throw error;
  }
  return { unknown: `observed ${name} 0x${value.toString(16)} is neither ${when_true} nor ${when_false}` };
}

function decideLeaf(probe: Probe, facts: Facts, strings: Map<string, string[]>): Decision | undefined {
  if ('kallsyms' in probe) {
    if (!facts.kallsymsReadable) return { unknown: '/proc/kallsyms is not readable' };
    return probe.kallsyms.every((s) => facts.symbols.has(s));
  }
  if ('module_string' in probe) {
    const { module } = probe.module_string;
    if (!facts.moduleFiles.has(module)) return { unknown: `no ${module}.ko* under /lib/modules` };
    const numbered = strings.get(module) ?? [];
    return probe.module_string.strings.some((text) => facts.strings.has(`${module}:${numbered.indexOf(text)}`));
  }
  if ('config' in probe) {
    if (facts.configGz) return ['y', 'm'].includes(facts.config.get(probe.config) ?? '');
    if (probe.symbol && facts.kallsymsReadable) return facts.symbols.has(probe.symbol);
    return { unknown: `no /proc/config.gz to read ${probe.config} from` };
  }
  if ('path' in probe) return probe.path.some((p) => facts.paths.has(p));
  if ('observed' in probe) return decideObservation(probe, facts);
  return undefined;
}

/** Decides every capability of `side` from the facts, derived ones included. Exported for tests. */
export function decideCapabilities(table: Table, side: ProbeSide, facts: Facts): CapabilityProbeResult {
  const decided = new Map<string, Decision>();
  const strings = moduleStringLists(leafProbes(table, side));
  const decide = (key: string, stack: string[]): Decision => {
    const known = decided.get(key);
    if (known !== undefined) return known;
    const def = table.get(key);
    if (!def) return { unknown: `no probe defines ${key}` };
    if (stack.includes(key)) return { unknown: `capability cycle ${[...stack, key].join(' -> ')}` };
    let result = decideLeaf(def.probe, facts, strings);
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

export async function probeCapabilities(guest: GuestExec, side: ProbeSide, extra: Record<string, Probe> = {}, timeoutMs = 60_000): Promise<CapabilityProbeResult & { facts: Facts }> {
  const table = capabilityTable(extra);
  const result = await guest.exec(probeScript(leafProbes(table, side)), { timeoutMs });
  const facts = parseFacts(result.stdout);
  return { ...decideCapabilities(table, side, facts), facts };
}

/**
 * Decides `side` again with the values observed in the cell (read once ntb_tool is loaded); the
 * probed facts are reused, so only observed capabilities (and what derives from them) change.
 */
export async function decideObserved(
  extra: Record<string, Probe>,
  side: ProbeSide,
  facts: Facts,
  params: Record<string, number>,
  read: (value: ObservedValue) => Promise<number>,
): Promise<CapabilityProbeResult | undefined> {
  const table = capabilityTable(extra);
  const wanted = observedValues(table, side);
  if (wanted.length === 0) return undefined;
  const observed: Partial<Record<ObservedValue, number>> = {};
  for (const value of wanted) observed[value] = await read(value);
  return decideCapabilities(table, side, { ...facts, observed, params });
}
