import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createDecoder, embed, initialState, initialValues, oneHot, paramRecord, precomputeKeys, projectRegions, step, stepParameters, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { captionLoss, type CaptionBatch } from '../../trainer-image/model/caption-loss.js';
import { stepNoise } from '../../trainer-image/train/noise.js';
import { CounterRng } from '../../trainer-image/util/rng.js';

await useBackendUnderTest();

// Random stand-in features and captions: gradient equality does not depend on what the data means.
function randomBatch(batch: number, steps: number, regions: number, channels: number, vocab: number): CaptionBatch {
  const rng = new CounterRng(3, 99);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 1 + rng.below(vocab - 1));
  const lengths = Array.from({ length: batch }, () => 2 + rng.below(steps - 1));
  const mask = lengths.flatMap((len) => Array.from({ length: steps }, (_, t) => (t < len ? 1 : 0)));
  return {
    features: tf.tensor3d(Array.from({ length: batch * regions * channels }, () => rng.uniform()), [batch, regions, channels]),
    inputs: tf.tensor2d(ids(batch * steps), [batch, steps]),
    targets: tf.tensor2d(ids(batch * steps), [batch, steps]),
    mask: tf.tensor2d(mask, [batch, steps]),
  };
}

for (const cell of ['gru', 'lstm'] as const) {
  for (const [attention, teacherForcing] of [['bahdanau', 0.6], ['luong', 0.6], ['bahdanau', 1], ['luong', 1]] as const) {
    const sampling = teacherForcing < 1 ? 'scheduled sampling on' : 'teacher forcing only';
    test(`${cell}/${attention}: checkpointed gradients equal plain ones (dropout on, ${sampling})`, () => {
      const cfg: DecoderConfig = { cell, attention, vocabSize: 12, embeddingDim: 6, hiddenDim: 8, attentionDim: 5, featureDim: 7, dropout: 0.3 };
      const decoder = createDecoder(cfg, initialValues(cfg, 11));
      const batch = randomBatch(3, 7, 4, 7, 12);
      const noise = stepNoise(5, 2, { steps: 7, batch: 3, hidden: 8 }, 0.3, teacherForcing);
      const p = paramRecord(decoder);
      const vars = [...decoder.params.values()];
      const gradsOf = (checkpointing: boolean): Map<string, Float32Array> => {
        const { grads, value } = tf.variableGrads(
          () => captionLoss(cfg, p, batch, noise, { attentionRegularization: 1, labelSmoothing: 0, blockSteps: 3, checkpointing }).total,
          vars,
        );
        value.dispose();
        return new Map(Object.entries(grads).map(([k, g]) => [k, g.dataSync() as Float32Array]));
      };
      const plain = gradsOf(false);
      const recomputed = gradsOf(true);
      assert.equal(recomputed.size, vars.length);
      let maxAbs = 0;
      let maxDiff = 0;
      for (const [name, g] of plain) {
        const r = recomputed.get(name) as Float32Array;
        for (let i = 0; i < g.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(g[i] as number));
          maxDiff = Math.max(maxDiff, Math.abs((g[i] as number) - (r[i] as number)));
        }
      }
      assert.ok(maxAbs > 1e-3, 'gradients are not trivially zero');
      assert.ok(maxDiff <= 1e-5 * Math.max(1, maxAbs), `max difference ${maxDiff}`);
    });
  }
}

// The loss batches the embedding, output projection and cross-entropy of a whole block of steps, with custom
// gradients for the embedding and the cross-entropy; unrolled one step at a time through the decoding path
// (step(), tf.logSoftmax and tfjs's own gradients), the same model must give the same loss and gradients.
for (const cell of ['gru', 'lstm'] as const) {
  for (const attention of ['bahdanau', 'luong'] as const) {
    test(`${cell}/${attention}: the block-batched loss and its gradients equal a step-by-step unroll through step()`, () => {
      const cfg: DecoderConfig = { cell, attention, vocabSize: 12, embeddingDim: 6, hiddenDim: 8, attentionDim: 5, featureDim: 7, dropout: 0 };
      const decoder = createDecoder(cfg, initialValues(cfg, 13));
      const p = paramRecord(decoder);
      const vars = [...decoder.params.values()];
      const batch = randomBatch(3, 7, 4, 7, 12);
      const [size, steps] = batch.inputs.shape;
      const blockedLoss = (): tf.Scalar => captionLoss(cfg, p, batch, {}, { attentionRegularization: 0, labelSmoothing: 0, blockSteps: 3, checkpointing: false }).crossEntropy;
      const unrolledLoss = (): tf.Scalar => {
        const projected = projectRegions(p, batch.features);
        const keys = precomputeKeys(cfg, p, projected);
        let state = initialState(cfg, p, projected);
        const terms: tf.Scalar[] = [];
        for (let t = 0; t < steps; t++) {
          const col = (x: tf.Tensor2D): tf.Tensor1D => tf.reshape(tf.slice(x, [0, t], [size, 1]), [size]);
          const r = step(cfg, stepParameters(cfg, p), projected, keys, state, col(batch.inputs));
          const nll = tf.neg(tf.sum(tf.mul(oneHot(col(batch.targets), cfg.vocabSize), tf.logSoftmax(r.logits)), 1));
          terms.push(tf.sum(tf.mul(nll, col(batch.mask))));
          state = r.state;
        }
        return tf.div(tf.addN(terms), tf.sum(batch.mask));
      };
      const blocked = tf.variableGrads(blockedLoss, vars);
      const unrolled = tf.variableGrads(unrolledLoss, vars);
      const loss = unrolled.value.dataSync()[0] as number;
      assert.ok(loss > 1, `a real loss (${loss})`);
      assert.ok(Math.abs((blocked.value.dataSync()[0] as number) - loss) <= 1e-5 * loss, 'same loss');
      for (const v of vars) {
        const g = blocked.grads[v.name]!.dataSync();
        const r = unrolled.grads[v.name]!.dataSync();
        const scale = Math.max(1e-3, ...Array.from(r, Math.abs));
        const diff = Math.max(...Array.from(g, (x, i) => Math.abs(x - (r[i] as number))));
        assert.ok(diff <= 1e-5 * scale, `d/d ${v.name}: max difference ${diff} (largest ${scale})`);
      }
    });
  }
}

test('the embedding lookup (gather forward, one-hot matmul backward) has the one-hot matmul gradient', () => {
  const table = tf.tensor2d(Array.from({ length: 15 }, (_, i) => Math.sin(i)), [5, 3]);
  const ids = tf.tensor1d([4, 1, 4, 0]);
  const upstream = tf.tensor2d(Array.from({ length: 12 }, (_, i) => i - 5), [4, 3]);
  const gather = tf.grad((e: tf.Tensor) => tf.sum(tf.mul(embed({ embedding: e }, ids), upstream)))(table);
  const matmul = tf.grad((e: tf.Tensor) => tf.sum(tf.mul(tf.matMul(oneHot(ids, 5), e as tf.Tensor2D), upstream)))(table);
  assert.deepEqual([...gather.dataSync()], [...matmul.dataSync()]);
  assert.notDeepEqual([...gather.dataSync()], new Array(15).fill(0), 'row 4 is used twice, rows 2 and 3 never');
  assert.deepEqual([...embed({ embedding: table }, ids).dataSync()], [...tf.gather(table, [4, 1, 4, 0]).dataSync()]);
});
