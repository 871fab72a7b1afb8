// `npm run bench -- features [--quick] [--keras PYTHON]`: encoder throughput per backend and batch size
// (speed-up over batch 1 measured in the same run; EfficientNet-Lite1 against InceptionV3), the native backend against wasm (tfjs-node built by
// setup-native.sh, measured when it is built) and, with --keras, against the same
// encoders in Keras on TensorFlow CPU run by that Python (bench/features-keras-baseline.py); feature-cache
// hit vs miss throughput on the same images, and bytes per cached image in float16 vs float32. Forward passes are untimed once first (warm-up: kernel setup,
// weight upload) and then timed. The cpu backend is ~14 s per 299 px image, so it runs batch 1 only.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, type BackendName } from '../trainer-image/backend.js';
import { openSynthetic } from '../trainer-image/data/synthetic.js';
import { efficientnetLite1ModelDir } from '../trainer-image/model/efficientnet-lite.js';
import { loadEncoder, type ImageEncoder } from '../trainer-image/model/encoder.js';
import { extractFeatures } from '../trainer-image/features/extract-features.js';
import { FeatureCache } from '../trainer-image/features/feature-cache.js';
import { backendLoads, figure, type Figure } from './results.js';

const ENCODERS = [
  { encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 299 },
  // Random weights are explicit here: throughput does not depend on the values.
  { encoder: 'densenet121', encoderWeights: 'random', inputSize: 224 },
  // Its ImageNet weights, converted by `npm run setup:efficientnet`; it has no random mode.
  { encoder: 'efficientnet-lite1', encoderWeights: 'pretrained', inputSize: 240 },
] as const;

/** The encoders this machine can load: EfficientNet-Lite1 only once its weights are converted. */
function availableEncoders(): (typeof ENCODERS)[number][] {
  if (existsSync(join(efficientnetLite1ModelDir(), 'model.json'))) return [...ENCODERS];
  process.stderr.write(`features bench: efficientnet-lite1 skipped: no converted weights at ${efficientnetLite1ModelDir()} (npm run setup:efficientnet)\n`);
  return ENCODERS.filter((e) => e.encoder !== 'efficientnet-lite1');
}

async function imagesPerSecond(encoder: ImageEncoder, batch: number): Promise<number> {
  const pixels = new Uint8Array(batch * encoder.inputSize * encoder.inputSize * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  await encoder.encode(pixels, batch);
  const started = performance.now();
  await encoder.encode(pixels, batch);
  return batch / ((performance.now() - started) / 1000);
}

/** images/s per encoder and batch size for the same encoders in Keras, on TensorFlow CPU. */
function kerasRates(python: string, batches: number[]): { tensorflow: string; rates: Record<string, Record<string, number>> } {
  const script = fileURLToPath(new URL('./features-keras-baseline.py', import.meta.url));
  const r = spawnSync(python, [script, ...batches.map(String)], { encoding: 'utf8' });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`Keras baseline failed (${python} needs tensorflow-cpu): ${r.stderr.slice(-500)}`);
  return JSON.parse(last) as { tensorflow: string; rates: Record<string, Record<string, number>> };
}

export default async function features(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({ args, options: { quick: { type: 'boolean', default: false }, keras: { type: 'string' } } });
  const quick = values.quick ?? false;
  const figures: Figure[] = [];
  const rate = new Map<string, number>();
  const key = (backend: string, encoder: string, batch: number): string => `${backend} ${encoder} ${batch}`;
  const plan: [BackendName, number[]][] = [
    ['tensorflow-gpu', [1, 8, 32]],
    ['tensorflow', [1, 8, 32]],
    ['wasm', quick ? [1, 8] : [1, 8, 32]],
    ['cpu', [1]],
  ];
  const encoders = availableEncoders();
  for (const [backend, batches] of plan) {
    if (!(await backendLoads(backend, 'features'))) continue;
    for (const spec of encoders) {
      if (backend === 'cpu' && quick) continue;
      const encoder = await loadEncoder(spec);
      let single = 0;
      for (const batch of batches) {
        const measured = await imagesPerSecond(encoder, batch);
        if (batch === 1) single = measured;
        rate.set(key(backend, spec.encoder, batch), measured);
        figures.push(figure(`${spec.encoder} ${spec.inputSize}px ${backend} batch ${batch}`, measured, 'images/s', batch === 1 ? null : single, batch === 1 ? 'reference' : '> 1x batch 1'));
      }
      encoder.dispose();
    }
  }

  // EfficientNet-Lite1 against InceptionV3, the encoder it would replace (the same 8x8 grid), per backend and batch.
  for (const [backend, batches] of plan) {
    for (const batch of batches) {
      const lite = rate.get(key(backend, 'efficientnet-lite1', batch));
      const inception = rate.get(key(backend, 'inceptionv3', batch));
      if (lite !== undefined && inception !== undefined) {
        figures.push(figure(`efficientnet-lite1 240px vs inceptionv3 299px, ${backend} batch ${batch}`, lite, 'images/s', inception, 'measured (8x8 map both)'));
      }
    }
  }

  const keras = values.keras === undefined ? undefined : kerasRates(values.keras, [1, 8, 32]);
  for (const spec of encoders) {
    for (const batch of [1, 8, 32]) {
      const native = rate.get(key('tensorflow', spec.encoder, batch));
      const wasm = rate.get(key('wasm', spec.encoder, batch));
      const label = `${spec.encoder} ${spec.inputSize}px batch ${batch}: native (tfjs-node)`;
      if (native !== undefined && wasm !== undefined) figures.push(figure(`${label} vs wasm`, native, 'images/s', wasm, '> 1x wasm'));
      const k = keras?.rates[spec.encoder]?.[String(batch)];
      // Throughput, so the time target "<= 1.5x Keras" reads as at least 1/1.5 of Keras's images/s.
      if (native !== undefined && k !== undefined) figures.push(figure(`${label} vs Keras on TensorFlow ${keras?.tensorflow ?? ''} CPU`, native, 'images/s', k, '>= 0.67 x'));
    }
  }

  // Cache: the same 32 synthetic images through InceptionV3 at 139 px (the quickstart size), miss then hit.
  await initBackend('wasm');
  const dir = await mkdtemp(join(tmpdir(), 'bench-features-'));
  try {
    const items = openSynthetic({ images: quick ? 16 : 32, seed: 1 }).items();
    const encoder = await loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 139 });
    const cache = new FeatureCache(join(dir, 'f16'));
    const miss = await extractFeatures(items, encoder, cache, { batchSize: 8 });
    const hit = await extractFeatures(items, encoder, cache, { batchSize: 8 });
    if (hit.summary.encoded !== 0) throw new Error('second pass encoded images: cache is broken');
    const missRate = items.length / miss.summary.seconds;
    figures.push(figure('extract inceptionv3 139px wasm, cache hit (vs miss)', items.length / hit.summary.seconds, 'images/s', missRate, '>> miss'));
    encoder.dispose();

    // Bytes per image at the default 299 px (8x8x2048 map + 2048 pooled), written through both dtypes.
    const big = await loadEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 299 });
    const few = items.slice(0, 2);
    const half = new FeatureCache(join(dir, 'h'), 'float16');
    const full = new FeatureCache(join(dir, 'f'), 'float32');
    await extractFeatures(few, big, half, { batchSize: 2 });
    await extractFeatures(few, big, full, { batchSize: 2 });
    figures.push(figure('cache bytes per image, inceptionv3 299px, float16 (vs float32)', half.stats.bytesWritten / few.length, 'bytes', full.stats.bytesWritten / few.length, '~0.5 of float32'));
    big.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}
