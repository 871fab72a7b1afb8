// metav1.Condition bookkeeping: lastTransitionTime moves only when a condition's status flips, so
// `kubectl describe` shows how long the run has been in its current state.
import type { CaptionTrainingRunStatus, Condition } from '../lib/api/types.js';

export const ConditionType = {
  /** True while every worker of the current gang is running. */
  Ready: 'Ready',
  /** True while the operator is moving the run forward (launching, relaunching); False once it stopped for good. */
  Progressing: 'Progressing',
  Suspended: 'Suspended',
  /** True once the run failed; its message says why and what to fix. */
  Failed: 'Failed',
} as const;

export interface ConditionUpdate {
  type: string;
  status: Condition['status'];
  reason: string;
  message: string;
}

export function setCondition(conditions: Condition[], update: ConditionUpdate, nowIso: string, generation: number | undefined): Condition[] {
  const existing = conditions.find((c) => c.type === update.type);
  const next: Condition = {
    ...update,
    message: update.message.slice(0, 32768),
    lastTransitionTime: existing && existing.status === update.status ? existing.lastTransitionTime : nowIso,
  };
  if (generation !== undefined) next.observedGeneration = generation;
  return existing ? conditions.map((c) => (c.type === update.type ? next : c)) : [...conditions, next];
}

/** Sets one condition on a run's status, stamped with the time and the spec generation it was decided from. */
export function markCondition(status: CaptionTrainingRunStatus, update: ConditionUpdate, nowIso: string, generation: number | undefined): void {
  status.conditions = setCondition(status.conditions ?? [], update, nowIso, generation);
}
