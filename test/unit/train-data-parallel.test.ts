// Data-parallel training in the loop itself: ranks of one gang run in this process over loopback TCP (the
// same ProcessGroup the trainer uses), each with its own decoder, optimizer and checkpoint store.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import type { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import { createDecoder, disposeDecoder, initialValues, type Decoder, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { Adam, DEFAULT_ADAM } from '../../trainer-image/train/adam.js';
import { rankSlice } from '../../trainer-image/train/batches.js';
import type { TrainConfig } from '../../trainer-image/train/config.js';
import type { Hyperparameters } from '../../trainer-image/train/hyperparameters.js';
import { freshState, runTraining, type LoopOutcome } from '../../trainer-image/train/loop.js';
import { stepNoise } from '../../trainer-image/train/noise.js';
import { packParameters } from '../../trainer-image/model/packed-tensors.js';
import { readSnapshot, restoreAdam, type TrainerState } from '../../trainer-image/train/snapshot.js';
import { loopbackGang, loopConfig, maxLen, memoryIO, trainingData, vocabulary } from '../train-fixture.js';

await useBackendUnderTest();
const log = createLogger({ test: 'train-data-parallel' });
log.level = 'warn';

// 24 images x 2 captions = 48 examples: 6 global batches of 8 per epoch.
const data = trainingData(24);
const config: TrainConfig = loopConfig({ epochs: 3, batchSize: 4, learningRate: 0.01, teacherForcingRatio: 0.7, gradientCheckpointing: { enabled: true, blockSteps: 4 }, lrSchedule: { type: 'cosine', warmupSteps: 2 } });
const decoderCfg: DecoderConfig = { ...config.decoder, vocabSize: vocabulary.size, featureDim: 6 };
const hyper = (batchSize: number): Hyperparameters => ({ batchSize, learningRate: 0.01, maxCaptionLength: maxLen, vocabularySize: vocabulary.size, auto: [] });
const groups: ProcessGroup[] = [];
after(async () => {
  for (const g of groups) await g.close();
});

async function gang(n: number): Promise<ProcessGroup[]> {
  const g = await loopbackGang(n, log, `dp-${groups.length}`);
  groups.push(...g);
  return g;
}

interface RankRun {
  decoder: Decoder;
  outcome: LoopOutcome;
  io: ReturnType<typeof memoryIO>;
}

/** Trains one gang of `group.length` ranks, each from `from` (a checkpoint) or fresh, concurrently. */
async function trainGang(group: ProcessGroup[], batchSize: number, opts: { from?: ReturnType<typeof memoryIO>; stopAt?: Map<number, number> } = {}): Promise<RankRun[]> {
  return Promise.all(
    group.map(async (g) => {
      const io = memoryIO();
      let state: TrainerState;
      let decoder: Decoder;
      const adam = (d: Decoder): Adam => new Adam(d.params, { ...DEFAULT_ADAM, clipNorm: config.training.gradientClipNorm });
      let a: Adam;
      const loaded = await opts.from?.latest();
      if (loaded) {
        const parts = readSnapshot(loaded.files, loaded.state);
        decoder = createDecoder(parts.state.decoder, parts.weights);
        a = adam(decoder);
        restoreAdam(a, parts.adamM, parts.adamV, parts.state.adamSteps);
        state = parts.state;
      } else {
        decoder = createDecoder(decoderCfg, initialValues(decoderCfg, config.training.seed));
        a = adam(decoder);
        state = freshState({ ...config, distributed: { ...config.distributed, worldSize: group.length } }, hyper(batchSize), decoder);
      }
      let calls = 0;
      const stopAt = opts.stopAt?.get(g.rank);
      const outcome = await runTraining(
        { config, hyper: hyper(batchSize), decoder, adam: a, data, checkpoints: io, group: g, log, stopRequested: () => stopAt !== undefined && ++calls > stopAt },
        state,
      );
      a.dispose();
      return { decoder, outcome, io };
    }),
  );
}

function weights(d: Decoder): Float32Array {
  return new Float32Array(packParameters(d).buffer);
}

function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    norm = Math.max(norm, Math.abs(b[i] as number));
  }
  return diff / norm;
}

function dispose(runs: RankRun[]): void {
  for (const r of runs) disposeDecoder(r.decoder);
}

test("each rank's slice and noise are exactly its rows of the one-process global batch", () => {
  const ranks = [0, 1, 2].map((r) => rankSlice(40, 4, r));
  assert.deepEqual(ranks, [{ start: 40, end: 44 }, { start: 44, end: 48 }, { start: 48, end: 52 }]);
  const shape = { steps: 5, hidden: 3 };
  const global = stepNoise(7, 11, { ...shape, batch: 8 }, 0.3, 0.6);
  const globalDropout = global.dropout?.arraySync() as number[][][];
  const globalCoins = global.teacherCoins?.arraySync() as number[][];
  for (const rank of [0, 1]) {
    const mine = stepNoise(7, 11, { ...shape, batch: 4, offset: rank * 4, globalBatch: 8 }, 0.3, 0.6);
    assert.deepEqual(mine.dropout?.arraySync(), globalDropout.map((t) => t.slice(rank * 4, rank * 4 + 4)), `rank ${rank} dropout`);
    assert.deepEqual(mine.teacherCoins?.arraySync(), globalCoins.slice(rank * 4, rank * 4 + 4), `rank ${rank} coins`);
    mine.dropout?.dispose();
    mine.teacherCoins?.dispose();
  }
  global.dropout?.dispose();
  global.teacherCoins?.dispose();
});

test('2 ranks x batch 4 end with the weights of 1 rank x batch 8, bitwise identical on both ranks; only rank 0 writes', async () => {
  const [one] = await trainGang(await gang(1), 8);
  const two = await trainGang(await gang(2), 4);
  const [r0, r1] = two as [RankRun, RankRun];
  assert.equal(one?.outcome.state.step, 18);
  for (const r of two) assert.equal(r.outcome.state.step, 18);
  assert.ok(Buffer.from(weights(r0.decoder).buffer).equals(Buffer.from(weights(r1.decoder).buffer)), 'the ranks hold bitwise-identical weights');
  const rel = relativeDifference(weights(r0.decoder), weights((one as RankRun).decoder));
  // Not bitwise: one process sums the 8 samples' gradients inside each kernel, two ranks sum two halves of
  // 4 and then add them, so float32 rounding differs in the last bits.
  assert.ok(rel < 1e-5, `weights differ from the one-process run by ${rel} (relative to the largest weight)`);
  assert.deepEqual(r0.io.saved.map((s) => s.step), (one as RankRun).io.saved.map((s) => s.step), 'rank 0 checkpoints when one process would');
  assert.equal(r1.io.saved.length, 0, 'rank 1 never writes a checkpoint');
  for (const [a, b] of r0.outcome.state.history.map((h, i) => [h, (one as RankRun).outcome.state.history[i]] as const)) {
    assert.equal(a.valBleu4, b?.valBleu4, 'validation is sharded but scores the same captions');
    assert.ok(Math.abs(a.trainLoss - (b?.trainLoss ?? Number.NaN)) < 1e-5, `epoch loss ${a.trainLoss} vs ${b?.trainLoss}`);
  }
  dispose([one as RankRun, ...two]);
});

test('a SIGTERM on rank 1 alone stops both ranks after the same step; rank 0 writes the final checkpoint, and resuming on 2 ranks ends bitwise where an undisturbed run ends', async () => {
  const undisturbed = await trainGang(await gang(2), 4);
  const stopped = await trainGang(await gang(2), 4, { stopAt: new Map([[1, 2]]) });
  for (const r of stopped) assert.deepEqual([r.outcome.kind, r.outcome.state.step], ['stopped', 3], 'the stop request of step 3 reaches every rank through its all-reduce');
  const [s0, s1] = stopped as [RankRun, RankRun];
  assert.equal(s0.io.saved.at(-1)?.step, 3, 'rank 0 wrote the final checkpoint');
  assert.equal(s1.io.saved.length, 0);
  const resumed = await trainGang(await gang(2), 4, { from: s0.io });
  assert.equal(resumed[0]?.outcome.state.step, 18);
  assert.ok(Buffer.from(weights((resumed[0] as RankRun).decoder).buffer).equals(Buffer.from(weights((undisturbed[0] as RankRun).decoder).buffer)), 'resumed = undisturbed, bit for bit');
  dispose([...undisturbed, ...stopped, ...resumed]);
});

test('elastic resume: a 2-rank checkpoint continues on 1 rank and a 1-rank checkpoint on 2, from the same example', async () => {
  const stopped2 = await trainGang(await gang(2), 4, { stopAt: new Map([[0, 2]]) });
  const at = (stopped2[0] as RankRun).io.saved.at(-1)?.state;
  assert.deepEqual([at?.step, at?.cursor, at?.worldSize], [3, { epoch: 0, sample: 24 }, 2]);
  const on1 = await trainGang(await gang(1), 4, { from: (stopped2[0] as RankRun).io });
  // 24 examples left in epoch 0 at 4 per step, then 2 epochs of 12 steps.
  assert.equal(on1[0]?.outcome.kind, 'finished');
  assert.equal(on1[0]?.outcome.state.step, 3 + 6 + 24);
  assert.equal(on1[0]?.outcome.state.worldSize, 1);
  assert.equal(on1[0]?.outcome.state.history.length, 3);

  const stopped1 = await trainGang(await gang(1), 4, { stopAt: new Map([[0, 5]]) });
  const at1 = (stopped1[0] as RankRun).io.saved.at(-1)?.state;
  assert.deepEqual([at1?.step, at1?.cursor], [5, { epoch: 0, sample: 20 }]);
  const on2 = await trainGang(await gang(2), 4, { from: (stopped1[0] as RankRun).io });
  // floor((48 - 20) / 8) = 3 global batches left in epoch 0, then 2 epochs of 6.
  for (const r of on2) assert.equal(r.outcome.state.step, 5 + 3 + 12);
  assert.ok(Buffer.from(weights((on2[0] as RankRun).decoder).buffer).equals(Buffer.from(weights((on2[1] as RankRun).decoder).buffer)));
  assert.ok((on2[0]?.outcome.state.history.at(-1)?.trainLoss ?? Infinity) < (on2[0]?.outcome.state.history[0]?.trainLoss ?? 0), 'training goes on: the loss falls');
  dispose([...stopped2, ...on1, ...stopped1, ...on2]);
});
