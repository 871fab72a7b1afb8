// The operator's Prometheus series, named by lib/telemetry/metric-names.ts (the alert rules read them).
// Per-run series mirror each run's status, like kube-state-metrics: restarts come from status.restarts, so
// a new leader reports the same value as the old one and increase() over the series stays meaningful.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES } from '../lib/api/schema.js';
import type { Phase } from '../lib/api/types.js';
import { OperatorMetrics } from '../lib/telemetry/metric-names.js';

export class OperatorMetricSet {
  readonly registry = new Registry();
  private readonly runPhase: Gauge<'namespace' | 'run' | 'phase'>;
  private readonly runRestarts: Gauge<'namespace' | 'run'>;
  readonly reconcileDuration: Histogram<'result'>;
  readonly reconcileErrors: Counter;
  readonly workqueueDepth: Gauge;
  readonly apiRequests: Counter<'verb' | 'code'>;

  constructor(queueDepth: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.runPhase = new Gauge({ name: OperatorMetrics.runPhase, help: '1 for the run\'s current phase, 0 for the others.', labelNames: ['namespace', 'run', 'phase'], registers });
    // status.restarts is a counter kept in the apiserver; a gauge is how prom-client exports a value it did not count itself.
    this.runRestarts = new Gauge({ name: OperatorMetrics.runRestartsTotal, help: 'Gang relaunches after failures (status.restarts).', labelNames: ['namespace', 'run'], registers });
    this.reconcileDuration = new Histogram({
      name: OperatorMetrics.reconcileDurationSeconds,
      help: 'Time of one reconcile of one run, by result (ok, requeue, error).',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.reconcileErrors = new Counter({ name: OperatorMetrics.reconcileErrorsTotal, help: 'Reconciles that ended in an error and were requeued with backoff.', registers });
    this.apiRequests = new Counter({ name: OperatorMetrics.apiRequestsTotal, help: 'Requests to the Kubernetes API, by verb (WATCH for watches) and HTTP code.', labelNames: ['verb', 'code'], registers });
    this.workqueueDepth = new Gauge({
      name: OperatorMetrics.workqueueDepth,
      help: 'Runs waiting to be reconciled.',
      registers,
      collect() {
        this.set(queueDepth());
      },
    });
  }

  observeRun(namespace: string, run: string, phase: Phase, restarts: number): void {
    for (const p of PHASES) this.runPhase.set({ namespace, run, phase: p }, p === phase ? 1 : 0);
    this.runRestarts.set({ namespace, run }, restarts);
  }

  forgetRun(namespace: string, run: string): void {
    for (const phase of PHASES) this.runPhase.remove({ namespace, run, phase });
    this.runRestarts.remove({ namespace, run });
  }

  /** A replica that is not the leader exports no per-run series, so alerts never see two answers. */
  forgetAllRuns(): void {
    this.runPhase.reset();
    this.runRestarts.reset();
  }
}
