// The one interface both stores implement. A store is rooted at one run's directory
// (`<prefix>/<namespace>/<run>`); paths below it are `ckpt-<step>/<file>`.
import type { S3StoreOptions } from './s3-store.js';

/** Everything needed to open the same store again in another thread (it crosses postMessage). */
export interface StoreDescriptor {
  uri: string;
  s3?: S3StoreOptions;
}

export interface CheckpointStore {
  readonly uri: string;
  readonly descriptor: StoreDescriptor;
  /** Names of the checkpoint directories under the run, in no particular order (callers sort by parsed step). */
  listCheckpoints(): Promise<string[]>;
  /** Writes `path` so that a reader sees either no file or all of `data` (retrying transient failures). */
  writeFile(path: string, data: FileSource): Promise<void>;
  /** The file's bytes as they arrive, or undefined when it does not exist. */
  readFile(path: string): Promise<AsyncIterable<Uint8Array> | undefined>;
  deleteFile(path: string): Promise<void>;
  /** Removes a checkpoint directory and everything in it. */
  deleteCheckpoint(name: string): Promise<void>;
  close(): Promise<void>;
}

/** File contents: bytes in memory (checkpoint files: uploaded as views, no copy), or a stream of them. */
export type FileSource = Uint8Array | (() => AsyncIterable<Uint8Array>);

export async function sourceBytes(source: FileSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  const chunks: Uint8Array[] = [];
  for await (const chunk of source()) chunks.push(chunk);
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
}
