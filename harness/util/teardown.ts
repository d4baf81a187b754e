/**
 * Everything the harness starts registers its cleanup here, so that a normal end, an error, Ctrl-C,
 * SIGTERM or a timeout all end every QEMU, relay and SSH session. Child processes are additionally
 * started under `setpriv --pdeathsig KILL` (see util/proc.ts) so even a SIGKILLed harness leaves none.
 */
type Cleanup = { name: string; run: () => Promise<void> | void };

const cleanups: Cleanup[] = [];
let installed = false;
let tearingDown: Promise<void> | null = null;

/** Registers a cleanup; returns a function that unregisters it (after the owner cleaned up itself). */
export function onTeardown(name: string, run: Cleanup['run']): () => void {
  const entry = { name, run };
  cleanups.push(entry);
  return () => {
    const index = cleanups.indexOf(entry);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

/** Runs every registered cleanup, newest first, each bounded in time; never throws. */
export function teardownAll(timeoutMs = 15_000): Promise<void> {
  tearingDown ??= (async () => {
    while (cleanups.length > 0) {
      const entry = cleanups.pop()!;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(entry.run),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, timeoutMs);
          }),
        ]);
      } catch (error) {
        process.stderr.write(`ntbh: cleanup ${entry.name} failed: ${(error as Error).message}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
  })().finally(() => {
    tearingDown = null;
  });
  return tearingDown;
}

/** Ctrl-C and SIGTERM end the run cleanly: tear everything down, then exit 130/143. */
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  const handle = (signal: NodeJS.Signals, code: number) => {
    process.stderr.write(`\nntbh: ${signal} received, stopping guests and cleaning up...\n`);
    // A second signal while cleaning up means "now".
    process.once(signal, () => process.exit(code));
    void teardownAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => handle('SIGINT', 130));
  process.once('SIGTERM', () => handle('SIGTERM', 143));
  process.once('SIGHUP', () => handle('SIGHUP', 129));
}
