// Validation after every epoch: greedy captions for the held-out images scored with corpus BLEU-4 (the COCO
// caption toolkit's, from eval/), and (when the spec asks for it) the teacher-forced loss without dropout.
import { tf } from '../backend.js';
import { END_ID, START_ID, type Vocabulary } from '../data/tokenizer.js';
import { greedyDecode } from '../model/decoder-search.js';
import { paramRecord, type Decoder } from '../model/decoder.js';
import { disposeBatch, makeBatch, type Example } from './batches.js';
import { captionLoss, type LossOptions } from './caption-loss.js';
import type { FeatureTable } from './features.js';
import { corpusBleu } from '../eval/bleu.js';

export interface ValidationSet {
  table: FeatureTable;
  /** Reference captions per image as written, aligned with table.features. */
  references: string[][];
  /** (image, caption) pairs for the validation loss. */
  examples: Example[];
}

const CHUNK = 32;

export function generateCaptions(decoder: Decoder, table: FeatureTable, maxWords: number): number[][] {
  const p = paramRecord(decoder);
  const out: number[][] = [];
  for (let start = 0; start < table.features.length; start += CHUNK) {
    const rows = table.features.slice(start, start + CHUNK);
    const features = tf.tensor3d(concat(rows), [rows.length, table.regions, table.channels]);
    for (const c of greedyDecode(decoder.cfg, p, features, { startId: START_ID, endId: END_ID, maxLength: maxWords })) out.push(c.tokens);
    features.dispose();
  }
  return out;
}

export function validationBleu4(decoder: Decoder, set: ValidationSet, vocabulary: Vocabulary, maxWords: number): number {
  const hypotheses = generateCaptions(decoder, set.table, maxWords).map((ids) => vocabulary.decode(ids).join(' '));
  return bleu4(set, hypotheses);
}

/** Corpus BLEU-4 of one caption per validation image. */
export function bleu4(set: ValidationSet, hypotheses: readonly string[]): number {
  const refs = new Map(set.table.ids.map((id, i) => [id, set.references[i] ?? []]));
  const cands = new Map(set.table.ids.map((id, i) => [id, hypotheses[i] ?? '']));
  return corpusBleu(refs, cands).bleu4;
}

export function validationLoss(decoder: Decoder, set: ValidationSet, opts: LossOptions): number {
  const p = paramRecord(decoder);
  let sum = 0;
  let batches = 0;
  for (let start = 0; start < set.examples.length; start += CHUNK) {
    const batch = makeBatch(set.table, set.examples.slice(start, start + CHUNK));
    sum += tf.tidy(() => captionLoss(decoder.cfg, p, batch, {}, { ...opts, checkpointing: false }).crossEntropy.dataSync()[0] as number);
    batches += 1;
    disposeBatch(batch);
  }
  return sum / Math.max(1, batches);
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
