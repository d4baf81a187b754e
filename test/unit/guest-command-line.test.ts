/**
 * Commands longer than dropbear takes on its command line (9000 bytes: past it the guest's dropbear ends
 * the whole connection) travel on the channel's stdin. The forms are run here under busybox sh, the
 * guests' shell (the host's busybox-static, same package); the real guest case is in test/e2e/boot.test.ts.
 */
import t from 'tap';
import { execa } from 'execa';
import { COMMAND_LINE_MAX, commandLine, PGID_TAG, uploadedScript, wrapCommand } from '../../harness/guest/abort.ts';

const script = (lines: number) => ['x=0', ...Array.from({ length: lines }, (_, i) => `x=$((x+${i})) # quotes ' " \` $ survive`), 'echo "sum $x"', 'echo to-stderr >&2', 'exit 7'].join('\n');

t.test('a command that fits is sent on the command line, wrapped', async (t) => {
  const short = script(10);
  t.same(commandLine(short), { line: wrapCommand(short) });
  const edge = 'x'.repeat(COMMAND_LINE_MAX - wrapCommand('').length);
  t.equal(Buffer.byteLength(commandLine(edge).line), COMMAND_LINE_MAX, 'exactly the limit still fits');
  t.equal(commandLine(edge).stdin, undefined);
  t.ok(commandLine(`${edge}x`).stdin, 'one byte more goes on stdin');
  t.ok(COMMAND_LINE_MAX < 9000, "below dropbear's MAX_CMD_LEN, with room for the request's own bytes");
  // Multi-byte characters count as bytes, as dropbear counts them.
  t.ok(commandLine('é'.repeat(COMMAND_LINE_MAX / 2)).stdin, 'the limit is in bytes, not characters');
});

t.test('the stdin form runs the whole script under busybox sh: output, stderr, exit status, pgid line', async (t) => {
  const busybox = await execa('busybox', ['true'], { reject: false });
  t.equal(busybox.exitCode, 0, 'busybox is installed (busybox-static, a host package: `npx ntbh setup`)');
  if (busybox.exitCode !== 0) return;
  const long = script(2000);
  const sent = commandLine(long);
  t.ok(Buffer.byteLength(long) > 30_000, 'a 30 KB+ script');
  t.ok(Buffer.byteLength(sent.line) <= COMMAND_LINE_MAX, 'its command line is short');
  const ran = await execa('busybox', ['sh', '-c', sent.line], { input: sent.stdin, reject: false });
  t.equal(ran.exitCode, 7, "the script's exit status");
  t.equal(ran.stdout, `sum ${(2000 * 1999) / 2}`, 'every line ran');
  const [head, ...rest] = ran.stderr.split('\n');
  t.match(head, new RegExp(`^${PGID_TAG}\\d+$`), 'the process group line comes first');
  t.same(rest, ['to-stderr'], "then the script's stderr");

  const dash = commandLine(`-n 2>/dev/null; echo dash-ok${' '.repeat(COMMAND_LINE_MAX)}`);
  const dashRan = await execa('busybox', ['sh', '-c', dash.line], { input: dash.stdin, reject: false });
  t.equal(dashRan.stdout, 'dash-ok', 'a script starting with "-" is not read as an option');

  const reader = commandLine(`cat; echo end${' '.repeat(COMMAND_LINE_MAX)}`);
  const readerRan = await execa('busybox', ['sh', '-c', reader.line], { input: reader.stdin, reject: false });
  t.equal(readerRan.stdout, 'end', "the script's own stdin is at its end, as for a short command without input");
});

t.test('a long command with input of its own is uploaded, run and removed', async (t) => {
  t.throws(() => uploadedScript('/tmp/x; rm -rf /'), /refusing/);
  const busybox = await execa('busybox', ['true'], { reject: false });
  if (busybox.exitCode !== 0) return t.fail('busybox missing');
  const path = `/tmp/ntbh-cmd-${process.pid}t`;
  const forms = uploadedScript(path);
  const long = `read -r line; echo "got $line"${'\n# pad'.repeat(3000)}\nexit 5`;
  t.ok(Buffer.byteLength(forms.upload) < 100 && Buffer.byteLength(forms.run) < 200, 'both command lines are short');
  await execa('busybox', ['sh', '-c', forms.upload], { input: long });
  const ran = await execa('busybox', ['sh', '-c', forms.run], { input: 'input-line\n', reject: false });
  t.equal(ran.exitCode, 5);
  t.equal(ran.stdout, 'got input-line', 'the command reads its own input');
  const left = await execa('busybox', ['test', '-e', path], { reject: false });
  t.not(left.exitCode, 0, 'the script file is gone');
});
