// The end of a run: the weights of the best-validated epoch (not merely the last one), beam-search captions
// for every validation image, and the outputs a user keeps, written to one directory: the trained model as
// `captionrun caption` loads it, captions with attention weights, metrics (BLEU-4, CIDEr-D and the error
// analysis `captionrun evaluate` would print for these captions), and what the report draws (the first
// validation images, pooled encoder features, resource samples and caption latencies).
import { mkdir, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { join, resolve } from 'node:path';
import { tf } from '../backend.js';
import type { DatasetItem } from '../data/dataset.js';
import { END_ID, START_ID, type Vocabulary } from '../data/tokenizer.js';
import { beamSearch } from '../model/decoder-search.js';
import { createDecoder, paramRecord, parameterShapes, type Decoder } from '../model/decoder.js';
import { unpackTensors } from '../model/packed-tensors.js';
import { describeModel, writeTrainedModel, type Decoding, type ModelDescription } from '../model/trained-model.js';
import type { TrainConfig } from './config.js';
import type { ResourceLog } from './resource-log.js';
import type { TrainerState } from './snapshot.js';
import { evaluateCaptions } from '../eval/evaluate.js';
import { captionSets, metricValue, type ValidationSet } from './validation.js';

export interface GeneratedCaption {
  id: string;
  caption: string;
  references: string[];
  /** Attention weights over the map's regions for each word of `caption`. */
  attention: number[][];
}

/** Which epoch's weights the outputs hold, and why. */
export interface SelectedWeights {
  /** 1-based, as the logs count epochs. */
  epoch: number;
  /** 'best': ranked first by the validation metric; 'last': the spec has none, or the checkpoint predates best weights. */
  by: 'best' | 'last';
  metric: TrainConfig['training']['validationMetric'];
  value?: number;
}

/**
 * The decoder the outputs are written from: the best-validated epoch's weights when the loop kept them
 * (a new decoder; the caller disposes it), else the trained one as it stands after the last epoch.
 */
export function finalWeights(decoder: Decoder, state: TrainerState, best: Uint8Array | undefined): { decoder: Decoder; selected: SelectedWeights } {
  const metric = state.config.training.validationMetric;
  const last = state.history.at(-1);
  const lastSelected: SelectedWeights = { epoch: (last?.epoch ?? state.cursor.epoch - 1) + 1, by: 'last', metric };
  if (!best || metric === 'none' || state.early.best === null) return { decoder, selected: lastSelected };
  const record = state.history.find((r) => metricValue(metric, r) === state.early.best);
  if (!record) return { decoder, selected: lastSelected };
  return {
    decoder: createDecoder(decoder.cfg, unpackTensors(best, parameterShapes(decoder.cfg))),
    selected: { epoch: record.epoch + 1, by: 'best', metric, value: state.early.best },
  };
}

export interface FinalResult {
  bleu4: number;
  beamSize: number;
  selected: SelectedWeights;
  captions: GeneratedCaption[];
  outputDir: string;
}

export function beamCaptions(decoder: Decoder, set: ValidationSet, items: readonly DatasetItem[], vocabulary: Vocabulary, decoding: Decoding, maxWords: number, latenciesMs: number[] = []): GeneratedCaption[] {
  const p = paramRecord(decoder);
  return set.table.features.map((map, i) => {
    const started = performance.now();
    const features = tf.tensor3d(map, [1, set.table.regions, set.table.channels]);
    const c = beamSearch(decoder.cfg, p, features, decoding.beamSize, { startId: START_ID, endId: END_ID, maxLength: maxWords, noRepeatNgramSize: decoding.noRepeatNgramSize, lengthPenalty: decoding.lengthPenalty });
    features.dispose();
    latenciesMs.push(performance.now() - started);
    const item = items[i] as DatasetItem;
    return { id: item.id, caption: vocabulary.decode(c.tokens).join(' '), references: item.captions, attention: c.alphas.map((a) => Array.from(a, (x) => Math.round(x * 1e4) / 1e4)) };
  });
}

/** The first validation images, small, so the report can draw attention maps over them. */
const REPORT_IMAGES = 16;
const REPORT_IMAGE_SIDE = 224;

async function writeImages(dir: string, items: readonly DatasetItem[]): Promise<void> {
  await mkdir(join(dir, 'images'), { recursive: true });
  for (const item of items.slice(0, REPORT_IMAGES)) {
    const src = await item.image();
    const img = src.kind === 'raw' ? sharp(src.data, { raw: { width: src.width, height: src.height, channels: src.channels } }) : sharp(src.data).rotate();
    await img.resize(REPORT_IMAGE_SIDE, REPORT_IMAGE_SIDE, { fit: 'inside', withoutEnlargement: true }).png().toFile(join(dir, 'images', `${item.id}.png`));
  }
}

/** Each validation image's encoder features averaged over the map: what the report's PCA and t-SNE plot. */
function embeddings(set: ValidationSet, encoder: ModelDescription['encoder']): { encoder: string; weights: string; ids: string[]; pooled: number[][] } {
  const { regions, channels } = set.table;
  const pooled = set.table.features.map((map) => {
    const mean = new Array<number>(channels).fill(0);
    for (let r = 0; r < regions; r++) for (let c = 0; c < channels; c++) mean[c] = (mean[c] as number) + (map[r * channels + c] as number) / regions;
    return mean.map((x) => Math.round(x * 1e4) / 1e4);
  });
  return { encoder: encoder.name, weights: encoder.weights, ids: set.table.ids, pooled };
}

export async function finalEvaluation(
  decoder: Decoder,
  set: ValidationSet,
  items: readonly DatasetItem[],
  vocabulary: Vocabulary,
  state: TrainerState,
  decoding: Decoding,
  selected: SelectedWeights,
  outputDir: string,
  encoder: ModelDescription['encoder'],
  resources: ResourceLog,
): Promise<FinalResult> {
  const latenciesMs: number[] = [];
  const { beamSize } = decoding;
  const captions = beamCaptions(decoder, set, items, vocabulary, decoding, state.hyperparameters.maxCaptionLength - 2, latenciesMs);
  const { refs, cands } = captionSets(set, captions.map((c) => c.caption));
  // Per-image rows stay out of metrics.json: captions.json holds every caption, the report every row.
  const evaluation = await evaluateCaptions(refs, cands);
  const bleu4 = evaluation.scores.bleu4;
  const dir = resolve(outputDir);
  await writeTrainedModel(dir, { description: describeModel(decoder, encoder, state.hyperparameters.maxCaptionLength, decoding), decoder, vocabulary });
  await writeFile(join(dir, 'captions.json'), `${JSON.stringify({ beamSize, grid: set.table.grid, captions }, null, 1)}\n`);
  const metrics = { valBleu4: bleu4, valCiderD: evaluation.scores.ciderD, beamSize, decoding, weights: selected, step: state.step, epochs: state.cursor.epoch, hyperparameters: state.hyperparameters, history: state.history, errorAnalysis: evaluation.errors };
  await writeFile(join(dir, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
  await writeImages(dir, items);
  await writeFile(join(dir, 'embeddings.json'), `${JSON.stringify(embeddings(set, encoder))}\n`);
  await writeFile(join(dir, 'resources.json'), `${JSON.stringify(resources.finish(latenciesMs), null, 1)}\n`);
  return { bleu4, beamSize, selected, captions, outputDir: dir };
}
