// Starts the current attempt's gang once nothing of an older attempt is left (old trainers must not share
// a rendezvous or a checkpoint directory with new ones) and, after a counted failure, once the backoff is
// over. Pods of this attempt that already exist (an operator that died mid-launch) keep their resume point.
import { relaunchDelaySeconds } from '../lib/restart-policy.js';
import { ConditionType } from './conditions.js';
import { ANNOTATION_RESUME_FROM } from './gang-names.js';
import { missingRanks } from './observed-gang.js';
import { timeMs } from './pod-state.js';
import { condition, requeueAfter, type PolicyContext } from './run-plan.js';

/** How often to look again while old pods are going away, in case a watch event is lost. */
const OLD_POD_RECHECK_MS = 5000;

export function applyLaunchPolicy(ctx: PolicyContext): void {
  const { gang, plan } = ctx;
  const { status } = plan;
  if ((status.workers?.total ?? 0) > 0) return;

  const leftovers = gang.older.length + gang.strays.length;
  if (leftovers > 0) {
    condition(ctx, ConditionType.Progressing, 'True', 'WaitingForOldPods', `waiting for ${leftovers} pod(s) of earlier attempts to terminate`);
    requeueAfter(plan, OLD_POD_RECHECK_MS);
    return;
  }
  if (status.phase === 'Restarting') {
    const failedAt = timeMs(status.lastFailure?.time) ?? ctx.nowMs;
    const notBefore = failedAt + relaunchDelaySeconds(status.restarts ?? 0, ctx.spec.restartPolicy) * 1000;
    if (ctx.nowMs < notBefore) {
      condition(ctx, ConditionType.Progressing, 'True', 'Backoff', `relaunching at ${new Date(notBefore).toISOString()}`);
      requeueAfter(plan, notBefore - ctx.nowMs);
      return;
    }
  }

  const existing = [...gang.current.values()][0];
  const ranks = missingRanks(gang);
  plan.launch = { attempt: gang.attempt, ranks };
  if (existing) plan.launch.resumeFrom = { uri: existing.metadata?.annotations?.[ANNOTATION_RESUME_FROM] };
  status.startTime ??= ctx.nowIso;
}
