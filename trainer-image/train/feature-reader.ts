// Reads batches of feature-cache entries on a worker thread (see feature-reader-worker.ts). One request per
// batch; the worker runs its entries' reads concurrently and hands back one transferred buffer.
import type { Worker } from 'node:worker_threads';
import type { S3Connection } from '../../lib/s3-connection.js';
import { startModuleWorker } from '../../lib/worker-thread.js';
import type { CacheDtype, FeatureCache, FeatureCacheOptions, FeatureShape } from '../model/feature-cache.js';

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
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (rows: Float32Array) => void; reject: (err: Error) => void }>();
  private nextId = 0;

  constructor(cache: FeatureCache, shape: FeatureShape, index?: string) {
    const config: ReaderConfig = { dir: cache.dir, dtype: cache.dtype, s3: cache.s3, options: cache.options, shape, index };
    this.worker = startModuleWorker(import.meta.url, 'feature-reader-worker', config);
    // An idle reader must not keep the process alive; one with reads in flight does (see read()).
    this.worker.unref();
    this.worker.on('message', (reply: ReadReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.worker.unref();
      if ('error' in reply) waiter?.reject(new Error(reply.error));
      else waiter?.resolve(reply.rows);
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new Error(`the feature reader thread exited with code ${code}`)));
  }

  /** The maps of these entries, one after another. */
  read(keys: string[]): Promise<Float32Array> {
    const id = this.nextId++;
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, keys } satisfies ReadRequest);
    });
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}
