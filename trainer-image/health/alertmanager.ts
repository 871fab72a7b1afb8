// Local mode's pager: posts the monitor's firing alerts straight to Alertmanager's v2 API, and marks an
// alert resolved (endsAt = now) once it stops firing. Firing alerts are re-sent on every update with an
// endsAt a few intervals ahead, so a trainer that dies stops paging by itself instead of paging forever.
import type { Logger } from '../../lib/telemetry/logger.js';
import type { AlertSink, HealthAlert } from './monitor.js';

interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

export class AlertmanagerSink implements AlertSink {
  private readonly active = new Map<string, { alert: HealthAlert; startsAt: string }>();

  constructor(
    private readonly baseUrl: string,
    private readonly logger: Logger,
    private readonly resendWindowMs = 5 * 60_000,
  ) {}

  async update(firing: HealthAlert[]): Promise<void> {
    const now = new Date();
    const keys = new Set<string>();
    const batch: PostableAlert[] = [];
    for (const alert of firing) {
      const key = keyOf(alert);
      keys.add(key);
      const startsAt = this.active.get(key)?.startsAt ?? now.toISOString();
      this.active.set(key, { alert, startsAt });
      batch.push(toPostable(alert, startsAt, new Date(now.getTime() + this.resendWindowMs)));
    }
    for (const [key, { alert, startsAt }] of this.active) {
      if (keys.has(key)) continue;
      this.active.delete(key);
      batch.push(toPostable(alert, startsAt, now));
    }
    if (batch.length === 0) return;
    const url = `${this.baseUrl.replace(/\/$/, '')}/api/v2/alerts`;
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    } catch (err) {
      // Paging must never stop training: log and try again on the next sample (firing alerts are resent).
      this.logger.error({ err, url, alerts: batch.length }, 'could not post alerts to Alertmanager');
    }
  }
}

function keyOf(alert: HealthAlert): string {
  return JSON.stringify([alert.name, Object.entries(alert.labels).sort()]);
}

function toPostable(alert: HealthAlert, startsAt: string, endsAt: Date): PostableAlert {
  return {
    labels: { alertname: alert.name, severity: alert.severity, ...alert.labels },
    annotations: { summary: alert.summary, description: alert.description },
    startsAt,
    endsAt: endsAt.toISOString(),
  };
}
