/**
 * The checks each step type produces and the spec each defaults to. The schema uses this table to
 * reject `expect` keys that name no check, the executor to judge a check the scenario did not declare.
 * Specs are expressions (expr.ts); one that reads `value` is a predicate, any other an expected value.
 */
export interface CheckDef {
  spec: string;
  doc: string;
}

type Catalogue = Record<string, Record<string, CheckDef>>;

const ringChecks = {
  ring_ok: { spec: 'true', doc: "the sender's peer_db write succeeded" },
} satisfies Record<string, CheckDef>;

export const CHECKS: Catalogue = {
  setup: {
    configured: { spec: 'true', doc: 'every configfs attribute written, function linked and started on the EP' },
    function_visible: { spec: 'true', doc: 'the host sees a PCI function with the configured vendor/device' },
    class_code: { spec: 'class_code', doc: 'the 24-bit class the host reads (param class_code is the configured one)' },
    driver_bound: { spec: 'true', doc: 'the expected host driver bound to the function' },
    bar_map: { spec: 'true', doc: "vntb: the host sees the BARs ctrl_bar/db_bar/mw1_bar name (ntb_hw_epf's map for the IDs)" },
    msi_vectors: { spec: 'value >= 1', doc: 'MSI vectors the host driver got (Nh)' },
  },
  'link-up': {
    link: { spec: 'true', doc: "ntb_tool's peer0/link reads Y on this side" },
    wire_link: { spec: 'true', doc: 'the relay reports the RC function plugged' },
  },
  'db-valid-mask': {
    db_valid_mask: { spec: 'mask(N - 2)', doc: "ntb_tool's db_valid_mask on this side (N = Nh on the host, Ne on the EP)" },
  },
  'doorbell-sweep': {
    ...ringChecks,
    db: { spec: 'bit(i)', doc: "receiver's db after bit i was rung" },
    vector: { spec: 'i', doc: 'vector passed to ntb_db_event on the receiver (ntb_tool dynamic debug)' },
    vector_kprobe: { spec: 'i', doc: 'vector passed to ntb_db_event on the receiver (kprobe)' },
    vector_mask: { spec: 'bit(i)', doc: 'db_vector_mask(vector) as ntb_tool logged it' },
    msi_index: { spec: 'i + 2', doc: "host MSI vector index that fired (/proc/interrupts delta); host receiver only" },
    wire: { spec: 'i + 2', doc: 'host vector index the relay delivered; EP-to-host only' },
    db_after_clear: { spec: '0', doc: "receiver's db after `c bit(i)`" },
  },
  'doorbell-multi': {
    ...ringChecks,
    db: { spec: 'B', doc: "host's db after the EP rang all bits of B at once" },
    vectors: { spec: 'bits(B)', doc: 'vectors passed to ntb_db_event on the host, sorted' },
    msi_index: { spec: 'bits(B) + 2', doc: 'host MSI vector indices that fired, sorted' },
    wire: { spec: 'bits(B) + 2', doc: 'host vector indices the relay delivered, sorted' },
    db_after_clear: { spec: '0', doc: "host's db after `c B`" },
  },
  'doorbell-zero': {
    ...ringChecks,
    db: { spec: '0', doc: "receiver's db after the sender wrote `s 0`" },
    vector: { spec: 'none', doc: 'vector passed to ntb_db_event on the receiver (none expected)' },
    vector_kprobe: { spec: 'none', doc: 'the same, seen by the kprobe' },
    vector_mask: { spec: 'none', doc: 'db_vector_mask(vector) of a (spurious) event' },
    msi_index: { spec: 'none', doc: 'host MSI vector index that fired; host receiver only' },
    wire: { spec: 'none', doc: 'host vector index the relay delivered; EP-to-host only' },
  },
  'doorbell-clear': {
    db_before_clear: { spec: 'B', doc: "receiver's db after ringing each bit of B, one ring at a time" },
    db_after_clear: { spec: 'R', doc: "receiver's db after `c C` (R = B without C)" },
  },
  spad: {
    spad: { spec: 'w', doc: "scratchpad k read on the receiver after the writer wrote w into peer0/spad<k>" },
  },
  mw: {
    hex_trans: {
      spec: 'true',
      doc: "the sender's ntb_tool accepts peer_mw_trans in its documented form `0xADDR:SIZE` (ntb_tool's usage comment, ntb_test.sh)",
    },
    match: { spec: 'true', doc: 'data written through one side of the window read back identical on the other (mapped as decimal `ADDR:SIZE`)' },
  },
  perf: {
    completed: { spec: 'true', doc: 'ntb_perf run finished within the timeout (no hang)' },
    mbps: { spec: 'value > 0', doc: 'ntb_perf throughput, MBytes/s (a functional check under TCG)' },
  },
  'pingpong-atomic': {
    pings: { spec: 'value > 0', doc: 'ntb_pingpong count on the EP after the run' },
  },
  'link-cycle': {
    host_gone: { spec: 'true', doc: 'the host saw the function leave after `echo 0 > start`' },
    wire_down: { spec: 'true', doc: 'the relay reported the link down' },
    host_back: { spec: 'true', doc: 'the host saw the function return after `echo 1 > start`' },
    driver_bound: { spec: 'true', doc: 'the host driver bound again' },
    wire_up: { spec: 'true', doc: 'the relay reported the link up again' },
  },
  'pcitest-bar': {
    ok: { spec: 'true', doc: '`pcitest -b n` printed OKAY' },
  },
  'pcitest-msi': {
    ok: { spec: 'true', doc: '`pcitest -m n` printed OKAY' },
    wire: { spec: 'n - 1', doc: 'host vector index the relay delivered' },
    irq: { spec: 'n - 1', doc: 'host vector index whose /proc/interrupts count rose' },
    witness_agree: { spec: 'true', doc: "relay's per-vector counts equal the /proc/interrupts deltas" },
  },
  'pcitest-rw': {
    ok: { spec: 'true', doc: '`pcitest -r/-w/-c -s size` printed OKAY' },
    witness_agree: { spec: 'true', doc: "relay's per-vector counts equal the /proc/interrupts deltas over the step" },
  },
};

/** Checks every step may produce, whatever its type. */
export const COMMON_CHECKS: Record<string, CheckDef> = {
  splats: { spec: '[]', doc: 'kernel splats seen on the consoles during the step (judged by `splats:`)' },
  taint: { spec: 'true', doc: 'no new taint flag (W, D, L, ...) without a splat explaining it' },
};

export function checkDef(stepType: string, check: string): CheckDef | undefined {
  const own = <T>(table: Record<string, T> | undefined, key: string) => (table && Object.hasOwn(table, key) ? table[key] : undefined);
  return own(own(CHECKS, stepType), check) ?? own(COMMON_CHECKS, check);
}

/** Parameter names expressions may read, besides the scenario's own `params`. */
export const BUILTIN_PARAMS: Record<string, string> = {
  Nh: 'MSI vectors the host driver got',
  Ne: "vntb's configured db_count",
  N: 'Nh when the observation is on the host, Ne on the EP',
  i: 'the doorbell bit rung (doorbell-sweep)',
  B: 'the bits rung (doorbell-multi, doorbell-clear)',
  C: 'the bits cleared (doorbell-clear)',
  R: 'B without C (doorbell-clear)',
  k: 'scratchpad index',
  w: 'value written (spad)',
  n: 'BAR or MSI number (pcitest)',
  size: 'transfer size in bytes',
  class_code: 'configured 24-bit class code',
  value: 'the measured value (makes the expression a predicate)',
};
