// The writer's background thread: serialises state, streams each file through its digest to the store,
// commits MANIFEST.json, then applies retention — all off the training loop's thread.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../telemetry/logger.js';
import type { HashAlgorithm } from './digest.js';
import { StoreUnavailableError } from './errors.js';
import type { Manifest } from './manifest.js';
import { reopenStore } from './open-store.js';
import { CheckpointReader } from './reader.js';
import { applyRetention, type RetentionPolicy } from './retention.js';
import { writeCheckpoint } from './save-job.js';
import type { StoreDescriptor } from './store.js';

export interface WorkerConfig {
  descriptor: StoreDescriptor;
  hashAlgorithm: HashAlgorithm;
  producer: Record<string, string>;
  retention?: RetentionPolicy;
  inUse: string[];
  logBindings: Record<string, unknown>;
  nice: number;
}

export interface SaveRequest {
  type: 'save';
  id: number;
  step: number;
  epoch: number;
  files: { name: string; buffer: ArrayBuffer; byteOffset: number; byteLength: number }[];
  state: unknown;
  metrics: Record<string, number>;
  parent: string | null;
  createdAt: string;
}

export interface SerializedError {
  name: string;
  message: string;
  attempts?: number;
}

export type WorkerReply =
  | { type: 'committed'; id: number; manifest: Manifest; bytes: number; seconds: number }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'done'; id: number; deleted: string[] };

const port = parentPort;
if (!port) throw new Error('writer-worker.ts runs only as a worker thread');
const config = workerData as WorkerConfig;
// Saving is background work: on Linux a nice value applies to the calling thread only, so this lets the
// training loop's thread win the CPU whenever both want it.
try {
  setPriority(config.nice);
} catch {
  // not permitted here: keep the default priority
}
const logger = createLogger({ component: 'checkpoint-writer', ...config.logBindings });
const store = reopenStore(config.descriptor, logger);
const reader = new CheckpointReader(store, { logger });

port.on('message', (msg: SaveRequest | { type: 'close' }) => {
  if (msg.type === 'close') {
    void store.close().finally(() => port.close());
    return;
  }
  void save(msg);
});

async function save(req: SaveRequest): Promise<void> {
  const started = performance.now();
  try {
    const files = req.files.map((f) => ({ name: f.name, data: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) }));
    const { manifest, bytes } = await writeCheckpoint(
      store,
      { step: req.step, epoch: req.epoch, files, state: req.state, metrics: req.metrics, parent: req.parent, createdAt: req.createdAt },
      { hashAlgorithm: config.hashAlgorithm, producer: config.producer },
    );
    post({ type: 'committed', id: req.id, manifest, bytes, seconds: (performance.now() - started) / 1000 });
  } catch (err) {
    const e = err as Error;
    post({ type: 'failed', id: req.id, error: { name: e.name, message: e.message, attempts: err instanceof StoreUnavailableError ? err.attempts : undefined } });
    post({ type: 'done', id: req.id, deleted: [] });
    return;
  }
  let deleted: string[] = [];
  if (config.retention) {
    try {
      deleted = (await applyRetention(reader, config.retention, { inUse: config.inUse, logger })).deleted;
    } catch (err) {
      // A failed cleanup costs disk space, not data: the committed checkpoint stands.
      logger.error({ err: (err as Error).message }, 'retention failed');
    }
  }
  post({ type: 'done', id: req.id, deleted });
}

function post(reply: WorkerReply): void {
  port?.postMessage(reply);
}
