// Reads batches of feature-cache entries on a worker thread (see feature-reader-worker.ts). One request per
// batch; the worker runs its entries' reads concurrently and hands back one transferred buffer.
import type { Worker } from 'node:worker_threads';
import type { S3Connection } from '../../lib/s3-connection.js';
import { startModuleWorker } from '../../lib/worker-thread.js';
import type { CacheDtype, FeatureCache, FeatureCacheOptions, FeatureShape } from '../features/feature-cache.js';

export interface ReaderConfig {
  dir: string;
  dtype: CacheDtype;
  s3: S3Connection;
  options: FeatureCacheOptions;
  shape: FeatureShape;
  /** The dataset index the keys came from: removed when an entry is missing, so the relaunch checks every image. */
  index?: string;
}

export interface ReadRequest {
  id: number;
  keys: string[];
}

export type ReadReply = { id: number; rows: Float32Array } | { id: number; error: string };

export class FeatureReader {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, { resolve: (rows: Float32Array) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  private readonly config: ReaderConfig;

  constructor(cache: FeatureCache, shape: FeatureShape, index?: string) {
    this.config = { dir: cache.dir, dtype: cache.dtype, s3: cache.s3, options: cache.options, shape, index };
  }

  /** The maps of these entries, one after another. */
  read(keys: string[]): Promise<Float32Array> {
    const worker = this.started();
    const id = this.nextId++;
    worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, keys } satisfies ReadRequest);
    });
  }

  /**
   * The thread starts with the first read: a reader never read from (a relaunch of a finished run has no
   * batch to train) must not start one. One started and unref'd before it was online kept the process from
   * exiting once its work was done (train-probe.test.ts).
   */
  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = startModuleWorker(import.meta.url, 'feature-reader-worker', this.config);
    worker.on('message', (reply: ReadReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      // An idle reader must not keep the process alive; one with reads in flight does (see read()).
      if (this.waiting.size === 0) worker.unref();
      if ('error' in reply) waiter?.reject(new Error(reply.error));
      else waiter?.resolve(reply.rows);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => this.failAll(new Error(`the feature reader thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}
