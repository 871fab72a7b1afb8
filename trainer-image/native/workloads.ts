// The workloads that compare TensorFlow.js backends (bench/native.ts times them, the native-backend test checks
// that they agree): a plain matmul and the InceptionV3 forward pass the feature extractor runs. (The decoder's
// training step is compared with the trainer's own code: bench/train.ts and the native-backend test.) Inputs and weights come from a seeded generator in
// JavaScript, not from tf.random*, so every backend sees bit-identical starting values.
import { tf } from '../backend.js';
import { CounterRng, Stream } from '../util/rng.js';

/** Deterministic values in [-scale, scale), independent of any backend. */
export function seededValues(count: number, seed: number, scale = 1): Float32Array {
  const rng = new CounterRng(seed, Stream.Workload);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rng.uniform() * 2 - 1) * scale;
  return out;
}

function seeded(shape: number[], seed: number, scale: number): tf.Tensor {
  return tf.tensor(seededValues(shape.reduce((a, b) => a * b, 1), seed, scale), shape, 'float32');
}

/** a(n x n) @ b(n x n): 2n^3 floating-point operations. */
export function matmulInputs(n: number, seed: number): { a: tf.Tensor2D; b: tf.Tensor2D } {
  return { a: seeded([n, n], seed, 1) as tf.Tensor2D, b: seeded([n, n], seed + 1, 1) as tf.Tensor2D };
}

/**
 * The part of a Keras InceptionV3 the feature extractor runs: input to the last 8x8x2048 map (the classifier
 * head that nsfwjs's copy adds is left out, as the trainer leaves it out).
 */
export function inceptionFeatures(model: tf.LayersModel): tf.LayersModel {
  return tf.model({ inputs: model.inputs, outputs: inceptionFeatureLayer(model).output as tf.SymbolicTensor });
}

/** The last layer of an InceptionV3 whose output is the 8x8x2048 map. */
export function inceptionFeatureLayer(model: tf.LayersModel): tf.layers.Layer {
  const last = model.layers.filter((l) => {
    const shape = l.outputShape;
    return Array.isArray(shape) && shape[1] === 8 && shape[2] === 8 && shape[3] === 2048;
  }).at(-1);
  if (last === undefined) throw new Error(`${model.name} has no 8x8x2048 layer; is it InceptionV3?`);
  return last;
}

/** A stand-in image batch for the InceptionV3 input: values in [-1, 1] like its preprocessing produces. */
export function inceptionInput(batch: number, seed: number, size = 299): tf.Tensor4D {
  return seeded([batch, size, size, 3], seed, 1) as tf.Tensor4D;
}

/**
 * Runs a Keras-style conv net with each Conv2D -> BatchNormalization -> ReLU chain as one fused conv (batch-norm
 * folded into the kernel and bias at build time), the rewrite Keras's graph optimiser makes and tfjs does not:
 * one TensorFlow op per block instead of four. Other layers run as they are. Returns the output of `output`.
 */
export function foldedConvNet(model: tf.LayersModel, output: tf.layers.Layer): { predict: (x: tf.Tensor) => tf.Tensor; dispose: () => void } {
  const consumers = new Map<string, tf.layers.Layer[]>();
  const inputsOf = (l: tf.layers.Layer): tf.layers.Layer[] => l.inboundNodes[0]?.inboundLayers ?? [];
  for (const l of model.layers) for (const i of inputsOf(l)) consumers.set(i.name, [...(consumers.get(i.name) ?? []), l]);
  const only = (l: tf.layers.Layer): tf.layers.Layer | undefined => {
    const c = consumers.get(l.name);
    return c?.length === 1 ? c[0] : undefined;
  };
  // Fused blocks keyed by the ReLU layer whose output they produce.
  const fused = new Map<string, { input: string; filter: tf.Tensor4D; bias: tf.Tensor1D; strides: [number, number]; pad: 'same' | 'valid' }>();
  const skipped = new Set<string>();
  for (const conv of model.layers) {
    const bn = only(conv);
    const relu = bn && only(bn);
    if (conv.getClassName() !== 'Conv2D' || bn?.getClassName() !== 'BatchNormalization' || relu?.getClassName() !== 'Activation') continue;
    if ((relu.getConfig() as { activation: string }).activation !== 'relu') continue;
    const cc = conv.getConfig() as {
      strides: [number, number];
      padding: 'same' | 'valid';
      activation: string;
      dataFormat: string;
      dilationRate: number | number[];
    };
    // tf.fused.conv2d here takes NHWC, no dilation and no activation of the conv's own.
    if (cc.activation !== 'linear' || cc.dataFormat !== 'channelsLast' || [cc.dilationRate].flat().some((d) => d !== 1)) continue;
    const bc = bn.getConfig() as { epsilon: number; scale: boolean; center: boolean };
    const [filter, bias] = tf.tidy(() => {
      const [kernel, convBias] = conv.getWeights() as [tf.Tensor4D, tf.Tensor1D | undefined];
      const w = [...bn.getWeights()];
      const gamma = bc.scale ? (w.shift() as tf.Tensor1D) : tf.onesLike(w.at(-1) as tf.Tensor1D);
      const beta = bc.center ? (w.shift() as tf.Tensor1D) : tf.zerosLike(w.at(-1) as tf.Tensor1D);
      const [mean, variance] = w as [tf.Tensor1D, tf.Tensor1D];
      const factor = tf.div(gamma, tf.sqrt(tf.add(variance, bc.epsilon)));
      return [tf.mul(kernel, factor) as tf.Tensor4D, tf.add(beta, tf.mul(tf.sub(convBias ?? tf.zerosLike(mean), mean), factor)) as tf.Tensor1D];
    });
    fused.set(relu.name, { input: (inputsOf(conv)[0] as tf.layers.Layer).name, filter, bias, strides: cc.strides, pad: cc.padding });
    skipped.add(conv.name).add(bn.name);
  }
  const predict = (x: tf.Tensor): tf.Tensor =>
    tf.tidy(() => {
      const values = new Map<string, tf.Tensor>();
      for (const l of model.layers) {
        if (skipped.has(l.name)) continue;
        const f = fused.get(l.name);
        const ins = inputsOf(l).map((i) => values.get(i.name) as tf.Tensor);
        const y = l.getClassName() === 'InputLayer' ? x
          : f ? tf.fused.conv2d({ x: values.get(f.input) as tf.Tensor4D, filter: f.filter, strides: f.strides, pad: f.pad, bias: f.bias, activation: 'relu' })
          : (l.apply(ins.length === 1 ? (ins[0] as tf.Tensor) : ins) as tf.Tensor);
        values.set(l.name, y);
        if (l === output) return y;
      }
      throw new Error(`${output.name} is not a layer of ${model.name}`);
    });
  return { predict, dispose: () => tf.dispose([...fused.values()].flatMap((f) => [f.filter, f.bias])) };
}
