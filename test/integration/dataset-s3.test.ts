// Datasets in S3 (MinIO here): the flickr8k and karpathy fixtures uploaded under a prefix must open exactly as
// their local copies do (splits, ids, captions, image bytes), report a missing image by its s3:// location,
// refuse an empty prefix clearly, and feed `captionrun extract-features` with the connection taken from the
// AWS environment variables.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { InvalidInputError } from '../../lib/errors.js';
import type { S3Connection } from '../../lib/s3-connection.js';
import type { Dataset } from '../../trainer-image/data/dataset.js';
import { openDataset } from '../../trainer-image/data/open-dataset.js';
import { startMinio, type MinioServer } from '../env/minio.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
const BUCKET = 'datasets';
let minio: MinioServer;
let s3: S3Connection;
const temps: string[] = [];

async function upload(dir: string, prefix: string): Promise<void> {
  for (const entry of await readdir(dir, { recursive: true })) {
    const path = join(dir, entry);
    if (!(await stat(path)).isFile()) continue;
    await minio.client().send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${relative(dir, path)}`, Body: await readFile(path) }));
  }
}

before(async () => {
  minio = await startMinio();
  await minio.createBucket(BUCKET);
  s3 = { endpoint: minio.endpoint, region: minio.region, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey };
  await upload(join(fixtures, 'data-flickr8k-kaggle'), 'flickr8k');
  await upload(join(fixtures, 'data-karpathy'), 'coco-style/karpathy');
});
after(async () => {
  await minio?.stop();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

/** What a dataset holds, with every image's bytes: equal for the local and the S3 copy. */
async function contents(ds: Dataset): Promise<unknown> {
  return Promise.all(
    ds.splits.map(async (split) => ({
      split,
      items: await Promise.all(
        ds.items(split).map(async (it) => {
          const img = await it.image();
          return { id: it.id, captions: it.captions, bytes: img.kind === 'encoded' ? img.data.toString('base64') : '' };
        }),
      ),
    })),
  );
}

test('flickr8k and karpathy datasets under an s3:// prefix open exactly as their local copies', async () => {
  const local = await openDataset({ format: 'flickr8k', source: join(fixtures, 'data-flickr8k-kaggle') });
  const remote = await openDataset({ format: 'flickr8k', source: `s3://${BUCKET}/flickr8k` }, { s3 });
  assert.deepEqual(remote.splits, ['train', 'dev']);
  assert.deepEqual(await contents(remote), await contents(local));
  const img = await remote.items('train')[0]?.image();
  assert.equal(img?.kind === 'encoded' && img.path, `s3://${BUCKET}/flickr8k/Images/1001_red.jpg`);

  const karpathyLocal = await contents(await openDataset({ format: 'karpathy', source: join(fixtures, 'data-karpathy') }));
  for (const source of [`s3://${BUCKET}/coco-style/karpathy`, `s3://${BUCKET}/coco-style/karpathy/dataset_flickr8k.json`]) {
    assert.deepEqual(await contents(await openDataset({ format: 'karpathy', source }, { s3 })), karpathyLocal, source);
  }
});

test('a missing S3 image is reported by its location and skipped; an empty prefix and a vanished image are clear errors', async () => {
  await upload(join(fixtures, 'data-flickr8k-kaggle'), 'gaps');
  await minio.client().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'gaps/Images/1002_green.jpg' }));
  const ds = await openDataset({ format: 'flickr8k', source: `s3://${BUCKET}/gaps` }, { s3, maxMissingFraction: 0.5 });
  assert.deepEqual(ds.problems, [{ id: '1002_green.jpg', file: `s3://${BUCKET}/gaps/Images/1002_green.jpg`, message: 'image file is missing' }]);
  assert.deepEqual(ds.items('train').map((it) => it.id), ['1001_red.jpg', '1003_blue.jpg']);

  await minio.client().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'gaps/Images/1003_blue.jpg' }));
  await assert.rejects(ds.items('train')[1]?.image() ?? Promise.resolve(), (e: unknown) => e instanceof InvalidInputError && /cannot read image/.test(e.message) && e.file === `s3://${BUCKET}/gaps/Images/1003_blue.jpg`);
  await assert.rejects(openDataset({ format: 'flickr8k', source: `s3://${BUCKET}/nothing-here` }, { s3 }), (e: unknown) => e instanceof InvalidInputError && /no objects under this prefix/.test(e.message));
});

test('extract-features reads an s3:// dataset through the AWS environment variables', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'extract-s3-'));
  temps.push(cache);
  const env = { ...process.env, CAPTIONRUN_BACKEND: 'wasm', AWS_ENDPOINT_URL: minio.endpoint, AWS_ACCESS_KEY_ID: minio.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.secretAccessKey, AWS_REGION: minio.region };
  const args = ['extract-features', '--format', 'flickr8k', '--dataset', `s3://${BUCKET}/flickr8k`, '--input-size', '75', '--cache', cache, '-o', 'json'];
  const { stdout } = await promisify(execFile)(process.execPath, [cli, ...args], { env });
  const summary = JSON.parse(stdout) as { total: number; encoded: number; bad: unknown[]; source: string };
  assert.deepEqual([summary.total, summary.encoded, summary.bad.length], [4, 4, 0]);
  assert.match(summary.source, /^s3:\/\/datasets\/flickr8k/);
});
