// The feature reader's thread: fetches cache entries (file reads or S3 GETs), checks their digests and widens
// float16 to float32 off the training loop's thread, so a step's reads cost the loop only a message.
import { parentPort, workerData } from 'node:worker_threads';
import { FeatureCache } from '../features/feature-cache.js';
import type { ReaderConfig, ReadReply, ReadRequest } from './feature-reader.js';

const config = workerData as ReaderConfig;
const cache = new FeatureCache(config.dir, config.dtype, config.s3, config.options);
const { shape } = config;
const size = shape.regions * shape.channels;

parentPort?.on('message', (request: ReadRequest) => {
  void read(request.keys).then(
    (rows): void => parentPort?.postMessage({ id: request.id, rows } satisfies ReadReply, [rows.buffer as ArrayBuffer]),
    (err: unknown): void => parentPort?.postMessage({ id: request.id, error: (err as Error).message } satisfies ReadReply),
  );
});

async function read(keys: readonly string[]): Promise<Float32Array> {
  const rows = new Float32Array(keys.length * size);
  await Promise.all(
    keys.map(async (key, i) => {
      const entry = await cache.get(shape, key);
      // Entries were all present before training started: one gone since (deleted, or corrupt and just
      // deleted) fails the step with a plain error, and the relaunch, without the index, re-encodes it.
      if (!entry) {
        if (config.index) await cache.removeIndex(shape, config.index);
        throw new Error(`feature cache entry ${cache.path(shape, key)} disappeared during training`);
      }
      rows.set(entry.map, i * size);
    }),
  );
  return rows;
}
