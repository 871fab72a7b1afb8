// Validation after every epoch: greedy captions for the held-out images scored with corpus BLEU-4 and CIDEr-D
// (the COCO caption toolkit's, from eval/), and (when the spec asks for it) the teacher-forced loss without
// dropout or label smoothing.
// In a gang each rank decodes a contiguous shard of the images and the captions are gathered on every rank,
// which then scores the whole set: the same captions and the same score as one process, in 1/W of the time.
import { tf } from '../backend.js';
import { END_ID, START_ID, type Vocabulary } from '../data/tokenizer.js';
import { greedyDecode } from '../model/decoder-search.js';
import { paramRecord, type Decoder } from '../model/decoder.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import { disposeBatch, makeBatch, targetWords, type Examples } from './batches.js';
import { captionLoss, type LossOptions } from '../model/caption-loss.js';
import { tableRows, type FeatureTable } from './features.js';
import type { EpochRecord } from './snapshot.js';
import type { TrainingSpec } from '../../lib/api/types.js';
import { bleuTokenized } from '../eval/bleu.js';
import { tokenizeSet, type Candidates, type References } from '../eval/captions.js';
import { ciderD } from '../eval/cider.js';

type ValidationMetric = TrainingSpec['validationMetric'];

export interface ValidationSet {
  table: FeatureTable;
  /** Reference captions per image as written, aligned with table.features. */
  references: string[][];
  /** (image, caption) pairs for the validation loss. */
  examples: Examples;
}

const CHUNK = 32;

/** How validation decodes: the final captions' n-gram blocking, so the metric ranks what users will get. */
export interface GreedyOptions {
  maxWords: number;
  noRepeatNgramSize: number;
}

export function generateCaptions(decoder: Decoder, table: FeatureTable, opts: GreedyOptions): number[][] {
  const p = paramRecord(decoder);
  const out: number[][] = [];
  for (let start = 0; start < table.features.length; start += CHUNK) {
    const rows = table.features.slice(start, start + CHUNK);
    const features = tf.tensor3d(concat(rows), [rows.length, table.regions, table.channels]);
    for (const c of greedyDecode(decoder.cfg, p, features, { startId: START_ID, endId: END_ID, maxLength: opts.maxWords, noRepeatNgramSize: opts.noRepeatNgramSize })) out.push(c.tokens);
    features.dispose();
  }
  return out;
}

export interface ValidationScores {
  bleu4: number;
  ciderD: number;
}

export async function validationScores(decoder: Decoder, set: ValidationSet, vocabulary: Vocabulary, opts: GreedyOptions, group: ProcessGroup, timeoutMs: number): Promise<ValidationScores> {
  const { start, end } = shardRange(set.table.features.length, group.rank, group.worldSize);
  const shard = { ...set.table, features: set.table.features.slice(start, end) };
  const mine = generateCaptions(decoder, shard, opts).map((ids) => vocabulary.decode(ids).join(' '));
  const hypotheses: string[] = [];
  for (let root = 0; root < group.worldSize; root++) {
    const bytes = await group.broadcast(root === group.rank ? new TextEncoder().encode(JSON.stringify(mine)) : undefined, { root, timeoutMs });
    hypotheses.push(...(JSON.parse(new TextDecoder().decode(bytes)) as string[]));
  }
  return scores(set, hypotheses);
}

/** The metric's value in an epoch's record: what early stopping, the plateau schedule and keepBest rank. */
export function metricValue(metric: ValidationMetric, record: EpochRecord): number | undefined {
  if (metric === 'bleu4') return record.valBleu4;
  if (metric === 'cider') return record.valCider;
  if (metric === 'loss') return record.valLoss;
  return undefined;
}

/** Checkpoint manifests carry an epoch's metrics under these names; keepBest ranks by the spec's. */
export function checkpointMetricName(metric: ValidationMetric): string {
  return metric === 'loss' ? 'valLoss' : metric === 'cider' ? 'valCider' : 'valBleu4';
}

/** Rank `rank`'s contiguous share of n items: the first n mod W ranks take one more. */
export function shardRange(n: number, rank: number, worldSize: number): { start: number; end: number } {
  const base = Math.floor(n / worldSize);
  const extra = n % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return { start, end: start + base + (rank < extra ? 1 : 0) };
}

/** The validation references and one caption per image, keyed by image id, as the eval metrics take them. */
export function captionSets(set: ValidationSet, hypotheses: readonly string[]): { refs: References; cands: Candidates } {
  return {
    refs: new Map(set.table.ids.map((id, i) => [id, set.references[i] ?? []])),
    cands: new Map(set.table.ids.map((id, i) => [id, hypotheses[i] ?? ''])),
  };
}

/** Corpus BLEU-4 and CIDEr-D of one caption per validation image. */
export function scores(set: ValidationSet, hypotheses: readonly string[]): ValidationScores {
  const { refs, cands } = captionSets(set, hypotheses);
  const tokenized = tokenizeSet(refs, cands);
  return { bleu4: bleuTokenized(tokenized).corpus.bleu4, ciderD: ciderD(tokenized).ciderD };
}

/** Mean cross-entropy per target word over the validation captions, each rank summing its shard. */
export async function validationLoss(decoder: Decoder, set: ValidationSet, opts: LossOptions, group: ProcessGroup, timeoutMs: number): Promise<number> {
  const p = paramRecord(decoder);
  const { start, end } = shardRange(set.examples.length, group.rank, group.worldSize);
  let nll = 0;
  let words = 0;
  for (let at = start; at < end; at += CHUNK) {
    const examples = set.examples.slice(at, Math.min(at + CHUNK, end));
    const batch = makeBatch(set.table, tableRows(set.table, examples.map((ex) => ex.image)), examples);
    // Dividing by 1 word leaves the summed cross-entropy.
    nll += tf.tidy(() => captionLoss(decoder.cfg, p, batch, {}, { ...opts, checkpointing: false, labelSmoothing: 0 }, { words: 1, captions: examples.length }).crossEntropy.dataSync()[0] as number);
    words += targetWords(examples);
    disposeBatch(batch);
  }
  const sums = Float32Array.of(nll, words);
  await group.allReduceSum(sums, { timeoutMs });
  return (sums[0] as number) / Math.max(1, sums[1] as number);
}

function concat(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}
