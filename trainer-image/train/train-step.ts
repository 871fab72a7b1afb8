// One optimizer step: loss and gradients of every decoder parameter, summed over the gang's ranks when
// there are several, then a clipped Adam update.
import { tf } from '../backend.js';
import type { CollectiveStats } from '../distributed/process-group.js';
import { paramRecord, type Decoder } from '../model/decoder.js';
import type { Adam } from './adam.js';
import { captionLoss, type CaptionBatch, type LossOptions, type LossScale, type StepNoise } from '../model/caption-loss.js';
import type { GradientSync } from './gradient-sync.js';

export interface StepResult {
  /** Masked cross-entropy per word of the global batch (the attention penalty excluded). */
  loss: number;
  gradNorm: number;
  /** Some rank asked to stop after this step. */
  stop: boolean;
  allReduce?: CollectiveStats;
}

/** How this step's gradients become the global batch's: its counts, the exchange, and this rank's stop request. */
export interface StepSync {
  scale: LossScale;
  gradients: GradientSync;
  stopRequested: boolean;
  timeoutMs: number;
}

export function gradients(decoder: Decoder, batch: CaptionBatch, noise: StepNoise, opts: LossOptions, scale?: LossScale): { grads: Map<string, tf.Tensor>; loss: number } {
  const p = paramRecord(decoder);
  const vars = [...decoder.params.values()];
  let crossEntropy: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const r = captionLoss(decoder.cfg, p, batch, noise, opts, scale);
    crossEntropy = tf.keep(r.crossEntropy);
    return r.total;
  }, vars);
  value.dispose();
  const loss = (crossEntropy as tf.Scalar).dataSync()[0] as number;
  crossEntropy?.dispose();
  const byName = new Map<string, tf.Tensor>();
  for (const [name, variable] of decoder.params) byName.set(name, grads[variable.name] as tf.Tensor);
  return { grads: byName, loss };
}

export async function trainStep(decoder: Decoder, adam: Adam, batch: CaptionBatch, noise: StepNoise, learningRate: number, opts: LossOptions, sync?: StepSync): Promise<StepResult> {
  const local = gradients(decoder, batch, noise, opts, sync?.scale);
  const step = sync ? await sync.gradients.reduce(local.grads, local.loss, sync.stopRequested, sync.timeoutMs) : { ...local, stop: false, stats: undefined };
  const gradNorm = adam.apply(step.grads, learningRate);
  for (const g of step.grads.values()) g.dispose();
  return { loss: step.loss, gradNorm, stop: step.stop, allReduce: step.stats };
}

/**
 * Peak tensor memory of one forward+backward pass per additional sample, measured at batch 2 and 4 on
 * the real data: the activations grow linearly with the batch, the parameters do not.
 */
export async function measureBytesPerSample(decoder: Decoder, makeBatchOf: (size: number) => CaptionBatch, noiseOf: (size: number) => StepNoise, opts: LossOptions): Promise<number> {
  const peak = async (size: number): Promise<number> => {
    const batch = makeBatchOf(size);
    const noise = noiseOf(size);
    const info = await tf.profile(() => {
      const { grads } = gradients(decoder, batch, noise, opts);
      for (const g of grads.values()) g.dispose();
    });
    for (const t of [...Object.values(batch), noise.dropout, noise.teacherCoins]) t?.dispose();
    return info.peakBytes;
  };
  const small = await peak(2);
  const large = await peak(4);
  return Math.max(1, (large - small) / 2);
}
