import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCpio } from '../image/build.ts';
import { run } from '../util/proc.ts';

/** The cached image plus a tiny per-guest archive (authorized key, hostname), as one initrd file. */
export async function makeRunInitrd(image: string, out: string, guest: { hostname: string; publicKey: string }): Promise<void> {
  const stage = `${out}.stage`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(join(stage, 'root/.ssh'), { recursive: true });
  await mkdir(join(stage, 'etc'), { recursive: true });
  await chmod(join(stage, 'root'), 0o700);
  await chmod(join(stage, 'root/.ssh'), 0o700);
  await writeFile(join(stage, 'root/.ssh/authorized_keys'), `${guest.publicKey}\n`, { mode: 0o600 });
  await writeFile(join(stage, 'etc/hostname'), `${guest.hostname}\n`);
  await makeCpio(stage, `${out}.run.cpio`);
  await run('sh', ['-c', `cat '${image}' '${out}.run.cpio' > '${out}'`], { phase: 'boot', code: 'INITRD' });
  await rm(stage, { recursive: true, force: true });
  await rm(`${out}.run.cpio`, { force: true });
}
