// `captionrun extract-features`: fills the feature cache ahead of training (e.g. once per dataset on a GPU
// node, or before a CPU run), so the trainer itself never waits on the encoder. Progress is a bar on a
// terminal and a structured log line every few seconds otherwise (pods, CI).
import { connectionOf, type S3Connection } from '../../lib/s3-connection.js';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ENCODERS, DATASET_FORMATS } from '../../lib/api/schema.js';
import type { DatasetSpec, ModelSpec, SyntheticOptions } from '../../lib/api/types.js';
import { validateRun } from '../../lib/api/validate.js';
import { parseCommandArgs, type Command } from '../../lib/cli/command.js';
import { progressReporter } from '../../lib/cli/progress.js';
import { InvalidInputError, UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { logger } from '../../lib/telemetry/logger.js';
import { BACKENDS, initBackend, type BackendName } from '../backend.js';
import { openDataset } from '../data/open-dataset.js';
import { SYNTHETIC_DEFAULTS } from '../data/synthetic.js';
import { loadEncoder } from '../model/encoder.js';
import { featureShape, streamFeatures, type ExtractProgress } from './extract-features.js';
import { FeatureCache, type CacheDtype } from './feature-cache.js';

export const extractFeaturesCommand: Command = {
  name: 'extract-features',
  usage: `Usage: captionrun extract-features --format FORMAT [--dataset SOURCE] [options]
       captionrun extract-features --spec RUN.yaml [options]

Runs the encoder over every image (or one split) and stores each image's spatial map and pooled vector
in the feature cache, keyed by image digest + encoder + weights digest + input size. Images already in
the cache cost no encoder work; unreadable images are reported and skipped.

Options:
  --spec FILE           take dataset and model from a CaptionTrainingRun (spec.dataset, spec.model)
  --dataset SOURCE      dataset directory, file or s3://bucket/prefix (flickr8k, karpathy); S3 is
                        reached as with --spec, the checkpoint store's endpoint, else AWS_* env vars
  --format FORMAT       ${DATASET_FORMATS.join(' | ')}
  --split NAME          only this split (default: every image)
  --encoder NAME        ${ENCODERS.join(' | ')} (default inceptionv3)
  --weights W           pretrained | random | a tfjs layers model: path, s3:// or https:// (default
                        pretrained; DenseNet121 has no pretrained weights: give a model or "random";
                        EfficientNet-Lite1's come from \`npm run setup:efficientnet\`)
  --input-size N        encoder input side in px (default 299 InceptionV3, 224 DenseNet121, 240
                        EfficientNet-Lite1)
  --cache DIR           feature cache directory or s3://bucket/prefix, reached as the dataset is
                        (default: the spec's dataset.featureCache, else .captionrun/features)
  --dtype D             float16 (default) | float32 storage
  --prune               first delete everything in the cache (every encoder's entries and the datasets'
                        indexes): for images replaced in place under the same names, which a cached
                        index would otherwise keep serving the old features for
  --batch-size N        images per encoder pass (default 8)
  --backend B           ${BACKENDS.join(' | ')} (default: best available)
  --images N, --seed N, --image-size N, --max-objects N, --noise X
                        synthetic options (defaults ${SYNTHETIC_DEFAULTS.images}, ${SYNTHETIC_DEFAULTS.seed}, ${SYNTHETIC_DEFAULTS.imageSize}, ${SYNTHETIC_DEFAULTS.maxObjects}, ${SYNTHETIC_DEFAULTS.noise})
  -o, --output text|json  summary format on stdout (default text)
  -h, --help            show this help

Exit codes: 0 done (bad images, if any, are listed), 2 usage error, 3 invalid dataset or weights.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      spec: { type: 'string' },
      dataset: { type: 'string' },
      format: { type: 'string' },
      split: { type: 'string' },
      encoder: { type: 'string' },
      weights: { type: 'string' },
      'input-size': { type: 'string' },
      cache: { type: 'string' },
      dtype: { type: 'string', default: 'float16' },
      prune: { type: 'boolean', default: false },
      'batch-size': { type: 'string', default: '8' },
      backend: { type: 'string' },
      images: { type: 'string' },
      seed: { type: 'string' },
      'image-size': { type: 'string' },
      'max-objects': { type: 'string' },
      noise: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
    });
    if (!args) return ExitCode.Ok;
    const { prune, ...v } = args.values;
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const { dataset, model, s3 } = v.spec ? await fromSpecFile(v.spec) : { ...fromFlags(v), s3: {} satisfies S3Connection };
    if (v.encoder) model.encoder = oneOf('--encoder', v.encoder, ENCODERS);
    if (v.weights) model.encoderWeights = v.weights;
    const dtype = oneOf('--dtype', v.dtype, ['float16', 'float32'] as const) as CacheDtype;
    const output = oneOf('--output', v.output, ['text', 'json'] as const);
    const batchSize = int('--batch-size', v['batch-size'], 1, 1024);
    const inputSize = v['input-size'] === undefined ? undefined : int('--input-size', v['input-size'], 32, 1024);
    // Before the backend and the encoder load: a mistyped s3:// cache fails in a moment, not after seconds.
    const cache = new FeatureCache(v.cache ?? ('featureCache' in dataset ? dataset.featureCache : undefined) ?? '.captionrun/features', dtype, s3);
    cache.onCorrupt = (path, reason) => logger.warn({ path, reason }, 'feature cache: corrupt entry, recomputing');
    if (prune) logger.info({ cache: cache.dir, bytesFreed: await cache.prune() }, 'feature cache pruned');

    await initBackend(v.backend === undefined ? undefined : (oneOf('--backend', v.backend, BACKENDS) as BackendName));
    const ds = await openDataset(dataset, { s3 });
    for (const p of ds.problems) logger.warn(p, `dataset: ${p.file ?? p.id}: ${p.message}`);
    const items = ds.items(v.split);
    const encoder = await loadEncoder({ encoder: model.encoder, encoderWeights: model.encoderWeights, inputSize, s3 });
    const progress = progressReporter<ExtractProgress>({
      name: 'extract-features',
      total: items.length,
      unit: 'images',
      done: (p) => p.done,
      detail: (p) => `${p.imagesPerSecond.toFixed(1)} img/s  ETA ${duration(p.etaSeconds)}  (${p.hits} cached, ${p.encoded} encoded, ${p.bad} bad)`,
      fields: (p) => ({ source: ds.source, ...p }),
      log: logger,
    });
    try {
      const stream = streamFeatures(items, encoder, cache, { batchSize, onProgress: progress.update });
      let next = await stream.next();
      while (!next.done) next = await stream.next();
      progress.finish();
      const summary = { source: ds.source, split: v.split ?? 'all', encoder: encoder.name, weightsDigest: encoder.weightsDigest, inputSize: encoder.inputSize, cache: cache.namespace(featureShape(encoder)), dtype, ...next.value, cacheStats: cache.stats };
      for (const b of summary.bad) logger.warn(b, `skipped image ${b.file ?? b.id}: ${b.message}`);
      if (output === 'json') process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else {
        process.stdout.write(
          `${summary.total} images from ${summary.source}: ${summary.hits} already cached, ${summary.encoded} encoded, ${summary.bad.length} skipped ` +
            `in ${summary.seconds.toFixed(1)} s\nfeatures: ${summary.cache} (${encoder.name} ${encoder.inputSize}px, ${encoder.mapSize}x${encoder.mapSize}x${encoder.channels} map, ${dtype})\n`,
        );
        for (const b of summary.bad) process.stdout.write(`  skipped ${b.file ?? b.id}: ${b.message}\n`);
      }
      return ExitCode.Ok;
    } finally {
      encoder.dispose();
    }
  },
};

type Values = Record<string, string | undefined>;

function fromFlags(v: Values): { dataset: Pick<DatasetSpec, 'format' | 'source' | 'synthetic'>; model: Pick<ModelSpec, 'encoder' | 'encoderWeights'> } {
  if (v.format === undefined) throw new UsageError('--format (or --spec) is required');
  const format = oneOf('--format', v.format, DATASET_FORMATS);
  if (format !== 'synthetic' && v.dataset === undefined) throw new UsageError(`--dataset is required for --format ${format}`);
  const synthetic: SyntheticOptions = {
    images: v.images === undefined ? SYNTHETIC_DEFAULTS.images : int('--images', v.images, 10, 100_000),
    seed: v.seed === undefined ? SYNTHETIC_DEFAULTS.seed : int('--seed', v.seed, 0, 2_147_483_647),
    imageSize: v['image-size'] === undefined ? SYNTHETIC_DEFAULTS.imageSize : int('--image-size', v['image-size'], 32, 512),
    maxObjects: v['max-objects'] === undefined ? SYNTHETIC_DEFAULTS.maxObjects : int('--max-objects', v['max-objects'], 1, 4),
    noise: v.noise === undefined ? SYNTHETIC_DEFAULTS.noise : Number(v.noise),
  };
  return { dataset: { format, source: v.dataset, synthetic: format === 'synthetic' ? synthetic : undefined }, model: { encoder: 'inceptionv3', encoderWeights: 'pretrained' } };
}

async function fromSpecFile(file: string): Promise<{ dataset: DatasetSpec; model: ModelSpec; s3: S3Connection }> {
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`cannot read run spec: ${(err as Error).message}`, { file, cause: err });
  }
  const result = validateRun(doc);
  if (!result.ok) {
    const first = result.issues[0];
    throw new InvalidInputError(`${first?.message ?? 'invalid'} (${result.issues.length} issue(s); see \`captionrun validate ${file}\`)`, { file, field: first?.path });
  }
  return { dataset: result.run.spec.dataset, model: result.run.spec.model, s3: connectionOf(result.run.spec.checkpoint.store.s3) };
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

function int(flag: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be an integer in ${min}..${max}, got "${value}"`);
  return n;
}

function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
