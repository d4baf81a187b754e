/**
 * Kernel console splat patterns, kept as data (tested against real captured consoles in
 * test/fixtures/consoles/). `title` becomes the report's headline; `fatal` ends the guest
 * (the harness stops waiting on it at once). Order matters: the first matching pattern wins.
 */
export interface SplatPattern {
  kind: string;
  /** Matched against one console line with the printk timestamp and log prefix removed. */
  match: RegExp;
  /** Lines that look alike but are not splats ("ODEBUG:" contains "BUG:"). */
  skip?: RegExp;
  fatal: boolean;
  /** How many following lines belong to the excerpt. */
  context: number;
}

export const splatPatterns: SplatPattern[] = [
  { kind: 'panic', match: /^Kernel panic - not syncing: (.*)/, fatal: true, context: 20 },
  { kind: 'sleeping-in-atomic', match: /^BUG: sleeping function called from invalid context/, fatal: false, context: 25 },
  { kind: 'scheduling-while-atomic', match: /^BUG: scheduling while atomic/, fatal: false, context: 25 },
  { kind: 'kasan', match: /^BUG: KASAN: (.*)/, fatal: false, context: 40 },
  { kind: 'kfence', match: /^BUG: KFENCE: (.*)/, fatal: false, context: 40 },
  { kind: 'soft-lockup', match: /^(?:watchdog: )?BUG: soft lockup/, fatal: false, context: 25 },
  { kind: 'null-deref', match: /^BUG: (?:kernel NULL pointer dereference|unable to handle page fault)/, fatal: false, context: 30 },
  { kind: 'bug', match: /^BUG: (.*)/, skip: /^(?:ODEBUG|BUG: using smp_processor_id)/, fatal: false, context: 25 },
  { kind: 'kernel-bug', match: /^kernel BUG at (.*)/, fatal: false, context: 30 },
  { kind: 'arm64-fault', match: /^Unable to handle kernel (.*)/, fatal: false, context: 30 },
  { kind: 'oops', match: /^(?:Oops|Internal error): (.*)/, fatal: false, context: 30 },
  { kind: 'gpf', match: /^general protection fault(.*)/, fatal: false, context: 30 },
  { kind: 'warning', match: /^WARNING: (?:CPU: \d+ PID: \d+ at )?(.*)/, skip: /^WARNING: (?:The mand mount option|Unsupported flag)/, fatal: false, context: 25 },
  { kind: 'ubsan', match: /^UBSAN: (.*)/, fatal: false, context: 20 },
  { kind: 'kcsan', match: /^BUG: KCSAN: (.*)/, fatal: false, context: 30 },
  { kind: 'lockdep', match: /^WARNING: (?:possible circular locking dependency detected|inconsistent lock state|possible recursive locking detected|suspicious RCU usage)/, fatal: false, context: 40 },
  { kind: 'hung-task', match: /^INFO: task (\S+) blocked for more than \d+ seconds/, fatal: false, context: 20 },
  { kind: 'rcu-stall', match: /^(?:INFO: )?rcu: INFO: rcu_\w+ (?:self-)?detected stalls?|^rcu: INFO: rcu_sched detected stalls/, fatal: false, context: 20 },
  { kind: 'refcount', match: /^refcount_t: (.*)/, fatal: false, context: 20 },
  { kind: 'list-corruption', match: /^list_(?:add|del) corruption(.*)/, fatal: false, context: 20 },
];

/** Strips "[   12.345678] " and "<4>" prefixes so patterns can anchor at the message start. */
export function messageOf(line: string): string {
  return line
    .replace(/\r$/, '')
    .replace(/^<\d+>/, '')
    .replace(/^\[\s*\d+\.\d+\]\s?/, '')
    .replace(/^\[\s*[TC]\d+\]\s?/, '');
}

export function classify(line: string): SplatPattern | undefined {
  const message = messageOf(line);
  // The lockdep WARNING titles are more specific than the generic WARNING: check them first.
  const lockdep = splatPatterns.find((p) => p.kind === 'lockdep');
  if (lockdep?.match.test(message)) return lockdep;
  return splatPatterns.find((pattern) => pattern.match.test(message) && !pattern.skip?.test(message));
}

/** The splat's own first line (without timestamp): what a kernel developer searches for. */
export function titleOf(line: string, _pattern: SplatPattern): string {
  return messageOf(line).trim().slice(0, 200);
}
