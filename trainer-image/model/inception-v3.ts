// InceptionV3 with the Keras ImageNet-initialised weights that ship inside the nsfwjs npm package
// (Keras 2.2.4 InceptionV3 fine-tuned by nsfwjs, converted to tfjs layers with uint8-quantised weights).
// We keep the convolutional trunk up to `mixed10` (the last Inception block: 8x8x2048 at 299 px) as the
// attention map; the pooled vector is the spatial mean of mixed10, which equals the model's own
// `average_pooling2d_10` (8x8 pool) at 299 px and stays defined at other input sizes.
//
// nsfwjs packs model.json and shards as UMD scripts with the JSON/base64 inside; we evaluate them in an
// isolated vm context (no tfjs-node file:// handler needed) and hand the artifacts to tf.loadLayersModel.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';
import { tf } from '../backend.js';
import { concat, memoryHandler, weightsDigest, type ModelArtifacts } from './weights-io.js';

export const INCEPTION_MAP_LAYER = 'mixed10';
export const INCEPTION_CHANNELS = 2048;
export const INCEPTION_DEFAULT_SIZE = 299;
/** The smallest input the valid-padded stem and reduction blocks accept (gives a 1x1 map). */
export const INCEPTION_MIN_SIZE = 75;

interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
}
interface KerasTopology {
  model_config: { config: { layers: KerasLayer[]; output_layers: unknown[]; input_layers: unknown[] } };
}

function nsfwjsModelDir(): string {
  // nsfwjs does not export package.json; its CommonJS entry is <pkg>/dist/cjs/index.js.
  const entry = createRequire(import.meta.url).resolve('nsfwjs');
  return join(dirname(dirname(entry)), 'models', 'inception_v3');
}

async function evalUmd(file: string): Promise<unknown> {
  const module = { exports: {} as unknown };
  vm.runInNewContext(await readFile(file, 'utf8'), { module, exports: module.exports }, { filename: file });
  // Objects built inside the vm context belong to its realm; tfjs's deserialiser needs this realm's.
  return structuredClone(module.exports);
}

let cached: Promise<{ artifacts: ModelArtifacts; digest: string }> | undefined;

/** The nsfwjs InceptionV3 model as tfjs artifacts (read once per process) and the sha256 of its weights. */
export function nsfwjsInceptionArtifacts(): Promise<{ artifacts: ModelArtifacts; digest: string }> {
  cached ??= (async () => {
    const dir = nsfwjsModelDir();
    const json = (await evalUmd(join(dir, 'model.min.js'))) as tf.io.ModelJSON;
    const specs: tf.io.WeightsManifestEntry[] = [];
    const parts: Uint8Array[] = [];
    for (const group of json.weightsManifest) {
      specs.push(...group.weights);
      for (const shard of group.paths) parts.push(Buffer.from((await evalUmd(join(dir, `${shard}.min.js`))) as string, 'base64'));
    }
    const artifacts: ModelArtifacts = { modelTopology: json.modelTopology, weightSpecs: specs, weightData: concat(parts) };
    return { artifacts, digest: weightsDigest(artifacts) };
  })();
  return cached;
}

/** The full nsfwjs classifier (299x299 input, 5 class scores) exactly as shipped: used to prove weight wiring. */
export async function loadInceptionV3Classifier(): Promise<tf.LayersModel> {
  const { artifacts } = await nsfwjsInceptionArtifacts();
  return tf.loadLayersModel(memoryHandler(artifacts));
}

/**
 * The trunk up to mixed10 for a square input of `inputSize` pixels. The topology is cut after mixed10 and
 * its input shape rewritten (InceptionV3 is fully convolutional up to there); the head's weights are then
 * extra and ignored (strict: false).
 */
export async function loadInceptionV3Trunk(inputSize = INCEPTION_DEFAULT_SIZE): Promise<{ model: tf.LayersModel; digest: string }> {
  if (!Number.isInteger(inputSize) || inputSize < INCEPTION_MIN_SIZE) {
    throw new Error(`InceptionV3 input size must be an integer >= ${INCEPTION_MIN_SIZE}, got ${inputSize}`);
  }
  const { artifacts, digest } = await nsfwjsInceptionArtifacts();
  const topology = structuredClone(artifacts.modelTopology) as unknown as KerasTopology;
  const config = topology.model_config.config;
  const cut = config.layers.findIndex((l) => l.name === INCEPTION_MAP_LAYER);
  if (cut < 0) throw new Error(`nsfwjs InceptionV3 has no ${INCEPTION_MAP_LAYER} layer: the package layout changed`);
  config.layers = config.layers.slice(0, cut + 1);
  const input = config.layers[0] as KerasLayer;
  input.config.batch_input_shape = [null, inputSize, inputSize, 3];
  config.output_layers = [[INCEPTION_MAP_LAYER, 0, 0]];
  const trunk: ModelArtifacts = { ...artifacts, modelTopology: topology as unknown as tf.io.ModelArtifacts['modelTopology'] };
  const model = await tf.loadLayersModel(memoryHandler(trunk), { strict: false });
  model.trainable = false;
  return { model, digest };
}

/** Side of the mixed10 map for a given input size (8 at 299, 3 at 139, 4 at 175). */
export function inceptionMapSize(inputSize: number): number {
  const valid = (n: number, k: number, s: number) => Math.floor((n - k) / s) + 1;
  let n = valid(inputSize, 3, 2); // conv 3x3 /2
  n = valid(n, 3, 1); // conv 3x3
  n = valid(n, 3, 2); // max pool /2 (after a same-padded conv)
  n = valid(n, 3, 1); // conv 3x3 (after a 1x1)
  n = valid(n, 3, 2); // max pool /2
  n = valid(n, 3, 2); // mixed3 reduction
  return valid(n, 3, 2); // mixed8 reduction
}
