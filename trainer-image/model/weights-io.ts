// Reading TensorFlow.js layers models in Node without tfjs-node (whose file:// handler we cannot rely on):
// an IOHandler over model.json + shard files, and a digest of the weight bytes that names the weights in
// the feature cache key and in logs.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../../lib/errors.js';
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
 * Resolves a weights URI to a local model.json path: a plain path, a directory holding model.json, or
 * file://. https:// and s3:// are refused with a clear error: this trainer cannot fetch them yet.
 */
export function localModelJsonPath(uri: string): string {
  if (/^(https?|s3):\/\//.test(uri)) {
    throw new InvalidInputError(`encoder weights at ${uri}: only local files (a path or file://) are supported so far`, {
      field: 'spec.model.encoderWeights',
      hint: 'copy the tfjs layers model (model.json + shards) to a local directory or volume and give its path',
    });
  }
  const path = uri.startsWith('file://') ? fileURLToPath(uri) : uri;
  return path.endsWith('.json') ? path : join(path, 'model.json');
}

/** Reads a tfjs layers model (model.json + its weight shards) from disk into memory. */
export async function readLayersModelFiles(uri: string): Promise<ModelArtifacts> {
  const path = localModelJsonPath(uri);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as tf.io.ModelJSON;
  } catch (err) {
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
      const file = join(dirname(path), shard);
      try {
        parts.push(await readFile(file));
      } catch (err) {
        throw new InvalidInputError(`missing weight shard: ${(err as Error).message}`, { file, cause: err });
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
