import pc from 'picocolors';

type Sink = (line: string) => void;
let sink: Sink | undefined;

/** Routes progress lines through a live display while one is up (report/progress.ts); returns the previous route. */
export function setProgressSink(next: Sink | undefined): Sink | undefined {
  const previous = sink;
  sink = next;
  return previous;
}

/** Progress lines for people, on stderr so stdout stays machine-readable. */
export function progress(line: string): void {
  if (sink) return sink(line);
  const stamp = new Date().toISOString().slice(11, 19);
  process.stderr.write(`${pc.dim(stamp)} ${line}\n`);
}
