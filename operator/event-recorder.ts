// Events on the run for every decision a user should see in `kubectl describe captionrun`. An event that
// cannot be written is logged, never retried: the status already holds the decision.
import { randomBytes } from 'node:crypto';
import { API_VERSION, KIND } from '../lib/api/schema.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { KubeApi } from './runtime/kube-api.js';
import type { PlannedEvent } from './run-plan.js';
import type { StoredRun } from './run-object.js';

export const COMPONENT = 'captionrun-operator';

export class EventRecorder {
  constructor(
    private readonly api: KubeApi,
    private readonly logger: Logger,
    private readonly instance: string,
  ) {}

  async record(run: StoredRun, event: PlannedEvent): Promise<void> {
    const { namespace, name, uid } = run.metadata;
    const now = new Date().toISOString();
    try {
      await this.api.post(`/api/v1/namespaces/${namespace}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
        involvedObject: { apiVersion: API_VERSION, kind: KIND, name, namespace, uid },
        type: event.type,
        reason: event.reason,
        message: event.message.slice(0, 1024),
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: this.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (err) {
      this.logger.warn({ run: name, namespace, reason: event.reason, err: (err as Error).message }, 'could not record event');
    }
  }
}
