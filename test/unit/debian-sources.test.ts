import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  availableSeries,
  candidatesFrom,
  compareDebianVersions,
  firstDownloadable,
  parseDebianRequest,
  parseMadison,
  parsePrintUris,
  parseShow,
  pickCandidates,
  seriesOf,
  upstreamOf,
} from '../../harness/kernel/debian.ts';
import { parseKernelSource } from '../../harness/kernel/source.ts';
import { HarnessError } from '../../harness/errors.ts';

// Captured on the CI machine with bookworm + sid + experimental + trixie-backports configured (mirror host replaced).
const captured = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/captured', name), 'utf8');
const rows = parseMadison(captured('apt-madison-kernels.txt'));

t.test('debian: source specs', async (t) => {
  t.same(parseDebianRequest('7.2'), { series: '7.2', release: undefined, pin: undefined });
  t.same(parseDebianRequest('7.1.8'), { series: '7.1', release: '7.1.8', pin: undefined });
  t.same(parseDebianRequest('6.12=6.12.117-1~deb12u1'), { series: '6.12', release: undefined, pin: '6.12.117-1~deb12u1' });
  t.equal(parseDebianRequest('seven'), undefined);
  t.equal(parseDebianRequest('7'), undefined);
  t.same(parseKernelSource('debian:7.2=7.2.13-1'), { kind: 'debian', version: '7.2=7.2.13-1' });
  t.throws(() => parseKernelSource('debian:latest'), { code: 'BAD_KERNEL_SOURCE' });
});

t.test('Debian version order (dpkg rules)', async (t) => {
  const sorted = ['7.3~rc7-1~exp1', '7.3.4-1~bpo13+1', '7.2.13-1', '7.2.12-1~bpo13+1', '7.2.9-1', '7.2.10-1', '7.1.8-2', '7.1.8-1~bpo13+1', '1:0.1-1', '7.3-1']
    .sort(compareDebianVersions);
  t.same(sorted, ['7.1.8-1~bpo13+1', '7.1.8-2', '7.2.9-1', '7.2.10-1', '7.2.12-1~bpo13+1', '7.2.13-1', '7.3~rc7-1~exp1', '7.3-1', '7.3.4-1~bpo13+1', '1:0.1-1']);
  t.equal(compareDebianVersions('6.12.117-1~deb12u1', '6.12.117-1~deb12u1'), 0);
  t.ok(compareDebianVersions('6.1.192-3', '6.1.192-2') > 0);
  t.ok(compareDebianVersions('1.0a', '1.0+') < 0, 'letters sort before other characters');
  t.equal(upstreamOf('7.3~rc7-1~exp1'), '7.3~rc7');
  t.equal(upstreamOf('2:1.2-3-4'), '1.2-3');
  t.equal(seriesOf('7.3~rc7'), '7.3');
  t.equal(seriesOf('6.12.117'), '6.12');
  t.equal(seriesOf('6.1'), '6.1');
  t.equal(seriesOf('6.12'), '6.12', 'not 6.1');
});

t.test('apt-cache madison: binaries and sources, with suites', async (t) => {
  t.ok(rows.length > 100);
  t.same(rows[0], { package: 'linux-source-6.1', version: '6.1.192-3', suite: 'bookworm-security', kind: 'binary' });
  t.ok(rows.some((r) => r.kind === 'source' && r.package === 'linux' && r.version === '7.1.8-1~bpo13+1' && r.suite === 'trixie-backports'));
  const c612 = candidatesFrom(rows).find((c) => c.package === 'linux-source-6.12')!;
  t.same(c612.suites, ['bookworm-security'], 'the amd64 and arm64 lines are one candidate');
});

t.test('picking: linux-source binary first, then the source package, newest first', async (t) => {
  const pick = (spec: string) => pickCandidates(rows, parseDebianRequest(spec)!);
  const v72 = pick('7.2');
  t.same(v72[0], { kind: 'binary', package: 'linux-source-7.2', version: '7.2.13-1', upstream: '7.2.13', suites: ['sid'] });
  t.same(
    v72.filter((c) => c.kind === 'binary').map((c) => c.version),
    ['7.2.13-1', '7.2.12-1~bpo13+1', '7.2.11-1~bpo13+1', '7.2.9-1~bpo13+1', '7.2.6-1~bpo13+1'],
    'older binaries are the fallbacks when a download fails',
  );
  t.equal(pick('7.3')[0]!.version, '7.3.4-1~bpo13+1', 'the release beats experimental\'s rc');
  t.equal(pick('6.12')[0]!.version, '6.12.117-1~deb12u1', 'the identity kernels were cached under');
  t.equal(pick('6.1')[0]!.version, '6.1.192-3');

  const v71 = pick('7.1');
  t.ok(v71.every((c) => c.kind === 'source' && c.package === 'linux'), 'no linux-source-7.1 binary: the source package');
  t.equal(v71[0]!.version, '7.1.13-1~bpo13+1');
  t.same(
    pick('7.1.8').map((c) => [c.version, c.suites.join(' ')]),
    [
      ['7.1.8-2', 'sid'],
      ['7.1.8-1~bpo13+1', 'trixie-backports'],
    ],
  );
  t.same(
    pick('7.2.10').map((c) => `${c.kind} ${c.version}`),
    ['source 7.2.10-1'],
    'a release with no binary comes from its source package',
  );
  t.same(
    pick('7.2=7.2.12-1~bpo13+1').map((c) => `${c.kind} ${c.version}`),
    ['binary 7.2.12-1~bpo13+1', 'source 7.2.12-1~bpo13+1'],
  );
  t.equal(pick('6.12.117')[0]!.package, 'linux-source-6.12');
  t.ok(pick('6.12').some((c) => c.package === 'linux-6.12'), "bookworm's second kernel source package counts for its series");
  t.same(pick('9.9'), []);
  t.same(pick('7.2=7.2.99-1'), []);
});

t.test('available series', async (t) => {
  const series = availableSeries(rows);
  t.same(
    series.map((s) => s.series),
    ['6.1', '6.12', '6.16', '6.17', '6.18', '6.19', '7.0', '7.1', '7.2', '7.3'],
  );
  const s72 = series.find((s) => s.series === '7.2')!;
  t.equal(s72.binary?.version, '7.2.13-1');
  t.equal(s72.source?.version, '7.2.13-1');
  t.equal(series.find((s) => s.series === '7.1')!.binary, undefined);
});

t.test('apt-cache show: the SHA256 and file of one version', async (t) => {
  const show = parseShow(captured('apt-show-linux-source-7.2.txt'));
  t.equal(show.package, 'linux-source-7.2');
  t.equal(show.version, '7.2.13-1');
  t.equal(show.sha256, '30a8c5fc63f9028a62e6d7b3f7f43bee67425dbce2a05fceba83f9b87c92083d');
  t.equal(show.filename, 'pool/main/l/linux/linux-source-7.2_7.2.13-1_all.deb');
  t.same(parseShow(`${captured('apt-show-linux-source-7.2.txt')}\nPackage: second\nSHA256: 00\n`).sha256, show.sha256, 'only the first record');
});

t.test('apt-get source --print-uris: the upstream tarball and its SHA256 from Sources', async (t) => {
  const uris = parsePrintUris(captured('apt-source-print-uris-linux-7.1.8.txt'));
  t.same(
    uris.map((u) => u.file),
    ['linux_7.1.8-1~bpo13+1.dsc', 'linux_7.1.8.orig.tar.xz', 'linux_7.1.8-1~bpo13+1.debian.tar.xz'],
    'the NOTICE lines around them are skipped',
  );
  t.same(uris[1], {
    uri: 'http://mirror.example/debian/pool/main/l/linux/linux_7.1.8.orig.tar.xz',
    file: 'linux_7.1.8.orig.tar.xz',
    size: 161678028,
    sha256: '47f9ce629bc14dd96c16a6a6a8cae4f7f3c3ff6138e2f64befc7bdad426e9728',
  });
});

t.test('a download that fails moves on to the next candidate; other errors stop', async (t) => {
  const candidates = pickCandidates(rows, parseDebianRequest('7.1.8')!);
  const gone = (c: { version: string }) =>
    new HarnessError(`404 for ${c.version}`, { code: 'KERNEL_SOURCE_DOWNLOAD', kind: 'infra', phase: 'kernel-build' });
  const lines: string[] = [];
  const tried: string[] = [];
  const got = await firstDownloadable(
    candidates,
    async (c) => {
      tried.push(c.version);
      if (c.version === '7.1.8-2') throw gone(c);
      return c.version;
    },
    (line) => lines.push(line),
    'debian:7.1.8',
  );
  t.equal(got, '7.1.8-1~bpo13+1');
  t.same(tried, ['7.1.8-2', '7.1.8-1~bpo13+1']);
  t.match(lines[0], /could not download linux 7\.1\.8-2 \(404 for 7\.1\.8-2\); trying linux 7\.1\.8-1~bpo13\+1/);

  await t.rejects(
    firstDownloadable(candidates, async (c) => Promise.reject(gone(c)), () => undefined, 'debian:7.1.8'),
    { code: 'KERNEL_SOURCE_DOWNLOAD', message: /debian:7\.1\.8/, excerpt: /7\.1\.8-2: 404[^]*7\.1\.8-1~bpo13\+1: 404/ },
  );
  const unpackError = new HarnessError('tar failed', { code: 'KERNEL_SOURCE_UNPACK', kind: 'infra', phase: 'kernel-build' });
  let calls = 0;
  await t.rejects(
    firstDownloadable(candidates, async () => {
      calls++;
      throw unpackError;
    }, () => undefined, 'x'),
    { code: 'KERNEL_SOURCE_UNPACK' },
  );
  t.equal(calls, 1, 'not a download problem: no second try');
});
