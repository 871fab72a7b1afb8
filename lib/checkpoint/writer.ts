// The trainer's side of saving. save() takes ownership of the snapshot's host buffers (transferred, not
// copied, to a worker thread) and returns; serialising, hashing and uploading happen in the worker. At
// most one save is in flight: a request made while one is running waits or is skipped (whenBusy), and both
// are counted. A failed save rejects its `committed` promise and flush() with a typed error; the trainer's
// own state is untouched, so the next save simply tries again.
import { Worker } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import { packageVersion } from '../package-info.js';
import { startModuleWorker } from '../worker-thread.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import type { HashAlgorithm } from './digest.js';
import { CheckpointSaveError, StoreUnavailableError } from './errors.js';
import { checkpointName, isValidFileName, STATE_FILE } from './layout.js';
import type { Manifest } from './manifest.js';
import { checkpointMetrics, type CheckpointMetrics } from './metrics.js';
import type { RetentionPolicy } from './retention.js';
import type { CheckpointStore } from './store.js';
import type { SaveRequest, SerializedError, WorkerConfig, WorkerReply } from './writer-worker.js';

export interface Snapshot {
  step: number;
  epoch: number;
  /** Shards as host buffers. Ownership passes to the writer: whole-buffer views are transferred (detached here). */
  files: { name: string; data: Uint8Array }[];
  /** RNG state, data cursor, LR schedule...: anything JSON can carry. */
  state: object;
  metrics?: Record<string, number>;
}

export type SaveResult =
  | {
      accepted: true;
      name: string;
      /** Settles once the save is over (MANIFEST.json committed, retention applied), or with the save's error. */
      committed: Promise<Manifest>;
    }
  | { accepted: false; reason: 'busy' };

export interface WriterOptions {
  store: CheckpointStore;
  hashAlgorithm?: HashAlgorithm;
  /** What a save requested while another is in flight does; default skip (the CRD's default). */
  whenBusy?: 'wait' | 'skip';
  /** The checkpoint this run resumed from: the first save's parent, and never deleted by retention. */
  resumedFrom?: string | null;
  retention?: RetentionPolicy;
  producer?: Record<string, string>;
  /** Nice value of the writer thread (Linux: per thread), so saving yields the CPU to training; default 10. */
  workerNice?: number;
  registry?: Registry;
  logger?: Logger;
}

interface Pending {
  resolve(m: Manifest): void;
  reject(e: Error): void;
  requestedAt: number;
}

export class CheckpointWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private inflight: Promise<void> | undefined;
  private inflightError: Error | undefined;
  private pending = new Map<number, Pending>();
  private slotRelease = new Map<number, () => void>();
  private committedManifests = new Map<number, Manifest>();
  private parent: string | null;
  private closed = false;
  private readonly metrics: CheckpointMetrics;
  private readonly logger: Logger;

  constructor(private readonly options: WriterOptions) {
    this.parent = options.resumedFrom ?? null;
    this.metrics = checkpointMetrics(options.registry);
    this.logger = options.logger ?? createLogger({ component: 'checkpoint-writer' });
  }

  async save(snapshot: Snapshot): Promise<SaveResult> {
    const requestedAt = performance.now();
    if (this.closed) throw new CheckpointSaveError('save() after close()');
    const name = checkSnapshot(snapshot);
    if (this.inflight) {
      if ((this.options.whenBusy ?? 'skip') === 'skip') {
        this.metrics.skipped.inc();
        this.logger.info({ step: snapshot.step }, 'checkpoint skipped: previous save still in flight');
        return { accepted: false, reason: 'busy' };
      }
      this.metrics.waited.inc();
      while (this.inflight) await this.inflight;
    }
    const id = this.nextId++;
    const { request, transfer } = toRequest(id, snapshot, this.parent);
    const worker = this.ensureWorker();
    this.inflightError = undefined;
    this.inflight = new Promise<void>((release) => this.slotRelease.set(id, release));
    const committed = new Promise<Manifest>((resolve, reject) => this.pending.set(id, { resolve, reject, requestedAt }));
    // The caller may ignore `committed`; the failure still surfaces through flush() and the log.
    committed.catch(() => undefined);
    worker.ref();
    try {
      worker.postMessage(request, transfer);
    } catch (err) {
      // Some buffers cannot be transferred (e.g. Node's shared Buffer pool): hand over copies instead.
      worker.postMessage(toRequest(id, snapshot, this.parent, true).request);
      this.logger.debug({ err: (err as Error).message }, 'snapshot copied instead of transferred');
    }
    this.metrics.blockedDuration.observe((performance.now() - requestedAt) / 1000);
    return { accepted: true, name, committed };
  }

  /** Waits for the save in flight (and its retention pass); rejects with its error if it failed. */
  async flush(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.inflightError) throw this.inflightError;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      const w = this.worker;
      this.worker = undefined;
      if (w) {
        const exited = new Promise((r) => w.once('exit', r));
        w.ref();
        w.postMessage({ type: 'close' });
        await exited;
      }
    }
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const config: WorkerConfig = {
      descriptor: this.options.store.descriptor,
      hashAlgorithm: this.options.hashAlgorithm ?? 'sha256',
      producer: { captionrun: packageVersion(), node: process.version, ...this.options.producer },
      retention: this.options.retention,
      inUse: this.options.resumedFrom ? [this.options.resumedFrom] : [],
      logBindings: { store: this.options.store.uri },
      nice: this.options.workerNice ?? 10,
    };
    const worker = startModuleWorker(import.meta.url, 'writer-worker', config);
    worker.on('message', (msg: WorkerReply) => this.onReply(msg));
    worker.on('error', (err) => this.onWorkerGone(err));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.onWorkerGone(new Error(`checkpoint worker exited with code ${code}`));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private onReply(msg: WorkerReply): void {
    const p = this.pending.get(msg.id);
    if (msg.type === 'committed') {
      this.metrics.saveDuration.observe(msg.seconds);
      this.metrics.savedBytes.inc(msg.bytes);
      this.metrics.saves.inc({ result: 'committed' });
      this.metrics.lastCommit.set(Date.now() / 1000);
      if (p) this.metrics.lagSeconds.set((performance.now() - p.requestedAt) / 1000);
      this.logger.info({ checkpoint: checkpointName(msg.manifest.step), bytes: msg.bytes, seconds: msg.seconds }, 'checkpoint committed');
      this.committedManifests.set(msg.id, msg.manifest);
      // Only committed checkpoints become parents: a failed save leaves the chain where it was.
      this.parent = checkpointName(msg.manifest.step);
    } else if (msg.type === 'failed') {
      this.pending.delete(msg.id);
      const err = toError(msg.error);
      this.inflightError = err;
      this.metrics.saves.inc({ result: 'failed' });
      this.logger.error({ err: msg.error.message, kind: msg.error.name }, 'checkpoint save failed');
      p?.reject(err);
    } else {
      if (msg.deleted.length > 0) this.metrics.deleted.inc(msg.deleted.length);
      const manifest = this.committedManifests.get(msg.id);
      this.committedManifests.delete(msg.id);
      this.pending.delete(msg.id);
      this.release(msg.id);
      if (manifest) p?.resolve(manifest);
    }
  }

  private onWorkerGone(err: Error): void {
    this.worker = undefined;
    const e = new CheckpointSaveError(`checkpoint worker failed: ${err.message}`, { cause: err });
    for (const [id, p] of this.pending) {
      this.metrics.saves.inc({ result: 'failed' });
      this.inflightError = e;
      p.reject(e);
      this.release(id);
    }
    this.pending.clear();
  }

  private release(id: number): void {
    this.slotRelease.get(id)?.();
    this.slotRelease.delete(id);
    this.inflight = undefined;
    if (this.slotRelease.size === 0) this.worker?.unref();
  }
}

function checkSnapshot(s: Snapshot): string {
  const name = (() => {
    try {
      return checkpointName(s.step);
    } catch (err) {
      throw new CheckpointSaveError((err as Error).message);
    }
  })();
  if (!Number.isSafeInteger(s.epoch) || s.epoch < 0) throw new CheckpointSaveError(`epoch must be a non-negative integer, got ${s.epoch}`);
  const seen = new Set<string>();
  for (const f of s.files) {
    if (!isValidFileName(f.name) || f.name === STATE_FILE) throw new CheckpointSaveError(`"${f.name}" cannot be a shard name`, { hint: 'letters, digits, . _ -; not state.json or MANIFEST.json' });
    if (seen.has(f.name)) throw new CheckpointSaveError(`shard "${f.name}" is given twice`);
    if (!(f.data instanceof Uint8Array)) throw new CheckpointSaveError(`shard "${f.name}" is not a Uint8Array`);
    if (f.data.byteLength === 0 && isDetached(f.data.buffer)) {
      throw new CheckpointSaveError(`shard "${f.name}" was already handed to an earlier save (its buffer is detached)`);
    }
    seen.add(f.name);
  }
  for (const [k, v] of Object.entries(s.metrics ?? {})) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointSaveError(`metric ${k} must be a finite number, got ${v}`);
  }
  return name;
}

/** Node 20 has no ArrayBuffer.prototype.detached; cloning a detached buffer throws (cheap: it is empty). */
function isDetached(buffer: ArrayBufferLike): boolean {
  try {
    structuredClone(buffer);
    return false;
  } catch {
    return true;
  }
}

/** Whole, unshared ArrayBuffers are transferred; views into bigger or shared ones are copied first. */
function toRequest(id: number, s: Snapshot, parent: string | null, copyAll = false): { request: SaveRequest; transfer: ArrayBuffer[] } {
  const transfer = new Set<ArrayBuffer>();
  const files = s.files.map(({ name, data }) => {
    const buf = data.buffer;
    const whole = buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength && !transfer.has(buf);
    if (whole && !copyAll) {
      transfer.add(buf);
      return { name, buffer: buf, byteOffset: 0, byteLength: data.byteLength };
    }
    const copy = data.slice();
    transfer.add(copy.buffer);
    return { name, buffer: copy.buffer, byteOffset: 0, byteLength: copy.byteLength };
  });
  const request: SaveRequest = {
    type: 'save',
    id,
    step: s.step,
    epoch: s.epoch,
    files,
    state: s.state,
    metrics: s.metrics ?? {},
    parent,
    createdAt: new Date().toISOString(),
  };
  return { request, transfer: [...transfer] };
}

function toError(e: SerializedError): Error {
  if (e.name === 'StoreUnavailableError') return new StoreUnavailableError(e.message, e.attempts ?? 0);
  return new CheckpointSaveError(`${e.name}: ${e.message}`);
}
