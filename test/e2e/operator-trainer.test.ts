// The real `captionrun trainer` under the operator: a tiny synthetic run on one worker of the test cluster,
// checkpoints in MinIO, SIGKILLed once after its first checkpoint, resumed by the operator and trained to
// the end. The run is Succeeded with its progress in status, and its outputs and report in MinIO. The S3
// keys pass through the operator (it reads the Secret), the trainer pods (secretKeyRef) and the CLI (env),
// and none of their output may contain them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createLogger } from '../../lib/telemetry/logger.js';
import { CLI } from '../integration/train-helpers.js';
import { kubectl } from '../env/kubectl.js';
import type { Operator } from '../../operator/operator.js';
import { NS, runsPath, startOperatorTestEnv, startTrainerOperator, tinyTrainerRun, waitForGang, waitForRun, type OperatorTestEnv } from './operator-harness.js';

let t: OperatorTestEnv;
let operator: Operator;
/** Everything the operator logged, also passed on to stderr. */
let operatorLog = '';

before(async () => {
  t = await startOperatorTestEnv([{ name: 'gpu-node-1', gpus: 1 }]);
  operator = await startTrainerOperator(t, createLogger({ component: 'operator' }, captured()));
});

function captured(): PassThrough {
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => {
    operatorLog += d.toString();
    process.stderr.write(d);
  });
  return sink;
}

after(async () => {
  await operator?.stop();
  await t?.env.stop();
});

test('the real trainer, killed once after its first checkpoint, resumes under the operator and succeeds', async () => {
  const store = { s3: { bucket: t.bucket, prefix: 'runs', endpoint: t.env.minio.endpoint, forcePathStyle: true, credentialsSecret: t.env.s3Secret.name } };
  await t.api.post(runsPath, tinyTrainerRun('real', store));
  await waitForGang(t, 'real', 0, 1, 120_000);
  const checkpointed = await waitForRun(t, 'real', 'to commit a checkpoint', (r) => (r.status?.lastCheckpoint?.step ?? 0) > 0, 300_000);
  t.env.agent.killPod(NS, 'real-worker-0-0');
  const resumed = await waitForRun(t, 'real', 'to relaunch', (r) => r.status?.attempt === 1 && r.status.resumedFrom !== undefined, 120_000);
  assert.match(resumed.status?.resumedFrom ?? '', /^s3:\/\/captionrun-e2e\/runs\/default\/real\/ckpt-\d{12}$/);
  assert.ok((resumed.status?.lastCheckpoint?.step ?? 0) >= (checkpointed.status?.lastCheckpoint?.step ?? 0));
  const done = await waitForRun(t, 'real', 'to succeed', (r) => r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed', 480_000);
  assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.conditions));
  assert.equal(done.status?.restarts, 1);
  assert.ok((done.status?.step ?? 0) > 0 && (done.status?.epoch ?? 0) >= 1, JSON.stringify(done.status));
  assert.ok(Number.isFinite(done.status?.loss));
  assert.equal(done.status?.loss, Number(done.status?.loss?.toFixed(4)), 'the loss column prints 4 decimals');

  // The outputs outlive the pod: in MinIO next to the checkpoints, verified on download, corruption named.
  assert.equal(done.status?.outputURI, 's3://captionrun-e2e/runs/default/real/outputs');
  assert.equal(done.status?.reportURI, 's3://captionrun-e2e/runs/default/real/outputs/report.html');
  const s3env = { AWS_ACCESS_KEY_ID: t.env.minio.accessKeyId, AWS_SECRET_ACCESS_KEY: t.env.minio.secretAccessKey };
  const get = (dest: string) => spawnSync(process.execPath, [CLI, 'outputs', 'get', '--endpoint', t.env.minio.endpoint, done.status?.outputURI ?? '', dest], { encoding: 'utf8', env: { ...process.env, ...s3env } });
  const dest = mkdtempSync(join(tmpdir(), 'e2e-outputs-'));
  const ok = get(dest);
  assert.equal(ok.status, 0, ok.stderr);
  for (const f of ['model.json', 'captions.json', 'report.html']) assert.ok(existsSync(join(dest, f)), `${f} came back`);
  const key = 'runs/default/real/outputs/captions.json';
  const client = t.env.minio.client();
  const original = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }))).Body?.transformToByteArray() ?? []);
  await client.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: Buffer.concat([original, Buffer.from(' ')]) }));
  const bad = get(mkdtempSync(join(tmpdir(), 'e2e-outputs-')));
  assert.equal(bad.status, 3);
  assert.match(bad.stderr, /captions\.json/);

  // No secret in any output: the operator's log, both trainer pods' logs, the CLI's stdout and stderr.
  const pods = await Promise.all(['real-worker-0-0', 'real-worker-0-1'].map((pod) => kubectl(t.env.cluster.kubeconfigPath, ['logs', pod])));
  const outputs: Record<string, string> = { operator: operatorLog, ...Object.fromEntries(pods.map((p, i) => [`trainer attempt ${i}`, p.stdout + p.stderr])), cli: ok.stdout + ok.stderr + bad.stdout + bad.stderr };
  assert.ok(outputs.operator?.includes('gang created') && outputs['trainer attempt 1']?.includes('training finished'), 'the logs were captured');
  for (const [source, text] of Object.entries(outputs)) {
    for (const secret of [t.env.minio.secretAccessKey, t.env.minio.accessKeyId]) assert.ok(!text.includes(secret), `${source} output contains an S3 key`);
  }
});
