// What one reconcile decided: the run's next status and the actions that lead to it. Policies fill it in;
// the reconciler carries it out and writes the status once at the end.
import type { V1Pod } from '@kubernetes/client-node';
import type { CaptionTrainingRunSpec, CaptionTrainingRunStatus, Condition } from '../lib/api/types.js';
import { markCondition } from './conditions.js';
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
  /** Every pod labelled as the run's child, of any attempt. */
  pods: readonly V1Pod[];
  gang: ObservedGang;
  /** Extra time a pod may stay Terminating on a NotReady node past its grace period before it is force-deleted. */
  forceDeleteAfterMs: number;
  nowMs: number;
  nowIso: string;
  classify: ClassifyContext;
  plan: RunPlan;
}

/** A policy's verdict on one condition, at the pass's time and the run's generation. */
export function condition(ctx: PolicyContext, type: string, status: Condition['status'], reason: string, message: string): void {
  markCondition(ctx.plan.status, { type, status, reason, message }, ctx.nowIso, ctx.run.metadata.generation);
}

export function requeueAfter(plan: RunPlan, ms: number): void {
  const wait = Math.max(ms, 0);
  plan.requeueAfterMs = plan.requeueAfterMs === undefined ? wait : Math.min(plan.requeueAfterMs, wait);
}
