import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { validateRun } from '../../lib/api/validate.js';
import { Vocabulary } from '../../trainer-image/data/tokenizer.js';
import { createDecoder, disposeDecoder, initialValues, parameterShapes, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { Adam, DEFAULT_ADAM } from '../../trainer-image/train/adam.js';
import type { CheckpointIO, LoadedState } from '../../trainer-image/train/checkpoint-io.js';
import { trainConfig, type TrainConfig } from '../../trainer-image/train/config.js';
import type { FeatureTable } from '../../trainer-image/train/features.js';
import { freshState, runTraining, type TrainingData } from '../../trainer-image/train/loop.js';
import { examplesOf } from '../../trainer-image/train/prepare-data.js';
import { CounterRng } from '../../trainer-image/train/rng.js';
import { captureSnapshot, packTensors, readSnapshot, restoreAdam, type Snapshot } from '../../trainer-image/train/snapshot.js';
import type { Hyperparameters } from '../../trainer-image/train/hyperparameters.js';

await useBackendUnderTest();
const log = createLogger({ test: 'train-resume-state' });
log.level = 'warn';

// Stand-in features (random) and a handful of captions: resume exactness does not depend on what they mean.
const captions = ['a red circle', 'a blue square left of a red circle', 'a small green triangle', 'a large white square above a red circle'];
const vocabulary = Vocabulary.build(captions);
const maxLen = 10;
function table(n: number, seed: number): FeatureTable {
  const rng = new CounterRng(seed, 77);
  return {
    encoder: 'random-stand-in',
    regions: 4,
    channels: 6,
    grid: { rows: 2, cols: 2 },
    ids: Array.from({ length: n }, (_, i) => `img-${i}`),
    features: Array.from({ length: n }, () => Float32Array.from({ length: 24 }, () => rng.uniform())),
  };
}
function items(n: number): { captions: string[] }[] {
  return Array.from({ length: n }, (_, i) => ({ captions: [captions[i % 4] as string, captions[(i + 1) % 4] as string] }));
}
const trainTable = table(12, 1);
const valTable = table(4, 2);
const data: TrainingData = {
  vocabulary,
  // examplesOf reads only `captions` of each item.
  train: { table: trainTable, examples: examplesOf(trainTable, items(12) as never, vocabulary, maxLen) },
  val: { table: valTable, references: items(4).map((it) => it.captions), examples: examplesOf(valTable, items(4) as never, vocabulary, maxLen) },
};

function config(): TrainConfig {
  const r = validateRun({
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name: 'resume-state' },
    spec: {
      dataset: { format: 'synthetic' },
      model: { decoder: 'lstm', attention: 'luong', embeddingDim: 8, hiddenDim: 8, attentionDim: 8, dropout: 0.3 },
      training: { epochs: 3, batchSize: 4, learningRate: 0.01, teacherForcingRatio: 0.7, lrSchedule: { type: 'plateau', patience: 1 }, gradientCheckpointing: { enabled: true, blockSteps: 4 } },
      checkpoint: { store: { local: { path: '/unused' } }, everySteps: 2 },
    },
  });
  assert.ok(r.ok, JSON.stringify(r.issues));
  return trainConfig(r.run);
}

/** An in-memory CheckpointIO that remembers every snapshot. */
function memoryIO(): CheckpointIO & { saved: Snapshot[] } {
  const saved: Snapshot[] = [];
  return {
    uri: 'memory://',
    saved,
    async checkWritable() {},
    async latest(): Promise<LoadedState | undefined> {
      const s = saved[saved.length - 1];
      return s && { name: `ckpt-${s.step}`, files: new Map(s.files.map((f) => [f.name, f.data])), state: JSON.parse(JSON.stringify(s.state)) };
    },
    async save(snapshot) {
      saved.push(snapshot);
      return true;
    },
    async flush() {},
    async close() {},
  };
}

const hyper: Hyperparameters = { batchSize: 4, learningRate: 0.01, maxCaptionLength: maxLen, vocabularySize: vocabulary.size, auto: [] };
const cfg = (c: TrainConfig): DecoderConfig => ({ ...c.decoder, vocabSize: vocabulary.size, featureDim: 6 });

function weightsOf(decoder: ReturnType<typeof createDecoder>): Uint8Array {
  return packTensors(parameterShapes(decoder.cfg).map(([n]) => decoder.params.get(n) as tf.Tensor));
}

test('stopping at any step and resuming from the checkpoint gives byte-identical final weights', async () => {
  const c = config();
  const full = createDecoder(cfg(c), initialValues(cfg(c), c.training.seed));
  const fullAdam = new Adam(full.params, { ...DEFAULT_ADAM, clipNorm: c.training.gradientClipNorm });
  const fullOut = await runTraining({ config: c, hyper, decoder: full, adam: fullAdam, data, checkpoints: memoryIO(), log, stopRequested: () => false }, freshState(c, hyper, full));
  assert.equal(fullOut.kind, 'finished');
  assert.equal(fullOut.state.step, 18, '24 examples / batch 4 x 3 epochs');
  const expected = weightsOf(full);

  for (const stopAt of [1, 6, 11]) {
    const io = memoryIO();
    const d1 = createDecoder(cfg(c), initialValues(cfg(c), c.training.seed));
    const a1 = new Adam(d1.params, { ...DEFAULT_ADAM, clipNorm: c.training.gradientClipNorm });
    let steps = 0;
    const out1 = await runTraining({ config: c, hyper, decoder: d1, adam: a1, data, checkpoints: io, log, stopRequested: () => steps++ >= stopAt }, freshState(c, hyper, d1));
    assert.equal(out1.kind, 'stopped');
    assert.equal(out1.state.step, stopAt, 'the final checkpoint is at the step where the stop arrived');
    const loaded = (await io.latest()) as LoadedState;
    assert.equal((loaded.state as { step: number }).step, stopAt);
    const parts = readSnapshot(loaded.files, loaded.state);
    const d2 = createDecoder(parts.state.decoder, parts.weights);
    const a2 = new Adam(d2.params, { ...DEFAULT_ADAM, clipNorm: c.training.gradientClipNorm });
    restoreAdam(a2, parts.adamM, parts.adamV, parts.state.adamSteps);
    const out2 = await runTraining({ config: c, hyper, decoder: d2, adam: a2, data, checkpoints: io, log, stopRequested: () => false }, parts.state);
    assert.equal(out2.kind, 'finished');
    assert.deepEqual(out2.state.history, fullOut.state.history, 'same losses, BLEU and rates epoch by epoch');
    assert.ok(Buffer.from(weightsOf(d2)).equals(Buffer.from(expected)), `weights differ after a stop at step ${stopAt}`);
    for (const d of [d1, d2]) disposeDecoder(d);
    a1.dispose();
    a2.dispose();
  }
});

test('a snapshot round trip restores weights and Adam moments bit for bit', () => {
  const c = config();
  const d = createDecoder(cfg(c), initialValues(cfg(c), 5));
  const adam = new Adam(d.params, DEFAULT_ADAM);
  const grads = new Map([...d.params].map(([n, p]) => [n, tf.onesLike(p)]));
  adam.apply(grads, 0.1);
  const snap = captureSnapshot(d, adam, vocabulary, freshState(c, hyper, d));
  const parts = readSnapshot(new Map(snap.files.map((f) => [f.name, f.data])), JSON.parse(JSON.stringify(snap.state)));
  for (const [name, p] of d.params) {
    assert.deepEqual(parts.weights.get(name), p.dataSync());
    assert.deepEqual(parts.adamM.get(name), (adam.m.get(name) as tf.Variable).dataSync());
  }
  assert.deepEqual(parts.vocabulary.words, vocabulary.words);
  assert.throws(() => readSnapshot(new Map(snap.files.map((f) => [f.name, f.name === 'decoder.f32' ? f.data.subarray(4) : f.data])), snap.state), /bytes/);
});

test('a decoder and its Adam state, once disposed, leave no tensor behind (benches and resumes create several)', () => {
  const cfg: DecoderConfig = { cell: 'lstm', attention: 'luong', vocabSize: 20, embeddingDim: 6, hiddenDim: 8, attentionDim: 5, featureDim: 7, dropout: 0 };
  const before = tf.memory();
  const decoder = createDecoder(cfg, initialValues(cfg, 1));
  const adam = new Adam(decoder.params, DEFAULT_ADAM);
  assert.ok(tf.memory().numTensors > before.numTensors);
  adam.dispose();
  disposeDecoder(decoder);
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numBytes, before.numBytes);
});
