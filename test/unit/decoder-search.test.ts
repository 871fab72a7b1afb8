import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createDecoder, initialValues, paramRecord, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { beamSearch, blockedWords, greedyDecode, lengthNormalisedScore } from '../../trainer-image/model/decoder-search.js';
import { captionLoss } from '../../trainer-image/model/caption-loss.js';
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
        captionLoss(cfg, p, { ...base, targets: tf.tensor2d(targets) }, {}, { attentionRegularization: 0, labelSmoothing: 0, blockSteps: 2, checkpointing: false }).crossEntropy.dataSync()[0] as number;
      const a = loss([[5, 6, 2, 0], [7, 2, 0, 0]]);
      assert.equal(loss([[5, 6, 2, 8], [7, 2, 4, 3]]), a, 'targets under mask 0 do not count');
      assert.notEqual(loss([[5, 6, 3, 0], [7, 2, 0, 0]]), a, 'targets under mask 1 do');
      assert.ok(a > 0 && a < 10);
    });
  }
}

test('blockedWords: the words that would repeat an n-gram already in the caption', () => {
  assert.deepEqual([...blockedWords([5, 6, 7, 5], 2)], [6], 'after "5", "6" would repeat the bigram 5 6');
  assert.deepEqual([...blockedWords([5, 6, 5, 7, 5], 2)].sort(), [6, 7]);
  assert.deepEqual([...blockedWords([5, 6, 7, 5, 6], 3)], [7]);
  assert.deepEqual([...blockedWords([5, 6, 7, 5, 8], 3)], [], 'the last two words "5 8" never occurred before');
  assert.deepEqual([...blockedWords([5, 5], 2)], [5], 'a word repeated twice blocks a third');
  assert.deepEqual([...blockedWords([5, 6, 5], 0)], [], '0 turns blocking off');
  assert.deepEqual([...blockedWords([5, 6, 5, 6], 1)].sort(), [5, 6], 'n = 1 blocks every word already said');
});

test('lengthNormalisedScore: alpha 0 is the log-probability; alpha 1 can rank a longer, less likely caption first', () => {
  assert.equal(lengthNormalisedScore(-6, 4, 0), -6);
  assert.ok(Math.abs(lengthNormalisedScore(-6, 1, 1) - -6) < 1e-12, 'length 1: penalty (5 + 1) / 6 = 1');
  // 4 words at -4.4 against 8 words at -6: raw log-probability prefers the shorter, alpha 1 the longer
  // (-4.4 / 1.5 = -2.93 < -6 / (13 / 6) = -2.77).
  assert.ok(lengthNormalisedScore(-4.4, 4, 0) > lengthNormalisedScore(-6, 8, 0));
  assert.ok(lengthNormalisedScore(-6, 8, 1) > lengthNormalisedScore(-4.4, 4, 1));
});

/**
 * A decoder whose output ignores the image and the state: the output layer's bias alone decides each step's
 * distribution, so the caption it wants is the same word forever. Blocking must break the loop.
 */
function loopingDecoder(cell: 'gru' | 'lstm', preference: Record<number, number>): { cfg: DecoderConfig; p: ReturnType<typeof paramRecord> } {
  const cfg: DecoderConfig = { cell, attention: 'bahdanau', vocabSize: 9, embeddingDim: 4, hiddenDim: 6, attentionDim: 3, featureDim: 5, dropout: 0 };
  const values = initialValues(cfg, 3);
  (values.get('out.W') as Float32Array).fill(0);
  const bias = values.get('out.b') as Float32Array;
  bias.fill(-10);
  for (const [word, logit] of Object.entries(preference)) bias[Number(word)] = logit;
  return { cfg, p: paramRecord(createDecoder(cfg, values)) };
}

for (const cell of ['gru', 'lstm'] as const) {
  test(`${cell}: without blocking greedy and beam repeat one word; with noRepeatNgramSize 2 no caption repeats a bigram`, () => {
    // Word 5 first, then 6, then <end> (2); every other word far behind.
    const { cfg, p } = loopingDecoder(cell, { 5: 5, 6: 3, 2: 1 });
    const base = { startId: 1, endId: 2, maxLength: 6 };
    const one = features(1, 9);
    assert.deepEqual(greedyDecode(cfg, p, one, base)[0]?.tokens, [5, 5, 5, 5, 5, 5]);
    assert.deepEqual(beamSearch(cfg, p, one, 3, base).tokens, [5, 5, 5, 5, 5, 5]);
    const blocking = { ...base, noRepeatNgramSize: 2 };
    const greedy = greedyDecode(cfg, p, one, blocking)[0]?.tokens ?? [];
    const beam = beamSearch(cfg, p, one, 3, blocking).tokens;
    assert.deepEqual(greedy, [5, 5, 6, 5], 'the best word unless it repeats a bigram, then the next best; then <end>');
    for (const tokens of [greedy, beam]) {
      const bigrams = tokens.slice(1).map((w, i) => `${tokens[i]} ${w}`);
      assert.equal(new Set(bigrams).size, bigrams.length, `repeated bigram in ${tokens.join(' ')}`);
    }
    one.dispose();
  });
}

test('beam search with a length penalty picks the longer caption that raw log-probability ranks second', () => {
  // Every step: word 5 at log-prob -0.055, <end> at -3.055. With 5 allowed once, "5 <end>" (-3.11) is a bit
  // less likely than the empty caption (-3.055); divided by ((5 + 2) / 6)^2 it scores -2.28 and wins.
  const { cfg, p } = loopingDecoder('gru', { 5: 6, 2: 3, 6: 1 });
  const one = features(1, 4);
  const opts = { startId: 1, endId: 2, maxLength: 6, noRepeatNgramSize: 1 };
  const raw = beamSearch(cfg, p, one, 3, opts);
  const normalised = beamSearch(cfg, p, one, 3, { ...opts, lengthPenalty: 2 });
  assert.ok(normalised.tokens.length > raw.tokens.length, `alpha 2: ${normalised.tokens.join(' ')}; alpha 0: ${raw.tokens.join(' ')}`);
  assert.ok(raw.logProb >= normalised.logProb, 'raw ranking keeps the likelier caption');
  one.dispose();
});
