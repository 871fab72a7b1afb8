// `captionrun caption`: captions new images with a trained model (a run's outputs, local or in S3), through
// the same pipeline the trainer used for its validation images: decode and resize as the encoder expects,
// encode, round the features to float16 as the feature cache stores them, beam search. So on a training
// image it gives exactly the caption the trainer wrote to captions.json.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { parseCommandArgs, type Command } from '../../lib/cli/command.js';
import { InvalidInputError, UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { parseS3Uri, s3ClientConfig } from '../../lib/s3-connection.js';
import { getObjectBytes, listObjects } from '../../lib/s3-objects.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { initBackend, tf } from '../backend.js';
import type { ImageSource } from '../data/dataset.js';
import { END_ID, START_ID } from '../data/tokenizer.js';
import { beamSearch } from '../model/decoder-search.js';
import { paramRecord } from '../model/decoder.js';
import { loadEncoder } from '../model/encoder.js';
import { float16ToFloat32, float32ToFloat16 } from '../model/float16.js';
import { decodeBatch } from '../model/image-pipeline.js';
import { loadTrainedModel } from '../model/trained-model.js';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export const captionCommand: Command = {
  name: 'caption',
  usage: `Usage: captionrun caption --model OUTPUTS [options] IMAGE_OR_DIR...

Captions JPEG, PNG or WebP images with the model a run left in its outputs (model.json, decoder.f32,
vocabulary.json; a directory or an s3:// prefix). Arguments are image files, directories (their images,
sorted by name) or s3:// objects and prefixes; S3 is reached through the AWS_* environment variables.
An unreadable image is reported on stderr and skipped; the others still get their captions.

Options:
  --model OUTPUTS      the run's outputs directory or s3:// prefix (required)
  --beam N             beam size (default: the one the run evaluated with)
  --format F           jsonl (one JSON object per image) or table (image TAB caption); default table
                       on a terminal, jsonl otherwise
  --attention          include each word's attention weights over the feature map (jsonl)
  --batch N            images per encoder pass (default 16)
  -h, --help           show this help

Exit codes: 0 every image captioned, 2 usage, 3 a model or an image could not be read (the readable
images are still captioned).
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      model: { type: 'string' },
      beam: { type: 'string' },
      format: { type: 'string' },
      attention: { type: 'boolean', default: false },
      batch: { type: 'string', default: '16' },
    });
    if (!args) return ExitCode.Ok;
    const { values, positionals } = args;
    if (!values.model) throw new UsageError('--model is required', { hint: 'give the outputs directory of a finished run' });
    if (positionals.length === 0) throw new UsageError('give at least one image or directory');
    const format = values.format ?? (process.stdout.isTTY ? 'table' : 'jsonl');
    if (format !== 'jsonl' && format !== 'table') throw new UsageError(`--format must be jsonl or table, got "${format}"`);
    const batchSize = positiveInt('--batch', values.batch);
    const log = createLogger({ component: 'caption' });
    await initBackend();
    const model = await loadTrainedModel(values.model);
    const beam = values.beam === undefined ? model.description.beamSize : positiveInt('--beam', values.beam);
    const images = await listImages(positionals);
    if (images.length === 0) throw new InvalidInputError('no JPEG, PNG or WebP images found', { file: positionals.join(' ') });
    const { encoder: e } = model.description;
    const encoder = await loadEncoder({ encoder: e.name, encoderWeights: e.weights, inputSize: e.inputSize ?? undefined }, log);
    const p = paramRecord(model.decoder);
    let failed = 0;
    try {
      for (let start = 0; start < images.length; start += batchSize) {
        const batch = images.slice(start, start + batchSize);
        const sources: { id: string; src: ImageSource }[] = [];
        for (const image of batch) {
          try {
            sources.push({ id: image, src: { kind: 'encoded', data: await readImage(image), path: image } });
          } catch (err) {
            failed += 1;
            log.error({ image, err: (err as Error).message }, `cannot read ${image}: ${(err as Error).message}`);
          }
        }
        const { indexes, pixels } = await decodeBatch(sources, encoder.inputSize, (bad) => {
          failed += 1;
          log.error({ image: bad.id, err: bad.message }, `cannot caption ${bad.id}: ${bad.message}`);
        });
        if (indexes.length === 0) continue;
        const { map } = await encoder.encode(pixels, indexes.length);
        // The decoder was trained on features read back from the float16 cache.
        const stored = float16ToFloat32(float32ToFloat16(map));
        const regions = encoder.mapSize * encoder.mapSize;
        indexes.forEach((source, k) => {
          const image = (sources[source] as { id: string }).id;
          const features = tf.tensor3d(stored.subarray(k * regions * encoder.channels, (k + 1) * regions * encoder.channels), [1, regions, encoder.channels]);
          const c = beamSearch(model.decoder.cfg, p, features, beam, {
            startId: START_ID,
            endId: END_ID,
            maxLength: model.description.maxCaptionLength - 2,
            noRepeatNgramSize: model.description.noRepeatNgramSize ?? 0,
            lengthPenalty: model.description.lengthPenalty ?? 0,
          });
          features.dispose();
          const caption = model.vocabulary.decode(c.tokens).join(' ');
          if (format === 'table') {
            process.stdout.write(`${image}\t${caption}\n`);
          } else {
            const attention = values.attention ? { grid: { rows: encoder.mapSize, cols: encoder.mapSize }, attention: c.alphas.map((a) => Array.from(a, (x) => Math.round(x * 1e4) / 1e4)) } : {};
            process.stdout.write(`${JSON.stringify({ image, caption, ...attention })}\n`);
          }
        });
      }
    } finally {
      encoder.dispose();
    }
    if (failed > 0) log.error({ failed, captioned: images.length - failed }, `${failed} of ${images.length} images could not be captioned`);
    return failed > 0 ? ExitCode.InvalidInput : ExitCode.Ok;
  },
};

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

let client: S3Client | undefined;
function s3Client(): S3Client {
  client ??= new S3Client(s3ClientConfig({}));
  return client;
}

/** Image files and s3:// objects named by the arguments, directories and prefixes expanded in name order. */
async function listImages(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    if (arg.startsWith('s3://')) {
      const { bucket, prefix } = parseS3Uri(arg);
      const keys = (await listObjects(s3Client(), bucket, prefix)).map((o) => o.key).filter((k) => k === prefix || IMAGE_EXTENSIONS.has(extname(k).toLowerCase()));
      out.push(...keys.sort().map((k) => `s3://${bucket}/${k}`));
      continue;
    }
    const info = await stat(arg).catch(() => undefined);
    if (info?.isDirectory()) {
      const names = (await readdir(arg)).filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort();
      out.push(...names.map((n) => join(arg, n)));
    } else {
      // A missing file is reported when it is read, with the other images still captioned.
      out.push(arg);
    }
  }
  return out;
}

async function readImage(location: string): Promise<Buffer> {
  if (!location.startsWith('s3://')) return readFile(location);
  const { bucket, prefix } = parseS3Uri(location);
  const bytes = await getObjectBytes(s3Client(), bucket, prefix);
  if (!bytes) throw new InvalidInputError('object does not exist', { file: location });
  return bytes;
}
