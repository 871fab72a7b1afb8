// A run's pods sorted by what the reconciler must do with them: the current attempt's workers by rank,
// pods of older attempts (to delete before a new gang starts), and pods that fit neither (also deleted).
import type { V1Pod } from '@kubernetes/client-node';
import { attemptOf, rankOf } from './gang-names.js';

export interface ObservedGang {
  attempt: number;
  workers: number;
  current: Map<number, V1Pod>;
  older: V1Pod[];
  strays: V1Pod[];
}

export function observeGang(pods: readonly V1Pod[], attempt: number, workers: number): ObservedGang {
  const gang: ObservedGang = { attempt, workers, current: new Map(), older: [], strays: [] };
  for (const pod of pods) {
    const podAttempt = attemptOf(pod.metadata?.labels);
    const rank = rankOf(pod.metadata?.labels);
    if (podAttempt === undefined || rank === undefined) gang.strays.push(pod);
    else if (podAttempt < attempt) gang.older.push(pod);
    else if (podAttempt === attempt && rank < workers && !gang.current.has(rank)) gang.current.set(rank, pod);
    // A later attempt than the status records, or a rank beyond the gang's size: left over from a spec or
    // status that no longer holds, and never part of the gang this reconcile manages.
    else gang.strays.push(pod);
  }
  return gang;
}

export function missingRanks(gang: ObservedGang): number[] {
  const missing: number[] = [];
  for (let rank = 0; rank < gang.workers; rank++) if (!gang.current.has(rank)) missing.push(rank);
  return missing;
}
