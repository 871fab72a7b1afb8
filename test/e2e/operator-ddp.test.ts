// Data-parallel training on the test cluster with the real trainer: `workers: 2` makes two pods on two
// nodes that rendezvous through the run's headless Service (rank 1 resolves rank 0's DNS name), sum their
// gradients every step, and leave checkpointing to rank 0. SIGKILL of rank 1 mid-run makes rank 0 exit at
// once (its peer's connection drops), the operator relaunches the gang from the latest valid checkpoint,
// and the run ends with exactly the weights of an undisturbed 2-rank run.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Watch, type V1Pod } from '@kubernetes/client-node';
import { CheckpointReader, openStore, runUri } from '../../lib/checkpoint/index.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { kubectl } from '../env/kubectl.js';
import { Operator } from '../../operator/operator.js';
import { NS, runsPath, startOperatorTestEnv, waitForGang, waitForRun, type OperatorTestEnv } from './operator-harness.js';

let t: OperatorTestEnv;
let operator: Operator;
const log = createLogger({ component: 'operator' });

before(async () => {
  t = await startOperatorTestEnv([{ name: 'gpu-node-1', gpus: 2 }, { name: 'gpu-node-2', gpus: 2 }]);
  operator = new Operator({
    kubeConfig: t.env.cluster.kubeConfig(),
    metricsAddress: '127.0.0.1:0',
    settings: { trainerImage: 'captionrun/trainer:dev', clusterDomain: 'cluster.local', nodeLostTolerationSeconds: 30, forceDeleteAfterMs: 10_000, checkpointPollIntervalMs: 2000 },
    // The kill below must land mid-run: the first checkpoint has to reach status well before training ends.
    progress: { intervalMs: 500 },
    logger: log,
  });
  await operator.start();
});

after(async () => {
  await operator?.stop();
  await t?.env.stop();
});

function run(name: string): unknown {
  return {
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name, namespace: NS },
    spec: {
      dataset: { format: 'synthetic', synthetic: { images: 120, seed: 5, imageSize: 64, maxObjects: 2 } },
      model: { decoder: 'gru', attention: 'bahdanau', embeddingDim: 16, hiddenDim: 16, attentionDim: 16, dropout: 0.2 },
      training: { epochs: 8, batchSize: 8, learningRate: 0.01, seed: 3 },
      resources: { workers: 2, gpusPerWorker: 1, terminationGracePeriodSeconds: 30, collectiveTimeoutSeconds: 30 },
      checkpoint: {
        store: { s3: { bucket: t.bucket, prefix: 'runs', endpoint: t.env.minio.endpoint, forcePathStyle: true, credentialsSecret: t.env.s3Secret.name } },
        everySteps: 2,
        keepLast: 3,
      },
      restartPolicy: { backoffLimit: 2, backoffSeconds: 1 },
      evaluation: { beamSize: 2, report: { enabled: false } },
    },
  };
}

/** The run's newest checkpoint, verified, and who produced each checkpoint, through the product's own reader. */
async function checkpoints(name: string): Promise<{ name: string; weights: Uint8Array; producers: Record<string, string>[] }> {
  const store = openStore(runUri(`s3://${t.bucket}/runs`, NS, name), {
    s3: { endpoint: t.env.minio.endpoint, forcePathStyle: true, accessKeyId: t.env.minio.accessKeyId, secretAccessKey: t.env.minio.secretAccessKey },
  });
  try {
    const reader = new CheckpointReader(store, { logger: null });
    const { checkpoint } = await reader.loadLatest();
    assert.ok(checkpoint, `${name} has a valid checkpoint`);
    const weights = checkpoint.files.get('decoder.f32');
    assert.ok(weights);
    const producers = (await reader.list({ verify: false })).map((c) => c.manifest?.producer ?? {});
    return { name: checkpoint.name, weights, producers };
  } finally {
    await store.close();
  }
}

async function podLog(pod: string): Promise<string> {
  const r = await kubectl(t.env.cluster.kubeconfigPath, ['logs', '-n', NS, pod]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout + r.stderr;
}

test('workers: 2 trains data-parallel; rank 1 SIGKILLed mid-run: rank 0 exits within the deadline, the gang resumes and ends with the undisturbed run\'s weights', async () => {
  await t.api.post(runsPath, run('ddp-ref'));
  await t.api.post(runsPath, run('ddp'));
  const gang = await waitForGang(t, 'ddp', 0, 2, 180_000);
  assert.deepEqual(new Set(gang.map((p) => p.spec?.nodeName)).size, 2, 'the two workers run on two nodes');
  assert.notEqual(gang[0]?.status?.podIP, gang[1]?.status?.podIP, 'each pod has its own address');
  const running = await waitForRun(t, 'ddp', 'to commit a checkpoint', (r) => (r.status?.lastCheckpoint?.step ?? 0) > 0, 400_000);
  assert.equal(running.status?.worldSize, 2);

  const rank0Exit = await watchPodExit(t, 'ddp-worker-0-0', 60_000);
  const killedAt = Date.now();
  t.env.agent.killPod(NS, 'ddp-worker-1-0');
  const rank0 = await rank0Exit.exited;
  const exitedAfter = (rank0.at - killedAt) / 1000;
  assert.ok(exitedAfter < 30, `rank 0 exited ${exitedAfter} s after its peer died (collectiveTimeoutSeconds 30)`);
  // Its termination message says so: the trainer writes its reason to /dev/termination-log before it exits, so
  // that holds even when the operator's SIGTERM (the gang is deleted as soon as rank 1 fails) ends the
  // process on its way out (143). A SIGTERM before the write leaves the reason to its log alone.
  const lost = /rank 1 .*(closed|reset) the connection/;
  const message = rank0.message ?? '';
  const said = lost.test(message) ? message : `${message}\n${await podLog('ddp-worker-0-0')}`;
  assert.match(said, lost, 'rank 0 says which peer it lost');
  // Exit 1: a lost peer is a retryable failure. The operator deletes the gang as soon as rank 1 fails, and
  // its SIGTERM can land while rank 0 is already tearing down TensorFlow's native runtime on its way out of
  // that exit 1, when Node no longer handles signals: then the code reads 143. Either is retried.
  assert.ok([1, 143].includes(rank0.exitCode), `rank 0 exited ${rank0.exitCode}; its last lines:\n${rank0.message ?? ''}`);

  const done = await waitForRun(t, 'ddp', 'to succeed', (r) => r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed', 600_000);
  assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.conditions));
  assert.equal(done.status?.attempt, 1);
  assert.match(done.status?.resumedFrom ?? '', /ckpt-\d{12}$/, 'the second gang resumed from a checkpoint');
  const ref = await waitForRun(t, 'ddp-ref', 'to succeed', (r) => r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed', 600_000);
  assert.equal(ref.status?.phase, 'Succeeded', JSON.stringify(ref.status?.conditions));

  const [a, b] = await Promise.all([checkpoints('ddp'), checkpoints('ddp-ref')]);
  assert.equal(a.name, b.name, 'both runs end at the same step');
  assert.ok(Buffer.from(a.weights).equals(Buffer.from(b.weights)), "the disturbed run ends with the undisturbed run's weights, bit for bit");
  assert.ok(a.producers.length > 0);
  for (const p of a.producers) assert.deepEqual([p.rank, p.worldSize], ['0', '2'], 'every checkpoint was written by rank 0 of 2');
  const commits = (s: string): number => s.split('\n').filter((l) => l.includes('checkpoint committed')).length;
  assert.ok(commits(await podLog('ddp-worker-0-1')) > 0, 'rank 0 of the second gang committed checkpoints');
  assert.equal(commits(await podLog('ddp-worker-1-1')), 0, 'rank 1 wrote none');
});

/**
 * Watches a pod until its container has terminated (it may be deleted right after, so polling could miss
 * it). Resolves `watching` once the watch is open; `exited` with the exit code and when it was seen.
 */
interface PodExit {
  exitCode: number;
  message?: string;
  at: number;
}

async function watchPodExit(env: OperatorTestEnv, pod: string, timeoutMs: number): Promise<{ exited: Promise<PodExit> }> {
  let resolveExit: (v: PodExit) => void = () => undefined;
  let rejectExit: (e: Error) => void = () => undefined;
  const exited = new Promise<PodExit>((resolve, reject) => {
    resolveExit = resolve;
    rejectExit = reject;
  });
  const request = await new Watch(env.env.cluster.kubeConfig()).watch(
    `/api/v1/namespaces/${NS}/pods`,
    { fieldSelector: `metadata.name=${pod}` },
    (_type: string, obj: V1Pod) => {
      const terminated = obj.status?.containerStatuses?.[0]?.state?.terminated;
      if (terminated) resolveExit({ exitCode: terminated.exitCode, message: terminated.message, at: Date.now() });
    },
    (err: unknown) => {
      if (err) rejectExit(err as Error);
    },
  );
  const timer = setTimeout(() => rejectExit(new Error(`${pod} did not exit within ${timeoutMs} ms`)), timeoutMs);
  return {
    exited: exited.finally(() => {
      clearTimeout(timer);
      request.abort();
    }),
  };
}
