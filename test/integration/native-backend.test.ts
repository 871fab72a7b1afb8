// The native backend (tfjs-node built by trainer-image/native/setup-native.sh against TensorFlow 2.9.1 from the
// tensorflow-cpu wheel) must compute what the wasm backend computes, to float32 rounding: the same seeded
// matmul, GRU + attention loss and gradients, and InceptionV3 forward pass on both (and on native also with
// batch-norm folded into fused convs), compared element-wise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from 'nsfwjs';
import { initBackend, tf } from '../../trainer-image/backend.js';
import { defaultTfjsNodePath, importTfjsNode, isTfjsNodeBuild, TFJS_NODE_PATH_ENV } from '../../trainer-image/native/tfjs-node.js';
import { captionStep, captionStepGradients, foldedConvNet, inceptionFeatureLayer, inceptionFeatures, inceptionInput, matmulInputs, type CaptionStepShape } from '../../trainer-image/native/workloads.js';

// Naming a build in the env var makes it required: only an unasked-for, absent build is a reason to skip.
const explicit = process.env[TFJS_NODE_PATH_ENV] || undefined;
const dir = explicit ?? defaultTfjsNodePath();
const skip =
  explicit !== undefined || isTfjsNodeBuild(dir)
    ? false
    : `native build absent (no tfjs-node with a built addon at ${dir}); build it with bash trainer-image/native/setup-native.sh`;

// Smaller than the benchmark's step so the wasm side stays quick; every op of the full step is still there.
const SHAPE: CaptionStepShape = { batch: 8, steps: 6, vocab: 1000, locations: 64, featureDim: 256, embedding: 64, units: 128, attentionUnits: 96 };

interface Outputs {
  matmul: Float32Array;
  loss: number;
  grads: Float32Array[];
  inception: Float32Array;
}

async function compute(inception: tf.LayersModel): Promise<Outputs> {
  const { a, b } = matmulInputs(256, 1);
  const product = tf.matMul(a, b);
  const matmul = (await product.data()) as Float32Array;
  tf.dispose([a, b, product]);
  const step = captionStep(SHAPE, 11);
  const { loss, grads } = await captionStepGradients(step);
  step.dispose();
  const image = inceptionInput(1, 5);
  const features = inception.predict(image) as tf.Tensor;
  const out = (await features.data()) as Float32Array;
  tf.dispose([image, features]);
  return { matmul, loss, grads, inception: out };
}

/** Largest element-wise difference relative to the largest magnitude in the reference. */
function relativeError(ours: Float32Array, reference: Float32Array): number {
  assert.equal(ours.length, reference.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ours.length; i++) {
    diff = Math.max(diff, Math.abs((ours[i] as number) - (reference[i] as number)));
    scale = Math.max(scale, Math.abs(reference[i] as number));
  }
  return diff / Math.max(scale, Number.MIN_VALUE);
}

test('tfjs-node on TensorFlow 2.9.1 agrees with wasm on matmul, a GRU + attention step and InceptionV3', { skip, timeout: 300_000 }, async (t) => {
  process.env[TFJS_NODE_PATH_ENV] = dir;
  // Directly first, so that a broken build fails with its own error rather than initBackend's fallback to wasm.
  await importTfjsNode('@tensorflow/tfjs-node');
  assert.equal(await initBackend('tensorflow'), 'tensorflow');
  assert.equal(tf.getBackend(), 'tensorflow');
  // tfjs_binding exposes the linked library's TF_Version(): proof the addon runs on the wheel's TensorFlow.
  assert.equal((tf.backend() as unknown as { binding: { TF_Version: string } }).binding.TF_Version, '2.9.1');
  const nsfw = (await load('InceptionV3', { size: 299 })) as unknown as { model: tf.LayersModel };
  const inception = inceptionFeatures(nsfw.model);
  const native = await compute(inception);
  const folded = foldedConvNet(nsfw.model, inceptionFeatureLayer(nsfw.model));
  const image = inceptionInput(1, 5);
  const foldedOut = folded.predict(image);
  const nativeFolded = (await foldedOut.data()) as Float32Array;
  tf.dispose([image, foldedOut]);
  folded.dispose();

  assert.equal(await initBackend('wasm'), 'wasm');
  const wasm = await compute(inception);
  nsfw.model.dispose();

  // float32 with different summation orders (oneDNN/Eigen vs XNNPACK): errors of a few ulps per add,
  // growing with reduction length; 1e-4 of the largest value is ~1000x float32 epsilon.
  const tolerance = 1e-4;
  const errors: Record<string, number> = {
    matmul: relativeError(native.matmul, wasm.matmul),
    loss: Math.abs(native.loss - wasm.loss) / Math.abs(wasm.loss),
    inception: relativeError(native.inception, wasm.inception),
    inceptionFolded: relativeError(nativeFolded, wasm.inception),
  };
  native.grads.forEach((g, i) => (errors[`grad${i}`] = relativeError(g, wasm.grads[i] as Float32Array)));
  t.diagnostic(`relative errors: ${JSON.stringify(errors)}`);
  assert.ok(Number.isFinite(native.loss) && native.loss > 0);
  for (const [name, error] of Object.entries(errors)) assert.ok(error <= tolerance, `${name}: ${error} > ${tolerance}`);
});
