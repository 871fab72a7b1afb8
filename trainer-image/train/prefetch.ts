// Reading ahead: while step i trains, the features of steps i+1..i+depth are already being read (from local
// disk or S3), so a step waits for its reads only when storage is slower than training. Memory holds at most
// depth + 1 batches of features.

export class Prefetcher<T> {
  private readonly pending = new Map<number, Promise<T>>();

  /** `read(i)` reads item i of `count`; items are asked for in increasing order. */
  constructor(
    private readonly read: (index: number) => Promise<T>,
    private readonly count: number,
    private readonly depth: number,
  ) {}

  /** Item `index`, starting the reads of the next `depth` items. */
  get(index: number): Promise<T> {
    for (const stale of this.pending.keys()) if (stale < index) this.pending.delete(stale);
    for (let i = index; i <= Math.min(index + this.depth, this.count - 1); i++) {
      if (this.pending.has(i)) continue;
      const reading = this.read(i);
      // A read ahead that fails is reported when its item is asked for; one never asked for (the loop
      // stopped first) must not surface as an unhandled rejection.
      reading.catch(() => {});
      this.pending.set(i, reading);
    }
    const item = this.pending.get(index);
    if (item === undefined) throw new RangeError(`prefetch: item ${index} is outside 0..${this.count - 1}`);
    this.pending.delete(index);
    return item;
  }
}
