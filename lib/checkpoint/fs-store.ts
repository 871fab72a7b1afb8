// Checkpoints in a local directory (a PVC, or a laptop's disk for `captionrun train`). Every file is
// written to a temporary name, fsynced and renamed into place, and the directory is fsynced, so after a
// crash or power loss a file is either absent or complete; the writer commits MANIFEST.json only after that.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { MANIFEST_FILE, parseCheckpointName } from './layout.js';
import { sourceBytes, type CheckpointStore, type FileSource, type StoreDescriptor } from './store.js';

const READ_CHUNK = 1 << 20;
const WRITE_CHUNK = 8 << 20;

export class FsStore implements CheckpointStore {
  readonly uri: string;
  readonly descriptor: StoreDescriptor;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.uri = this.root;
    this.descriptor = { uri: this.root };
  }

  async listCheckpoints(): Promise<string[]> {
    try {
      const entries = await readdir(this.root, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory() && parseCheckpointName(e.name) !== undefined).map((e) => e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async writeFile(path: string, source: FileSource): Promise<void> {
    const data = await sourceBytes(source);
    const target = this.resolve(path);
    const dir = dirname(target);
    await this.ensureDir(dir);
    const tmp = join(dir, `.${path.split('/').pop() ?? 'file'}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const fh = await open(tmp, 'w', 0o644);
    try {
      for (let off = 0; off < data.byteLength; ) off += (await fh.write(data, off, Math.min(WRITE_CHUNK, data.byteLength - off), off)).bytesWritten;
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, target);
    await fsyncDir(dir);
  }

  async readFile(path: string): Promise<AsyncIterable<Uint8Array> | undefined> {
    try {
      const fh = await open(this.resolve(path), 'r');
      return fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async deleteFile(path: string): Promise<void> {
    try {
      await unlink(this.resolve(path));
      await fsyncDir(dirname(this.resolve(path)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async deleteCheckpoint(name: string): Promise<void> {
    // Uncommit first: a crash halfway through leaves a directory without a manifest, which readers skip.
    await this.deleteFile(`${name}/${MANIFEST_FILE}`);
    await rm(this.resolve(name), { recursive: true, force: true });
    await fsyncDir(this.root);
  }

  async close(): Promise<void> {}

  private resolve(path: string): string {
    const full = resolve(this.root, path);
    if (!full.startsWith(`${this.root}/`)) throw new RangeError(`path ${path} escapes the store root`);
    return full;
  }

  private async ensureDir(dir: string): Promise<void> {
    const created = await mkdir(dir, { recursive: true });
    // A new directory entry is durable only once its parent is fsynced.
    if (created !== undefined) {
      for (let d = dirname(dir); d.length >= dirname(created).length; d = dirname(d)) {
        await fsyncDir(d);
        if (d === dirname(d)) break;
      }
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
