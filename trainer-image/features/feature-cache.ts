// Content-addressed feature cache on local disk or in S3: each image is encoded once per (encoder, weights,
// input size). The key digests the image bytes themselves, so renamed or duplicated files still hit and an
// edited file misses. Entries are float16 by default (float32 on request, spec.training.precision), each with
// a sha256 trailer: an entry that fails its digest (torn write, bit rot) is reported, deleted and recomputed,
// never used. A cache reads entries of either dtype as its own would have stored them: a float32 entry is
// rounded for a float16 cache, and a float16 entry is a miss for a float32 cache (its lost digits cannot come
// back), so what a run trains on never depends on who filled the cache first.
//
// Layout: <location>/<encoder>-<inputSize>-<weights digest 16>/<key[0..2]>/<key>.feat, where the location
// is a directory or an s3://bucket/prefix (a cluster run's workers then share one cache). An S3 cache can
// have a read-through mirror on local disk: an entry read from S3 and found intact is written there, and
// later reads of it (the image's other captions, later epochs) are file reads instead of GETs.
//   "CRF1" | u32 header length | header JSON | map values | pooled values | sha256(all before)
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseS3Uri, s3Address, s3ClientConfig, type S3Connection } from '../../lib/s3-connection.js';
import { deleteObjects, isNoSuchKey, listObjects } from '../../lib/s3-objects.js';
import { SignedGet } from '../../lib/s3-signed-get.js';
import type { ImageSource } from '../data/dataset.js';
import { float16ToFloat32, float32ToFloat16 } from '../model/float16.js';
import { ImageKeys } from './image-keys.js';

export type CacheDtype = 'float16' | 'float32';

export interface Features {
  /** regions x channels, row-major over the spatial map. */
  map: Float32Array;
  /** channels. */
  pooled: Float32Array;
}

export interface FeatureShape {
  encoder: string;
  weightsDigest: string;
  inputSize: number;
  regions: number;
  channels: number;
}

interface Header extends FeatureShape {
  key: string;
  dtype: CacheDtype;
}

const MAGIC = Buffer.from('CRF1');
const DIGEST_BYTES = 32;

/** sha256 of the image as stored: the file's bytes, or raw pixels with their dimensions. */
export function imageDigest(src: ImageSource): string {
  const hash = createHash('sha256');
  if (src.kind === 'raw') hash.update(`raw:${src.width}x${src.height}x${src.channels}:`);
  hash.update(src.data);
  return hash.digest('hex');
}

export interface CacheStats {
  hits: number;
  misses: number;
  corrupt: number;
  bytesWritten: number;
  /** Hits served by the local mirror rather than the cache's own store. */
  mirrorHits: number;
}

export interface FeatureCacheOptions {
  /**
   * A local directory mirroring the entries read from an S3 cache (ignored for a local one). It stops
   * growing while its filesystem has less than MIRROR_MIN_FREE free, so it never fills a node's disk.
   */
  mirror?: string;
}

/** The mirror writes only while its filesystem keeps this much free: 10 % of it and at least 1 GiB. */
const MIRROR_MIN_FREE = { fraction: 0.1, bytes: 2 ** 30 };
/** Free space is looked at once per this many mirror writes (a statfs each time would cost as much as a write). */
const MIRROR_CHECK_EVERY = 64;

/** True when `location` names an S3 prefix rather than a local directory. */
export function isS3Location(location: string): boolean {
  return location.startsWith('s3://');
}

export class FeatureCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, corrupt: 0, bytesWritten: 0, mirrorHits: 0 };
  /** Called with the entry's path and why, whenever a corrupt entry is found (it is then deleted). */
  onCorrupt: (path: string, reason: string) => void = () => {};
  private readonly store: EntryStore;
  private readonly mirror: LocalMirror | undefined;

  /** `dir` is a directory or an s3://bucket/prefix, reached through `s3` (default: the AWS_* env vars). */
  constructor(
    readonly dir: string,
    readonly dtype: CacheDtype = 'float16',
    readonly s3: S3Connection = {},
    readonly options: FeatureCacheOptions = {},
  ) {
    const remote = isS3Location(dir);
    this.store = remote ? new S3Entries(dir, s3) : new LocalEntries(dir);
    this.mirror = remote && options.mirror ? new LocalMirror(options.mirror) : undefined;
  }

  /** The location of one encoder configuration: changing weights or input size can never hit old entries. */
  namespace(shape: FeatureShape): string {
    return this.store.location(namespaceName(shape));
  }

  path(shape: FeatureShape, key: string): string {
    return this.store.location(...entryParts(shape, key));
  }

  /**
   * A dataset's index: each image's key, in the dataset's order, from a pass that found them all in the cache.
   * A relaunch reads it instead of reading every image again to digest it. It is trusted as written: images
   * replaced in place under the same ids and source need a pruned cache (`extract-features --prune`) to be seen.
   */
  async readIndex(shape: FeatureShape, name: string): Promise<ImageKeys | undefined> {
    const buf = await this.store.read(this.indexPath(shape, name));
    return buf && ImageKeys.decode(buf);
  }

  async writeIndex(shape: FeatureShape, name: string, keys: ImageKeys): Promise<void> {
    await this.store.write(this.indexPath(shape, name), keys.encode());
  }

  removeIndex(shape: FeatureShape, name: string): Promise<void> {
    return this.store.remove(this.indexPath(shape, name));
  }

  private indexPath(shape: FeatureShape, name: string): string {
    return this.store.location(namespaceName(shape), 'index', `${name}.keys`);
  }

  /**
   * Deletes every entry and index and returns the bytes freed (`extract-features --prune`). Entries are
   * derived data, so a later miss only recomputes them.
   */
  prune(): Promise<number> {
    return this.store.prune();
  }

  /** The cached features, or undefined on a miss or a corrupt entry (which is deleted). */
  async get(shape: FeatureShape, key: string): Promise<Features | undefined> {
    const fromMirror = await this.fromMirror(shape, key);
    if (fromMirror) return fromMirror;
    const path = this.path(shape, key);
    const buf = await this.store.read(path);
    if (buf === undefined) {
      this.stats.misses++;
      return undefined;
    }
    const entry = this.check(buf, shape, key);
    if (typeof entry === 'string') {
      this.stats.corrupt++;
      this.stats.misses++;
      this.onCorrupt(path, entry);
      await this.store.remove(path);
      return undefined;
    }
    if (entry.dtype === 'float16' && this.dtype === 'float32') {
      // Encoded again and overwritten by put(); float16 readers then round the float32 entry.
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    // Only an entry that passed its digest is mirrored, so the mirror never holds what the store would not.
    await this.mirror?.write(entryParts(shape, key), buf);
    return entry.dtype === this.dtype ? entry.features : this.asStored(entry.features);
  }

  /**
   * The mirror's copy when it has an intact one of this cache's dtype. A corrupt copy is the mirror's own
   * damage, not the store's: it is deleted there only, and the entry read again from the store.
   */
  private async fromMirror(shape: FeatureShape, key: string): Promise<Features | undefined> {
    if (!this.mirror) return undefined;
    const parts = entryParts(shape, key);
    const buf = this.mirror.read(parts);
    if (buf === undefined) return undefined;
    const entry = this.check(buf, shape, key);
    if (typeof entry === 'string' || entry.dtype !== this.dtype) {
      if (typeof entry === 'string') {
        this.stats.corrupt++;
        this.onCorrupt(this.mirror.location(parts), entry);
      }
      this.mirror.remove(parts);
      return undefined;
    }
    this.stats.hits++;
    this.stats.mirrorHits++;
    return entry.features;
  }

  /** Whether an entry exists, without reading it (a relaunch checks a whole dataset this way). */
  has(shape: FeatureShape, key: string): Promise<boolean> {
    return this.store.exists(this.path(shape, key));
  }

  /**
   * The features exactly as a later get() will return them (rounded to float16 when that is the dtype), so
   * a run that computed its features and a resumed run that read them from the cache see identical numbers.
   */
  asStored(features: Features): Features {
    if (this.dtype === 'float32') return features;
    return { map: float16ToFloat32(float32ToFloat16(features.map)), pooled: float16ToFloat32(float32ToFloat16(features.pooled)) };
  }

  /** Writes atomically, so a crash mid-write leaves no entry rather than a torn one. */
  async put(shape: FeatureShape, key: string, features: Features): Promise<void> {
    if (features.map.length !== shape.regions * shape.channels || features.pooled.length !== shape.channels) {
      throw new Error(`features for ${key} do not match ${shape.regions}x${shape.channels}`);
    }
    const header: Header = { key, dtype: this.dtype, ...pick(shape) };
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    const values = (a: Float32Array) => (this.dtype === 'float16' ? float32ToFloat16(a) : a);
    const map = values(features.map);
    const pooled = values(features.pooled);
    const body = Buffer.concat([MAGIC, len, json, bytes(map), bytes(pooled)]);
    const digest = createHash('sha256').update(body).digest();
    await this.store.write(this.path(shape, key), Buffer.concat([body, digest]));
    this.stats.bytesWritten += body.length + DIGEST_BYTES;
  }

  private check(buf: Buffer, shape: FeatureShape, key: string): { features: Features; dtype: CacheDtype } | string {
    if (buf.length < MAGIC.length + 4 + DIGEST_BYTES || !buf.subarray(0, 4).equals(MAGIC)) return 'not a feature cache entry';
    const body = buf.subarray(0, buf.length - DIGEST_BYTES);
    if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - DIGEST_BYTES))) return 'digest mismatch';
    const jsonLength = buf.readUInt32LE(4);
    let header: Header;
    try {
      header = JSON.parse(buf.subarray(8, 8 + jsonLength).toString('utf8')) as Header;
    } catch {
      return 'unreadable header';
    }
    const expected = { key, ...pick(shape) };
    for (const [k, v] of Object.entries(expected)) if (header[k as keyof Header] !== v) return `header ${k} is ${String(header[k as keyof Header])}, expected ${String(v)}`;
    const width = header.dtype === 'float16' ? 2 : 4;
    const count = shape.regions * shape.channels + shape.channels;
    const start = 8 + jsonLength;
    if (body.length - start !== count * width) return `holds ${body.length - start} value bytes, expected ${count * width}`;
    // Copy into a fresh, aligned buffer: typed-array views need their element alignment.
    const raw = new Uint8Array(body.subarray(start)).buffer;
    const all = header.dtype === 'float16' ? float16ToFloat32(new Uint16Array(raw)) : new Float32Array(raw);
    return { features: { map: all.subarray(0, shape.regions * shape.channels), pooled: all.subarray(shape.regions * shape.channels) }, dtype: header.dtype };
  }
}

function pick(shape: FeatureShape): FeatureShape {
  return { encoder: shape.encoder, weightsDigest: shape.weightsDigest, inputSize: shape.inputSize, regions: shape.regions, channels: shape.channels };
}

function bytes(a: Uint16Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function namespaceName(shape: FeatureShape): string {
  return `${shape.encoder}-${shape.inputSize}-${shape.weightsDigest.slice(0, 16)}`;
}

function entryParts(shape: FeatureShape, key: string): string[] {
  return [namespaceName(shape), key.slice(0, 2), `${key}.feat`];
}

/**
 * Verified copies of an S3 cache's entries on local disk. Best effort: a write that fails (disk full, a
 * read-only volume) or that would leave the filesystem short of MIRROR_MIN_FREE is skipped, and the entry
 * is read from S3 again next time; the mirror is derived data, never the only copy.
 */
class LocalMirror {
  private readonly entries: LocalEntries;
  private writes = 0;
  private full = false;
  private readonly made = new Set<string>();

  constructor(dir: string) {
    this.entries = new LocalEntries(dir);
  }

  location(parts: string[]): string {
    return this.entries.location(...parts);
  }

  /**
   * The mirror's file operations are synchronous: they run on the feature reader's own thread, where each
   * awaited fs call cost a trip through libuv's pool (open, stat, read, close) for a 36 KiB file.
   */
  read(parts: string[]): Buffer | undefined {
    try {
      return readFileSync(this.location(parts));
    } catch {
      return undefined;
    }
  }

  remove(parts: string[]): void {
    rmSync(this.location(parts), { force: true });
  }

  async write(parts: string[], data: Buffer): Promise<void> {
    if (this.writes++ % MIRROR_CHECK_EVERY === 0) this.full = !(await this.hasRoom());
    if (this.full) return;
    const location = this.location(parts);
    const dir = dirname(location);
    // Temp file + rename as for any local entry, but each directory is made once: a mkdir per entry was a
    // third of the mirror's cost per write.
    const tmp = `${location}.${process.pid}-${threadId}-${this.writes}.tmp`;
    try {
      if (!this.made.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.made.add(dir);
      }
      writeFileSync(tmp, data);
      renameSync(tmp, location);
    } catch {
      this.full = true;
      rmSync(tmp, { force: true });
    }
  }

  private async hasRoom(): Promise<boolean> {
    await mkdir(this.entries.location(), { recursive: true }).catch(() => {});
    try {
      const fs = await statfs(this.entries.location());
      const free = fs.bavail * fs.bsize;
      return free >= Math.max(MIRROR_MIN_FREE.bytes, MIRROR_MIN_FREE.fraction * fs.blocks * fs.bsize);
    } catch {
      return false;
    }
  }
}

/** Where entries live: whole entries in and out, addressed by the locations location() builds. */
interface EntryStore {
  location(...parts: string[]): string;
  /** The entry's bytes, or undefined when there is none. */
  read(location: string): Promise<Buffer | undefined>;
  /** Replaces the entry as a whole: readers see the old bytes or the new ones, never a mix. */
  write(location: string, data: Buffer): Promise<void>;
  remove(location: string): Promise<void>;
  exists(location: string): Promise<boolean>;
  /** Deletes every entry; returns the bytes they held. */
  prune(): Promise<number>;
}

class LocalEntries implements EntryStore {
  constructor(private readonly dir: string) {}

  location(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  async read(location: string): Promise<Buffer | undefined> {
    try {
      return await readFile(location);
    } catch {
      return undefined;
    }
  }

  /** Temp file + rename: a crash mid-write leaves a stray temp file at worst, never a torn entry. */
  async write(location: string, data: Buffer): Promise<void> {
    await mkdir(dirname(location), { recursive: true });
    const tmp = `${location}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, location);
  }

  async remove(location: string): Promise<void> {
    await rm(location, { force: true });
  }

  async exists(location: string): Promise<boolean> {
    return stat(location).then(() => true, () => false);
  }

  async prune(): Promise<number> {
    let bytes = 0;
    let entries: Dirent[];
    try {
      entries = await readdir(this.dir, { recursive: true, withFileTypes: true });
    } catch {
      return 0;
    }
    for (const e of entries.filter((x) => x.isFile())) bytes += (await stat(join(e.parentPath, e.name))).size;
    for (const e of await readdir(this.dir)) await rm(join(this.dir, e), { recursive: true, force: true });
    return bytes;
  }
}

/** Entries as objects under s3://bucket/prefix. A PUT replaces an object whole, so no temp object is needed. */
class S3Entries implements EntryStore {
  private readonly client: S3Client;
  /** Reads, the per-step path, skip the SDK's per-request middleware; writes and listings are rare. */
  private readonly getter: SignedGet;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(uri: string, connection: S3Connection) {
    const { bucket, prefix } = parseS3Uri(uri);
    this.bucket = bucket;
    this.prefix = prefix;
    this.client = new S3Client(s3ClientConfig(connection));
    this.getter = SignedGet.fromClient(this.client, bucket, s3Address(connection));
  }

  location(...parts: string[]): string {
    return `s3://${this.bucket}/${this.key(...parts)}`;
  }

  async read(location: string): Promise<Buffer | undefined> {
    // Only a missing key is a miss: taking an unreachable cache for an empty one would silently re-encode
    // every image (hours on a real dataset). Failing names the cause, and a relaunch finds the entries again.
    return this.getter.get(parseS3Uri(location).prefix).catch((err: unknown) => {
      throw failure('read', location, err);
    });
  }

  async write(location: string, data: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: parseS3Uri(location).prefix, Body: data })).catch((err: unknown) => {
      throw failure('write', location, err);
    });
  }

  async remove(location: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: parseS3Uri(location).prefix })).catch((err: unknown) => {
      throw failure('delete', location, err);
    });
  }

  async exists(location: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: parseS3Uri(location).prefix }));
      return true;
    } catch (err) {
      // As for read(): only a missing key is a miss.
      if (isNoSuchKey(err)) return false;
      throw failure('check', location, err);
    }
  }

  async prune(): Promise<number> {
    const root = this.location();
    const objects = await listObjects(this.client, this.bucket, this.prefix ? `${this.prefix}/` : '').catch((err: unknown) => {
      throw failure('list', root, err);
    });
    await deleteObjects(this.client, this.bucket, objects.map((o) => o.key)).catch((err: unknown) => {
      throw failure('prune', root, err);
    });
    return objects.reduce((bytes, o) => bytes + o.size, 0);
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].filter((p) => p !== '').join('/');
  }
}

/** A plain Error (not invalid input): network, throttling and credential failures may pass on a relaunch. */
function failure(what: string, location: string, err: unknown): Error {
  return new Error(`feature cache ${what} ${location}: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
}
