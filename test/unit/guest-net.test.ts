// The guests' private network: two QEMU datagram netdevs over UNIX sockets, crossed, with MACs whose
// last byte is each guest's address (images/init.sh reads it back).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_NET, guestNetArgs } from '../../harness/qemu/command.ts';

t.test('each guest binds its own socket and sends to the other, never an inet socket', async (t) => {
  const host = guestNetArgs('/s/gnet-host.sock', '/s/gnet-ep.sock', GUEST_NET.host);
  const ep = guestNetArgs('/s/gnet-ep.sock', '/s/gnet-host.sock', GUEST_NET.ep);
  t.same(host, ['-netdev', 'dgram,id=gnet,local.type=unix,local.path=/s/gnet-host.sock,remote.type=unix,remote.path=/s/gnet-ep.sock', '-device', 'virtio-net-pci,netdev=gnet,mac=52:54:00:76:00:01']);
  t.match(ep[3], /mac=52:54:00:76:00:02$/);
  t.notMatch([...host, ...ep].join(' '), /inet|hostfwd|udp/, 'nothing on the outer machine\'s interfaces');
});

t.test('the guest init addresses the interface with that MAC prefix on the same subnet', async (t) => {
  const init = readFileSync(join(import.meta.dirname, '../../images/init.sh'), 'utf8');
  t.match(init, /52:54:00:76:00:\*/);
  t.match(init, new RegExp(`${GUEST_NET.subnet.replace(/\./g, '\\.')}\\.\\$\\(\\(0x\\$a\\)\\)/24`));
});

t.test('extra packages: only the lib* dependencies are followed, virtual ones skipped', async (t) => {
  const { parseLibDepends } = await import('../../harness/image/debs.ts');
  const text = [
    'iperf3:arm64',
    '  PreDepends: <init-system-helpers:arm64>',
    '    init-system-helpers',
    '  Depends: <debconf:arm64>',
    '  Depends: <adduser:arm64>',
    '  Depends: libc6:arm64',
    '  Depends: libiperf0:arm64',
    ' |Depends: <debconf:arm64>',
    '  Depends: <debconf-2.0:arm64>',
    '    cdebconf:arm64',
  ].join('\n');
  t.same(parseLibDepends(text), ['libc6', 'libiperf0']);
});
