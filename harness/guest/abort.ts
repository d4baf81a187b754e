/**
 * Stopping a guest command that was abandoned (its step ran out of time, or its own timeout fired):
 * the error an aborted exec rejects with, and the shell snippets that give every command its own
 * process group and kill that group.
 */
import { HarnessError } from '../errors.ts';

/** The wrapper's first stderr line: "ntbh-pgid <n>". */
export const PGID_TAG = 'ntbh-pgid ';

function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function firstLine(command: string): string {
  const line = command.trim().split('\n')[0] ?? '';
  return line.length > 100 ? `${line.slice(0, 97)}...` : line;
}

/**
 * Runs `command` in a session of its own and says its process group first. dropbear neither kills
 * a command whose channel closes nor signals more than the shell's pid, so the group is the handle
 * that reaches everything the command started. busybox `setsid` does not fork here (dropbear's
 * child is not a group leader), so the group id is this shell's pid and the exit status is the command's.
 */
export function wrapCommand(command: string): string {
  return `echo "${PGID_TAG}$$" >&2; exec setsid /bin/sh -c ${shq(command)}`;
}

/**
 * The longest command line sent as such. dropbear (2022.83, the image's) reads an exec request's
 * command with a 9000-byte limit (MAX_CMD_LEN) and, past it, ends the whole connection ("String too
 * long" in its log): the client sees "Unable to exec" and every later exec on that guest fails.
 */
export const COMMAND_LINE_MAX = 8192;

/**
 * How `command` reaches the guest: on the command line when its wrapped form fits, otherwise on the
 * channel's stdin (`stdin` is then what to send). The stdin form reads the script whole before it runs
 * it, so the command's own stdin is at its end, as it is for a short command without input. A
 * leading newline keeps a script that starts with "-" from reading as an option of sh -c.
 */
export function commandLine(command: string): { line: string; stdin?: string } {
  const line = wrapCommand(command);
  if (Buffer.byteLength(line) <= COMMAND_LINE_MAX) return { line };
  return { line: `echo "${PGID_TAG}$$" >&2; s=$(cat); exec setsid /bin/sh -c "$s"`, stdin: `\n${command}` };
}

/**
 * A long command that also has input of its own: the script is uploaded first (scriptUpload, its
 * stdin is the script) and then run from the file, which it removes.
 */
export function uploadedScript(path: string): { upload: string; run: string } {
  if (!/^\/tmp\/ntbh-cmd-[0-9a-z]+$/.test(path)) throw new Error(`refusing script path ${path}`);
  return { upload: `umask 077; cat > ${path}`, run: `sh ${path}; rc=$?; rm -f ${path}; exit $rc` };
}

/**
 * SIGKILLs process group `pgid` until no live (non-zombie) process is left in it, for up to
 * `tries` × 100 ms; exits 0 when the group is gone, 1 with "still running: <pids>" otherwise
 * (a task in uninterruptible sleep survives SIGKILL). Reads /proc: busybox has no pgrep here.
 */
export function killGroupScript(pgid: number, tries = 30): string {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new Error(`refusing to kill process group ${pgid}`);
  return [
    `g=${pgid}; i=0`,
    'while :; do',
    '  kill -9 -$g 2>/dev/null; left=',
    '  for s in /proc/[0-9]*/stat; do',
    '    { read -r l < "$s"; } 2>/dev/null || continue',
    // Fields after "(comm) ": state, ppid, pgrp.
    '    set -- ${l##*) }',
    '    [ "$3" = "$g" ] && [ "$1" != Z ] && left="$left ${s#/proc/}"',
    '  done',
    '  [ -z "$left" ] && exit 0',
    '  i=$((i+1)); [ $i -ge ' + tries + ' ] && { echo "still running:$(echo "$left" | sed "s|/stat||g")"; exit 1; }',
    '  sleep 0.1',
    'done',
  ].join('\n');
}

/** The error an exec rejects with when its signal aborts: the abort reason's code, with this guest and command. */
export function abortedExecError(guest: string, command: string, signal: AbortSignal, output = ''): HarnessError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return new HarnessError(`${guest}: stopped \`${firstLine(command)}\`: ${why}`, {
    code: reason instanceof HarnessError ? reason.code : 'EXEC_ABORTED',
    kind: reason instanceof HarnessError ? reason.kind : 'infra',
    phase: 'exec',
    guest,
    excerpt: `$ ${command}${output ? `\n${output.slice(-2000)}` : ''}`,
    cause: reason,
  });
}
