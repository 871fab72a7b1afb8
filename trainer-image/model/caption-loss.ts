// The training objective, unrolled over the caption: masked cross-entropy of every next word (optionally
// against label-smoothed targets, Szegedy et al. 2016) plus the
// doubly-stochastic attention penalty  lambda * sum_r (1 - sum_t alpha_{t,r})^2  (Xu et al. 2015, eq. 14),
// averaged over the batch. "The batch" is the global one: with data parallelism each rank sums its slice and
// divides by the global batch's word and caption counts (LossScale), so the ranks' gradients add up to the
// gradient of one process training on the whole global batch. Teacher forcing feeds the ground-truth previous word; with scheduled sampling a
// per-(sample, step) coin decides between it and the model's own previous argmax.
//
// The time steps are processed in blocks so that gradient checkpointing can wrap each block. A block maps
// a packed tensor [batch, carry] to [batch, carry + 1 + regions]: the recurrent state and the previous
// prediction are carried, the block's summed loss and attention mass come out next to them.
import { tf } from '../backend.js';
import type { Tensors } from './decoder-cells.js';
import { advance, embed, initialState, numStateTensors, oneHot, outputLogits, precomputeKeys, projectRegions, stepParameters, wordGates, type DecoderConfig } from './decoder.js';
import { recomputedInBackward } from '../train/gradient-checkpointing.js';

export interface CaptionBatch {
  /** Encoder regions: [batch, regions, channels]. */
  features: tf.Tensor3D;
  /** Input word ids (<start> w1 ... w_{T-1}) as float32: [batch, T]. */
  inputs: tf.Tensor2D;
  /** Target word ids (w1 ... <end>, then padding) as float32: [batch, T]. */
  targets: tf.Tensor2D;
  /** 1 where a target is a real word or <end>, 0 on padding: [batch, T]. */
  mask: tf.Tensor2D;
}

/** The step's random draws, made on the host from the seeded RNG (see noise.ts). */
export interface StepNoise {
  /** Inverted-dropout masks [T, batch, hidden], or undefined when dropout is 0. */
  dropout?: tf.Tensor3D;
  /** 1 = feed the ground-truth word, 0 = feed the model's previous prediction: [batch, T]; undefined = always 1. */
  teacherCoins?: tf.Tensor2D;
}

export interface LossOptions {
  attentionRegularization: number;
  /** Epsilon of label smoothing: targets are (1 - eps) one-hot + eps uniform over the vocabulary; 0 is plain cross-entropy. */
  labelSmoothing: number;
  /** Decoder steps per block; every block is recomputed in the backward pass when `checkpointing` is set. */
  blockSteps: number;
  checkpointing: boolean;
}

/** What the summed loss terms are divided by: the target words and captions of the global batch. */
export interface LossScale {
  words: number;
  captions: number;
}

export interface CaptionLoss {
  total: tf.Scalar;
  /** Per target word, against the smoothed targets when opts.labelSmoothing > 0. */
  crossEntropy: tf.Scalar;
}

/** `scale` defaults to this batch's own counts (one rank, or evaluation). */
export function captionLoss(cfg: DecoderConfig, p: Tensors, batch: CaptionBatch, noise: StepNoise, opts: LossOptions, scale?: LossScale): CaptionLoss {
  const [batchSize, steps] = batch.inputs.shape;
  const regions = batch.features.shape[1];
  const sp = stepParameters(cfg, p);
  const names = Object.keys(sp);
  const params = Object.values(sp);
  const projected = projectRegions(p, batch.features);
  const keys = precomputeKeys(cfg, p, projected);
  const sampling = noise.teacherCoins !== undefined;
  const carryWidth = numStateTensors(cfg) * cfg.hiddenDim + 1;
  let carry: tf.Tensor2D = tf.concat([...initialState(cfg, p, projected), tf.zeros([batchSize, 1])], 1);
  const lossParts: tf.Tensor[] = [];
  const massParts: tf.Tensor[] = [];
  const placeholder = tf.zeros([1]);
  for (let start = 0; start < steps; start += opts.blockSteps) {
    const k = Math.min(opts.blockSteps, steps - start);
    const block = (xs: tf.Tensor[]): tf.Tensor => runBlock(cfg, names, k, { dropout: noise.dropout !== undefined, sampling, labelSmoothing: opts.labelSmoothing }, xs);
    const inputs = [
      carry,
      projected,
      keys,
      tf.slice(batch.inputs, [0, start], [batchSize, k]),
      tf.slice(batch.targets, [0, start], [batchSize, k]),
      tf.slice(batch.mask, [0, start], [batchSize, k]),
      noise.dropout ? tf.slice(noise.dropout, [start, 0, 0], [k, batchSize, cfg.hiddenDim]) : placeholder,
      noise.teacherCoins ? tf.slice(noise.teacherCoins, [0, start], [batchSize, k]) : placeholder,
      ...params,
    ];
    const out = opts.checkpointing ? recomputedInBackward(block, differentiableInputs(params.length))(inputs) : block(inputs);
    carry = tf.slice(out, [0, 0], [batchSize, carryWidth]) as tf.Tensor2D;
    lossParts.push(tf.slice(out, [0, carryWidth], [batchSize, 1]));
    massParts.push(tf.slice(out, [0, carryWidth + 1], [batchSize, regions]));
  }
  const words = scale ? scale.words : tf.maximum(tf.sum(batch.mask), 1);
  const crossEntropy = tf.div(tf.sum(tf.addN(lossParts)), words) as tf.Scalar;
  const mass = tf.addN(massParts);
  const penalty = tf.div(tf.sum(tf.square(tf.sub(1, mass))), scale ? scale.captions : batchSize);
  const total = tf.add(crossEntropy, tf.mul(opts.attentionRegularization, penalty)) as tf.Scalar;
  return { total, crossEntropy };
}

// Input layout of a block: carry, projected regions, keys, input ids, target ids, mask, dropout, coins,
// ...params. Gradients flow into the carry, the regions, the attention keys and the parameters.
function differentiableInputs(numParams: number): boolean[] {
  return [true, true, true, false, false, false, false, false, ...Array<boolean>(numParams).fill(true)];
}

function runBlock(cfg: DecoderConfig, names: string[], k: number, has: { dropout: boolean; sampling: boolean; labelSmoothing: number }, xs: tf.Tensor[]): tf.Tensor {
  const [carry, regions, keys, inputs, targets, mask, dropout, coins] = xs as [
    tf.Tensor2D, tf.Tensor3D, tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D, tf.Tensor2D,
  ];
  const p: Tensors = Object.fromEntries(names.map((n, i) => [n, xs[8 + i] as tf.Tensor]));
  const batchSize = carry.shape[0];
  const hidden = cfg.hiddenDim;
  const n = numStateTensors(cfg);
  let state = Array.from({ length: n }, (_, i) => tf.slice(carry, [0, i * hidden], [batchSize, hidden]));
  let previous = tf.reshape(tf.slice(carry, [0, n * hidden], [batchSize, 1]), [batchSize]) as tf.Tensor1D;
  // What does not depend on the recurrence runs once per block, as a few large ops rather than k small ones:
  // the ground-truth words' embeddings and input gates before the loop; the output projection and the loss
  // after it (unless scheduled sampling needs each step's prediction before the next step). Rows are
  // time-major: t*batch + b.
  const allGates = wordGates(p, embed(p, timeMajor(inputs)));
  // tfjs 4.22 hands a one-output split's gradient a tensor where it expects a list; a block of 1 needs none.
  const truthGates = k === 1 ? [allGates] : tf.split(allGates, k, 0);
  const dropMask = (t: number): tf.Tensor2D => tf.reshape(tf.slice(dropout, [t, 0, 0], [1, batchSize, hidden]), [batchSize, hidden]);
  const outs: tf.Tensor2D[] = [];
  const stepLogits: tf.Tensor2D[] = [];
  const alphas: tf.Tensor2D[] = [];
  for (let t = 0; t < k; t++) {
    let wg = truthGates[t] as tf.Tensor2D;
    if (has.sampling) {
      // coin 1 feeds the ground truth, 0 the previous prediction; both terms are exact, one is multiplied by 0.
      const coin = tf.reshape(tf.slice(coins, [0, t], [batchSize, 1]), [batchSize, 1]);
      wg = tf.add(tf.mul(coin, wg), tf.mul(tf.sub(1, coin), wordGates(p, embed(p, previous))));
    }
    const r = advance(cfg, p, regions, keys, state, wg);
    state = r.state;
    alphas.push(r.alpha);
    if (has.sampling) {
      const logits = outputLogits(p, has.dropout ? tf.mul(r.out, dropMask(t)) : r.out);
      stepLogits.push(logits);
      previous = tf.cast(tf.argMax(logits, 1), 'float32') as tf.Tensor1D;
    } else {
      outs.push(r.out);
    }
  }
  let logits: tf.Tensor2D;
  if (has.sampling) {
    logits = tf.concat(stepLogits, 0);
  } else {
    const out = tf.concat(outs, 0);
    logits = outputLogits(p, has.dropout ? tf.mul(out, tf.reshape(dropout, [k * batchSize, hidden])) : out);
  }
  const m = timeMajor(mask);
  const nll = crossEntropy(has.labelSmoothing)(logits, timeMajor(targets)) as tf.Tensor1D;
  const loss = tf.sum(tf.reshape(tf.mul(nll, m), [k, batchSize]), 0);
  const mass = tf.sum(tf.mul(tf.stack(alphas), tf.reshape(m, [k, batchSize, 1])), 0);
  return tf.concat([...state, tf.expandDims(previous, 1), tf.expandDims(loss, 1), mass], 1);
}

/**
 * Per row, the cross-entropy of softmax(logits) against (1 - eps) one-hot(target) + eps / V:
 * logSumExp(z) - (1 - eps) z[target] - eps mean(z), with the fused gradient softmax - smoothed target (as
 * TensorFlow's SparseSoftmaxCrossEntropyWithLogits at eps 0): a few passes over [rows, vocab] instead of
 * log-softmax's and a one-hot product's separate forward and backward ops.
 */
function crossEntropy(eps: number): (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Tensor {
  let fn = crossEntropies.get(eps);
  if (!fn) {
    fn = smoothedCrossEntropy(eps);
    crossEntropies.set(eps, fn);
  }
  return fn;
}

const crossEntropies = new Map<number, (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Tensor>();

function smoothedCrossEntropy(eps: number): (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [logits, targets, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const logSum = tf.logSumExp(logits, 1, true);
    save([logits, logSum, targets]);
    const picked = tf.sum(tf.mul(oneHot(targets, logits.shape[1]), logits), 1);
    const value = eps === 0 ? tf.sub(tf.reshape(logSum, [-1]), picked) : tf.sub(tf.sub(tf.reshape(logSum, [-1]), tf.mul(1 - eps, picked)), tf.mul(eps, tf.mean(logits, 1)));
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], [z, lse, ids]: tf.Tensor[]) => {
        const vocab = (z as tf.Tensor2D).shape[1];
        const softmax = tf.exp(tf.sub(z as tf.Tensor, lse as tf.Tensor));
        const hot = oneHot(ids as tf.Tensor1D, vocab);
        const target = eps === 0 ? hot : tf.add(tf.mul(1 - eps, hot), eps / vocab);
        return [tf.mul(tf.sub(softmax, target), tf.expandDims(dy as tf.Tensor, 1)), tf.zerosLike(ids as tf.Tensor)];
      },
    };
  }) as (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Tensor;
}

/** [batch, k] -> [k * batch], row t*batch + b: the layout of the block's stacked steps. */
function timeMajor(x: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.transpose(x), [-1]);
}
