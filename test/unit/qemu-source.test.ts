import t from 'tap';
import { compareDebianVersions, pickQemuVersion } from '../../harness/qemu/build.ts';

// `apt-cache showsrc qemu | grep ^Version` on a bookworm machine with the harness's release suites added.
const showsrc = ['1:10.2.2+ds-1', '1:11.1.2+ds-3', '1:11.1.3+ds-1', '1:11.1.3+ds-1~bpo13+1', '1:7.2+dfsg-7+deb12u15', '1:7.2+dfsg-7+deb12u18']
  .map((v) => `Package: qemu\nVersion: ${v}\n`)
  .join('\n');

t.test('the qemu source is the newest of the series our device patch targets, not apt newest', async (t) => {
  t.equal(pickQemuVersion(showsrc), '1:7.2+dfsg-7+deb12u18');
  t.equal(pickQemuVersion(showsrc, '11.1'), '1:11.1.3+ds-1');
  t.equal(pickQemuVersion('Version: 1:11.1.3+ds-1\n'), undefined);
});

t.test('Debian version order', async (t) => {
  t.ok(compareDebianVersions('1:7.2+dfsg-7+deb12u9', '1:7.2+dfsg-7+deb12u18') < 0);
  t.ok(compareDebianVersions('1:11.1.3+ds-1~bpo13+1', '1:11.1.3+ds-1') < 0);
  t.equal(compareDebianVersions('1:7.2+dfsg-7', '1:7.2+dfsg-7'), 0);
});
