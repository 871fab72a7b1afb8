// The full environment `npm run cluster -- up` starts: MinIO answers S3 from the test and from a pod that
// gets its credentials from the Secret the environment creates, as a trainer pod will.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CoreV1Api } from '@kubernetes/client-node';
import { startTestEnvironment, type TestEnvironment } from '../env/environment.js';
import { kubectl } from '../env/kubectl.js';
import { isTerminal, waitForPod } from '../env/pod-waits.js';

let env: TestEnvironment;

before(async () => {
  env = await startTestEnvironment();
  await env.minio.createBucket('checkpoints');
});

after(async () => {
  await env?.stop();
});

test('an S3 PutObject/GetObject round trip against the harness MinIO returns the same bytes', async () => {
  const s3 = env.minio.client();
  const body = Buffer.from(Array.from({ length: 1 << 16 }, (_, i) => (i * 31) % 251));
  await s3.send(new PutObjectCommand({ Bucket: 'checkpoints', Key: 'round-trip/blob.bin', Body: body }));
  const got = await s3.send(new GetObjectCommand({ Bucket: 'checkpoints', Key: 'round-trip/blob.bin' }));
  assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
  s3.destroy();
});

test('a pod on a GPU node reads from MinIO with credentials from the environment Secret', async () => {
  const s3 = env.minio.client();
  await s3.send(new PutObjectCommand({ Bucket: 'checkpoints', Key: 'from-pod.txt', Body: 'hello from s3' }));
  s3.destroy();
  const read = [
    "import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';",
    "const s3 = new S3Client({ endpoint: process.env.S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true });",
    "const r = await s3.send(new GetObjectCommand({ Bucket: 'checkpoints', Key: 'from-pod.txt' }));",
    'console.log(await r.Body.transformToString());',
  ].join('\n');
  const secretKey = (key: string) => ({ name: key, valueFrom: { secretKeyRef: { name: env.s3Secret.name, key } } });
  const core = env.cluster.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 's3-reader' },
      spec: {
        restartPolicy: 'Never',
        containers: [{
          name: 'main',
          // The captionrun images run in the repository, where @aws-sdk/client-s3 resolves.
          image: 'captionrun/trainer:dev',
          command: [process.execPath, '--input-type=module', '-e', read],
          env: [{ name: 'S3_ENDPOINT', value: env.minio.endpoint }, secretKey('AWS_ACCESS_KEY_ID'), secretKey('AWS_SECRET_ACCESS_KEY')],
          resources: { limits: { 'nvidia.com/gpu': '1' } },
        }],
      },
    },
  });
  const done = await waitForPod(core, 'default', 's3-reader', 'to finish', isTerminal, 60_000);
  const logs = await kubectl(env.cluster.kubeconfigPath, ['logs', 's3-reader']);
  assert.equal(done.status?.phase, 'Succeeded', logs.stdout);
  // stderr (the SDK's Node-version notice) shares the log, as it does in a real container.
  assert.match(logs.stdout, /(^|\n)hello from s3\n$/);
});
