// The random draws of one optimizer step (dropout masks, scheduled-sampling coins), generated on the host
// from the counter RNG keyed by the global step. They are inputs to the loss, so a recomputed block, a
// resumed run and every backend see exactly the same randomness. Each draw is addressed by its position in
// the global batch, so rank r of a data-parallel gang generates exactly its rows of the masks that one
// process training on the whole global batch would draw.
import { tf } from '../backend.js';
import { CounterRng, Stream } from '../util/rng.js';
import type { StepNoise } from '../model/caption-loss.js';

export interface NoiseShape {
  steps: number;
  /** Rows this process trains on. */
  batch: number;
  hidden: number;
  /** Where those rows start in the global batch, and its size (defaults: 0 and `batch`). */
  offset?: number;
  globalBatch?: number;
}

/** `teacherForcing`: this step's probability of feeding the ground-truth word (teacher-forcing.ts). */
export function stepNoise(seed: number, globalStep: number, shape: NoiseShape, dropout: number, teacherForcing: number): StepNoise {
  const { steps, batch, hidden } = shape;
  const offset = shape.offset ?? 0;
  const globalBatch = shape.globalBatch ?? batch;
  const noise: StepNoise = {};
  if (dropout > 0) {
    const keep = 1 / (1 - dropout);
    const data = new Float32Array(steps * batch * hidden);
    for (let t = 0; t < steps; t++) {
      for (let b = 0; b < batch; b++) {
        const rng = new CounterRng(seed, Stream.Dropout, globalStep, (t * globalBatch + offset + b) * hidden);
        const row = (t * batch + b) * hidden;
        for (let h = 0; h < hidden; h++) data[row + h] = rng.uniform() < dropout ? 0 : keep;
      }
    }
    noise.dropout = tf.tensor3d(data, [steps, batch, hidden]);
  }
  if (teacherForcing < 1) {
    const data = new Float32Array(batch * steps);
    for (let b = 0; b < batch; b++) {
      // The first input is always <start>: there is no previous prediction to feed, and no coin is drawn.
      const rng = new CounterRng(seed, Stream.ScheduledSampling, globalStep, (offset + b) * (steps - 1));
      for (let t = 0; t < steps; t++) data[b * steps + t] = t === 0 || rng.uniform() < teacherForcing ? 1 : 0;
    }
    noise.teacherCoins = tf.tensor2d(data, [batch, steps]);
  }
  return noise;
}

export function disposeNoise(noise: StepNoise): void {
  noise.dropout?.dispose();
  noise.teacherCoins?.dispose();
}
