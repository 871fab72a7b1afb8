// Batched feature extraction through the content-addressed cache: the way training gets encoder features.
// Per batch: load each image's bytes, digest them, read hits from the cache; decode and encode only the
// misses, in one forward pass, and write them back. A second pass over the same images does no encoder work.
// Images that cannot be loaded or decoded are reported and skipped; the rest go on.
import { InvalidInputError } from '../../lib/errors.js';
import type { DatasetItem, ImageSource } from '../data/dataset.js';
import { featureShape, type ImageEncoder, type LazyEncoder } from '../model/encoder.js';
import { imageDigest, type FeatureCache, type Features } from './feature-cache.js';
import { decodeBatch, type BadImage } from '../model/image-pipeline.js';

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

export { featureShape };

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
  const stream = passOver(items, { shape: featureShape(encoder), load: async () => encoder }, cache, options, 'read');
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
    const good = next.value.flatMap((r) => (r.features ? [{ item: r.item, features: r.features }] : []));
    if (good.length > 0) yield { items: good.map((g) => g.item), features: good.map((g) => g.features) };
  }
}

/**
 * Makes sure every item's features are in the cache without reading the cached ones back: the trainer's pass
 * before it streams them per batch. The encoder is built on the first miss only. Returns each item's cache
 * key, undefined for a bad image.
 */
export async function cacheFeatures(
  items: readonly DatasetItem[],
  encoder: Pick<LazyEncoder, 'shape' | 'load'>,
  cache: FeatureCache,
  options: ExtractOptions = {},
): Promise<{ keys: (string | undefined)[]; summary: ExtractSummary }> {
  const keys: (string | undefined)[] = [];
  const stream = passOver(items, encoder, cache, options, 'check');
  for (;;) {
    const next = await stream.next();
    if (next.done) return { keys, summary: next.value };
    for (const r of next.value) keys.push(r.key);
  }
}

interface ItemResult {
  item: DatasetItem;
  /** Undefined for a bad image. */
  key?: string;
  /** Only when reading: the features as stored. */
  features?: Features;
}

/** One pass over the items in batches: digest, look up (read the entry, or only check it exists), encode the misses. */
async function* passOver(
  items: readonly DatasetItem[],
  encoder: Pick<LazyEncoder, 'shape' | 'load'>,
  cache: FeatureCache,
  options: ExtractOptions,
  lookup: 'read' | 'check',
): AsyncGenerator<ItemResult[], ExtractSummary> {
  const batchSize = options.batchSize ?? 8;
  const { shape } = encoder;
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
    const chunk: ItemResult[] = items.slice(start, start + batchSize).map((item) => ({ item }));
    const misses: { index: number; id: string; key: string; src: ImageSource }[] = [];
    await Promise.all(
      chunk.map(async (r, i) => {
        let src: ImageSource;
        try {
          src = await r.item.image();
        } catch (err) {
          const e = err as InvalidInputError;
          bad.push({ id: r.item.id, file: e.file, message: e.message });
          return;
        }
        const key = imageDigest(src);
        const found = lookup === 'read' ? await cache.get(shape, key) : await cache.has(shape, key);
        if (found) {
          r.key = key;
          if (found !== true) r.features = found;
          hits++;
        } else misses.push({ index: i, id: r.item.id, key, src });
      }),
    );
    if (misses.length > 0) {
      misses.sort((a, b) => a.index - b.index);
      const { indexes, pixels } = await decodeBatch(misses, shape.inputSize, (b) => bad.push(b));
      if (indexes.length > 0) {
        const out = await (await encoder.load()).encode(pixels, indexes.length);
        encoded += indexes.length;
        const mapLength = shape.regions * shape.channels;
        await Promise.all(
          indexes.map(async (m, k) => {
            const miss = misses[m] as (typeof misses)[number];
            // slice, not subarray: each image's features must own their memory, not pin the whole batch.
            const features = { map: out.map.slice(k * mapLength, (k + 1) * mapLength), pooled: out.pooled.slice(k * shape.channels, (k + 1) * shape.channels) };
            await cache.put(shape, miss.key, features);
            const r = chunk[miss.index] as ItemResult;
            r.key = miss.key;
            if (lookup === 'read') r.features = cache.asStored(features);
          }),
        );
      }
    }
    done += chunk.length;
    report();
    yield chunk;
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
