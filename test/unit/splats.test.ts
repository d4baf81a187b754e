import t from 'tap';
import type { ExpectedSplat } from '../../harness/scenario/schema.ts';
import { judgeSplats, newSeriousTaint, taintFlags, type Splat } from '../../harness/scenario/splats.ts';

const entry: ExpectedSplat = {
  step: 'pingpong',
  guest: 'ep',
  pattern: 'BUG: sleeping function called from invalid context',
  when: { ep: { vntb_deferred_raise: false } },
  requires: { ep: { debug_atomic_sleep: true } },
  optional: false,
  xfail: 'old vntb raises the MSI under a spinlock',
};

// As the console monitor titles it (harness/detect/patterns.ts).
const bug: Splat = {
  guest: 'ep',
  kind: 'sleeping-in-atomic',
  title: 'BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585',
  rawTitle: 'BUG: sleeping function called from invalid context at ../src/kernel/locking/mutex.c:585',
  excerpt: '[   41.102934] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585\n[   41.103311] in_atomic(): 1, irqs_disabled(): 128, non_block: 0, pid: 0, name: swapper/0',
  step: 'pingpong',
};

const oldEp = { 'ep.vntb_deferred_raise': false, 'ep.debug_atomic_sleep': true };
const newEp = { 'ep.vntb_deferred_raise': true, 'ep.debug_atomic_sleep': true };

t.test('old EP: the expected splat is XFAIL evidence', async (t) => {
  const j = judgeSplats('pingpong', [bug], [entry], oldEp);
  t.same(
    j.checks.map((c) => [c.id, c.status]),
    [['splats[ep: BUG: sleeping function called from invalid context]', 'XFAIL']],
  );
  t.equal(j.records[0]!.expected, true);
  t.equal(j.records[0]!.rawTitle, bug.rawTitle, 'the record keeps the raw title next to the normalized one');
});

t.test('old EP without the splat: XPASS (the known bug did not reproduce)', async (t) => {
  const j = judgeSplats('pingpong', [], [entry], oldEp);
  t.equal(j.checks[0]!.status, 'XPASS');
  t.match(j.checks[0]!.message, /did not appear/);
});

t.test('new EP: no splat is a PASS, the same splat is a FAIL', async (t) => {
  t.equal(judgeSplats('pingpong', [], [entry], newEp).checks[0]!.status, 'PASS');
  const j = judgeSplats('pingpong', [bug], [entry], newEp);
  t.same(
    j.checks.map((c) => c.status),
    ['FAIL'],
  );
  t.match(j.checks[0]!.message, /unexpected splat: ep: BUG: sleeping function/);
  t.equal(j.records[0]!.expected, false);
});

t.test('without CONFIG_DEBUG_ATOMIC_SLEEP there is nothing to observe: SKIP', async (t) => {
  const j = judgeSplats('pingpong', [], [entry], { 'ep.vntb_deferred_raise': false, 'ep.debug_atomic_sleep': false });
  t.equal(j.checks[0]!.status, 'SKIP');
});

t.test('splats of other steps or guests are not this entry', async (t) => {
  const hostSplat = { ...bug, guest: 'host' };
  const j = judgeSplats('pingpong', [hostSplat], [entry], oldEp);
  t.same(
    j.checks.map((c) => c.status),
    ['XPASS', 'FAIL'],
    'the entry is for the EP; a host splat is unexpected',
  );
  t.same(judgeSplats('link', [], [entry], oldEp).checks, [], 'no entry for the step and nothing seen: no check');
});

t.test('new serious taint without a splat is a FAIL; module taints are not', async (t) => {
  t.equal(taintFlags(512 + 4096), 'WO');
  t.equal(newSeriousTaint({ before: 4096, after: 4096 + 512 }), 'W');
  t.equal(newSeriousTaint({ before: 0, after: 4096 + 8192 }), '', 'O and E come from loading modules');
  const j = judgeSplats('link', [], [], {}, { ep: { before: 0, after: 512 } });
  t.equal(j.checks[0]!.status, 'FAIL');
  t.match(j.checks[0]!.message, /ep kernel newly tainted W but no splat/);
  t.same(judgeSplats('pingpong', [bug], [entry], oldEp, { ep: { before: 0, after: 512 } }).checks.map((c) => c.status), ['XFAIL'], 'a splat explains the taint');
});

t.test('an optional entry for every step excuses its splat without demanding it', async (t) => {
  const oldHost: ExpectedSplat = {
    step: '*',
    guest: 'host',
    pattern: 'BUG: sleeping function called from invalid context',
    when: { host: { epf_irq_ctx: false } },
    optional: true,
    xfail: 'pre-series ntb_hw_epf calls pci_irq_vector() in hard-irq context',
  };
  const hostBug = { ...bug, guest: 'host' };
  const caps = { 'host.epf_irq_ctx': false };
  t.same(judgeSplats('sweep', [hostBug], [oldHost], caps).checks.map((c) => c.status), ['XFAIL']);
  t.same(judgeSplats('sweep', [], [oldHost], caps).checks, [], 'absent: nothing to say');
  t.same(judgeSplats('sweep', [hostBug], [oldHost], { 'host.epf_irq_ctx': true }).checks.map((c) => c.status), ['FAIL'], 'a fixed host must stay clean');
  t.same(judgeSplats('sweep', [], [{ ...oldHost, step: ['sweep', 'multi'], optional: false }], caps).checks.map((c) => c.status), ['XPASS'], 'a firm entry naming the step');
});

t.test('not knowing is an ERROR: uncollectable splats and unreadable taint', async (t) => {
  const gap = judgeSplats('pingpong', [], [entry], oldEp, {}, ["the end-of-step marker never reached ep's console"]);
  t.same(gap.checks.map((c) => [c.id, c.status]), [['splats[collect]', 'ERROR']], 'no XPASS claimed for a splat that may just be unread');
  t.match(gap.checks[0]!.message, /may be missing: the end-of-step marker never reached ep's console/);
  t.same(judgeSplats('pingpong', [bug], [entry], oldEp, {}, ['x']).checks.map((c) => c.status), ['XFAIL', 'ERROR'], 'what was seen is still judged');
  const taint = judgeSplats('link', [], [], {}, { ep: { error: 'ssh: connection reset' } });
  t.same(taint.checks.map((c) => [c.id, c.status]), [['taint[ep]', 'ERROR']]);
  t.match(taint.checks[0]!.message, /cannot check ep's taint: ssh: connection reset/);
});
