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
