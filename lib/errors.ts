// Typed errors that carry where the problem is and how to fix it, so every layer can print one clear line.
import { ExitCode, type ExitCodeValue } from './exit-codes.js';

export interface ErrorContext {
  /** Field path in the spec, e.g. "spec.dataset.source". */
  field?: string;
  /** File or URI the problem is in, with ":line" where known. */
  file?: string;
  /** What the user should do about it. */
  hint?: string;
  cause?: unknown;
}

export class CaptionrunError extends Error {
  readonly field?: string;
  readonly file?: string;
  readonly hint?: string;
  readonly exitCode: ExitCodeValue;

  constructor(message: string, context: ErrorContext = {}, exitCode: ExitCodeValue = ExitCode.Failure) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.field = context.field;
    this.file = context.file;
    this.hint = context.hint;
    this.exitCode = exitCode;
  }

  /** "file: field: message (hint)" — the one line a CLI prints. */
  describe(): string {
    const where = [this.file, this.field].filter(Boolean).join(': ');
    return `${where ? `${where}: ` : ''}${this.message}${this.hint ? ` (${this.hint})` : ''}`;
  }
}

/** Input the user must fix: never retried. */
export class InvalidInputError extends CaptionrunError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, context, ExitCode.InvalidInput);
  }
}

/** Bad command-line usage. */
export class UsageError extends CaptionrunError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, context, ExitCode.Usage);
  }
}
