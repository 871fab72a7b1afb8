// The trainer's pass over the dataset before training: every image's features into the shared cache, each
// rank encoding its contiguous share of the images, then every rank learning every image's cache key. Only
// misses are encoded and the encoder is built on the first one, so a relaunched gang re-encodes only what a
// previous attempt did not finish. Once a pass has found every image, the keys are saved as the dataset's
// index in the cache, and later launches read that instead of the images: a resume starts within seconds.
import { createHash } from 'node:crypto';
import { connectionOf } from '../../lib/s3-connection.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { DatasetItem } from '../data/dataset.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import { lazyEncoder } from '../model/encoder.js';
import { cacheFeatures, type ExtractProgress } from '../features/extract-features.js';
import { FeatureCache, type FeatureShape } from '../features/feature-cache.js';
import { ImageKeys } from '../features/image-keys.js';
import type { TrainConfig } from './config.js';
import { encoderInputSize, featureCacheDir, featureCacheDtype, featureCacheMirror } from './features.js';
import { shardRange } from './validation.js';

export interface CachedDataset {
  cache: FeatureCache;
  shape: FeatureShape;
  /** Each item's cache key, aligned with the items; none for an image that could not be read. */
  keys: ImageKeys;
  /** The name of the dataset's index in the cache (see FeatureCache.readIndex). */
  index: string;
}

/** Told as this rank's share is checked and encoded. */
export type ShardProgress = (progress: ExtractProgress) => void;

export async function cacheDataset(config: TrainConfig, source: string, items: readonly DatasetItem[], group: Pick<ProcessGroup, 'rank' | 'worldSize' | 'broadcast'>, log: Logger, onProgress?: ShardProgress): Promise<CachedDataset> {
  // s3:// weights and an s3:// cache are reached like the checkpoints: one endpoint and one Secret for the run.
  const s3 = connectionOf(config.checkpoint.store.s3);
  const encoder = await lazyEncoder({ encoder: config.encoder.name, encoderWeights: config.encoder.weights, inputSize: encoderInputSize(config), seed: config.training.seed, s3 }, log);
  const cache = new FeatureCache(featureCacheDir(config.dataset), featureCacheDtype(config.training.precision), s3, { mirror: featureCacheMirror() });
  const { rank, worldSize } = group;
  const index = indexName(source, items);
  const known = await cache.readIndex(encoder.shape, index);
  if (known?.length === items.length) {
    encoder.dispose();
    if (rank === 0) log.info({ index: cache.namespace(encoder.shape), images: items.length }, `feature index found: all ${items.length} images were cached by an earlier pass; no image is read`);
    return { cache, shape: encoder.shape, keys: known, index };
  }
  const timeoutMs = config.distributed.rendezvousTimeoutSeconds * 1000;
  // Sharding pays only where the ranks share one cache (S3, or one machine's directory); pods with their own
  // emptyDir each need every image they will read, which over an epoch is every image.
  const launch = `${config.distributed.runId}-${config.distributed.attempt}`.replace(/[^a-zA-Z0-9-]/g, '-');
  const shared = await cacheIsShared(cache, encoder.shape, group, launch, timeoutMs);
  if (rank === 0 && worldSize > 1) {
    log.info({ shared }, shared ? `feature cache shared by the ${worldSize} ranks: each encodes its share` : `each rank has its own feature cache: every rank encodes every image`);
  }
  const { start, end } = shared ? shardRange(items.length, rank, worldSize) : { start: 0, end: items.length };
  try {
    let lastLog = 0;
    const { keys, summary } = await cacheFeatures(items.slice(start, end), encoder, cache, {
      onProgress: (p) => {
        onProgress?.(p);
        if (Date.now() - lastLog < 5000 && p.done < p.total) return;
        lastLog = Date.now();
        const eta = p.etaSeconds === undefined ? '' : `, ETA ${Math.round(p.etaSeconds)} s`;
        log.info({ ...p, rank, worldSize }, `features: ${p.done}/${p.total} images of rank ${rank}'s share (${p.hits} cached, ${p.encoded} encoded, ${p.imagesPerSecond.toFixed(1)} images/s${eta})`);
      },
    });
    for (const bad of summary.bad) log.warn(bad, `skipping image ${bad.id}: ${bad.message}`);
    const all = ImageKeys.from(shared ? await gatherKeys(group, keys, timeoutMs) : keys);
    if (rank === 0) await cache.writeIndex(encoder.shape, index, all);
    return { cache, shape: encoder.shape, keys: all, index };
  } finally {
    encoder.dispose();
  }
}

/**
 * Whether every rank sees what every other rank writes to its cache: each writes a marker (an empty index
 * named for this launch), and after all have written each counts the markers it sees; the gang agrees on
 * the answer, so no rank shards alone.
 */
export async function cacheIsShared(cache: FeatureCache, shape: FeatureShape, group: Pick<ProcessGroup, 'rank' | 'worldSize' | 'broadcast'>, launch: string, timeoutMs: number): Promise<boolean> {
  if (group.worldSize === 1) return true;
  const marker = (rank: number): string => `gang-probe-${launch}-rank${rank}`;
  await cache.writeIndex(shape, marker(group.rank), ImageKeys.from([]));
  await gatherKeys(group, [], timeoutMs);
  let seen = 0;
  for (let r = 0; r < group.worldSize; r++) if ((await cache.readIndex(shape, marker(r))) !== undefined) seen += 1;
  const views = await gatherKeys(group, [String(seen === group.worldSize)], timeoutMs);
  // Every rank has read every marker once the views are gathered: each removes its own.
  await cache.removeIndex(shape, marker(group.rank));
  return views.every((v) => v === 'true');
}

/** Names a dataset's index by its source and its images' ids, in order. */
function indexName(source: string, items: readonly DatasetItem[]): string {
  const hash = createHash('sha256').update(source);
  for (const item of items) hash.update(`\n${item.id}`);
  return hash.digest('hex');
}

/**
 * Every rank's keys, in rank order (= item order). Each rank waits here for the slowest one's share, with the
 * slow deadline: a rank that does not finish in time fails the gang, and the relaunch resumes its share.
 */
async function gatherKeys(group: Pick<ProcessGroup, 'rank' | 'worldSize' | 'broadcast'>, mine: (string | undefined)[], timeoutMs: number): Promise<(string | undefined)[]> {
  if (group.worldSize === 1) return mine;
  const all: (string | undefined)[] = [];
  for (let root = 0; root < group.worldSize; root++) {
    const bytes = await group.broadcast(root === group.rank ? new TextEncoder().encode(JSON.stringify(mine.map((k) => k ?? null))) : undefined, { root, timeoutMs });
    all.push(...(JSON.parse(new TextDecoder().decode(bytes)) as (string | null)[]).map((k) => k ?? undefined));
  }
  return all;
}
