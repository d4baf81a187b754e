/**
 * pcitest (tools/pci, /usr/bin/pcitest in the host image) against pci_endpoint_test's misc device.
 * Output lines: "BAR0:\t\tOKAY", "MSI3:\t\tNOT OKAY", "READ (   1024 bytes):\t\tOKAY",
 * "SET IRQ TYPE TO MSI:\t\tOKAY", or "... TEST FAILED" when the ioctl itself failed.
 */
import type { GuestExec } from '../guest/types.ts';
import { pollScript, sq } from './shell.ts';

export interface PcitestResult {
  /** "BAR0", "MSI3", "READ", "WRITE", "COPY", "SET IRQ TYPE TO MSI", ... */
  test: string;
  size?: number;
  result: string;
  ok: boolean;
}

const LINE = /^(BAR\d|MSI-X\d+|MSI\d+|LEGACY IRQ|SET IRQ TYPE TO [A-Z-]+|GET IRQ TYPE|CLEAR IRQ|(READ|WRITE|COPY) \(\s*(\d+) bytes\)):\s*(.+?)\s*$/;

export function parsePcitest(text: string): PcitestResult[] {
  const results: PcitestResult[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line.trim());
    if (!m) continue;
    const result = m[4]!;
    results.push({ test: m[2] ?? m[1]!, size: m[3] ? Number(m[3]) : undefined, result, ok: result === 'OKAY' });
  }
  return results;
}

export interface PcitestRun {
  results: PcitestResult[];
  output: string;
  exitCode: number;
}

export async function pcitest(host: GuestExec, device: string, args: string, timeoutMs: number): Promise<PcitestRun> {
  const result = await host.exec(`pcitest -D ${sq(device)} ${args}`, { timeoutMs });
  const output = `${result.stdout}${result.stderr}`.trim();
  return { results: parsePcitest(result.stdout), output, exitCode: result.exitCode };
}

/** Waits for /dev/pci-endpoint-test.N after pci_endpoint_test bound. */
export async function findTestDevice(host: GuestExec, timeoutMs: number): Promise<string | undefined> {
  const result = await host.exec(pollScript('ls /dev/pci-endpoint-test.* 2>/dev/null | head -n 1', '[ -n "$v" ]', timeoutMs, 50), { timeoutMs: timeoutMs + 30_000 });
  const device = result.stdout.trim();
  return result.exitCode === 0 && device ? device : undefined;
}
