/**
 * Kernel console splat patterns, kept as data (checked against real captured consoles in
 * test/fixtures/consoles/, see docs/splats.md). `fatal` ends the guest (the harness stops waiting on
 * it at once). The table's order does not matter: when several patterns match a line, the most
 * specific one wins (the one that matched the most fixed text), so "BUG: KCSAN:" is a kcsan splat
 * and never the generic "BUG:".
 */
export interface SplatPattern {
  kind: string;
  /**
   * Matched against one console line with the printk timestamp and log prefix removed. Capture group 1,
   * if any, is the free text after the fixed part; it does not count towards specificity.
   */
  match: RegExp;
  /** Lines that look alike but are not splats. */
  skip?: RegExp;
  fatal: boolean;
  /** How many following lines belong to the excerpt. */
  context: number;
}

export const splatPatterns: readonly SplatPattern[] = [
  { kind: 'panic', match: /^Kernel panic - not syncing: (.*)/, fatal: true, context: 20 },
  { kind: 'sleeping-in-atomic', match: /^BUG: sleeping function called from invalid context/, fatal: false, context: 25 },
  { kind: 'scheduling-while-atomic', match: /^BUG: scheduling while atomic/, fatal: false, context: 25 },
  // lib/smp_processor_id.c: smp_processor_id() or a this_cpu op from preemptible code.
  { kind: 'preemptible-cpu-access', match: /^BUG: using (?:smp_processor_id|__this_cpu_\w+|this_cpu_\w+)\(\) in preemptible/, fatal: false, context: 20 },
  { kind: 'kasan', match: /^BUG: KASAN: (.*)/, fatal: false, context: 40 },
  { kind: 'kfence', match: /^BUG: KFENCE: (.*)/, fatal: false, context: 40 },
  { kind: 'kcsan', match: /^BUG: KCSAN: (.*)/, fatal: false, context: 30 },
  { kind: 'soft-lockup', match: /^(?:watchdog: )?BUG: soft lockup/, fatal: false, context: 25 },
  { kind: 'workqueue-lockup', match: /^BUG: workqueue lockup/, fatal: false, context: 25 },
  { kind: 'null-deref', match: /^BUG: (?:kernel NULL pointer dereference|unable to handle page fault)/, fatal: false, context: 30 },
  { kind: 'bug', match: /^BUG: (.*)/, fatal: false, context: 25 },
  { kind: 'kernel-bug', match: /^kernel BUG at (.*)/, fatal: false, context: 30 },
  { kind: 'arm64-fault', match: /^Unable to handle kernel (.*)/, fatal: false, context: 30 },
  { kind: 'oops', match: /^(?:Oops|Internal error): (.*)/, fatal: false, context: 30 },
  { kind: 'gpf', match: /^general protection fault(.*)/, fatal: false, context: 30 },
  { kind: 'warning', match: /^WARNING: (?:CPU: \d+ PID: \d+ at )?(.*)/, skip: /^WARNING: (?:The mand mount option|Unsupported flag)/, fatal: false, context: 25 },
  { kind: 'lockdep', match: /^WARNING: (?:possible circular locking dependency detected|inconsistent lock state|possible recursive locking detected|suspicious RCU usage)/, fatal: false, context: 40 },
  { kind: 'ubsan', match: /^UBSAN: (.*)/, fatal: false, context: 20 },
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

/** How much fixed text the pattern matched in `message` (the free-text group 1 excluded); -1 if no match. */
export function specificity(pattern: SplatPattern, message: string): number {
  if (pattern.skip?.test(message)) return -1;
  const m = pattern.match.exec(message);
  if (!m) return -1;
  return m[0].length - (m[1]?.length ?? 0);
}

/** The most specific matching pattern; ties go to the earlier entry. `table` is a parameter for tests. */
export function classify(line: string, table: readonly SplatPattern[] = splatPatterns): SplatPattern | undefined {
  const message = messageOf(line);
  let best: SplatPattern | undefined;
  let bestScore = -1;
  for (const pattern of table) {
    const score = specificity(pattern, message);
    if (score > bestScore) [best, bestScore] = [pattern, score];
  }
  return best;
}

/** The splat's own first line as printed (without timestamp): what a kernel developer searches for. */
export function titleOf(line: string): string {
  return messageOf(line).trim().slice(0, 200);
}

/**
 * Rewrites that take run-to-run noise out of a title, in order. Each says what it removes.
 * Kept as data so docs/splats.md and the tests can list them.
 */
export const titleRules: readonly { why: string; from: RegExp; to: string }[] = [
  { why: 'printk timestamps and caller ids', from: /^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[TC]\d+\]\s?)?/, to: '' },
  { why: 'CPU and PID of a WARN', from: /\bCPU: \d+ PID: \d+ at /, to: 'at ' },
  { why: 'other CPU numbers', from: /\b(CPU|cpu)([#:]?\s?)\d+\b/g, to: '$1$2N' },
  { why: 'other PIDs', from: /\b(PID|pid)([:=]\s?)\d+\b/g, to: '$1$2N' },
  { why: 'function offsets (+0x1c/0x40)', from: /\+0x[0-9a-f]+\/0x[0-9a-f]+/g, to: '' },
  { why: 'kernel addresses (hashed or raw, with or without 0x)', from: /\b(?:0x)?[0-9a-f]{12,}\b/g, to: 'ADDR' },
  { why: 'numbered task names (kworker/0:1:12, swapper/0, sh/123) where a comm is printed', from: /(\b(?:task|code:|[Cc]omm:|name:)\s+|\[)([^\s/\]]+)\/([^\s\]]*\d[^\s\]]*)/g, to: '$1$2/N' },
  { why: 'the pid after a hung task\'s comm (task sh:123)', from: /(\btask [^\s:]+):\d+\b/g, to: '$1' },
  { why: 'durations', from: /\b\d+(?:\.\d+)?(\s?)(s|ms|seconds|jiffies)\b/g, to: 'N$1$2' },
  { why: 'build directory prefix of source paths (../src/kernel/... → kernel/...)', from: /(^|\s)(?:\.\.\/)+(?:src\/)?/g, to: '$1' },
  { why: 'runs of blanks', from: /\s+/g, to: ' ' },
];

/** The title with PIDs, CPUs, addresses, offsets, timestamps and numbered task names taken out. */
export function normalizeTitle(title: string): string {
  let out = title;
  for (const rule of titleRules) out = out.replace(rule.from, rule.to);
  return out.trim();
}
