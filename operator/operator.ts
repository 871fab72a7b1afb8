// The operator process: metrics and health endpoints from the start, then (as leader, when election is on)
// informers, work queue and reconcile workers. Losing the lease ends the process's work for good, as in
// controller-runtime: a replica that might be stale must not act, and its restart is cheap.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../lib/telemetry/logger.js';
import { CheckpointLocator } from './checkpoint-locator.js';
import { EventRecorder } from './event-recorder.js';
import { startHealthServer, type HealthServer } from '../lib/telemetry/health-server.js';
import { KubeApi } from './runtime/kube-api.js';
import { LeaderElector } from './runtime/leader-election.js';
import { OperatorMetricSet } from './operator-metrics.js';
import { ProgressPoller } from './progress-poller.js';
import { RunController } from './run-controller.js';
import { RunReconciler, type ReconcilerSettings } from './run-reconciler.js';

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  /** Watch one namespace; all when undefined. */
  namespace?: string;
  settings: ReconcilerSettings;
  metricsAddress: string;
  leaderElection?: { namespace: string; name: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  identity?: string;
  workers?: number;
  resyncMs?: number;
  /** How rank 0's /progress is polled; defaults: every 10 s, at most 50 reports a second, 2 s per request. */
  progress?: { intervalMs?: number; maxPerSecond?: number; timeoutMs?: number };
  logger: Logger;
}

export class Operator {
  readonly identity: string;
  readonly metrics: OperatorMetricSet;
  private readonly api: KubeApi;
  private readonly controller: RunController;
  private readonly elector: LeaderElector | undefined;
  private readonly progress: ProgressPoller;
  private server: HealthServer | undefined;
  private controllerStarted = false;
  private stopping = false;
  /** Resolves when the operator stopped acting: stop() was called or the lease was lost. */
  readonly done: Promise<'stopped' | 'lost-lease'>;
  private finish: (why: 'stopped' | 'lost-lease') => void = () => undefined;

  constructor(private readonly options: OperatorOptions) {
    this.identity = options.identity ?? `${hostname()}_${process.pid}`;
    // The queue-depth gauge reads the controller only when scraped, so the metrics can exist before it.
    this.metrics = new OperatorMetricSet(() => this.controller.queue.length);
    this.api = new KubeApi(options.kubeConfig, { onResponse: (verb, code) => this.metrics.apiRequests.inc({ verb, code }) });
    this.controller = new RunController(this.api, { namespace: options.namespace, workers: options.workers ?? 4, resyncMs: options.resyncMs ?? 30_000, logger: options.logger }, (_key, seconds, outcome) => {
      this.metrics.reconcileDuration.observe({ result: outcome }, seconds);
      if (outcome === 'error') this.metrics.reconcileErrors.inc();
    });
    this.progress = new ProgressPoller({
      intervalMs: options.progress?.intervalMs ?? 10_000,
      maxPerSecond: options.progress?.maxPerSecond ?? 50,
      timeoutMs: options.progress?.timeoutMs ?? 2000,
      onChange: (key) => this.controller.queue.add(key),
      logger: options.logger,
    });
    if (options.leaderElection) {
      this.elector = new LeaderElector(this.api, { ...options.leaderElection, identity: this.identity, logger: options.logger });
    }
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  get port(): number | undefined {
    return this.server?.port;
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : true;
  }

  ready(): boolean {
    if (this.stopping) return false;
    if (this.elector && !this.elector.isLeader()) return true;
    return this.controller.hasSynced();
  }

  async start(): Promise<void> {
    this.server = await startHealthServer(this.options.metricsAddress, this.metrics.registry, () => this.ready());
    this.options.logger.info({ identity: this.identity, namespace: this.options.namespace ?? '(all)', port: this.server.port }, 'operator started');
    if (!this.elector) {
      await this.startController();
      return;
    }
    void this.elector.run(() => void this.startController()).then(async () => {
      if (this.stopping) return;
      this.options.logger.error({ identity: this.identity }, 'lost the leader lease; stopping');
      await this.shutDown();
      this.finish('lost-lease');
    });
  }

  /** Graceful shutdown: finish in-flight reconciles, hand the lease over, close the endpoints. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    await this.shutDown();
    this.finish('stopped');
  }

  private async startController(): Promise<void> {
    if (this.stopping) return;
    this.controllerStarted = true;
    const { settings, logger } = this.options;
    const reconciler = new RunReconciler({
      api: this.api,
      runs: this.controller.runs,
      pods: this.controller.pods,
      services: this.controller.services,
      locator: new CheckpointLocator(this.api, logger, this.metrics.registry),
      progress: this.progress,
      events: new EventRecorder(this.api, logger, this.identity),
      metrics: this.metrics,
      logger,
      settings,
    });
    await this.controller.start((key) => reconciler.reconcile(key));
    this.progress.start();
    logger.info({ runs: this.controller.runs.list().length }, 'caches synced; reconciling');
  }

  private async shutDown(): Promise<void> {
    this.stopping = true;
    await this.progress.stop();
    if (this.controllerStarted) await this.controller.stop();
    this.metrics.forgetAllRuns();
    await this.elector?.stop();
    await this.server?.close();
  }
}
