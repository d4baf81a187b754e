/**
 * The harness's own apt sources, derived from the machine's apt configuration (never a hard-coded
 * mirror): deb-src for the machine's own suites (QEMU's source package) and deb + deb-src for the
 * later Debian suites that carry newer kernel sources, pinned so apt never uses them on its own.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { run } from '../util/proc.ts';

export const aptRoot = '/etc/apt';
/** The one sources file the harness owns, and its pin file. */
export const ntbhSourcesName = 'ntbh.sources';
export const ntbhPrefsName = 'ntbh';
/** Files earlier harness versions wrote; removed when the new file is written. */
export const legacySourcesNames = ['ntbh-deb-src.sources'];

/** Debian releases in order: the suite after the machine's own gives the backports suite we add. */
export const debianReleases = ['buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke'];

/**
 * The suites added for kernel sources, and how apt's preferences select each one's Release file
 * (experimental's Release says Codename: rc-buggy, so it is matched by its Suite name instead).
 */
export function kernelSuites(codename: string): { suite: string; pin: string }[] {
  const suites = [
    { suite: 'sid', pin: 'n=sid' },
    { suite: 'experimental', pin: 'a=experimental' },
  ];
  const next = debianReleases[debianReleases.indexOf(codename) + 1];
  if (debianReleases.includes(codename) && next) suites.push({ suite: `${next}-backports`, pin: `n=${next}-backports` });
  return suites;
}

export interface AptEntry {
  /** The file it came from (for messages). */
  file: string;
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Keyring path(s) or an embedded key block, as written. */
  signedBy?: string;
  /** Every other option (one-line [opts] or deb822 fields), lower-cased keys. */
  options: Record<string, string>;
}

/** One-line format: `deb [opt=val ...] URI suite [component ...]`, `#` comments. */
export function parseOneLine(text: string, file: string): AptEntry[] {
  const entries: AptEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const match = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const options: Record<string, string> = {};
    for (const option of (match[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const eq = option.indexOf('=');
      if (eq > 0) options[option.slice(0, eq).toLowerCase()] = option.slice(eq + 1);
    }
    const signedBy = options['signed-by'];
    delete options['signed-by'];
    entries.push({
      file,
      types: [match[1]!],
      uris: [match[3]!],
      suites: [match[4]!],
      components: match[5]!.split(/\s+/).filter(Boolean),
      signedBy,
      options,
    });
  }
  return entries;
}

/** deb822 format: stanzas separated by blank lines, `#` comment lines, indented continuation lines. */
export function parseDeb822(text: string, file: string): AptEntry[] {
  const entries: AptEntry[] = [];
  const stanzas: string[][] = [[]];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.trim() === '') {
      if (stanzas[stanzas.length - 1]!.length > 0) stanzas.push([]);
      continue;
    }
    stanzas[stanzas.length - 1]!.push(line);
  }
  for (const lines of stanzas) {
    const fields: Record<string, string> = {};
    let key = '';
    for (const line of lines) {
      if (/^\s/.test(line) && key) {
        // A continuation line; " ." stands for an empty line inside a multi-line value (an embedded key).
        const part = line.trim() === '.' ? '' : line.replace(/^\s/, '');
        fields[key] = fields[key] ? `${fields[key]}\n${part}` : part;
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      key = line.slice(0, colon).trim().toLowerCase();
      fields[key] = line.slice(colon + 1).trim();
    }
    if (!fields.types || !fields.uris || !fields.suites) continue;
    if (/^(no|false|0)$/i.test(fields.enabled ?? '')) continue;
    const words = (value: string | undefined) => (value ?? '').split(/\s+/).filter(Boolean);
    const { types, uris, suites, components, 'signed-by': signedBy, ...options } = fields;
    entries.push({ file, types: words(types), uris: words(uris), suites: words(suites), components: words(components), signedBy, options });
  }
  return entries;
}

/** Every enabled entry on the machine: sources.list plus sources.list.d's *.list and *.sources (other names are ignored, as apt does). */
export async function readAptEntries(root = aptRoot, skip: string[] = [ntbhSourcesName, ...legacySourcesNames]): Promise<AptEntry[]> {
  const entries: AptEntry[] = [];
  const main = join(root, 'sources.list');
  if (existsSync(main)) entries.push(...parseOneLine(await readFile(main, 'utf8'), main));
  const dir = join(root, 'sources.list.d');
  const names = existsSync(dir) ? (await readdir(dir)).sort() : [];
  for (const name of names) {
    if (skip.includes(name)) continue;
    const path = join(dir, name);
    if (name.endsWith('.list')) entries.push(...parseOneLine(await readFile(path, 'utf8'), path));
    else if (name.endsWith('.sources')) entries.push(...parseDeb822(await readFile(path, 'utf8'), path));
  }
  return entries;
}

/** One archive (URI + keyring) and the suites and components to use from it. */
export interface Archive {
  uri: string;
  suites: string[];
  components: string[];
  signedBy?: string;
}

export interface AptPlan {
  codename: string;
  /** The Debian archive the machine installs from (suite <codename> and its -updates etc.). */
  main: Archive;
  /** The security archive, when the machine has one. */
  security?: Archive;
  /** deb-src stanzas to write: the machine's own suites that have no deb-src entry yet. */
  ownSources: Archive[];
  /** Suites added for kernel sources (from the main archive's URI). */
  added: { suite: string; pin: string }[];
}

const isSecurityUri = (uri: string) => /-security\/*$/.test(uri);
const normalizeUri = (uri: string) => uri.replace(/\/+$/, '');

/** Finds the Debian archive entries for `codename` and derives what the harness adds. */
export function planAptSources(entries: AptEntry[], codename: string): AptPlan {
  const binaries = entries.filter((e) => e.types.includes('deb'));
  const mainEntry = binaries.find((e) => e.suites.includes(codename) && e.uris.some((u) => !isSecurityUri(u)));
  if (!mainEntry) {
    throw new HarnessError(`no Debian archive entry for "${codename}" in the machine's apt configuration`, {
      code: 'SETUP_NO_DEBIAN_ARCHIVE',
      kind: 'infra',
      phase: 'setup',
      excerpt: `Looked for a "deb" entry with suite ${codename} in /etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources (${entries.length} enabled entries found). Add the Debian archive you use, e.g. in deb822 form:\n  Types: deb\n  URIs: <your Debian mirror>\n  Suites: ${codename} ${codename}-updates\n  Components: main`,
    });
  }
  const mainUri = normalizeUri(mainEntry.uris.find((u) => !isSecurityUri(u))!);
  const archive = (uri: string, pick: (suite: string) => boolean, first: AptEntry): Archive => {
    // Suites may be spread over several entries (one-line format lists one suite per line).
    const same = binaries.filter((e) => e.uris.some((u) => normalizeUri(u) === uri));
    const suites = [...new Set(same.flatMap((e) => e.suites).filter(pick))];
    const components = [...new Set(same.filter((e) => e.suites.some(pick)).flatMap((e) => e.components))];
    return { uri, suites, components: components.length > 0 ? components : ['main'], signedBy: first.signedBy };
  };
  const own = (suite: string) => suite === codename || (suite.startsWith(`${codename}-`) && suite !== `${codename}-security`);
  const main = archive(mainUri, own, mainEntry);
  const securityEntry = binaries.find((e) => e.suites.includes(`${codename}-security`));
  const security = securityEntry
    ? archive(normalizeUri(securityEntry.uris[0]!), (s) => s === `${codename}-security`, securityEntry)
    : undefined;
  // Suites that already have a deb-src entry are left out (apt warns about duplicates).
  const sources = entries.filter((e) => e.types.includes('deb-src'));
  const lacksSource = (archive: Archive): Archive | undefined => {
    const suites = archive.suites.filter((suite) => !sources.some((e) => e.suites.includes(suite) && e.uris.some((u) => normalizeUri(u) === archive.uri)));
    return suites.length > 0 ? { ...archive, suites } : undefined;
  };
  const ownSources = [main, security].flatMap((a) => (a ? [lacksSource(a)].filter((x): x is Archive => x !== undefined) : []));
  return { codename, main, security, ownSources, added: kernelSuites(codename) };
}

function field(name: string, value: string): string {
  // A multi-line value (an embedded key) starts on the next line, indented; an empty line is written " .".
  if (!value.includes('\n')) return `${name}: ${value}`;
  return [`${name}:`, ...value.split('\n').map((line) => (line === '' ? ' .' : ` ${line}`))].join('\n');
}

function stanza(types: string, archive: { uri: string; suites: string[]; components: string[]; signedBy?: string }, extra: string[] = []): string {
  const lines = [field('Types', types), field('URIs', archive.uri), field('Suites', archive.suites.join(' ')), field('Components', archive.components.join(' ')), ...extra];
  if (archive.signedBy) lines.push(field('Signed-By', archive.signedBy));
  return lines.join('\n');
}

/** The harness's sources file (deb822). `arch` limits the added suites' indexes to the machine's own architecture. */
export function renderSources(plan: AptPlan, arch: string): string {
  const own = plan.ownSources.map((archive) => stanza('deb-src', archive));
  const added = stanza('deb deb-src', { uri: plan.main.uri, suites: plan.added.map((a) => a.suite), components: ['main'], signedBy: plan.main.signedBy }, [
    field('Architectures', arch),
  ]);
  return [
    "# Written by epf-ntb-harness (ntbh setup) from this machine's Debian entries; rewritten when they change.",
    "# deb-src for the machine's own suites: QEMU is rebuilt from Debian's source package.",
    ...(own.length > 0 ? [own.join('\n\n'), ''] : ['# (they all have deb-src entries already)', '']),
    `# Later suites, only for downloading kernel sources by exact version; /etc/apt/preferences.d/${ntbhPrefsName} pins them out.`,
    added,
    '',
  ].join('\n');
}

/** Pins the added suites below zero. */
export function renderPreferences(plan: AptPlan): string {
  const header = `# Written by epf-ntb-harness (ntbh setup). The suites below are configured only so the harness can
# download kernel sources by exact version (apt-get download pkg=ver, apt-get source --print-uris).
# Priority -10 rather than 1: below zero apt never selects a version from them by itself, not even for
# a package that exists nowhere else, so nothing on this machine is installed or upgraded from them.`;
  const stanzas = plan.added.map((a) => `Explanation: ntbh: kernel sources only\nPackage: *\nPin: release ${a.pin}\nPin-Priority: -10`);
  return `${header}\n\n${stanzas.join('\n\n')}\n`;
}

/** The "Package files" of `apt-cache policy`: each index's priority and suite. */
export function parsePolicyFiles(text: string): { priority: number; uri: string; suite: string }[] {
  const files: { priority: number; uri: string; suite: string }[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*(-?\d+)\s+(\S+)\s+([^\s/]+)\/\S+\s+\S+\s+Packages\s*$/.exec(line);
    if (match) files.push({ priority: Number(match[1]), uri: match[2]!, suite: match[3]! });
  }
  return files;
}

/** Added suites that apt does not see pinned below zero (a Pin line that matched no Release file). */
export function unpinnedSuites(plan: AptPlan, policy: string): string[] {
  const files = parsePolicyFiles(policy);
  return plan.added.map((a) => a.suite).filter((suite) => files.some((f) => f.suite === suite && f.priority >= 0));
}

/** VERSION_CODENAME from /etc/os-release text. */
export function osCodename(osRelease: string): string | undefined {
  const match = /^VERSION_CODENAME=["']?([^"'\n]*)["']?$/m.exec(osRelease);
  return match?.[1] || undefined;
}

export interface AptFiles {
  plan: AptPlan;
  sources: { path: string; content: string };
  preferences: { path: string; content: string };
  /** Old harness files to remove. */
  legacy: string[];
}

/** What the harness's apt files should contain on this machine. */
export async function desiredAptFiles(root = aptRoot, osRelease = '/etc/os-release'): Promise<AptFiles> {
  const codename = osCodename(await readFile(osRelease, 'utf8').catch(() => ''));
  if (!codename) {
    throw new HarnessError(`${osRelease} has no VERSION_CODENAME`, {
      code: 'SETUP_NO_DEBIAN_ARCHIVE',
      kind: 'infra',
      phase: 'setup',
      excerpt: 'The harness runs on Debian (bookworm or later) and derives its apt sources from the release codename.',
    });
  }
  const plan = planAptSources(await readAptEntries(root), codename);
  const arch = (await run('dpkg', ['--print-architecture'], { phase: 'setup', code: 'SETUP_FAILED' })).stdout.trim();
  return {
    plan,
    sources: { path: join(root, 'sources.list.d', ntbhSourcesName), content: renderSources(plan, arch) },
    preferences: { path: join(root, 'preferences.d', ntbhPrefsName), content: renderPreferences(plan) },
    legacy: legacySourcesNames.map((name) => join(root, 'sources.list.d', name)).filter((path) => existsSync(path)),
  };
}

/** True when the files on disk already are what `desired` says (nothing to write, no update needed). */
export async function aptFilesCurrent(desired: AptFiles): Promise<boolean> {
  if (desired.legacy.length > 0) return false;
  for (const file of [desired.sources, desired.preferences]) {
    if ((await readFile(file.path, 'utf8').catch(() => null)) !== file.content) return false;
  }
  return true;
}

/** Writes the harness's apt files (0644, as apt reads them as _apt) and removes the legacy ones. */
export async function writeAptFiles(desired: AptFiles): Promise<void> {
  for (const file of [desired.sources, desired.preferences]) {
    await mkdir(dirname(file.path), { recursive: true });
    await writeFile(file.path, file.content, { mode: 0o644 });
  }
  for (const path of desired.legacy) await rm(path, { force: true });
}

/** apt-get update, waiting for another apt (a concurrent setup) to release its lock rather than failing. */
export async function aptUpdate(): Promise<void> {
  await run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], {
    phase: 'setup',
    code: 'SETUP_APT_UPDATE',
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    timeoutMs: 900_000,
  });
}

/**
 * After an update: every added suite must be pinned out. If one is not, apt would upgrade the machine
 * from sid, so the harness's files are taken away again before failing.
 */
export async function assertPinned(desired: AptFiles): Promise<void> {
  const policy = (await run('apt-cache', ['policy'], { phase: 'setup', code: 'SETUP_APT_PIN' })).stdout;
  const loose = unpinnedSuites(desired.plan, policy);
  if (loose.length === 0) return;
  await rm(desired.sources.path, { force: true });
  await rm(desired.preferences.path, { force: true });
  throw new HarnessError(`apt does not apply the harness's pin to ${loose.join(', ')}; removed ${desired.sources.path} again`, {
    code: 'SETUP_APT_PIN',
    kind: 'infra',
    phase: 'setup',
    excerpt: `${desired.preferences.content}\nCheck \`apt-cache policy\` for those suites' release lines (n=, a=) and other preferences files that override these.`,
  });
}
