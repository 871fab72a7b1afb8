// The operator against the real test cluster: gangs of stand-in trainer processes on the node agent's GPU
// nodes, real faults (SIGKILL, graceful deletion, a node that stops heartbeating), and the run's status as
// `kubectl get captionruns` shows it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '../../lib/telemetry/logger.js';
import { Operator } from '../../operator/operator.js';
import { kubectl } from '../env/kubectl.js';
import { waitFor } from '../env/wait.js';
import { createRun, deleteRun, envOf, getRun, NS, runPods, startOperatorTestEnv, waitForGang, waitForRun, type OperatorTestEnv } from './operator-harness.js';

let t: OperatorTestEnv;
let operator: Operator;

before(async () => {
  t = await startOperatorTestEnv();
  operator = new Operator({
    kubeConfig: t.env.cluster.kubeConfig(),
    metricsAddress: '127.0.0.1:0',
    settings: { trainerImage: 'standin/train', clusterDomain: 'cluster.local', nodeLostTolerationSeconds: 2, forceDeleteAfterMs: 2000, checkpointPollIntervalMs: 2000 },
    resyncMs: 5000,
    logger: createLogger({ component: 'operator' }),
  });
  await operator.start();
});

after(async () => {
  await operator?.stop();
  await t?.env.stop();
});

const condition = (r: Awaited<ReturnType<typeof getRun>>, type: string) => r.status?.conditions?.find((c) => c.type === type);

test('a gang of 3 gets per-rank rendezvous env; one SIGKILLed worker replaces the whole gang from the latest checkpoint', async () => {
  await createRun(t, 'gang', { workers: 3 });
  const first = await waitForGang(t, 'gang', 0, 3);
  for (const pod of first) {
    const rank = Number(pod.metadata?.labels?.['captionrun.dev/rank']);
    const env = envOf(pod);
    assert.equal(pod.metadata?.name, `gang-worker-${rank}-0`);
    assert.equal(env.MASTER_ADDR, 'gang-worker-0-0.gang.default.svc.cluster.local');
    assert.equal(env.WORLD_SIZE, '3');
    assert.equal(env.RANK, String(rank));
    assert.equal(env.LOCAL_WORLD_SIZE, '1');
    assert.equal(pod.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu'], '1');
    assert.equal(pod.metadata?.ownerReferences?.[0]?.controller, true);
  }
  const running = await waitForRun(t, 'gang', 'to be Running with a checkpoint', (r) => r.status?.phase === 'Running' && r.status.lastCheckpoint?.step === 10);
  assert.deepEqual(running.status?.workers, { ready: 3, total: 3 });
  assert.equal(running.status?.step, 10);
  assert.equal(condition(running, 'Ready')?.status, 'True');

  t.env.agent.killPod(NS, 'gang-worker-1-0');
  const second = await waitForGang(t, 'gang', 1, 3);
  assert.deepEqual(second.map((p) => p.metadata?.name).sort(), ['gang-worker-0-1', 'gang-worker-1-1', 'gang-worker-2-1']);
  assert.ok(second.every((p) => envOf(p).MASTER_ADDR === 'gang-worker-0-1.gang.default.svc.cluster.local'));
  const restarted = await waitForRun(t, 'gang', 'to run attempt 1', (r) => r.status?.phase === 'Running' && r.status.attempt === 1);
  assert.equal(restarted.status?.restarts, 1);
  assert.equal(restarted.status?.lastFailure?.pod, 'gang-worker-1-0');
  assert.equal(restarted.status?.lastFailure?.exitCode, 137);
  // Rank 0 of attempt 0 got SIGTERM when the gang was replaced and committed step 15 before exiting 75.
  assert.match(restarted.status?.resumedFrom ?? '', /^s3:\/\/captionrun-e2e\/runs\/default\/gang\/ckpt-000000000015$/);
  assert.equal(second.find((p) => p.metadata?.labels?.['captionrun.dev/rank'] === '0')?.metadata?.annotations?.['captionrun.dev/resume-from'], restarted.status?.resumedFrom);

  const events = await kubectl(t.env.cluster.kubeconfigPath, ['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=gang', '-o', 'jsonpath={.items[*].reason}']);
  assert.match(events.stdout, /GangCreated/);
  assert.match(events.stdout, /Signal/);
  const table = await kubectl(t.env.cluster.kubeconfigPath, ['get', 'captionruns', 'gang', '-n', NS]);
  // Phase, World (3 workers x 1 GPU), Epoch, Step, Loss, BLEU-4, Restarts, Checkpoint.
  assert.match(table.stdout, /gang\s+Running\s+3\s+\d+\s+\d+\s+\S+\s+\S+\s+1\s+ckpt-/);
  await deleteRun(t, 'gang');
});

test('deleting a worker gracefully (exit 75) relaunches without counting a failure', async () => {
  await createRun(t, 'graceful', { workers: 2 });
  await waitForGang(t, 'graceful', 0, 2);
  // Past the trainer's start-up (its first checkpoint is committed): a SIGTERM before that kills it outright.
  await waitForRun(t, 'graceful', 'to be Running with a checkpoint', (r) => r.status?.phase === 'Running' && r.status.lastCheckpoint?.step === 10);
  await t.core.deleteNamespacedPod({ namespace: NS, name: 'graceful-worker-0-0', gracePeriodSeconds: 10 });
  await waitForGang(t, 'graceful', 1, 2);
  const after = await waitForRun(t, 'graceful', 'to run attempt 1', (r) => r.status?.phase === 'Running' && r.status.attempt === 1);
  assert.equal(after.status?.restarts, 0);
  assert.equal(after.status?.lastFailure, undefined);
  assert.match(after.status?.resumedFrom ?? '', /ckpt-000000000015$/, 'resumed from the checkpoint written on SIGTERM');
  await deleteRun(t, 'graceful');
});

test('a crash loop ends Failed after backoffLimit with the exit code and the last log line', async () => {
  await createRun(t, 'crashloop', { mode: 'crash', backoffLimit: 2 });
  const failed = await waitForRun(t, 'crashloop', 'to fail', (r) => r.status?.phase === 'Failed');
  assert.equal(failed.status?.restarts, 2);
  const c = condition(failed, 'Failed');
  assert.equal(c?.reason, 'BackoffLimitExceeded');
  assert.match(c?.message ?? '', /exited with code 1/);
  assert.match(c?.message ?? '', /fatal: cannot open dataset shard 7/);
  assert.equal(failed.status?.lastFailure?.exitCode, 1);
  await deleteRun(t, 'crashloop');
});

test('exit code 3 fails the run at once and says what to fix', async () => {
  await createRun(t, 'invalid', { mode: 'invalid', backoffLimit: 5 });
  const failed = await waitForRun(t, 'invalid', 'to fail', (r) => r.status?.phase === 'Failed');
  assert.equal(failed.status?.restarts, 0);
  const c = condition(failed, 'Failed');
  assert.equal(c?.reason, 'PermanentExitCode');
  assert.match(c?.message ?? '', /code 3.*bucket "nope" does not exist.*fix the spec/);
  assert.equal((await runPods(t, 'invalid')).length, 1, 'no relaunch');
  await deleteRun(t, 'invalid');
});

test('suspend stops the gang after a final checkpoint; unsuspending resumes from it', async () => {
  await createRun(t, 'pause', { workers: 2 });
  await waitForGang(t, 'pause', 0, 2);
  await waitForRun(t, 'pause', 'to be Running with a checkpoint', (r) => r.status?.phase === 'Running' && r.status.lastCheckpoint?.step === 10);
  await kubectl(t.env.cluster.kubeconfigPath, ['patch', 'captionrun', 'pause', '-n', NS, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
  await waitForRun(t, 'pause', 'to be Suspended', (r) => r.status?.phase === 'Suspended');
  await waitFor('the suspended gang to be gone', async () => ((await runPods(t, 'pause')).length === 0 ? true : undefined), { timeoutMs: 60_000 });
  await kubectl(t.env.cluster.kubeconfigPath, ['patch', 'captionrun', 'pause', '-n', NS, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
  await waitForGang(t, 'pause', 1, 2);
  const resumed = await waitForRun(t, 'pause', 'to run again', (r) => r.status?.phase === 'Running');
  assert.equal(resumed.status?.restarts, 0);
  assert.match(resumed.status?.resumedFrom ?? '', /\/pause\/ckpt-000000000015$/);
  assert.equal(condition(resumed, 'Suspended')?.status, 'False');
  await deleteRun(t, 'pause');
});

test('a run that finishes is Succeeded; deleting a run deletes its pods through owner references', async () => {
  await createRun(t, 'done', { mode: 'succeed', workers: 2 });
  const done = await waitForRun(t, 'done', 'to succeed', (r) => r.status?.phase === 'Succeeded');
  assert.ok(done.status?.completionTime);
  await deleteRun(t, 'done');
});

test('a node that stops heartbeating is evicted by the real controller and the gang moves to a healthy node', async () => {
  await createRun(t, 'nodeloss', { workers: 1 });
  const [pod] = await waitForGang(t, 'nodeloss', 0, 1);
  const lostNode = pod?.spec?.nodeName ?? '';
  await waitForRun(t, 'nodeloss', 'to be Running', (r) => r.status?.phase === 'Running');
  t.env.agent.stopHeartbeat(lostNode);
  const [moved] = await waitForGang(t, 'nodeloss', 1, 1, 120_000);
  assert.notEqual(moved?.spec?.nodeName, lostNode);
  const after = await waitForRun(t, 'nodeloss', 'to run attempt 1', (r) => r.status?.phase === 'Running' && r.status.attempt === 1);
  assert.ok(['NodeLost', 'DeletionByTaintManager', 'PodDeleted'].includes(after.status?.lastFailure?.reason ?? ''), `lastFailure ${JSON.stringify(after.status?.lastFailure)}`);
  assert.equal(after.status?.restarts, 0, 'losing a node is not the run\'s failure');
  // The old pod stayed Terminating on the silent node until the operator force-deleted it: a decision that
  // changes no status field, and still an event.
  const events = await t.api.get<{ items: { reason: string; message: string }[] }>(`/api/v1/namespaces/${NS}/events`, { fieldSelector: 'involvedObject.name=nodeloss,involvedObject.kind=CaptionTrainingRun' });
  assert.ok(events.items.some((e) => e.reason === 'ForceDeleted' && e.message.includes(lostNode)), JSON.stringify(events.items.map((e) => e.reason)));
});

test('a missing credentials Secret is named in a condition; the gang launches once the Secret exists', async () => {
  await createRun(t, 'nosecret', { credentialsSecret: 'nosecret-s3' });
  const blocked = await waitForRun(t, 'nosecret', 'to report the missing Secret', (r) =>
    (r.status?.conditions ?? []).some((c) => c.status === 'False' && /secrets "nosecret-s3" not found/.test(c.message)),
  );
  assert.equal((await runPods(t, 'nosecret')).length, 0, 'nothing launches without credentials');
  assert.notEqual(blocked.status?.phase, 'Failed', 'a Secret can still be created: the run waits, it does not fail');
  const existing = await t.core.readNamespacedSecret({ namespace: NS, name: t.env.s3Secret.name });
  await t.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'nosecret-s3' }, data: existing.data } });
  await waitForGang(t, 'nosecret', 0, 1);
  await deleteRun(t, 'nosecret');
});
