// DenseNet121 weights (a tfjs layers model: model.json + shards) served over HTTP by a real server on loopback
// and from S3 (MinIO) load exactly as from the local directory they came from; a missing shard and a missing
// model.json are errors naming the location.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { InvalidInputError } from '../../lib/errors.js';
import { buildDenseNet121, loadDenseNet121 } from '../../trainer-image/model/densenet121.js';
import { modelWeightsDigest } from '../../trainer-image/model/weights-io.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { saveLayersModel, SHARD } from '../layers-model.js';
import { startMinio, type MinioServer } from '../env/minio.js';

let dir: string;
let expected: string;
let server: Server;
let base: string;
let minio: MinioServer;

before(async () => {
  await useBackendUnderTest();
  dir = await mkdtemp(join(tmpdir(), 'densenet-remote-'));
  const source = buildDenseNet121(64, 42);
  expected = modelWeightsDigest(source);
  await saveLayersModel(source, dir);
  source.dispose();
  // A static file server for `dir` under /models/densenet/.
  server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\/models\/densenet\//, '');
    readFile(join(dir, name))
      .then((body) => res.writeHead(200, { 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body))
      .catch(() => res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/models/densenet`;
  minio = await startMinio();
  await minio.createBucket('weights');
  for (const f of await readdir(dir)) {
    await minio.client().send(new PutObjectCommand({ Bucket: 'weights', Key: `densenet121/${f}`, Body: await readFile(join(dir, f)) }));
  }
});

after(async () => {
  server?.close();
  await minio?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('weights over HTTP and from S3 load exactly as from disk', async () => {
  const s3 = { endpoint: minio.endpoint, region: minio.region, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey };
  for (const weights of [dir, base, `${base}/model.json`, 's3://weights/densenet121', 's3://weights/densenet121/model.json']) {
    const { model, digest } = await loadDenseNet121({ weights, inputSize: 64, s3 });
    assert.equal(digest, expected, weights);
    model.dispose();
  }
});

test('a missing shard or model.json is an error naming its location', async () => {
  await assert.rejects(loadDenseNet121({ weights: `${base}/nothing/model.json`, inputSize: 64 }), (e: unknown) => e instanceof InvalidInputError && /model\.json/.test(e.message) && e.file === `${base}/nothing/model.json`);
  await unlink(join(dir, SHARD));
  await assert.rejects(loadDenseNet121({ weights: base, inputSize: 64 }), (e: unknown) => e instanceof InvalidInputError && /missing weight shard: HTTP 404/.test(e.message) && e.file === `${base}/${SHARD}`);
});
