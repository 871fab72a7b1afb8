// Reading a worker pod's state the same way whether it came from a list (dates parsed) or a watch (strings).
import type { V1ContainerStateTerminated, V1ContainerStateWaiting, V1Pod } from '@kubernetes/client-node';
import { WORKER_CONTAINER } from './gang-names.js';

export function timeMs(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

function trainerStatus(pod: V1Pod) {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.find((s) => s.name === WORKER_CONTAINER) ?? statuses[0];
}

export function terminatedState(pod: V1Pod): V1ContainerStateTerminated | undefined {
  return trainerStatus(pod)?.state?.terminated;
}

export function waitingState(pod: V1Pod): V1ContainerStateWaiting | undefined {
  return trainerStatus(pod)?.state?.waiting;
}

export function isFailed(pod: V1Pod): boolean {
  return pod.status?.phase === 'Failed';
}

export function isSucceeded(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded';
}

export function isTerminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined;
}

export function isReady(pod: V1Pod): boolean {
  if (pod.status?.phase !== 'Running' || isTerminating(pod)) return false;
  const ready = pod.status.conditions?.find((c) => c.type === 'Ready');
  if (ready) return ready.status === 'True';
  const statuses = pod.status.containerStatuses ?? [];
  return statuses.length > 0 && statuses.every((s) => s.ready);
}

export function hasCondition(pod: V1Pod, type: string): { reason?: string; message?: string } | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === type && x.status === 'True');
  return c ? { reason: c.reason, message: c.message } : undefined;
}

/** When the pod stopped, for ordering a gang's failures: the container's finish time, else now-ish. */
export function finishedAtMs(pod: V1Pod): number | undefined {
  return timeMs(terminatedState(pod)?.finishedAt) ?? timeMs(pod.metadata?.deletionTimestamp);
}

/** The last non-empty line of the termination message (the trainer's last words, or its log tail). */
export function lastLogLine(pod: V1Pod): string | undefined {
  const message = terminatedState(pod)?.message ?? pod.status?.message;
  if (!message) return undefined;
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const last = lines.at(-1);
  return last && last.length > 512 ? `${last.slice(0, 509)}...` : last;
}
