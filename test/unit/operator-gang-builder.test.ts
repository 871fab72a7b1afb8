import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRun } from '../../lib/api/validate.js';
import { buildService, buildSpecConfigMap, buildWorkerPod, type GangSettings } from '../../operator/gang-builder.js';
import type { StoredRun } from '../../operator/run-object.js';

const settings: GangSettings = { trainerImage: 'ghcr.io/captionrun/trainer:0.1.0', clusterDomain: 'cluster.local', nodeLostTolerationSeconds: 30 };

function run(spec: Record<string, unknown> = {}): StoredRun {
  const result = validateRun({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'flickr', namespace: 'ml' },
    spec: {
      dataset: { format: 'synthetic' },
      checkpoint: { store: { s3: { bucket: 'ckpts', prefix: 'runs', endpoint: 'http://minio:9000', credentialsSecret: 's3-creds' } }, everySteps: 10 },
      ...spec,
    },
  });
  assert.ok(result.ok, JSON.stringify(result.issues));
  const r = result.run as unknown as StoredRun;
  r.metadata = { ...r.metadata, namespace: 'ml', uid: 'uid-1', generation: 1 };
  return r;
}

function env(pod: ReturnType<typeof buildWorkerPod>): Map<string, { value?: string; secret?: string }> {
  const out = new Map<string, { value?: string; secret?: string }>();
  for (const e of pod.spec?.containers[0]?.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    out.set(e.name, ref ? { secret: `${ref.name}/${ref.key}` } : { value: e.value });
  }
  return out;
}

test('each rank gets its own rendezvous environment pointing at rank 0 of the same attempt', () => {
  const r = run({ resources: { workers: 3, gpusPerWorker: 2 } });
  for (const rank of [0, 1, 2]) {
    const pod = buildWorkerPod(r, rank, 4, undefined, settings);
    const e = env(pod);
    assert.equal(pod.metadata?.name, `flickr-worker-${rank}-4`);
    assert.equal(e.get('MASTER_ADDR')?.value, 'flickr-worker-0-4.flickr.ml.svc.cluster.local');
    assert.equal(e.get('MASTER_PORT')?.value, '29500');
    assert.equal(e.get('WORLD_SIZE')?.value, '6');
    assert.equal(e.get('LOCAL_WORLD_SIZE')?.value, '2');
    assert.equal(e.get('RANK')?.value, String(rank * 2));
    assert.equal(e.get('NODE_RANK')?.value, String(rank));
    assert.equal(e.get('CAPTIONRUN_RUN_ID')?.value, 'uid-1');
    assert.equal(e.get('CAPTIONRUN_ATTEMPT')?.value, '4');
    assert.deepEqual(pod.spec?.containers[0]?.env?.find((x) => x.name === 'POD_IP')?.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
    // Two GPUs: the launcher starts a trainer per GPU and gives each its RANK.
    assert.deepEqual(pod.spec?.containers[0]?.args, ['launch', '--nproc-per-node', '2', 'trainer', '--resume', 'auto', '/etc/captionrun/run.yaml']);
    assert.equal(pod.spec?.hostname, pod.metadata?.name);
    assert.equal(pod.spec?.subdomain, 'flickr');
    assert.deepEqual(pod.metadata?.labels, {
      'captionrun.dev/run': 'flickr',
      'captionrun.dev/attempt': '4',
      'captionrun.dev/rank': String(rank),
      'app.kubernetes.io/managed-by': 'captionrun-operator',
    });
  }
});

test('a pod with one GPU or none runs the trainer itself', () => {
  for (const gpusPerWorker of [0, 1]) {
    const pod = buildWorkerPod(run({ resources: { workers: 2, gpusPerWorker } }), 1, 0, undefined, settings);
    assert.deepEqual(pod.spec?.containers[0]?.args, ['trainer', '--resume', 'auto', '/etc/captionrun/run.yaml']);
    assert.equal(env(pod).get('WORLD_SIZE')?.value, '2');
    assert.equal(env(pod).get('RANK')?.value, '1');
  }
});

test('a GPU pod must train on the GPU backend; a CPU pod takes the first backend that loads', () => {
  assert.equal(env(buildWorkerPod(run({ resources: { workers: 1, gpusPerWorker: 2 } }), 0, 0, undefined, settings)).get('CAPTIONRUN_BACKEND')?.value, 'tensorflow-gpu');
  assert.equal(env(buildWorkerPod(run({ resources: { workers: 1, gpusPerWorker: 0 } }), 0, 0, undefined, settings)).has('CAPTIONRUN_BACKEND'), false);
});

test('pods are owned by the run, never restart, request GPUs and run restricted', () => {
  const pod = buildWorkerPod(run({ resources: { workers: 1, gpusPerWorker: 4, terminationGracePeriodSeconds: 90 } }), 0, 0, undefined, settings);
  assert.deepEqual(pod.metadata?.ownerReferences, [
    { apiVersion: 'captionrun.dev/v1alpha1', kind: 'CaptionTrainingRun', name: 'flickr', uid: 'uid-1', controller: true, blockOwnerDeletion: true },
  ]);
  assert.equal(pod.spec?.restartPolicy, 'Never');
  assert.equal(pod.spec?.terminationGracePeriodSeconds, 90);
  const c = pod.spec?.containers[0];
  assert.equal(c?.resources?.limits?.['nvidia.com/gpu'], '4');
  assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
  assert.deepEqual(c?.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
  assert.equal(pod.spec?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.deepEqual(c?.volumeMounts?.filter((m) => !m.readOnly).map((m) => m.mountPath).sort(), ['/tmp', '/var/cache/captionrun']);
  assert.ok(pod.spec?.volumes?.every((v) => v.emptyDir !== undefined || v.configMap !== undefined));
});

test('credentials reach the pod only by secretKeyRef and the store is the run directory', () => {
  const e = env(buildWorkerPod(run(), 0, 0, undefined, settings));
  assert.deepEqual(e.get('AWS_ACCESS_KEY_ID'), { secret: 's3-creds/AWS_ACCESS_KEY_ID' });
  assert.deepEqual(e.get('AWS_SECRET_ACCESS_KEY'), { secret: 's3-creds/AWS_SECRET_ACCESS_KEY' });
  assert.equal(e.get('CAPTIONRUN_CHECKPOINT_URI'), undefined, 'the trainer finds its store from the spec, through lib/checkpoint/location.ts');
  assert.equal(e.get('AWS_ENDPOINT_URL_S3')?.value, 'http://minio:9000');
  for (const [name, v] of e) assert.ok(!/secret/i.test(v.value ?? ''), `${name} carries a secret value`);
});

test('the LLM API key reaches rank 0\'s pod by secretKeyRef only; the spec ConfigMap names the Secret, never a key', () => {
  const llm = { evaluation: { llm: { endpoint: 'http://vllm:8000/v1', model: 'llava', apiKeySecret: { name: 'llm-key', key: 'token' } } } };
  const workers = { resources: { workers: 2 } };
  const rank0 = env(buildWorkerPod(run({ ...llm, ...workers }), 0, 0, undefined, settings));
  assert.deepEqual(rank0.get('CAPTIONRUN_LLM_API_KEY'), { secret: 'llm-key/token' });
  assert.equal(env(buildWorkerPod(run({ ...llm, ...workers }), 1, 0, undefined, settings)).has('CAPTIONRUN_LLM_API_KEY'), false, 'only rank 0 asks the LLM');
  assert.equal(env(buildWorkerPod(run(workers), 0, 0, undefined, settings)).has('CAPTIONRUN_LLM_API_KEY'), false, 'no llm, no key');
  const spec = buildSpecConfigMap(run({ ...llm, ...workers })).data?.['run.yaml'] ?? '';
  assert.match(spec, /"apiKeySecret": \{\s*"name": "llm-key",\s*"key": "token"\s*\}/);
  assert.match(spec, /"concurrency": 4/, 'defaults are applied');
});

test('the pod carries its spec and resume point; the image defaults to the operator flag', () => {
  const fresh = buildWorkerPod(run(), 0, 0, undefined, settings);
  assert.deepEqual(fresh.spec?.containers[0]?.args, ['trainer', '--resume', 'auto', '/etc/captionrun/run.yaml']);
  assert.equal(fresh.spec?.containers[0]?.image, settings.trainerImage);
  const configMap = buildSpecConfigMap(run());
  assert.equal(fresh.spec?.volumes?.find((v) => v.configMap)?.configMap?.name, configMap.metadata?.name);
  const spec = validateRun(JSON.parse(configMap.data?.['run.yaml'] ?? '{}'));
  assert.ok(spec.ok, 'the trainer validates the spec file as admission would');
  assert.deepEqual(spec.run.metadata, { name: 'flickr', namespace: 'ml' });
  const resumed = buildWorkerPod(run({ resources: { image: 'my/trainer:dev' } }), 1, 2, 's3://ckpts/runs/ml/flickr/ckpt-000000000040', settings);
  assert.equal(env(resumed).get('CAPTIONRUN_RESUME_FROM')?.value, 's3://ckpts/runs/ml/flickr/ckpt-000000000040');
  assert.equal(resumed.metadata?.annotations?.['captionrun.dev/resume-from'], 's3://ckpts/runs/ml/flickr/ckpt-000000000040');
  assert.equal(resumed.spec?.containers[0]?.image, 'my/trainer:dev');
});

test('node loss is tolerated briefly unless the spec says otherwise', () => {
  const pod = buildWorkerPod(run(), 0, 0, undefined, settings);
  const unreachable = pod.spec?.tolerations?.find((t) => t.key === 'node.kubernetes.io/unreachable');
  assert.equal(unreachable?.tolerationSeconds, 30);
  const own = buildWorkerPod(run({ resources: { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 600 }] } }), 0, 0, undefined, settings);
  assert.deepEqual(own.spec?.tolerations?.filter((t) => t.key === 'node.kubernetes.io/unreachable').map((t) => t.tolerationSeconds), [600]);
});

test('the headless service publishes workers before they are ready', () => {
  const svc = buildService(run());
  assert.equal(svc.metadata?.name, 'flickr');
  assert.equal(svc.spec?.clusterIP, 'None');
  assert.equal(svc.spec?.publishNotReadyAddresses, true);
  assert.deepEqual(svc.spec?.selector, { 'captionrun.dev/run': 'flickr' });
});

test('the trainer serves /metrics on a named port the chart\'s PodMonitor scrapes', () => {
  const pod = buildWorkerPod(run(), 0, 0, undefined, settings);
  const port = pod.spec?.containers[0]?.ports?.find((p) => p.name === 'metrics')?.containerPort;
  assert.ok(port, 'a port named metrics');
  assert.equal(env(pod).get('CAPTIONRUN_METRICS_PORT')?.value, String(port), 'the trainer listens where the port says');
});
