import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';

export interface SshKey {
  privateKey: string;
  publicKey: string;
  /** Where the private key was written (for `ssh -i`). */
  path: string;
}

/** A fresh ed25519 key pair per run: images never carry a usable credential. */
export async function makeRunKey(dir: string): Promise<SshKey> {
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ntbh-run' });
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'id_ed25519');
  await writeFile(path, pair.private, { mode: 0o600 });
  await writeFile(`${path}.pub`, `${pair.public}\n`);
  return { privateKey: pair.private, publicKey: pair.public, path };
}
