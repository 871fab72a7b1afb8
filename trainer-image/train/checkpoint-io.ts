// The trainer's only dependency on lib/checkpoint: where checkpoints go, how a snapshot is saved (by the
// background writer, at most one in flight) and how the latest valid one is loaded. Everything else in the
// trainer sees only this interface.
import { connectionOf } from '../../lib/s3-connection.js';
import type { CheckpointSpec } from '../../lib/api/types.js';
import { InvalidInputError } from '../../lib/errors.js';
import { checkpointLocation, CheckpointInvalidError, committedCheckpoint, CheckpointReader, CheckpointWriter, openStore, type CheckpointStore, type LoadedCheckpoint } from '../../lib/checkpoint/index.js';
import { publishOutputs } from '../../lib/checkpoint/outputs.js';
import type { Registry } from 'prom-client';
import { packageVersion } from '../../lib/package-info.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import type { CommittedCheckpoint } from '../../lib/telemetry/progress-report.js';
import { tf } from '../backend.js';
import type { Snapshot } from './snapshot.js';

export interface LoadedState {
  name: string;
  /** The checkpoint as /progress reports it (URI, step, epoch, metrics). */
  checkpoint: CommittedCheckpoint;
  /** Digest of its manifest: what the ranks of a gang compare to know they loaded the same checkpoint. */
  digest: string;
  files: Map<string, Uint8Array>;
  state: unknown;
}

export interface CheckpointIO {
  readonly uri: string;
  /**
   * The checkpoint to resume from: `preferredUri` (the operator's choice, CAPTIONRUN_RESUME_FROM) when it is
   * in this run's store and verifies, else the latest valid one, saying why in the log.
   */
  latest(preferredUri?: string): Promise<LoadedState | undefined>;
  /** One named checkpoint, verified; throws CheckpointInvalidError when it fails verification. */
  load(name: string): Promise<LoadedState>;
  /** Fails fast, before any training, when the store refuses writes (read-only directory, denied bucket). */
  checkWritable(): Promise<void>;
  /**
   * Hands a snapshot to the background writer. With `must` it first waits for the save in flight (a final
   * or epoch-end checkpoint may not be skipped); otherwise spec.checkpoint.whenBusy decides. Returns
   * whether the snapshot was accepted.
   */
  save(snapshot: Snapshot, must: boolean): Promise<boolean>;
  /**
   * Copies a finished run's outputs directory next to its checkpoints (`<run>/outputs/`, manifest last) and
   * returns their URI; undefined for a local store, whose outputs directory is already on this machine.
   */
  publishOutputs(dir: string): Promise<string | undefined>;
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
  /** Where the checkpoint metrics go (the trainer's /metrics registry). */
  registry?: Registry;
  /** Told when a save has committed and how long it took from the snapshot on (health monitor, resource log, progress). */
  onCommit?: (checkpoint: CommittedCheckpoint, seconds: number) => void;
  /** Which process of how many wrote it (rank 0 of the gang, always), recorded in each manifest's producer. */
  writer: { rank: number; worldSize: number };
}

export function openCheckpointIO(opts: CheckpointIOOptions): CheckpointIO {
  const uri = checkpointLocation(opts.spec.store, opts.namespace, opts.run).uri;
  const s3 = opts.spec.store.s3;
  const store: CheckpointStore = openStore(uri, {
    logger: opts.logger,
    s3: connectionOf(s3),
  });
  const reader = new CheckpointReader(store, { logger: opts.logger, registry: opts.registry });
  let writer: CheckpointWriter | undefined;
  let resumedFrom: string | null = null;
  const loaded = (c: LoadedCheckpoint): LoadedState => {
    resumedFrom = c.name;
    return { name: c.name, checkpoint: committedCheckpoint(uri, c.name, c.manifest), digest: c.manifest.manifestDigest, files: c.files, state: c.state };
  };
  const writerOf = (): CheckpointWriter => {
    writer ??= new CheckpointWriter({
      store,
      hashAlgorithm: opts.spec.hash,
      whenBusy: opts.spec.whenBusy,
      resumedFrom,
      retention: { keepLast: opts.spec.keepLast, keepBest: opts.spec.keepBest, metric: opts.metric, higherIsBetter: opts.higherIsBetter },
      producer: { captionrun: packageVersion(), node: process.version, tfjs: tf.version.tfjs, backend: tf.getBackend(), rank: String(opts.writer.rank), worldSize: String(opts.writer.worldSize) },
      logger: opts.logger,
      registry: opts.registry,
    });
    return writer;
  };

  return {
    uri,
    async checkWritable() {
      const probe = '.write-probe';
      try {
        await store.writeFile(probe, async function* () {
          yield new TextEncoder().encode('captionrun write probe\n');
        });
        await store.deleteFile(probe);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as { name?: string }).name ?? '';
        const denied = ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'NoSuchBucket'].includes(code);
        const message = `checkpoint store ${uri} refuses writes: ${(err as Error).message}`;
        if (denied) throw new InvalidInputError(message, { field: 'spec.checkpoint.store', hint: 'give the trainer write access or choose another store', cause: err });
        throw err;
      }
    },
    async latest(preferredUri) {
      if (preferredUri !== undefined) {
        const name = preferredUri.startsWith(`${uri}/`) ? preferredUri.slice(uri.length + 1) : '';
        if (name === '' || name.includes('/')) {
          opts.logger.warn({ resumeFrom: preferredUri, store: uri }, `the resume point ${preferredUri} is not a checkpoint of this run (${uri}); resuming from the latest valid checkpoint instead`);
        } else {
          try {
            return loaded(await reader.load(name));
          } catch (err) {
            if (!(err instanceof CheckpointInvalidError)) throw err;
            opts.logger.warn({ resumeFrom: preferredUri, reason: err.reason, detail: err.message }, `the resume point ${name} is invalid (${err.reason}); resuming from the latest valid checkpoint instead`);
          }
        }
      }
      const { checkpoint, invalid } = await reader.loadLatest();
      for (const bad of invalid) opts.logger.warn({ checkpoint: bad.name, reason: bad.reason, detail: bad.detail }, `skipping invalid checkpoint ${bad.name}`);
      return checkpoint ? loaded(checkpoint) : undefined;
    },
    async load(name) {
      return loaded(await reader.load(name));
    },
    async save(snapshot, must) {
      const w = writerOf();
      if (must) await w.flush();
      const started = performance.now();
      const result = await w.save(snapshot);
      if (result.accepted) {
        const { name } = result;
        result.committed.then(
          (m) => opts.onCommit?.(committedCheckpoint(uri, name, m), (performance.now() - started) / 1000),
          () => undefined,
        );
      }
      return result.accepted;
    },
    async publishOutputs(dir) {
      if (opts.spec.store.local) return undefined;
      return publishOutputs(store, dir, opts.spec.hash);
    },
    async flush() {
      await writer?.flush();
    },
    async close() {
      await writer?.close();
      await store.close();
    },
  };
}
