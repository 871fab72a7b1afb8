// What a launched gang changes in the run's status, apart from the I/O that launched it: the worker counts,
// the resume point the pods were given, and a condition and event saying which checkpoint the gang starts
// from or why the operator cannot tell (the trainer then reports it and status.resumedFrom follows).
import type { CaptionTrainingRunStatus } from '../lib/api/types.js';
import { ConditionType, markCondition } from './conditions.js';
import type { PlannedEvent } from './run-plan.js';

export interface LaunchedGang {
  attempt: number;
  workers: number;
  /** Training processes over all workers. */
  worldSize: number;
  /** The checkpoint the pods were told to resume from; undefined for a fresh start or an unreadable store. */
  resumeFrom?: string;
  /** Why the operator could not look for a resume point (a PVC, a Secret it may not read). */
  unseen?: string;
}

/** Records the launch in `status` and returns the event that tells it. */
export function gangCreated(status: CaptionTrainingRunStatus, gang: LaunchedGang, nowIso: string, generation: number | undefined): PlannedEvent {
  const { attempt, workers, worldSize, resumeFrom, unseen } = gang;
  status.workers = { ready: status.workers?.ready ?? 0, total: workers };
  status.worldSize = worldSize;
  if (resumeFrom) status.resumedFrom = resumeFrom;
  else delete status.resumedFrom;
  const from = resumeFrom
    ? `resuming from ${resumeFrom}`
    : unseen
      ? `the trainer resumes from the latest valid checkpoint it finds, if any (${unseen}); status.resumedFrom names it once the trainer reports`
      : 'starting fresh (no valid checkpoint)';
  const message = `attempt ${attempt}: ${workers} workers, ${worldSize} training processes, ${from}`;
  markCondition(status, { type: ConditionType.Progressing, status: 'True', reason: 'GangCreated', message }, nowIso, generation);
  return { type: 'Normal', reason: 'GangCreated', message: `created attempt ${attempt} with ${workers} workers (${worldSize} training processes), ${from}` };
}
