/**
 * Module loading in a guest. NTB clients (ntb_tool, ntb_perf, ntb_pingpong) compete for the one NTB
 * device on each side, so a Clients tracker unloads whichever is bound before loading another.
 */
import type { GuestExec } from '../guest/types.ts';
import { commandFailed, sq } from './shell.ts';

/** /sys/module uses underscores whatever the module file is called. */
export function moduleDir(name: string): string {
  return `/sys/module/${name.replace(/-/g, '_')}`;
}

export async function isLoaded(guest: GuestExec, name: string): Promise<boolean> {
  return (await guest.exec(`[ -d ${sq(moduleDir(name))} ]`)).exitCode === 0;
}

/** modprobe with parameters; a module that is built in (or already loaded) counts as loaded. */
export async function modprobe(guest: GuestExec, name: string, params: Record<string, string | number | boolean> = {}, timeoutMs = 60_000): Promise<void> {
  const args = Object.entries(params).map(([key, value]) => sq(`${key}=${typeof value === 'boolean' ? (value ? 'Y' : 'N') : value}`));
  const result = await guest.exec(`modprobe ${sq(name)} ${args.join(' ')}`.trim(), { timeoutMs });
  if (result.exitCode !== 0 && !(await isLoaded(guest, name))) throw commandFailed(guest, result, `modprobe ${name} failed`);
}

export async function rmmod(guest: GuestExec, name: string, timeoutMs = 60_000): Promise<void> {
  if (!(await isLoaded(guest, name))) return;
  const result = await guest.exec(`rmmod ${sq(name.replace(/-/g, '_'))}`, { timeoutMs });
  if (result.exitCode !== 0) throw commandFailed(guest, result, `rmmod ${name} failed`);
}

export type NtbClient = 'ntb_tool' | 'ntb_perf' | 'ntb_pingpong';
const CLIENTS: NtbClient[] = ['ntb_tool', 'ntb_perf', 'ntb_pingpong'];

/** Makes `client` the NTB client on a guest, unloading the others; returns true if it (re)loaded it. */
export async function useClient(guest: GuestExec, client: NtbClient, params: Record<string, string | number | boolean> = {}, timeoutMs = 60_000): Promise<boolean> {
  for (const other of CLIENTS) if (other !== client) await rmmod(guest, other, timeoutMs);
  if (Object.keys(params).length === 0 && (await isLoaded(guest, client))) return false;
  await rmmod(guest, client, timeoutMs);
  await modprobe(guest, client, params, timeoutMs);
  return true;
}
