// Batched feature extraction through the content-addressed cache: the way training gets encoder features.
// Per batch: load each image's bytes, digest them, read hits from the cache; decode and encode only the
// misses, in one forward pass, and write them back. A second pass over the same images does no encoder work.
// Images that cannot be loaded or decoded are reported and skipped; the rest go on.
import { InvalidInputError } from '../../lib/errors.js';
import type { DatasetItem, ImageSource } from '../data/dataset.js';
import type { ImageEncoder } from './encoder.js';
import { imageDigest, type FeatureCache, type FeatureShape, type Features } from './feature-cache.js';
import { decodeBatch, type BadImage } from './image-pipeline.js';

export interface ExtractProgress {
  done: number;
  total: number;
  hits: number;
  /** Images run through the encoder. */
  encoded: number;
  bad: number;
  elapsedSeconds: number;
  imagesPerSecond: number;
  /** Undefined until the first batch finished. */
  etaSeconds?: number;
}

export interface ExtractOptions {
  /** Images per encoder forward pass (default 8). */
  batchSize?: number;
  onProgress?: (p: ExtractProgress) => void;
  /** Fail when more than this fraction of images is bad (default 0.05): a wrong directory should stop, a few bad JPEGs should not. */
  maxBadFraction?: number;
}

export interface FeatureBatch {
  items: DatasetItem[];
  features: Features[];
}

export interface ExtractSummary {
  total: number;
  hits: number;
  encoded: number;
  bad: BadImage[];
  seconds: number;
}

/** The cache namespace of an encoder's features. */
export function featureShape(encoder: ImageEncoder): FeatureShape {
  return { encoder: encoder.name, weightsDigest: encoder.weightsDigest, inputSize: encoder.inputSize, regions: encoder.mapSize * encoder.mapSize, channels: encoder.channels };
}

/**
 * Streams features batch by batch (bounded memory: one batch of pixels and features at a time), in item order
 * minus bad images. The summary, bad images included, is returned when the generator finishes.
 */
export async function* streamFeatures(
  items: readonly DatasetItem[],
  encoder: ImageEncoder,
  cache: FeatureCache,
  options: ExtractOptions = {},
): AsyncGenerator<FeatureBatch, ExtractSummary> {
  const batchSize = options.batchSize ?? 8;
  const shape = featureShape(encoder);
  const started = performance.now();
  const bad: BadImage[] = [];
  let hits = 0;
  let encoded = 0;
  let done = 0;
  const report = () => {
    const elapsedSeconds = (performance.now() - started) / 1000;
    const imagesPerSecond = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
    options.onProgress?.({
      done,
      total: items.length,
      hits,
      encoded,
      bad: bad.length,
      elapsedSeconds,
      imagesPerSecond,
      etaSeconds: done > 0 && imagesPerSecond > 0 ? (items.length - done) / imagesPerSecond : undefined,
    });
  };
  for (let start = 0; start < items.length; start += batchSize) {
    const chunk = items.slice(start, start + batchSize);
    const found: (Features | undefined)[] = new Array(chunk.length);
    const misses: { index: number; id: string; key: string; src: ImageSource }[] = [];
    await Promise.all(
      chunk.map(async (item, i) => {
        let src: ImageSource;
        try {
          src = await item.image();
        } catch (err) {
          const e = err as InvalidInputError;
          bad.push({ id: item.id, file: e.file, message: e.message });
          return;
        }
        const key = imageDigest(src);
        const cached = await cache.get(shape, key);
        if (cached) {
          found[i] = cached;
          hits++;
        } else misses.push({ index: i, id: item.id, key, src });
      }),
    );
    if (misses.length > 0) {
      misses.sort((a, b) => a.index - b.index);
      const { indexes, pixels } = await decodeBatch(misses, encoder.inputSize, (b) => bad.push(b));
      if (indexes.length > 0) {
        const out = await encoder.encode(pixels, indexes.length);
        encoded += indexes.length;
        const mapLength = shape.regions * shape.channels;
        await Promise.all(
          indexes.map(async (m, k) => {
            const miss = misses[m] as (typeof misses)[number];
            // slice, not subarray: each image's features must own their memory, not pin the whole batch.
            const features = { map: out.map.slice(k * mapLength, (k + 1) * mapLength), pooled: out.pooled.slice(k * shape.channels, (k + 1) * shape.channels) };
            found[miss.index] = cache.asStored(features);
            await cache.put(shape, miss.key, features);
          }),
        );
      }
    }
    done += chunk.length;
    report();
    const good = chunk.flatMap((item, i) => (found[i] ? [{ item, features: found[i] }] : []));
    if (good.length > 0) yield { items: good.map((g) => g.item), features: good.map((g) => g.features) };
  }
  const maxBad = options.maxBadFraction ?? 0.05;
  if (items.length > 0 && bad.length > maxBad * items.length) {
    throw new InvalidInputError(`${bad.length} of ${items.length} images could not be read (more than ${Math.round(maxBad * 100)} %); first: ${describeBad(bad[0])}`, {
      hint: 'check the dataset source path and the image files',
    });
  }
  return { total: items.length, hits, encoded, bad, seconds: (performance.now() - started) / 1000 };
}

function describeBad(b: BadImage | undefined): string {
  return b === undefined ? '' : `${b.file ?? b.id}: ${b.message}`;
}

/** Every item's features in one Map (id -> features): convenient for small datasets such as the synthetic quickstart. */
export async function extractFeatures(
  items: readonly DatasetItem[],
  encoder: ImageEncoder,
  cache: FeatureCache,
  options: ExtractOptions = {},
): Promise<{ features: Map<string, Features>; summary: ExtractSummary }> {
  const features = new Map<string, Features>();
  const stream = streamFeatures(items, encoder, cache, options);
  for (;;) {
    const next = await stream.next();
    if (next.done) return { features, summary: next.value };
    next.value.items.forEach((item, i) => features.set(item.id, next.value.features[i] as Features));
  }
}
