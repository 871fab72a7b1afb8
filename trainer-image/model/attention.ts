// Soft attention over the encoder's spatial map [batch, regions, channels]. Both kinds split into a
// per-image part computed once per caption (`keys`) and a per-step score against the decoder state.
//   bahdanau (additive):        score_r = v · tanh(W_f f_r + W_h h + b)
//   luong (multiplicative, "general"): score_r = f_r · W_a h   (computed as (f_r W_a) · h)
import { tf } from '../backend.js';
import type { Tensors } from './decoder-cells.js';

export type AttentionKind = 'bahdanau' | 'luong';

export function attentionShapes(kind: AttentionKind, features: number, hidden: number, attentionDim: number): Record<string, number[]> {
  if (kind === 'bahdanau') {
    return { 'att.Wf': [features, attentionDim], 'att.Wh': [hidden, attentionDim], 'att.b': [attentionDim], 'att.v': [attentionDim, 1] };
  }
  return { 'att.Wa': [features, hidden] };
}

/** Parameters read only by attentionKeys, i.e. once per image rather than at every step. */
export function keyParameterNames(kind: AttentionKind): string[] {
  return kind === 'bahdanau' ? ['att.Wf', 'att.b'] : ['att.Wa'];
}

/** The part of the score that depends only on the image: [batch, regions, attentionDim | hidden]. */
export function attentionKeys(kind: AttentionKind, p: Tensors, features: tf.Tensor3D): tf.Tensor3D {
  const [batch, regions, channels] = features.shape;
  const flat = tf.reshape(features, [batch * regions, channels]) as tf.Tensor2D;
  const proj = kind === 'bahdanau' ? tf.add(tf.matMul(flat, p['att.Wf'] as tf.Tensor2D), p['att.b'] as tf.Tensor) : tf.matMul(flat, p['att.Wa'] as tf.Tensor2D);
  return tf.reshape(proj, [batch, regions, -1]);
}

export interface Attended {
  /** Weighted sum of the regions' features: [batch, channels]. */
  context: tf.Tensor2D;
  /** Attention weights, summing to 1 over regions: [batch, regions]. */
  alpha: tf.Tensor2D;
}

export function attend(kind: AttentionKind, p: Tensors, features: tf.Tensor3D, keys: tf.Tensor3D, h: tf.Tensor2D): Attended {
  let scores: tf.Tensor2D;
  if (kind === 'bahdanau') {
    const query = tf.expandDims(tf.matMul(h, p['att.Wh'] as tf.Tensor2D), 1);
    const energy = tf.tanh(tf.add(keys, query)) as tf.Tensor3D;
    const [batch, regions, dim] = energy.shape;
    scores = tf.reshape(tf.matMul(tf.reshape(energy, [batch * regions, dim]) as tf.Tensor2D, p['att.v'] as tf.Tensor2D), [batch, regions]);
  } else {
    scores = tf.squeeze(tf.matMul(keys, tf.expandDims(h, 2) as tf.Tensor3D), [2]) as tf.Tensor2D;
  }
  const alpha = tf.softmax(scores) as tf.Tensor2D;
  const context = tf.squeeze(tf.matMul(tf.expandDims(alpha, 1) as tf.Tensor3D, features), [1]) as tf.Tensor2D;
  return { context, alpha };
}
