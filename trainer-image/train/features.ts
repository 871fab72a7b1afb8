// The encoder output the decoder trains on: one [regions x channels] map per image, float32 in memory (the
// feature cache stores float16 unless spec.training.precision is float32; math is float32 throughout:
// TensorFlow.js has no float16 math). Training images are read per batch from the cache, so memory follows
// the batch, never the dataset; the validation subset is small and held in memory.
import { join } from 'node:path';
import type { DatasetSpec, TrainingSpec } from '../../lib/api/types.js';
import type { CacheDtype, FeatureCache, FeatureShape } from '../features/feature-cache.js';
import type { ImageKeys } from '../features/image-keys.js';
import type { TrainConfig } from './config.js';
import { FeatureReader } from './feature-reader.js';

/** What every feature set shares: where the maps came from and their layout. */
export interface FeatureLayout {
  encoder: string;
  regions: number;
  channels: number;
  /** Regions form a rows x cols grid over the image, row-major: region r covers cell (r / cols, r % cols). */
  grid: { rows: number; cols: number };
}

/** Feature maps held in memory (the validation subset; the loop's tests). */
export interface FeatureTable extends FeatureLayout {
  /** Image ids, aligned with `features`. */
  ids: string[];
  /** regions * channels floats per image. */
  features: Float32Array[];
}

/** Feature maps read on demand, by image index: the training images. */
export interface FeatureSource extends FeatureLayout {
  /** The maps of these images, one after another: images.length x regions x channels floats. */
  read(images: readonly number[]): Promise<Float32Array>;
}

/** The maps of these images of a table, one after another. */
export function tableRows(table: FeatureTable, images: readonly number[]): Float32Array {
  const size = table.regions * table.channels;
  const out = new Float32Array(images.length * size);
  images.forEach((image, i) => out.set(table.features[image] as Float32Array, i * size));
  return out;
}

/** A table as a source. */
export function tableSource(table: FeatureTable): FeatureSource {
  const { encoder, regions, channels, grid } = table;
  return { encoder, regions, channels, grid, read: async (images) => tableRows(table, images) };
}

/** Reads each image's entry from the feature cache (local disk or S3), on a worker thread, when a batch needs it. */
export class CachedFeatures implements FeatureSource {
  readonly encoder: string;
  readonly regions: number;
  readonly channels: number;
  readonly grid: { rows: number; cols: number };
  private readonly reader: FeatureReader;

  /** `keys[i]`: the cache key of image i; `index`: the dataset's index they came from, if any. */
  constructor(
    cache: FeatureCache,
    shape: FeatureShape,
    private readonly keys: ImageKeys,
    index?: string,
  ) {
    const side = Math.round(Math.sqrt(shape.regions));
    this.encoder = `${shape.encoder}@${shape.inputSize}`;
    this.regions = shape.regions;
    this.channels = shape.channels;
    this.grid = { rows: side, cols: side };
    this.reader = new FeatureReader(cache, shape, index);
  }

  read(images: readonly number[]): Promise<Float32Array> {
    return this.reader.read(images.map((image) => this.keys.at(image) as string));
  }

  /** The whole set in memory: for the validation subset, which is bounded by spec.training.validationImages. */
  async table(ids: readonly string[]): Promise<FeatureTable> {
    const { encoder, regions, channels, grid } = this;
    const size = regions * channels;
    const all = await this.read(Array.from({ length: this.keys.length }, (_, i) => i));
    return { encoder, regions, channels, grid, ids: [...ids], features: ids.map((_, i) => all.slice(i * size, (i + 1) * size)) };
  }
}

export const FEATURE_CACHE_ENV = 'CAPTIONRUN_FEATURE_CACHE';

/**
 * The trainer's writable working directory: $CAPTIONRUN_CACHE where the operator mounts one (pods have a
 * read-only root filesystem), else .captionrun under the current directory (local mode).
 */
export function workDir(): string {
  return process.env.CAPTIONRUN_CACHE ?? '.captionrun';
}

/** A directory or an s3://bucket/prefix: $CAPTIONRUN_FEATURE_CACHE, else spec.dataset.featureCache, else the work directory's. */
export function featureCacheDir(dataset: Pick<DatasetSpec, 'featureCache'>): string {
  return process.env[FEATURE_CACHE_ENV] ?? dataset.featureCache ?? join(workDir(), 'features');
}

export const FEATURE_MIRROR_ENV = 'CAPTIONRUN_FEATURE_MIRROR';

/**
 * Where an S3 feature cache is mirrored on local disk: $CAPTIONRUN_FEATURE_MIRROR ("off" for no mirror),
 * else features-mirror in the working directory. Each image's entry is read once per caption (5 per image
 * in COCO and Flickr8k): with the mirror only the first of those reads is a GET (BENCHMARKS.md, issue 19).
 */
export function featureCacheMirror(): string | undefined {
  const configured = process.env[FEATURE_MIRROR_ENV];
  if (configured === 'off') return undefined;
  return configured || join(workDir(), 'features-mirror');
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
