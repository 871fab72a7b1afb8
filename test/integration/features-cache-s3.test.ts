// The feature cache under an s3:// prefix (a real MinIO), on real encoder passes over small synthetic images:
// the second pass does no encoder work, a corrupt object is detected by its digest and recomputed, prune
// empties the prefix and reports its bytes, an unreachable store fails the pass instead of missing, and the
// local mirror serves entries read once from S3, holding only verified copies.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Connection } from '../../lib/s3-connection.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { openSynthetic } from '../../trainer-image/data/synthetic.js';
import { loadEncoder, type ImageEncoder } from '../../trainer-image/model/encoder.js';
import { extractFeatures, featureShape } from '../../trainer-image/features/extract-features.js';
import { FeatureCache, imageDigest } from '../../trainer-image/features/feature-cache.js';
import { freePort, startMinio, type MinioServer } from '../env/minio.js';

const BUCKET = 'features';
let minio: MinioServer;
let s3: S3Connection;
let encoder: ImageEncoder;
const items = openSynthetic({ images: 10, seed: 4, imageSize: 64, maxObjects: 2 }).items();

before(async () => {
  minio = await startMinio();
  await minio.createBucket(BUCKET);
  s3 = { endpoint: minio.endpoint, region: minio.region, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey };
  await useBackendUnderTest();
  // 75 px is InceptionV3's smallest input (a 1x1 map): real weights, real forward passes, little CPU.
  encoder = await loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 75 });
});
after(async () => {
  encoder?.dispose();
  await minio?.stop();
});

/** Every object key under `prefix`/, sorted. */
async function keys(prefix: string): Promise<string[]> {
  const page = await minio.client().send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/` }));
  return (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])).sort();
}

test('a second pass over the same images does no encoder work and returns the same features', async () => {
  const cache = new FeatureCache(`s3://${BUCKET}/a/`, 'float16', s3);
  assert.equal(cache.namespace(featureShape(encoder)), `s3://${BUCKET}/a/inceptionv3-75-${encoder.weightsDigest.slice(0, 16)}`);
  const before = encoder.imagesEncoded;
  const first = await extractFeatures(items, encoder, cache, { batchSize: 4 });
  assert.equal(encoder.imagesEncoded - before, 10);
  assert.equal(first.summary.encoded, 10);
  assert.equal((await keys('a')).length, 10);

  // A fresh cache object, as a relaunched pod would build: everything comes from the bucket.
  const again = new FeatureCache(`s3://${BUCKET}/a`, 'float16', s3);
  const second = await extractFeatures(items, encoder, again, { batchSize: 4 });
  assert.equal(encoder.imagesEncoded - before, 10, 'no encoder call on the second pass');
  assert.equal(second.summary.hits, 10);
  assert.equal(second.summary.encoded, 0);
  for (const [id, f] of first.features) assert.deepEqual(second.features.get(id), f);
});

test('a corrupt object is detected by its digest, reported, deleted and recomputed; the others still hit', async () => {
  const cache = new FeatureCache(`s3://${BUCKET}/b`, 'float16', s3);
  await extractFeatures(items, encoder, cache, { batchSize: 5 });
  const objects = await keys('b');
  assert.equal(objects.length, 10);
  const victim = objects[3] as string;
  const client = minio.client();
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: victim }));
  const bytes = Buffer.from((await res.Body?.transformToByteArray()) ?? new Uint8Array());
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: victim, Body: bytes }));

  const corrupt: string[] = [];
  cache.onCorrupt = (path, reason) => corrupt.push(`${path}: ${reason}`);
  const before = encoder.imagesEncoded;
  const again = await extractFeatures(items, encoder, cache, { batchSize: 5 });
  assert.equal(encoder.imagesEncoded - before, 1);
  assert.equal(again.summary.hits, 9);
  assert.equal(cache.stats.corrupt, 1);
  assert.deepEqual(corrupt, [`s3://${BUCKET}/${victim}: digest mismatch`]);
  assert.deepEqual(await keys('b'), objects, 'the recomputed entry is written back');
  const third = await extractFeatures(items, encoder, cache, { batchSize: 5 });
  assert.equal(third.summary.hits, 10);
});

test('prune deletes every object under the prefix and reports their bytes; the next pass recomputes', async () => {
  const cache = new FeatureCache(`s3://${BUCKET}/p`, 'float16', s3);
  const neighbour = new FeatureCache(`s3://${BUCKET}/p2`, 'float16', s3);
  await extractFeatures(items.slice(0, 4), encoder, cache, { batchSize: 4 });
  await extractFeatures(items.slice(0, 1), encoder, neighbour, { batchSize: 1 });
  assert.equal(await cache.prune(), cache.stats.bytesWritten, 'reports exactly the bytes it wrote');
  assert.deepEqual(await keys('p'), []);
  assert.equal((await keys('p2')).length, 1, 'a prefix that merely starts alike is left alone');
  assert.equal(await cache.prune(), 0);
  const before = encoder.imagesEncoded;
  await extractFeatures(items.slice(0, 4), encoder, cache, { batchSize: 4 });
  assert.equal(encoder.imagesEncoded - before, 4, 'every image is encoded again');
});

test('an unreachable store fails the pass, naming the entry, rather than counting a miss', async () => {
  const cache = new FeatureCache(`s3://${BUCKET}/down`, 'float16', { ...s3, endpoint: `http://127.0.0.1:${await freePort()}` });
  const before = encoder.imagesEncoded;
  await assert.rejects(extractFeatures(items.slice(0, 2), encoder, cache, { batchSize: 2 }), /feature cache read s3:\/\/features\/down\/inceptionv3-75-/);
  assert.equal(cache.stats.misses, 0);
  assert.equal(encoder.imagesEncoded - before, 0);
});

test('the mirror serves entries read once from S3; a damaged mirror copy is replaced from S3, never used', async () => {
  const mirror = await mkdtemp(join(tmpdir(), 'features-mirror-'));
  try {
    const shape = featureShape(encoder);
    const first = await extractFeatures(items, encoder, new FeatureCache(`s3://${BUCKET}/m`, 'float16', s3), { batchSize: 5 });
    const keysOf = await Promise.all(items.map(async (it) => imageDigest(await it.image())));

    const cache = new FeatureCache(`s3://${BUCKET}/m`, 'float16', s3, { mirror });
    for (const key of keysOf) assert.ok(await cache.get(shape, key));
    assert.equal(cache.stats.mirrorHits, 0, 'an empty mirror serves nothing');
    // A fresh cache object on the same mirror (a relaunched trainer on the same node) reads no object.
    const again = new FeatureCache(`s3://${BUCKET}/m`, 'float16', s3, { mirror });
    const byKey = new Map(items.map((it, i) => [keysOf[i] as string, first.features.get(it.id)]));
    for (const key of keysOf) assert.deepEqual((await again.get(shape, key))?.map, byKey.get(key)?.map);
    assert.equal(again.stats.mirrorHits, items.length);

    const victim = keysOf[2] as string;
    const path = join(mirror, `inceptionv3-75-${encoder.weightsDigest.slice(0, 16)}`, victim.slice(0, 2), `${victim}.feat`);
    const bytes = await readFile(path);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
    await writeFile(path, bytes);
    const corrupt: string[] = [];
    again.onCorrupt = (where, reason) => corrupt.push(`${where}: ${reason}`);
    assert.deepEqual((await again.get(shape, victim))?.map, byKey.get(victim)?.map, 'the S3 entry, not the damaged copy');
    assert.deepEqual(corrupt, [`${path}: digest mismatch`]);
    assert.equal((await keys('m')).length, items.length, 'the intact S3 entry is kept');
    const mirrorHits = again.stats.mirrorHits;
    await again.get(shape, victim);
    assert.equal(again.stats.mirrorHits, mirrorHits + 1, 'mirrored again from S3');
  } finally {
    await rm(mirror, { recursive: true, force: true });
  }
});
