import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { InvalidInputError } from '../../lib/errors.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { saveLayersModel } from '../layers-model.js';
import { buildDenseNet121, densenetMapSize, loadDenseNet121 } from '../../trainer-image/model/densenet121.js';
import { modelWeightsDigest } from '../../trainer-image/model/weights-io.js';
import { loadEncoder } from '../../trainer-image/model/encoder.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A temporary tfjs layers directory holding `model`. */
async function saveLayersModelDir(model: tf.LayersModel): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'densenet-'));
  dirs.push(dir);
  await saveLayersModel(model, dir);
  return dir;
}

test('DenseNet121 has the layers and parameters of Keras DenseNet121(include_top=False)', async () => {
  await useBackendUnderTest();
  const model = buildDenseNet121();
  assert.equal(model.layers.length, 427);
  assert.equal(model.countParams(), 7_037_504);
  assert.deepEqual(model.outputs[0]?.shape, [null, 7, 7, 1024]);
  assert.equal(model.getLayer('conv5_block16_concat').outputShape.at(-1), 1024);
  assert.deepEqual([224, 128, 64].map(densenetMapSize), [7, 4, 2]);
  model.dispose();
});

test('weights load by Keras name from a tfjs layers directory; the digest names them', async () => {
  await useBackendUnderTest();
  const source = buildDenseNet121(64, 42);
  const dir = await saveLayersModelDir(source);
  const { model, digest } = await loadDenseNet121({ weights: dir, inputSize: 64 });
  assert.equal(digest, modelWeightsDigest(source));
  const other = await loadDenseNet121({ weights: 'random', inputSize: 64, seed: 7 });
  assert.notEqual(other.digest, digest);
  const again = await loadDenseNet121({ weights: 'random', inputSize: 64, seed: 7 });
  assert.equal(again.digest, other.digest, 'seeded random weights are reproducible');
  for (const m of [source, model, other.model, again.model]) m.dispose();

  const shard = join(dir, (await readdir(dir)).find((f) => f.endsWith('.bin')) as string);
  await truncate(shard, 1000);
  await assert.rejects(loadDenseNet121({ weights: `file://${dir}`, inputSize: 64 }), (e: unknown) => e instanceof InvalidInputError && /truncated/.test(e.message));
});

test('no silent random weights: pretrained and missing weights are clear errors; random is logged as such', async () => {
  await useBackendUnderTest();
  await assert.rejects(loadDenseNet121({ weights: 'pretrained' }), (e: unknown) => e instanceof InvalidInputError && /no pretrained DenseNet121/.test(e.message));
  await assert.rejects(loadDenseNet121({ weights: '/nonexistent/densenet' }), (e: unknown) => e instanceof InvalidInputError && /model.json/.test(e.describe()));

  const lines: string[] = [];
  const log = createLogger({}, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const encoder = await loadEncoder({ encoder: 'densenet121', encoderWeights: 'random', inputSize: 64 }, log);
  const entry = JSON.parse(lines[0] as string) as { level: string; randomInit: boolean; msg: string };
  assert.equal(entry.level, 'warn');
  assert.equal(entry.randomInit, true);
  assert.match(entry.msg, /RANDOM weights/);
  const out = await encoder.encode(new Uint8Array(64 * 64 * 3).fill(100), 1);
  assert.equal(out.map.length, 4 * 1024);
  assert.equal(out.pooled.length, 1024);
  encoder.dispose();
});
