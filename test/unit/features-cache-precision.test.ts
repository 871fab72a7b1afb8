import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FeatureCache, type FeatureShape, type Features } from '../../trainer-image/features/feature-cache.js';
import { featureCacheDtype } from '../../trainer-image/train/features.js';

const shape: FeatureShape = { encoder: 'inceptionv3', weightsDigest: 'ab'.repeat(32), inputSize: 139, regions: 4, channels: 3 };
// 1/3 and friends are not representable in half precision: rounding them is visible.
const features: Features = { map: Float32Array.from({ length: 12 }, (_, i) => (i + 1) / 3), pooled: Float32Array.from([0.1, 0.2, 0.3]) };
const key = 'cd'.repeat(32);

test('spec.training.precision picks the feature cache dtype: float16-storage rounds features, float32 keeps them', async () => {
  assert.equal(featureCacheDtype('float16-storage'), 'float16');
  assert.equal(featureCacheDtype('float32'), 'float32');
  const dir = mkdtempSync(join(tmpdir(), 'precision-'));
  const wide = new FeatureCache(join(dir, 'a'), 'float32');
  await wide.put(shape, key, features);
  assert.deepEqual((await wide.get(shape, key))?.map, features.map);
  const half = new FeatureCache(join(dir, 'b'), 'float16');
  await half.put(shape, key, features);
  const rounded = await half.get(shape, key);
  assert.notDeepEqual(rounded?.map, features.map);
  assert.deepEqual(rounded, half.asStored(features));
});

test('a shared cache gives each precision what it would have stored itself, whoever filled it first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'precision-shared-'));
  const half = new FeatureCache(dir, 'float16');
  const wide = new FeatureCache(dir, 'float32');
  await half.put(shape, key, features);
  // A float16 entry has lost digits a float32 run wants: a miss, so the features are encoded again.
  assert.equal(await wide.get(shape, key), undefined);
  assert.deepEqual(wide.stats, { hits: 0, misses: 1, corrupt: 0, bytesWritten: 0, mirrorHits: 0 });
  await wide.put(shape, key, features);
  assert.deepEqual((await wide.get(shape, key))?.map, features.map);
  // A float32 entry is rounded for a float16 run exactly as its own put would have stored it.
  assert.deepEqual(await half.get(shape, key), half.asStored(features));
});
