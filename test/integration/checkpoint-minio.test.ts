import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { CheckpointReader, CheckpointWriter, openStore, StoreUnavailableError, type S3StoreOptions, type Snapshot } from '../../lib/checkpoint/index.js';
import { startMinio, type MinioServer } from '../env/minio.js';
import { rng, runCorruptionTrials, writePristine, type RawAccess } from './checkpoint-corruptions.js';
import { startFaultyProxy, type FaultyProxy } from './checkpoint-faulty-proxy.js';

const BUCKET = 'checkpoints';
let minio: MinioServer;
let client: S3Client;
let proxy: FaultyProxy;

before(async () => {
  minio = await startMinio();
  await minio.createBucket(BUCKET);
  client = minio.client();
  proxy = await startFaultyProxy(minio.endpoint);
});

after(async () => {
  client.destroy();
  await proxy.close();
  await minio.stop();
});

function s3Options(extra: S3StoreOptions = {}): S3StoreOptions {
  return { endpoint: minio.endpoint, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey, partSizeBytes: 5 << 20, ...extra };
}

function bytes(seed: number, n: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) out[i] = Math.floor(r() * 256);
  return out;
}

function snapshot(step: number, sizes: number[]): Snapshot {
  return { step, epoch: 1, files: sizes.map((n, i) => ({ name: `shard-${i}.bin`, data: bytes(step * 7 + i, n) })), state: { step, cursor: step * 3 }, metrics: { bleu4: step / 1000 } };
}

function rawAccess(prefix: string): RawAccess {
  return {
    read: async (p) => {
      const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${p}` }));
      return new Uint8Array(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    },
    write: async (p, d) => void (await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${p}`, Body: d }))),
    remove: async (p) => void (await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${p}` }))),
  };
}

test('a multipart checkpoint on MinIO loads back bit-exact, and the server holds a CRC32 checksum per object', async () => {
  const store = openStore(`s3://${BUCKET}/ns/roundtrip`, { s3: s3Options() });
  const writer = new CheckpointWriter({ store, registry: new Registry() });
  const snap = snapshot(100, [12 << 20, 100_000, 0]);
  const expected = snap.files.map((f) => Buffer.from(f.data));
  const r = await writer.save(snap);
  assert.ok(r.accepted);
  await r.committed;
  await writer.close();
  const { checkpoint } = await new CheckpointReader(store).loadLatest();
  assert.equal(checkpoint?.name, 'ckpt-000000000100');
  expected.forEach((data, i) => assert.ok(data.equals(checkpoint?.files.get(`shard-${i}.bin`) ?? new Uint8Array(1)), `shard ${i}`));
  assert.deepEqual(checkpoint?.state, { step: 100, cursor: 300 });
  for (const key of ['shard-0.bin', 'shard-1.bin']) {
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `ns/roundtrip/ckpt-000000000100/${key}`, ChecksumMode: 'ENABLED' }));
    assert.ok(head.ChecksumCRC32, `${key} was stored with a CRC32 checksum the server verified`);
  }
  await store.close();
});

test('80 seeded random corruptions on MinIO: none loads, each is reported with a reason', async () => {
  const prefix = 'ns/corrupt';
  const store = openStore(`s3://${BUCKET}/${prefix}`, { s3: s3Options() });
  const raw = rawAccess(prefix);
  const pristine = await writePristine(store, raw, 7);
  const stats = await runCorruptionTrials(store, raw, pristine, 80, 77);
  assert.equal(stats.trials, 80);
  assert.equal(stats.corruptLoaded, 0);
  await store.close();
});

test('resets and 503s from the store are retried on write and read: the save commits and loads', async () => {
  const store = openStore(`s3://${BUCKET}/ns/flaky`, { s3: s3Options({ endpoint: proxy.endpoint, retryDeadlineMs: 30_000 }) });
  const writer = new CheckpointWriter({ store, registry: new Registry() });
  const before = proxy.faultsInjected;
  proxy.failNext(3, 'reset');
  const snap = snapshot(5, [6 << 20, 1000]);
  const expected = Buffer.from(snap.files[0]?.data ?? []);
  const r = await writer.save(snap);
  assert.ok(r.accepted);
  await r.committed;
  proxy.failNext(3, 'unavailable');
  const r2 = await writer.save(snapshot(6, [1000]));
  assert.ok(r2.accepted);
  await r2.committed;
  await writer.close();
  assert.equal(proxy.faultsInjected - before, 6);
  proxy.failNext(2, 'reset');
  const { checkpoint } = await new CheckpointReader(store).loadLatest();
  assert.equal(proxy.faultsInjected - before, 8);
  assert.equal(checkpoint?.manifest.step, 6);
  const five = await new CheckpointReader(store).load('ckpt-000000000005');
  assert.ok(expected.equals(five.files.get('shard-0.bin') ?? new Uint8Array()));
  await store.close();
});

test('a store that stays down fails the save with StoreUnavailableError; the next save after recovery commits', async () => {
  const store = openStore(`s3://${BUCKET}/ns/down`, { s3: s3Options({ endpoint: proxy.endpoint, retryDeadlineMs: 1500 }) });
  const writer = new CheckpointWriter({ store, registry: new Registry(), whenBusy: 'wait' });
  proxy.mode = 'reset';
  const r = await writer.save(snapshot(1, [1000]));
  assert.ok(r.accepted);
  await assert.rejects(r.committed, (err: unknown) => err instanceof StoreUnavailableError && /unreachable/.test(err.message));
  await assert.rejects(writer.flush(), StoreUnavailableError);
  proxy.mode = 'pass';
  const again = await writer.save(snapshot(2, [1000]));
  assert.ok(again.accepted);
  assert.equal((await again.committed).step, 2);
  await writer.close();
  const list = await new CheckpointReader(openStore(`s3://${BUCKET}/ns/down`, { s3: s3Options() })).list();
  assert.deepEqual(list.map((c) => [c.name, c.valid]), [['ckpt-000000000002', true]]);
  await store.close();
});

test('`captionrun checkpoints list|verify` report VALID and INVALID with reasons and exit 1 on any invalid', async () => {
  const prefix = 'ns/cli';
  const store = openStore(`s3://${BUCKET}/${prefix}`, { s3: s3Options() });
  const writer = new CheckpointWriter({ store, registry: new Registry(), whenBusy: 'wait' });
  for (const step of [1, 2]) await writer.save(snapshot(step, [5000]));
  await writer.close();
  const cli = fileURLToPath(new URL('../../bin/captionrun', import.meta.url));
  const env = { ...process.env, AWS_ACCESS_KEY_ID: minio.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.secretAccessKey };
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [cli, 'checkpoints', ...args, '--endpoint', minio.endpoint, `s3://${BUCKET}/${prefix}`], { env, encoding: 'utf8' });
  const ok = run('verify');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^ckpt-000000000002\s+2\s+1\s+4\.9 KiB\s+\d+s\s+VALID$/m);
  assert.ok(!ok.stdout.includes(minio.secretAccessKey) && !ok.stderr.includes(minio.secretAccessKey));
  await rawAccess(prefix).remove('ckpt-000000000002/shard-0.bin');
  const bad = run('verify');
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /^ckpt-000000000002 .*INVALID file-missing: shard-0\.bin does not exist$/m);
  assert.match(bad.stdout, /^ckpt-000000000001 .*VALID$/m);
  const json = run('list', '-o', 'json');
  assert.equal(json.status, 0);
  const rows = JSON.parse(json.stdout) as { name: string; valid: boolean; reason: string | null }[];
  assert.deepEqual(rows.map((x) => [x.name, x.valid, x.reason]), [['ckpt-000000000002', false, 'file-missing'], ['ckpt-000000000001', true, null]]);
  await store.close();
});
