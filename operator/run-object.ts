// A CaptionTrainingRun as the operator reads it from the apiserver: metadata the reconciler relies on
// (uid for owner references, generation for observedGeneration, resourceVersion for optimistic status writes).
import type { CaptionTrainingRun } from '../lib/api/types.js';

export interface RunMetadata {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export type StoredRun = Omit<CaptionTrainingRun, 'metadata'> & { metadata: RunMetadata };

export function runKey(run: { metadata: { namespace?: string; name: string } }): string {
  return `${run.metadata.namespace ?? ''}/${run.metadata.name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
