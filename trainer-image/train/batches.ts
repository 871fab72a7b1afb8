// Training examples and their order. An example is one (image, reference caption) pair; the order of an
// epoch is a permutation that is a pure function of (seed, epoch, rank), and a batch is a slice of it, so
// the data cursor (epoch, batch index) is all a resumed run needs to continue with the same batches.
import { tf } from '../backend.js';
import { PAD_ID } from '../data/tokenizer.js';
import type { CaptionBatch } from './caption-loss.js';
import { permutation, Stream } from './rng.js';
import type { FeatureTable } from './features.js';

export interface Example {
  /** Index of the image in the feature table. */
  image: number;
  /** <start> words <end> <pad>..., exactly maxCaptionLength ids. */
  ids: Int32Array;
}

export interface DataCursor {
  epoch: number;
  /** Batches of this epoch already trained on. */
  batch: number;
}

/** Full batches per epoch: the last partial batch is dropped so every step has the same shapes. */
export function batchesPerEpoch(examples: number, batchSize: number): number {
  return Math.floor(examples / batchSize);
}

export function epochOrder(examples: number, seed: number, epoch: number, rank: number): number[] {
  return permutation(examples, seed, Stream.DataOrder, epoch * 4096 + rank);
}

/** The tensors of one batch: features [B, R, C]; inputs/targets/mask [B, T] with T = maxCaptionLength - 1. */
export function makeBatch(table: FeatureTable, examples: readonly Example[]): CaptionBatch {
  const { regions, channels } = table;
  const size = regions * channels;
  const b = examples.length;
  const steps = (examples[0]?.ids.length ?? 1) - 1;
  const features = new Float32Array(b * size);
  const inputs = new Float32Array(b * steps);
  const targets = new Float32Array(b * steps);
  const mask = new Float32Array(b * steps);
  examples.forEach((ex, i) => {
    features.set(table.features[ex.image] as Float32Array, i * size);
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
