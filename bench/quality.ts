// `npm run bench -- quality [--encoders a,b] [--decoders gru,lstm] [--epochs N] [--spec FILE] [--out DIR]`:
// caption quality on the Flickr8k sample, the way a user gets it: for each encoder x decoder, `captionrun
// train` on the recipe spec (default the best real-photo recipe, bench/specs/flickr8k-sample-best.yaml) with
// only the encoder, the decoder and (if given) the epochs changed, then the run's final dev captions scored
// as `captionrun evaluate` scores them: BLEU-1..4, CIDEr-D, ROUGE-L, GloVe similarity, distinct captions,
// captions with a repeated bigram and attention selectivity (the mean over words of the largest attention
// weight, against 1/regions for uniform attention), with each run's wall time. Scores are compared with the
// InceptionV3 run of the same decoder (the encoder before issue 16) when the matrix has it. DenseNet121 has
// no pretrained weights here: it runs with random weights, as the floor that shows what the features add.
//
// `npm run bench -- quality --redecode DIR [--beams 1,3,5] [--no-repeat 0,2] [--length-penalty 0,0.6]`:
// the decoding ablation: re-captions the dev images with a finished run's model (DIR is its outputs) under
// each combination of decoding options, without training again; --spec must be the run's spec.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { packageRoot } from '../lib/package-info.js';
import { createLogger } from '../lib/telemetry/logger.js';
import { validateRun } from '../lib/api/validate.js';
import type { CaptionTrainingRun } from '../lib/api/types.js';
import { evaluateCaptions } from '../trainer-image/eval/evaluate.js';
import { figure, type Figure } from './results.js';

const CLI = join(packageRoot(), 'bin/captionrun');
const DEFAULT_SPEC = join(packageRoot(), 'bench/specs/flickr8k-sample-best.yaml');
const ENCODERS = ['inceptionv3', 'efficientnet-lite1', 'densenet121'] as const;
const DECODERS = ['gru', 'lstm'] as const;
/** What issue 16 asks of the best configuration (efficientnet-lite1 + GRU). */
const TARGETS = { bleu4: 0.15, ciderD: 0.35, distinctShare: 0.8, trainMinutes: 30 };

type Encoder = (typeof ENCODERS)[number];

interface Captioned {
  caption: string;
  references: string[];
  attention: number[][];
}

/** Scores of one run's captions: what the table in BENCHMARKS.md shows. */
export interface QualityRow {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  ciderD: number;
  rougeL: number;
  /** GloVe cosine of the mean word vectors, to the closest reference, mean over images. */
  glove: number;
  distinct: number;
  images: number;
  repeatedBigram: number;
  /** Mean over emitted words of the largest attention weight. */
  attentionMax: number;
  regions: number;
}

/** Whether any bigram occurs twice in the caption (as the issue counts them: words split on spaces). */
export function hasRepeatedBigram(caption: string): boolean {
  const words = caption.split(' ').filter((w) => w !== '');
  const seen = new Set<string>();
  for (let i = 0; i + 1 < words.length; i++) {
    const bigram = `${words[i]} ${words[i + 1]}`;
    if (seen.has(bigram)) return true;
    seen.add(bigram);
  }
  return false;
}

export async function scoreCaptions(ids: readonly string[], captions: readonly Captioned[], regions: number): Promise<QualityRow> {
  const refs = new Map(ids.map((id, i) => [id, captions[i]?.references ?? []]));
  const cands = new Map(ids.map((id, i) => [id, captions[i]?.caption ?? '']));
  const e = await evaluateCaptions(refs, cands);
  const maxima = captions.flatMap((c) => c.attention.map((a) => Math.max(...a)));
  return {
    ...e.scores,
    glove: e.semantic?.corpus.meanVector.max ?? Number.NaN,
    distinct: new Set(captions.map((c) => c.caption)).size,
    images: captions.length,
    repeatedBigram: captions.filter((c) => hasRepeatedBigram(c.caption)).length,
    attentionMax: maxima.length > 0 ? maxima.reduce((s, x) => s + x, 0) / maxima.length : Number.NaN,
    regions,
  };
}

function list<T extends string>(raw: string, allowed: readonly T[], flag: string): T[] {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${flag}: "${item}" is not one of ${allowed.join(', ')}`);
  if (items.length === 0) throw new Error(`${flag}: give at least one of ${allowed.join(', ')}`);
  return items as T[];
}

function numbers(raw: string, flag: string): number[] {
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v) || v < 0)) throw new Error(`${flag}: "${raw}" is not a comma-separated list of numbers >= 0`);
  return values;
}

/** The base spec with one cell of the matrix applied, its checkpoints under `dir`. */
function cellSpec(base: Record<string, unknown>, encoder: Encoder, decoder: string, epochs: number | undefined, dir: string): Record<string, unknown> {
  const doc = structuredClone(base) as { metadata: { name: string }; spec: Record<string, Record<string, unknown>> };
  const spec = doc.spec;
  doc.metadata.name = `quality-${encoder}-${decoder}`;
  spec.model = { ...spec.model, encoder, decoder, encoderWeights: encoder === 'densenet121' ? 'random' : 'pretrained' };
  if (epochs !== undefined) spec.training = { ...spec.training, epochs };
  spec.checkpoint = { ...spec.checkpoint, store: { local: { path: join(dir, 'checkpoints') } } };
  return doc;
}

async function train(specFile: string, outputDir: string, logFile: string): Promise<number> {
  const child = spawn(process.execPath, [CLI, 'train', '--fresh', '--output', outputDir, specFile], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const log: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (c: string) => log.push(c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => log.push(c));
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  writeFileSync(logFile, log.join(''));
  if (code !== 0) throw new Error(`captionrun train ${specFile} exited ${code}; its log: ${logFile}`);
  return code;
}

function rowFigures(label: string, row: QualityRow, wallSeconds: number, baseline: QualityRow | undefined, targeted: boolean): Figure[] {
  const t = (goal: string): string => (targeted ? goal : 'context');
  const vs = (k: keyof QualityRow): number | null => (baseline ? baseline[k] : null);
  return [
    figure(`${label} BLEU-1`, row.bleu1, '', vs('bleu1'), 'context (baseline: InceptionV3, same decoder)'),
    figure(`${label} BLEU-2`, row.bleu2, '', vs('bleu2'), 'context'),
    figure(`${label} BLEU-3`, row.bleu3, '', vs('bleu3'), 'context'),
    figure(`${label} BLEU-4`, row.bleu4, '', vs('bleu4'), t(`>= ${TARGETS.bleu4}`)),
    figure(`${label} CIDEr-D`, row.ciderD, '', vs('ciderD'), t(`>= ${TARGETS.ciderD}`)),
    figure(`${label} ROUGE-L`, row.rougeL, '', vs('rougeL'), 'context'),
    figure(`${label} GloVe cosine to the closest reference`, row.glove, '', vs('glove'), 'context'),
    figure(`${label} distinct captions of ${row.images}`, row.distinct, 'captions', vs('distinct'), t(`>= ${Math.ceil(TARGETS.distinctShare * row.images)} (80 %)`)),
    figure(`${label} captions with a repeated bigram`, row.repeatedBigram, 'captions', null, t('0')),
    figure(`${label} attention: mean max weight (baseline: uniform 1/${row.regions})`, row.attentionMax, '', 1 / row.regions, 'context (> 1: selective)'),
    figure(`${label} wall, captionrun train end to end (load ${loadavg().map((x) => x.toFixed(1)).join(' ')} after)`, wallSeconds, 's', null, t(`< ${TARGETS.trainMinutes * 60} s`)),
  ];
}

async function matrix(values: { encoders: string; decoders: string; epochs?: string; spec: string; out: string }): Promise<Figure[]> {
  const encoders = list(values.encoders, ENCODERS, '--encoders');
  const decoders = list(values.decoders, DECODERS, '--decoders');
  const epochs = values.epochs === undefined ? undefined : Number(values.epochs);
  if (epochs !== undefined && (!Number.isInteger(epochs) || epochs < 1)) throw new Error(`--epochs: "${values.epochs}" is not a whole number >= 1`);
  const base = parse(readFileSync(values.spec, 'utf8')) as Record<string, unknown>;
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  process.env.CAPTIONRUN_BACKEND ??= 'tensorflow';
  process.env.CAPTIONRUN_FEATURE_CACHE ??= join(out, 'features');
  const rows = new Map<string, QualityRow>();
  const figures: Figure[] = [];
  for (const decoder of decoders) {
    // InceptionV3 first, so every other encoder's figures can be compared with it.
    for (const encoder of [...encoders].sort((a, b) => Number(b === 'inceptionv3') - Number(a === 'inceptionv3'))) {
      const label = `${encoder}+${decoder}`;
      const dir = join(out, label);
      mkdirSync(dir, { recursive: true });
      const specFile = join(dir, 'spec.yaml');
      writeFileSync(specFile, stringify(cellSpec(base, encoder, decoder, epochs, dir)));
      const checked = validateRun(parse(readFileSync(specFile, 'utf8')));
      if (!checked.ok) throw new Error(`${specFile}: ${JSON.stringify(checked.issues)}`);
      process.stderr.write(`quality bench: ${label}: training (load ${loadavg()[0]?.toFixed(1)}) ...\n`);
      const started = performance.now();
      await train(specFile, join(dir, 'outputs'), join(dir, 'train.log'));
      const wall = (performance.now() - started) / 1000;
      const written = JSON.parse(readFileSync(join(dir, 'outputs', 'captions.json'), 'utf8')) as { grid: { rows: number; cols: number }; captions: (Captioned & { id: string })[] };
      const row = await scoreCaptions(written.captions.map((c) => c.id), written.captions, written.grid.rows * written.grid.cols);
      rows.set(label, row);
      writeFileSync(join(dir, 'scores.json'), `${JSON.stringify({ ...row, wallSeconds: wall, load: loadavg() }, null, 2)}\n`);
      figures.push(...rowFigures(label, row, wall, encoder === 'inceptionv3' ? undefined : rows.get(`inceptionv3+${decoder}`), encoder === 'efficientnet-lite1' && decoder === 'gru'));
    }
  }
  return figures;
}

async function redecode(values: { redecode: string; spec: string; beams: string; 'no-repeat': string; 'length-penalty': string }): Promise<Figure[]> {
  const { initBackend } = await import('../trainer-image/backend.js');
  const { loadTrainedModel } = await import('../trainer-image/model/trained-model.js');
  const { trainConfig } = await import('../trainer-image/train/config.js');
  const { prepareData } = await import('../trainer-image/train/prepare-data.js');
  const { beamCaptions } = await import('../trainer-image/train/final-evaluation.js');
  await initBackend(process.env.CAPTIONRUN_BACKEND === 'wasm' ? 'wasm' : 'tensorflow');
  const checked = validateRun(parse(readFileSync(values.spec, 'utf8')));
  if (!checked.ok) throw new Error(`${values.spec}: ${JSON.stringify(checked.issues)}`);
  const run: CaptionTrainingRun = checked.run;
  const model = await loadTrainedModel(resolve(values.redecode));
  const log = createLogger({ component: 'quality-bench' });
  log.level = 'warn';
  const { data, valItems } = await prepareData(trainConfig(run, {}), { vocabulary: model.vocabulary, maxCaptionLength: model.description.maxCaptionLength }, log);
  const figures: Figure[] = [];
  let baseline: QualityRow | undefined;
  for (const beamSize of numbers(values.beams, '--beams')) {
    for (const noRepeatNgramSize of numbers(values['no-repeat'], '--no-repeat')) {
      for (const lengthPenalty of numbers(values['length-penalty'], '--length-penalty')) {
        const started = performance.now();
        const captions = beamCaptions(model.decoder, data.val, valItems, data.vocabulary, { beamSize, noRepeatNgramSize, lengthPenalty }, model.description.maxCaptionLength - 2);
        const seconds = (performance.now() - started) / 1000;
        const row = await scoreCaptions(captions.map((c) => c.id), captions, data.val.table.regions);
        baseline ??= row;
        const label = `beam ${beamSize}, no-repeat ${noRepeatNgramSize}, length penalty ${lengthPenalty}`;
        const vs = (k: keyof QualityRow): number => (baseline as QualityRow)[k];
        figures.push(
          figure(`${label}: BLEU-1`, row.bleu1, '', vs('bleu1'), 'context (baseline: the first combination)'),
          figure(`${label}: BLEU-4`, row.bleu4, '', vs('bleu4'), `>= ${TARGETS.bleu4}`),
          figure(`${label}: CIDEr-D`, row.ciderD, '', vs('ciderD'), `>= ${TARGETS.ciderD}`),
          figure(`${label}: ROUGE-L`, row.rougeL, '', vs('rougeL'), 'context'),
          figure(`${label}: distinct captions of ${row.images}`, row.distinct, 'captions', vs('distinct'), `>= ${Math.ceil(TARGETS.distinctShare * row.images)}`),
          figure(`${label}: captions with a repeated bigram`, row.repeatedBigram, 'captions', null, '0'),
          figure(`${label}: mean caption length`, captions.reduce((s, c) => s + c.caption.split(' ').length, 0) / captions.length, 'words', null, 'context'),
          figure(`${label}: decode wall`, seconds, 's', null, 'context'),
        );
      }
    }
  }
  return figures;
}

export default async function quality(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({
    args,
    options: {
      encoders: { type: 'string', default: ENCODERS.join(',') },
      decoders: { type: 'string', default: DECODERS.join(',') },
      epochs: { type: 'string' },
      spec: { type: 'string', default: DEFAULT_SPEC },
      out: { type: 'string', default: '/tmp/captionrun-quality' },
      redecode: { type: 'string' },
      beams: { type: 'string', default: '3' },
      'no-repeat': { type: 'string', default: '0,2' },
      'length-penalty': { type: 'string', default: '0' },
    },
  });
  if (values.redecode !== undefined) return redecode({ ...values, redecode: values.redecode });
  return matrix(values);
}
