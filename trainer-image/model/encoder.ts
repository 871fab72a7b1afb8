// The encoder contract the feature cache and the decoders rely on, and the one factory that builds an
// encoder from the spec. Encoders are frozen feature extractors: they run forward only and are never
// fine-tuned (the wasm backend has no Conv2DBackpropFilter kernel, and frozen features are what make the
// feature cache valid).
import type { S3Connection } from '../../lib/s3-connection.js';
import type { Encoder as EncoderName } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import { logger as defaultLogger, type Logger } from '../../lib/telemetry/logger.js';
import { tf } from '../backend.js';
import { DENSENET_CHANNELS, DENSENET_DEFAULT_SIZE, densenetMapSize, loadDenseNet121 } from './densenet121.js';
import { EFFICIENTNET_CHANNELS, EFFICIENTNET_DEFAULT_SIZE, efficientnetMapSize, loadEfficientNetLite1 } from './efficientnet-lite.js';
import type { FeatureShape } from '../features/feature-cache.js';
import { INCEPTION_CHANNELS, INCEPTION_DEFAULT_SIZE, inceptionMapSize, loadInceptionV3Trunk, nsfwjsInceptionArtifacts } from './inception-v3.js';

export interface EncodedBatch {
  /** batch x regions x channels (regions = mapSize^2, row-major over the map). */
  map: Float32Array;
  /** batch x channels: the spatial mean of the map. */
  pooled: Float32Array;
}

export interface ImageEncoder {
  name: EncoderName;
  /** Side of the square input in pixels. */
  inputSize: number;
  /** Side of the square spatial map (8 for InceptionV3 at 299 and EfficientNet-Lite1 at 240, 7 for DenseNet121 at 224). */
  mapSize: number;
  channels: number;
  /** "pretrained", "random" or the weights URI, as given. */
  weights: string;
  /** sha256 of the weight values: part of every feature cache key. */
  weightsDigest: string;
  /** The frozen Keras-style model from input to the spatial map. */
  model: tf.LayersModel;
  /** Runs the model on `count` images of inputSize x inputSize RGB bytes. */
  encode(pixels: Uint8Array, count: number): Promise<EncodedBatch>;
  /** Images passed through the model so far (the feature cache's tests count these). */
  readonly imagesEncoded: number;
  dispose(): void;
}

export interface EncoderOptions {
  encoder: EncoderName;
  /** spec.model.encoderWeights: "pretrained" (InceptionV3, EfficientNet-Lite1), "random" (DenseNet121), or a tfjs layers model path/URI. */
  encoderWeights: string;
  /** Defaults: 299 (InceptionV3), 224 (DenseNet121), 240 (EfficientNet-Lite1). */
  inputSize?: number;
  /** Seed for "random" weights, so a random encoder is still reproducible (and cacheable). */
  seed?: number;
  /** How to reach s3:// weights (default: the AWS environment variables). */
  s3?: S3Connection;
}

/** Builds the encoder named by the spec, logging which weights it runs with (random ones loudly). */
export async function loadEncoder(options: EncoderOptions, log: Logger = defaultLogger): Promise<ImageEncoder> {
  const { encoder, encoderWeights } = options;
  let built: { model: tf.LayersModel; digest: string };
  let inputSize: number;
  let mapSize: number;
  let channels: number;
  let normalise: (x: tf.Tensor4D) => tf.Tensor4D;
  if (encoder === 'inceptionv3') {
    inputSize = options.inputSize ?? INCEPTION_DEFAULT_SIZE;
    if (encoderWeights !== 'pretrained') {
      throw new InvalidInputError(`InceptionV3 weights "${encoderWeights}" are not supported: only "pretrained" (nsfwjs's Keras InceptionV3)`, {
        field: 'spec.model.encoderWeights',
      });
    }
    built = await loadInceptionV3Trunk(inputSize);
    mapSize = inceptionMapSize(inputSize);
    channels = INCEPTION_CHANNELS;
    // nsfwjs trained its InceptionV3 on pixels scaled to 0..1 (its own infer() divides by 255).
    normalise = (x) => tf.div(x, 255);
  } else if (encoder === 'densenet121') {
    inputSize = options.inputSize ?? DENSENET_DEFAULT_SIZE;
    built = await loadDenseNet121({ weights: encoderWeights, inputSize, seed: options.seed ?? 0, s3: options.s3 });
    mapSize = densenetMapSize(inputSize);
    channels = DENSENET_CHANNELS;
    // Keras DenseNet preprocessing ("torch" mode): 0..1, then ImageNet mean and std per channel.
    normalise = (x) => tf.div(tf.sub(tf.div(x, 255), tf.tensor1d([0.485, 0.456, 0.406])), tf.tensor1d([0.229, 0.224, 0.225]));
  } else if (encoder === 'efficientnet-lite1') {
    inputSize = options.inputSize ?? EFFICIENTNET_DEFAULT_SIZE;
    built = await loadEfficientNetLite1({ weights: encoderWeights, inputSize, s3: options.s3 });
    mapSize = efficientnetMapSize(inputSize);
    channels = EFFICIENTNET_CHANNELS;
    // Google's EfficientNet-Lite input scaling (MEAN_RGB 127, STDDEV_RGB 128 in its lite builder), chosen there for quantisation.
    normalise = (x) => tf.div(tf.sub(x, 127), 128);
  } else {
    throw new InvalidInputError(`unknown encoder "${String(encoder)}"`, { field: 'spec.model.encoder' });
  }
  const { model, digest } = built;
  const random = encoderWeights === 'random';
  (random ? log.warn.bind(log) : log.info.bind(log))(
    { encoder, weights: encoderWeights, weightsDigest: digest, inputSize, mapSize, channels, randomInit: random },
    random ? `encoder ${encoder} runs with RANDOM weights (explicitly requested): features carry no pretrained knowledge` : `encoder ${encoder} loaded`,
  );
  let imagesEncoded = 0;
  return {
    name: encoder,
    inputSize,
    mapSize,
    channels,
    weights: encoderWeights,
    weightsDigest: digest,
    model,
    get imagesEncoded() {
      return imagesEncoded;
    },
    async encode(pixels, count) {
      if (pixels.length !== count * inputSize * inputSize * 3) {
        throw new Error(`encode: expected ${count} images of ${inputSize}x${inputSize}x3 bytes, got ${pixels.length} bytes`);
      }
      const [map, pooled] = tf.tidy(() => {
        const x = tf.tensor4d(Float32Array.from(pixels), [count, inputSize, inputSize, 3]);
        const m = model.predict(normalise(x)) as tf.Tensor4D;
        return [tf.reshape(m, [count, mapSize * mapSize, channels]), tf.mean(m, [1, 2])];
      });
      try {
        imagesEncoded += count;
        return { map: (await map.data()) as Float32Array, pooled: (await pooled.data()) as Float32Array };
      } finally {
        map.dispose();
        pooled.dispose();
      }
    },
    dispose() {
      model.dispose();
    },
  };
}

/** An encoder's cache namespace, known before its model is built, and the model built on first need. */
export interface LazyEncoder {
  shape: FeatureShape;
  load(): Promise<ImageEncoder>;
  /** Frees the model if it was built. */
  dispose(): void;
}

/**
 * The cache namespace of the encoder the spec names, without building it where that is possible: a pass whose
 * images are all cached never builds InceptionV3 (its weights digest comes from the shipped weight files).
 * DenseNet121's and EfficientNet-Lite1's digests are of their loaded (or initialised) values, so they are
 * built up front.
 */
export async function lazyEncoder(options: EncoderOptions, log: Logger = defaultLogger): Promise<LazyEncoder> {
  let built: Promise<ImageEncoder> | undefined;
  if (options.encoder !== 'inceptionv3') built = loadEncoder(options, log);
  const shape = built ? featureShape(await built) : await inceptionShape(options);
  return {
    shape,
    load: () => (built ??= loadEncoder(options, log)),
    // A build that failed has already reported its error to whoever awaited load().
    dispose: () => void built?.then((e) => e.dispose(), () => {}),
  };
}

/** The cache namespace of an encoder's features. */
export function featureShape(encoder: ImageEncoder): FeatureShape {
  return { encoder: encoder.name, weightsDigest: encoder.weightsDigest, inputSize: encoder.inputSize, regions: encoder.mapSize * encoder.mapSize, channels: encoder.channels };
}

async function inceptionShape(options: EncoderOptions): Promise<FeatureShape> {
  if (options.encoderWeights !== 'pretrained') return featureShape(await loadEncoder(options));
  const inputSize = options.inputSize ?? INCEPTION_DEFAULT_SIZE;
  const mapSize = inceptionMapSize(inputSize);
  return { encoder: 'inceptionv3', weightsDigest: (await nsfwjsInceptionArtifacts()).digest, inputSize, regions: mapSize * mapSize, channels: INCEPTION_CHANNELS };
}
