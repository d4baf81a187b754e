/** The sender-side check every ringing doorbell step shares. */
import type { CheckDef } from './define.ts';

export const ringChecks = {
  ring_ok: { spec: 'true', doc: "the sender's peer_db write succeeded" },
} satisfies Record<string, CheckDef>;
