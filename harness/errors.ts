/**
 * One error type for the whole harness. `code` is stable (scripts may match on it) and listed with its
 * meaning in harness/error-codes.ts (docs/error-codes.md), `phase` says
 * what the harness was doing, `guest` which guest it concerned, `kind` whether it is the user's input,
 * the infrastructure, or the code under test.
 */
export type ErrorKind = 'input' | 'infra' | 'test';

export type Phase =
  | 'setup'
  | 'kernel-build'
  | 'image-build'
  | 'qemu-build'
  | 'boot'
  | 'ssh'
  | 'exec'
  | 'link'
  | 'scenario'
  | 'step'
  | 'teardown'
  | 'report';

export interface HarnessErrorOptions {
  code: string;
  kind: ErrorKind;
  phase: Phase;
  guest?: string;
  /** Lines worth showing the user: a compiler error, a console excerpt, a YAML snippet. */
  excerpt?: string;
  /** Where the run's artifacts were kept, if any. */
  artifacts?: string;
  cause?: unknown;
}

export class HarnessError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly phase: Phase;
  readonly guest?: string;
  readonly excerpt?: string;
  artifacts?: string;

  constructor(message: string, options: HarnessErrorOptions) {
    super(message, { cause: options.cause });
    this.name = 'HarnessError';
    this.code = options.code;
    this.kind = options.kind;
    this.phase = options.phase;
    this.guest = options.guest;
    this.excerpt = options.excerpt;
    this.artifacts = options.artifacts;
  }

  /** Process exit code: 3 bad input, 2 infrastructure, 1 test failure. */
  get exitCode(): number {
    return this.kind === 'input' ? 3 : this.kind === 'infra' ? 2 : 1;
  }

  /** Multi-line text for a terminal. */
  describe(): string {
    const where = [this.phase, this.guest].filter(Boolean).join('/');
    const lines = [`error[${this.code}] (${where}): ${this.message}`];
    if (this.excerpt) lines.push(indent(this.excerpt.trimEnd()));
    if (this.cause instanceof Error && this.cause.message && !this.message.includes(this.cause.message)) {
      lines.push(`  caused by: ${this.cause.message.split('\n')[0]}`);
    }
    if (this.artifacts) lines.push(`  artifacts kept in ${this.artifacts}`);
    return lines.join('\n');
  }
}

export function indent(text: string, prefix = '  | '): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

export function isHarnessError(error: unknown): error is HarnessError {
  return error instanceof HarnessError;
}
