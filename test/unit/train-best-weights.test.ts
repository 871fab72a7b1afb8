// The final outputs hold the best-validated epoch's weights, not merely the last epoch's: the loop keeps
// them, every checkpoint carries them (so a resumed run ends on the same ones), and finalWeights picks them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import type { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import { packParameters } from '../../trainer-image/model/packed-tensors.js';
import type { LoadedState } from '../../trainer-image/train/checkpoint-io.js';
import type { TrainConfig } from '../../trainer-image/train/config.js';
import { finalWeights } from '../../trainer-image/train/final-evaluation.js';
import type { Hyperparameters } from '../../trainer-image/train/hyperparameters.js';
import { runTraining } from '../../trainer-image/train/loop.js';
import { startOrResume, type Start } from '../../trainer-image/train/resume.js';
import { BEST_WEIGHTS_FILE, readSnapshot, WEIGHTS_FILE, type RestoredParts } from '../../trainer-image/train/snapshot.js';
import { metricValue } from '../../trainer-image/train/validation.js';
import { loopbackGang, loopConfig, maxLen, memoryIO, trainingData, vocabulary } from '../train-fixture.js';

await useBackendUnderTest();
const log = createLogger({ test: 'train-best-weights' });
log.level = 'warn';
const data = trainingData();
const [solo] = await loopbackGang(1, log);
const group = solo as ProcessGroup;
const hyper: Hyperparameters = { batchSize: 4, learningRate: 0.3, maxCaptionLength: maxLen, vocabularySize: vocabulary.size, auto: [] };

function start(c: TrainConfig, restored?: RestoredParts): Promise<Start> {
  return startOrResume(c, restored, data, async () => hyper, log);
}

/**
 * The fixture's in-memory store, taking ownership of each saved file's buffer as the real checkpoint writer
 * does (it detaches them): a snapshot that hands out a buffer the loop still needs fails here.
 */
function detachingIO(): ReturnType<typeof memoryIO> {
  const io = memoryIO();
  const keep = io.save.bind(io);
  io.save = async (snapshot, must) => {
    const copy = { ...snapshot, files: snapshot.files.map((f) => ({ name: f.name, data: f.data.slice() })) };
    for (const f of snapshot.files) {
      if (f.data.buffer.byteLength === 0) throw new Error(`${f.name}: buffer already handed to an earlier save`);
      structuredClone(f.data.buffer, { transfer: [f.data.buffer as ArrayBuffer] });
    }
    return keep(copy, must);
  };
  return io;
}

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => a !== undefined && b !== undefined && Buffer.from(a).equals(Buffer.from(b));

for (const metric of ['cider', 'bleu4'] as const) {
  test(`validationMetric ${metric}: the outputs' weights are those of the best epoch, also after a resume`, async () => {
    // A rate far too high for this toy decoder: the metric peaks early and never recovers, so the best
    // epoch is not the last one and keeping the last weights would fail this test.
    const c = loopConfig({ epochs: 6, batchSize: 4, learningRate: 0.3, lrSchedule: { type: 'constant' }, validationMetric: metric });
    const io = detachingIO();
    const full = await start(c);
    const out = await runTraining({ config: c, hyper, decoder: full.decoder, adam: full.adam, data, checkpoints: io, group, log, stopRequested: () => false }, full.state);
    assert.equal(out.kind, 'finished');
    const values = out.state.history.map((r) => metricValue(metric, r) as number);
    assert.equal(values.length, 6);
    const bestEpoch = values.indexOf(Math.max(...values));
    assert.ok(bestEpoch < 5, `the fixture no longer peaks before the last epoch (${values.join(', ')})`);
    // The epoch-end checkpoint of the best epoch holds the weights the loop kept as best.
    const epochEnd = io.saved.find((s) => s.state.history.length === bestEpoch + 1 && s.state.cursor.sample === 0);
    assert.ok(epochEnd, `a checkpoint at the end of epoch ${bestEpoch + 1}`);
    assert.ok(same(out.best, epochEnd.files.find((f) => f.name === WEIGHTS_FILE)?.data), 'best = the weights at the end of the best epoch');
    assert.ok(same(out.best, io.saved.at(-1)?.files.find((f) => f.name === BEST_WEIGHTS_FILE)?.data), 'the last checkpoint carries them');
    assert.ok(!same(out.best, packParameters(full.decoder)), 'they are not the last weights');

    const final = finalWeights(full.decoder, out.state, out.best);
    assert.deepEqual(final.selected, { epoch: bestEpoch + 1, by: 'best', metric, value: values[bestEpoch] });
    assert.ok(same(packParameters(final.decoder), out.best), 'finalWeights builds the decoder from them');

    // Stopped after the first epoch and resumed: the run ends on the same best weights.
    const resumedIO = detachingIO();
    const first = await start(c);
    let steps = 0;
    const stopped = await runTraining({ config: c, hyper, decoder: first.decoder, adam: first.adam, data, checkpoints: resumedIO, group, log, stopRequested: () => steps++ >= 8 }, first.state);
    assert.equal(stopped.kind, 'stopped');
    const loaded = (await resumedIO.latest()) as LoadedState;
    const restored = readSnapshot(loaded.files, loaded.state);
    assert.ok(restored.best, 'the checkpoint holds best weights after a validated epoch');
    const again = await start(c, restored);
    const resumed = await runTraining({ config: c, hyper, decoder: again.decoder, adam: again.adam, data, checkpoints: resumedIO, group, log, stopRequested: () => false }, again.state, restored.best);
    assert.ok(same(resumed.best, out.best), 'a resumed run ends on the uninterrupted run\'s best weights');
  });
}

test('without a validation metric the outputs hold the last epoch\'s weights', async () => {
  // The fixture's store keeps a best checkpoint, which validation refuses without a metric: set it after.
  const c = loopConfig({ epochs: 2, batchSize: 4, lrSchedule: { type: 'constant' } });
  c.training.validationMetric = 'none';
  const s = await start(c);
  const out = await runTraining({ config: c, hyper, decoder: s.decoder, adam: s.adam, data, checkpoints: memoryIO(), group, log, stopRequested: () => false }, s.state);
  assert.equal(out.best, undefined);
  const final = finalWeights(s.decoder, out.state, out.best);
  assert.equal(final.decoder, s.decoder);
  assert.deepEqual(final.selected, { epoch: 2, by: 'last', metric: 'none' });
});
