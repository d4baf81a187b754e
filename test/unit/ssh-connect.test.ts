/**
 * A guest whose SSH server drops the connection during the handshake (a port QEMU forwards before the
 * guest's sshd listens) is an SSH_CONNECT error for that guest, not a crash of the whole run. A real run
 * once ended on an unhandled second 'error' ("Connection lost before handshake") from ssh2; these cases
 * did not reproduce that second emission here, so they check the outcome for each way a handshake can
 * fail. The servers are plain TCP sockets; real handshakes are e2e.
 */
import t from 'tap';
import { createServer, type Server } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { SshSession } from '../../harness/guest/ssh.ts';
import { HarnessError } from '../../harness/errors.ts';

const { privateKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

async function listen(onConnection: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection!);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

for (const [name, behave] of [
  ['closes at once', (socket: import('node:net').Socket) => socket.destroy()],
  // What a guest port without a listener does behind QEMU's forwarding: the connection is reset.
  ['resets the connection', (socket: import('node:net').Socket) => socket.resetAndDestroy()],
  ['resets after the banner', (socket: import('node:net').Socket) => socket.write('SSH-2.0-dropbear_2022.83\r\n', () => setTimeout(() => socket.resetAndDestroy(), 50))],
  ['sends a banner, then closes', (socket: import('node:net').Socket) => socket.end('SSH-2.0-dropbear_2022.83\r\n')],
  // Accepted and silent past the handshake timeout (a guest still booting behind QEMU's forwarding).
  ['accepts and says nothing', () => undefined],
  ['sends garbage', (socket: import('node:net').Socket) => socket.end('HTTP/1.0 400 Bad\r\n\r\n')],
] as const) {
  t.test(`a server that ${name}: SSH_CONNECT, and the process lives on`, async (t) => {
    const { server, port } = await listen(behave);
    t.teardown(() => server.close());
    const uncaught: Error[] = [];
    const onUncaught = (error: Error) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    t.teardown(() => process.off('uncaughtException', onUncaught));
    const session = new SshSession('ep', { port, privateKey, defaultTimeoutMs: 5000 });
    const error = await session.connect(500).then(() => undefined, (e: unknown) => e);
    t.ok(error instanceof HarnessError, 'a HarnessError');
    t.equal((error as HarnessError).code, 'SSH_CONNECT');
    t.equal((error as HarnessError).guest, 'ep');
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.same(uncaught.map((e) => e.message), [], 'no error escaped as an uncaught exception');
    t.notOk(session.connected);
    session.close();
  });
}
