/** events.ndjson: every event of the run (but progress ticks), one JSON object per line, as it happens. */
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Stamped } from '../events.ts';

export interface NdjsonReporter {
  listener: (event: Stamped) => void;
  path: string;
  close(): Promise<void>;
}

export function ndjsonReporter(dir: string): NdjsonReporter {
  const path = join(dir, 'events.ndjson');
  const stream: WriteStream = createWriteStream(path, { flags: 'a' });
  return {
    path,
    listener: (event) => {
      // Ticks of a live display, not a record of the run.
      if (event.kind === 'progress') return;
      stream.write(`${JSON.stringify(event)}\n`);
    },
    close: () => new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve()))),
  };
}
