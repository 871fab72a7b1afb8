// Wires informers to the work queue and the queue to reconcile workers: any change to a run or to one of
// its pods or Services queues the run's key; a periodic resync queues every run so that nothing depends on
// a single event arriving. Results decide requeues: requeueAfter as asked, errors with per-key backoff.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../lib/api/schema.js';
import type { Logger } from '../lib/telemetry/logger.js';
import { LABEL_RUN } from './gang-names.js';
import { Informer, objectKey } from './runtime/informer.js';
import type { KubeApi } from './runtime/kube-api.js';
import { splitKey, type StoredRun } from './run-object.js';
import type { ReconcileResult } from './run-reconciler.js';
import { WorkQueue } from './runtime/workqueue.js';

export interface ControllerOptions {
  /** Watch one namespace, or all when undefined. */
  namespace?: string;
  workers: number;
  resyncMs: number;
  logger: Logger;
}

export interface ReconcileObserver {
  (key: string, seconds: number, outcome: 'ok' | 'requeue' | 'error'): void;
}

export class RunController {
  readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 60_000 });
  readonly runs: Informer<StoredRun>;
  readonly pods: Informer<V1Pod>;
  readonly services: Informer<V1Service>;
  private resyncTimer: NodeJS.Timeout | undefined;
  private workerLoops: Promise<void>[] = [];
  private reconcile: ((key: string) => Promise<ReconcileResult>) | undefined;

  constructor(api: KubeApi, private readonly options: ControllerOptions, private readonly observe: ReconcileObserver) {
    const ns = options.namespace ? `/namespaces/${options.namespace}` : '';
    const logger = options.logger;
    this.runs = new Informer<StoredRun>(api, { path: `/apis/${GROUP}/${VERSION}${ns}/${PLURAL}`, logger });
    this.pods = new Informer<V1Pod>(api, { path: `/api/v1${ns}/pods`, labelSelector: LABEL_RUN, logger });
    this.services = new Informer<V1Service>(api, { path: `/api/v1${ns}/services`, labelSelector: LABEL_RUN, logger });
    this.runs.on((_event, run) => this.queue.add(objectKey(run)));
    const enqueueOwner = (_event: unknown, child: V1Pod | V1Service): void => {
      const run = child.metadata?.labels?.[LABEL_RUN];
      if (run && child.metadata?.namespace) this.queue.add(`${child.metadata.namespace}/${run}`);
    };
    this.pods.on(enqueueOwner);
    this.services.on(enqueueOwner);
  }

  /** Starts the informers, waits for their first lists, then starts the workers. */
  async start(reconcile: (key: string) => Promise<ReconcileResult>): Promise<void> {
    this.reconcile = reconcile;
    for (const informer of [this.runs, this.pods, this.services]) informer.start();
    // Children first: a run reconciled against an empty pod cache would think its gang is missing.
    await Promise.all([this.pods.waitForSync(), this.services.waitForSync(), this.runs.waitForSync()]);
    this.resyncTimer = setInterval(() => {
      for (const run of this.runs.list()) this.queue.add(objectKey(run));
    }, this.options.resyncMs);
    for (let i = 0; i < this.options.workers; i++) this.workerLoops.push(this.work());
  }

  hasSynced(): boolean {
    return this.runs.hasSynced() && this.pods.hasSynced() && this.services.hasSynced();
  }

  /** Stops taking work, lets running reconciles finish, stops the informers. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.queue.shutDown();
    await Promise.all(this.workerLoops);
    await Promise.all([this.runs.stop(), this.pods.stop(), this.services.stop()]);
  }

  private async work(): Promise<void> {
    const reconcile = this.reconcile;
    if (!reconcile) return;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        const result = await reconcile(key);
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.observe(key, (performance.now() - started) / 1000, result.requeueAfterMs === 0 ? 'requeue' : 'ok');
      } catch (err) {
        const retryInMs = this.queue.addRateLimited(key);
        this.observe(key, (performance.now() - started) / 1000, 'error');
        const { namespace, name } = splitKey(key);
        this.options.logger.error({ run: name, namespace, err: (err as Error).message, retryInMs }, 'reconcile failed');
      } finally {
        this.queue.done(key);
      }
    }
  }
}
