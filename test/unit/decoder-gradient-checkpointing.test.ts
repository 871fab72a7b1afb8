import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../../trainer-image/backend.js';
import { createDecoder, initialValues, paramRecord, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { captionLoss, type CaptionBatch } from '../../trainer-image/train/caption-loss.js';
import { stepNoise } from '../../trainer-image/train/noise.js';
import { CounterRng } from '../../trainer-image/train/rng.js';

await initBackend('wasm');

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
  for (const attention of ['bahdanau', 'luong'] as const) {
    test(`${cell}/${attention}: checkpointed gradients equal plain ones (dropout and scheduled sampling on)`, () => {
      const cfg: DecoderConfig = { cell, attention, vocabSize: 12, embeddingDim: 6, hiddenDim: 8, attentionDim: 5, featureDim: 7, dropout: 0.3 };
      const decoder = createDecoder(cfg, initialValues(cfg, 11));
      const batch = randomBatch(3, 7, 4, 7, 12);
      const noise = stepNoise(5, 2, { steps: 7, batch: 3, hidden: 8 }, 0.3, 0.6);
      const p = paramRecord(decoder);
      const vars = [...decoder.params.values()];
      const gradsOf = (checkpointing: boolean): Map<string, Float32Array> => {
        const { grads, value } = tf.variableGrads(
          () => captionLoss(cfg, p, batch, noise, { attentionRegularization: 1, blockSteps: 3, checkpointing }).total,
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
