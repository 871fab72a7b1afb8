// The two recurrent cells of the caption decoder, written out gate by gate. A cell's state is a list of
// [batch, hidden] tensors: [h] for the GRU, [h, c] for the LSTM. Parameters are plain tensors looked up by
// name, so the same function runs in training, in gradient-checkpointed recomputation and in beam search.
// A step takes its input already projected, xz = x Wx + b ([batch, gates * hidden]): the caller can then
// compute the parts of it that do not depend on the recurrence for many steps in one matmul.
import { tf } from '../backend.js';

export type CellKind = 'lstm' | 'gru';
export type Tensors = Record<string, tf.Tensor>;

/** Parameter shapes of one cell, keyed by name (prefixed so several cells can share one parameter set). */
export function cellShapes(kind: CellKind, prefix: string, inputDim: number, hidden: number): Record<string, number[]> {
  const gates = kind === 'lstm' ? 4 : 3;
  return {
    [`${prefix}.Wx`]: [inputDim, gates * hidden],
    [`${prefix}.Wh`]: [hidden, gates * hidden],
    [`${prefix}.b`]: [gates * hidden],
  };
}

export function stateSize(kind: CellKind): number {
  return kind === 'lstm' ? 2 : 1;
}

export function cellStep(kind: CellKind, p: Tensors, prefix: string, xz: tf.Tensor2D, state: tf.Tensor2D[]): tf.Tensor2D[] {
  return kind === 'lstm' ? lstmStep(p, prefix, xz, state) : gruStep(p, prefix, xz, state);
}

// LSTM (Hochreiter & Schmidhuber, with forget gate): gate order i, f, g, o.
function lstmStep(p: Tensors, prefix: string, xz: tf.Tensor2D, [h, c]: tf.Tensor2D[]): tf.Tensor2D[] {
  const z = tf.add(xz, tf.matMul(h as tf.Tensor2D, p[`${prefix}.Wh`] as tf.Tensor2D));
  const [i, f, g, o] = tf.split(z, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const cNext = tf.add(tf.mul(tf.sigmoid(f), c as tf.Tensor2D), tf.mul(tf.sigmoid(i), tf.tanh(g))) as tf.Tensor2D;
  const hNext = tf.mul(tf.sigmoid(o), tf.tanh(cNext)) as tf.Tensor2D;
  return [hNext, cNext];
}

// GRU (Cho et al. 2014, reset gate applied after the recurrent matmul as in cuDNN/Keras "reset_after"):
// gate order z (update), r (reset), n (candidate).
function gruStep(p: Tensors, prefix: string, xz: tf.Tensor2D, [h]: tf.Tensor2D[]): tf.Tensor2D[] {
  const hz = tf.matMul(h as tf.Tensor2D, p[`${prefix}.Wh`] as tf.Tensor2D);
  const [xu, xr, xn] = tf.split(xz, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const [hu, hr, hn] = tf.split(hz, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const update = tf.sigmoid(tf.add(xu, hu));
  const reset = tf.sigmoid(tf.add(xr, hr));
  const candidate = tf.tanh(tf.add(xn, tf.mul(reset, hn)));
  const hNext = tf.add(tf.mul(tf.sub(1, update), candidate), tf.mul(update, h as tf.Tensor2D)) as tf.Tensor2D;
  return [hNext];
}
