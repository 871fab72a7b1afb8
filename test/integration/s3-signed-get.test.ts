// The SDK-free GET (lib/s3-signed-get.ts) against a real MinIO: the server accepts its SigV4 signature for
// keys that need encoding, a missing key is undefined, and a rejected signature is a typed error naming the
// object and the server's code rather than a miss.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3Address } from '../../lib/s3-connection.js';
import { S3GetError, SignedGet } from '../../lib/s3-signed-get.js';
import { startMinio, type MinioServer } from '../env/minio.js';

const BUCKET = 'signed';
let minio: MinioServer;

before(async () => {
  minio = await startMinio();
  await minio.createBucket(BUCKET);
});
after(async () => {
  await minio?.stop();
});

function getter(secretAccessKey = minio.secretAccessKey): SignedGet {
  const address = s3Address({ endpoint: minio.endpoint, region: minio.region });
  const client = new S3Client({ ...address, credentials: { accessKeyId: minio.accessKeyId, secretAccessKey } });
  return SignedGet.fromClient(client, BUCKET, address);
}

test('reads objects whose keys need encoding, byte for byte, over reused connections', async () => {
  const objects = new Map<string, Buffer>([
    ['plain/entry.feat', Buffer.from('plain')],
    ["odd keys/a b+c=d!'(x)*~.feat", Buffer.alloc(100_000, 3)],
    ['ünïcode/é.feat', Buffer.from([0, 1, 2, 255])],
  ]);
  for (const [Key, Body] of objects) await minio.client().send(new PutObjectCommand({ Bucket: BUCKET, Key, Body }));
  const get = getter();
  try {
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all([...objects.keys()].map((k) => get.get(k)));
      assert.deepEqual(got, [...objects.values()]);
    }
  } finally {
    get.close();
  }
});

test('a missing key is undefined', async () => {
  const get = getter();
  try {
    assert.equal(await get.get('no/such/key.feat'), undefined);
  } finally {
    get.close();
  }
});

test('a signature the server rejects is an S3GetError with its code, not a miss', async () => {
  await minio.client().send(new PutObjectCommand({ Bucket: BUCKET, Key: 'secret.feat', Body: Buffer.from('x') }));
  const get = getter('not-the-secret');
  try {
    await assert.rejects(get.get('secret.feat'), (err: unknown) => {
      assert.ok(err instanceof S3GetError);
      assert.equal(err.statusCode, 403);
      assert.equal(err.code, 'SignatureDoesNotMatch');
      assert.match(err.message, /^s3:\/\/signed\/secret\.feat: SignatureDoesNotMatch/);
      return true;
    });
  } finally {
    get.close();
  }
});
