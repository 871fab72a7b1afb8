import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createDecoder, initialValues, paramRecord, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { beamSearch, greedyDecode } from '../../trainer-image/model/decoder-search.js';
import { captionLoss } from '../../trainer-image/train/caption-loss.js';
import { CounterRng } from '../../trainer-image/util/rng.js';

await useBackendUnderTest();

function features(batch: number, seed: number): tf.Tensor3D {
  const rng = new CounterRng(seed, 5);
  return tf.tensor3d(Float32Array.from({ length: batch * 6 * 5 }, () => rng.uniform() * 2 - 1), [batch, 6, 5]);
}

for (const cell of ['gru', 'lstm'] as const) {
  for (const attention of ['bahdanau', 'luong'] as const) {
    const cfg: DecoderConfig = { cell, attention, vocabSize: 9, embeddingDim: 4, hiddenDim: 6, attentionDim: 3, featureDim: 5, dropout: 0 };

    test(`${cell}/${attention}: beam 1 is greedy; a wider beam never scores worse; attention weights are distributions`, () => {
      const decoder = createDecoder(cfg, initialValues(cfg, 21));
      const p = paramRecord(decoder);
      const opts = { startId: 1, endId: 2, maxLength: 6 };
      const batch = features(3, 1);
      const greedy = greedyDecode(cfg, p, batch, opts);
      for (let i = 0; i < 3; i++) {
        const one = tf.slice(batch, [i, 0, 0], [1, 6, 5]);
        const g = greedy[i];
        assert.ok(g);
        const b1 = beamSearch(cfg, p, one, 1, opts);
        assert.deepEqual(b1.tokens, g.tokens);
        assert.ok(Math.abs(b1.logProb - g.logProb) < 1e-4);
        const b4 = beamSearch(cfg, p, one, 4, opts);
        assert.ok(b4.logProb >= g.logProb - 1e-4, `beam 4 ${b4.logProb} < greedy ${g.logProb}`);
        assert.equal(b4.alphas.length, b4.tokens.length);
        for (const a of [...g.alphas, ...b4.alphas]) {
          assert.equal(a.length, 6);
          assert.ok(Math.abs(a.reduce((s, x) => s + x, 0) - 1) < 1e-5);
        }
        assert.ok(g.tokens.length <= opts.maxLength);
        one.dispose();
      }
    });

    test(`${cell}/${attention}: the loss ignores padded positions`, () => {
      const decoder = createDecoder(cfg, initialValues(cfg, 4));
      const p = paramRecord(decoder);
      const base = { features: features(2, 2), inputs: tf.tensor2d([[1, 5, 6, 0], [1, 7, 2, 0]]), mask: tf.tensor2d([[1, 1, 1, 0], [1, 1, 0, 0]]) };
      const loss = (targets: number[][]): number =>
        captionLoss(cfg, p, { ...base, targets: tf.tensor2d(targets) }, {}, { attentionRegularization: 0, blockSteps: 2, checkpointing: false }).crossEntropy.dataSync()[0] as number;
      const a = loss([[5, 6, 2, 0], [7, 2, 0, 0]]);
      assert.equal(loss([[5, 6, 2, 8], [7, 2, 4, 3]]), a, 'targets under mask 0 do not count');
      assert.notEqual(loss([[5, 6, 3, 0], [7, 2, 0, 0]]), a, 'targets under mask 1 do');
      assert.ok(a > 0 && a < 10);
    });
  }
}
