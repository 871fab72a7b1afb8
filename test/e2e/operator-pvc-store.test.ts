// The real `captionrun trainer` with its checkpoints on a PersistentVolumeClaim: the controller-manager binds
// the claim to a hostPath PersistentVolume, the node agent bind-mounts that directory at the store's mount
// path in the worker, and the trainer is SIGKILLed after a committed checkpoint. The operator cannot read a
// claim, so only the relaunched trainer knows where it resumed: its report must reach status.resumedFrom,
// the Progressing condition and an event, and name the checkpoint its own log says it loaded.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/telemetry/logger.js';
import { PVC_MOUNT_PATH } from '../../lib/checkpoint/location.js';
import { kubectl } from '../env/kubectl.js';
import { waitFor } from '../env/wait.js';
import type { Operator } from '../../operator/operator.js';
import { NS, runsPath, startOperatorTestEnv, startTrainerOperator, tinyTrainerRun, waitForGang, waitForRun, type OperatorTestEnv } from './operator-harness.js';

let t: OperatorTestEnv;
let operator: Operator;

before(async () => {
  t = await startOperatorTestEnv([{ name: 'gpu-node-1', gpus: 1 }]);
  operator = await startTrainerOperator(t, createLogger({ component: 'operator' }));
});

after(async () => {
  await operator?.stop();
  await t?.env.stop();
});

test('a trainer killed after a checkpoint on a PVC resumes from it, and the run says which one', async () => {
  const volumeDir = mkdtempSync(join(tmpdir(), 'e2e-pv-'));
  await t.core.createPersistentVolume({
    body: {
      metadata: { name: 'checkpoints' },
      spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', hostPath: { path: volumeDir } },
    },
  });
  await t.core.createNamespacedPersistentVolumeClaim({
    namespace: NS,
    body: {
      metadata: { name: 'checkpoints' },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'manual', resources: { requests: { storage: '1Gi' } } },
    },
  });
  await waitFor('the claim to be bound by the controller-manager', async () => {
    const claim = await t.core.readNamespacedPersistentVolumeClaim({ name: 'checkpoints', namespace: NS });
    return claim.status?.phase === 'Bound' ? claim : undefined;
  }, { timeoutMs: 60_000 });

  await t.api.post(runsPath, tinyTrainerRun('pvc', { pvc: { claimName: 'checkpoints', subPath: 'runs' } }));
  await waitForGang(t, 'pvc', 0, 1, 120_000);
  const checkpointed = await waitForRun(t, 'pvc', 'to commit a checkpoint', (r) => (r.status?.lastCheckpoint?.step ?? 0) > 0, 300_000);
  const { name: killedName = '', uri: killedUri = '', step: killedStep = 0 } = checkpointed.status?.lastCheckpoint ?? {};
  assert.equal(killedUri, `${PVC_MOUNT_PATH}/runs/${NS}/pvc/${killedName}`);
  // The checkpoints are on the volume itself, not in some directory the agent substituted for the mount path
  // (which ones by now is retention's business: keepLast 2).
  const runDir = join(volumeDir, 'runs', NS, 'pvc');
  const onVolume = existsSync(runDir) ? readdirSync(runDir).filter((f) => f.startsWith('ckpt-')) : [];
  assert.ok(onVolume.length > 0, `checkpoints in the PersistentVolume's directory ${runDir}`);
  t.env.agent.killPod(NS, 'pvc-worker-0-0');

  const resumed = await waitForRun(t, 'pvc', 'to report where attempt 1 resumed', (r) => r.status?.attempt === 1 && r.status.resumedFrom !== undefined, 180_000);
  const resumedFrom = resumed.status?.resumedFrom ?? '';
  const log = await kubectl(t.env.cluster.kubeconfigPath, ['logs', 'pvc-worker-0-1']);
  const said = /resuming from (ckpt-\d{12})/.exec(log.stdout)?.[1];
  assert.ok(said, `the trainer logs where it resumed:\n${log.stdout.slice(-2000)}`);
  assert.equal(resumedFrom, `${PVC_MOUNT_PATH}/runs/${NS}/pvc/${said}`);
  assert.ok(Number(said.slice(5)) >= killedStep, `resumed from ${said}, not from before the checkpoint committed at step ${killedStep}`);

  const condition = await waitForRun(t, 'pvc', 'to name the resume point in its condition', (r) =>
    r.status?.conditions?.some((c) => c.type === 'Progressing' && c.message.includes(resumedFrom)) ?? false, 60_000);
  const events = await t.core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=pvc,reason=Resumed' });
  assert.deepEqual(events.items.map((e) => e.message), [`attempt 1: the trainer resumed from ${resumedFrom}`]);

  const done = await waitForRun(t, 'pvc', 'to succeed', (r) => r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed', 480_000);
  assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.conditions));
  assert.equal(done.status?.restarts, 1);
  process.stderr.write(`${JSON.stringify({
    killedAfter: killedUri,
    trainerLog: `resuming from ${said}`,
    resumedFrom,
    condition: condition.status?.conditions?.find((c) => c.type === 'Progressing')?.message,
    event: events.items[0]?.message,
    outputURI: done.status?.outputURI,
  })}\n`);
});
