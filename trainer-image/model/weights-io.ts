// Reading TensorFlow.js layers models in Node without tfjs-node (whose file:// handler we cannot rely on):
// model.json + shard files from a path, s3:// or https:// (lib/locations.ts), an IOHandler over them, and a digest of the weight bytes that names the weights in
// the feature cache key and in logs.
import { createHash } from 'node:crypto';
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
