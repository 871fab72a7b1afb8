// What one reconcile decided: the run's next status and the actions that lead to it. Policies fill it in;
// the reconciler carries it out and writes the status once at the end.
import type { V1Pod } from '@kubernetes/client-node';
import type { CaptionTrainingRunSpec, CaptionTrainingRunStatus } from '../lib/api/types.js';
import type { ClassifyContext } from './pod-failure.js';
import type { ObservedGang } from './observed-gang.js';
import type { StoredRun } from './run-object.js';

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface GangLaunch {
  attempt: number;
  ranks: number[];
  /** The resume point pods of this attempt already carry; undefined means look up the latest valid checkpoint. */
  resumeFrom?: { uri: string | undefined };
}

export interface RunPlan {
  status: CaptionTrainingRunStatus;
  /** Pods deleted with their grace period (the trainer writes a final checkpoint). */
  deletePods: V1Pod[];
  /** Pods stuck terminating on a node that no longer answers: deleted with grace period 0. */
  forceDeletePods: V1Pod[];
  createService: boolean;
  launch?: GangLaunch;
  events: PlannedEvent[];
  /** Reconcile again after this long even if nothing changes (backoff, grace periods). */
  requeueAfterMs?: number;
}

export interface PolicyContext {
  run: StoredRun;
  spec: CaptionTrainingRunSpec;
  gang: ObservedGang;
  nowMs: number;
  nowIso: string;
  classify: ClassifyContext;
  plan: RunPlan;
}

export function requeueAfter(plan: RunPlan, ms: number): void {
  const wait = Math.max(ms, 0);
  plan.requeueAfterMs = plan.requeueAfterMs === undefined ? wait : Math.min(plan.requeueAfterMs, wait);
}
