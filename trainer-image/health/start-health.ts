// Starts a trainer's health monitoring from its run spec: the monitor, its /metrics endpoint (and /progress; port from
// CAPTIONRUN_METRICS_PORT, set by the operator; 0 picks a free one), and — when the spec names an
// Alertmanager (local mode, no Prometheus) — direct alert delivery.
import type { CaptionTrainingRun } from '../../lib/api/types.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import { Registry } from 'prom-client';
import { AlertmanagerSink } from './alertmanager.js';
import { startHealthServer, type JsonRoutes } from '../../lib/telemetry/health-server.js';
import { HealthMonitor } from './monitor.js';

export interface HealthOptions {
  rank: number;
  worldSize: number;
  /** Volumes to watch, e.g. { volume: 'cache', path: cacheDir }. */
  volumes: { volume: string; path: string }[];
  logger: Logger;
  metricsPort?: number;
  intervalMs?: number;
  /** JSON documents served beside /metrics (the trainer's /progress). */
  routes?: JsonRoutes;
}

export interface RunningHealth {
  monitor: HealthMonitor;
  metricsPort: number;
  stop(): Promise<void>;
}

export async function startHealth(run: CaptionTrainingRun, options: HealthOptions): Promise<RunningHealth> {
  const alertmanagerURL = run.spec.monitoring.alertmanagerURL;
  const labels = { namespace: run.metadata.namespace ?? 'default', run: run.metadata.name, rank: options.rank };
  // Default labels reach every metric on this registry, the checkpoint library's included, so the alert
  // rules can match them by run without relabeling.
  const registry = new Registry();
  registry.setDefaultLabels({ ...labels, rank: String(labels.rank) });
  const monitor = new HealthMonitor({
    labels,
    worldSize: options.worldSize,
    registry,
    thresholds: run.spec.monitoring.thresholds,
    volumes: options.volumes,
    logger: options.logger,
    intervalMs: options.intervalMs,
    alertSink: alertmanagerURL ? new AlertmanagerSink(alertmanagerURL, options.logger) : undefined,
  });
  const port = options.metricsPort ?? Number(process.env.CAPTIONRUN_METRICS_PORT ?? 0);
  // A pod's own address where the operator gives one (POD_IP), as the rendezvous does: pods that share a
  // network stack (the test cluster's) then never collide on the port.
  const host = process.env.POD_IP ?? '';
  const serve = (p: number) => startHealthServer(`${host.includes(':') ? `[${host}]` : host}:${p}`, monitor.registry, () => true, options.routes);
  const server = await serve(port).catch((err: NodeJS.ErrnoException) => {
    // Metrics must never stop training: a taken port (two trainers on one host) gets any free one instead.
    if (err.code !== 'EADDRINUSE' || port === 0) throw err;
    options.logger.warn({ port }, `metrics port ${port} is taken; serving /metrics on a free port instead`);
    return serve(0);
  });
  monitor.start();
  options.logger.info({ metricsPort: server.port, alertmanager: alertmanagerURL ?? null }, 'health monitor started');
  return {
    monitor,
    metricsPort: server.port,
    async stop() {
      await monitor.stop();
      await server.close();
    },
  };
}
