import t from 'tap';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  aptFilesCurrent,
  desiredAptFiles,
  kernelSuites,
  osCodename,
  parseDeb822,
  parseOneLine,
  parsePolicyFiles,
  planAptSources,
  readAptEntries,
  renderPreferences,
  renderSources,
  unpinnedSuites,
  writeAptFiles,
} from '../../harness/setup/apt.ts';

const captured = (name: string) => readFile(join(import.meta.dirname, '../fixtures/captured', name), 'utf8');

const oneLine = `# main archive, one suite per line
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian/ bookworm main contrib
deb [ signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://mirror.example/debian bookworm-updates main # trailing comment
#deb http://mirror.example/debian bookworm-backports main
deb-src http://mirror.example/debian bookworm main
deb http://security.mirror.example/debian-security bookworm-security main
deb https://vendor.example/apt stable main
`;

const deb822 = `Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# a disabled stanza
Enabled: no
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm-proposed-updates
Components: main

Types: deb
URIs: https://vendor.example/repo
Suites: nodistro
Components: main
Architectures: amd64
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGVendorKey
 -----END PGP PUBLIC KEY BLOCK-----
`;

t.test('one-line entries: options in brackets, comments, one suite per line', async (t) => {
  const entries = parseOneLine(oneLine, 'sources.list');
  t.equal(entries.length, 5, 'the commented-out line is no entry');
  t.same(entries[0], {
    file: 'sources.list',
    types: ['deb'],
    uris: ['http://mirror.example/debian/'],
    suites: ['bookworm'],
    components: ['main', 'contrib'],
    signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    options: { arch: 'amd64' },
  });
  t.same(entries[1]!.components, ['main'], 'a trailing comment is not a component');
  t.equal(entries[1]!.signedBy, '/usr/share/keyrings/debian-archive-keyring.gpg', 'spaces inside the brackets');
  t.same(entries[2]!.types, ['deb-src']);
});

t.test('deb822 stanzas: several suites, comments, Enabled: no, an embedded key', async (t) => {
  const entries = parseDeb822(deb822, 'debian.sources');
  t.equal(entries.length, 3, 'the disabled stanza is left out');
  t.same(entries[0]!.suites, ['bookworm', 'bookworm-updates']);
  t.equal(entries[0]!.uris[0], 'http://mirror.example/debian');
  t.equal(entries[2]!.signedBy, '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGVendorKey\n-----END PGP PUBLIC KEY BLOCK-----');
  t.same(entries[2]!.options, { architectures: 'amd64' });
});

t.test('the plan: main and security archives, own suites, added suites', async (t) => {
  const plan = planAptSources(parseDeb822(deb822, 'debian.sources'), 'bookworm');
  t.same(plan.main, {
    uri: 'http://mirror.example/debian',
    suites: ['bookworm', 'bookworm-updates'],
    components: ['main'],
    signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
  });
  t.same(plan.security?.suites, ['bookworm-security']);
  t.equal(plan.security?.uri, 'http://mirror.example/debian-security');
  t.same(
    plan.added.map((a) => a.suite),
    ['sid', 'experimental', 'trixie-backports'],
  );

  const fromOneLine = planAptSources(parseOneLine(oneLine, 'sources.list'), 'bookworm');
  t.equal(fromOneLine.main.uri, 'http://mirror.example/debian', 'trailing slash dropped; the same archive across lines');
  t.same(fromOneLine.main.suites, ['bookworm', 'bookworm-updates'], 'suites gathered from several lines');
  t.same(fromOneLine.main.components, ['main', 'contrib']);
  t.same(
    fromOneLine.ownSources.map((a) => a.suites),
    [['bookworm-updates'], ['bookworm-security']],
    'a suite that already has deb-src is not added twice',
  );
});

t.test('no Debian entry for the codename is a clear error', async (t) => {
  const vendorOnly = parseOneLine('deb https://vendor.example/apt stable main\n', 'x.list');
  t.throws(() => planAptSources(vendorOnly, 'bookworm'), { name: 'HarnessError', code: 'SETUP_NO_DEBIAN_ARCHIVE', kind: 'infra', message: /"bookworm"/ });
  const securityOnly = parseOneLine('deb http://mirror.example/debian-security bookworm main\n', 'x.list');
  t.throws(() => planAptSources(securityOnly, 'bookworm'), { code: 'SETUP_NO_DEBIAN_ARCHIVE' }, 'a -security archive is not the main one');
});

t.test('suites to add follow the release order', async (t) => {
  t.same(
    kernelSuites('trixie').map((s) => s.suite),
    ['sid', 'experimental', 'forky-backports'],
  );
  t.same(
    kernelSuites('bookworm').map((s) => s.pin),
    ['n=sid', 'a=experimental', 'n=trixie-backports'],
    'experimental is matched by suite: its codename is rc-buggy',
  );
  t.same(
    kernelSuites('unknown').map((s) => s.suite),
    ['sid', 'experimental'],
  );
});

t.test('rendered sources read back as the same archives', async (t) => {
  const plan = planAptSources(parseDeb822(deb822, 'debian.sources'), 'bookworm');
  const text = renderSources(plan, 'amd64');
  t.notMatch(text, /deb\.debian\.org/, 'no mirror of our own');
  const back = parseDeb822(text, 'ntbh.sources');
  t.same(
    back.map((e) => [e.types.join(' '), e.uris[0], e.suites.join(' ')]),
    [
      ['deb-src', 'http://mirror.example/debian', 'bookworm bookworm-updates'],
      ['deb-src', 'http://mirror.example/debian-security', 'bookworm-security'],
      ['deb deb-src', 'http://mirror.example/debian', 'sid experimental trixie-backports'],
    ],
  );
  t.ok(back.every((e) => e.signedBy === '/usr/share/keyrings/debian-archive-keyring.gpg'), 'Signed-By kept');
  t.equal(back[2]!.options.architectures, 'amd64');

  // An embedded key survives the round trip.
  const keyed = planAptSources(parseDeb822(deb822.replace(/Signed-By: \/usr\S+/, `Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGMain\n -----END PGP PUBLIC KEY BLOCK-----`), 'x.sources'), 'bookworm');
  const rendered = renderSources(keyed, 'amd64');
  t.match(rendered, /\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n \.\n mQINBGMain\n/, 'written as apt documents it');
  t.equal(parseDeb822(rendered, 'y')[0]!.signedBy, keyed.main.signedBy);
});

t.test('preferences pin every added suite below zero', async (t) => {
  const plan = planAptSources(parseDeb822(deb822, 'debian.sources'), 'bookworm');
  const prefs = renderPreferences(plan);
  const stanzas = prefs.split('\n\n').filter((s) => s.includes('Pin:'));
  t.same(
    stanzas.map((s) => /Pin: release (\S+)/.exec(s)?.[1]),
    ['n=sid', 'a=experimental', 'n=trixie-backports'],
  );
  t.ok(stanzas.every((s) => /^Package: \*$/m.test(s) && /^Pin-Priority: -10$/m.test(s)));
});

t.test('apt-cache policy: the added suites are pinned (captured on the CI machine)', async (t) => {
  const policy = await captured('apt-policy.txt');
  const files = parsePolicyFiles(policy);
  t.same(
    files.filter((f) => f.priority < 0).map((f) => f.suite).sort(),
    ['experimental', 'sid', 'trixie-backports'],
  );
  t.equal(files.find((f) => f.suite === 'bookworm')?.priority, 500);
  const plan = planAptSources(parseDeb822(deb822, 'debian.sources'), 'bookworm');
  t.same(unpinnedSuites(plan, policy), []);
  t.same(unpinnedSuites(plan, policy.replace(/-10( http\S+ sid\/)/, '500$1')), ['sid'], 'a pin that did not take is found');
});

t.test('os-release codename', async (t) => {
  t.equal(osCodename('NAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\nID=debian\n'), 'bookworm');
  t.equal(osCodename('VERSION_CODENAME="trixie"\n'), 'trixie');
  t.equal(osCodename('ID=debian\n'), undefined);
});

t.test('a machine tree: enabled files only, our own file skipped, legacy file replaced', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ntbh-apt-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'sources.list.d'), { recursive: true });
  await writeFile(join(root, 'sources.list'), '# empty but for comments\n');
  await writeFile(join(root, 'sources.list.d', 'debian.sources'), deb822);
  await writeFile(join(root, 'sources.list.d', 'google.list.disabled-by-farm'), 'deb http://other.example/debian bookworm main\n');
  await writeFile(join(root, 'sources.list.d', 'old.sources.save'), 'Types: deb\nURIs: http://other.example/debian\nSuites: bookworm\n');
  await writeFile(join(root, 'sources.list.d', 'ntbh-deb-src.sources'), 'Types: deb\nURIs: http://other.example/debian\nSuites: bookworm\n');
  const entries = await readAptEntries(root);
  t.same([...new Set(entries.map((e) => e.file.split('/').pop()))], ['debian.sources'], 'disabled, backup and harness files are not read');

  const osRelease = join(root, 'os-release');
  await writeFile(osRelease, 'ID=debian\nVERSION_CODENAME=bookworm\n');
  const desired = await desiredAptFiles(root, osRelease);
  t.equal(desired.sources.path, join(root, 'sources.list.d', 'ntbh.sources'));
  t.equal(desired.preferences.path, join(root, 'preferences.d', 'ntbh'));
  t.same(desired.legacy, [join(root, 'sources.list.d', 'ntbh-deb-src.sources')]);
  t.notOk(await aptFilesCurrent(desired));
  await writeAptFiles(desired);
  t.notOk(existsSync(join(root, 'sources.list.d', 'ntbh-deb-src.sources')), 'the old file is removed');
  const again = await desiredAptFiles(root, osRelease);
  t.ok(await aptFilesCurrent(again), 'nothing to do the second time');
  t.equal(again.sources.content, desired.sources.content, 'our own file does not feed back into the plan');

  await writeFile(osRelease, 'ID=debian\n');
  await t.rejects(desiredAptFiles(root, osRelease), { code: 'SETUP_NO_DEBIAN_ARCHIVE' });
});
