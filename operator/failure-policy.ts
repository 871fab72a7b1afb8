// What a failed gang leads to. A checkpointed stop or a disruption relaunches without counting; a plain
// failure relaunches after an exponential backoff until restartPolicy.backoffLimit is used up; a permanent
// one fails the run at once with a condition that says what to fix. Relaunching means advancing
// status.attempt: the old attempt's pods are deleted and the launch policy starts the next gang.
import { ConditionType } from './conditions.js';
import { missingRanks } from './observed-gang.js';
import { classifyPod, rootCause, type PodFailure } from './pod-failure.js';
import { isTerminating, timeMs } from './pod-state.js';
import { condition, requeueAfter, type PolicyContext } from './run-plan.js';
import { workerPodName } from './gang-names.js';

/** Returns true when the gang failed and this reconcile decided what happens next. */
export function applyFailurePolicy(ctx: PolicyContext): boolean {
  const { gang, plan } = ctx;
  const failures: PodFailure[] = [];
  for (const pod of gang.current.values()) {
    const failure = classifyPod(pod, ctx.classify);
    if (failure) failures.push(failure);
  }
  // A launched gang that lost a pod without trace (deleted and gone while nobody watched) is broken too.
  if ((plan.status.workers?.total ?? 0) > 0) {
    for (const rank of missingRanks(gang)) {
      failures.push({
        kind: 'disruption',
        reason: 'PodDeleted',
        pod: workerPodName(ctx.run.metadata.name, rank, gang.attempt),
        message: `worker ${rank} (pod ${workerPodName(ctx.run.metadata.name, rank, gang.attempt)}) disappeared`,
        atMs: ctx.nowMs,
      });
    }
  }
  const cause = rootCause(failures);
  if (!cause) return false;

  // A peer that is still inside its grace period may yet exit 75, which turns its peers' lost-rendezvous
  // errors into consequences rather than causes: wait for its verdict unless a permanent failure is known.
  if (cause.kind !== 'permanent') {
    const pendingDeadlines = [...gang.current.values()]
      .filter((p) => isTerminating(p) && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded')
      .map((p) => timeMs(p.metadata?.deletionTimestamp) ?? ctx.nowMs)
      .filter((deadline) => deadline > ctx.nowMs);
    if (pendingDeadlines.length > 0) {
      requeueAfter(plan, Math.min(...pendingDeadlines) - ctx.nowMs);
      return true;
    }
  }

  switch (cause.kind) {
    case 'checkpointed':
    case 'disruption':
      relaunch(ctx, cause, false);
      break;
    case 'retryable':
      if ((plan.status.restarts ?? 0) >= ctx.spec.restartPolicy.backoffLimit) {
        fail(ctx, cause, 'BackoffLimitExceeded', `relaunched ${plan.status.restarts ?? 0} times (spec.restartPolicy.backoffLimit ${ctx.spec.restartPolicy.backoffLimit}); last failure: ${cause.message}`);
      } else {
        relaunch(ctx, cause, true);
      }
      break;
    case 'permanent':
      fail(ctx, cause, cause.reason, cause.message);
      break;
  }
  return true;
}

function relaunch(ctx: PolicyContext, cause: PodFailure, counted: boolean): void {
  const { status } = ctx.plan;
  status.attempt = ctx.gang.attempt + 1;
  status.workers = { ready: 0, total: 0 };
  if (cause.kind !== 'checkpointed') status.lastFailure = lastFailure(cause);
  if (counted) {
    status.restarts = (status.restarts ?? 0) + 1;
    status.phase = 'Restarting';
  } else if (status.phase !== 'Restarting') {
    status.phase = 'Pending';
  }
  const why = counted
    ? `relaunch ${status.restarts ?? 0} of ${ctx.spec.restartPolicy.backoffLimit} after backoff`
    : 'relaunching without counting it against spec.restartPolicy.backoffLimit';
  condition(ctx, ConditionType.Ready, 'False', cause.reason, cause.message);
  condition(ctx, ConditionType.Progressing, 'True', counted ? 'Restarting' : 'Relaunching', `${cause.message}; ${why}`);
  ctx.plan.events.push({ type: counted || cause.kind === 'disruption' ? 'Warning' : 'Normal', reason: cause.reason, message: `${cause.message}; ${why}` });
}

function fail(ctx: PolicyContext, cause: PodFailure, reason: string, message: string): void {
  const { status } = ctx.plan;
  status.phase = 'Failed';
  status.completionTime = ctx.nowIso;
  status.lastFailure = lastFailure(cause);
  condition(ctx, ConditionType.Failed, 'True', reason, message);
  condition(ctx, ConditionType.Ready, 'False', reason, 'the run failed');
  condition(ctx, ConditionType.Progressing, 'False', reason, message);
  ctx.plan.events.push({ type: 'Warning', reason, message });
}

function lastFailure(cause: PodFailure): NonNullable<PolicyContext['plan']['status']['lastFailure']> {
  const failure: NonNullable<PolicyContext['plan']['status']['lastFailure']> = {
    reason: cause.reason,
    message: cause.message.slice(0, 4096),
    pod: cause.pod,
    time: new Date(cause.atMs).toISOString(),
  };
  if (cause.exitCode !== undefined) failure.exitCode = cause.exitCode;
  return failure;
}
