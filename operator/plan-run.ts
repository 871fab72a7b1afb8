// The reconciler's decisions as a pure function of what it observed: the run, its pods and the time.
// Policies run in a fixed order, each in its own file; the first that settles the run's fate ends the pass.
import type { V1Pod } from '@kubernetes/client-node';
import type { CaptionTrainingRunStatus } from '../lib/api/types.js';
import { ConditionType } from './conditions.js';
import { applyFailurePolicy } from './failure-policy.js';
import { applyLaunchPolicy } from './launch-policy.js';
import { observeGang } from './observed-gang.js';
import { isFailed, isReady, isSucceeded, isTerminating } from './pod-state.js';
import { condition, type PolicyContext, type RunPlan } from './run-plan.js';
import type { StoredRun } from './run-object.js';
import { applyStuckPodPolicy } from './stuck-pod-policy.js';
import { applySuccessPolicy } from './success-policy.js';
import { applySuspendPolicy } from './suspend-policy.js';

export interface PlanInput {
  run: StoredRun;
  /** Every pod labelled as this run's child. */
  pods: readonly V1Pod[];
  serviceExists: boolean;
  nowMs: number;
  nodeReady(nodeName: string): boolean | undefined;
  forceDeleteAfterMs: number;
}

export function planRun(input: PlanInput): RunPlan {
  const { run } = input;
  const status: CaptionTrainingRunStatus = structuredClone(run.status ?? {});
  status.phase ??= 'Pending';
  status.attempt ??= 0;
  status.restarts ??= 0;
  status.workers ??= { ready: 0, total: 0 };
  if (run.metadata.generation !== undefined) status.observedGeneration = run.metadata.generation;
  const plan: RunPlan = { status, deletePods: [], forceDeletePods: [], createService: false, events: [] };
  const nowIso = new Date(input.nowMs).toISOString();
  const gang = observeGang(input.pods, status.attempt, run.spec.resources.workers);
  const ctx: PolicyContext = {
    run,
    spec: run.spec,
    pods: input.pods,
    gang,
    forceDeleteAfterMs: input.forceDeleteAfterMs,
    nowMs: input.nowMs,
    nowIso,
    plan,
    classify: { restartPolicy: run.spec.restartPolicy, nowMs: input.nowMs, nodeReady: input.nodeReady },
  };

  applyStuckPodPolicy(ctx);
  for (const pod of [...gang.older, ...gang.strays]) if (!isTerminating(pod)) plan.deletePods.push(pod);
  if (run.metadata.deletionTimestamp) return plan;

  if (status.phase === 'Succeeded' || status.phase === 'Failed') {
    // Keep finished pods for `kubectl logs`; stop the ones still holding GPUs for a run that is over.
    for (const pod of gang.current.values()) if (!isTerminating(pod) && !isFailed(pod) && !isSucceeded(pod)) plan.deletePods.push(pod);
    return plan;
  }
  plan.createService = !input.serviceExists;
  if (status.phase === 'Pending' && status.conditions === undefined) {
    condition(ctx, ConditionType.Progressing, 'True', 'Launching', 'creating the gang');
  }

  if (applySuspendPolicy(ctx)) return plan;
  if (applySuccessPolicy(ctx)) return plan;
  if (applyFailurePolicy(ctx)) return plan;
  applyLaunchPolicy(ctx);
  updateReadiness(ctx);
  return plan;
}

/** Running once every worker of a launched gang is up; the phase before that (Pending, Restarting) stays. */
function updateReadiness(ctx: PolicyContext): void {
  const { status } = ctx.plan;
  const total = status.workers?.total ?? 0;
  const ready = [...ctx.gang.current.values()].filter(isReady).length;
  status.workers = { ready, total };
  if (total === 0 || ready < total) return;
  if (status.phase !== 'Running') {
    ctx.plan.events.push({ type: 'Normal', reason: 'Running', message: `all ${total} workers of attempt ${ctx.gang.attempt} are running` });
  }
  status.phase = 'Running';
  condition(ctx, ConditionType.Ready, 'True', 'GangRunning', `${ready}/${total} workers running`);
  // Naming the checkpoint the trainer reported loading, which for a store the operator cannot read (a PVC)
  // is the only word on where the gang started.
  const from = status.resumedFrom ? `, resumed from ${status.resumedFrom}` : '';
  condition(ctx, ConditionType.Progressing, 'True', 'Training', `attempt ${ctx.gang.attempt} is training${from}`);
}
