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
}

export interface GuestExec {
  /** Guest name as used in logs and errors: "ep", "host", ... */
  readonly name: string;
  /** Runs `command` with /bin/sh in the guest. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
}
