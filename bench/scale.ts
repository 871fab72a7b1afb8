// `npm run bench -- scale [--sizes 2000,20000,100000] [--steps 200] [--s3-images 2000]`: the trainer on
// synthetic datasets of each size with every feature already cached, one process per size: peak RSS and
// steps per second against the smallest size (memory must follow the batch, not the dataset), and the
// same run reading its features from MinIO against reading them from a local directory. The cache is
// filled through the FeatureCache API with random float16 maps keyed by each image's real digest, rather
// than by encoding 100,000 images (hours on 2 cores): the trainer's pass then finds every entry present
// and never builds the encoder. Encoder: InceptionV3 at 139 px (the synthetic
// size), so each entry is a 3x3x2048 map, 36 KiB as float16.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { startMinio } from '../test/env/minio.js';
import { fillSyntheticCache } from '../test/feature-cache-fill.js';
import type { S3Connection } from '../lib/s3-connection.js';
import { lazyEncoder } from '../trainer-image/model/encoder.js';
import { FeatureCache, type FeatureShape } from '../trainer-image/model/feature-cache.js';
import { SCALE_IMAGE_SIZE, SCALE_SEED } from './support/scale-trainer.js';
import { figure, type Figure } from './results.js';

const CHILD = fileURLToPath(new URL('./support/scale-trainer.ts', import.meta.url));

interface ChildResult {
  images: number;
  backend: string;
  trainImages: number;
  peakRssBytes: number;
  stepsPerSecond: number;
  firstStepSeconds: number;
}

const bench = async (args: string[]): Promise<Figure[]> => {
  const { values } = parseArgs({ args, options: { sizes: { type: 'string', default: '2000,20000,100000' }, steps: { type: 'string', default: '200' }, 's3-images': { type: 'string', default: '2000' } } });
  const sizes = values.sizes.split(',').map(Number);
  const steps = Number(values.steps);
  const s3Images = Number(values['s3-images']);
  process.env.CAPTIONRUN_LOG_LEVEL ??= 'warn';
  const dir = await mkdtemp(join(tmpdir(), 'bench-scale-'));
  const { shape } = await lazyEncoder({ encoder: 'inceptionv3', encoderWeights: 'pretrained', inputSize: 139 });
  const figures: Figure[] = [];
  try {
    const local = join(dir, 'features');
    await fill(new FeatureCache(local), shape, Math.max(...sizes));
    // Each size twice: the first launch passes over every image (digest, existence check) and saves the
    // dataset's index; the relaunch reads the index instead, as a resumed run does.
    const first: ChildResult[] = [];
    const relaunch: ChildResult[] = [];
    for (const images of sizes) {
      first.push(await train(images, steps, { CAPTIONRUN_FEATURE_CACHE: local }));
      relaunch.push(await train(images, steps, { CAPTIONRUN_FEATURE_CACHE: local }));
    }
    for (const [launch, results] of [['first launch', first], ['relaunch', relaunch]] as const) {
      const base = results[0] as ChildResult;
      for (const r of results) {
        const label = `${launch}, ${r.images} images (${r.trainImages} training captions), ${r.backend}`;
        figures.push(figure(`trainer peak RSS, ${label} (vs ${base.images})`, r.peakRssBytes / 2 ** 20, 'MiB', base.peakRssBytes / 2 ** 20, 'within 10 %'));
        figures.push(figure(`steps/s, ${label} (vs ${base.images})`, r.stepsPerSecond, 'steps/s', base.stepsPerSecond, 'within 10 %'));
        figures.push(figure(`start to first step, ${label}, all features cached`, r.firstStepSeconds, 's', null, 'seconds'));
      }
    }

    const minio = await startMinio();
    try {
      await minio.createBucket('features');
      const s3: S3Connection = { endpoint: minio.endpoint, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey, region: minio.region };
      await fill(new FeatureCache('s3://features/bench', 'float16', s3), shape, s3Images);
      const env = { AWS_ENDPOINT_URL: minio.endpoint, AWS_ACCESS_KEY_ID: minio.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.secretAccessKey, AWS_REGION: minio.region };
      // Interleaved local, S3, local: the local baseline is the mean of the runs either side of the S3 one.
      const before = await train(s3Images, steps, { CAPTIONRUN_FEATURE_CACHE: local });
      const fromS3 = await train(s3Images, steps, { ...env, CAPTIONRUN_FEATURE_CACHE: 's3://features/bench' });
      const afterwards = await train(s3Images, steps, { CAPTIONRUN_FEATURE_CACHE: local });
      figures.push(figure(`steps/s, ${s3Images} images, features from MinIO (vs local directory)`, fromS3.stepsPerSecond, 'steps/s', (before.stepsPerSecond + afterwards.stepsPerSecond) / 2, '>= 90 %'));
    } finally {
      await minio.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
};
export default bench;

async function fill(cache: FeatureCache, shape: FeatureShape, images: number): Promise<void> {
  const started = performance.now();
  await fillSyntheticCache(cache, shape, { images, seed: SCALE_SEED, imageSize: SCALE_IMAGE_SIZE, maxObjects: 2 });
  process.stderr.write(`filled ${cache.namespace(shape)} with ${images} images' entries in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
}

async function train(images: number, steps: number, env: NodeJS.ProcessEnv): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHILD, String(images), String(steps)], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) as string) as ChildResult;
  process.stderr.write(`${JSON.stringify(result)}\n`);
  return result;
}
