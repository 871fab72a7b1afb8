// The feature-cache keys of a dataset's images, packed: 32 bytes of digest per image plus one byte saying
// whether it has one (an image that could not be read has none). A COCO-sized dataset's keys as hex strings
// are ~100 bytes each on the heap, and the index they were read from was a JSON string parsed whole; packed,
// 100,000 keys take 3.3 MB, and the index file is these bytes.
import { createHash } from 'node:crypto';

const DIGEST_BYTES = 32;
const MAGIC = Buffer.from('CRX1');

export class ImageKeys {
  private constructor(
    /** DIGEST_BYTES per image, in image order; zeros where an image has no key. */
    private readonly digests: Uint8Array,
    /** 1 where the image has a key. */
    private readonly present: Uint8Array,
  ) {}

  static from(keys: readonly (string | undefined)[]): ImageKeys {
    const digests = new Uint8Array(keys.length * DIGEST_BYTES);
    const present = new Uint8Array(keys.length);
    keys.forEach((key, i) => {
      if (key === undefined) return;
      if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`feature cache key "${key}" is not a sha256 in hex`);
      digests.set(Buffer.from(key, 'hex'), i * DIGEST_BYTES);
      present[i] = 1;
    });
    return new ImageKeys(digests, present);
  }

  get length(): number {
    return this.present.length;
  }

  has(i: number): boolean {
    return this.present[i] === 1;
  }

  /** Image i's key as hex, or undefined when it has none. */
  at(i: number): string | undefined {
    if (this.present[i] !== 1) return undefined;
    return Buffer.from(this.digests.buffer, this.digests.byteOffset + i * DIGEST_BYTES, DIGEST_BYTES).toString('hex');
  }

  /** Images start..end-1, as their own copy (a slice must not pin the whole set). */
  slice(start: number, end = this.length): ImageKeys {
    return new ImageKeys(this.digests.slice(start * DIGEST_BYTES, end * DIGEST_BYTES), this.present.slice(start, end));
  }

  /** The images these positions name, in that order. */
  pick(positions: readonly number[]): ImageKeys {
    const digests = new Uint8Array(positions.length * DIGEST_BYTES);
    const present = new Uint8Array(positions.length);
    positions.forEach((p, i) => {
      digests.set(this.digests.subarray(p * DIGEST_BYTES, (p + 1) * DIGEST_BYTES), i * DIGEST_BYTES);
      present[i] = this.present[p] as number;
    });
    return new ImageKeys(digests, present);
  }

  toArray(): (string | undefined)[] {
    return Array.from({ length: this.length }, (_, i) => this.at(i));
  }

  /** "CRX1" | u32 count | presence bytes | digests | sha256 of all before. */
  encode(): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32LE(this.length);
    const body = Buffer.concat([MAGIC, count, this.present, this.digests]);
    return Buffer.concat([body, createHash('sha256').update(body).digest()]);
  }

  /** The keys encode() wrote, or undefined for bytes it did not write whole (a torn or foreign file). */
  static decode(bytes: Uint8Array): ImageKeys | undefined {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < MAGIC.length + 4 + DIGEST_BYTES || !buf.subarray(0, 4).equals(MAGIC)) return undefined;
    const count = buf.readUInt32LE(4);
    const bodyLength = 8 + count * (1 + DIGEST_BYTES);
    if (buf.length !== bodyLength + DIGEST_BYTES) return undefined;
    if (!createHash('sha256').update(buf.subarray(0, bodyLength)).digest().equals(buf.subarray(bodyLength))) return undefined;
    return new ImageKeys(new Uint8Array(buf.subarray(8 + count, bodyLength)), new Uint8Array(buf.subarray(8, 8 + count)));
  }
}
