// `npm run bench -- scale [--sizes 2000,20000,100000] [--steps 200] [--s3-images 2000] [--s3-rounds 2]`: the trainer on
// synthetic datasets of each size with every feature already cached, one process per size: peak RSS and
// steps per second against the smallest size (memory must follow the batch, not the dataset), and the
// same run reading its features from MinIO against reading them from a local directory. The cache is
// filled through the FeatureCache API with random float16 maps keyed by each image's real digest, rather
// than by encoding 100,000 images (hours on 2 cores): the trainer's pass then finds every entry present
// and never builds the encoder. Encoder: InceptionV3 at 139 px (the synthetic
// size), so each entry is a 3x3x2048 map, 36 KiB as float16.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { startMinio } from '../test/env/minio.js';
import { fillSyntheticCache } from '../test/feature-cache-fill.js';
import { S3Client } from '@aws-sdk/client-s3';
import { s3Address, s3ClientConfig, type S3Connection } from '../lib/s3-connection.js';
import { getObjectBytes, listObjects } from '../lib/s3-objects.js';
import { SignedGet } from '../lib/s3-signed-get.js';
import { lazyEncoder } from '../trainer-image/model/encoder.js';
import { FeatureCache, type FeatureShape } from '../trainer-image/features/feature-cache.js';
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
  /** The 1-minute load average when the child finished: the machine is shared, so each figure says how busy it was. */
  loadAverage: string;
}

const bench = async (args: string[]): Promise<Figure[]> => {
  const { values } = parseArgs({ args, options: { sizes: { type: 'string', default: '2000,20000,100000' }, steps: { type: 'string', default: '200' }, 's3-images': { type: 'string', default: '2000' }, 's3-rounds': { type: 'string', default: '2' } } });
  const sizes = values.sizes.split(',').map(Number);
  const steps = Number(values.steps);
  const s3Images = Number(values['s3-images']);
  const s3Rounds = Number(values['s3-rounds']);
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
        const label = `${launch}, ${r.images} images (${r.trainImages} training captions), ${r.backend}, load ${r.loadAverage}`;
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
      figures.push(...(await getCost(s3, shape, minio.pid)));
      // Interleaved local, S3 with the mirror, S3 without, repeated, and a last local run: the baseline is
      // the mean of every local run, so the load the other sessions put on the machine moves both sides.
      // Each S3 run with the mirror starts with an empty one, as a fresh pod does.
      const locals: ChildResult[] = [];
      const mirrored: ChildResult[] = [];
      const direct: ChildResult[] = [];
      for (let round = 0; round < s3Rounds; round++) {
        locals.push(await train(s3Images, steps, { CAPTIONRUN_FEATURE_CACHE: local }));
        mirrored.push(await train(s3Images, steps, { ...env, CAPTIONRUN_FEATURE_CACHE: 's3://features/bench', CAPTIONRUN_FEATURE_MIRROR: join(dir, `mirror-${round}`) }));
        direct.push(await train(s3Images, steps, { ...env, CAPTIONRUN_FEATURE_CACHE: 's3://features/bench', CAPTIONRUN_FEATURE_MIRROR: 'off' }));
      }
      locals.push(await train(s3Images, steps, { CAPTIONRUN_FEATURE_CACHE: local }));
      const mean = (rs: ChildResult[]): number => rs.reduce((sum, r) => sum + r.stepsPerSecond, 0) / rs.length;
      const loads = (rs: ChildResult[]): string => rs.map((r) => r.loadAverage).join(', ');
      figures.push(figure(`steps/s, ${s3Images} images, features from MinIO with the local mirror, starting empty, mean of ${s3Rounds} (vs local directory, mean of ${locals.length}; load ${loads(mirrored)} vs ${loads(locals)})`, mean(mirrored), 'steps/s', mean(locals), '>= 90 %'));
      figures.push(figure(`steps/s, ${s3Images} images, features from MinIO, every read a GET, mean of ${s3Rounds} (vs local directory; load ${loads(direct)})`, mean(direct), 'steps/s', mean(locals), 'as close to 1 as the cores allow'));
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
  const result = { ...(JSON.parse(stdout.trim().split('\n').at(-1) as string) as Omit<ChildResult, 'loadAverage'>), loadAverage: loadavg()[0]?.toFixed(2) ?? '?' };
  process.stderr.write(`${JSON.stringify(result)}\n`);
  return result;
}

/**
 * Where a batch's GETs spend CPU: 32 entries' GETs through the AWS SDK (as the cache read before) and through
 * lib/s3-signed-get.ts (as it reads now), alternating, in this process with nothing else running in it;
 * client CPU from process.cpuUsage, MinIO's from /proc/<pid>/stat.
 */
async function getCost(s3: S3Connection, shape: FeatureShape, minioPid: number): Promise<Figure[]> {
  const client = new S3Client(s3ClientConfig(s3));
  const signed = SignedGet.fromClient(client, 'features', s3Address(s3));
  const prefix = `bench/${new FeatureCache('s3://features/bench').namespace(shape).split('/').at(-1) as string}/`;
  const keys = (await listObjects(client, 'features', prefix)).map((o) => o.key).slice(0, 256);
  const minioCpuMs = (): number => {
    const fields = (readFileSync(`/proc/${minioPid}/stat`, 'utf8').split(') ')[1] as string).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / 100);
  };
  const cost = { sdk: { client: 0, server: 0, wall: 0 }, signed: { client: 0, server: 0, wall: 0 } };
  const batches = 48;
  for (let b = 0; b < batches; b++) {
    const batch = keys.slice((b * 32) % keys.length, ((b * 32) % keys.length) + 32);
    for (const way of ['sdk', 'signed'] as const) {
      const cpu = process.cpuUsage();
      const server = minioCpuMs();
      const started = performance.now();
      await Promise.all(batch.map((k) => (way === 'sdk' ? getObjectBytes(client, 'features', k) : signed.get(k))));
      const used = process.cpuUsage(cpu);
      if (b < 4) continue;
      cost[way].wall += performance.now() - started;
      cost[way].client += (used.user + used.system) / 1000;
      cost[way].server += minioCpuMs() - server;
    }
  }
  signed.close();
  const n = batches - 4;
  const load = loadavg()[0]?.toFixed(2) ?? '?';
  return [
    figure(`client CPU per batch of 32 GETs of 36 KiB entries, signed GET (vs AWS SDK GetObject; load ${load})`, cost.signed.client / n, 'ms', cost.sdk.client / n, 'lower'),
    figure(`MinIO CPU per batch of 32 GETs, signed GET (vs AWS SDK; load ${load}; 10 ms clock ticks)`, cost.signed.server / n, 'ms', cost.sdk.server / n, 'the same (the server does the same work)'),
    figure(`wall time per batch of 32 GETs, 32 in flight, signed GET (vs AWS SDK; load ${load})`, cost.signed.wall / n, 'ms', cost.sdk.wall / n, 'lower'),
  ];
}
