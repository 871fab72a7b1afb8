// The native backend (tfjs-node built by trainer-image/native/setup-native.sh against the TensorFlow version it
// pins, from the tensorflow-cpu wheel) must compute what the wasm backend computes, to float32 rounding: the same seeded
// matmul, the trainer's own decoder loss and gradients (GRU + Bahdanau and LSTM + Luong, dropout and
// scheduled sampling on), and the InceptionV3 forward pass on both (and on native also with batch-norm folded
// into fused convs), compared element-wise.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { load } from 'nsfwjs';
import { initBackend, tf } from '../../trainer-image/backend.js';
import { defaultTfjsNodePath, importTfjsNode, isTfjsNodeBuild, TFJS_NODE_PATH_ENV } from '../../trainer-image/native/tfjs-node.js';
import { foldedConvNet, inceptionFeatureLayer, inceptionFeatures, inceptionInput, matmulInputs, seededValues } from '../../trainer-image/native/workloads.js';
import { createDecoder, disposeDecoder, initialValues, paramRecord, parameterShapes, type DecoderConfig } from '../../trainer-image/model/decoder.js';
import { captionLoss } from '../../trainer-image/model/caption-loss.js';
import { disposeNoise, stepNoise } from '../../trainer-image/train/noise.js';

// The version setup-native.sh pins: the one the GPU trainer image links too.
const TF_VERSION = /^TF_VERSION=(\S+)$/m.exec(readFileSync(new URL('../../trainer-image/native/setup-native.sh', import.meta.url), 'utf8'))?.[1];

// Naming a build in the env var makes it required: only an unasked-for, absent build is a reason to skip.
const explicit = process.env[TFJS_NODE_PATH_ENV] || undefined;
const dir = explicit ?? defaultTfjsNodePath();
const skip =
  explicit !== undefined || isTfjsNodeBuild(dir)
    ? false
    : `native build absent (no tfjs-node with a built addon at ${dir}); build it with bash trainer-image/native/setup-native.sh`;

// Smaller than the benchmark's step so the wasm side stays quick; every op of the full step is still there.
const DECODERS: DecoderConfig[] = [
  { cell: 'gru', attention: 'bahdanau', vocabSize: 1000, embeddingDim: 64, hiddenDim: 128, attentionDim: 96, featureDim: 256, dropout: 0.3 },
  { cell: 'lstm', attention: 'luong', vocabSize: 1000, embeddingDim: 64, hiddenDim: 128, attentionDim: 96, featureDim: 256, dropout: 0.3 },
];
const BATCH = 8;
const STEPS = 6;
const REGIONS = 64;

interface Outputs {
  matmul: Float32Array;
  losses: number[];
  grads: Float32Array[][];
  inception: Float32Array;
}

/** The trainer's loss and the gradient of every decoder parameter, on seeded inputs (blocks of 4 steps, recomputed). */
async function decoderGradients(cfg: DecoderConfig): Promise<{ loss: number; grads: Float32Array[] }> {
  const decoder = createDecoder(cfg, initialValues(cfg, 11));
  const ids = (seed: number): tf.Tensor2D => tf.tensor2d(Array.from(seededValues(BATCH * STEPS, seed), (v) => 4 + Math.floor(((v + 1) / 2) * (cfg.vocabSize - 4))), [BATCH, STEPS]);
  const batch = {
    features: tf.tensor3d(seededValues(BATCH * REGIONS * cfg.featureDim, 3), [BATCH, REGIONS, cfg.featureDim]),
    inputs: ids(4),
    targets: ids(5),
    mask: tf.tensor2d(Array.from({ length: BATCH * STEPS }, (_, i) => (i % STEPS < 2 + (Math.floor(i / STEPS) % (STEPS - 1)) ? 1 : 0)), [BATCH, STEPS]),
  };
  const noise = stepNoise(7, 1, { steps: STEPS, batch: BATCH, hidden: cfg.hiddenDim }, cfg.dropout, 0.7);
  const p = paramRecord(decoder);
  const { value, grads } = tf.variableGrads(() => captionLoss(cfg, p, batch, noise, { attentionRegularization: 1, labelSmoothing: 0, blockSteps: 4, checkpointing: true }).total, [...decoder.params.values()]);
  const out = { loss: (await value.data())[0] as number, grads: await Promise.all([...decoder.params.values()].map(async (v) => (await grads[v.name]!.data()) as Float32Array)) };
  tf.dispose([value, ...Object.values(grads), ...Object.values(batch)]);
  disposeNoise(noise);
  disposeDecoder(decoder);
  return out;
}

async function compute(inception: tf.LayersModel): Promise<Outputs> {
  const { a, b } = matmulInputs(256, 1);
  const product = tf.matMul(a, b);
  const matmul = (await product.data()) as Float32Array;
  tf.dispose([a, b, product]);
  const decoders = [];
  for (const cfg of DECODERS) decoders.push(await decoderGradients(cfg));
  const image = inceptionInput(1, 5);
  const features = inception.predict(image) as tf.Tensor;
  const out = (await features.data()) as Float32Array;
  tf.dispose([image, features]);
  return { matmul, losses: decoders.map((d) => d.loss), grads: decoders.map((d) => d.grads), inception: out };
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

test(`tfjs-node on TensorFlow ${TF_VERSION} agrees with wasm on matmul, the decoder's loss and gradients, and InceptionV3`, { skip, timeout: 300_000 }, async (t) => {
  process.env[TFJS_NODE_PATH_ENV] = dir;
  // Directly first, so that a broken build fails with its own error rather than initBackend's fallback to wasm.
  await importTfjsNode('@tensorflow/tfjs-node');
  assert.equal(await initBackend('tensorflow'), 'tensorflow');
  assert.equal(tf.getBackend(), 'tensorflow');
  // tfjs_binding exposes the linked library's TF_Version(): proof the addon runs on the wheel's TensorFlow.
  assert.equal((tf.backend() as unknown as { binding: { TF_Version: string } }).binding.TF_Version, TF_VERSION);
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
    inception: relativeError(native.inception, wasm.inception),
    inceptionFolded: relativeError(nativeFolded, wasm.inception),
  };
  DECODERS.forEach((cfg, d) => {
    const name = `${cfg.cell}+${cfg.attention}`;
    errors[`${name} loss`] = Math.abs((native.losses[d] as number) - (wasm.losses[d] as number)) / Math.abs(wasm.losses[d] as number);
    const params = parameterShapes(cfg).map(([param]) => param);
    native.grads[d]?.forEach((g, i) => (errors[`${name} d/d ${params[i] ?? i}`] = relativeError(g, wasm.grads[d]?.[i] as Float32Array)));
  });
  t.diagnostic(`relative errors: ${JSON.stringify(errors)}`);
  for (const loss of native.losses) assert.ok(Number.isFinite(loss) && loss > 1, `a real loss (${loss})`);
  for (const [name, error] of Object.entries(errors)) assert.ok(error <= tolerance, `${name}: ${error} > ${tolerance}`);
});

test('a build linked into this checkout is the backend chosen when none is requested', { skip: isTfjsNodeBuild(defaultTfjsNodePath()) ? false : 'no build linked into this checkout (npm run setup:native)' }, async () => {
  const env = { ...process.env };
  delete env[TFJS_NODE_PATH_ENV];
  delete env.CAPTIONRUN_BACKEND;
  const script = "const { initBackend } = await import('./trainer-image/backend.ts'); process.stdout.write(await initBackend());";
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, cwd: new URL('../..', import.meta.url).pathname });
  assert.equal(stdout, 'tensorflow');
});
