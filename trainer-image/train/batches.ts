// Training examples and their order. An example is one (image, reference caption) pair; the order of an
// epoch is a permutation that is a pure function of (seed, epoch), the same on every rank. A step trains on
// the next global batch of that order (batchSize x worldSize examples) and each rank takes its own
// contiguous slice of it, so rank r of W at a given cursor sees exactly the examples that rows
// [r x B, (r+1) x B) of a one-rank batch of W x B would hold. The cursor counts examples, not steps, so a
// checkpoint written by W ranks resumes on W' ranks without repeating or skipping any example.
import { tf } from '../backend.js';
import { PAD_ID } from '../data/tokenizer.js';
import type { CaptionBatch } from '../model/caption-loss.js';
import { permutation, Stream } from '../util/rng.js';
import type { FeatureLayout } from './features.js';

export interface Example {
  /** Index of the image in the feature table. */
  image: number;
  /** <start> words <end> <pad>..., exactly maxCaptionLength ids. */
  ids: Int32Array;
}

/**
 * Every (image, caption) example of a split, packed into two typed arrays: a COCO-sized split (600 K captions)
 * as one object per caption would take ~100 MB of heap; packed it takes its token bytes.
 */
export class Examples {
  readonly length: number;

  constructor(
    private readonly images: Int32Array,
    /** captionLength ids per example, one example after another. */
    private readonly tokens: Int32Array,
    private readonly captionLength: number,
  ) {
    this.length = images.length;
  }

  /** Example i; its ids are a view of the packed tokens. */
  at(i: number): Example {
    const L = this.captionLength;
    return { image: this.images[i] as number, ids: this.tokens.subarray(i * L, (i + 1) * L) };
  }

  /** Examples start..end-1. */
  slice(start: number, end: number): Example[] {
    const out: Example[] = [];
    for (let i = start; i < Math.min(end, this.length); i++) out.push(this.at(i));
    return out;
  }
}

export interface DataCursor {
  epoch: number;
  /** Examples of this epoch's order already trained on, by all ranks together. */
  sample: number;
}

/** Full global batches per epoch: the last partial batch is dropped so every step has the same shapes. */
export function batchesPerEpoch(examples: number, globalBatch: number): number {
  return Math.floor(examples / globalBatch);
}

/** Whether another full global batch fits in the epoch after `sample` examples. */
export function epochHasBatch(examples: number, sample: number, globalBatch: number): boolean {
  return sample + globalBatch <= examples;
}

export function epochOrder(examples: number, seed: number, epoch: number): number[] {
  return permutation(examples, seed, Stream.DataOrder, epoch * 4096);
}

/** This rank's slice of the global batch that starts at `sample`: positions in the epoch's order. */
export function rankSlice(sample: number, batchSize: number, rank: number): { start: number; end: number } {
  const start = sample + rank * batchSize;
  return { start, end: start + batchSize };
}

/** Target words (real words and <end>, not padding) of these examples: the loss's denominator. */
export function targetWords(examples: readonly Example[]): number {
  let words = 0;
  for (const ex of examples) for (let t = 1; t < ex.ids.length; t++) if (ex.ids[t] !== PAD_ID) words += 1;
  return words;
}

/**
 * The tensors of one batch: features [B, R, C]; inputs/targets/mask [B, T] with T = maxCaptionLength - 1.
 * `features` holds the examples' maps one after another (what FeatureSource.read returns for their images).
 */
export function makeBatch(layout: Pick<FeatureLayout, 'regions' | 'channels'>, features: Float32Array, examples: readonly Example[]): CaptionBatch {
  const { regions, channels } = layout;
  const b = examples.length;
  const steps = (examples[0]?.ids.length ?? 1) - 1;
  const inputs = new Float32Array(b * steps);
  const targets = new Float32Array(b * steps);
  const mask = new Float32Array(b * steps);
  examples.forEach((ex, i) => {
    for (let t = 0; t < steps; t++) {
      inputs[i * steps + t] = ex.ids[t] as number;
      const target = ex.ids[t + 1] as number;
      targets[i * steps + t] = target;
      mask[i * steps + t] = target === PAD_ID ? 0 : 1;
    }
  });
  return {
    features: tf.tensor3d(features, [b, regions, channels]),
    inputs: tf.tensor2d(inputs, [b, steps]),
    targets: tf.tensor2d(targets, [b, steps]),
    mask: tf.tensor2d(mask, [b, steps]),
  };
}

export function disposeBatch(batch: CaptionBatch): void {
  for (const t of Object.values(batch)) t.dispose();
}
