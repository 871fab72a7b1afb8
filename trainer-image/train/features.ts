// The encoder output the decoder trains on: one [regions x channels] map per image, held in memory as
// float32 (the feature cache stores float16 unless spec.training.precision is float32; math is float32
// throughout: TensorFlow.js has no float16 math).
import { join } from 'node:path';
import { connectionOf } from '../../lib/s3-connection.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { DatasetItem } from '../data/dataset.js';
import { loadEncoder } from '../model/encoder.js';
import { extractFeatures } from '../model/extract-features.js';
import { FeatureCache, type CacheDtype, type Features } from '../model/feature-cache.js';
import type { TrainConfig } from './config.js';
import type { TrainingSpec } from '../../lib/api/types.js';

export interface FeatureTable {
  encoder: string;
  regions: number;
  channels: number;
  /** Regions form a rows x cols grid over the image, row-major: region r covers cell (r / cols, r % cols). */
  grid: { rows: number; cols: number };
  /** Image ids, aligned with `features`. */
  ids: string[];
  /** regions * channels floats per image. */
  features: Float32Array[];
}

export const FEATURE_CACHE_ENV = 'CAPTIONRUN_FEATURE_CACHE';

/**
 * The trainer's writable working directory: $CAPTIONRUN_CACHE where the operator mounts one (pods have a
 * read-only root filesystem), else .captionrun under the current directory (local mode).
 */
export function workDir(): string {
  return process.env.CAPTIONRUN_CACHE ?? '.captionrun';
}

/** A directory or an s3://bucket/prefix. */
export function featureCacheDir(): string {
  return process.env[FEATURE_CACHE_ENV] ?? join(workDir(), 'features');
}

/**
 * The encoder input size. Synthetic scenes lay their objects out on a 3x3 grid, and every encoder gives a
 * 3x3 map at these sizes (InceptionV3 139 px, DenseNet121 and EfficientNet-Lite1 96 px): one region per cell,
 * at a fraction of the native cost. Real photographs use the encoder's native size (299 InceptionV3, 224
 * DenseNet121, 240 EfficientNet-Lite1).
 */
export function encoderInputSize(config: TrainConfig): number | undefined {
  if (config.dataset.format !== 'synthetic') return undefined;
  return config.encoder.name === 'inceptionv3' ? 139 : 96;
}

/** What spec.training.precision changes: only how the feature cache stores features (checkpoints stay float32). */
export function featureCacheDtype(precision: TrainingSpec['precision']): CacheDtype {
  return precision === 'float32' ? 'float32' : 'float16';
}

/** Encodes every item through the feature cache (each image is encoded once per encoder configuration). */
export async function loadFeatureTable(config: TrainConfig, items: readonly DatasetItem[], log: Logger, onProgress?: (done: number) => void): Promise<FeatureTable> {
  // s3:// weights and an s3:// cache are reached like the checkpoints: one endpoint and one Secret for the run.
  const s3 = connectionOf(config.checkpoint.store.s3);
  const encoder = await loadEncoder(
    { encoder: config.encoder.name, encoderWeights: config.encoder.weights, inputSize: encoderInputSize(config), seed: config.training.seed, s3 },
    log,
  );
  try {
    const cache = new FeatureCache(featureCacheDir(), featureCacheDtype(config.training.precision), s3);
    let lastLog = 0;
    const { features, summary } = await extractFeatures(items, encoder, cache, {
      onProgress: (p) => {
        onProgress?.(p.done);
        if (Date.now() - lastLog < 5000 && p.done < p.total) return;
        lastLog = Date.now();
        log.info(p, `features: ${p.done}/${p.total} images (${p.hits} cached, ${p.encoded} encoded)`);
      },
    });
    for (const bad of summary.bad) log.warn(bad, `skipping image ${bad.id}: ${bad.message}`);
    const kept = items.filter((it) => features.has(it.id));
    return {
      encoder: `${encoder.name}@${encoder.inputSize}`,
      regions: encoder.mapSize * encoder.mapSize,
      channels: encoder.channels,
      grid: { rows: encoder.mapSize, cols: encoder.mapSize },
      ids: kept.map((it) => it.id),
      features: kept.map((it) => (features.get(it.id) as Features).map),
    };
  } finally {
    encoder.dispose();
  }
}
