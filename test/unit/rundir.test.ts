// Run data is private whatever the umask: run directories 0700, RAM files and sockets 0600.
import t from 'tap';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinkRelay } from '../../harness/link/relay.ts';
import { makePrivateDir, makePrivateFile, makeRunDirs } from '../../harness/util/rundir.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const mode = async (path: string) => (await stat(path)).mode & 0o777;

t.test('run dirs, RAM files and relay sockets are private under a permissive umask', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'rundir-'));
  const previousShm = process.env.NTBH_SHM;
  process.env.NTBH_SHM = join(root, 'shm');
  // The harshest case: a umask that lets everything through.
  const previousUmask = process.umask(0);
  t.teardown(async () => {
    process.umask(previousUmask);
    if (previousShm === undefined) delete process.env.NTBH_SHM;
    else process.env.NTBH_SHM = previousShm;
    await teardownAll();
    await rm(root, { recursive: true, force: true });
  });

  const run = await makeRunDirs('modes', join(root, 'results', 'run1'));
  t.equal(await mode(run.dir), 0o700, 'results/<run> is 0700');
  t.equal(await mode(run.shm), 0o700, '/dev/shm/ntbh-<run> is 0700');
  t.match(run.shm, /shm\/ntbh-\d{8}-\d{6}-modes-[0-9a-f]{4}$/);

  const cell = join(run.shm, 'ep-new__host-new');
  await makePrivateDir(cell);
  t.equal(await mode(cell), 0o700, 'a cell subdirectory too');
  const ram = join(cell, 'host.ram');
  await makePrivateFile(ram);
  t.equal(await mode(ram), 0o600, 'a pre-created RAM file is 0600');
  t.equal((await stat(ram)).size, 0, 'empty: QEMU sizes it');

  const relay = new LinkRelay(0, cell, join(run.dir, 'wire.ndjson'));
  await relay.listen();
  t.equal(await mode(relay.socketPath.ep), 0o600, 'the EP relay socket is 0600');
  t.equal(await mode(relay.socketPath.rc), 0o600, 'the RC relay socket is 0600');
  await relay.close();
});

t.test('an existing directory or file is tightened, not just left as found', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'rundir-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const { chmod, writeFile } = await import('node:fs/promises');
  await chmod(root, 0o755);
  await makePrivateDir(root);
  t.equal(await mode(root), 0o700);
  const file = join(root, 'guest.ram');
  await writeFile(file, 'x', { mode: 0o644 });
  await chmod(file, 0o644);
  await makePrivateFile(file);
  t.equal(await mode(file), 0o600);
  t.equal((await stat(file)).size, 1, 'its content is kept');
});

t.test('a socket path over the UNIX limit is a clear input error, not a bare ENOENT at bind time', async (t) => {
  const { checkedSocketPath, MAX_SOCKET_PATH } = await import('../../harness/util/rundir.ts');
  const ok = `/dev/shm/${'a'.repeat(MAX_SOCKET_PATH - 9)}`;
  t.equal(checkedSocketPath(ok), ok);
  t.throws(() => checkedSocketPath(`${ok}b`), { code: 'SOCKET_PATH_TOO_LONG' });
});
