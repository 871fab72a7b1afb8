// Pods through the real scheduler onto the node agent's GPU nodes: real processes, truthful status, the
// downward API and volumes, `kubectl logs` through the apiserver, and graceful deletion.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../env/cluster.js';
import { kubectl } from '../env/kubectl.js';
import { NodeAgent } from '../env/node-agent.js';
import { isTerminal, waitForPod, waitForPodGone } from '../env/pod-waits.js';
import { waitFor } from '../env/wait.js';

const NS = 'default';
let cluster: Cluster;
let agent: NodeAgent;
let core: CoreV1Api;
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'captionrun-agent-test-'));
  cluster = await startCluster();
  agent = await NodeAgent.start({ cluster, nodes: [{ name: 'gpu-a', gpus: 4 }, { name: 'gpu-b', gpus: 4 }] });
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
});

after(async () => {
  await agent?.stop();
  await cluster?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function pod(name: string, container: Partial<V1Container>, spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: { name, namespace: NS },
    spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'local/shell', ...container }], ...spec },
  };
}

const terminated = (p: V1Pod) => p.status?.containerStatuses?.[0]?.state?.terminated;

test('a pod asking for 2 GPUs is scheduled to a GPU node, runs, and succeeds with its exit code', async () => {
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('two-gpus', {
      command: ['sh', '-c', 'echo "name=$POD_NAME ns=$POD_NS ip=$POD_IP gpus=$NVIDIA_VISIBLE_DEVICES master=$MASTER_ADDR:$(MASTER_PORT)"'],
      env: [
        { name: 'MASTER_ADDR', value: 'run-worker-0.run.default.svc.cluster.local' },
        { name: 'MASTER_PORT', value: '29500' },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      ],
      resources: { limits: { 'nvidia.com/gpu': '2' } },
    }),
  });
  const done = await waitForPod(core, NS, 'two-gpus', 'to finish', isTerminal);
  assert.equal(done.status?.phase, 'Succeeded');
  assert.ok(['gpu-a', 'gpu-b'].includes(done.spec?.nodeName ?? ''), `bound to ${done.spec?.nodeName}`);
  assert.equal(terminated(done)?.exitCode, 0);
  assert.equal(terminated(done)?.reason, 'Completed');
  // The pod's own loopback address from its node's range, not the node's; the downward API gives the same.
  const podIP = done.status?.podIP ?? '';
  assert.match(podIP, /^127\.\d+\.\d+\.\d+$/);
  assert.ok(podIP.startsWith(`${cluster.network.podCidr.replace(/\.0\.0\/16$/, '')}.`), `${podIP} in ${cluster.network.podCidr}`);
  assert.equal(done.status?.hostIP, '127.0.0.1');
  assert.equal(done.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status, 'True');
  assert.equal(done.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'PodCompleted');

  const logs = await kubectl(cluster.kubeconfigPath, ['logs', 'two-gpus']);
  assert.equal(logs.code, 0, logs.stderr);
  // MASTER_ADDR arrives as written: the pod resolves it through cluster DNS (cluster-dns.test.ts).
  assert.equal(logs.stdout.replace(/gpus=\d,\d/, 'gpus=N'), `name=two-gpus ns=default ip=${podIP} gpus=N master=run-worker-0.run.default.svc.cluster.local:29500\n`);
  assert.match(logs.stdout, /gpus=\d,\d /);
});

test('captionrun images run this checkout\'s CLI, as entrypoint and as the captionrun program', async () => {
  const manifest = 'manifests/examples/quickstart.yaml';
  await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name: 'cli', namespace: NS },
      spec: {
        restartPolicy: 'Never',
        containers: [
          { name: 'entrypoint', image: 'captionrun/trainer:dev', args: ['validate', manifest] },
          { name: 'program', image: 'registry.example.com/captionrun/trainer:v1', command: ['captionrun', 'validate', manifest] },
        ],
      },
    },
  });
  const done = await waitForPod(core, NS, 'cli', 'to finish', isTerminal);
  assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.containerStatuses));
  for (const container of ['entrypoint', 'program']) {
    const logs = await kubectl(cluster.kubeconfigPath, ['logs', 'cli', '-c', container]);
    assert.match(logs.stdout, /quickstart\.yaml \(quickstart\): valid/);
  }
});

test('a failing process fails the pod with its exit code and the log tail as termination message', async () => {
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('exits-3', {
      command: ['sh', '-c', 'echo loading; echo "fatal: dataset missing" >&2; exit 3'],
      terminationMessagePolicy: 'FallbackToLogsOnError',
    }),
  });
  const done = await waitForPod(core, NS, 'exits-3', 'to finish', isTerminal);
  assert.equal(done.status?.phase, 'Failed');
  assert.equal(terminated(done)?.exitCode, 3);
  assert.equal(terminated(done)?.reason, 'Error');
  assert.equal(terminated(done)?.message, 'loading\nfatal: dataset missing');
  assert.equal(done.status?.containerStatuses?.[0]?.restartCount, 0);
});

test('the termination-message file, emptyDir mounts and secrets reach the process', async () => {
  await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 's3' }, stringData: { AWS_ACCESS_KEY_ID: 'AKIDTEST' } } });
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('volumes', {
      command: ['sh', '-c', 'echo step=7 > /scratch/state && cat /scratch/state > /dev/termination-log && echo "key=$KEY" >> /dev/termination-log'],
      env: [{ name: 'KEY', valueFrom: { secretKeyRef: { name: 's3', key: 'AWS_ACCESS_KEY_ID' } } }],
      volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
    }, { volumes: [{ name: 'scratch', emptyDir: {} }] }),
  });
  const done = await waitForPod(core, NS, 'volumes', 'to finish', isTerminal);
  assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status));
  assert.equal(terminated(done)?.message, 'step=7\nkey=AKIDTEST\n');
});

test('a restartPolicy OnFailure pod is restarted and counts its restarts', async () => {
  const marker = join(scratch, 'restarted');
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('flaky', { command: ['sh', '-c', `if [ -e ${marker} ]; then exit 0; fi; touch ${marker}; exit 1`] }, { restartPolicy: 'OnFailure' }),
  });
  const done = await waitForPod(core, NS, 'flaky', 'to succeed after a restart', (p) => p.status?.phase === 'Succeeded');
  const status = done.status?.containerStatuses?.[0];
  assert.equal(status?.restartCount, 1);
  assert.equal(status?.lastState?.terminated?.exitCode, 1);
});

test('kubectl logs follows a running container to its end and tails a finished one', async () => {
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('counter', { command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.3; done'] }),
  });
  await waitForPod(core, NS, 'counter', 'to run', (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
  const followed = await kubectl(cluster.kubeconfigPath, ['logs', '-f', 'counter']);
  assert.equal(followed.code, 0, followed.stderr);
  assert.equal(followed.stdout, 'line 1\nline 2\nline 3\nline 4\nline 5\n');
  const tailed = await kubectl(cluster.kubeconfigPath, ['logs', '--tail=2', 'counter']);
  assert.equal(tailed.stdout, 'line 4\nline 5\n');
});

test('a pod asking for more GPUs than any node has stays Pending with the scheduler\'s reason', async () => {
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('too-many-gpus', { command: ['true'], resources: { limits: { 'nvidia.com/gpu': '5' } } }),
  });
  const pending = await waitForPod(core, NS, 'too-many-gpus', 'to be unschedulable', (p) =>
    p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable') ?? false);
  assert.equal(pending.status?.phase, 'Pending');
  assert.equal(pending.spec?.nodeName, undefined);
  const scheduled = pending.status?.conditions?.find((c) => c.type === 'PodScheduled');
  assert.equal(scheduled?.status, 'False');
  assert.match(scheduled?.message ?? '', /0\/2 nodes are available: 2 Insufficient nvidia\.com\/gpu/);
});

test('deleting a running pod sends SIGTERM, waits for the process, and removes the pod', async () => {
  const marker = join(scratch, 'sigterm');
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('graceful', {
      command: ['sh', '-c', `trap 'echo TERM > ${marker}; exit 0' TERM; echo ready; while true; do sleep 0.1; done`],
    }, { terminationGracePeriodSeconds: 30 }),
  });
  await waitForPod(core, NS, 'graceful', 'to run', (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
  await core.deleteNamespacedPod({ name: 'graceful', namespace: NS });
  await waitForPodGone(core, NS, 'graceful', 20_000);
  assert.equal(readFileSync(marker, 'utf8'), 'TERM\n');
});

test('a process that ignores SIGTERM is killed when the grace period ends', async () => {
  await core.createNamespacedPod({
    namespace: NS,
    body: pod('stubborn', { command: ['sh', '-c', "trap '' TERM; while true; do sleep 0.1; done"] }, { terminationGracePeriodSeconds: 2 }),
  });
  await waitForPod(core, NS, 'stubborn', 'to run', (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
  await core.deleteNamespacedPod({ name: 'stubborn', namespace: NS });
  await waitForPodGone(core, NS, 'stubborn', 30_000);
  await waitFor('the stubborn process to be gone', () => (processList().includes("trap '' TERM") ? undefined : true), { timeoutMs: 5000 });
});

function processList(): string {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
}
