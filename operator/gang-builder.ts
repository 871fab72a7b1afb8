// Builds the children of a run: one headless Service and `workers` trainer pods. Pure functions of the run,
// the attempt and the operator's settings, so the same inputs always produce the same objects.
import type { V1ConfigMap, V1Container, V1EnvVar, V1Pod, V1Service, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { BACKEND_ENV, GPU_BACKEND, LLM_API_KEY_ENV } from '../lib/api/schema.js';
import { checkpointLocation, PVC_MOUNT_PATH, RESUME_FROM_ENV, type CheckpointLocation } from '../lib/checkpoint/location.js';
import {
  ANNOTATION_RESUME_FROM,
  LABEL_ATTEMPT,
  LABEL_MANAGED_BY,
  LABEL_RANK,
  LABEL_RUN,
  MANAGED_BY,
  MASTER_PORT,
  masterAddress,
  ownerReference,
  serviceName,
  specConfigMapName,
  WORKER_CONTAINER,
  workerPodName,
} from './gang-names.js';
import type { StoredRun } from './run-object.js';

export interface GangSettings {
  /** Image used when spec.resources.image is empty (the operator's --trainer-image). */
  trainerImage: string;
  /** ServiceAccount of worker pods whose spec names none (the operator's --trainer-service-account). */
  trainerServiceAccount?: string;
  clusterDomain: string;
  /**
   * How long pods stay bound to a node that stopped reporting before the taint manager evicts them. The
   * Kubernetes default (300 s) leaves a whole gang idle for five minutes when one node dies.
   */
  nodeLostTolerationSeconds: number;
}

const CACHE_DIR = '/var/cache/captionrun';
/** The trainer's /metrics port (trainer-image/health), named "metrics" for the chart's PodMonitor. */
export const TRAINER_METRICS_PORT = 9400;
const RUN_SPEC_DIR = '/etc/captionrun';
const RUN_SPEC_FILE = 'run.yaml';
const NODE_LOST_TAINTS = ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'];

export function childLabels(run: string, attempt?: number, rank?: number): Record<string, string> {
  const labels: Record<string, string> = { [LABEL_RUN]: run, [LABEL_MANAGED_BY]: MANAGED_BY };
  if (attempt !== undefined) labels[LABEL_ATTEMPT] = String(attempt);
  if (rank !== undefined) labels[LABEL_RANK] = String(rank);
  return labels;
}

export function buildService(run: StoredRun): V1Service {
  const name = run.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(name), namespace: run.metadata.namespace, labels: childLabels(name), ownerReferences: [ownerReference(run)] },
    spec: {
      clusterIP: 'None',
      selector: { [LABEL_RUN]: name },
      // Workers rendezvous before any of them is Ready, so their DNS records must exist from the start.
      publishNotReadyAddresses: true,
      ports: [{ name: 'rendezvous', port: MASTER_PORT, targetPort: MASTER_PORT, protocol: 'TCP' }],
    },
  };
}

/**
 * The spec the trainer reads (`captionrun trainer SPEC`), written before each launch: a spec edited while
 * a gang runs changes the next attempt, never the processes of the running one. JSON is YAML.
 */
export function buildSpecConfigMap(run: StoredRun): V1ConfigMap {
  const { name, namespace } = run.metadata;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: specConfigMapName(name), namespace, labels: childLabels(name), ownerReferences: [ownerReference(run)] },
    data: { [RUN_SPEC_FILE]: `${JSON.stringify({ apiVersion: run.apiVersion, kind: run.kind, metadata: { name, namespace }, spec: run.spec }, null, 2)}\n` },
  };
}

/** Training processes of a gang: one per GPU, or one per pod on CPU. */
export function worldSize(resources: { workers: number; gpusPerWorker: number }): number {
  return resources.workers * Math.max(resources.gpusPerWorker, 1);
}

export function buildWorkerPod(run: StoredRun, rank: number, attempt: number, resumeFrom: string | undefined, settings: GangSettings): V1Pod {
  const { name, namespace } = run.metadata;
  const resources = run.spec.resources;
  const location = checkpointLocation(run.spec.checkpoint.store, namespace, name);
  const podName = workerPodName(name, rank, attempt);
  const localWorldSize = Math.max(resources.gpusPerWorker, 1);
  // The trainer resumes from the latest valid checkpoint itself (`--resume auto`); the operator looked up
  // the same one and records it on the pod and in status.resumedFrom. A multi-GPU pod runs one trainer
  // per GPU through the launcher, which gives each its RANK, LOCAL_RANK and GPU.
  const trainer = ['trainer', '--resume', 'auto', `${RUN_SPEC_DIR}/${RUN_SPEC_FILE}`];
  const args = localWorldSize > 1 ? ['launch', '--nproc-per-node', String(localWorldSize), ...trainer] : trainer;

  const env: V1EnvVar[] = [
    { name: 'MASTER_ADDR', value: masterAddress(name, namespace, attempt, settings.clusterDomain) },
    { name: 'MASTER_PORT', value: String(MASTER_PORT) },
    { name: 'WORLD_SIZE', value: String(worldSize(resources)) },
    { name: 'RANK', value: String(rank * localWorldSize) },
    { name: 'LOCAL_WORLD_SIZE', value: String(localWorldSize) },
    { name: 'NODE_RANK', value: String(rank) },
    { name: 'NNODES', value: String(resources.workers) },
    // Ranks listen on their pod's address; the rendezvous refuses processes of another run or attempt.
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'CAPTIONRUN_RUN_ID', value: run.metadata.uid },
    { name: 'CAPTIONRUN_ATTEMPT', value: String(attempt) },
    { name: 'CAPTIONRUN_CACHE', value: CACHE_DIR },
    { name: 'CAPTIONRUN_METRICS_PORT', value: String(TRAINER_METRICS_PORT) },
    { name: 'HOME', value: '/tmp' },
    ...storeEnv(location),
  ];
  // A GPU pod whose GPU backend cannot load must fail with the reason (exit 3), not train on the CPU for days.
  if (resources.gpusPerWorker > 0) env.push({ name: BACKEND_ENV, value: GPU_BACKEND });
  if (resumeFrom) env.push({ name: RESUME_FROM_ENV, value: resumeFrom });
  // Only global rank 0 captions with the LLM, and it runs in the first pod: the key goes there and nowhere else.
  // A reference, never the value: the operator does not read the Secret, so the key cannot reach its logs.
  const llmKey = run.spec.evaluation.llm?.apiKeySecret;
  if (llmKey && rank === 0) env.push({ name: LLM_API_KEY_ENV, valueFrom: { secretKeyRef: { name: llmKey.name, key: llmKey.key } } });
  const mounts: V1VolumeMount[] = [
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'cache', mountPath: CACHE_DIR },
    { name: 'run-spec', mountPath: RUN_SPEC_DIR, readOnly: true },
  ];
  const volumes: V1Volume[] = [
    { name: 'tmp', emptyDir: {} },
    { name: 'cache', emptyDir: {} },
    { name: 'run-spec', configMap: { name: specConfigMapName(name), items: [{ key: RUN_SPEC_FILE, path: RUN_SPEC_FILE }] } },
  ];
  if (location.kind === 'pvc') {
    mounts.push({ name: 'checkpoints', mountPath: PVC_MOUNT_PATH });
    volumes.push({ name: 'checkpoints', persistentVolumeClaim: { claimName: location.claimName } });
  }

  const gpus: Record<string, string> = resources.gpusPerWorker > 0 ? { 'nvidia.com/gpu': String(resources.gpusPerWorker) } : {};
  const container: V1Container = {
    name: WORKER_CONTAINER,
    image: resources.image || settings.trainerImage,
    imagePullPolicy: resources.imagePullPolicy,
    args,
    env,
    ports: [
      { name: 'rendezvous', containerPort: MASTER_PORT, protocol: 'TCP' },
      { name: 'metrics', containerPort: TRAINER_METRICS_PORT, protocol: 'TCP' },
    ],
    resources: {
      requests: { ...resources.requests, ...gpus },
      limits: { ...resources.limits, ...gpus },
    },
    volumeMounts: mounts,
    // A trainer that fails writes its reason to /dev/termination-log; a process that dies without writing
    // it leaves the log tail to explain the failure.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName,
      namespace,
      labels: childLabels(name, attempt, rank),
      annotations: resumeFrom ? { [ANNOTATION_RESUME_FROM]: resumeFrom } : {},
      ownerReferences: [ownerReference(run)],
    },
    spec: {
      restartPolicy: 'Never',
      hostname: podName,
      subdomain: serviceName(name),
      terminationGracePeriodSeconds: resources.terminationGracePeriodSeconds,
      serviceAccountName: resources.serviceAccountName ?? settings.trainerServiceAccount,
      automountServiceAccountToken: false,
      priorityClassName: resources.priorityClassName,
      nodeSelector: resources.nodeSelector,
      tolerations: [...(resources.tolerations ?? []), ...nodeLostTolerations(resources.tolerations ?? [], settings)] as V1Toleration[],
      securityContext: {
        runAsNonRoot: true,
        // The trainer image's own user (trainer-image/Dockerfile).
        runAsUser: 10001,
        runAsGroup: 10001,
        fsGroup: 10001,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [container],
      volumes,
    },
  };
}

function storeEnv(location: CheckpointLocation): V1EnvVar[] {
  if (location.kind !== 's3') return [];
  const env: V1EnvVar[] = [{ name: 'AWS_REGION', value: location.region }];
  if (location.endpoint) env.push({ name: 'AWS_ENDPOINT_URL_S3', value: location.endpoint });
  if (location.credentialsSecret) {
    for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      env.push({ name: key, valueFrom: { secretKeyRef: { name: location.credentialsSecret, key } } });
    }
  }
  return env;
}

/** Tolerations for node loss, unless the spec already says how long to tolerate it. */
function nodeLostTolerations(own: readonly { key?: string }[], settings: GangSettings): V1Toleration[] {
  return NODE_LOST_TAINTS.filter((key) => !own.some((t) => t.key === key)).map((key) => ({
    key,
    operator: 'Exists',
    effect: 'NoExecute',
    tolerationSeconds: settings.nodeLostTolerationSeconds,
  }));
}
