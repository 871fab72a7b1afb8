// Reading and writing TensorFlow.js layers models in Node without tfjs-node (whose file:// handler we cannot
// rely on): model.json + shard files from a path, s3:// or https:// (lib/locations.ts), an IOHandler over them,
// weights matched into a model built in code by name, and digests of the weights that name them in the
// feature cache key and in logs.
import { createHash } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from '../../lib/errors.js';
import { openFiles, splitLocation } from '../../lib/locations.js';
import type { S3Connection } from '../../lib/s3-connection.js';
import { tf } from '../backend.js';

export type ModelArtifacts = tf.io.ModelArtifacts;

/** sha256 (hex) of the concatenated weight bytes, in manifest order. */
export function weightsDigest(artifacts: ModelArtifacts): string {
  const data = artifacts.weightData;
  const hash = createHash('sha256');
  for (const part of data === undefined ? [] : Array.isArray(data) ? data : [data]) hash.update(new Uint8Array(part));
  return hash.digest('hex');
}

/** sha256 (hex) of every weight value of a built model, in model order. */
export function modelWeightsDigest(model: tf.LayersModel): string {
  const hash = createHash('sha256');
  for (const w of model.getWeights()) hash.update(new Uint8Array((w.dataSync() as Float32Array).buffer));
  return hash.digest('hex');
}

/** An IOHandler that hands tf.loadLayersModel artifacts already in memory. */
export function memoryHandler(artifacts: ModelArtifacts): tf.io.IOHandler {
  return { load: async () => artifacts };
}

/**
 * Reads a tfjs layers model (model.json + its weight shards) into memory from a path, file://, s3:// or
 * https:// location: the model.json itself or the folder holding it. `s3` says how to reach S3.
 */
export async function readLayersModelFiles(uri: string, s3: S3Connection = {}): Promise<ModelArtifacts> {
  const { parent, name } = uri.endsWith('.json') ? splitLocation(uri) : { parent: uri, name: 'model.json' };
  const files = openFiles(parent, s3);
  const path = files.join(files.root, name);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await files.readText(path)) as tf.io.ModelJSON;
  } catch (err) {
    if (!(err instanceof InvalidInputError) && !(err instanceof SyntaxError)) throw err;
    throw new InvalidInputError(`cannot read tfjs layers model.json: ${(err as Error).message}`, { file: path, field: 'spec.model.encoderWeights', cause: err });
  }
  if (json.modelTopology === undefined || !Array.isArray(json.weightsManifest)) {
    throw new InvalidInputError('not a tfjs layers model.json (needs modelTopology and weightsManifest)', { file: path });
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const shard of group.paths) {
      const file = files.join(files.dirname(path), shard);
      try {
        parts.push(await files.readBytes(file));
      } catch (err) {
        if (!(err instanceof InvalidInputError)) throw err;
        throw new InvalidInputError(`missing weight shard: ${err.message}`, { file, cause: err });
      }
    }
  }
  const have = parts.reduce((n, p) => n + p.byteLength, 0);
  const need = specs.reduce((n, w) => n + specBytes(w), 0);
  if (have !== need) {
    throw new InvalidInputError(`weight shards hold ${have} bytes but the manifest needs ${need}: truncated or mismatched files`, { file: path });
  }
  return { modelTopology: json.modelTopology, weightSpecs: specs, weightData: concat(parts), format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy };
}

/**
 * Sets every weight of `model` from `artifacts`, matched by `keyOf` (the Keras "layer/weight" part of a saved
 * name, whatever prefix a converter added). Each weight of the model is required and shape-checked; weights
 * the model lacks (a classifier head when only the trunk is built) are ignored.
 */
export function assignWeightsByName(model: tf.LayersModel, artifacts: ModelArtifacts, keyOf: (name: string) => string, context: { modelName: string; file: string }): void {
  const named = tf.io.decodeWeights(artifacts.weightData ?? new ArrayBuffer(0), artifacts.weightSpecs ?? []);
  try {
    const byKey = new Map(Object.entries(named).map(([name, t]) => [keyOf(name), t]));
    const missing: string[] = [];
    const values = model.weights.map((w) => {
      const t = byKey.get(keyOf(w.originalName));
      if (t === undefined) missing.push(w.originalName);
      else if (t.shape.join('x') !== w.shape.join('x')) {
        throw new InvalidInputError(`weight ${w.originalName} has shape [${t.shape.join(', ')}], ${context.modelName} needs [${w.shape.join(', ')}]`, { file: context.file });
      }
      return t;
    });
    if (missing.length > 0) {
      throw new InvalidInputError(`not ${context.modelName} weights: ${missing.length} of ${model.weights.length} weights missing (first: ${missing.slice(0, 3).join(', ')})`, {
        file: context.file,
        field: 'spec.model.encoderWeights',
      });
    }
    model.setWeights(values as tf.Tensor[]);
  } finally {
    tf.dispose(Object.values(named));
  }
}

/** The weight shard's name, as tensorflowjs_converter names a single shard. */
export const SHARD = 'group1-shard1of1.bin';

/**
 * Writes `model` as tensorflowjs_converter lays it out (model.json + one weight shard) into `dir`; model.json is
 * written last and renamed into place, so a directory with a model.json holds a whole model.
 */
export async function writeLayersModelFiles(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      await writeFile(join(dir, SHARD), new Uint8Array(a.weightData as ArrayBuffer));
      const manifest = [{ paths: [SHARD], weights: a.weightSpecs }];
      await writeFile(join(dir, 'model.json.tmp'), JSON.stringify({ modelTopology: a.modelTopology, format: 'layers-model', weightsManifest: manifest }));
      await rename(join(dir, 'model.json.tmp'), join(dir, 'model.json'));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

function specBytes(w: tf.io.WeightsManifestEntry): number {
  const count = w.shape.reduce((n, d) => n * d, 1);
  const dtype = w.quantization?.dtype ?? w.dtype;
  return count * (dtype === 'uint8' || dtype === 'bool' ? 1 : dtype === 'uint16' || dtype === 'float16' ? 2 : 4);
}

export function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out.buffer;
}
