// The trainer's health monitor: samples GPUs, memory, disk and checkpoint age on an interval, exports them
// (with the run's own alert thresholds) as Prometheus gauges, acts before a resource kills the run (frees
// disk when it runs low, says what to change when GPU memory is nearly full), and in local mode — no
// Prometheus — hands threshold crossings to an alert sink (alertmanager.ts).
import { freemem, totalmem } from 'node:os';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MonitoringSpec } from '../../lib/api/types.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import { TrainerMetrics } from '../../lib/telemetry/metric-names.js';
import { sampleDisk, type DiskSample } from './disk.js';
import { queryGpus, type GpuSample } from './nvidia-smi.js';

export interface RunLabels {
  namespace: string;
  run: string;
  rank: number;
}

export type HealthAlertName = 'CaptionRunGPUMemoryHigh' | 'CaptionRunDiskSpaceLow' | 'CaptionRunCheckpointStale';

export interface HealthAlert {
  name: HealthAlertName;
  severity: 'warning' | 'critical';
  labels: Record<string, string>;
  summary: string;
  description: string;
}

/** Receives every alert that is firing after a sample, and nothing for one that has resolved. */
export interface AlertSink {
  update(firing: HealthAlert[]): Promise<void>;
}

export interface HealthSnapshot {
  gpus: GpuSample[];
  disks: DiskSample[];
  checkpointAgeSeconds?: number;
  firing: HealthAlert[];
}

export interface HealthMonitorOptions {
  labels: RunLabels;
  /** WORLD_SIZE, exported as a gauge (default 1). */
  worldSize?: number;
  thresholds: MonitoringSpec['thresholds'];
  volumes: { volume: string; path: string }[];
  logger: Logger;
  registry?: Registry;
  intervalMs?: number;
  alertSink?: AlertSink;
  gpus?: () => Promise<GpuSample[]>;
  now?: () => number;
}

export class HealthMonitor {
  readonly registry: Registry;
  private readonly base: Record<string, string>;
  private readonly gauges: Record<
    'gpuUsed' | 'gpuTotal' | 'gpuUtil' | 'diskFree' | 'diskTotal' | 'rss' | 'hostAvail' | 'hostTotal',
    Gauge
  >;
  private readonly steps: Counter;
  private readonly actions: Counter;
  private readonly allReduceSeconds: Histogram;
  private readonly allReduceBytes: Counter;
  private readonly extraction: Record<'images' | 'rate' | 'eta', Gauge>;
  private lastCommitMs?: number;
  private timer?: NodeJS.Timeout;
  private sampling?: Promise<HealthSnapshot>;

  constructor(private readonly options: HealthMonitorOptions) {
    this.registry = options.registry ?? new Registry();
    this.base = { namespace: options.labels.namespace, run: options.labels.run, rank: String(options.labels.rank) };
    const gauge = (name: string, help: string, extra: string[] = []): Gauge =>
      new Gauge({ name, help, labelNames: ['namespace', 'run', 'rank', ...extra], registers: [this.registry] });
    this.gauges = {
      gpuUsed: gauge(TrainerMetrics.gpuMemoryUsedBytes, 'GPU memory in use', ['gpu']),
      gpuTotal: gauge(TrainerMetrics.gpuMemoryTotalBytes, 'GPU memory size', ['gpu']),
      gpuUtil: gauge(TrainerMetrics.gpuUtilizationRatio, 'GPU utilisation, 0 to 1', ['gpu']),
      diskFree: gauge(TrainerMetrics.diskFreeBytes, 'Free bytes on a trainer volume', ['volume']),
      diskTotal: gauge(TrainerMetrics.diskTotalBytes, 'Size of a trainer volume', ['volume']),
      rss: gauge(TrainerMetrics.processResidentMemoryBytes, 'Resident memory of the trainer process'),
      hostAvail: gauge(TrainerMetrics.hostMemoryAvailableBytes, 'Memory available on the host'),
      hostTotal: gauge(TrainerMetrics.hostMemoryTotalBytes, 'Memory of the host'),
    };
    this.steps = new Counter({ name: TrainerMetrics.trainStepsTotal, help: 'Optimizer steps taken', labelNames: ['namespace', 'run', 'rank'], registers: [this.registry] });
    this.actions = new Counter({
      name: TrainerMetrics.protectiveActionsTotal,
      help: 'Protective actions taken before a resource ran out',
      labelNames: ['namespace', 'run', 'rank', 'action'],
      registers: [this.registry],
    });
    const t = options.thresholds;
    for (const [name, value] of [
      [TrainerMetrics.thresholdGpuMemoryPercent, t.gpuMemoryPercent],
      [TrainerMetrics.thresholdGpuIdlePercent, t.gpuIdlePercent],
      [TrainerMetrics.thresholdDiskFreePercent, t.diskFreePercent],
      [TrainerMetrics.thresholdCheckpointStaleSeconds, t.checkpointStaleSeconds],
    ] as const) {
      gauge(name, 'Alert threshold from spec.monitoring.thresholds').set(this.base, value);
    }
    this.steps.inc(this.base, 0);
    gauge(TrainerMetrics.worldSize, 'Training processes in the gang (WORLD_SIZE)').set(this.base, options.worldSize ?? 1);
    this.allReduceSeconds = new Histogram({
      name: TrainerMetrics.allReduceDurationSeconds,
      help: 'Time a step spent in the gradient all-reduce between ranks',
      labelNames: ['namespace', 'run', 'rank'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.extraction = {
      images: gauge(TrainerMetrics.featureExtractionImages, "Images of this rank's share of feature extraction, done and in all", ['state']),
      rate: gauge(TrainerMetrics.featureExtractionImagesPerSecond, 'Feature extraction images per second since it started'),
      eta: gauge(TrainerMetrics.featureExtractionEtaSeconds, 'Seconds feature extraction still expects to need'),
    };
    this.allReduceBytes = new Counter({
      name: TrainerMetrics.allReduceBytesTotal,
      help: 'Bytes this rank sent in gradient all-reduces',
      labelNames: ['namespace', 'run', 'rank'],
      registers: [this.registry],
    });
  }

  start(): void {
    const interval = this.options.intervalMs ?? 15_000;
    const tick = (): void => {
      void this.sample().catch((err: unknown) => this.options.logger.warn({ err }, 'health sample failed'));
    };
    tick();
    this.timer = setInterval(tick, interval);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sampling?.catch(() => undefined);
  }

  recordStep(steps = 1): void {
    this.steps.inc(this.base, steps);
  }

  recordAllReduce(seconds: number, bytesSent: number): void {
    this.allReduceSeconds.observe(this.base, seconds);
    this.allReduceBytes.inc(this.base, bytesSent);
  }

  /** Feature extraction's progress, as the pass over this rank's share reports it after each batch. */
  recordExtraction(p: { done: number; total: number; imagesPerSecond: number; etaSeconds?: number }): void {
    this.extraction.images.set({ ...this.base, state: 'done' }, p.done);
    this.extraction.images.set({ ...this.base, state: 'total' }, p.total);
    this.extraction.rate.set(this.base, p.imagesPerSecond);
    if (p.done >= p.total) this.extraction.eta.set(this.base, 0);
    else if (p.etaSeconds !== undefined) this.extraction.eta.set(this.base, p.etaSeconds);
  }

  /** The checkpoint library exports the commit time itself; the monitor needs it for local-mode alerts. */
  recordCheckpointCommit(at: Date): void {
    this.lastCommitMs = at.getTime();
  }

  /** One sampling pass; concurrent callers share it. */
  sample(): Promise<HealthSnapshot> {
    this.sampling ??= this.sampleOnce().finally(() => {
      this.sampling = undefined;
    });
    return this.sampling;
  }

  private async sampleOnce(): Promise<HealthSnapshot> {
    const { logger, thresholds } = this.options;
    const now = (this.options.now ?? Date.now)();
    const gpus = await (this.options.gpus ?? (() => queryGpus()))();
    for (const g of gpus) {
      const labels = { ...this.base, gpu: String(g.index) };
      if (g.memoryUsedBytes !== undefined) this.gauges.gpuUsed.set(labels, g.memoryUsedBytes);
      if (g.memoryTotalBytes !== undefined) this.gauges.gpuTotal.set(labels, g.memoryTotalBytes);
      if (g.utilization !== undefined) this.gauges.gpuUtil.set(labels, g.utilization);
    }
    this.gauges.rss.set(this.base, process.memoryUsage.rss());
    this.gauges.hostAvail.set(this.base, freemem());
    this.gauges.hostTotal.set(this.base, totalmem());

    const disks = await Promise.all(this.options.volumes.map((v) => sampleDisk(v.volume, v.path)));
    for (const d of disks) {
      this.gauges.diskFree.set({ ...this.base, volume: d.volume }, d.freeBytes);
      this.gauges.diskTotal.set({ ...this.base, volume: d.volume }, d.totalBytes);
    }

    const firing: HealthAlert[] = [];
    const who = `run ${this.base.namespace}/${this.base.run}`;
    for (const g of gpus) {
      if (g.memoryUsedBytes === undefined || !g.memoryTotalBytes) continue;
      const percent = (100 * g.memoryUsedBytes) / g.memoryTotalBytes;
      if (percent <= thresholds.gpuMemoryPercent) continue;
      logger.warn({ gpu: g.index, percent }, 'GPU memory nearly full: lower spec.training.batchSize or enable gradientCheckpointing');
      this.actions.inc({ ...this.base, action: 'recommend-smaller-batch' });
      firing.push({
        name: 'CaptionRunGPUMemoryHigh',
        severity: 'warning',
        labels: { ...this.base, gpu: String(g.index) },
        summary: `GPU memory nearly full in ${who}`,
        description: `GPU ${g.index} of rank ${this.base.rank} uses ${percent.toFixed(0)} % of its memory.`,
      });
    }
    for (const d of disks.filter((x) => freePercent(x) < thresholds.diskFreePercent)) {
      firing.push({
        name: 'CaptionRunDiskSpaceLow',
        severity: 'critical',
        labels: { ...this.base, volume: d.volume },
        summary: `Disk space low for ${who}`,
        description: `The ${d.volume} volume (${d.path}) of rank ${this.base.rank} has ${freePercent(d).toFixed(1)} % free.`,
      });
    }
    const checkpointAgeSeconds = this.lastCommitMs === undefined ? undefined : (now - this.lastCommitMs) / 1000;
    if (checkpointAgeSeconds !== undefined && checkpointAgeSeconds > thresholds.checkpointStaleSeconds) {
      firing.push({
        name: 'CaptionRunCheckpointStale',
        severity: 'warning',
        labels: this.base,
        summary: `No checkpoint committed recently for ${who}`,
        description: `The last checkpoint was committed ${checkpointAgeSeconds.toFixed(0)} s ago.`,
      });
    }
    await this.options.alertSink?.update(firing);
    return { gpus, disks, checkpointAgeSeconds, firing };
  }

}

function freePercent(d: DiskSample): number {
  return d.totalBytes === 0 ? 100 : (100 * d.freeBytes) / d.totalBytes;
}
