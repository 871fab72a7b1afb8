// The pieces that keep a training run's memory independent of the dataset: the sharded pass that makes sure
// every image is in the feature cache (encoding only misses, building the encoder only for them), the source
// that reads a batch's entries back, and the read-ahead that hides those reads.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openSynthetic } from '../../trainer-image/data/synthetic.js';
import type { ImageEncoder } from '../../trainer-image/model/encoder.js';
import { cacheFeatures } from '../../trainer-image/features/extract-features.js';
import { FeatureCache, type FeatureShape } from '../../trainer-image/features/feature-cache.js';
import { ImageKeys } from '../../trainer-image/features/image-keys.js';
import { CachedFeatures } from '../../trainer-image/train/features.js';
import { Prefetcher } from '../../trainer-image/train/prefetch.js';
import { cacheIsShared } from '../../trainer-image/train/shard-features.js';
import type { ProcessGroup } from '../../trainer-image/distributed/process-group.js';
import { shardRange } from '../../trainer-image/train/validation.js';

const dir = await mkdtemp(join(tmpdir(), 'features-streaming-'));
after(() => rm(dir, { recursive: true, force: true }));

const shape: FeatureShape = { encoder: 'inceptionv3', weightsDigest: 'f'.repeat(64), inputSize: 32, regions: 4, channels: 3 };
const items = openSynthetic({ images: 10, seed: 9, imageSize: 32, maxObjects: 1 }).items();

/** Stands in for a real encoder: each image's map is its mean pixel value repeated, so entries differ per image. */
function fakeEncoder(): { encoder: { shape: FeatureShape; load: () => Promise<ImageEncoder> }; loads: () => number; encoded: () => number } {
  let loads = 0;
  let encoded = 0;
  const size = shape.regions * shape.channels;
  const built = {
    async encode(pixels: Uint8Array, count: number) {
      encoded += count;
      const per = pixels.length / count;
      const map = new Float32Array(count * size);
      const pooled = new Float32Array(count * shape.channels);
      for (let i = 0; i < count; i++) map.fill(pixels.subarray(i * per, (i + 1) * per).reduce((a, b) => a + b, 0) / per / 255, i * size, (i + 1) * size);
      return { map, pooled };
    },
  } as unknown as ImageEncoder;
  return { encoder: { shape, load: async () => (loads++, built) }, loads: () => loads, encoded: () => encoded };
}

test('ranks encode their shares into one cache; a later pass over everything builds no encoder and encodes nothing', async () => {
  const cache = new FeatureCache(join(dir, 'shared'));
  const first = fakeEncoder();
  const keys: (string | undefined)[] = [];
  for (let rank = 0; rank < 3; rank++) {
    const { start, end } = shardRange(items.length, rank, 3);
    keys.push(...(await cacheFeatures(items.slice(start, end), first.encoder, cache, { batchSize: 2 })).keys);
  }
  assert.equal(first.encoded(), items.length, 'each image encoded once across the three shares');
  const again = fakeEncoder();
  const second = await cacheFeatures(items, again.encoder, cache, { batchSize: 4 });
  assert.deepEqual(second.keys, keys, 'the keys the shares found are the keys of the whole set');
  assert.equal(second.summary.hits, items.length);
  assert.equal(again.loads(), 0, 'a fully cached pass never builds the encoder');
});

test('a relaunch after a partial pass encodes only the missing images', async () => {
  const cache = new FeatureCache(join(dir, 'partial'));
  await cacheFeatures(items.slice(0, 6), fakeEncoder().encoder, cache, { batchSize: 3 });
  const relaunch = fakeEncoder();
  const { summary } = await cacheFeatures(items, relaunch.encoder, cache, { batchSize: 3 });
  assert.equal(relaunch.encoded(), 4);
  assert.equal(summary.hits, 6);
});

test('the cached source reads the requested images, in the requested order, as the cache stores them', async () => {
  const cache = new FeatureCache(join(dir, 'source'));
  const { keys } = await cacheFeatures(items, fakeEncoder().encoder, cache, { batchSize: 5 });
  await cache.writeIndex(shape, 'dataset', ImageKeys.from(keys));
  const source = new CachedFeatures(cache, shape, ImageKeys.from(keys), 'dataset');
  const size = shape.regions * shape.channels;
  const rows = await source.read([7, 2, 7]);
  assert.equal(rows.length, 3 * size);
  const seven = (await cache.get(shape, keys[7] as string))?.map;
  const two = (await cache.get(shape, keys[2] as string))?.map;
  assert.deepEqual(rows.subarray(0, size), seven);
  assert.deepEqual(rows.subarray(size, 2 * size), two);
  assert.deepEqual(rows.subarray(2 * size), seven);
  assert.notDeepEqual(seven, two);
  assert.deepEqual((await cache.readIndex(shape, 'dataset'))?.toArray(), keys);
  // An entry deleted under a running trainer fails its batch and drops the index, so the relaunch checks
  // (and re-encodes) every image instead of trusting keys that no longer all resolve.
  await rm(cache.path(shape, keys[1] as string));
  await assert.rejects(source.read([1]), /disappeared during training/);
  assert.equal(await cache.readIndex(shape, 'dataset'), undefined);
});

test('the prefetcher reads at most depth items ahead, returns each item, and keeps unasked failures quiet', async () => {
  const started: number[] = [];
  const prefetch = new Prefetcher(async (i) => {
    started.push(i);
    if (i === 5) throw new Error('read 5 failed');
    return i * 10;
  }, 6, 2);
  assert.equal(await prefetch.get(0), 0);
  assert.deepEqual(started, [0, 1, 2]);
  assert.equal(await prefetch.get(1), 10);
  assert.deepEqual(started, [0, 1, 2, 3], 'one more read starts per item taken');
  assert.equal(await prefetch.get(3), 30);
  // Item 5 was read ahead and failed; nobody asked for it yet, so nothing was thrown. Asking reports it.
  await assert.rejects(prefetch.get(5), /read 5 failed/);
  assert.throws(() => prefetch.get(6), RangeError);
});

/** Ranks of one process standing in for a gang: the i-th broadcast of every rank is the same collective. */
function gang(size: number): Pick<ProcessGroup, 'rank' | 'worldSize' | 'broadcast'>[] {
  const rounds: { value: Promise<Uint8Array>; resolve: (v: Uint8Array) => void }[] = [];
  const round = (i: number) => {
    while (rounds.length <= i) {
      let resolve: (v: Uint8Array) => void = () => undefined;
      const value = new Promise<Uint8Array>((r) => (resolve = r));
      rounds.push({ value, resolve });
    }
    return rounds[i] as (typeof rounds)[number];
  };
  return Array.from({ length: size }, (_, rank) => {
    let calls = 0;
    return {
      rank,
      worldSize: size,
      async broadcast(data: Uint8Array | undefined, options: { root?: number } = {}) {
        const r = round(calls++);
        if (rank === (options.root ?? 0)) r.resolve(data as Uint8Array);
        return r.value;
      },
    } as Pick<ProcessGroup, 'rank' | 'worldSize' | 'broadcast'>;
  });
}

test('the gang shards extraction only when every rank sees every other rank\'s cache writes', async () => {
  const one = new FeatureCache(join(dir, 'probe-shared'));
  const sharedViews = await Promise.all(gang(2).map((g) => cacheIsShared(one, shape, g, 'launch-1', 5000)));
  assert.deepEqual(sharedViews, [true, true], 'one directory for both ranks: shared');
  assert.equal(await one.readIndex(shape, 'gang-probe-launch-1-rank0'), undefined, 'the markers are removed');
  // Two pods, each with its own emptyDir: neither sees the other's marker, and both agree on it.
  const own = [new FeatureCache(join(dir, 'probe-pod-0')), new FeatureCache(join(dir, 'probe-pod-1'))];
  const ownViews = await Promise.all(gang(2).map((g, rank) => cacheIsShared(own[rank] as FeatureCache, shape, g, 'launch-1', 5000)));
  assert.deepEqual(ownViews, [false, false]);
});
