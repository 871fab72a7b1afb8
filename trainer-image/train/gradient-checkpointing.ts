// Gradient checkpointing for one block of computation: the forward pass keeps only the block's inputs and
// output; the backward pass runs the block again under its own tape and backpropagates through that
// recomputation. Memory falls from all of the block's activations to its inputs, for one extra forward.
import { tf } from '../backend.js';

interface EngineWithTape {
  state: { activeTape: unknown };
}

/**
 * Wraps `block` (flat tensor inputs -> one tensor) so that its activations are recomputed in the backward
 * pass. `differentiable[i]` says whether input i needs a gradient; the others (token ids, masks, dropout
 * masks) get zeros, because tf.grads refuses inputs with no path to the output.
 */
export function recomputedInBackward(
  block: (inputs: tf.Tensor[]) => tf.Tensor,
  differentiable: readonly boolean[],
): (inputs: tf.Tensor[]) => tf.Tensor {
  const wrapped = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const inputs = args as tf.Tensor[];
    save(inputs);
    return {
      value: block(inputs),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const wrt = saved.filter((_, i) => differentiable[i]);
        const recompute = (...xs: tf.Tensor[]): tf.Tensor => {
          let next = 0;
          return block(saved.map((s, i) => (differentiable[i] ? (xs[next++] as tf.Tensor) : s)));
        };
        // tf.grads inside a customGrad backward resets the engine's active tape to null on exit, and the
        // outer backward pass then crashes; the tape is restored by hand (tfjs 4.22).
        const engine = tf.engine() as unknown as EngineWithTape;
        const outerTape = engine.state.activeTape;
        let grads: tf.Tensor[];
        try {
          grads = tf.grads(recompute)(wrt, dy as tf.Tensor);
        } finally {
          engine.state.activeTape = outerTape;
        }
        let next = 0;
        return saved.map((s, i) => (differentiable[i] ? (grads[next++] as tf.Tensor) : tf.zerosLike(s)));
      },
    };
  });
  return (inputs) => wrapped(...inputs);
}
