// End-to-end: kernel trees really resolved, downloaded and unpacked from the configured Debian suites.
import t from 'tap';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSetup } from '../../harness/setup/setup.ts';
import { listAvailable, resolveDebianSource } from '../../harness/kernel/debian.ts';
import { cachePath } from '../../harness/util/paths.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

/** VERSION.PATCHLEVEL.SUBLEVEL from a tree's top Makefile. */
function makefileRelease(dir: string): string {
  const text = readFileSync(join(dir, 'Makefile'), 'utf8');
  const field = (name: string) => new RegExp(`^${name} = (\\d*)`, 'm').exec(text)?.[1] ?? '?';
  return [field('VERSION'), field('PATCHLEVEL'), field('SUBLEVEL')].filter((part) => part !== '' && part !== '0').join('.');
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

t.before(async () => {
  await ensureSetup({ log });
});

t.test('the configured suites offer 6.12 and the 7.x series', async (t) => {
  const series = (await listAvailable(log)).map((s) => s.series);
  for (const want of ['6.12', '7.1', '7.2']) t.ok(series.includes(want), `${want} is available (${series.join(' ')})`);
});

t.test('debian:7.2 is the linux-source-7.2 package, verified and unpacked', async (t) => {
  const source = await resolveDebianSource('7.2', log);
  const p = source.provenance!;
  t.equal(p.package, 'linux-source-7.2');
  t.equal(source.id, `debian:linux-source-7.2=${p.version}`, 'identity as for an installed package');
  t.match(p.upstream, /^7\.2(\.\d+)?$/);
  t.equal(makefileRelease(source.dir), p.upstream, 'the tree is the release apt named');
  t.match(p.sha256, /^[0-9a-f]{64}$/);
  const deb = cachePath('kernel-debs', p.file);
  if (existsSync(deb)) t.equal(await fileSha256(deb), p.sha256, 'the cached .deb is the one apt lists');
  t.ok(existsSync(join(source.dir, 'drivers/pci/endpoint/functions/pci-epf-vntb.c')), 'the endpoint NTB function is there');

  const started = Date.now();
  const pinned = await resolveDebianSource(`7.2=${p.version}`, log);
  t.equal(pinned.id, source.id, 'the pinned form names the same tree');
  t.equal(pinned.dir, source.dir);
  t.ok(Date.now() - started < 60_000, 'and it comes from the cache');
});

t.test('debian:7.1 has no binary package: the upstream tarball of the linux source package', async (t) => {
  const source = await resolveDebianSource('7.1', log);
  const p = source.provenance!;
  t.equal(p.package, 'linux');
  t.match(p.file, /^linux_7\.1(\.\d+)?\.orig\.tar\.xz$/);
  t.equal(source.id, `debian:${p.file}=${p.sha256}`);
  t.equal(makefileRelease(source.dir), p.upstream);
  t.ok(existsSync(join(source.dir, 'drivers/ntb/hw/epf/ntb_hw_epf.c')), 'the host NTB driver is there');
  t.notOk(existsSync(join(source.dir, 'debian')), 'no Debian packaging in the upstream tree');
});

t.test('a series nobody has is an input error listing what is available', async (t) => {
  await t.rejects(resolveDebianSource('5.99', log), { code: 'KERNEL_VERSION_UNAVAILABLE', kind: 'input', excerpt: /available: .*7\.2/ });
  await t.rejects(resolveDebianSource('7.2=7.2.0-0nothing', log), { code: 'KERNEL_VERSION_UNAVAILABLE' });
});
