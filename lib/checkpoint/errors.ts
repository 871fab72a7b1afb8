// Typed failures of the checkpoint store. An unreachable store and a corrupt checkpoint are different
// problems with different cures (wait and retry vs. fall back to an older checkpoint), so they never share a type.
import { CaptionrunError, type ErrorContext } from '../errors.js';

export const INVALID_REASONS = [
  'manifest-missing',
  'manifest-unparsable',
  'manifest-invalid',
  'unknown-format-version',
  'manifest-digest-mismatch',
  'step-mismatch',
  'file-missing',
  'file-short',
  'file-long',
  'digest-mismatch',
] as const;
export type InvalidReason = (typeof INVALID_REASONS)[number];

/** The store stayed unreachable (5xx, timeouts, resets) for longer than the retry budget. */
export class StoreUnavailableError extends CaptionrunError {
  readonly attempts: number;
  constructor(message: string, attempts: number, context: ErrorContext = {}) {
    super(message, { hint: 'check the store endpoint and credentials; the next save retries from the trainer state', ...context });
    this.attempts = attempts;
  }
}

/** A checkpoint failed verification; `reason` says which rule it broke. */
export class CheckpointInvalidError extends CaptionrunError {
  readonly reason: InvalidReason;
  readonly checkpoint: string;
  constructor(checkpoint: string, reason: InvalidReason, detail: string, context: ErrorContext = {}) {
    super(`${checkpoint} is invalid: ${reason}: ${detail}`, context);
    this.reason = reason;
    this.checkpoint = checkpoint;
  }
}

/** A save request the writer cannot take: bad snapshot shape, or the writer is closed. */
export class CheckpointSaveError extends CaptionrunError {}
