import pc from 'picocolors';

/** Progress lines for people, on stderr so stdout stays machine-readable. */
export function progress(line: string): void {
  const stamp = new Date().toISOString().slice(11, 19);
  process.stderr.write(`${pc.dim(stamp)} ${line}\n`);
}
