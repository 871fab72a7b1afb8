// Names, labels and annotations of a run's children. Names are deterministic functions of (run, rank,
// attempt), so an operator that restarts half-way through creating a gang finds what it already made
// (AlreadyExists) instead of making a second one.
import { API_VERSION, GROUP, KIND } from '../lib/api/schema.js';

export const LABEL_RUN = `${GROUP}/run`;
export const LABEL_ATTEMPT = `${GROUP}/attempt`;
export const LABEL_RANK = `${GROUP}/rank`;
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'captionrun-operator';
/** The checkpoint URI a gang was launched from, so pods created after an operator restart resume from the same one. */
export const ANNOTATION_RESUME_FROM = `${GROUP}/resume-from`;


export const WORKER_CONTAINER = 'trainer';
export const MASTER_PORT = 29500;

export function workerPodName(run: string, rank: number, attempt: number): string {
  return `${run}-worker-${rank}-${attempt}`;
}

/** The headless Service that gives every worker a stable DNS name: `<pod>.<service>.<namespace>.svc`. */
export function serviceName(run: string): string {
  return run;
}

export function specConfigMapName(run: string): string {
  return `${run}-spec`;
}

export function masterAddress(run: string, namespace: string, attempt: number, clusterDomain: string): string {
  return `${workerPodName(run, 0, attempt)}.${serviceName(run)}.${namespace}.svc.${clusterDomain}`;
}

/** Selects every child of a run, whatever its attempt. */
export function runSelector(run: string): string {
  return `${LABEL_RUN}=${run}`;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

/** Deleting the run deletes its children through the garbage collector; checkpoints are not children and stay. */
export function ownerReference(run: { metadata: { name: string; uid?: string } }): OwnerReference {
  if (!run.metadata.uid) throw new Error(`run ${run.metadata.name} has no uid: it was not read from the apiserver`);
  return { apiVersion: API_VERSION, kind: KIND, name: run.metadata.name, uid: run.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** Parses the attempt label; undefined for pods that do not carry a well-formed one. */
export function attemptOf(labels: Record<string, string> | undefined): number | undefined {
  return parseIndex(labels?.[LABEL_ATTEMPT]);
}

export function rankOf(labels: Record<string, string> | undefined): number | undefined {
  return parseIndex(labels?.[LABEL_RANK]);
}

function parseIndex(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,7}$/.test(value)) return undefined;
  return Number(value);
}
