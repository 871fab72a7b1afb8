// `captionrun report RUN_OUTPUT... -o report.html`: one self-contained HTML page comparing the outputs of
// several runs (an LSTM and a GRU run, an LLM's captions): scores, training curves, resources, attention
// maps, captions side by side with error analysis, and PCA / t-SNE plots of the encoders' features.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseCommandArgs, type Command } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/errors.js';
import { ExitCode } from '../../lib/exit-codes.js';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import { loadGlove } from '../eval/glove.js';
import { loadRunOutputs } from './load-outputs.js';
import { buildReport, type ReportOptions } from './report.js';

export const reportCommand: Command = {
  name: 'report',
  usage: `Usage: captionrun report RUN_OUTPUT... -o report.html [options]

Builds one HTML file that opens offline and needs no script: charts are rendered to SVG and images are
embedded. Each RUN_OUTPUT is the outputs directory (or s3:// prefix) of a run, any directory holding a
captions.json, or a captions file itself (*.json: caption-llm's output, or a run's llm-captions.json, shown
as "LLM <model>" with its endpoint's latency); they are compared side by side.

What each output may hold (only captions.json is required; the report says which are missing):
  captions.json     {beamSize, grid: {rows, cols}, captions: [{id, caption, references, attention}]}
  model.json        encoder, decoder and parameter shapes (the model's name and parameter count)
  metrics.json      {history: [{epoch, trainLoss, valLoss, valBleu4, learningRate}]} (training curves)
  resources.json    {samples: [{t, rssBytes, gpuMemoryBytes, ...}], wallSeconds, peakRssBytes, backend,
                    captionLatencyMs: {p50, p95}} (resource charts, wall time, memory, latency)
  embeddings.json   {encoder, ids, pooled} (PCA and t-SNE plots)
  images/<id>.png   validation images (attention maps and thumbnails)

Options:
  -o, --output FILE       where to write the report (required)
  --title TEXT            the report's title (default "Captioning report")
  --attention-images N    images with per-word attention maps (default 6)
  --side-by-side N        images in the side-by-side caption table (default 16)
  --best-worst N          images in each best / worst table (default 5)
  --classes noun|colour   what colours the embedding plots: each image's most frequent noun (default) or
                          its first colour word
  --tsne-max N            t-SNE at most N images per embeddings file (default 500)
  --no-similarity         skip GloVe similarity (its columns show n/a)
  -h, --help              show this help

Exit codes: 0 written, 2 usage, 3 an output is missing captions.json or has an unreadable or malformed
file (the message names it). Logs go to stderr as JSON; the report's path is printed on stdout.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      output: { type: 'string', short: 'o' },
      title: { type: 'string' },
      'attention-images': { type: 'string', default: '6' },
      'side-by-side': { type: 'string', default: '16' },
      'best-worst': { type: 'string', default: '5' },
      classes: { type: 'string', default: 'noun' },
      'tsne-max': { type: 'string', default: '500' },
      'no-similarity': { type: 'boolean', default: false },
    });
    if (!args) return ExitCode.Ok;
    const { values, positionals } = args;
    if (!values.output) throw new UsageError('-o/--output is required', { hint: 'see `captionrun report --help`' });
    if (positionals.length === 0) throw new UsageError('give at least one run outputs directory', { hint: 'see `captionrun report --help`' });
    const classes = values.classes;
    if (classes !== 'noun' && classes !== 'colour') throw new UsageError(`--classes must be noun or colour, got "${classes}"`);
    const attentionImages = wholeNumber('--attention-images', values['attention-images']);
    const sideBySide = wholeNumber('--side-by-side', values['side-by-side']);
    const bestWorst = wholeNumber('--best-worst', values['best-worst']);
    const tsneMax = wholeNumber('--tsne-max', values['tsne-max']);
    const log = createLogger({ component: 'report' });
    const target = await writeReport(positionals, values.output, {
      ...(values.title === undefined ? {} : { title: values.title }),
      attentionImages,
      sideBySide,
      bestWorst,
      classScheme: classes,
      tsneMaxPoints: tsneMax,
      similarity: !values['no-similarity'],
      log,
    });
    process.stdout.write(`${target}\n`);
    return ExitCode.Ok;
  },
};

export type WriteReportOptions = Omit<ReportOptions, 'vectors' | 'log'> & { similarity: boolean; log: Logger };

/**
 * Loads run outputs, builds the page and writes it to `file` (beside it and renamed, so a reader never opens
 * half a report); returns the absolute path. `captionrun report` and the trainer's end of run share it.
 */
export async function writeReport(locations: readonly string[], file: string, options: WriteReportOptions): Promise<string> {
  const { similarity, log, ...rest } = options;
  const started = Date.now();
  const outputs = await loadRunOutputs(locations, { maxImages: Math.max(16, rest.attentionImages ?? 6, rest.sideBySide ?? 16) });
  for (const o of outputs) log.info({ output: o.location, model: o.label, captions: o.captions.captions.length, images: o.images.size, missing: o.missing }, 'loaded run outputs');
  const vectors = similarity ? await loadGlove() : null;
  const page = await buildReport(outputs, { ...rest, vectors, log });
  const target = resolve(file);
  await mkdir(dirname(target), { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  await writeFile(partial, page);
  await rename(partial, target);
  log.info({ report: target, bytes: Buffer.byteLength(page), seconds: (Date.now() - started) / 1000 }, 'wrote report');
  return target;
}

function wholeNumber(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number, got "${raw}"`);
  return n;
}
