// Data-parallel gradient exchange, as PyTorch DDP and Horovod do it: every gradient of a step is copied into
// one preallocated float32 buffer (fused, so the ring runs once per step instead of once per tensor), the
// rank's share of the loss and its stop request ride along in two extra slots, and one ring all-reduce sums
// the buffer over all ranks. Each rank's loss was already divided by the global batch's counts, so the sum
// is the gradient of the whole global batch; every rank receives the same bits and takes the same step.
import { tf } from '../backend.js';
import type { CollectiveStats, ProcessGroup } from '../distributed/process-group.js';

export interface ReducedStep {
  grads: Map<string, tf.Tensor>;
  /** The global batch's loss: the sum of every rank's share. */
  loss: number;
  /** Whether any rank asked to stop (SIGTERM): every rank then stops after this step. */
  stop: boolean;
  stats: CollectiveStats;
}

interface Slot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export class GradientSync {
  private readonly slots: Slot[] = [];
  private readonly buffer: Float32Array;
  private readonly lossAt: number;

  constructor(
    private readonly group: ProcessGroup,
    shapes: readonly [string, number[]][],
  ) {
    let offset = 0;
    for (const [name, shape] of shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      this.slots.push({ name, shape, offset, size });
      offset += size;
    }
    this.lossAt = offset;
    this.buffer = new Float32Array(offset + 2);
  }

  /** Bytes of one exchange: what each step moves through the ring per rank, twice over. */
  get bytes(): number {
    return this.buffer.byteLength;
  }

  /** Sums the step over all ranks; disposes `grads` and returns new tensors of the summed gradients. */
  async reduce(grads: Map<string, tf.Tensor>, loss: number, stopRequested: boolean, timeoutMs: number): Promise<ReducedStep> {
    for (const slot of this.slots) {
      const g = grads.get(slot.name);
      if (!g) throw new Error(`no gradient for ${slot.name}`);
      this.buffer.set(g.dataSync() as Float32Array, slot.offset);
      g.dispose();
    }
    this.buffer[this.lossAt] = loss;
    this.buffer[this.lossAt + 1] = stopRequested ? 1 : 0;
    const stats = await this.group.allReduceSum(this.buffer, { timeoutMs });
    // slice, not subarray: a tensor made from a typed array may keep it, and the buffer is reused next step.
    const summed = new Map(this.slots.map((s) => [s.name, tf.tensor(this.buffer.slice(s.offset, s.offset + s.size), s.shape)]));
    return { grads: summed, loss: this.buffer[this.lossAt] as number, stop: (this.buffer[this.lossAt + 1] as number) > 0, stats };
  }
}
