/**
 * Memory windows through ntb_tool, the way tools/testing/selftests/ntb/ntb_test.sh does it: the
 * receiving side allocates its inbound window (peer0/mw_trans<i>), the other side maps its outbound
 * window onto that DMA address (peer0/peer_mw_trans<i>), then data goes through peer_mw<i> / mw<i>.
 */
import type { NtbTool } from './ntb-tool.ts';
import { hex, run, sq, tryWrite } from './shell.ts';

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

export async function mapOutbound(tool: NtbTool, index: number, window: InboundWindow): Promise<{ ok: boolean; error?: string }> {
  return tryWrite(tool.guest, tool.path(`peer0/peer_mw_trans${index}`), `0x${window.dmaAddress.toString(16)}:${hex(window.size)}`);
}

export async function freeWindows(inbound: NtbTool, outbound: NtbTool, index: number, window?: InboundWindow): Promise<void> {
  if (window) await tryWrite(outbound.guest, outbound.path(`peer0/peer_mw_trans${index}`), `0x${window.dmaAddress.toString(16)}:0`);
  await tryWrite(inbound.guest, inbound.path(`peer0/mw_trans${index}`), '0');
}

/** Writes `size` random bytes to a window file; returns their md5 (computed in the guest). */
export async function writeRandom(tool: NtbTool, file: string, size: number): Promise<{ md5?: string; error?: string }> {
  const tmp = '/tmp/ntbh-mw.bin';
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
