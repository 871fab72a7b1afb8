// Label smoothing: the loss against (1 - eps) one-hot + eps uniform is, by linearity in the target
// distribution, (1 - eps) x the plain loss + eps x the mean of the plain losses over every possible target.
// That identity is checked for the value and for the fused gradient, so a wrong formula in either fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../trainer-image/backend.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import { createDecoder, initialValues, paramRecord, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { captionLoss } from '../../trainer-image/model/caption-loss.js';

await useBackendUnderTest();

const cfg: DecoderConfig = { cell: 'gru', attention: 'bahdanau', vocabSize: 7, embeddingDim: 4, hiddenDim: 5, attentionDim: 3, featureDim: 4, dropout: 0 };
const decoder = createDecoder(cfg, initialValues(cfg, 11));
const p = paramRecord(decoder);
const features = tf.tensor3d(Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i)), [2, 3, 4]);
const inputs = tf.tensor2d([[1, 4, 5], [1, 6, 3]]);
const mask = tf.tensor2d([[1, 1, 1], [1, 1, 0]]);
const targets = [[4, 5, 2], [6, 2, 0]];
const outBias = decoder.params.get('out.b') as tf.Variable;

function lossAndGrad(t: number[][], eps: number): { loss: number; grad: Float32Array } {
  const { value, grads } = tf.variableGrads(
    () => captionLoss(cfg, p, { features, inputs, targets: tf.tensor2d(t), mask }, {}, { attentionRegularization: 0, labelSmoothing: eps, blockSteps: 2, checkpointing: false }).total,
    [outBias],
  );
  const out = { loss: value.dataSync()[0] as number, grad: (grads[outBias.name] as tf.Tensor).dataSync() as Float32Array };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

test('label smoothing eps: loss and gradient are (1 - eps) x plain + eps x the mean over uniform targets', () => {
  const eps = 0.2;
  const plain = lossAndGrad(targets, 0);
  // Every masked position's target replaced by word v, for each v: their mean is the loss against uniform.
  const uniform = Array.from({ length: cfg.vocabSize }, (_, v) => lossAndGrad(targets.map((row) => row.map(() => v)), 0));
  const expectedLoss = (1 - eps) * plain.loss + (eps * uniform.reduce((s, u) => s + u.loss, 0)) / cfg.vocabSize;
  const smoothed = lossAndGrad(targets, eps);
  assert.ok(Math.abs(smoothed.loss - expectedLoss) < 1e-4, `loss ${smoothed.loss} vs ${expectedLoss}`);
  smoothed.grad.forEach((g, k) => {
    const expected = (1 - eps) * (plain.grad[k] as number) + (eps * uniform.reduce((s, u) => s + (u.grad[k] as number), 0)) / cfg.vocabSize;
    assert.ok(Math.abs(g - expected) < 1e-5, `d loss / d out.b[${k}]: ${g} vs ${expected}`);
  });
});

