import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoBatchSize, buildVocabulary, chooseHyperparameters, resolveMaxCaptionLength, scaledLearningRate } from '../../trainer-image/train/hyperparameters.js';
import type { TrainingSpec } from '../../lib/api/types.js';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createDecoder, initialValues } from '../../trainer-image/model/decoder.js';
import { measureBytesPerSample } from '../../trainer-image/train/train-step.js';

const training = {
  batchSize: 'auto',
  maxCaptionLength: 'auto',
  vocabularySize: 'auto',
  minWordCount: 2,
} as unknown as TrainingSpec; // only the fields these functions read

test('auto batch size: the largest power of two that fits the memory budget and leaves 8 steps per epoch', () => {
  assert.equal(autoBatchSize(1_000_000, 100_000_000, 100_000), 64);
  assert.equal(autoBatchSize(1_000, 100_000_000, 1_000), 64, 'limited by the data: 1000 / 8 = 125 -> 64');
  assert.equal(autoBatchSize(1_000, 1e12, 1e9), 256, 'capped');
  assert.equal(autoBatchSize(1e12, 1e6, 1e6), 1, 'never below 1');
});

test('learning rate: 1e-3 scaled linearly with the global batch relative to 64, unless the spec sets it', () => {
  assert.equal(scaledLearningRate(training, 128), 0.002);
  assert.equal(scaledLearningRate({ ...training, learningRate: 0.01 }, 128), 0.01);
});

test('vocabulary keeps words seen minWordCount times; max caption length is the 95th percentile + 2', () => {
  const captions = ['a red circle', 'a red square', 'a blue circle', ...Array.from({ length: 17 }, () => 'a red circle left of a blue square')];
  const vocab = buildVocabulary(training, captions);
  assert.equal(vocab.id('a') > 3, true);
  assert.equal(vocab.size, 4 + 7);
  assert.equal(resolveMaxCaptionLength(training, captions), 8 + 2);
  assert.equal(resolveMaxCaptionLength({ ...training, maxCaptionLength: 12 }, captions), 12);
});

test('chooseHyperparameters measures memory only for an automatic batch size and records what was automatic', async () => {
  let measured = 0;
  const measure = async (): Promise<number> => {
    measured += 1;
    return 10_000;
  };
  const auto = await chooseHyperparameters(training, 10, 50, 1, 4096, 'wasm', measure);
  assert.equal(measured, 1);
  assert.ok(auto.batchSize >= 1 && (auto.batchSize & (auto.batchSize - 1)) === 0);
  assert.deepEqual(new Set(auto.auto), new Set(['batchSize', 'learningRate', 'maxCaptionLength', 'vocabularySize']));
  assert.equal(auto.memory?.perSampleBytes, 10_000);
  const fixed = await chooseHyperparameters({ ...training, batchSize: 16, learningRate: 0.003 }, 10, 50, 2, 4096, 'wasm', measure);
  assert.equal(measured, 1);
  assert.equal(fixed.batchSize, 16);
  assert.equal(fixed.learningRate, 0.003);
});

test('measured memory per sample is positive and grows with the decoder size', async () => {
  await useBackendUnderTest();
  const perSample = async (hiddenDim: number): Promise<number> => {
    const cfg = { cell: 'gru' as const, attention: 'bahdanau' as const, vocabSize: 30, embeddingDim: 8, hiddenDim, attentionDim: 8, featureDim: 16, dropout: 0 };
    const decoder = createDecoder(cfg, initialValues(cfg, 1));
    // Stand-in batch: memory depends on shapes only.
    const batchOf = (size: number) => ({
      features: tf.ones([size, 4, 16]) as tf.Tensor3D,
      inputs: tf.ones([size, 10]) as tf.Tensor2D,
      targets: tf.ones([size, 10]) as tf.Tensor2D,
      mask: tf.ones([size, 10]) as tf.Tensor2D,
    });
    return measureBytesPerSample(decoder, batchOf, () => ({}), { attentionRegularization: 1, labelSmoothing: 0, blockSteps: 1 << 30, checkpointing: false });
  };
  const small = await perSample(8);
  const large = await perSample(64);
  assert.ok(small > 0);
  assert.ok(large > small, `${large} <= ${small}`);
});
