/**
 * Capability facts read from a kernel's build on the outer machine instead of inside the guest: the
 * symbols of System.map and of the loaded modules' .ko files (what /proc/kallsyms lists once they are
 * loaded), the config the kernel was built with (what /proc/config.gz holds), and the strings of the
 * built modules. Under TCG, awk over /proc/kallsyms and a pass over every probed .ko cost seconds per
 * guest; here they cost milliseconds, and the results per (kernel, probe set) are cached in the run.
 * Only what depends on the running guest is still read there: its release, its loaded modules and the
 * probed paths (one short script).
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestExec } from '../guest/types.ts';
import type { Arch } from '../kernel/spec.ts';
import { run } from '../util/proc.ts';
import { decideCapabilities, leafProbes, moduleStringLists, type CapabilityProbeResult, type Facts } from './capabilities.ts';
import { capabilityTable, type Probe, type ProbeSide } from './capability-table.ts';
import { sq } from './shell.ts';

/** The part of a kernel build the facts come from (KernelArtifact has these). */
export interface BuiltKernel {
  arch: Arch;
  release: string;
  /** Holds System.map and config. */
  dir: string;
  /** Root of the installed modules (lib/modules/<release> below it). */
  modulesRoot: string;
}

/** What the probes ask for, by kind. */
interface Wanted {
  symbols: Set<string>;
  configs: Set<string>;
  modules: Map<string, string[]>;
  paths: Set<string>;
}

function wanted(probes: Probe[]): Wanted {
  const out: Wanted = { symbols: new Set(), configs: new Set(), modules: moduleStringLists(probes), paths: new Set() };
  for (const probe of probes) {
    if ('kallsyms' in probe) probe.kallsyms.forEach((s) => out.symbols.add(s));
    if ('config' in probe) {
      out.configs.add(probe.config);
      if (probe.symbol) out.symbols.add(probe.symbol);
    }
    if ('path' in probe) probe.path.forEach((p) => out.paths.add(p));
  }
  return out;
}

/** The guest-side remainder: release, loaded modules, probed paths. */
export function runtimeScript(probes: Probe[]): string {
  const lines = ['echo "uname:$(uname -r)"', "cut -d' ' -f1 /proc/modules | sed 's/^/loaded:/'"];
  for (const path of wanted(probes).paths) lines.push(`[ -e ${sq(path)} ] && echo ${sq(`path:${path}`)}`);
  lines.push('true');
  return lines.join('\n');
}

export function parseRuntime(output: string): { release?: string; loaded: Set<string>; paths: Set<string> } {
  const out = { release: undefined as string | undefined, loaded: new Set<string>(), paths: new Set<string>() };
  for (const line of output.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const rest = line.slice(colon + 1).trim();
    if (key === 'uname') out.release = rest;
    else if (key === 'loaded' && rest) out.loaded.add(rest);
    else if (key === 'path') out.paths.add(rest);
  }
  return out;
}

/** CONFIG_X=value lines of a .config. */
export function parseConfig(text: string): Map<string, string> {
  const config = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m) config.set(m[1]!, m[2]!);
  }
  return config;
}

/**
 * Symbol names kallsyms would list from `nm`/System.map lines ("addr type name"): without
 * CONFIG_KALLSYMS_ALL only text symbols (t/T, weak w/W) are in kallsyms, with it every defined symbol.
 */
export function kallsymsNames(lines: string, all: boolean, want: Set<string>): Set<string> {
  const names = new Set<string>();
  for (const line of lines.split('\n')) {
    const parts = line.trim().split(/\s+/);
    const name = parts.length >= 3 ? parts[2]! : undefined;
    const type = parts.length >= 3 ? parts[1]! : '';
    if (!name || !want.has(name)) continue;
    if (all ? type !== 'U' : /^[tTwW]$/.test(type)) names.add(name);
  }
  return names;
}

/** Every string of a module binary, as the guest-side probe sees it: split at NUL and newline. */
export function binaryHasString(binary: Buffer, text: string): boolean {
  return binary
    .toString('latin1')
    .split(/[\0\n]/)
    .some((segment) => segment.includes(text));
}

async function findModules(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.ko(\.(xz|gz|zst))?$/.test(entry.name)) files.set(entry.name.replace(/\.ko(\.(xz|gz|zst))?$/, ''), path);
    }
  };
  if (existsSync(root)) await walk(root);
  return files;
}

const nmFor: Record<Arch, string> = { x86_64: 'nm', arm64: 'aarch64-linux-gnu-nm' };

/**
 * Facts for `probes` from the kernel build plus the guest's runtime remainder. Returns undefined when the
 * build does not have what is needed (no System.map or config, compressed modules): the caller then
 * probes inside the guest as before.
 */
export async function buildFacts(kernel: BuiltKernel, guest: GuestExec, probes: Probe[], timeoutMs: number): Promise<Facts | undefined> {
  const systemMap = join(kernel.dir, 'System.map');
  const configFile = join(kernel.dir, 'config');
  if (!existsSync(systemMap) || !existsSync(configFile)) return undefined;
  const want = wanted(probes);
  const moduleDir = join(kernel.modulesRoot, 'lib', 'modules', kernel.release);
  const modules = await findModules(moduleDir);
  if ([...modules.values()].some((path) => !path.endsWith('.ko'))) return undefined;

  const runtime = parseRuntime((await guest.exec(runtimeScript(probes), { timeoutMs })).stdout);
  if (runtime.release && runtime.release !== kernel.release) return undefined;
  const config = parseConfig(await readFile(configFile, 'utf8'));
  const all = config.get('CONFIG_KALLSYMS_ALL') === 'y';
  const facts: Facts = {
    kallsymsReadable: config.get('CONFIG_KALLSYMS') === 'y',
    symbols: kallsymsNames(await readFile(systemMap, 'utf8'), all, want.symbols),
    configGz: config.get('CONFIG_IKCONFIG_PROC') === 'y',
    config: new Map([...want.configs].filter((name) => config.has(name)).map((name) => [name, config.get(name)!])),
    moduleFiles: new Set(),
    strings: new Set(),
    paths: new Set([...want.paths].filter((p) => runtime.paths.has(p))),
    release: runtime.release ?? kernel.release,
  };
  // Module symbols are in kallsyms only while the module is loaded: read the loaded ones' .ko files.
  for (const name of runtime.loaded) {
    // /proc/modules spells names with '_', files may use '-' (pci-epf-vntb.ko is pci_epf_vntb).
    const file = [...modules.entries()].find(([fileName]) => fileName.replace(/-/g, '_') === name)?.[1];
    if (!file || want.symbols.size === 0) continue;
    const { stdout } = await run(nmFor[kernel.arch], ['--defined-only', file], { phase: 'step', code: 'COMMAND_FAILED' });
    for (const symbol of kallsymsNames(stdout, all, want.symbols)) facts.symbols.add(symbol);
  }
  for (const [module, strings] of want.modules) {
    const file = modules.get(module);
    if (!file) continue;
    facts.moduleFiles.add(module);
    const binary = await readFile(file);
    strings.forEach((text, index) => {
      if (binaryHasString(binary, text)) facts.strings.add(`${module}:${index}`);
    });
  }
  return facts;
}

/**
 * Like probeCapabilities, with the facts read from the kernel's build (harness/ntb/build-facts.ts) and
 * only the runtime remainder from the guest; undefined when the build cannot answer (then probe the guest).
 */
export async function probeCapabilitiesFromBuild(
  kernel: BuiltKernel,
  guest: GuestExec,
  side: ProbeSide,
  extra: Record<string, Probe> = {},
  timeoutMs = 60_000,
): Promise<(CapabilityProbeResult & { facts: Facts }) | undefined> {
  const table = capabilityTable(extra);
  const facts = await buildFacts(kernel, guest, leafProbes(table, side), timeoutMs);
  return facts ? { ...decideCapabilities(table, side, facts), facts } : undefined;
}
