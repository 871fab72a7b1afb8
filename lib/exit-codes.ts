// Exit codes shared by every captionrun process. The operator and the local supervisor read them to decide
// whether a failure is worth a relaunch, so their meaning is part of the contract (see restartPolicy).
export const ExitCode = {
  Ok: 0,
  /** Something failed that a relaunch may fix (a lost peer, a store that stayed down). */
  Failure: 1,
  /** Bad command line: relaunching cannot help. */
  Usage: 2,
  /** Invalid spec, dataset or weights: relaunching cannot help until the input is fixed. */
  InvalidInput: 3,
  /** Stopped on SIGTERM after writing a final checkpoint: relaunch to resume with nothing lost. */
  Checkpointed: 75,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Codes that the supervisor and operator never retry unless restartPolicy.retryableExitCodes lists them. */
export const PERMANENT_EXIT_CODES: readonly number[] = [ExitCode.Usage, ExitCode.InvalidInput];
