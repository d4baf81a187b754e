/** What the rest of the harness may do with a running guest. Implemented over SSH in guest/ssh.ts. */
export interface ExecResult {
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

export interface ExecOptions {
  /** Milliseconds before the command is abandoned (HarnessError code EXEC_TIMEOUT); scaled for TCG by the caller. */
  timeoutMs?: number;
  /** Reject with a HarnessError (code EXEC_FAILED) on a non-zero exit instead of returning it. */
  check?: boolean;
  /** Text fed to the command's stdin. */
  stdin?: string;
  /**
   * Aborting rejects the exec at once (with the signal's reason: its code, this guest and command)
   * and stops the remote command; an exec started on an aborted signal fails without running.
   */
  signal?: AbortSignal;
  /** Handed the cleanup of a command that was aborted or timed out: whether its processes are gone. */
  onCleanup?: (outcome: Promise<CleanupOutcome>) => void;
}

/** How stopping an abandoned remote command ended. */
export interface CleanupOutcome {
  guest: string;
  command: string;
  /** True when nothing of the command runs any more (or it never started). */
  ok: boolean;
  /** What happened, for the step's message: "killed process group 123", "still running: 123 124", ... */
  detail: string;
}

export interface GuestExec {
  /** Guest name as used in logs and errors: "ep", "host", ... */
  readonly name: string;
  /** Runs `command` with /bin/sh in the guest. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
}
