// Fault injection on the test cluster, seen the way the operator will see it: a SIGKILLed or OOM-killed
// container, a memory limit crossed, an emptyDir sizeLimit crossed, and a node that stops heartbeating, which
// the real node-lifecycle controller marks NotReady and whose pods its taint manager evicts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, type V1Container, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../env/cluster.js';
import { kubectl } from '../env/kubectl.js';
import { NodeAgent } from '../env/node-agent.js';
import { isTerminal, nodeReadyStatus, waitForNode, waitForPod, waitForPodGone } from '../env/pod-waits.js';

const NS = 'default';
const GRACE_SECONDS = 6;
let cluster: Cluster;
let agent: NodeAgent;
let core: CoreV1Api;

before(async () => {
  cluster = await startCluster({ nodeMonitorGracePeriodSeconds: GRACE_SECONDS });
  agent = await NodeAgent.start({ cluster, nodes: [{ name: 'gpu-a', gpus: 4 }, { name: 'gpu-b', gpus: 4 }] });
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
});

after(async () => {
  await agent?.stop();
  await cluster?.stop();
});

const SLEEPER = ['sh', '-c', 'while true; do sleep 0.1; done'];

async function runningPod(name: string, container: Partial<V1Container> = {}, spec: Partial<NonNullable<V1Pod['spec']>> = {}): Promise<V1Pod> {
  await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name, namespace: NS },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'local/shell', command: SLEEPER, ...container }], ...spec },
    },
  });
  return waitForPod(core, NS, name, 'to run', (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined);
}

const terminated = (p: V1Pod) => p.status?.containerStatuses?.[0]?.state?.terminated;

test('a SIGKILLed container fails the pod with exit code 137', async () => {
  await runningPod('killed');
  agent.killPod(NS, 'killed');
  const done = await waitForPod(core, NS, 'killed', 'to fail', isTerminal);
  assert.equal(done.status?.phase, 'Failed');
  assert.equal(terminated(done)?.exitCode, 137);
  assert.equal(terminated(done)?.reason, 'Error');
});

test('an injected OOM kill is reported as OOMKilled', async () => {
  await runningPod('oom-injected');
  agent.oomKillPod(NS, 'oom-injected');
  const done = await waitForPod(core, NS, 'oom-injected', 'to fail', isTerminal);
  assert.equal(done.status?.phase, 'Failed');
  assert.equal(terminated(done)?.exitCode, 137);
  assert.equal(terminated(done)?.reason, 'OOMKilled');
});

test('a process growing past its memory limit is OOM-killed', async () => {
  const grow = 'const keep = []; setInterval(() => keep.push(Buffer.alloc(32 << 20, 1)), 50);';
  await runningPod('oom-real', { command: [process.execPath, '-e', grow], resources: { limits: { memory: '256Mi' } } });
  const done = await waitForPod(core, NS, 'oom-real', 'to be OOM-killed', isTerminal, 30_000);
  assert.equal(terminated(done)?.reason, 'OOMKilled');
  assert.equal(terminated(done)?.exitCode, 137);
});

test('filling an emptyDir past its sizeLimit evicts the pod', async () => {
  await runningPod('disk-hog', { volumeMounts: [{ name: 'ckpt', mountPath: '/ckpt' }] }, {
    volumes: [{ name: 'ckpt', emptyDir: { sizeLimit: '8Mi' } }],
  });
  agent.fillDisk(NS, 'disk-hog', 'ckpt', 4 << 20);
  const stillRunning = await core.readNamespacedPod({ name: 'disk-hog', namespace: NS });
  assert.equal(stillRunning.status?.phase, 'Running', 'half the limit is allowed');
  agent.fillDisk(NS, 'disk-hog', 'ckpt', 8 << 20);
  const done = await waitForPod(core, NS, 'disk-hog', 'to be evicted', isTerminal, 30_000);
  assert.equal(done.status?.phase, 'Failed');
  assert.equal(done.status?.reason, 'Evicted');
  assert.match(done.status?.message ?? '', /Usage of EmptyDir volume "ckpt" exceeds the limit "8Mi"/);
  assert.equal(done.status?.conditions?.find((c) => c.type === 'DisruptionTarget')?.reason, 'TerminationByKubelet');
  const described = await kubectl(cluster.kubeconfigPath, ['describe', 'pod', 'disk-hog']);
  assert.match(described.stdout, /Warning\s+Evicted\s+.*kubelet\s+Usage of EmptyDir volume "ckpt"/);
});

test('a node without heartbeat goes NotReady and its pods are evicted by the node-lifecycle controller', async () => {
  const pod = await runningPod('on-lost-node', {}, {
    nodeSelector: { 'kubernetes.io/hostname': 'gpu-b' },
    tolerations: [
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 2 },
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 2 },
    ],
  });
  assert.equal(pod.spec?.nodeName, 'gpu-b');

  agent.stopHeartbeat('gpu-b');
  const unreachable = (n: V1Node) => n.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute');
  // The controller first sets Ready=Unknown, then taints the node on a later pass.
  await waitForNode(core, 'gpu-b', 'to be NotReady and tainted unreachable', (n) => nodeReadyStatus(n) === 'Unknown' && !!unreachable(n), 60_000);
  const healthy = await core.readNode({ name: 'gpu-a' });
  assert.equal(nodeReadyStatus(healthy), 'True', 'the other node keeps heartbeating');

  const evicted = await waitForPod(core, NS, 'on-lost-node', 'to be evicted', (p) => p.metadata?.deletionTimestamp !== undefined, 30_000);
  const disruption = evicted.status?.conditions?.find((c) => c.type === 'DisruptionTarget');
  assert.equal(disruption?.reason, 'DeletionByTaintManager');

  // Back online, the node finishes the deletion it missed, as a kubelet does after a partition heals.
  await agent.resumeHeartbeat('gpu-b');
  await waitForNode(core, 'gpu-b', 'to be Ready again', (n) => nodeReadyStatus(n) === 'True', 60_000);
  await waitForPodGone(core, NS, 'on-lost-node', 60_000);
});
