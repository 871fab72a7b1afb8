// Failures of the gang's collective layer. All are worth a relaunch (exit 1): the operator or the local
// supervisor replaces the whole gang, which resumes from the latest valid checkpoint. Each message names the
// rank and address involved, so the one line in `kubectl describe` says which pod to look at.
import { CaptionrunError } from '../../lib/errors.js';

/** Not every process joined (or the ring could not be formed) before spec.resources.rendezvousTimeoutSeconds. */
export class RendezvousTimeoutError extends CaptionrunError {
  constructor(
    message: string,
    /** The ranks that never showed up, as far as this process knows. */
    readonly missing: number[],
  ) {
    super(message, { hint: 'check that every worker pod started and can reach rank 0 (MASTER_ADDR:MASTER_PORT)' });
  }
}

/** Rank 0 refused this process: another run, another attempt, a duplicate rank or another world size. */
export class RendezvousRefusedError extends CaptionrunError {}

export type PeerFailure = 'closed' | 'reset' | 'timeout' | 'corrupt';

/** A neighbour in the ring died, hung past the collective's deadline, or sent a frame that failed its checks. */
export class PeerFailedError extends CaptionrunError {
  constructor(
    message: string,
    readonly peer: number,
    /** `cause` belongs to Error (an underlying error); this is the kind of failure. */
    readonly failure: PeerFailure,
  ) {
    super(message, { hint: "the gang is relaunched from the latest valid checkpoint; see the peer's own log for why it stopped" });
  }
}
