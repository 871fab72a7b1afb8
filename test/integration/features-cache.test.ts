// Feature extraction through the content-addressed cache on real encoder passes (20 small synthetic images):
// the second pass does no encoder work, corrupt entries are recomputed, bad images are skipped and reported.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InvalidInputError } from '../../lib/errors.js';
import { useBackendUnderTest } from '../backend-under-test.js';
import type { DatasetItem } from '../../trainer-image/data/dataset.js';
import { openSynthetic } from '../../trainer-image/data/synthetic.js';
import { loadEncoder, type ImageEncoder } from '../../trainer-image/model/encoder.js';
import { extractFeatures, featureShape, type ExtractProgress } from '../../trainer-image/features/extract-features.js';
import { FeatureCache } from '../../trainer-image/features/feature-cache.js';
import { FLOAT16_RELATIVE_ERROR } from '../../trainer-image/model/float16.js';
import { decodeToRgb } from '../../trainer-image/model/image-pipeline.js';

let dir: string;
let encoder: ImageEncoder;
const items = openSynthetic({ images: 20, seed: 4, imageSize: 64, maxObjects: 2 }).items();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'features-'));
  await useBackendUnderTest();
  // 75 px is InceptionV3's smallest input (a 1x1 map): real weights, real forward passes, little CPU.
  encoder = await loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 75 });
});
after(async () => {
  encoder.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function entries(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out.sort();
}

test('a second pass over the same images does no encoder work and returns the same features', async () => {
  const cache = new FeatureCache(join(dir, 'a'));
  const progress: ExtractProgress[] = [];
  const first = await extractFeatures(items, encoder, cache, { batchSize: 8, onProgress: (p) => progress.push(p) });
  assert.equal(encoder.imagesEncoded, 20);
  assert.equal(first.summary.encoded, 20);
  assert.equal(first.features.size, 20);
  assert.deepEqual(
    progress.map((p) => p.done),
    [8, 16, 20],
  );
  assert.equal(progress.at(-1)?.etaSeconds, 0);

  const second = await extractFeatures(items, encoder, cache, { batchSize: 8 });
  assert.equal(encoder.imagesEncoded, 20, 'no encoder call on the second pass');
  assert.equal(second.summary.hits, 20);
  assert.equal(second.summary.encoded, 0);
  for (const [id, f] of first.features) assert.deepEqual(second.features.get(id), f);

  // What comes back from the float16 cache is the encoder's float32 output within half-precision rounding.
  const item = items[3] as DatasetItem;
  const direct = await encoder.encode(await decodeToRgb(await item.image(), 75), 1);
  const cached = second.features.get(item.id);
  assert.ok(cached);
  assert.equal(cached.map.length, featureShape(encoder).regions * 2048);
  direct.map.forEach((v, i) => assert.ok(Math.abs((cached.map[i] as number) - v) <= Math.abs(v) * FLOAT16_RELATIVE_ERROR + 1e-4));
  direct.pooled.forEach((v, i) => assert.ok(Math.abs((cached.pooled[i] as number) - v) <= Math.abs(v) * FLOAT16_RELATIVE_ERROR + 1e-4));

  // float16 halves the bytes of float32 entries.
  const wide = new FeatureCache(join(dir, 'f32'), 'float32');
  await extractFeatures(items.slice(0, 4), encoder, wide, { batchSize: 4 });
  const half = new FeatureCache(join(dir, 'f16'), 'float16');
  await extractFeatures(items.slice(0, 4), encoder, half, { batchSize: 4 });
  assert.ok(half.stats.bytesWritten < 0.6 * wide.stats.bytesWritten);
});

test('a corrupt entry is detected by its digest, reported and recomputed; the others still hit', async () => {
  const cache = new FeatureCache(join(dir, 'b'));
  await extractFeatures(items, encoder, cache, { batchSize: 10 });
  const files = await entries(cache.dir);
  assert.equal(files.length, 20);
  const victim = files[5] as string;
  const bytes = await readFile(victim);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
  await writeFile(victim, bytes);
  await writeFile(files[6] as string, Buffer.alloc(0));

  const corrupt: string[] = [];
  cache.onCorrupt = (path, reason) => corrupt.push(`${path}: ${reason}`);
  const before = encoder.imagesEncoded;
  const again = await extractFeatures(items, encoder, cache, { batchSize: 10 });
  assert.equal(encoder.imagesEncoded - before, 2);
  assert.equal(again.summary.hits, 18);
  assert.equal(cache.stats.corrupt, 2);
  assert.match(corrupt.join('\n'), /digest mismatch/);
  assert.equal((await entries(cache.dir)).length, 20, 'recomputed entries are written back');
});

test('prune frees every entry and its bytes; the next pass recomputes', async () => {
  const cache = new FeatureCache(join(dir, 'p'));
  await extractFeatures(items.slice(0, 4), encoder, cache, { batchSize: 4 });
  const written = cache.stats.bytesWritten;
  assert.equal(await cache.prune(), written, 'reports exactly the bytes it wrote');
  assert.deepEqual(await entries(cache.dir), []);
  const before = encoder.imagesEncoded;
  await extractFeatures(items.slice(0, 4), encoder, cache, { batchSize: 4 });
  assert.equal(encoder.imagesEncoded - before, 4, 'every image is encoded again');
});

test('bad images are skipped and reported, the rest are extracted; too many bad images is an error', async () => {
  const cache = new FeatureCache(join(dir, 'c'));
  const broken = (id: string, data: Buffer): DatasetItem => ({ id, split: 'train', captions: ['x'], image: async () => ({ kind: 'encoded', data, path: `/data/${id}` }) });
  const missing: DatasetItem = {
    id: 'gone.jpg',
    split: 'train',
    captions: ['x'],
    image: async () => {
      throw new InvalidInputError('image file is missing', { file: '/data/gone.jpg' });
    },
  };
  const mixed = [...items.slice(0, 6), broken('junk.jpg', Buffer.from('not an image')), missing];
  const result = await extractFeatures(mixed, encoder, cache, { batchSize: 4, maxBadFraction: 0.5 });
  assert.equal(result.features.size, 6);
  assert.deepEqual(result.summary.bad.map((b) => b.id).sort(), ['gone.jpg', 'junk.jpg']);
  assert.match(result.summary.bad.find((b) => b.id === 'junk.jpg')?.message ?? '', /unreadable or truncated image/);
  await assert.rejects(extractFeatures(mixed, encoder, cache, { batchSize: 4 }), (e: unknown) => e instanceof InvalidInputError && /2 of 8 images could not be read/.test(e.message));
});
