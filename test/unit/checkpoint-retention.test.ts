import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { applyRetention, CheckpointReader, CheckpointWriter, checkpointName, openStore, type CheckpointStore } from '../../lib/checkpoint/index.js';
import { writeCheckpoint } from '../../lib/checkpoint/save-job.js';

async function save(store: CheckpointStore, step: number, bleu4: number): Promise<void> {
  await writeCheckpoint(
    store,
    { step, epoch: 0, files: [{ name: 'w.bin', data: new Uint8Array([step, 1, 2]) }], state: {}, metrics: { bleu4, loss: 1 - bleu4 }, parent: null, createdAt: new Date().toISOString() },
    { hashAlgorithm: 'sha256', producer: {} },
  );
}

async function setup(scores: Record<number, number>): Promise<{ dir: string; store: CheckpointStore; reader: CheckpointReader }> {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-retention-'));
  const store = openStore(dir);
  for (const [step, bleu] of Object.entries(scores)) await save(store, Number(step), bleu);
  return { dir, store, reader: new CheckpointReader(store) };
}

const names = (steps: number[]): string[] => steps.map(checkpointName);

test('keeps the last K and the best N by a higher-is-better metric, deletes the rest', async () => {
  const { dir, reader } = await setup({ 1: 0.1, 2: 0.9, 3: 0.3, 4: 0.2, 5: 0.25, 6: 0.05 });
  const r = await applyRetention(reader, { keepLast: 2, keepBest: 1, metric: 'bleu4', higherIsBetter: true });
  assert.equal(r.anchor, checkpointName(6));
  assert.deepEqual(r.deleted.sort(), names([1, 3, 4]));
  assert.deepEqual(await reader.names(), names([6, 5, 2]));
  rmSync(dir, { recursive: true, force: true });
});

test('lower-is-better ranks by the smallest value, and the in-use checkpoint survives', async () => {
  const { dir, reader } = await setup({ 1: 0.1, 2: 0.9, 3: 0.3, 4: 0.2 });
  const r = await applyRetention(reader, { keepLast: 1, keepBest: 1, metric: 'loss', higherIsBetter: false }, { inUse: [checkpointName(1)] });
  assert.deepEqual(r.deleted.sort(), names([3]));
  assert.deepEqual(await reader.names(), names([4, 2, 1]));
  rmSync(dir, { recursive: true, force: true });
});

test('nothing newer than the newest verified checkpoint is touched, and nothing at all without one', async () => {
  const { dir, store, reader } = await setup({ 1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4 });
  // 4 is corrupt (e.g. a save in flight or damaged): the anchor is 3, so 4 stays and only 1 goes.
  await writeFile(join(dir, checkpointName(4), 'w.bin'), new Uint8Array([9, 9, 9]));
  const r = await applyRetention(reader, { keepLast: 2 });
  assert.equal(r.anchor, checkpointName(3));
  assert.deepEqual(r.deleted, names([1]));
  assert.deepEqual(await reader.names(), names([4, 3, 2]));
  // With every checkpoint corrupt there is no anchor, so retention deletes nothing.
  for (const step of [2, 3]) await writeFile(join(dir, checkpointName(step), 'w.bin'), new Uint8Array([9]));
  const none = await applyRetention(reader, { keepLast: 1 });
  assert.equal(none.anchor, undefined);
  assert.deepEqual(none.deleted, []);
  assert.deepEqual(await store.listCheckpoints().then((n) => n.sort()), names([2, 3, 4]));
  rmSync(dir, { recursive: true, force: true });
});

test('invalid checkpoints older than the anchor are deleted', async () => {
  const { dir, store, reader } = await setup({ 1: 0.1, 2: 0.2 });
  await writeFile(join(dir, checkpointName(1), 'MANIFEST.json'), '{');
  await save(store, 3, 0.3);
  const r = await applyRetention(reader, { keepLast: 5 });
  assert.deepEqual(r.deleted, names([1]));
  rmSync(dir, { recursive: true, force: true });
});

test('the writer applies retention after each commit and spares the checkpoint it resumed from', async () => {
  const { dir, store, reader } = await setup({ 1: 0.5 });
  const writer = new CheckpointWriter({ store, registry: new Registry(), whenBusy: 'wait', resumedFrom: checkpointName(1), retention: { keepLast: 2 } });
  for (const step of [2, 3, 4, 5]) await writer.save({ step, epoch: 0, files: [{ name: 'w.bin', data: new Uint8Array([step]) }], state: {} });
  await writer.close();
  assert.deepEqual(await reader.names(), names([5, 4, 1]));
  rmSync(dir, { recursive: true, force: true });
});
