// Reads a run's checkpoints the way the trainer will: the latest VALID one (every file verified) is the
// resume point, and the newest manifest is the run's progress for status while no trainer reports.
// S3 credentials come from the run's credentialsSecret, read at the moment they are needed and never kept,
// and only where the chart lets the operator read that Secret (checkpointCredentialSecrets). Where the
// operator cannot look (a PVC, a Secret it may not read) it says so, and the trainer finds its resume
// point alone and reports it.
import type { Registry } from 'prom-client';
import { CheckpointReader, committedCheckpoint, openStore, type CheckpointInfo, type CheckpointStore } from '../lib/checkpoint/index.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { CommittedCheckpoint } from '../lib/telemetry/progress-report.js';
import { checkpointLocation } from '../lib/checkpoint/location.js';
import { isForbidden, type KubeApi } from './runtime/kube-api.js';
import type { StoredRun } from './run-object.js';

/** A checkpoint to resume from; neither field for a fresh start; `unreadable` says why the operator cannot tell. */
export interface ResumePoint {
  checkpoint?: CommittedCheckpoint;
  unreadable?: string;
}

export class CheckpointLocator {
  constructor(
    private readonly api: KubeApi,
    private readonly logger: Logger,
    private readonly registry: Registry,
  ) {}

  /** The checkpoint a relaunch resumes from, none for a fresh start, or why the operator cannot tell. */
  async latestValid(run: StoredRun): Promise<ResumePoint> {
    const found = await this.withReader(run, async (reader, uri) => {
      const { latest, invalid } = await reader.latestValid();
      for (const bad of invalid) this.logger.warn({ run: run.metadata.name, namespace: run.metadata.namespace, checkpoint: bad.name, reason: bad.reason }, 'skipping invalid checkpoint');
      return latest ? toRef(uri, latest) : undefined;
    });
    if ('unreadable' in found) return { unreadable: found.unreadable };
    return found.value ? { checkpoint: found.value } : {};
  }

  /** The newest checkpoint whose manifest checks out (files not re-hashed): cheap enough to poll for progress. */
  async newest(run: StoredRun): Promise<CommittedCheckpoint | undefined> {
    const found = await this.withReader(run, async (reader, uri) => {
      for (const name of await reader.names()) {
        const info = await reader.inspect(name);
        if (info.valid) return toRef(uri, info);
      }
      return undefined;
    });
    return 'unreadable' in found ? undefined : found.value;
  }

  private async withReader<T>(run: StoredRun, use: (reader: CheckpointReader, uri: string) => Promise<T | undefined>): Promise<{ value: T | undefined } | { unreadable: string }> {
    const { namespace, name } = run.metadata;
    const location = checkpointLocation(run.spec.checkpoint.store, namespace, name);
    if (location.kind === 'pvc') return { unreadable: `claim ${location.claimName} is mounted into worker pods only` };
    let store: CheckpointStore;
    if (location.kind === 's3') {
      let credentials = {};
      if (location.credentialsSecret) {
        try {
          credentials = await this.secretCredentials(namespace, location.credentialsSecret);
        } catch (err) {
          // A Secret that does not exist is the user's to create (the pods could not start either); one the
          // operator may not read is the chart's choice, and the pods still get it through secretKeyRef.
          if (!isForbidden(err)) throw err;
          return { unreadable: `the operator may not read Secret ${location.credentialsSecret}: it is not in the chart's checkpointCredentialSecrets` };
        }
      }
      store = openStore(location.uri, {
        s3: { endpoint: location.endpoint, region: location.region, forcePathStyle: location.forcePathStyle, retryDeadlineMs: 10_000, ...credentials },
        logger: this.logger,
      });
    } else {
      store = openStore(location.uri, { logger: this.logger });
    }
    try {
      return { value: await use(new CheckpointReader(store, { logger: this.logger, registry: this.registry }), location.uri) };
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
  return committedCheckpoint(runUri, info.name, m);
}
