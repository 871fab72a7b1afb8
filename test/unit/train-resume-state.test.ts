import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { createDecoder, disposeDecoder, initialValues, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { Adam, DEFAULT_ADAM } from '../../trainer-image/train/adam.js';
import type { LoadedState } from '../../trainer-image/train/checkpoint-io.js';
import type { TrainConfig } from '../../trainer-image/train/config.js';
import type { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import { freshState, runTraining } from '../../trainer-image/train/loop.js';
import { loopbackGang, loopConfig, maxLen, memoryIO, trainingData, vocabulary } from '../train-fixture.js';
import { packParameters } from '../../trainer-image/model/packed-tensors.js';
import { captureSnapshot, readSnapshot, type RestoredParts } from '../../trainer-image/train/snapshot.js';
import { startOrResume, type Start } from '../../trainer-image/train/resume.js';
import type { Hyperparameters } from '../../trainer-image/train/hyperparameters.js';

await useBackendUnderTest();
const log = createLogger({ test: 'train-resume-state' });
log.level = 'warn';

const data = trainingData();
const [solo] = await loopbackGang(1, log);
const group = solo as ProcessGroup;

function config(): TrainConfig {
  return loopConfig({ epochs: 3, batchSize: 4, learningRate: 0.01, teacherForcing: { schedule: 'linear', start: 1, end: 0.4, decaySteps: 12 }, lrSchedule: { type: 'plateau', patience: 1 }, gradientCheckpointing: { enabled: true, blockSteps: 4 } });
}

const hyper: Hyperparameters = { batchSize: 4, learningRate: 0.01, maxCaptionLength: maxLen, vocabularySize: vocabulary.size, auto: [] };
const cfg = (c: TrainConfig): DecoderConfig => ({ ...c.decoder, vocabSize: vocabulary.size, featureDim: 6 });

function weightsOf(decoder: ReturnType<typeof createDecoder>): Uint8Array {
  return packParameters(decoder);
}

// The trainer's own start: a fresh run takes these hyperparameters, a resumed one whatever its checkpoint holds.
function start(c: TrainConfig, restored?: RestoredParts): Promise<Start> {
  return startOrResume(c, restored, data, async () => {
    assert.equal(restored, undefined, 'a resumed run never re-decides its hyperparameters');
    return hyper;
  }, log);
}

test('stopping at any step and resuming from the checkpoint gives byte-identical final weights', async () => {
  const c = config();
  const full = await start(c);
  const fullOut = await runTraining({ config: c, hyper, decoder: full.decoder, adam: full.adam, data, checkpoints: memoryIO(), group, log, stopRequested: () => false }, full.state);
  assert.equal(fullOut.kind, 'finished');
  assert.equal(fullOut.state.step, 18, '24 examples / batch 4 x 3 epochs');
  const expected = weightsOf(full.decoder);

  for (const stopAt of [1, 6, 11]) {
    const io = memoryIO();
    const { decoder: d1, adam: a1, state } = await start(c);
    let steps = 0;
    const out1 = await runTraining({ config: c, hyper, decoder: d1, adam: a1, data, checkpoints: io, group, log, stopRequested: () => steps++ >= stopAt }, state);
    assert.equal(out1.kind, 'stopped');
    assert.equal(out1.state.step, stopAt, 'the final checkpoint is at the step where the stop arrived');
    const loaded = (await io.latest()) as LoadedState;
    assert.equal((loaded.state as { step: number }).step, stopAt);
    const resumed = await start(c, readSnapshot(loaded.files, loaded.state));
    assert.equal(resumed.state.step, stopAt);
    assert.equal(resumed.adam.t, a1.t, 'Adam resumes at its step count, so its bias correction continues');
    assert.deepEqual(resumed.vocabulary.words, vocabulary.words);
    const { decoder: d2, adam: a2 } = resumed;
    const out2 = await runTraining({ config: c, hyper: resumed.hyper, decoder: d2, adam: a2, data, checkpoints: io, group, log, stopRequested: () => false }, resumed.state);
    assert.equal(out2.kind, 'finished');
    assert.deepEqual(out2.state.history, fullOut.state.history, 'same losses, BLEU and rates epoch by epoch');
    assert.ok(Buffer.from(weightsOf(d2)).equals(Buffer.from(expected)), `weights differ after a stop at step ${stopAt}`);
    for (const d of [d1, d2]) disposeDecoder(d);
    a1.dispose();
    a2.dispose();
  }
  disposeDecoder(full.decoder);
  full.adam.dispose();
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
