// Why a worker pod stopped, and whether a relaunch can help. The answer decides what the failure policy
// does with the whole gang: relaunch without counting it, relaunch after a backoff, or fail the run.
import type { V1Pod } from '@kubernetes/client-node';
import type { RestartPolicySpec } from '../lib/api/types.js';
import { ExitCode } from '../lib/exit-codes.js';
import { isRetryableExitCode } from '../lib/restart-policy.js';
import { rankOf } from './gang-names.js';
import { finishedAtMs, hasCondition, isFailed, isSucceeded, isTerminating, lastLogLine, terminatedState, timeMs, waitingState } from './pod-state.js';

/**
 * checkpointed: the trainer saved a final checkpoint on SIGTERM (exit 75) — nothing lost, not a failure.
 * disruption: the platform took the pod away (deletion, eviction, preemption, node loss) — relaunch, not counted.
 * retryable: the trainer or its container failed — relaunch after a backoff, counted against backoffLimit.
 * permanent: a relaunch cannot help until the user changes something — the run fails at once.
 */
export type FailureKind = 'checkpointed' | 'disruption' | 'retryable' | 'permanent';

export interface PodFailure {
  kind: FailureKind;
  /** CamelCase, for status.lastFailure.reason, conditions and events. */
  reason: string;
  pod: string;
  exitCode?: number;
  message: string;
  atMs: number;
}

export interface ClassifyContext {
  restartPolicy: RestartPolicySpec;
  nowMs: number;
  /** false when the pod's node is known NotReady. */
  nodeReady(nodeName: string): boolean | undefined;
}

/** Image errors that pulling again will not fix: the name is malformed, or the registry says it does not exist. */
const PERMANENT_PULL_MESSAGE = /not found|manifest unknown|does not exist|unauthorized|denied|invalid reference/i;

/** The pod's failure, or undefined while it is healthy, pending, succeeded, or still inside its grace period. */
export function classifyPod(pod: V1Pod, ctx: ClassifyContext): PodFailure | undefined {
  const name = pod.metadata?.name ?? '';
  const worker = `worker ${rankOf(pod.metadata?.labels) ?? '?'} (pod ${name})`;
  if (isSucceeded(pod)) return undefined;

  if (!isFailed(pod)) {
    if (isTerminating(pod)) {
      // Deleted by someone else: give the trainer its grace period to checkpoint and say so with exit 75.
      const deadline = timeMs(pod.metadata?.deletionTimestamp) ?? ctx.nowMs;
      if (ctx.nowMs < deadline) return undefined;
      const node = pod.spec?.nodeName;
      const lost = node !== undefined && ctx.nodeReady(node) === false;
      return {
        kind: 'disruption',
        reason: lost ? 'NodeLost' : 'PodDeleted',
        pod: name,
        message: lost ? `${worker} was on node ${node}, which stopped responding` : `${worker} was deleted and did not exit within its grace period`,
        atMs: deadline,
      };
    }
    const waiting = waitingState(pod);
    if (waiting?.reason === 'InvalidImageName' || (/ErrImagePull|ImagePullBackOff/.test(waiting?.reason ?? '') && PERMANENT_PULL_MESSAGE.test(waiting?.message ?? ''))) {
      return {
        kind: 'permanent',
        reason: 'ImagePullFailed',
        pod: name,
        message: `${worker} cannot pull image ${pod.spec?.containers[0]?.image ?? ''}: ${waiting?.message ?? waiting?.reason ?? ''}; fix spec.resources.image or the operator's --trainer-image`,
        atMs: ctx.nowMs,
      };
    }
    return undefined;
  }

  const terminated = terminatedState(pod);
  const exitCode = terminated?.exitCode;
  const atMs = finishedAtMs(pod) ?? ctx.nowMs;
  const lastLine = lastLogLine(pod);
  const detail = (what: string): string => `${worker} ${what}${lastLine ? `; last log line: ${lastLine}` : ''}`;

  if (exitCode === ExitCode.Checkpointed) {
    return { kind: 'checkpointed', reason: 'Checkpointed', pod: name, exitCode, message: `${worker} stopped after writing a final checkpoint (exit ${exitCode})`, atMs };
  }
  const disruption = hasCondition(pod, 'DisruptionTarget');
  if (pod.status?.reason === 'Evicted' || disruption || isTerminating(pod) || pod.status?.reason === 'NodeLost') {
    const reason = pod.status?.reason === 'Evicted' ? 'Evicted' : pod.status?.reason === 'NodeLost' ? 'NodeLost' : disruption?.reason ?? 'PodDeleted';
    const why = disruption?.message ?? pod.status?.message ?? 'the pod was deleted';
    return { kind: 'disruption', reason, pod: name, exitCode, message: detail(`was stopped by the cluster (${reason}: ${why})${exitCode === undefined ? '' : ` with exit code ${exitCode}`}`), atMs };
  }
  if (terminated?.reason === 'OOMKilled') {
    return { kind: 'retryable', reason: 'OOMKilled', pod: name, exitCode, message: detail(`ran out of memory (OOMKilled, exit code ${exitCode ?? 137})`), atMs };
  }
  if (exitCode === undefined) {
    const reason = pod.status?.reason ?? 'Failed';
    return { kind: 'retryable', reason, pod: name, message: detail(`failed (${reason}${pod.status?.message ? `: ${pod.status.message}` : ''})`), atMs };
  }
  if (exitCode > 128) {
    const signal = terminated?.signal ?? exitCode - 128;
    return { kind: 'retryable', reason: 'Signal', pod: name, exitCode, message: detail(`was killed by signal ${signal} (exit code ${exitCode})`), atMs };
  }
  if (!isRetryableExitCode(exitCode, ctx.restartPolicy)) {
    const hint = ctx.restartPolicy.retryableExitCodes
      ? `add ${exitCode} to spec.restartPolicy.retryableExitCodes if the failure is transient`
      : exitCode === ExitCode.Usage
        ? 'the trainer rejected its arguments: check spec.resources.image matches this operator version'
        : 'fix the spec, dataset or weights the trainer names in its log, then create the run again';
    return { kind: 'permanent', reason: 'PermanentExitCode', pod: name, exitCode, message: `${detail(`exited with code ${exitCode}`)}; ${hint}`, atMs };
  }
  return { kind: 'retryable', reason: 'Error', pod: name, exitCode, message: detail(`exited with code ${exitCode}`), atMs };
}

const PRECEDENCE: Record<FailureKind, number> = { permanent: 0, disruption: 1, checkpointed: 2, retryable: 3 };

/**
 * The failure that explains the gang's. When one pod goes, its peers fail soon after (a lost peer is a
 * clean non-zero exit), so what matters is the kind: something the user must fix first, then an outside
 * cause (whose peers' errors are its consequences), then the earliest plain failure.
 */
export function rootCause(failures: readonly PodFailure[]): PodFailure | undefined {
  return [...failures].sort((a, b) => PRECEDENCE[a.kind] - PRECEDENCE[b.kind] || a.atMs - b.atMs)[0];
}
