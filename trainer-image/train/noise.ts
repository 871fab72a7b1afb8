// The random draws of one optimizer step (dropout masks, scheduled-sampling coins), generated on the host
// from the counter RNG keyed by the global step. They are inputs to the loss, so a recomputed block, a
// resumed run and every backend see exactly the same randomness.
import { tf } from '../backend.js';
import { CounterRng, Stream } from './rng.js';
import type { StepNoise } from './caption-loss.js';

export interface NoiseShape {
  steps: number;
  batch: number;
  hidden: number;
}

export function stepNoise(seed: number, globalStep: number, shape: NoiseShape, dropout: number, teacherForcingRatio: number): StepNoise {
  const noise: StepNoise = {};
  if (dropout > 0) {
    const rng = new CounterRng(seed, Stream.Dropout, globalStep);
    const keep = 1 / (1 - dropout);
    const data = new Float32Array(shape.steps * shape.batch * shape.hidden);
    for (let i = 0; i < data.length; i++) data[i] = rng.uniform() < dropout ? 0 : keep;
    noise.dropout = tf.tensor3d(data, [shape.steps, shape.batch, shape.hidden]);
  }
  if (teacherForcingRatio < 1) {
    const rng = new CounterRng(seed, Stream.ScheduledSampling, globalStep);
    const data = new Float32Array(shape.batch * shape.steps);
    for (let b = 0; b < shape.batch; b++) {
      // The first input is always <start>: there is no previous prediction to feed.
      for (let t = 0; t < shape.steps; t++) data[b * shape.steps + t] = t === 0 || rng.uniform() < teacherForcingRatio ? 1 : 0;
    }
    noise.teacherCoins = tf.tensor2d(data, [shape.batch, shape.steps]);
  }
  return noise;
}

export function disposeNoise(noise: StepNoise): void {
  noise.dropout?.dispose();
  noise.teacherCoins?.dispose();
}
