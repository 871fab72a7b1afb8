// Reads each running gang's rank 0 `GET /progress` on a bounded schedule, outside reconcile: a slow or
// hung pod delays nothing but its own report. A report that changed queues its run, whose reconcile then
// copies it into status; a report that did not change costs no API request. One cycle polls every watched
// run once and lasts at least `intervalMs`, longer when there are more runs than `maxPerSecond` allows.
import type { Logger } from '../lib/telemetry/logger.js';
import { parseProgressReport, type ProgressReport } from '../lib/telemetry/progress-report.js';

export interface ProgressPollerOptions {
  intervalMs: number;
  /** Upper bound on reports read per second over all runs: what 500 runs cost the operator and the network. */
  maxPerSecond: number;
  /** A pod that has not answered by then is skipped until the next cycle. */
  timeoutMs: number;
  /** Called with the run's key when its report changed. */
  onChange: (key: string) => void;
  logger: Logger;
}

interface Watched {
  url: string;
  report?: ProgressReport;
}

const CONCURRENCY = 16;

export class ProgressPoller {
  private readonly watched = new Map<string, Watched>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: ProgressPollerOptions) {}

  /** Polls `url` for the run from now on; undefined stops polling it and forgets its report. */
  watch(key: string, url: string | undefined): void {
    if (url === undefined) {
      this.watched.delete(key);
      return;
    }
    // Another URL is another gang (or another pod of it): the old gang's report says nothing about it.
    if (this.watched.get(key)?.url !== url) this.watched.set(key, { url });
  }

  /** The latest report read for the run's current gang, if any. */
  latest(key: string): ProgressReport | undefined {
    return this.watched.get(key)?.report;
  }

  get size(): number {
    return this.watched.size;
  }

  start(): void {
    this.loop ??= this.cycleForever();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  /** One pass over every watched run (exposed for tests that should not wait for the schedule). */
  async pollOnce(): Promise<void> {
    const queue = [...this.watched.entries()];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined && !this.stopped; next = queue.shift()) await this.poll(next[0], next[1]);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  }

  private async cycleForever(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      await this.pollOnce();
      const cycleMs = Math.max(this.options.intervalMs, (this.watched.size / this.options.maxPerSecond) * 1000);
      const waitMs = Math.max(0, started + cycleMs - Date.now());
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async poll(key: string, target: Watched): Promise<void> {
    let report: ProgressReport;
    try {
      const res = await fetch(target.url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      report = parseProgressReport(await res.json());
    } catch (err) {
      // A trainer still starting, a stand-in image without the endpoint, a pod going away: status keeps
      // what the checkpoints say, so this is not worth more than a debug line.
      this.options.logger.debug({ run: key, url: target.url, err: (err as Error).message }, 'no progress report');
      return;
    }
    // The run may have moved to another gang while the request was out.
    if (this.watched.get(key) !== target) return;
    if (target.report !== undefined && JSON.stringify(target.report) === JSON.stringify(report)) return;
    target.report = report;
    this.options.onChange(key);
  }
}
