// Reads a run's checkpoints the way the trainer will: the latest VALID one (every file verified) is the
// resume point, and the newest manifest is the run's progress for status (step, epoch, loss, BLEU-4).
// S3 credentials come from the run's credentialsSecret, read at the moment they are needed and never kept.
import type { Registry } from 'prom-client';
import { CheckpointReader, openStore, type CheckpointInfo, type CheckpointStore } from '../lib/checkpoint/index.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { CommittedCheckpoint } from '../lib/telemetry/progress-report.js';
import { checkpointLocation } from './checkpoint-location.js';
import type { KubeApi } from './kube-api.js';
import type { StoredRun } from './run-object.js';

export class CheckpointLocator {
  constructor(
    private readonly api: KubeApi,
    private readonly logger: Logger,
    private readonly registry: Registry,
  ) {}

  /** The checkpoint a relaunch resumes from; undefined for a fresh start or a store the operator cannot read. */
  async latestValid(run: StoredRun): Promise<CommittedCheckpoint | undefined> {
    return this.withReader(run, async (reader, uri) => {
      const { latest, invalid } = await reader.latestValid();
      for (const bad of invalid) this.logger.warn({ run: run.metadata.name, namespace: run.metadata.namespace, checkpoint: bad.name, reason: bad.reason }, 'skipping invalid checkpoint');
      return latest ? toRef(uri, latest) : undefined;
    });
  }

  /** The newest checkpoint whose manifest checks out (files not re-hashed): cheap enough to poll for progress. */
  async newest(run: StoredRun): Promise<CommittedCheckpoint | undefined> {
    return this.withReader(run, async (reader, uri) => {
      for (const name of await reader.names()) {
        const info = await reader.inspect(name);
        if (info.valid) return toRef(uri, info);
      }
      return undefined;
    });
  }

  private async withReader<T>(run: StoredRun, use: (reader: CheckpointReader, uri: string) => Promise<T | undefined>): Promise<T | undefined> {
    const { namespace, name } = run.metadata;
    const location = checkpointLocation(run.spec.checkpoint.store, namespace, name);
    // A claim is mounted into worker pods only; the trainer finds its own resume point there.
    if (location.kind === 'pvc') return undefined;
    let store: CheckpointStore;
    if (location.kind === 's3') {
      const credentials = location.credentialsSecret ? await this.secretCredentials(namespace, location.credentialsSecret) : {};
      store = openStore(location.uri, {
        s3: { endpoint: location.endpoint, region: location.region, forcePathStyle: location.forcePathStyle, retryDeadlineMs: 10_000, ...credentials },
        logger: this.logger,
      });
    } else {
      store = openStore(location.uri, { logger: this.logger });
    }
    try {
      return await use(new CheckpointReader(store, { logger: this.logger, registry: this.registry }), location.uri);
    } finally {
      await store.close();
    }
  }

  private async secretCredentials(namespace: string, secret: string): Promise<{ accessKeyId?: string; secretAccessKey?: string }> {
    const s = await this.api.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${namespace}/secrets/${secret}`);
    const decode = (key: string): string | undefined => (s.data?.[key] ? Buffer.from(s.data[key], 'base64').toString('utf8') : undefined);
    return { accessKeyId: decode('AWS_ACCESS_KEY_ID'), secretAccessKey: decode('AWS_SECRET_ACCESS_KEY') };
  }
}

function toRef(runUri: string, info: CheckpointInfo): CommittedCheckpoint | undefined {
  const m = info.manifest;
  if (!m) return undefined;
  return { name: info.name, uri: `${runUri}/${info.name}`, step: m.step, epoch: m.epoch, digest: m.manifestDigest, time: m.createdAt, metrics: m.metrics };
}
