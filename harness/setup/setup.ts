import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { HarnessError } from '../errors.ts';
import { run } from '../util/proc.ts';
import { cachePath } from '../util/paths.ts';
import { hashParts, short } from '../util/hash.ts';
import { hostPackages } from './packages.ts';
import { aptFilesCurrent, aptUpdate, assertPinned, desiredAptFiles, writeAptFiles } from './apt.ts';

export interface SetupOptions {
  log?: (line: string) => void;
  /** Re-check everything even if the marker says it was done. */
  force?: boolean;
}

/** Installs what the harness needs, idempotently. Fast (one dpkg-query) when all is there. */
export async function ensureSetup(options: SetupOptions = {}): Promise<void> {
  const log = options.log ?? (() => undefined);
  // The apt files are derived from the machine's own apt configuration: their content is part of the marker.
  const apt = await desiredAptFiles();
  const marker = cachePath(
    'setup',
    `${short(hashParts({ packages: hostPackages.join(' '), sources: apt.sources.content, preferences: apt.preferences.content }))}.done`,
  );
  const aptCurrent = await aptFilesCurrent(apt);
  if (!options.force && aptCurrent && existsSync(marker) && (await missingPackages()).length === 0 && (await hasArm64Arch())) return;

  if (process.getuid?.() !== 0) {
    const missing = await missingPackages();
    // Root has set the machine up already (the marker lives in root's cache, not ours).
    if (aptCurrent && missing.length === 0 && (await hasArm64Arch())) return;
    const what = missing.length > 0 ? `install ${missing.length} Debian package(s): ${missing.slice(0, 8).join(' ')}${missing.length > 8 ? ' …' : ''}` : `write ${apt.sources.path} and ${apt.preferences.path}`;
    throw new HarnessError(`setup needs root to ${what}`, {
      code: 'SETUP_NOT_ROOT',
      kind: 'infra',
      phase: 'setup',
      excerpt: 'Run `sudo npx ntbh setup` once, or install them with apt-get.',
    });
  }
  if (!existsSync('/usr/bin/apt-get')) {
    throw new HarnessError('setup needs apt-get (a Debian bookworm machine)', { code: 'SETUP_NO_APT', kind: 'infra', phase: 'setup' });
  }

  // A new sources entry or architecture needs a fresh package list before anything is installed.
  let needUpdate = false;
  if (!aptCurrent) {
    log(`setup: writing ${apt.sources.path} (deb-src for ${apt.plan.codename}; ${apt.plan.added.map((a) => a.suite).join(', ')} for kernel sources, pinned out by ${apt.preferences.path})`);
    await writeAptFiles(apt);
    needUpdate = true;
  }
  if (!(await hasArm64Arch())) {
    log('setup: adding the arm64 dpkg architecture (arm64 guest images)');
    await run('dpkg', ['--add-architecture', 'arm64'], { phase: 'setup', code: 'SETUP_FAILED' });
    needUpdate = true;
  }
  const aptEnv = { DEBIAN_FRONTEND: 'noninteractive' };
  const missing = await missingPackages();
  if (missing.length > 0 || needUpdate) {
    log('setup: apt-get update');
    await aptUpdate();
    if (needUpdate) await assertPinned(apt);
  }
  if (missing.length > 0) {
    log(`setup: installing ${missing.length} package(s): ${missing.join(' ')}`);
    await run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', ...missing], {
      phase: 'setup',
      code: 'SETUP_APT_INSTALL',
      env: aptEnv,
      timeoutMs: 1_800_000,
    });
  }
  await mkdir(cachePath('setup'), { recursive: true });
  await writeFile(marker, `${new Date().toISOString()}\n`);
}

async function missingPackages(): Promise<string[]> {
  const result = await run('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Abbrev}\n', ...hostPackages], {
    phase: 'setup',
  }).catch((error: HarnessError) => ({ stdout: error.excerpt ?? '' }));
  const installed = new Set(
    result.stdout
      .split('\n')
      .filter((line) => /\sii\s*$/.test(line))
      .map((line) => line.split(' ')[0]!.replace(/:.*$/, '')),
  );
  return hostPackages.filter((name) => !installed.has(name));
}

async function hasArm64Arch(): Promise<boolean> {
  const result = await run('dpkg', ['--print-foreign-architectures'], { phase: 'setup' });
  return result.stdout.split('\n').includes('arm64');
}
