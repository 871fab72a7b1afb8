// Fills a feature cache for a synthetic dataset without encoding it: a random float16 map per image, keyed by
// the image's real digest, so a trainer's pass over the dataset finds every entry and never builds the
// encoder. For tests and benchmarks that need many cached images (encoding 100,000 takes hours on 2 cores).
import { openSynthetic } from '../trainer-image/data/synthetic.js';
import { imageDigest, type FeatureCache, type FeatureShape } from '../trainer-image/features/feature-cache.js';

export async function fillSyntheticCache(cache: FeatureCache, shape: FeatureShape, synthetic: { images: number; seed: number; imageSize: number; maxObjects: number }): Promise<void> {
  const dataset = openSynthetic(synthetic);
  const items = [...dataset.items('train'), ...dataset.items('val')];
  const inFlight = 16;
  for (let start = 0; start < items.length; start += inFlight) {
    await Promise.all(
      items.slice(start, start + inFlight).map(async (item, k) => {
        const key = imageDigest(await item.image());
        if (await cache.has(shape, key)) return;
        const map = randomValues(shape.regions * shape.channels, start + k);
        await cache.put(shape, key, { map, pooled: map.subarray(0, shape.channels) });
      }),
    );
  }
}

function randomValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x / 2 ** 32;
  }
  return out;
}
