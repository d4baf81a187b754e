/**
 * ntb_tool's debugfs interface on one side: /sys/kernel/debug/ntb_tool/<ntb dev>/. Reads print %#llx
 * ("0" for zero). On EPF, `db` accepts only `c <bits>`, `peer_db` only `s <bits>`.
 */
import { HarnessError } from '../errors.ts';
import type { GuestExec } from '../guest/types.ts';
import { hex, parseKernelInt, pollScript, readText, run, sq, tryWrite, write } from './shell.ts';

export const TOOL_ROOT = '/sys/kernel/debug/ntb_tool';

export class NtbTool {
  constructor(
    readonly guest: GuestExec,
    /** The device's debugfs directory. */
    readonly dir: string,
  ) {}

  /** Waits for ntb_tool's directory for the (single) NTB device of this guest. */
  static async open(guest: GuestExec, timeoutMs: number): Promise<NtbTool> {
    const result = await guest.exec(pollScript(`ls ${TOOL_ROOT} 2>/dev/null | head -n 1`, '[ -n "$v" ]', timeoutMs, 50), { timeoutMs: timeoutMs + 30_000 });
    const name = result.stdout.trim();
    if (result.exitCode !== 0 || !name) {
      throw new HarnessError(`no ntb_tool device appeared under ${TOOL_ROOT}`, { code: 'NTB_TOOL_MISSING', kind: 'infra', phase: 'step', guest: guest.name });
    }
    return new NtbTool(guest, `${TOOL_ROOT}/${name}`);
  }

  path(file: string): string {
    return `${this.dir}/${file}`;
  }

  async readInt(file: string): Promise<number> {
    return parseKernelInt(await readText(this.guest, this.path(file)));
  }

  db(): Promise<number> {
    return this.readInt('db');
  }

  dbValidMask(): Promise<number> {
    return this.readInt('db_valid_mask');
  }

  async clearDb(bits: number): Promise<void> {
    await write(this.guest, this.path('db'), `c ${hex(bits)}`);
  }

  /** Rings the peer; a refusal (e.g. -EINVAL for a slot beyond Nh-1) is returned, it is an observation. */
  ringPeer(bits: number): Promise<{ ok: boolean; error?: string }> {
    return tryWrite(this.guest, this.path('peer_db'), `s ${hex(bits)}`);
  }

  async enableLink(): Promise<void> {
    await write(this.guest, this.path('link'), 'Y');
  }

  async peerLinkUp(): Promise<boolean> {
    return (await readText(this.guest, this.path('peer0/link'))) === 'Y';
  }

  /** Polls peer0/link until it reads Y; returns whether it did. */
  async waitPeerLink(timeoutMs: number): Promise<boolean> {
    const result = await this.guest.exec(pollScript(`cat ${sq(this.path('peer0/link'))}`, '[ "$v" = Y ]', timeoutMs, 20), { timeoutMs: timeoutMs + 30_000 });
    return result.exitCode === 0;
  }

  /**
   * Waits for db to move away from `baseline`, then until it has been stable for `settlePolls` reads
   * (several MSIs of one multi-bit ring arrive one by one). Prints the final value; gives up after
   * `timeoutMs` and returns what it last read. With `expectChange` false it just watches for the whole time.
   */
  async waitDb(baseline: number, timeoutMs: number, settlePolls = 3, expectChange = true): Promise<{ value: number; changed: boolean }> {
    const out = await run(this.guest, this.waitDbScript(baseline, timeoutMs, settlePolls, expectChange), { timeoutMs: timeoutMs * 3 + 30_000 });
    return parseWaitDb(out);
  }

  /** waitDb's guest-side loop, for callers that batch it with other reads in one round trip. */
  waitDbScript(baseline: number, timeoutMs: number, settlePolls = 3, expectChange = true, minPolls = 1): string {
    // The deadline is the guest's clock (/proc/uptime, centiseconds), not a count of polls: under TCG a
    // poll (fork cat, fork sleep) takes several times its nominal 10 ms, so a counted window would
    // stretch a 1 s "nothing arrives" watch to several seconds.
    const clock = 'read up rest < /proc/uptime; now=$(( ${up%.*} * 100 + 1${up#*.} - 100 ))';
    // minPolls: a watch also ends no sooner than this many reads, so a guest starved of CPU by a busy
    // machine cannot end a short window before it (and the driver it watches) ran at all.
    return [
      `f=${sq(this.path('db'))}; last=${sq(hex(baseline))}; base=$last; stable=0; changed=0; polls=0`,
      `${clock}; end=$((now + ${Math.max(1, Math.ceil(timeoutMs / 10))}))`,
      'while :; do',
      '  v=$(cat "$f"); [ "$v" = 0 ] && v=0x0',
      '  polls=$((polls+1))',
      '  if [ "$v" != "$last" ]; then last=$v; stable=0; changed=1; else stable=$((stable+1)); fi',
      `  if [ ${expectChange ? 1 : 0} = 1 ] && [ $changed = 1 ] && [ $stable -ge ${settlePolls} ]; then break; fi`,
      `  ${clock}; [ $now -ge $end ] && [ $polls -ge ${Math.max(1, Math.floor(minPolls))} ] && break`,
      '  sleep 0.01',
      'done',
      'echo "$last $changed"',
    ].join('\n');
  }

  /** Number of spadN files of this side (the scratchpads it can read). */
  async spadCount(): Promise<number> {
    const out = await run(this.guest, `ls ${sq(this.dir)} | grep -c '^spad[0-9]*$' || true`);
    return Number(out.trim()) || 0;
  }

  async writePeerSpad(index: number, value: number): Promise<{ ok: boolean; error?: string }> {
    return tryWrite(this.guest, this.path(`peer0/spad${index}`), hex(value));
  }

  readSpad(index: number): Promise<number> {
    return this.readInt(`spad${index}`);
  }

  /** Writes values[k] into peer0/spad<k> for every k in one round trip; per write, ok or what failed. */
  async writePeerSpads(values: number[]): Promise<{ ok: boolean; error?: string }[]> {
    // Each write in a subshell, so a refused one is reported with its errno text and the rest still run.
    const script = values.map((value, k) => `e=$( (echo ${sq(hex(value))} > ${sq(this.path(`peer0/spad${k}`))}) 2>&1 ); r=$?; echo "${k} $r $(echo $e)"`);
    return parseSpadWrites(await run(this.guest, script.join('\n')), values.length);
  }

  /** spad0..spad<count-1> in one round trip. */
  async readSpads(count: number): Promise<number[]> {
    if (count === 0) return [];
    const script = ['set -e', ...Array.from({ length: count }, (_, k) => `cat ${sq(this.path(`spad${k}`))}`)];
    const lines = (await run(this.guest, script.join('\n'))).split('\n').filter((l) => l.trim() !== '');
    if (lines.length !== count) throw new Error(`${this.guest.name}: read ${lines.length} scratchpads, expected ${count}`);
    return lines.map(parseKernelInt);
  }
}

/** writePeerSpads' output: one "<k> <exit status> <error text>" line per write. */
export function parseSpadWrites(text: string, count: number): { ok: boolean; error?: string }[] {
  const results: { ok: boolean; error?: string }[] = Array.from({ length: count }, () => ({ ok: false, error: 'no result printed' }));
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\d+) ?(.*)$/.exec(line.trim());
    if (!m || Number(m[1]) >= count) continue;
    const status = Number(m[2]);
    results[Number(m[1])] = status === 0 ? { ok: true } : { ok: false, error: m[3]!.trim() || `exit ${status}` };
  }
  return results;
}

/** Parses waitDbScript's last line: "<db> <changed 0|1>". */
export function parseWaitDb(text: string): { value: number; changed: boolean } {
  const out = text.trim().split(/\s+/);
  return { value: parseKernelInt(out[0] ?? '0'), changed: out[1] === '1' };
}
