// Proves the nsfwjs InceptionV3 weights are wired right: on a real photo our loader's classifier gives the
// same class scores as nsfwjs's own classify(), and our trunk's map and pooled vector equal the classifier's
// own mixed10 and average_pooling2d_10 outputs. A handful of forward passes only.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import * as nsfwjs from 'nsfwjs';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { loadEncoder } from '../../trainer-image/model/encoder.js';
import { decodeToRgb } from '../../trainer-image/model/image-pipeline.js';
import { inceptionMapSize, loadInceptionV3Classifier, nsfwjsInceptionArtifacts } from '../../trainer-image/model/inception-v3.js';

const PHOTO = '/work/shared/data/flickr8k-sample/Images/1000268201_693b08cb0e.jpg';
const NSFWJS_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

test('map sizes follow the valid-padded reductions', () => {
  assert.deepEqual([299, 175, 139, 75].map(inceptionMapSize), [8, 4, 3, 1]);
});

test('InceptionV3 from nsfwjs: same class scores as nsfwjs classify; trunk map = mixed10, pooled = its 8x8 average pool', async () => {
  await useBackendUnderTest();
  const bytes = await readFile(PHOTO);
  const pixels = await decodeToRgb({ kind: 'encoded', data: bytes, path: PHOTO }, 299);

  const reference = await nsfwjs.load('InceptionV3', { size: 299 });
  const image = tf.tensor3d(pixels, [299, 299, 3], 'int32');
  const theirs = await reference.classify(image, 5);
  reference.dispose();

  const classifier = await loadInceptionV3Classifier();
  const probe = tf.model({
    inputs: classifier.inputs,
    outputs: ['mixed10', 'average_pooling2d_10', 'dense_3'].map((n) => classifier.getLayer(n).output as tf.SymbolicTensor),
  });
  const outs = probe.predict(tf.div(tf.cast(image, 'float32'), 255).expandDims(0)) as tf.Tensor[];
  const [mixed10, avgPool, scores] = (await Promise.all(outs.map((t) => t.data()))) as Float32Array[];
  assert.ok(mixed10 && avgPool && scores);
  for (const { className, probability } of theirs) {
    assert.ok(Math.abs((scores[NSFWJS_CLASSES.indexOf(className)] as number) - probability) < 1e-5, `${className}: ${probability}`);
  }
  assert.equal(theirs[0]?.className, 'Neutral');

  const encoder = await loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained' });
  assert.equal(encoder.weightsDigest, (await nsfwjsInceptionArtifacts()).digest);
  assert.match(encoder.weightsDigest, /^[0-9a-f]{64}$/);
  const { map, pooled } = await encoder.encode(pixels, 1);
  assert.equal(map.length, 64 * 2048);
  assert.equal(pooled.length, 2048);
  assert.ok(maxAbsDiff(map, mixed10) < 1e-4);
  assert.ok(maxAbsDiff(pooled, avgPool) < 1e-4);
  assert.equal(encoder.imagesEncoded, 1);
  tf.dispose([image, ...outs]);
  classifier.dispose();
  encoder.dispose();
});

test('a smaller input gives a smaller map with the same channels', async () => {
  await useBackendUnderTest();
  const encoder = await loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 139 });
  assert.equal(encoder.mapSize, 3);
  const out = await encoder.encode(new Uint8Array(2 * 139 * 139 * 3).fill(128), 2);
  assert.equal(out.map.length, 2 * 9 * 2048);
  assert.equal(out.pooled.length, 2 * 2048);
  // Same image twice in a batch: same features (batch independence of a frozen, inference-mode network).
  assert.ok(maxAbsDiff(out.pooled.subarray(0, 2048), out.pooled.subarray(2048)) < 1e-5);
  await assert.rejects(loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'random' }), /only "pretrained"/);
  encoder.dispose();
});
