// Adam (Kingma & Ba 2015) with global-norm gradient clipping, written out so that its whole state — step
// count and both moment estimates per parameter — can be copied into a checkpoint and restored bit for bit.
import { tf } from '../backend.js';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Clip the global gradient norm to this value; 0 = no clipping. */
  clipNorm: number;
}

export const DEFAULT_ADAM: AdamOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, clipNorm: 5 };

export class Adam {
  /** Number of updates applied so far (t in the paper). */
  t = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly opts: AdamOptions,
  ) {
    for (const [name, p] of params) {
      // tidy disposes the zeros: a variable shares their data, which would otherwise outlive dispose().
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** Applies one update; returns the global gradient norm before clipping. */
  apply(grads: Map<string, tf.Tensor>, learningRate: number): number {
    this.t += 1;
    const { beta1, beta2, epsilon, clipNorm } = this.opts;
    const norm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0] as number);
    const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1;
    const stepSize = (learningRate * Math.sqrt(1 - beta2 ** this.t)) / (1 - beta1 ** this.t);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const grad = grads.get(name);
        if (!grad) throw new Error(`no gradient for ${name}`);
        const g = scale === 1 ? grad : tf.mul(grad, scale);
        const m = this.m.get(name) as tf.Variable;
        const v = this.v.get(name) as tf.Variable;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        p.assign(tf.sub(p, tf.div(tf.mul(m, stepSize), tf.add(tf.sqrt(v), epsilon))));
      }
    });
    return norm;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}
