// What a run used over time, for the report's resource charts: process memory and, once training runs, the
// step time and checkpoint save durations, sampled every few seconds from the trainer's own counters (no
// extra work on the training path). Written to the outputs as resources.json.
import { memoryUsage } from 'node:process';

export interface ResourceSample {
  /** Seconds since the trainer started. */
  t: number;
  rssBytes: number;
  /** Median step time since the previous sample. */
  stepSeconds?: number;
  /** The longest checkpoint save (snapshot to commit) that finished since the previous sample. */
  checkpointSaveSeconds?: number;
}

export interface ResourceRecord {
  samples: ResourceSample[];
  wallSeconds: number;
  peakRssBytes: number;
  backend: string;
  captionLatencyMs?: { p50: number; p95: number };
}

const SAMPLE_MS = 5000;

export class ResourceLog {
  private readonly started = performance.now();
  private readonly samples: ResourceSample[] = [];
  private saves: number[] = [];
  private steps: number[] = [];
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly backend: string) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  recordStep(seconds: number): void {
    this.steps.push(seconds);
  }

  recordCheckpointSave(seconds: number): void {
    this.saves.push(seconds);
  }

  /** Stops sampling and returns the record (with the final evaluation's caption latencies, when given). */
  finish(captionLatenciesMs: number[] = []): ResourceRecord {
    clearInterval(this.timer);
    this.sample();
    const record: ResourceRecord = { samples: this.samples, wallSeconds: round(this.now()), peakRssBytes: this.peak, backend: this.backend };
    if (captionLatenciesMs.length > 0) record.captionLatencyMs = { p50: round(quantile(captionLatenciesMs, 0.5)), p95: round(quantile(captionLatenciesMs, 0.95)) };
    return record;
  }

  private now(): number {
    return (performance.now() - this.started) / 1000;
  }

  private sample(): void {
    const rssBytes = memoryUsage.rss();
    this.peak = Math.max(this.peak, rssBytes);
    const s: ResourceSample = { t: round(this.now()), rssBytes };
    if (this.steps.length > 0) s.stepSeconds = round(quantile(this.steps, 0.5));
    if (this.saves.length > 0) s.checkpointSaveSeconds = round(Math.max(...this.saves));
    this.steps = [];
    this.saves = [];
    this.samples.push(s);
  }
}

/** The q-quantile of xs by linear interpolation between order statistics. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
