// Writes one checkpoint: every file streamed through its digest as it goes to the store (the digest of
// the bytes actually sent, computed on the way, never by reading them back), then MANIFEST.json last.
// Runs in the writer's worker thread; it is a plain function so that tests can drive it directly.
import { createDigest, type HashAlgorithm } from './digest.js';
import { checkpointName, MANIFEST_FILE, STATE_FILE } from './layout.js';
import { serializeManifest, type Manifest, type ManifestFile } from './manifest.js';
import type { CheckpointStore } from './store.js';

const CHUNK = 1 << 20;

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
  await store.writeFile(`${name}/${MANIFEST_FILE}`, async function* () {
    yield manifestBytes;
  });
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as Manifest;
  return { manifest, bytes: entries.reduce((n, e) => n + e.bytes, manifestBytes.byteLength) };
}

async function writeHashed(store: CheckpointStore, path: string, name: string, data: Uint8Array, algorithm: HashAlgorithm): Promise<ManifestFile> {
  let digest = '';
  await store.writeFile(path, async function* () {
    // A fresh digest per attempt: a retried upload streams the bytes again from the start.
    const d = await createDigest(algorithm);
    for (let off = 0; off < data.byteLength; off += CHUNK) {
      const chunk = data.subarray(off, Math.min(off + CHUNK, data.byteLength));
      d.update(chunk);
      yield chunk;
    }
    digest = d.hex();
  });
  return { name, bytes: data.byteLength, digest };
}
