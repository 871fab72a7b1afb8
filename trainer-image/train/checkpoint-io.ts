// The trainer's only dependency on lib/checkpoint: where checkpoints go, how a snapshot is saved (in the
// background, at most one in flight) and how the latest valid one is loaded. Everything else in the
// trainer sees only this interface.
import { readFileSync } from 'node:fs';
import type { CheckpointSpec } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import { runUri } from '../../lib/checkpoint/layout.js';
import { openStore } from '../../lib/checkpoint/open-store.js';
import { CheckpointReader } from '../../lib/checkpoint/reader.js';
import { applyRetention } from '../../lib/checkpoint/retention.js';
import { writeCheckpoint } from '../../lib/checkpoint/save-job.js';
import type { CheckpointStore } from '../../lib/checkpoint/store.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import { tf } from '../backend.js';
import type { Snapshot } from './snapshot.js';

export interface LoadedState {
  name: string;
  files: Map<string, Uint8Array>;
  state: unknown;
}

export interface CheckpointIO {
  readonly uri: string;
  latest(): Promise<LoadedState | undefined>;
  /** Fails fast, before any training, when the store refuses writes (read-only directory, denied bucket). */
  checkWritable(): Promise<void>;
  /** Queues a save; waits only while the previous save is still in flight. */
  save(snapshot: Snapshot): Promise<void>;
  /** Resolves when every queued save is committed; rejects with the first save error. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface CheckpointIOOptions {
  spec: CheckpointSpec;
  namespace: string;
  run: string;
  /** Validation metric name in the manifest's metrics that keepBest ranks by. */
  metric?: string;
  higherIsBetter: boolean;
  logger: Logger;
}

/** The store's base URI from the spec: a local directory, a mounted PVC, or s3://bucket/prefix. */
export function storeBaseUri(spec: CheckpointSpec): string {
  if (spec.store.local) return spec.store.local.path;
  if (spec.store.pvc) return `${process.env.CAPTIONRUN_PVC_MOUNT ?? '/checkpoints'}/${spec.store.pvc.subPath}`;
  const s3 = spec.store.s3;
  if (!s3) throw new Error('spec.checkpoint.store names no store');
  return `s3://${s3.bucket}/${s3.prefix}`;
}

export function openCheckpointIO(opts: CheckpointIOOptions): CheckpointIO {
  const uri = runUri(storeBaseUri(opts.spec), opts.namespace, opts.run);
  const s3 = opts.spec.store.s3;
  const store: CheckpointStore = openStore(uri, {
    logger: opts.logger,
    s3: s3 ? { endpoint: s3.endpoint, region: s3.region, forcePathStyle: s3.forcePathStyle } : undefined,
  });
  const reader = new CheckpointReader(store, { logger: opts.logger });
  let inFlight: Promise<void> = Promise.resolve();
  let failure: unknown;
  let parent: string | null = null;
  const producer = { captionrun: packageVersion(), node: process.version, tfjs: tf.version.tfjs, backend: tf.getBackend() };

  return {
    uri,
    async latest() {
      const { checkpoint, invalid } = await reader.loadLatest();
      for (const bad of invalid) opts.logger.warn({ checkpoint: bad.name, reason: bad.reason, detail: bad.detail }, `skipping invalid checkpoint ${bad.name}`);
      if (!checkpoint) return undefined;
      parent = checkpoint.name;
      return { name: checkpoint.name, files: checkpoint.files, state: checkpoint.state };
    },
    async checkWritable() {
      const probe = '.write-probe';
      try {
        await store.writeFile(probe, async function* () {
          yield new TextEncoder().encode('captionrun write probe\n');
        });
        await store.deleteFile(probe);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as { name?: string }).name ?? '';
        const denied = ['EACCES', 'EPERM', 'EROFS', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'NoSuchBucket'].includes(code);
        const message = `checkpoint store ${uri} refuses writes: ${(err as Error).message}`;
        if (denied) throw new InvalidInputError(message, { field: 'spec.checkpoint.store', hint: 'give the trainer write access or choose another store', cause: err });
        throw err;
      }
    },
    async save(snapshot) {
      await inFlight;
      if (failure) throw failure;
      inFlight = (async () => {
        const started = Date.now();
        const { manifest, bytes } = await writeCheckpoint(
          store,
          { ...snapshot, metrics: snapshot.metrics ?? {}, parent, createdAt: new Date().toISOString() },
          { hashAlgorithm: opts.spec.hash, producer },
        );
        parent = `ckpt-${String(manifest.step).padStart(12, '0')}`;
        opts.logger.info({ checkpoint: parent, step: manifest.step, bytes, ms: Date.now() - started }, `checkpoint ${parent} committed`);
        await applyRetention(
          reader,
          { keepLast: opts.spec.keepLast, keepBest: opts.spec.keepBest, metric: opts.metric, higherIsBetter: opts.higherIsBetter },
          { logger: opts.logger },
        );
      })().catch((err: unknown) => {
        failure = err;
      });
    },
    async flush() {
      await inFlight;
      if (failure) throw failure;
    },
    async close() {
      await inFlight;
      await store.close();
    },
  };
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
