// The checkpoint store's Prometheus series. Created once per registry, so a writer and a reader in the same
// process (or two writers in a test) share series instead of failing on a duplicate registration.
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';
import { INVALID_REASONS } from './errors.js';

export interface CheckpointMetrics {
  saveDuration: Histogram;
  blockedDuration: Histogram;
  savedBytes: Counter;
  saves: Counter<'result'>;
  skipped: Counter;
  waited: Counter;
  lagSeconds: Gauge;
  lastCommit: Gauge;
  invalid: Counter<'reason'>;
  deleted: Counter;
}

const byRegistry = new WeakMap<Registry, CheckpointMetrics>();

export function checkpointMetrics(registry: Registry = globalRegistry): CheckpointMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: CheckpointMetrics = {
    saveDuration: new Histogram({
      name: 'captionrun_checkpoint_save_duration_seconds',
      help: 'Background time of one save, from taking the snapshot to committing MANIFEST.json.',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    blockedDuration: new Histogram({
      name: 'captionrun_checkpoint_save_blocked_seconds',
      help: 'Time save() kept the training loop waiting (handing over buffers, plus waiting for the previous save under whenBusy=wait).',
      buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    savedBytes: new Counter({ name: 'captionrun_checkpoint_save_bytes_total', help: 'Bytes of committed checkpoints, manifest included.', registers }),
    saves: new Counter({ name: 'captionrun_checkpoint_saves_total', help: 'Saves that ended, by result (committed, failed).', labelNames: ['result'], registers }),
    skipped: new Counter({ name: 'captionrun_checkpoint_saves_skipped_total', help: 'Saves skipped because the previous one was still in flight (whenBusy=skip).', registers }),
    waited: new Counter({ name: 'captionrun_checkpoint_saves_waited_total', help: 'Saves that waited for the previous one to finish (whenBusy=wait).', registers }),
    lagSeconds: new Gauge({ name: 'captionrun_checkpoint_lag_seconds', help: 'For the newest committed checkpoint: seconds from its snapshot to its commit.', registers }),
    lastCommit: new Gauge({ name: 'captionrun_checkpoint_last_commit_timestamp_seconds', help: 'Unix time of the newest committed checkpoint.', registers }),
    invalid: new Counter({ name: 'captionrun_checkpoint_invalid_total', help: 'Checkpoints found invalid by a reader, by reason.', labelNames: ['reason'], registers }),
    deleted: new Counter({ name: 'captionrun_checkpoint_retention_deleted_total', help: 'Checkpoints deleted by retention.', registers }),
  };
  for (const reason of INVALID_REASONS) m.invalid.inc({ reason }, 0);
  byRegistry.set(registry, m);
  return m;
}
