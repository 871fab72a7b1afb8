// Errors of the process group. Every one is retryable (exit code 1): the operator relaunches the whole gang,
// which then resumes from the latest valid checkpoint. Each message names the rank and address involved, so
// the one line in `kubectl describe` says which pod to look at.
import { CaptionrunError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';

/** Not every rank registered with rank 0 (or the ring could not be formed) before the rendezvous deadline. */
export class RendezvousTimeoutError extends CaptionrunError {
  constructor(
    message: string,
    /** The ranks that never showed up (as far as this rank knows). */
    readonly missing: readonly number[],
    readonly masterAddress: string,
  ) {
    super(message, { hint: 'check that every rank of the gang started and that MASTER_ADDR/MASTER_PORT reach rank 0' }, ExitCode.Failure);
  }
}

/**
 * Rank 0 (or the ring neighbour) refused this rank: another run, another attempt, a duplicate rank or a
 * different world size. The refusing side logs it and keeps waiting for the right ranks.
 */
export class RendezvousRefusedError extends CaptionrunError {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message, { hint: 'a pod of another run or an older gang attempt is still reachable at this address' }, ExitCode.Failure);
  }
}

export type PeerFailure = 'closed' | 'reset' | 'timeout' | 'corrupt';

/**
 * A ring neighbour died, hung or sent bytes that are not a valid frame: the group is broken. `cause` is the
 * kind of failure (it shadows Error's `cause`); the error underneath, where there is one, is `underlying`.
 */
export class PeerFailedError extends CaptionrunError {
  override readonly cause: PeerFailure;
  readonly underlying?: unknown;

  constructor(
    message: string,
    readonly peer: number,
    cause: PeerFailure,
    underlying?: unknown,
  ) {
    super(message, {}, ExitCode.Failure);
    this.cause = cause;
    if (underlying !== undefined) this.underlying = underlying;
  }
}

/** A call on a group that close() closed (or a call that was pending when close() came). */
export class GroupClosedError extends CaptionrunError {
  constructor(message: string) {
    super(message, {}, ExitCode.Failure);
  }
}
