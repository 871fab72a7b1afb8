// What the operator e2e tests share: a test environment with the CRD installed and the stand-in trainer
// images, runs created and read through the apiserver, and waits on their status.
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../lib/api/schema.js';
import type { CaptionTrainingRunStatus } from '../../lib/api/types.js';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import { startTestEnvironment, type TestEnvironment } from '../env/environment.js';
import { checkoutImage, defaultImages, REPO_ROOT, type ImageMap } from '../env/images.js';
import { kubectl, waitForCrdEstablished } from '../env/kubectl.js';
import { waitFor } from '../env/wait.js';
import { KubeApi } from '../../operator/runtime/kube-api.js';
import { Operator } from '../../operator/operator.js';

export const NS = 'default';
export const STANDIN_MODES = ['train', 'crash', 'invalid', 'succeed'] as const;

export function standinImages(): ImageMap {
  const script = join(REPO_ROOT, 'test/e2e/operator-standin-trainer.ts');
  const images: ImageMap = defaultImages();
  for (const mode of STANDIN_MODES) {
    images[`standin/${mode}`] = checkoutImage([process.execPath, '--import', 'tsx', script, mode]);
  }
  return images;
}

export interface OperatorTestEnv {
  env: TestEnvironment;
  api: KubeApi;
  core: CoreV1Api;
  bucket: string;
}

export async function startOperatorTestEnv(nodes = [{ name: 'gpu-node-1', gpus: 4 }, { name: 'gpu-node-2', gpus: 4 }]): Promise<OperatorTestEnv> {
  const env = await startTestEnvironment({ nodes, nodeMonitorGracePeriodSeconds: 6, images: standinImages(), logger: createLogger({ component: 'test-env' }) });
  try {
    const crd = new URL('../../crds/captiontrainingruns.captionrun.dev.yaml', import.meta.url).pathname;
    const applied = await kubectl(env.cluster.kubeconfigPath, ['apply', '-f', crd]);
    if (applied.code !== 0) throw new Error(`CRD rejected: ${applied.stderr}`);
    await waitForCrdEstablished(env.cluster.kubeconfigPath, `${PLURAL}.${GROUP}`);
    const bucket = 'captionrun-e2e';
    await env.minio.createBucket(bucket);
    return { env, api: new KubeApi(env.cluster.kubeConfig()), core: env.cluster.kubeConfig().makeApiClient(CoreV1Api), bucket };
  } catch (err) {
    await env.stop();
    throw err;
  }
}

/** An operator that launches the real trainer image, started; the caller stops it. */
export async function startTrainerOperator(t: OperatorTestEnv, logger: Logger): Promise<Operator> {
  const operator = new Operator({
    kubeConfig: t.env.cluster.kubeConfig(),
    metricsAddress: '127.0.0.1:0',
    settings: { trainerImage: 'captionrun/trainer:dev', clusterDomain: 'cluster.local', nodeLostTolerationSeconds: 30, forceDeleteAfterMs: 10_000, checkpointPollIntervalMs: 2000 },
    // A kill after the first checkpoint must land mid-run: the checkpoint has to reach status well before the end.
    progress: { intervalMs: 500 },
    logger,
  });
  await operator.start();
  return operator;
}

/**
 * A run of the real trainer small enough for 2 busy cores (a few minutes) that still checkpoints every 2
 * steps, so a kill after the first checkpoint leaves most of the training to the resumed gang. `store` is
 * spec.checkpoint.store as a user writes it: the apiserver fills in the defaults.
 */
export function tinyTrainerRun(name: string, store: Record<string, unknown>): object {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'CaptionTrainingRun',
    metadata: { name, namespace: NS },
    spec: {
      dataset: { format: 'synthetic', synthetic: { images: 200, seed: 5, imageSize: 64, maxObjects: 2 } },
      model: { decoder: 'gru', attention: 'bahdanau', embeddingDim: 16, hiddenDim: 16, attentionDim: 16, dropout: 0.2 },
      training: { epochs: 6, batchSize: 8, learningRate: 0.01, lrSchedule: { type: 'plateau', patience: 1 }, seed: 3 },
      resources: { workers: 1, gpusPerWorker: 1, terminationGracePeriodSeconds: 30 },
      checkpoint: { store, everySteps: 2, keepLast: 2 },
      restartPolicy: { backoffLimit: 2, backoffSeconds: 1 },
      evaluation: { beamSize: 2, report: { enabled: true } },
    },
  };
}

export interface RunOptions {
  mode?: (typeof STANDIN_MODES)[number];
  workers?: number;
  backoffLimit?: number;
  suspend?: boolean;
  grace?: number;
  /** The Secret holding the store's credentials; the environment's MinIO Secret by default. */
  credentialsSecret?: string;
}

export const runsPath = `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}`;

export async function createRun(t: OperatorTestEnv, name: string, o: RunOptions = {}): Promise<void> {
  await t.api.post(runsPath, {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'CaptionTrainingRun',
    metadata: { name, namespace: NS },
    spec: {
      dataset: { format: 'synthetic' },
      resources: { workers: o.workers ?? 1, gpusPerWorker: 1, image: `standin/${o.mode ?? 'train'}`, terminationGracePeriodSeconds: o.grace ?? 10 },
      checkpoint: {
        store: { s3: { bucket: t.bucket, prefix: 'runs', endpoint: t.env.minio.endpoint, forcePathStyle: true, credentialsSecret: o.credentialsSecret ?? t.env.s3Secret.name } },
        everySteps: 10,
      },
      restartPolicy: { backoffLimit: o.backoffLimit ?? 3, backoffSeconds: 1, maxBackoffSeconds: 2 },
      suspend: o.suspend ?? false,
    },
  });
}

export interface RunView {
  metadata: { name: string; generation?: number; resourceVersion?: string };
  spec: { suspend?: boolean };
  status?: CaptionTrainingRunStatus;
}

export function getRun(t: OperatorTestEnv, name: string): Promise<RunView> {
  return t.api.get<RunView>(`${runsPath}/${name}`);
}

export async function waitForRun(t: OperatorTestEnv, name: string, what: string, predicate: (r: RunView) => boolean, timeoutMs = 90_000): Promise<RunView> {
  let last: RunView | undefined;
  return waitFor(`run ${name} ${what}`, async () => {
    last = await getRun(t, name);
    return predicate(last) ? last : undefined;
  }, { timeoutMs, intervalMs: 300, detail: () => `last status: ${JSON.stringify(last?.status)}` });
}

export async function runPods(t: OperatorTestEnv, name: string): Promise<V1Pod[]> {
  const list = await t.core.listNamespacedPod({ namespace: NS, labelSelector: `captionrun.dev/run=${name}` });
  return list.items;
}

export function envOf(pod: V1Pod): Record<string, string> {
  return Object.fromEntries((pod.spec?.containers[0]?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
}

/** The run's pods of one attempt once all of them run. */
export async function waitForGang(t: OperatorTestEnv, name: string, attempt: number, workers: number, timeoutMs = 90_000): Promise<V1Pod[]> {
  let seen: V1Pod[] = [];
  return waitFor(`run ${name} attempt ${attempt} to run ${workers} workers`, async () => {
    seen = await runPods(t, name);
    const gang = seen.filter((p) => p.metadata?.labels?.['captionrun.dev/attempt'] === String(attempt) && p.status?.phase === 'Running' && !p.metadata.deletionTimestamp);
    const others = seen.filter((p) => p.metadata?.labels?.['captionrun.dev/attempt'] !== String(attempt));
    return gang.length === workers && others.length === 0 ? gang : undefined;
  }, { timeoutMs, intervalMs: 300, detail: () => seen.map((p) => `${p.metadata?.name}: ${p.status?.phase}${p.metadata?.deletionTimestamp ? ' (terminating)' : ''}`).join(', ') });
}

/** Deletes a run and waits until the garbage collector removed its pods, freeing their GPUs for the next test. */
export async function deleteRun(t: OperatorTestEnv, name: string): Promise<void> {
  await t.api.delete(`${runsPath}/${name}`, { propagationPolicy: 'Foreground' });
  await waitFor(`run ${name}'s pods to be gone`, async () => ((await runPods(t, name)).length === 0 ? true : undefined), { timeoutMs: 60_000 });
}
