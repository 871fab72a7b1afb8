// The random number generator of the trainer, its report and its tests: counter-based, every draw a pure
// function of (seed, stream, key, counter), so any random choice can be replayed after a restart from nothing
// but those integers. Math.random is never used: its state cannot be saved, and a resumed run must follow the
// trajectory of an uninterrupted one. (Synthetic scenes keep their own sequence, data/scene-rng.ts: it is
// what defines those datasets.)

/** Named streams keep unrelated uses independent: drawing more dropout bits never shifts the data order. */
export const Stream = {
  Init: 1,
  DataOrder: 2,
  Dropout: 3,
  ScheduledSampling: 4,
  Split: 5,
  /** The report's t-SNE layout of caption embeddings. */
  Layout: 6,
  /** Inputs of the native backend's benchmark workloads. */
  Workload: 7,
} as const;

// Chris Wellons' "lowbias32" integer hash: full avalanche, cheap in JS (two Math.imul).
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A uniformly distributed uint32 for one (seed, stream, key, counter) tuple. */
export function hash32(seed: number, stream: number, key: number, counter: number): number {
  let h = mix32((seed ^ 0x9e3779b9) >>> 0);
  h = mix32((h + stream * 0x85ebca6b) >>> 0);
  h = mix32((h ^ key) + 0x27d4eb2f);
  return mix32((h + counter) >>> 0);
}

export interface RngState {
  seed: number;
  stream: number;
  key: number;
  counter: number;
}

/** A sequential view over one (seed, stream, key): its whole state is the counter. */
export class CounterRng {
  private readonly s: RngState;

  constructor(seed: number, stream: number, key = 0, counter = 0) {
    this.s = { seed: seed >>> 0, stream, key: key >>> 0, counter };
  }

  static restore(state: RngState): CounterRng {
    return new CounterRng(state.seed, state.stream, state.key, state.counter);
  }

  state(): RngState {
    return { ...this.s };
  }

  nextUint32(): number {
    return hash32(this.s.seed, this.s.stream, this.s.key, this.s.counter++);
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal (Box-Muller; the second value is dropped so each draw is two counters, always). */
  normal(): number {
    const u1 = (this.nextUint32() + 1) / 4294967297;
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Integer in [0, n). The modulo bias is below 2^-20 for the n used here (n < 4096). */
  below(n: number): number {
    return this.nextUint32() % n;
  }
}

/** Fisher-Yates permutation of 0..n-1, a pure function of its arguments. */
export function permutation(n: number, seed: number, stream: number, key: number): number[] {
  const rng = new CounterRng(seed, stream, key);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    const tmp = out[i] as number;
    out[i] = out[j] as number;
    out[j] = tmp;
  }
  return out;
}
