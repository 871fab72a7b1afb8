import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { CheckpointReader, CheckpointWriter, openStore, type Snapshot } from '../../lib/checkpoint/index.js';

function seeded(seed: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function snapshot(step: number, sizes = [300_000, 1_500_000, 0]): Snapshot {
  return {
    step,
    epoch: Math.floor(step / 10),
    files: sizes.map((n, i) => ({ name: `shard-${i}.bin`, data: seeded(step * 31 + i, n) })),
    state: { step, rng: [step, 7], cursor: { epoch: 1, index: step * 4 } },
    metrics: { loss: 1 / (step + 1), bleu4: step / 100 },
  };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'captionrun-ckpt-'));
}

test('a saved checkpoint loads back bit-exact, with its state and metrics', async () => {
  const dir = tempDir();
  const registry = new Registry();
  const store = openStore(dir);
  const writer = new CheckpointWriter({ store, registry, hashAlgorithm: 'blake3' });
  const snap = snapshot(5);
  const expected = snap.files.map((f) => f.data.slice());
  const r = await writer.save(snap);
  assert.equal(r.accepted, true);
  if (!r.accepted) return;
  assert.equal(snap.files[1]?.data.byteLength, 0, 'the shard buffer was handed over, not copied');
  const manifest = await r.committed;
  await writer.close();
  assert.equal(manifest.step, 5);
  assert.equal(manifest.hashAlgorithm, 'blake3');
  const { checkpoint, invalid } = await new CheckpointReader(store).loadLatest();
  assert.deepEqual(invalid, []);
  assert.ok(checkpoint);
  assert.equal(checkpoint.name, 'ckpt-000000000005');
  expected.forEach((data, i) => assert.ok(Buffer.from(data).equals(checkpoint.files.get(`shard-${i}.bin`) ?? new Uint8Array(1)), `shard ${i}`));
  assert.deepEqual(checkpoint.state, { step: 5, rng: [5, 7], cursor: { epoch: 1, index: 20 } });
  assert.deepEqual(checkpoint.manifest.metrics, { loss: 1 / 6, bleu4: 0.05 });
  const saved = await registry.getSingleMetric('captionrun_checkpoint_save_bytes_total')?.get();
  assert.ok((saved?.values[0]?.value ?? 0) > 1_800_000);
  rmSync(dir, { recursive: true, force: true });
});

test('whenBusy=skip skips and counts a save requested while one is in flight; wait waits for it', async () => {
  const dir = tempDir();
  const registry = new Registry();
  const store = openStore(dir);
  const skipper = new CheckpointWriter({ store, registry, whenBusy: 'skip' });
  const first = await skipper.save(snapshot(1, [4_000_000]));
  const second = await skipper.save(snapshot(2, [1000]));
  assert.equal(first.accepted, true);
  assert.deepEqual(second, { accepted: false, reason: 'busy' });
  await skipper.flush();
  const third = await skipper.save(snapshot(3, [1000]));
  assert.equal(third.accepted, true);
  await skipper.close();
  const skipped = await registry.getSingleMetric('captionrun_checkpoint_saves_skipped_total')?.get();
  assert.equal(skipped?.values[0]?.value, 1);

  const waiter = new CheckpointWriter({ store, registry, whenBusy: 'wait' });
  const a = await waiter.save(snapshot(4, [4_000_000]));
  const b = await waiter.save(snapshot(5, [1000]));
  assert.equal(a.accepted && b.accepted, true);
  await waiter.close();
  const waited = await registry.getSingleMetric('captionrun_checkpoint_saves_waited_total')?.get();
  assert.equal(waited?.values[0]?.value, 1);
  const names = (await new CheckpointReader(store).list()).filter((c) => c.valid).map((c) => c.name);
  assert.deepEqual(names, ['ckpt-000000000005', 'ckpt-000000000004', 'ckpt-000000000003', 'ckpt-000000000001']);
  rmSync(dir, { recursive: true, force: true });
});

test('each manifest names the previous save as its parent, starting from the checkpoint resumed from', async () => {
  const dir = tempDir();
  const writer = new CheckpointWriter({ store: openStore(dir), registry: new Registry(), resumedFrom: 'ckpt-000000000007', whenBusy: 'wait' });
  const parents: (string | null)[] = [];
  for (const step of [8, 9]) {
    const r = await writer.save(snapshot(step, [10]));
    if (r.accepted) parents.push((await r.committed).parent);
  }
  await writer.close();
  assert.deepEqual(parents, ['ckpt-000000000007', 'ckpt-000000000008']);
  rmSync(dir, { recursive: true, force: true });
});

test('bad snapshots are refused before anything is written', async () => {
  const dir = tempDir();
  const writer = new CheckpointWriter({ store: openStore(dir), registry: new Registry() });
  await assert.rejects(writer.save({ ...snapshot(1, []), files: [{ name: '../x', data: new Uint8Array(1) }] }), /cannot be a shard name/);
  await assert.rejects(writer.save({ ...snapshot(1, []), files: [{ name: 'state.json', data: new Uint8Array(1) }] }), /cannot be a shard name/);
  await assert.rejects(writer.save({ ...snapshot(1, []), step: -1 }), /step/);
  await assert.rejects(writer.save({ ...snapshot(1, []), metrics: { loss: Number.NaN } }), /finite/);
  const reused = snapshot(2, [1000]);
  await writer.save(reused);
  await assert.rejects(writer.save({ ...reused, step: 3 }), /detached/);
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
});
