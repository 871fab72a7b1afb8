// DenseNet121 without its classifier, built layer by layer exactly as keras.applications.DenseNet121
// (include_top=False): same layer names, so weights converted from Keras with tensorflowjs_converter load by
// name. The attention map is the final `relu` (7x7x1024 at 224 px); the pooled vector is its spatial mean.
// No pretrained weights ship with captionrun: a tfjs layers model URI must be given, or "random" explicitly.
import type { S3Connection } from '../../lib/s3-connection.js';
import { InvalidInputError } from '../../lib/errors.js';
import { tf } from '../backend.js';
import { assignWeightsByName, modelWeightsDigest, readLayersModelFiles } from './weights-io.js';

export const DENSENET_CHANNELS = 1024;
export const DENSENET_DEFAULT_SIZE = 224;
export const DENSENET_BLOCKS = [6, 12, 24, 16] as const;
const GROWTH = 32;
const BN_EPSILON = 1.001e-5;

type Sym = tf.SymbolicTensor;

/** Builds the architecture with seeded glorot-uniform kernels (Keras's default initialiser). */
export function buildDenseNet121(inputSize = DENSENET_DEFAULT_SIZE, seed = 0): tf.LayersModel {
  let seq = seed;
  const conv = (filters: number, kernel: number, name: string, opts: { strides?: number; padding?: 'same' | 'valid' } = {}) =>
    tf.layers.conv2d({
      filters,
      kernelSize: kernel,
      strides: opts.strides ?? 1,
      padding: opts.padding ?? 'valid',
      useBias: false,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seq++ }),
      name,
    });
  const bn = (name: string) => tf.layers.batchNormalization({ axis: 3, epsilon: BN_EPSILON, name });
  const relu = (name: string) => tf.layers.activation({ activation: 'relu', name });
  const apply = (layer: tf.layers.Layer, x: Sym | Sym[]) => layer.apply(x) as Sym;

  const convBlock = (x: Sym, name: string): Sym => {
    let y = apply(bn(`${name}_0_bn`), x);
    y = apply(relu(`${name}_0_relu`), y);
    y = apply(conv(4 * GROWTH, 1, `${name}_1_conv`), y);
    y = apply(bn(`${name}_1_bn`), y);
    y = apply(relu(`${name}_1_relu`), y);
    y = apply(conv(GROWTH, 3, `${name}_2_conv`, { padding: 'same' }), y);
    return apply(tf.layers.concatenate({ axis: 3, name: `${name}_concat` }), [x, y]);
  };
  const denseBlock = (x: Sym, blocks: number, name: string): Sym => {
    for (let i = 1; i <= blocks; i++) x = convBlock(x, `${name}_block${i}`);
    return x;
  };
  const transition = (x: Sym, name: string): Sym => {
    const channels = x.shape[3] as number;
    let y = apply(bn(`${name}_bn`), x);
    y = apply(relu(`${name}_relu`), y);
    y = apply(conv(Math.floor(channels * 0.5), 1, `${name}_conv`), y);
    return apply(tf.layers.averagePooling2d({ poolSize: 2, strides: 2, name: `${name}_pool` }), y);
  };

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = apply(tf.layers.zeroPadding2d({ padding: [[3, 3], [3, 3]], name: 'zero_padding2d' }), input);
  x = apply(conv(64, 7, 'conv1/conv', { strides: 2 }), x);
  x = apply(bn('conv1/bn'), x);
  x = apply(relu('conv1/relu'), x);
  x = apply(tf.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: 'zero_padding2d_1' }), x);
  x = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1' }), x);
  DENSENET_BLOCKS.forEach((blocks, i) => {
    x = denseBlock(x, blocks, `conv${i + 2}`);
    if (i < DENSENET_BLOCKS.length - 1) x = transition(x, `pool${i + 2}`);
  });
  x = apply(bn('bn'), x);
  x = apply(relu('relu'), x);
  const model = tf.model({ inputs: input, outputs: x, name: 'densenet121' });
  model.trainable = false;
  return model;
}

/** Side of the final map: the stem divides by 4, each of the three transitions by 2. */
export function densenetMapSize(inputSize: number): number {
  let n = Math.floor((inputSize + 6 - 7) / 2) + 1; // conv1 7x7 /2 after 3-pixel padding
  n = Math.floor((n + 2 - 3) / 2) + 1; // pool1 3x3 /2 after 1-pixel padding
  for (let i = 0; i < 3; i++) n = Math.floor(n / 2);
  return n;
}

/**
 * The Keras weight path a weight is matched by: "conv1/conv/kernel" (the stem's layer names hold a slash) or
 * "conv2_block1_0_bn/gamma", whatever model-name prefix or ":0" suffix the converter added.
 */
function matchKey(name: string): string {
  const parts = name.replace(/:\d+$/, '').split('/');
  return parts.at(-3) === 'conv1' ? parts.slice(-3).join('/') : parts.slice(-2).join('/');
}

/**
 * DenseNet121 with weights from a tfjs layers model (a path, file://, s3:// or https://; weights matched by Keras layer/weight
 * name, every one required, shapes checked) or "random" (seeded; callers log it as random).
 */
export async function loadDenseNet121(options: { weights: string; inputSize?: number; seed?: number; s3?: S3Connection }): Promise<{ model: tf.LayersModel; digest: string }> {
  const { weights } = options;
  if (weights === 'pretrained') {
    throw new InvalidInputError('no pretrained DenseNet121 weights ship with captionrun', {
      field: 'spec.model.encoderWeights',
      hint: 'give a tfjs layers model converted from keras.applications.DenseNet121, or "random" for explicit random initialisation',
    });
  }
  const model = buildDenseNet121(options.inputSize ?? DENSENET_DEFAULT_SIZE, options.seed ?? 0);
  if (weights === 'random') return { model, digest: modelWeightsDigest(model) };
  try {
    const artifacts = await readLayersModelFiles(weights, options.s3);
    assignWeightsByName(model, artifacts, matchKey, { modelName: 'DenseNet121', file: weights });
    return { model, digest: modelWeightsDigest(model) };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
