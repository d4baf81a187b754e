/**
 * Memory windows through ntb_tool, the way tools/testing/selftests/ntb/ntb_test.sh does it: the
 * receiving side allocates its inbound window (peer0/mw_trans<i>), the other side maps its outbound
 * window onto that DMA address (peer0/peer_mw_trans<i>), then data goes through peer_mw<i> / mw<i>.
 * docs/ntb-tool.md has the formats each released ntb_tool parses.
 */
import type { NtbTool } from './ntb-tool.ts';
import { run, sq, tryWrite } from './shell.ts';

export interface InboundWindow {
  dmaAddress: bigint;
  size: number;
}

/** Parses a `mw_trans` read ("DMA Address    \t0x...", "Window Size    \t0x..."). */
export function parseMwTrans(text: string): InboundWindow | undefined {
  const addr = /DMA Address\s+(0x[0-9a-fA-F]+)/.exec(text);
  const size = /Window Size\s+(0x[0-9a-fA-F]+)/.exec(text);
  if (!addr || !size) return undefined;
  return { dmaAddress: BigInt(addr[1]!), size: Number(BigInt(size[1]!)) };
}

export async function allocInbound(tool: NtbTool, index: number, size: number): Promise<{ window?: InboundWindow; error?: string }> {
  const set = await tryWrite(tool.guest, tool.path(`peer0/mw_trans${index}`), String(size));
  if (!set.ok) return { error: `mw_trans${index} = ${size}: ${set.error}` };
  const window = parseMwTrans(await run(tool.guest, `cat ${sq(tool.path(`peer0/mw_trans${index}`))}`));
  return window && window.size > 0 ? { window } : { error: `mw_trans${index} shows no window after allocation` };
}

/**
 * How a `peer_mw_trans<i>` write spells the window. ntb_tool parses it with sscanf: 6.12 with
 * "%lli:%zi" (any base), 7.1.8 and 7.2 with "%llu:%zu" (decimal only: "0x..." stops at the 'x').
 *   documented — `0x<addr>:<size>`, as ntb_tool's usage comment and ntb_test.sh write it (the address
 *                as mw_trans prints it, the size in decimal)
 *   decimal    — `<addr>:<size>`, both decimal: the form every released parser accepts
 */
export type TransForm = 'documented' | 'decimal';

export function peerMwTransValue(dmaAddress: bigint, size: number, form: TransForm): string {
  const addr = form === 'documented' ? `0x${dmaAddress.toString(16).padStart(16, '0')}` : dmaAddress.toString(10);
  return `${addr}:${size}`;
}

export interface TransWrite {
  ok: boolean;
  /** The exact text written and the file, for the report. */
  value: string;
  file: string;
  /** The shell's error text and the errno it stands for, when refused. */
  error?: string;
  errno?: string;
}

/** Maps the outbound window onto the peer's DMA address; a refusal is returned with its errno. */
export async function mapOutbound(tool: NtbTool, index: number, window: InboundWindow, form: TransForm = 'decimal'): Promise<TransWrite> {
  const file = tool.path(`peer0/peer_mw_trans${index}`);
  const value = peerMwTransValue(window.dmaAddress, window.size, form);
  const result = await tryWrite(tool.guest, file, value);
  return result.ok ? { ok: true, value, file } : { ok: false, value, file, error: result.error, errno: errnoName(result.error ?? '') };
}

/** `echo '<value>' > <file>: <outcome>` — what a reader needs to reproduce a write by hand. */
export function describeWrite(write: TransWrite): string {
  const outcome = write.ok ? 'accepted' : `${write.errno ?? 'refused'} (${write.error})`;
  return `echo '${write.value}' > ${write.file}: ${outcome}`;
}

/** strerror() texts of the errnos a debugfs write returns, as busybox and GNU shells print them. */
const ERRNO_TEXT: Record<string, string> = {
  'Invalid argument': 'EINVAL',
  'Out of memory': 'ENOMEM',
  'Cannot allocate memory': 'ENOMEM',
  'Bad address': 'EFAULT',
  'I/O error': 'EIO',
  'Input/output error': 'EIO',
  'No such device': 'ENODEV',
  'Device or resource busy': 'EBUSY',
  'Resource busy': 'EBUSY',
  'Result not representable': 'ERANGE',
  'Numerical result out of range': 'ERANGE',
  'Operation not permitted': 'EPERM',
  'Permission denied': 'EACCES',
  'No such device or address': 'ENXIO',
};

export function errnoName(text: string): string | undefined {
  for (const [message, name] of Object.entries(ERRNO_TEXT)) if (text.includes(message)) return name;
  return undefined;
}

export async function freeWindows(inbound: NtbTool, outbound: NtbTool, index: number, window?: InboundWindow): Promise<void> {
  if (window) await tryWrite(outbound.guest, outbound.path(`peer0/peer_mw_trans${index}`), peerMwTransValue(window.dmaAddress, 0, 'decimal'));
  await tryWrite(inbound.guest, inbound.path(`peer0/mw_trans${index}`), '0');
}

/** Writes `size` random bytes to a window file; returns their md5 (computed in the guest). */
export async function writeRandom(tool: NtbTool, file: string, size: number): Promise<{ md5?: string; error?: string }> {
  // One file per window file, so writes toward two windows of one guest never share it.
  const tmp = `/tmp/ntbh-${file.replace(/[^a-z0-9_]/gi, '_')}.bin`;
  const script = [
    `dd if=/dev/urandom of=${tmp} bs=${size} count=1 2>/dev/null`,
    `dd if=${tmp} of=${sq(tool.path(`peer0/${file}`))} bs=${size} count=1 conv=notrunc 2>/dev/null`,
    `md5sum < ${tmp}`,
  ].join(' && ');
  const result = await tool.guest.exec(script);
  if (result.exitCode !== 0) return { error: `writing ${file}: ${result.stderr.trim() || result.stdout.trim() || `exit ${result.exitCode}`}` };
  return { md5: result.stdout.trim().split(/\s+/)[0] };
}

export async function readMd5(tool: NtbTool, file: string, size: number): Promise<{ md5?: string; error?: string }> {
  const result = await tool.guest.exec(`dd if=${sq(tool.path(`peer0/${file}`))} bs=${size} count=1 2>/dev/null | md5sum`);
  if (result.exitCode !== 0) return { error: `reading ${file}: ${result.stderr.trim() || `exit ${result.exitCode}`}` };
  return { md5: result.stdout.trim().split(/\s+/)[0] };
}
