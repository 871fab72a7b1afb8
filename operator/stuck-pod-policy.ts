// Pods stuck Terminating on a node that stopped answering: no kubelet will ever confirm their end, so after
// a timeout they are force-deleted. Until then the new gang waits, because a partitioned node may still be
// running the old trainer, and two gangs must never write the same run's checkpoints.
import { isTerminating, timeMs } from './pod-state.js';
import { requeueAfter, type PolicyContext } from './run-plan.js';

export function applyStuckPodPolicy(ctx: PolicyContext): void {
  const { forceDeleteAfterMs } = ctx;
  for (const pod of ctx.pods) {
    if (!isTerminating(pod)) continue;
    const node = pod.spec?.nodeName;
    if (node === undefined || ctx.classify.nodeReady(node) === true) continue;
    const deadline = (timeMs(pod.metadata?.deletionTimestamp) ?? ctx.nowMs) + forceDeleteAfterMs;
    if (ctx.nowMs < deadline) {
      requeueAfter(ctx.plan, deadline - ctx.nowMs);
      continue;
    }
    ctx.plan.forceDeletePods.push(pod);
    ctx.plan.events.push({
      type: 'Warning',
      reason: 'ForceDeleted',
      message: `pod ${pod.metadata?.name ?? ''} was stuck terminating on NotReady node ${node} for ${Math.round(forceDeleteAfterMs / 1000)} s past its grace period; force-deleted`,
    });
  }
}
