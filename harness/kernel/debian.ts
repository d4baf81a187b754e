/**
 * `debian:<X.Y>` kernel sources from any suite the machine's apt knows (harness/setup/apt.ts adds the
 * later ones): the binary package linux-source-X.Y when one exists (Debian's patched tree), otherwise
 * the upstream tarball of the `linux` source package. Downloads are verified against apt's signed
 * indexes and cached; nothing is installed. See docs/kernel-sources.md.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { cachePath } from '../util/paths.ts';
import { run } from '../util/proc.ts';
import { sha256, short } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';
import { ensureSetup } from '../setup/setup.ts';
import { aptUpdate } from '../setup/apt.ts';
import { extractOnce } from './extract.ts';
import type { ResolvedSource, SourceProvenance } from './spec.ts';

/** What `debian:<spec>` asks for: a series (7.2), a release (7.2.13), or an exact Debian version (7.2=7.2.13-1). */
export interface DebianRequest {
  series: string;
  release?: string;
  pin?: string;
}

export function parseDebianRequest(spec: string): DebianRequest | undefined {
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?(?:=([0-9][A-Za-z0-9.+~:-]*))?$/.exec(spec);
  if (!match) return undefined;
  const series = `${match[1]}.${match[2]}`;
  return { series, release: match[3] !== undefined ? `${series}.${match[3]}` : undefined, pin: match[4] };
}

// ---------------------------------------------------------------- Debian versions

/** The upstream part of a Debian version: no epoch, no Debian revision ("7.3~rc7-1~exp1" → "7.3~rc7"). */
export function upstreamOf(version: string): string {
  const noEpoch = version.replace(/^\d+:/, '');
  const dash = noEpoch.lastIndexOf('-');
  return dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
}

/** The X.Y series of an upstream version ("7.3~rc7" → "7.3", "6.12.117" → "6.12"). */
export function seriesOf(upstream: string): string | undefined {
  return /^(\d+\.\d+)(?:[.~+]|$)/.exec(upstream)?.[1];
}

function orderOf(char: string | undefined): number {
  // dpkg's lexical order: ~ sorts before the end of the string, letters before non-letters.
  if (char === undefined) return 0;
  if (char === '~') return -1;
  if (/[A-Za-z]/.test(char)) return char.charCodeAt(0);
  return char.charCodeAt(0) + 256;
}

function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, compared character by character.
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const ca = i < a.length && !/\d/.test(a[i]!) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]!) ? b[j] : undefined;
      const diff = orderOf(ca) - orderOf(cb);
      if (diff !== 0) return diff;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    // Digit run, compared as a number.
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i]!)) na += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) nb += b[j++];
    const diff = Number(na || '0') - Number(nb || '0');
    if (diff !== 0) return diff;
  }
  return 0;
}

/** Compares two Debian versions as dpkg does: negative, zero or positive. */
export function compareDebianVersions(a: string, b: string): number {
  const split = (v: string) => {
    const epoch = /^(\d+):/.exec(v);
    const rest = epoch ? v.slice(epoch[0].length) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch: Number(epoch?.[1] ?? 0), upstream: dash > 0 ? rest.slice(0, dash) : rest, revision: dash > 0 ? rest.slice(dash + 1) : '' };
  };
  const x = split(a);
  const y = split(b);
  return Math.sign(x.epoch - y.epoch || comparePart(x.upstream, y.upstream) || comparePart(x.revision, y.revision));
}

// ---------------------------------------------------------------- apt output parsers

export interface MadisonRow {
  package: string;
  version: string;
  suite: string;
  kind: 'binary' | 'source';
}

/** `apt-cache madison` lines: "pkg | version | URI suite/component [arch Packages|Sources]". */
export function parseMadison(text: string): MadisonRow[] {
  const rows: MadisonRow[] = [];
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells.length !== 3 || !cells[0] || !cells[1]) continue;
    const where = cells[2]!.split(/\s+/);
    const kind = where[where.length - 1] === 'Sources' ? 'source' : where[where.length - 1] === 'Packages' ? 'binary' : undefined;
    if (!kind || where.length < 3) continue;
    rows.push({ package: cells[0], version: cells[1], suite: where[1]!.split('/')[0]!, kind });
  }
  return rows;
}

/** The first record of `apt-cache show pkg=ver`: its fields, lower-cased keys (one-line values). */
export function parseShow(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (Object.keys(fields).length > 0) break;
      continue;
    }
    const match = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (match) fields[match[1]!.toLowerCase()] = match[2]!;
  }
  return fields;
}

export interface PrintedUri {
  uri: string;
  file: string;
  size: number;
  sha256?: string;
}

/** `apt-get source --print-uris` / `apt-get download --print-uris` lines: "'URI' file size SHA256:hex". */
export function parsePrintUris(text: string): PrintedUri[] {
  const uris: PrintedUri[] = [];
  for (const line of text.split('\n')) {
    const match = /^'([^']+)'\s+(\S+)\s+(\d+)(?:\s+(\S+))?/.exec(line.trim());
    if (!match) continue;
    const hash = /^SHA256:([0-9a-f]{64})$/i.exec(match[4] ?? '');
    uris.push({ uri: match[1]!, file: match[2]!, size: Number(match[3]), sha256: hash?.[1]?.toLowerCase() });
  }
  return uris;
}

// ---------------------------------------------------------------- candidates

export interface Candidate {
  kind: 'binary' | 'source';
  package: string;
  version: string;
  upstream: string;
  suites: string[];
}

/** Groups rows by (package, version), newest first. */
export function candidatesFrom(rows: MadisonRow[]): Candidate[] {
  const byKey = new Map<string, Candidate>();
  for (const row of rows) {
    const key = `${row.kind} ${row.package} ${row.version}`;
    const found = byKey.get(key);
    if (found) {
      if (!found.suites.includes(row.suite)) found.suites.push(row.suite);
      continue;
    }
    byKey.set(key, { kind: row.kind, package: row.package, version: row.version, upstream: upstreamOf(row.version), suites: [row.suite] });
  }
  return [...byKey.values()].sort((a, b) => compareDebianVersions(b.version, a.version));
}

/** Source packages that carry a series' upstream tree: `linux` (sid, backports) and `linux-X.Y` (a stable release's second kernel). */
const sourcePackages = (series: string) => ['linux', `linux-${series}`];

/**
 * The candidates for a request, in the order to try them: linux-source-X.Y binaries (newest first),
 * then the matching source packages' upstream tarballs (newest first).
 */
export function pickCandidates(rows: MadisonRow[], request: DebianRequest): Candidate[] {
  const matches = (c: Candidate) => {
    if (request.pin) return c.version === request.pin;
    if (request.release) return c.upstream === request.release || c.upstream.startsWith(`${request.release}+`);
    return seriesOf(c.upstream) === request.series;
  };
  const all = candidatesFrom(rows).filter(matches);
  return [
    ...all.filter((c) => c.kind === 'binary' && c.package === `linux-source-${request.series}`),
    ...all.filter((c) => c.kind === 'source' && sourcePackages(request.series).includes(c.package)),
  ];
}

export interface AvailableSeries {
  series: string;
  /** The newest linux-source-X.Y binary. */
  binary?: Candidate;
  /** The newest source package version of that series (upstream tarball). */
  source?: Candidate;
}

/** Per X.Y series, the newest binary and source candidates; series sorted numerically. */
export function availableSeries(rows: MadisonRow[]): AvailableSeries[] {
  const bySeries = new Map<string, AvailableSeries>();
  for (const c of candidatesFrom(rows)) {
    const binarySeries = c.kind === 'binary' ? /^linux-source-(\d+\.\d+)$/.exec(c.package)?.[1] : undefined;
    const sourceSeries = c.kind === 'source' && (c.package === 'linux' || /^linux-\d+\.\d+$/.test(c.package)) ? seriesOf(c.upstream) : undefined;
    const series = binarySeries ?? sourceSeries;
    if (!series) continue;
    const entry = bySeries.get(series) ?? { series };
    if (c.kind === 'binary') entry.binary ??= c;
    else entry.source ??= c;
    bySeries.set(series, entry);
  }
  const key = (s: string) => s.split('.').map(Number);
  return [...bySeries.values()].sort((a, b) => key(a.series)[0]! - key(b.series)[0]! || key(a.series)[1]! - key(b.series)[1]!);
}

// ---------------------------------------------------------------- apt queries

const aptPhase = { phase: 'kernel-build' as const };

/**
 * apt's binary cache of the package lists, kept in ours: Debian's container images turn it off
 * (Dir::Cache::pkgcache ""), and then every apt-cache call re-reads all lists (seconds of CPU).
 */
async function aptCache(): Promise<string[]> {
  await mkdir(cachePath('apt'), { recursive: true });
  return ['-o', `Dir::Cache::pkgcache=${cachePath('apt', 'pkgcache.bin')}`, '-o', `Dir::Cache::srcpkgcache=${cachePath('apt', 'srcpkgcache.bin')}`];
}

const aptCacheQuery = async (args: string[]) => (await run('apt-cache', [...(await aptCache()), ...args], { ...aptPhase, code: 'KERNEL_SOURCE_APT' })).stdout;

async function madison(packages: string[]): Promise<MadisonRow[]> {
  // Unknown names only warn on stderr; the exit status stays 0.
  return parseMadison(await aptCacheQuery(['madison', ...packages]));
}

/** Every kernel source the configured suites offer (madison of all linux-source-* binaries and the linux source packages). */
async function allRows(): Promise<MadisonRow[]> {
  const names = (await aptCacheQuery(['pkgnames', 'linux-source-']))
    .split('\n')
    .filter((name) => /^linux-source-\d+\.\d+$/.test(name));
  const series = names.map((name) => name.slice('linux-source-'.length));
  return madison([...names, 'linux', ...series.map((s) => `linux-${s}`)]);
}

/** The kernel series the machine's apt can provide, refreshing the package lists once if it knows none. */
export async function listAvailable(log: (line: string) => void = () => undefined): Promise<AvailableSeries[]> {
  let rows = await allRows();
  if (rows.length === 0) {
    await refreshLists(log);
    rows = await allRows();
  }
  return availableSeries(rows);
}

async function refreshLists(log: (line: string) => void): Promise<void> {
  log('apt knows no kernel sources: running setup and apt-get update once');
  await ensureSetup({ log });
  await aptUpdate();
}

// ---------------------------------------------------------------- resolution

/** Resolves `debian:<spec>` to an unpacked tree in the cache, downloading what is needed. */
export async function resolveDebianSource(spec: string, log: (line: string) => void): Promise<ResolvedSource> {
  const request = parseDebianRequest(spec);
  if (!request) {
    throw new HarnessError(`bad Debian kernel source "debian:${spec}"`, {
      code: 'BAD_KERNEL_SOURCE',
      kind: 'input',
      phase: 'kernel-build',
      excerpt: 'Use debian:X.Y (newest of a series), debian:X.Y.Z (one upstream release) or debian:X.Y=<Debian version>.',
    });
  }
  const query = [`linux-source-${request.series}`, ...sourcePackages(request.series)];
  let rows = await madison(query);
  let refreshed = false;
  // Nothing known at all: the package lists were never fetched (or the harness's suites never added).
  if (rows.length === 0 && (await allRows()).length === 0) {
    await refreshLists(log);
    refreshed = true;
    rows = await madison(query);
  }
  let candidates = pickCandidates(rows, request);
  if (candidates.length === 0) throw await unavailable(spec, request, rows);

  const fetchOne = (candidate: Candidate) => (candidate.kind === 'binary' ? fromBinary(candidate, log) : fromSource(candidate, log));
  try {
    return await firstDownloadable(candidates, fetchOne, log, `debian:${spec}`);
  } catch (error) {
    // Every file was gone from the archive: the package lists may be stale.
    if (refreshed || process.getuid?.() !== 0 || !(error instanceof HarnessError) || error.code !== 'KERNEL_SOURCE_DOWNLOAD') throw error;
    await refreshLists(log);
    rows = await madison(query);
    candidates = pickCandidates(rows, request);
    if (candidates.length === 0) throw await unavailable(spec, request, rows);
    return firstDownloadable(candidates, fetchOne, log, `debian:${spec}`);
  }
}

/**
 * Tries the candidates in order; a download failure (an old file gone from the archive) moves on to
 * the next one, any other error stops. All failing is one KERNEL_SOURCE_DOWNLOAD listing each attempt.
 */
export async function firstDownloadable<T>(candidates: Candidate[], fetchOne: (c: Candidate) => Promise<T>, log: (line: string) => void, what: string): Promise<T> {
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      return await fetchOne(candidate);
    } catch (error) {
      if (!(error instanceof HarnessError) || error.code !== 'KERNEL_SOURCE_DOWNLOAD') throw error;
      failures.push(`${candidate.package} ${candidate.version}: ${error.message}`);
      const next = candidates[candidates.indexOf(candidate) + 1];
      log(`warning: could not download ${candidate.package} ${candidate.version} (${error.message})${next ? `; trying ${next.package} ${next.version}` : ''}`);
    }
  }
  throw new HarnessError(`no candidate for ${what} could be downloaded`, {
    code: 'KERNEL_SOURCE_DOWNLOAD',
    kind: 'infra',
    phase: 'kernel-build',
    excerpt: failures.join('\n'),
  });
}

async function unavailable(spec: string, request: DebianRequest, rows: MadisonRow[]): Promise<HarnessError> {
  const series = availableSeries(await allRows());
  const same = candidatesFrom(rows).filter((c) => seriesOf(c.upstream) === request.series);
  const versions = same.length > 0 ? `\nversions of ${request.series}: ${same.map((c) => `${c.package} ${c.version} (${c.suites.join(', ')})`).join(', ')}` : '';
  return new HarnessError(`no Debian kernel source matches debian:${spec} in the configured suites`, {
    code: 'KERNEL_VERSION_UNAVAILABLE',
    kind: 'input',
    phase: 'kernel-build',
    excerpt: `available: ${series.map((s) => s.series).join(' ') || '(none)'}${versions}\n\`npx ntbh kernel sources\` lists each series' versions and suites.`,
  });
}

/** Debian's patched tree from the linux-source-X.Y .deb (its usr/src/linux-source-X.Y.tar.xz). */
async function fromBinary(candidate: Candidate, log: (line: string) => void): Promise<ResolvedSource> {
  const pkg = candidate.package;
  // The same identity the installed-package path used, so kernels cached under it stay valid.
  const id = `debian:${pkg}=${candidate.version}`;
  const dir = cachePath('src', `${pkg}-${short(sha256(id))}`);
  const show = parseShow(await aptCacheQuery(['show', `${pkg}=${candidate.version}`]));
  if (!show.sha256 || !show.filename) {
    throw new HarnessError(`apt has no SHA256 for ${pkg} ${candidate.version}`, { code: 'KERNEL_SOURCE_APT', kind: 'infra', phase: 'kernel-build' });
  }
  const file = show.filename.split('/').pop()!;
  const provenance: SourceProvenance = { package: pkg, version: candidate.version, upstream: candidate.upstream, file, sha256: show.sha256, suite: candidate.suites.join(' ') };
  const aptOptions = [...(await aptCache()), '-o', 'APT::Sandbox::User=root'];
  await extractOnce(dir, log, `getting ${pkg} ${candidate.version} into the cache`, async (tmp) => {
    const deb = await download(file, show.sha256!, log, `${pkg} ${candidate.version} (${candidate.suites.join(', ')})`, (into) =>
      run('apt-get', [...aptOptions, 'download', `${pkg}=${candidate.version}`], { ...aptPhase, cwd: into, code: 'KERNEL_SOURCE_DOWNLOAD', timeoutMs: 1_800_000 }),
    );
    await run('bash', ['-c', 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards "*usr/src/$2.tar.xz" | tar -xJ -C "$3"', 'bash', deb, pkg, tmp], {
      ...aptPhase,
      code: 'KERNEL_SOURCE_UNPACK',
    });
    return join(tmp, pkg);
  });
  return { id, dir, external: false, label: `debian ${pkg} ${candidate.version} (${candidate.suites.join(', ')})`, provenance };
}

/** The upstream tree: the source package's .orig tarball only (no Debian patches). */
async function fromSource(candidate: Candidate, log: (line: string) => void): Promise<ResolvedSource> {
  const printed = parsePrintUris(
    (await run('apt-get', [...(await aptCache()), 'source', '--print-uris', '--only-source', `${candidate.package}=${candidate.version}`], { ...aptPhase, code: 'KERNEL_SOURCE_APT' })).stdout,
  );
  const orig = printed.find((p) => /\.orig\.tar\.(xz|gz|bz2)$/.test(p.file));
  if (!orig?.sha256) {
    throw new HarnessError(`apt lists no upstream tarball with a SHA256 for ${candidate.package} ${candidate.version}`, {
      code: 'KERNEL_SOURCE_APT',
      kind: 'infra',
      phase: 'kernel-build',
      excerpt: printed.map((p) => p.file).join('\n'),
    });
  }
  const id = `debian:${orig.file}=${orig.sha256}`;
  const dir = cachePath('src', `${candidate.package}-${candidate.upstream}-${short(sha256(id))}`);
  const provenance: SourceProvenance = { package: candidate.package, version: candidate.version, upstream: candidate.upstream, file: orig.file, sha256: orig.sha256, suite: candidate.suites.join(' ') };
  await extractOnce(dir, log, `getting ${orig.file} into the cache`, async (tmp) => {
    const tarball = await download(orig.file, orig.sha256!, log, `${orig.file} of ${candidate.package} ${candidate.version} (${candidate.suites.join(', ')})`, (into) =>
      // apt's own downloader: the machine's apt proxy settings apply, and it checks the hash too.
      run('/usr/lib/apt/apt-helper', ['-o', 'APT::Sandbox::User=root', 'download-file', orig.uri, join(into, orig.file), `SHA256:${orig.sha256}`], {
        ...aptPhase,
        code: 'KERNEL_SOURCE_DOWNLOAD',
        timeoutMs: 1_800_000,
      }),
    );
    await run('tar', ['-xf', tarball, '-C', tmp], { ...aptPhase, code: 'KERNEL_SOURCE_UNPACK' });
    const top = await readdir(tmp);
    if (top.length !== 1) {
      throw new HarnessError(`${orig.file} does not hold one top directory`, { code: 'KERNEL_SOURCE_UNPACK', kind: 'infra', phase: 'kernel-build', excerpt: top.slice(0, 10).join('\n') });
    }
    return join(tmp, top[0]!);
  });
  return {
    id,
    dir,
    external: false,
    label: `debian ${candidate.package} ${candidate.version} upstream tarball ${orig.file} (${candidate.suites.join(', ')})`,
    provenance,
  };
}

/**
 * Downloads `file` into cache/kernel-debs (once: a verified copy is reused) and checks its SHA256
 * against the value from apt's signed index. Runs under the caller's unpack lock.
 */
async function download(file: string, expected: string, log: (line: string) => void, what: string, fetch: (into: string) => Promise<unknown>): Promise<string> {
  const debs = cachePath('kernel-debs');
  const target = join(debs, file);
  await mkdir(debs, { recursive: true });
  return withLock(target, async () => {
    if (existsSync(target) && (await fileSha256(target)) === expected) return target;
    const tmp = join(debs, `.tmp-${process.pid}-${Date.now()}`);
    await mkdir(tmp, { recursive: true });
    try {
      log(`downloading ${what}`);
      const started = Date.now();
      await fetch(tmp);
      const got = join(tmp, (await readdir(tmp)).find((name) => !name.startsWith('.')) ?? file);
      const actual = existsSync(got) ? await fileSha256(got) : 'nothing downloaded';
      if (actual !== expected) {
        throw new HarnessError(`${file}: SHA256 ${actual} does not match apt's ${expected}`, { code: 'KERNEL_SOURCE_DOWNLOAD', kind: 'infra', phase: 'kernel-build' });
      }
      await rename(got, target);
      log(`downloaded ${file} in ${((Date.now() - started) / 1000).toFixed(1)} s, SHA256 verified`);
      return target;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
