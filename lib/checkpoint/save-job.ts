// Writes one checkpoint: every file digested while the store uploads it (from the same immutable buffer the
// upload reads, so nothing is ever read back from the store), then MANIFEST.json last.
// Runs in the writer's worker thread; it is a plain function so that tests can drive it directly.
import { createDigest, type HashAlgorithm } from './digest.js';
import { checkpointName, MANIFEST_FILE, STATE_FILE } from './layout.js';
import { serializeManifest, type Manifest, type ManifestFile } from './manifest.js';
import type { CheckpointStore } from './store.js';

const SLICE = 1 << 20;

export interface SaveJob {
  step: number;
  epoch: number;
  files: { name: string; data: Uint8Array }[];
  state: unknown;
  metrics: Record<string, number>;
  parent: string | null;
  createdAt: string;
}

export interface SaveJobOptions {
  hashAlgorithm: HashAlgorithm;
  producer: Record<string, string>;
}

export async function writeCheckpoint(store: CheckpointStore, job: SaveJob, options: SaveJobOptions): Promise<{ manifest: Manifest; bytes: number }> {
  const name = checkpointName(job.step);
  // A directory left by an earlier attempt at this step may still hold a manifest: uncommit it before
  // overwriting the files it describes.
  await store.deleteFile(`${name}/${MANIFEST_FILE}`);
  const stateBytes = new TextEncoder().encode(JSON.stringify(job.state));
  const entries: ManifestFile[] = [];
  for (const file of [...job.files, { name: STATE_FILE, data: stateBytes }]) {
    entries.push(await writeHashed(store, `${name}/${file.name}`, file.name, file.data, options.hashAlgorithm));
  }
  const manifestBytes = await serializeManifest({
    step: job.step,
    epoch: job.epoch,
    createdAt: job.createdAt,
    hashAlgorithm: options.hashAlgorithm,
    files: entries,
    parent: job.parent,
    producer: options.producer,
    metrics: job.metrics,
  });
  await store.writeFile(`${name}/${MANIFEST_FILE}`, manifestBytes);
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as Manifest;
  return { manifest, bytes: entries.reduce((n, e) => n + e.bytes, manifestBytes.byteLength) };
}

async function writeHashed(store: CheckpointStore, path: string, name: string, data: Uint8Array, algorithm: HashAlgorithm): Promise<ManifestFile> {
  const [, digest] = await Promise.all([store.writeFile(path, data), digestInSlices(data, algorithm)]);
  return { name, bytes: data.byteLength, digest };
}

/**
 * Hashes in slices, yielding to the event loop between them, so that the upload's network I/O keeps
 * flowing while the digest is computed instead of waiting for it.
 */
async function digestInSlices(data: Uint8Array, algorithm: HashAlgorithm): Promise<string> {
  const d = await createDigest(algorithm);
  for (let off = 0; off < data.byteLength; off += SLICE) {
    d.update(data.subarray(off, Math.min(off + SLICE, data.byteLength)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return d.hex();
}
