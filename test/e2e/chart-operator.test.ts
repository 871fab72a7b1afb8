// The Helm install path end to end: the chart installs into the real test cluster, the operator runs with
// nothing but the chart's ServiceAccount (a token from the TokenRequest API), takes a run to Succeeded,
// and `helm uninstall` removes the release but keeps the CRD and the run's checkpoints.
// The operator runs as a local process: the node agent cannot mount ServiceAccount tokens into pods, so the
// chart's Deployment is scaled to zero and its credentials are used directly.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { binDir } from '../env/binaries.js';
import { REPO_ROOT } from '../env/images.js';
import { freePort } from '../env/minio.js';
import { createRun, startOperatorTestEnv, waitForRun, type OperatorTestEnv } from './operator-harness.js';

const RELEASE_NS = 'captionrun-system';
let t: OperatorTestEnv;
let operator: ChildProcess | undefined;

function run(cmd: string, ...args: string[]): string {
  const r = spawnSync(cmd, args, {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: t.env.cluster.kubeconfigPath, PATH: `${binDir()}:${process.env.PATH}` },
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

before(async () => {
  t = await startOperatorTestEnv();
});

after(async () => {
  operator?.kill('SIGKILL');
  await t?.env.stop();
});

test('helm install; the operator with only the chart\'s ServiceAccount takes a run to Succeeded; uninstall keeps CRD and checkpoints', async () => {
  run('helm', 'install', 'cr', 'charts/captionrun', '-n', RELEASE_NS, '--create-namespace', '--set', 'replicaCount=1');
  run('kubectl', 'scale', 'deployment/cr-captionrun', '-n', RELEASE_NS, '--replicas=0');

  const token = run('kubectl', 'create', 'token', 'cr-captionrun', '-n', RELEASE_NS, '--duration=1h').trim();
  const kubeconfig = join(t.env.cluster.dataDir, 'chart-operator.kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: t.env.cluster.server, 'certificate-authority-data': Buffer.from(readFileSync(t.env.cluster.caPath)).toString('base64') } }],
      users: [{ name: 'cr-captionrun', user: { token } }],
      contexts: [{ name: 'chart', context: { cluster: 'test', user: 'cr-captionrun' } }],
      'current-context': 'chart',
    }),
  );
  // The same arguments the chart's Deployment passes, leader election included.
  operator = spawn(process.execPath, [join(REPO_ROOT, 'bin/captionrun'), 'operator', '--kubeconfig', kubeconfig, '--trainer-image', 'standin/succeed',
    '--metrics-addr', `127.0.0.1:${await freePort()}`, '--leader-elect', '--lease-name', 'captionrun-operator'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, POD_NAME: 'chart-operator-0', POD_NAMESPACE: RELEASE_NS, CAPTIONRUN_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  operator.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));

  await createRun(t, 'viahelm', { mode: 'succeed', workers: 2 });
  const done = await waitForRun(t, 'viahelm', 'to succeed under the chart\'s RBAC', (r) => r.status?.phase === 'Succeeded', 120_000).catch((err: Error) => {
    throw new Error(`${err.message}\noperator stderr (a 403 means the chart's RBAC is missing a verb):\n${stderr}`);
  });
  assert.ok(done.status?.lastCheckpoint?.name, 'status shows the last checkpoint');

  // A run whose credentials Secret the chart does not name: the operator may not read it, says so, and the
  // gang still trains (its pods get the Secret through secretKeyRef, which needs no operator rights).
  const own = await t.core.readNamespacedSecret({ namespace: 'default', name: t.env.s3Secret.name });
  await t.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'team-s3' }, data: own.data } });
  await createRun(t, 'teamsecret', { mode: 'succeed', credentialsSecret: 'team-s3' });
  await waitForRun(t, 'teamsecret', 'to succeed without the operator reading its Secret', (r) => r.status?.phase === 'Succeeded', 120_000);
  const events = await t.api.get<{ items: { reason: string; message: string }[] }>('/api/v1/namespaces/default/events', { fieldSelector: 'involvedObject.name=teamsecret,involvedObject.kind=CaptionTrainingRun' });
  const created = events.items.find((e) => e.reason === 'GangCreated');
  assert.match(created?.message ?? '', /may not read Secret team-s3.*the trainer resumes from the latest valid checkpoint|the trainer resumes from the latest valid checkpoint.*may not read Secret team-s3/, JSON.stringify(events.items));
  assert.doesNotMatch(stderr, /forbidden/i, 'no request of the operator was refused');
  operator.kill('SIGTERM');

  run('helm', 'uninstall', 'cr', '-n', RELEASE_NS, '--wait');
  assert.equal(run('kubectl', 'get', 'all,serviceaccounts,roles,rolebindings', '-n', RELEASE_NS, '-l', 'app.kubernetes.io/instance=cr', '-o', 'name').trim(), '');
  run('kubectl', 'get', 'crd', 'captiontrainingruns.captionrun.dev');
  const s3 = t.env.minio.client();
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: t.bucket, Prefix: 'runs/default/viahelm/' }));
  s3.destroy();
  assert.ok((listed.KeyCount ?? 0) > 0, 'the run\'s checkpoints stay in the store');
});
